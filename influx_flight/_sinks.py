"""Parquet sink: streamed batch by batch, atomic, onto any fsspec filesystem.

Sinks know nothing about Flight: they are fed record batches (like a DB-API handler is fed a
cursor). A file is written under a temporary name in the destination's directory and moved into
place only when complete; on any failure or cancellation the temporary files are removed, so a
reader never sees a partial or duplicated export.

Examples:
    write_parquet(batches, schema, "out/cpu.parquet")
    write_parquet(batches, schema, "s3://bucket/cpu.parquet", storage_options={"anon": False})
    write_parquet(batches, schema, "out/cpu/{date}.parquet", split_by="1d")  # one file per day
    write_parquet(batches, schema, ObjectStoragePath("s3://bucket/export/"), split_by="1h")
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import posixpath
import queue
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict

from ._exceptions import ConfigurationError, ExportError, InfluxDB3Error
from ._options import DEFAULT_COMPRESSION, DEFAULT_ENCODE_QUEUE, DEFAULT_ROW_GROUP_SIZE
from .time import format_time, parse_duration

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from fsspec import AbstractFileSystem

__all__ = [
    "DEFAULT_COMPRESSION",
    "DEFAULT_ENCODE_QUEUE",
    "DEFAULT_ROW_GROUP_SIZE",
    "ExportResult",
    "ExportedFile",
    "ParquetOptions",
    "parse_window",
    "write_parquet",
]

_COMPRESSIONS = ("zstd", "snappy", "gzip", "brotli", "lz4", "none")
_PLACEHOLDER_RE = re.compile(r"\{(window_start|window_end|date|hour)\}")

ProgressCallback = Callable[[int, int], None]


class ParquetOptions(TypedDict, total=False):
    """The keyword options of :func:`write_parquet`, accepted as they are by everything that
    writes through it (``QueryResult.to_parquet(dest, **options)``); see there for meanings."""

    compression: str
    row_group_size: int
    filesystem: AbstractFileSystem | None
    storage_options: Mapping[str, Any] | None
    split_by: str | dt.timedelta | None
    time_column: str
    on_progress: ProgressCallback | None
    parquet_options: Mapping[str, Any] | None
    encode_queue: int


@dataclass(frozen=True)
class ExportedFile:
    """One file written: where, how much, and (when split) which time window it holds."""

    path: str
    rows: int
    bytes: int
    window_start: str | None = None
    window_end: str | None = None


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote; small and JSON-friendly (``to_dict()``) for XCom and metadata."""

    path: str
    rows: int
    bytes: int
    files: tuple[ExportedFile, ...] = field(default_factory=tuple)
    row_groups: int = 0
    compression: str = DEFAULT_COMPRESSION
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (paths, counts, windows)."""
        return {
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "row_groups": self.row_groups,
            "compression": self.compression,
            "seconds": round(self.seconds, 3),
            "files": [vars(f).copy() for f in self.files],
        }


def parse_window(value: str | dt.timedelta) -> int:
    """A ``split_by`` window ('15m', '1h', '1d', '1w' or a timedelta) as nanoseconds.

    A bare number is refused (seconds or nanoseconds? the unit must be written out)."""
    try:
        if not isinstance(value, str | dt.timedelta):
            raise ConfigurationError(f"split_by: {value!r} is not a duration such as '1h' or '1d'")
        ns = parse_duration(value, "split_by")
    except ConfigurationError as exc:
        raise ExportError(str(exc)) from None
    if ns <= 0:
        raise ExportError(f"split_by: the window must be positive, got {value!r}")
    return ns


# --- destinations ---------------------------------------------------------------------------------


@dataclass
class _Target:
    fs: AbstractFileSystem
    path: str  # in the filesystem's own terms (no protocol for object stores)
    display: str  # as the caller wrote it (URL or path)

    @property
    def is_local(self) -> bool:
        from fsspec.implementations.local import LocalFileSystem

        return isinstance(self.fs, LocalFileSystem)

    def join(self, name: str) -> _Target:
        sep = os.sep if self.is_local else "/"
        display = self.display.rstrip("/\\") + "/" + name
        return _Target(self.fs, self.path.rstrip(sep).rstrip("/") + sep + name, display)

    def with_path(self, path: str, display: str) -> _Target:
        return _Target(self.fs, path, display)


def _resolve(
    destination: Any,
    filesystem: AbstractFileSystem | None,
    storage_options: Mapping[str, Any] | None,
) -> _Target:
    """fsspec filesystem + path for a str/PathLike/URL or an object with ``fs`` and ``path``."""
    import fsspec

    fs = getattr(destination, "fs", None)
    obj_path = getattr(destination, "path", None)
    if fs is not None and isinstance(obj_path, str) and filesystem is None:
        # Airflow's ObjectStoragePath / universal_pathlib's UPath.
        return _Target(fs, obj_path, str(destination))
    if isinstance(destination, os.PathLike):
        destination = os.fspath(destination)
    if not isinstance(destination, str) or not destination.strip():
        raise ExportError(
            f"destination: expected a path, an fsspec URL (s3://bucket/key.parquet) or an "
            f"ObjectStoragePath, got {type(destination).__name__} {destination!r}"
        )
    if filesystem is not None:
        return _Target(filesystem, filesystem._strip_protocol(destination), destination)
    try:
        fs, path = fsspec.core.url_to_fs(destination, **dict(storage_options or {}))
    except (ImportError, ValueError) as exc:
        raise ExportError(
            f"Cannot open {destination!r}: {exc}. Install the fsspec backend for this URL "
            "(e.g. s3fs, gcsfs, adlfs) or check the URL.",
            path=destination,
        ) from exc
    return _Target(fs, path, destination)


# --- the encoder thread ---------------------------------------------------------------------------


class _Encoder:
    """Encodes row groups on one background thread while the caller receives the next batches.

    The caller's thread keeps the source iterator (so cancellation and error translation stay
    where they were). At most ``depth`` row groups are handed over and not yet written (the one
    being encoded included): ``submit`` waits for a free slot, so the caller holds at most one
    more (the one it is assembling), a slow destination slows the receiving, and memory is
    bounded by ``depth + 1`` row groups whatever the speeds. Parquet encoding and compression
    release the GIL, so with ``depth=1`` (double buffering) receiving and encoding already
    overlap on two cores: the encoder is the slower side, and the next row group is complete
    before it finishes the current one.
    """

    _STOP = object()

    def __init__(self, depth: int = DEFAULT_ENCODE_QUEUE) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._slots = threading.Semaphore(max(1, depth))
        self._error: BaseException | None = None
        self._failed = False
        self._abandon = threading.Event()
        self._thread = threading.Thread(target=self._run, name="influx-parquet-encode", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is self._STOP:
                return
            file, table = item
            del item
            try:
                if not (self._failed or self._abandon.is_set()):
                    file.write_row_groups(table)
            except BaseException as exc:  # handed to the caller's thread
                self._failed = True
                self._error = exc
            finally:
                # Drop the row group before freeing its slot: the slot stands for its memory.
                del file, table
                self._slots.release()

    def _raise_if_failed(self) -> None:
        # Hand the error over and drop our reference: the traceback holds this thread's frame,
        # and a reference cycle through it would leave pyarrow's file objects to the cyclic GC.
        error, self._error = self._error, None
        if error is not None:
            try:
                raise error
            finally:
                del error  # this frame would otherwise keep the cycle alive

    def submit(self, file: _AtomicParquetFile, table: pa.Table) -> None:
        """Hand over a table of whole row groups; waits while ``depth`` are still unwritten."""
        self._raise_if_failed()
        self._slots.acquire()
        self._queue.put((file, table))

    def close(self) -> None:
        """Wait until everything handed over is written; re-raise the encoder's error, if any."""
        self._queue.put(self._STOP)
        self._thread.join()
        self._raise_if_failed()

    def abandon(self) -> None:
        """Stop after the row group being encoded; drop the rest (the files get aborted)."""
        self._abandon.set()
        self._queue.put(self._STOP)
        self._thread.join()


