"""Write-ahead log and Parquet snapshots: what makes an acknowledged write survive `kill -9`.

Layout of a data directory::

    DIR/wal/00000000000000000001.wal     log segments, named by their first sequence number
    DIR/snapshots/<seq>/MANIFEST.json    databases, tables and tag names at sequence <seq>
    DIR/snapshots/<seq>/<n>.parquet      one file per table
    DIR/CURRENT                          the name of the live snapshot directory

A segment is a sequence of frames ``MAGIC | payload length (u64) | crc32 (u32) | payload``; the
payload is a JSON header (sequence number, operation, database, tables) followed by one Arrow
IPC stream per table. A torn or corrupt frame ends the replay of its segment: it was never
acknowledged, because a write is acknowledged only after the frame is fsynced.

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
    ``delete_table`` carries the table's name with an empty batch.
    """

    seq: int
    op: str  # "write" | "create_db" | "delete_db" | "create_table" | "delete_table"
    database: str
    tables: dict[str, tuple[pa.RecordBatch, list[str]]] = field(default_factory=dict)

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
        return cls(header["seq"], header["op"], header["database"], tables)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_frames(path: Path) -> Iterator[WalRecord]:
    """Records of one segment, stopping quietly at a torn or corrupt frame."""
    data = path.read_bytes()
    pos = 0
    while pos + _FRAME.size <= len(data):
        magic, length, crc = _FRAME.unpack_from(data, pos)
        start = pos + _FRAME.size
        payload = data[start : start + length]
        if magic != _MAGIC or len(payload) != length or zlib.crc32(payload) != crc:
            log.warning(
                "WAL segment %s: torn or corrupt frame at byte %d, ignoring the rest", path, pos
            )
            return
        yield WalRecord.decode(payload)
        pos = start + length


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
            for table in record.tables:
                if engine.has_table(record.database, table):
                    engine.delete_table(record.database, table)
        else:
            for table, (batch, tags) in record.tables.items():
                engine.append(record.database, table, batch, tags=tags)

    # -- appending -----------------------------------------------------------------------

    def _open_segment(self, first_seq: int) -> None:
        if self._file is not None:
            self._file.close()
        self._segment = self.wal_dir / f"{first_seq:020d}.wal"
        self._file = open(self._segment, "ab")  # noqa: SIM115 - kept open across flushes
        _fsync_dir(self.wal_dir)

    def append(self, frames: list[bytes], sync: bool) -> None:
        """Append encoded records; fsync once when `sync` (the group commit)."""
        assert self._file is not None
        self._file.write(b"".join(frames))
        self._file.flush()
        if sync:
            os.fsync(self._file.fileno())

    def rotate(self, next_seq: int) -> list[Path]:
        """Start a new segment for records >= next_seq; returns the segments now closed."""
        old = self.segments()
        self._open_segment(next_seq)
        return [p for p in old if p != self._segment]

    # -- compaction ----------------------------------------------------------------------

    def write_snapshot(
        self, seq: int, databases: dict[str, dict[str, tuple[pa.Table, list[str]]]], old: list[Path]
    ) -> None:
        """Persist a consistent engine snapshot at `seq`, then drop what it supersedes."""
        name = f"{seq:020d}"
        final = self.snap_dir / name
        tmp = self.snap_dir / f"{name}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        manifest: dict[str, Any] = {"seq": seq, "databases": []}
        n = 0
        for db_name, tables in sorted(databases.items()):
            entry: dict[str, Any] = {"name": db_name, "tables": []}
            for table_name, (data, tags) in sorted(tables.items()):
                file_name = f"{n}.parquet"
                n += 1
                path = tmp / file_name
                pq.write_table(data, path, compression="zstd")
                with open(path, "rb+") as fh:
                    os.fsync(fh.fileno())
                entry["tables"].append({"name": table_name, "tags": tags, "file": file_name})
            manifest["databases"].append(entry)
        man_path = tmp / "MANIFEST.json"
        man_path.write_text(json.dumps(manifest))
        with open(man_path, "rb+") as fh:
            os.fsync(fh.fileno())
        _fsync_dir(tmp)
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
