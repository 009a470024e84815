"""Write-ahead log and Parquet snapshots: what makes an acknowledged write survive `kill -9`.

Layout of a data directory::

    DIR/wal/00000000000000000001.wal     log segments, named by their first sequence number
    DIR/snapshots/<seq>/MANIFEST.json    databases, tables and tag names at sequence <seq>
    DIR/snapshots/<seq>/<n>.parquet      one file per table
    DIR/CURRENT                          the name of the live snapshot directory

A segment is a sequence of frames ``MAGIC | payload length (u64) | crc32 (u32) | payload``; the
payload is a JSON header (sequence number, operation, database, tables) followed by one Arrow
IPC stream per table. A write is acknowledged only after its frame is fsynced, and a failed
append (a full disk, an I/O error) is cut off again before anything else is appended: the log is
truncated back to its last good frame or, when even that fails, closed and continued in a new
segment. So a torn frame can only sit at the true tail of a segment. Replay still resynchronises
on the next valid frame after a corrupt one (logs written before this rule existed could hold
acknowledged frames after a torn one), so nothing intact is ever skipped.

Compaction rotates to a new segment (under the writer's lock, so the engine snapshot holds
exactly the records up to the rotation), writes the Parquet files and the manifest into a
temporary directory, fsyncs them, renames the directory, switches ``CURRENT`` atomically and
only then deletes the old segments and snapshots. Replay skips records whose sequence number the
snapshot already covers, so recovery is correct after a crash at any of these steps.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

__all__ = ["WalRecord", "WriteAheadLog"]

log = logging.getLogger(__name__)

_MAGIC = b"IFW1"
_FRAME = struct.Struct("<4sQI")
_LEN = struct.Struct("<Q")


@dataclass
class WalRecord:
    """One logged operation: a write of per-table batches, or a database/table create/delete.

    ``create_table`` carries the new table as an empty batch (its schema) plus its tag names;
    ``delete_table`` carries the table's name with an empty batch, and in ``options`` its new
    name (``renamed``) and purge time (``hard_delete_ns``, None: never): Core's soft delete. A
    record without them (older logs) drops the table at once.
    """

    seq: int
    op: str  # "write" | "create_db" | "delete_db" | "create_table" | "delete_table"
    database: str
    tables: dict[str, tuple[pa.RecordBatch, list[str]]] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(b.num_rows for b, _ in self.tables.values())

    def encode(self) -> bytes:
        header = {
            "seq": self.seq,
            "op": self.op,
            "database": self.database,
            "tables": [[name, tags] for name, (_, tags) in self.tables.items()],
        }
        if self.options:
            header["options"] = self.options
        head = json.dumps(header).encode()
        parts = [_LEN.pack(len(head)), head]
        for batch, _ in self.tables.values():
            sink = pa.BufferOutputStream()
            with pa.ipc.new_stream(sink, batch.schema) as writer:
                writer.write_batch(batch)
            buf = sink.getvalue()
            parts.append(_LEN.pack(buf.size))
            parts.append(buf.to_pybytes())
        payload = b"".join(parts)
        return _FRAME.pack(_MAGIC, len(payload), zlib.crc32(payload)) + payload

    @classmethod
    def decode(cls, payload: bytes) -> WalRecord:
        view = memoryview(payload)
        (head_len,) = _LEN.unpack_from(view, 0)
        pos = _LEN.size
        header = json.loads(bytes(view[pos : pos + head_len]))
        pos += head_len
        tables: dict[str, tuple[pa.RecordBatch, list[str]]] = {}
        for name, tags in header["tables"]:
            (size,) = _LEN.unpack_from(view, pos)
            pos += _LEN.size
            reader = pa.ipc.open_stream(pa.py_buffer(bytes(view[pos : pos + size])))
            batch = reader.read_next_batch()
            pos += size
            tables[name] = (batch, list(tags))
        return cls(
            header["seq"], header["op"], header["database"], tables, header.get("options", {})
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _frame_at(data: bytes, pos: int) -> bytes | None:
    """The payload of the intact frame starting at ``pos``, or None."""
    if pos + _FRAME.size > len(data):
        return None
    magic, length, crc = _FRAME.unpack_from(data, pos)
    start = pos + _FRAME.size
    if magic != _MAGIC or start + length > len(data):
        return None
    payload = data[start : start + length]
    return payload if zlib.crc32(payload) == crc else None


def _read_frames(path: Path) -> Iterator[WalRecord]:
    """Records of one segment; a torn or corrupt frame is skipped up to the next intact one."""
    data = path.read_bytes()
    pos = 0
    while pos < len(data):
        payload = _frame_at(data, pos)
        if payload is None:
            resume = data.find(_MAGIC, pos + 1)
            while resume != -1 and _frame_at(data, resume) is None:
                resume = data.find(_MAGIC, resume + 1)
            if resume == -1:
                log.warning(
                    "WAL segment %s: torn frame at its tail (byte %d of %d): never acknowledged,"
                    " ignored",
                    path,
                    pos,
                    len(data),
                )
                return
            log.error(
                "WAL segment %s: corrupt bytes %d-%d skipped, replay resumes at the next frame",
                path,
                pos,
                resume,
            )
            pos = resume
            continue
        yield WalRecord.decode(payload)
        pos += _FRAME.size + len(payload)


class WriteAheadLog:
    """Appends records to the current segment; recovers and compacts a data directory.

    Not thread-safe on its own: the write pipeline calls it from its flusher thread, and
    `rotate` under the pipeline's lock.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.wal_dir = self.data_dir / "wal"
        self.snap_dir = self.data_dir / "snapshots"
        self.wal_dir.mkdir(parents=True, exist_ok=True)
        self.snap_dir.mkdir(parents=True, exist_ok=True)
        self._file: BinaryIO | None = None
        self._segment: Path | None = None
        self._good_size = 0  # bytes of the current segment that end on an intact frame
        self._broken = False  # a failed append could not be cut off yet: accept nothing
        self._last_seq = 0  # highest sequence number appended or replayed (names new segments)
        self.snapshot_seq = 0
        self.replayed_rows = 0  # rows (and catalog changes) replayed from the log at recovery

    def __repr__(self) -> str:
        return f"WriteAheadLog({str(self.data_dir)!r})"

    # -- recovery ------------------------------------------------------------------------

    def _current_snapshot(self) -> Path | None:
        current = self.data_dir / "CURRENT"
        if not current.exists():
            return None
        name = current.read_text().strip()
        path = self.snap_dir / name
        return path if (path / "MANIFEST.json").exists() else None

    def segments(self) -> list[Path]:
        return sorted(self.wal_dir.glob("*.wal"))

    def recover(self, engine: Any) -> int:
        """Load the live snapshot and replay newer log records into `engine`.

        Returns the last sequence number seen (the next record gets a larger one).
        """
        last_seq = 0
        snap = self._current_snapshot()
        if snap is not None:
            manifest = json.loads((snap / "MANIFEST.json").read_text())
            self.snapshot_seq = last_seq = int(manifest["seq"])
            for db in manifest["databases"]:
                name = db["name"]
                if not db["tables"] and not engine.has_database(name):
                    engine.create_database(name)
                for table in db.get("deleted", []):  # soft-deleted: restored, then renamed
                    data = pq.read_table(snap / table["file"])
                    engine.append(name, table["name"], data, tags=table["tags"])
                    engine.soft_delete_table(
                        name, table["name"], table["name"], table["hard_delete_ns"]
                    )
                for table in db["tables"]:
                    data = pq.read_table(snap / table["file"])
                    # an empty table (created through the API) keeps its schema
                    engine.append(name, table["name"], data, tags=table["tags"])
        for segment in self.segments():
            for record in _read_frames(segment):
                if record.seq <= self.snapshot_seq:
                    continue
                last_seq = max(last_seq, record.seq)
                self.replayed_rows += record.rows or (record.op != "write")
                try:
                    self.apply(engine, record)
                except Exception as exc:  # a record the engine refuses must not block startup
                    log.error(
                        "WAL record %d in %s could not be replayed: %s", record.seq, segment, exc
                    )
        # stale temporary snapshot directories from an interrupted compaction
        for tmp in self.snap_dir.glob("*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)
        self._last_seq = last_seq
        self._open_segment(last_seq + 1)
        return last_seq

    @staticmethod
    def apply(engine: Any, record: WalRecord) -> None:
        """Make a record's effect visible in the engine (used by replay and the pipeline)."""
        if record.op == "create_db":
            if not engine.has_database(record.database):
                engine.create_database(record.database)
        elif record.op == "delete_db":
            if engine.has_database(record.database):
                engine.delete_database(record.database)
        elif record.op == "create_table":
            for table, (batch, tags) in record.tables.items():
                if not engine.has_table(record.database, table):
                    engine.append(record.database, table, batch, tags=tags)
        elif record.op == "delete_table":
            renamed = record.options.get("renamed")
            for table in record.tables:
                if renamed is not None:
                    if engine.has_table(record.database, table) or table in (
                        engine.deleted_tables(record.database)
                        if engine.has_database(record.database)
                        else {}
                    ):
                        engine.soft_delete_table(
                            record.database, table, renamed, record.options.get("hard_delete_ns")
                        )
                elif engine.has_table(record.database, table):
                    engine.delete_table(record.database, table)
        else:
            for table, (batch, tags) in record.tables.items():
                engine.append(record.database, table, batch, tags=tags)

    # -- appending -----------------------------------------------------------------------

    def _open_segment(self, first_seq: int) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
            self._file = None
        segment = self.wal_dir / f"{first_seq:020d}.wal"
        # Unbuffered: a failed write must not leave bytes in a user-space buffer that a later
        # flush would put after the torn frame.
        self._file = open(segment, "ab", buffering=0)  # noqa: SIM115 - kept open
        self._segment = segment
        self._good_size = os.fstat(self._file.fileno()).st_size
        _fsync_dir(self.wal_dir)

    def append(self, frames: list[bytes], sync: bool, last_seq: int = 0) -> None:
        """Append encoded records; fsync once when `sync` (the group commit).

        `last_seq` is the highest sequence number among `frames`. On any error nothing of
        `frames` stays in the log: the segment is truncated back to its last intact frame (or
        abandoned for a new segment) before the error propagates, so a later acknowledged
        record is always reachable by replay.
        """
        if self._broken or self._file is None:
            self._repair()
        assert self._file is not None
        self._last_seq = max(self._last_seq, last_seq)
        data = memoryview(b"".join(frames))
        fd = self._file.fileno()
        try:
            while data:
                written = os.write(fd, data)
                data = data[written:]
            if sync:
                os.fsync(fd)
        except BaseException:
            self._cut_failed_append()
            raise
        self._good_size = os.fstat(fd).st_size

    def _cut_failed_append(self) -> None:
        """Remove a partly written append; on failure, mark the log broken (see `_repair`)."""
        assert self._file is not None
        try:
            os.ftruncate(self._file.fileno(), self._good_size)
            os.fsync(self._file.fileno())
        except OSError as exc:
            log.error(
                "WAL segment %s could not be truncated after a failed write: %s", self._segment, exc
            )
            self._broken = True
            with contextlib.suppress(OSError):
                self._repair()

    def _repair(self) -> None:
        """Continue in a fresh segment after a segment whose torn tail could not be cut off.

        Replay reads the abandoned segment up to its torn tail, then the new one. Raises
        OSError (nothing is accepted) while even that is impossible.
        """
        if self._file is not None and not self._broken:
            return
        first = self._last_seq + 1
        if self._segment is not None:
            first = max(first, int(self._segment.stem) + 1)
        self._open_segment(first)
        self._broken = False

    def rotate(self, next_seq: int) -> list[Path]:
        """Start a new segment for records >= next_seq; returns the segments now closed."""
        old = self.segments()
        self._last_seq = max(self._last_seq, next_seq - 1)
        self._open_segment(next_seq)
        return [p for p in old if p != self._segment]

    # -- compaction ----------------------------------------------------------------------

    def write_snapshot(
        self,
        seq: int,
        databases: dict[str, dict[str, tuple[pa.Table, list[str]]]],
        old: list[Path],
        deleted: dict[str, dict[str, tuple[pa.Table, list[str], int | None]]] | None = None,
    ) -> None:
        """Persist a consistent engine snapshot at `seq`, then drop what it supersedes."""
        name = f"{seq:020d}"
        final = self.snap_dir / name
        tmp = self.snap_dir / f"{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        try:
            _write_snapshot_files(seq, databases, tmp, deleted or {})
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)  # a full disk must not stay full of it
            raise
        if final.exists():
            shutil.rmtree(final)
        os.rename(tmp, final)
        _fsync_dir(self.snap_dir)
        current_tmp = self.data_dir / "CURRENT.tmp"
        current_tmp.write_text(name)
        with open(current_tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(current_tmp, self.data_dir / "CURRENT")
        _fsync_dir(self.data_dir)
        self.snapshot_seq = seq
        # The snapshot is live: older segments and snapshots are garbage now.
        for segment in old:
            with contextlib.suppress(FileNotFoundError):
                segment.unlink()
        for other in self.snap_dir.iterdir():
            if other.name != name:
                shutil.rmtree(other, ignore_errors=True)

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self._file = None


def _write_snapshot_files(
    seq: int,
    databases: dict[str, dict[str, tuple[pa.Table, list[str]]]],
    tmp: Path,
    deleted: dict[str, dict[str, tuple[pa.Table, list[str], int | None]]],
) -> None:
    """The Parquet files and manifest of one snapshot, fsynced, in directory `tmp`."""
    tmp.mkdir(parents=True)
    manifest: dict[str, Any] = {"seq": seq, "databases": []}
    files = 0

    def durable_parquet(data: pa.Table) -> str:
        """Write ``data`` as the snapshot's next Parquet file, fsynced; returns its name."""
        nonlocal files
        file_name = f"{files}.parquet"
        files += 1
        path = tmp / file_name
        pq.write_table(data, path, compression="zstd")
        with open(path, "rb+") as fh:
            os.fsync(fh.fileno())
        return file_name

    for db_name, tables in sorted(databases.items()):
        entry: dict[str, Any] = {"name": db_name, "tables": []}
        for table_name, (data, tags) in sorted(tables.items()):
            entry["tables"].append(
                {"name": table_name, "tags": tags, "file": durable_parquet(data)}
            )
        for table_name, (data, tags, due) in sorted(deleted.get(db_name, {}).items()):
            entry.setdefault("deleted", []).append(
                {
                    "name": table_name,
                    "tags": tags,
                    "file": durable_parquet(data),
                    "hard_delete_ns": due,
                }
            )
        manifest["databases"].append(entry)
    man_path = tmp / "MANIFEST.json"
    man_path.write_text(json.dumps(manifest))
    with open(man_path, "rb+") as fh:
        os.fsync(fh.fileno())
    _fsync_dir(tmp)