# --- one atomic file ------------------------------------------------------------------------------


class _AtomicParquetFile:
    """A Parquet file written under a temporary name and published by ``commit()``."""

    def __init__(
        self,
        target: _Target,
        schema: pa.Schema,
        *,
        compression: str,
        row_group_size: int,
        parquet_options: Mapping[str, Any],
        encoder: _Encoder | None = None,
    ) -> None:
        import pyarrow.parquet as pq

        self.target = target
        self._encoder = encoder
        self.schema = schema
        self.row_group_size = row_group_size
        split = os.path.split if target.is_local else posixpath.split
        parent, name = split(target.path)
        if not name:
            raise ExportError(
                f"{target.display!r} names a directory; give a file name ending in .parquet, or "
                "use split_by= to write one file per window into a directory",
                path=target.display,
            )
        self._parent = parent
        sep = os.sep if target.is_local else "/"
        if target.is_local:
            remove_stale_temporaries(parent, name)
        self.tmp_path = (parent + sep if parent else "") + temporary_name(name)
        self.rows = 0
        self.row_groups = 0
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = 0
        self._closed = False
        self._counting: _CountingFile | None = None
        try:
            if parent:
                target.fs.makedirs(parent, exist_ok=True)
            raw = target.fs.open(self.tmp_path, "wb")
        except Exception as exc:
            raise _export_error(target, "cannot create a file there", exc) from exc
        self._counting = _CountingFile(raw)
        try:
            self._writer: pq.ParquetWriter | None = pq.ParquetWriter(
                self._counting,
                schema,
                compression=None if compression == "none" else compression,
                **dict(parquet_options),
            )
        except Exception as exc:
            self._discard()
            raise _export_error(target, "cannot start the Parquet writer", exc) from exc

    @property
    def bytes_written(self) -> int:
        return self._counting.count if self._counting else 0

    def write(self, batch: pa.RecordBatch) -> None:
        """Buffer until a full row group is available; write exact row-group-sized chunks."""
        self._pending.append(batch)
        self._pending_rows += batch.num_rows
        if self._pending_rows >= self.row_group_size:
            self._flush(final=False)

    def _flush(self, *, final: bool) -> None:
        import pyarrow as pa

        if not self._pending:
            return
        table = pa.Table.from_batches(self._pending, schema=self.schema)
        full = (
            table.num_rows
            if final
            else (table.num_rows // self.row_group_size) * self.row_group_size
        )
        if full:
            if self._encoder is not None:
                self._encoder.submit(self, table.slice(0, full))
            else:
                self.write_row_groups(table.slice(0, full))
        rest = table.slice(full)
        self._pending = rest.to_batches() if rest.num_rows else []
        self._pending_rows = rest.num_rows

    def write_row_groups(self, table: pa.Table) -> None:
        """Encode and write ``table`` as row groups (on the encoder thread when pipelined)."""
        assert self._writer is not None
        try:
            self._writer.write_table(table, row_group_size=self.row_group_size)
        except Exception as exc:
            raise _export_error(self.target, "writing failed", exc) from exc
        self.rows += table.num_rows
        self.row_groups += -(-table.num_rows // self.row_group_size)

    def flush_last(self) -> None:
        """Hand over the last partial row group (then wait for the encoder and ``finish()``)."""
        self._flush(final=True)

    def finish(self) -> None:
        """Write the last partial row group and close the temporary file (not yet visible).

        Call it after the encoder has drained: what is still pending is written right here.
        """
        self._encoder = None
        self._flush(final=True)
        try:
            assert self._writer is not None
            self._writer.close()
            self._writer = None
            assert self._counting is not None
            self._counting.close()
        except Exception as exc:
            raise _export_error(self.target, "closing the file failed", exc) from exc

    def commit(self) -> int:
        """Move the finished temporary file into place; returns its size in bytes."""
        fs, final = self.target.fs, self.target.path
        size = self.bytes_written
        try:
            if self.target.is_local:
                os.replace(self.tmp_path, final)
            else:
                fs.mv(self.tmp_path, final)
        except Exception as exc:
            self._discard()
            raise _export_error(
                self.target, "moving the finished file into place failed", exc
            ) from exc
        self._closed = True
        return size

    def _discard(self) -> None:
        self._closed = True
        with contextlib.suppress(Exception):
            if self._writer is not None:
                self._writer.close()
        self._writer = None
        with contextlib.suppress(Exception):
            if self._counting is not None:
                self._counting.close()
        with contextlib.suppress(Exception):
            self.target.fs.rm(self.tmp_path)

    def abort(self) -> None:
        """Remove the temporary file; the destination stays as it was."""
        if not self._closed:
            self._discard()


class _CountingFile:
    """Counts bytes written through an fsspec file object (for progress and results)."""

    def __init__(self, raw: Any) -> None:
        self._raw = raw
        self.count = 0
        self.closed = False

    def write(self, data: Any) -> int:
        n = self._raw.write(data)
        self.count += len(memoryview(data)) if n is None else n
        return len(memoryview(data)) if n is None else n

    def flush(self) -> None:
        self._raw.flush()

    def tell(self) -> int:
        return self.count

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._raw.close()

    def writable(self) -> bool:
        return True

    def readable(self) -> bool:
        return False

    def seekable(self) -> bool:
        return False


def _export_error(target: _Target, what: str, exc: BaseException) -> ExportError:
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return ExportError(
        f"Export to {target.display!r} failed: {what} ({type(exc).__name__}: {reason}). Nothing "
        "was left at the destination; check that the path is writable (permissions, bucket, "
        "credentials) and retry.",
        path=target.display,
    )


# --- splitting by time window --------------------------------------------------------------------


def _window_label(ns: int) -> dict[str, str]:
    start = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=ns // 1_000)
    return {
        "window_start": start.strftime("%Y%m%dT%H%M%SZ"),
        "date": start.strftime("%Y-%m-%d"),
        "hour": start.strftime("%Y-%m-%dT%H"),
    }


def _split_batch(
    batch: pa.RecordBatch, time_index: int, window_ns: int
) -> list[tuple[int, pa.RecordBatch]]:
    """(window start ns, rows of that window) for each window present in the batch."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    col = batch.column(time_index)
    if col.null_count:
        raise ExportError(
            f"split_by needs a non-null time column; column {batch.schema.field(time_index).name!r} "
            "has nulls"
        )
    ints = col.cast(pa.int64()) if not pa.types.is_int64(col.type) else col
    values = ints.to_numpy(zero_copy_only=False)
    starts = values - np.mod(values, window_ns)
    first, last = int(starts.min()), int(starts.max())
    if first == last:  # the common case: data sorted by time
        return [(first, batch)]
    out = []
    starts_arr = pa.array(starts)
    for start in np.unique(starts):
        mask = pc.equal(starts_arr, pa.scalar(int(start), pa.int64()))
        out.append((int(start), batch.filter(mask)))
    return out


# --- entry point ------------------------------------------------------------------------------------


def write_parquet(
    batches: Iterable[pa.RecordBatch],
    schema: pa.Schema,
    destination: Any,
    *,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
    split_by: str | dt.timedelta | None = None,
    time_column: str = "time",
    on_progress: ProgressCallback | None = None,
    parquet_options: Mapping[str, Any] | None = None,
    encode_queue: int = DEFAULT_ENCODE_QUEUE,
) -> ExportResult:
    """Stream record batches into Parquet; publish atomically; leave nothing behind on failure.

    Receiving and encoding overlap: full row groups are encoded on a background thread while
    the next batches arrive; at most ``encode_queue`` row groups are handed over and not yet
    written (0 encodes in the caller's thread, one step after the other).

    Args:
        batches: The record batches (consumed once, never held all at once).
        schema: Their schema (written even when there are no rows).
        destination: A local path, an fsspec URL (``s3://b/k.parquet``, ``memory://x``), or an
            object with ``fs`` and ``path`` (Airflow's ObjectStoragePath, UPath). With
            ``split_by`` it is a directory (files named by window start) or a template with
            ``{window_start}``, ``{window_end}``, ``{date}`` or ``{hour}``.
        compression: zstd (default), snappy, gzip, brotli, lz4 or none.
        row_group_size: Rows per row group, regardless of the incoming batch sizes.
        filesystem: An fsspec filesystem to use instead of inferring one from the URL.
        storage_options: Options for the inferred filesystem (credentials, endpoint).
        split_by: One file per time window of ``time_column`` ('1d', '1h', timedelta).
        time_column: The column that ``split_by`` windows.
        on_progress: Called as ``on_progress(rows, bytes)`` after each written batch.
        parquet_options: Extra ``pyarrow.parquet.ParquetWriter`` options.
        encode_queue: Row groups handed to the encoder thread and not yet written (the one
            being encoded included); memory is about ``(encode_queue + 1) * row_group_size``
            rows (the caller assembles one more), plus the query's receive window.

    Raises:
        ExportError: the destination cannot be written (the message names it and says why).
        Any error raised by ``batches`` (e.g. QueryCancelledError) propagates unchanged, after
        the temporary files are removed.
    """
    started = time.perf_counter()
    compression = (compression or "none").lower()
    if compression not in _COMPRESSIONS:
        raise ExportError(
            f"compression: {compression!r} is not supported; use one of {', '.join(_COMPRESSIONS)}"
        )
    if (
        isinstance(row_group_size, bool)
        or not isinstance(row_group_size, int)
        or row_group_size < 1
    ):
        raise ExportError(
            f"row_group_size: expected a positive number of rows, got {row_group_size!r}"
        )
    if isinstance(encode_queue, bool) or not isinstance(encode_queue, int) or encode_queue < 0:
        raise ExportError(
            f"encode_queue: expected a number of row groups >= 0, got {encode_queue!r}"
        )
    target = _resolve(destination, filesystem, storage_options)
    options = dict(parquet_options or {})
    open_files: dict[int | None, _AtomicParquetFile] = {}
    window_ns = parse_window(split_by) if split_by is not None else None
    time_index = -1
    if window_ns is not None:
        time_index = schema.get_field_index(time_column)
        if time_index < 0:
            raise ExportError(
                f"split_by: the result has no {time_column!r} column to split on (columns: "
                f"{', '.join(schema.names)}); select it or pass time_column=",
                path=target.display,
            )

    if window_ns is None and _is_directory(target):
        raise ExportError(
            f"{target.display!r} names a directory; give a file name ending in .parquet, or use "
            "split_by= to write one file per window into a directory",
            path=target.display,
        )

    def file_for(window: int | None) -> _AtomicParquetFile:
        f = open_files.get(window)
        if f is None:
            t = target if window is None else _window_target(target, window, window_ns or 0)
            f = _AtomicParquetFile(
                t,
                schema,
                compression=compression,
                row_group_size=row_group_size,
                parquet_options=options,
                encoder=encoder,
            )
            open_files[window] = f
        return f

    rows = 0
    encoder: _Encoder | None = None
    try:
        encoder = _Encoder(encode_queue) if encode_queue else None
        if window_ns is None:
            file_for(None)
        for batch in batches:
            if batch.num_rows == 0:
                continue
            if window_ns is None:
                file_for(None).write(batch)
            else:
                for window, part in _split_batch(batch, time_index, window_ns):
                    file_for(window).write(part)
            rows += batch.num_rows
            if on_progress is not None:
                on_progress(rows, sum(f.bytes_written for f in open_files.values()))
        if encoder is not None:
            for f in open_files.values():
                f.flush_last()
            encoder, running = None, encoder
            running.close()
        for f in open_files.values():
            f.finish()
        exported: list[ExportedFile] = []
        for window, f in sorted(open_files.items(), key=lambda kv: (kv[0] is None, kv[0] or 0)):
            size = f.commit()
            exported.append(
                ExportedFile(
                    path=f.target.display,
                    rows=f.rows,
                    bytes=size,
                    window_start=format_time(window) if window is not None else None,
                    window_end=format_time(window + (window_ns or 0))
                    if window is not None
                    else None,
                )
            )
    except BaseException as exc:
        if encoder is not None:
            encoder.abandon()
        for f in open_files.values():
            f.abort()
        if isinstance(exc, InfluxDB3Error | KeyboardInterrupt | SystemExit | GeneratorExit):
            raise
        raise _export_error(target, "the export stopped", exc) from exc
    total_bytes = sum(f.bytes for f in exported)
    if on_progress is not None:
        on_progress(rows, total_bytes)
    return ExportResult(
        path=target.display,
        rows=rows,
        bytes=total_bytes,
        files=tuple(exported),
        row_groups=sum(f.row_groups for f in open_files.values()),
        compression=compression,
        seconds=time.perf_counter() - started,
    )


def _is_directory(target: _Target) -> bool:
    if target.display.endswith(("/", "\\")):
        return True
    try:
        return bool(target.fs.isdir(target.path))
    except Exception:  # unknown: let the write itself report the problem
        return False


def _window_target(target: _Target, window: int, window_ns: int) -> _Target:
    labels = _window_label(window)
    labels["window_end"] = _window_label(window + window_ns)["window_start"]
    if _PLACEHOLDER_RE.search(target.display) or _PLACEHOLDER_RE.search(target.path):
        path = _PLACEHOLDER_RE.sub(lambda m: labels[m.group(1)], target.path)
        display = _PLACEHOLDER_RE.sub(lambda m: labels[m.group(1)], target.display)
        return target.with_path(path, display)
    return target.join(f"{labels['window_start']}.parquet")


ExportResult.__module__ = "influx_flight"


def temporary_name(name: str) -> str:
    """The hidden sibling an export of ``name`` writes before its atomic rename.

    It carries the writer's process id so that a later run can tell a temporary left by a
    killed process (SIGKILL, power loss) from one a live process is still writing.
    """
    return f".{name}.{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")


def remove_stale_temporaries(parent: str, name: str) -> list[str]:
    """Delete temporaries of ``name`` in local directory ``parent`` whose writer is dead.

    Returns the removed paths. Only files named by :func:`temporary_name` for this same
    ``name`` are touched, and only when their process no longer exists on this machine.
    """
    removed: list[str] = []
    try:
        entries = os.listdir(parent or ".")
    except OSError:
        return removed
    for entry in entries:
        match = _TEMPORARY.match(entry)
        if match is None or match.group("name") != name:
            continue
        pid = int(match.group("pid"))
        if pid == os.getpid() or _process_alive(pid):
            continue
        path = os.path.join(parent, entry) if parent else entry
        with contextlib.suppress(OSError):
            os.remove(path)
            removed.append(path)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists, owned by someone else
    return True
