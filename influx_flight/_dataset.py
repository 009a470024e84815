"""Windowed dataset export: a long time range as a Hive-partitioned Parquet dataset.

Why: one Flight stream and one encoder cap a single export at one core, and a failure near the
end of a month-long export loses everything. Here the range is cut into aligned windows; each
window is its own query (``$start``/``$end`` bound server-side) and its own atomic file
(``.../date=2024-01-01/hour=06/part-0.parquet``), up to ``concurrency`` at once. The dataset is
committed by a ``_SUCCESS`` manifest (files, rows, query) written only when every window of the
range is present, so readers that wait for it never see a half dataset.

Re-running resumes: a window whose file exists was committed (files appear by atomic rename) and
is skipped, unless ``overwrite=True``; temporary files left by a killed run are removed. So a run
that failed half way finishes on retry without duplicates. Memory is bounded by
``concurrency * (DEFAULT_ENCODE_QUEUE + 1) * row_group_size`` rows plus a receive window
per stream.

Orchestrators fan out with the same pieces: ``plan_windows`` for the window list,
``export_window`` per mapped task (or op), then ``commit_dataset`` once at the end.

Examples:
    export_dataset(client, "SELECT * FROM cpu WHERE time >= $start AND time < $end",
                   "s3://bucket/cpu/", start="2024-01-01", end="2024-01-02", window="1h",
                   concurrency=4)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from ._exceptions import ConfigurationError, ExportError
from ._sinks import (
    DEFAULT_COMPRESSION,
    DEFAULT_ROW_GROUP_SIZE,
    ExportedFile,
    _resolve,
    _Target,
)
from .time import align_range, format_time, parse_duration, split_range

if TYPE_CHECKING:
    from fsspec import AbstractFileSystem

    from ._client import InfluxDB3Client

__all__ = [
    "DEFAULT_EXPORT_CONCURRENCY",
    "MANIFEST_NAME",
    "DatasetProgress",
    "DatasetResult",
    "DatasetWindow",
    "WindowExportOptions",
    "commit_dataset",
    "export_dataset",
    "export_window",
    "plan_windows",
    "slice_manifest",
    "window_query",
]

#: Windows exported at once by ``export_dataset`` (each its own Flight stream and encoder).
DEFAULT_EXPORT_CONCURRENCY = 2
#: The commit marker at the dataset root: a JSON manifest of files, rows and the query.
MANIFEST_NAME = "_SUCCESS"
PART_NAME = "part-0.parquet"
MANIFEST_FORMAT = "influx-flight-dataset/1"
_MINUTE = 60 * 10**9
_HOUR = 60 * _MINUTE
_DAY = 24 * _HOUR


# --- windows -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetWindow:
    """One window ``[start, end)`` (int ns, UTC) and its partition directory (``date=.../hour=..``)."""

    start: int
    end: int
    partition: str

    @property
    def start_iso(self) -> str:
        return format_time(self.start)

    @property
    def end_iso(self) -> str:
        return format_time(self.end)

    @property
    def file_path(self) -> str:
        """The window's file relative to the dataset root (``date=.../hour=../part-0.parquet``)."""
        return f"{self.partition}/{PART_NAME}"

    def to_kwargs(self) -> dict[str, str]:
        """``{"start": ..., "end": ...}`` as RFC 3339 strings (for task mapping, JSON-safe)."""
        return {"start": self.start_iso, "end": self.end_iso}


def partition_for(start_ns: int, window_ns: int) -> str:
    """Hive partition directories of a window: ``date=`` and, for sub-day windows, ``hour=``
    and, for sub-hour windows, ``minute=`` (UTC)."""
    t = dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=start_ns // 1_000)
    parts = [f"date={t:%Y-%m-%d}"]
    if window_ns < _DAY or start_ns % _DAY:
        parts.append(f"hour={t:%H}")
    if window_ns < _HOUR or start_ns % _HOUR:
        parts.append(f"minute={t:%M}")
    return "/".join(parts)


def plan_windows(
    start: str | dt.datetime | int,
    end: str | dt.datetime | int,
    window: str | dt.timedelta | int = "1h",
) -> list[DatasetWindow]:
    """The aligned windows of ``[start, end)``.

    Raises:
        ConfigurationError: bounds not aligned to the window (the message names aligned ones),
            a window that is not a whole number of minutes, or an empty range.
    """
    w = parse_duration(window)
    if w <= 0 or w % _MINUTE:
        raise ConfigurationError(
            f"window: expected a positive whole number of minutes (e.g. '15m', '1h', '1d'), "
            f"got {window!r}",
            field="window",
        )
    s, e = align_range(start, end, w)
    return [DatasetWindow(a, b, partition_for(a, w)) for a, b in split_range(s, e, w)]


def slice_manifest(
    start: str | dt.datetime | int,
    end: str | dt.datetime | int,
    window: str | dt.timedelta | int = "1h",
) -> str:
    """Where one slice ``[start, end)`` of a growing dataset is committed (``commit_dataset``'s
    ``manifest=``).

    A slice that is exactly one Hive directory commits inside it, where readers of that
    directory look: ``date=2024-01-01/_SUCCESS`` for a UTC day, ``date=.../hour=06/_SUCCESS``
    for an hour (and ``minute=`` below). Any other slice (a week, a month, a day on a zoned
    clock) gets a marker of its own at the root: ``_SUCCESS.20240101T000000Z-20240108T000000Z``.
    """
    windows = plan_windows(start, end, window)
    s, e = windows[0].start, windows[-1].end
    prefixes = {w.partition for w in windows}
    common = windows[0].partition.split("/")
    for p in prefixes:
        parts = p.split("/")
        n = 0
        while n < min(len(parts), len(common)) and parts[n] == common[n]:
            n += 1
        common = common[:n]
    if common:
        span = {1: _DAY, 2: _HOUR, 3: _MINUTE}[len(common)]
        if len(common) == len(windows[0].partition.split("/")) and len(windows) == 1:
            span = e - s  # the window's own directory (a 6h window in hour=00, say)
        if e - s == span and s % span == 0:
            return "/".join([*common, MANIFEST_NAME])

    def compact(ns: int) -> str:
        return format_time(ns).replace("-", "").replace(":", "").split(".")[0].rstrip("Z") + "Z"

    return f"{MANIFEST_NAME}.{compact(s)}-{compact(e)}"


def window_query(table: str, columns: list[str] | None = None) -> str:
    """``SELECT ... FROM "table" WHERE time >= $start AND time < $end`` (identifiers quoted)."""
    from .time import quote_ident

    cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
    return f"SELECT {cols} FROM {quote_ident(table)} WHERE time >= $start AND time < $end"


def _check_query(query: str) -> None:
    if not isinstance(query, str) or "$start" not in query or "$end" not in query:
        raise ConfigurationError(
            "query: a windowed export binds each window as $start and $end; write the query "
            "with both, e.g. SELECT * FROM cpu WHERE time >= $start AND time < $end (or use "
            "window_query('cpu'))",
            field="query",
        )


# --- results and progress ------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetProgress:
    """A snapshot for progress displays (rows and bytes of this run; skipped windows count as done)."""

    windows_total: int
    windows_done: int
    windows_skipped: int
    rows: int
    bytes: int
    seconds: float

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class DatasetResult:
    """What a dataset export holds: every window's file, and whether ``_SUCCESS`` was written."""

    path: str
    rows: int
    bytes: int
    files: tuple[ExportedFile, ...]
    written: int
    skipped: int
    committed: bool
    manifest: str | None = None
    seconds: float = 0.0
    failed: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (for XCom and Dagster metadata)."""
        return {
            "path": self.path,
            "rows": self.rows,
            "bytes": self.bytes,
            "windows": len(self.files),
            "written": self.written,
            "skipped": self.skipped,
            "committed": self.committed,
            "manifest": self.manifest,
            "seconds": round(self.seconds, 3),
            "files": [vars(f).copy() for f in self.files],
        }


class _Tally:
    """Thread-safe progress across windows; calls the user's callback outside no lock of ours."""

    def __init__(self, total: int, callback: Callable[[DatasetProgress], None] | None) -> None:
        self.total = total
        self.callback = callback
        self.started = time.monotonic()
        self.lock = threading.Lock()
        self.done = 0
        self.skipped = 0
        self.live: dict[int, tuple[int, int]] = {}
        self.rows = 0
        self.bytes = 0

    def update(self, key: int, rows: int, nbytes: int) -> None:
        with self.lock:
            self.live[key] = (rows, nbytes)
        self.emit()

    def finish(self, key: int, rows: int, nbytes: int, *, skipped: bool = False) -> None:
        with self.lock:
            self.live.pop(key, None)
            self.done += 1
            if skipped:
                self.skipped += 1
            else:
                self.rows += rows
                self.bytes += nbytes
        self.emit()

    def snapshot(self) -> DatasetProgress:
        with self.lock:
            rows = self.rows + sum(r for r, _ in self.live.values())
            nbytes = self.bytes + sum(b for _, b in self.live.values())
            return DatasetProgress(
                self.total, self.done, self.skipped, rows, nbytes, time.monotonic() - self.started
            )

    def emit(self) -> None:
        if self.callback is not None:
            self.callback(self.snapshot())


# --- paths ----------------------------------------------------------------------------------------


def _root(
    destination: Any,
    filesystem: AbstractFileSystem | None,
    storage_options: Mapping[str, Any] | None,
) -> _Target:
    root = _resolve(destination, filesystem, storage_options)
    if root.path.endswith((".parquet", ".pq")):
        raise ExportError(
            f"{root.display!r} looks like a file; a windowed export writes a directory of "
            "partitions (date=.../hour=.../part-0.parquet). Give a directory or prefix.",
            path=root.display,
        )
    return root


def _window_file(root: _Target, window: DatasetWindow) -> _Target:
    target = root
    for part in window.partition.split("/"):
        target = target.join(part)
    return target.join(PART_NAME)


def _committed(target: _Target) -> ExportedFile | None:
    """The window's file if a previous run committed it (rows read from the Parquet footer)."""
    import pyarrow.parquet as pq

    fs = target.fs
    try:
        if not fs.exists(target.path):
            return None
        with fs.open(target.path, "rb") as f:
            rows = pq.ParquetFile(f).metadata.num_rows
        size = int(fs.size(target.path))
    except Exception as exc:
        # Files appear only by atomic rename, so an unreadable one was damaged afterwards.
        raise ExportError(
            f"{target.display!r} exists but is not a readable Parquet file ({exc}); remove it "
            "or re-run with overwrite=True",
            path=target.display,
        ) from exc
    return ExportedFile(target.display, rows, size)


def _remove_stale_temporaries(target: _Target) -> None:
    """Remove ``.part-0.parquet.<id>.tmp`` files that a killed run left in this window."""
    import os
    import posixpath

    fs = target.fs
    parent = (os.path.dirname if target.is_local else posixpath.dirname)(target.path)
    prefix = f".{PART_NAME}."
    with contextlib.suppress(FileNotFoundError, OSError):
        for entry in fs.ls(parent, detail=False):
            name = str(entry).replace("\\", "/").rsplit("/", 1)[-1]
            if name.startswith(prefix) and name.endswith(".tmp"):
                with contextlib.suppress(Exception):
                    fs.rm(entry)


# --- one window ------------------------------------------------------------------------------------


class WindowExportOptions(TypedDict, total=False):
    """How each window is queried and written: the keyword options of :func:`export_window`
    (where their defaults live), taken as they are by :func:`export_dataset`."""

    overwrite: bool
    language: str
    params: Mapping[str, Any] | None
    database: str | None
    compression: str
    row_group_size: int
    filesystem: AbstractFileSystem | None
    storage_options: Mapping[str, Any] | None


def export_window(
    client: InfluxDB3Client,
    query: str,
    destination: Any,
    window: DatasetWindow,
    *,
    overwrite: bool = False,
    language: str = "sql",
    params: Mapping[str, Any] | None = None,
    database: str | None = None,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[ExportedFile, bool]:
    """Export one window into its partition atomically; returns (file, written).

    ``written`` is False when the window was already committed and ``overwrite`` is off.
    """
    _check_query(query)
    root = _root(destination, filesystem, storage_options)
    target = _window_file(root, window)
    if not overwrite:
        existing = _committed(target)
        if existing is not None:
            return _with_window(existing, window), False
    _remove_stale_temporaries(target)
    bound = {**dict(params or {}), "start": window.start_iso, "end": window.end_iso}
    result = client.query(query, language=language, params=bound, database=database)  # type: ignore[arg-type]
    exported = result.to_parquet(
        target.path,
        filesystem=target.fs,
        compression=compression,
        row_group_size=row_group_size,
        on_progress=on_progress,
    )
    return ExportedFile(
        target.display, exported.rows, exported.bytes, window.start_iso, window.end_iso
    ), True


def _with_window(f: ExportedFile, window: DatasetWindow) -> ExportedFile:
    return ExportedFile(f.path, f.rows, f.bytes, window.start_iso, window.end_iso)


# --- the manifest ------------------------------------------------------------------------------------


def _identity(
    query: str,
    database: str | None,
    language: str,
    params: Mapping[str, Any] | None,
    windows: list[DatasetWindow],
) -> dict[str, Any]:
    return {
        "query": query,
        "database": database,
        "language": language,
        "params": {str(k): str(v) for k, v in sorted((params or {}).items())},
        "start": windows[0].start_iso,
        "end": windows[-1].end_iso,
        "window": _window_text(windows[0].end - windows[0].start),
    }


def _window_text(ns: int) -> str:
    for unit, size in (("d", _DAY), ("h", _HOUR), ("m", _MINUTE)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"  # pragma: no cover - windows are whole minutes


def _read_manifest(root: _Target, manifest: str = MANIFEST_NAME) -> dict[str, Any] | None:
    parent, name = _manifest_parent(root, manifest)
    target = parent.join(name)
    try:
        with target.fs.open(target.path, "rb") as f:
            doc = json.loads(f.read().decode("utf-8") or "null")
    except (FileNotFoundError, OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _remove_manifest(root: _Target, manifest: str = MANIFEST_NAME) -> None:
    parent, name = _manifest_parent(root, manifest)
    target = parent.join(name)
    with contextlib.suppress(FileNotFoundError):
        if target.fs.exists(target.path):
            target.fs.rm(target.path)


def _manifest_parent(root: _Target, manifest: str) -> tuple[_Target, str]:
    """The marker's directory under the root and its file name (``_SUCCESS``)."""
    parts = [p for p in str(manifest).replace("\\", "/").split("/") if p]
    if not parts or any(p in (".", "..") for p in parts):
        raise ConfigurationError(
            f"manifest: expected a path inside the dataset such as '_SUCCESS' or "
            f"'date=2024-01-01/_SUCCESS', got {manifest!r}",
            field="manifest",
        )
    parent = root
    for part in parts[:-1]:
        parent = parent.join(part)
    return parent, parts[-1]


def _write_manifest(root: _Target, doc: dict[str, Any], manifest: str = MANIFEST_NAME) -> str:
    """Write the marker atomically (temporary name in its directory, then rename)."""
    import os

    parent, name = _manifest_parent(root, manifest)
    target = parent.join(name)
    fs = target.fs
    tmp = parent.join(f".{name}.{uuid.uuid4().hex[:12]}.tmp")
    data = (json.dumps(doc, indent=2) + "\n").encode()
    try:
        fs.makedirs(parent.path, exist_ok=True)
        with fs.open(tmp.path, "wb") as f:
            f.write(data)
        if target.is_local:
            os.replace(tmp.path, target.path)
        else:
            fs.mv(tmp.path, target.path)
    except Exception as exc:
        with contextlib.suppress(Exception):
            fs.rm(tmp.path)
        raise ExportError(
            f"Writing the commit marker {target.display!r} failed ({type(exc).__name__}: "
            f"{exc}); every window is written, so re-running commits without re-exporting",
            path=target.display,
        ) from exc
    return target.display


def commit_dataset(
    query: str,
    destination: Any,
    *,
    start: str | dt.datetime | int,
    end: str | dt.datetime | int,
    window: str | dt.timedelta | int = "1h",
    language: str = "sql",
    params: Mapping[str, Any] | None = None,
    database: str | None = None,
    filesystem: AbstractFileSystem | None = None,
    storage_options: Mapping[str, Any] | None = None,
    manifest: str = MANIFEST_NAME,
) -> DatasetResult:
    """Check that every window of ``[start, end)`` has its file, then write ``_SUCCESS``.

    The last step after a fan-out (mapped tasks, ops) of ``export_window``. ``manifest`` is the
    marker's path under the dataset root: ``_SUCCESS`` commits the whole range; a growing
    dataset can commit one slice at a time in its own directory, e.g.
    ``date=2024-01-01/_SUCCESS`` for a day (see ``partition_manifest``). File paths in the
    manifest are relative to the dataset root either way.

    Raises:
        ExportError: windows are missing (the message lists them); nothing is committed.
    """
    started = time.perf_counter()
    _check_query(query)
    windows = plan_windows(start, end, window)
    root = _root(destination, filesystem, storage_options)
    files: list[ExportedFile] = []
    missing: list[str] = []
    for w in windows:
        found = _committed(_window_file(root, w))
        if found is None:
            missing.append(w.start_iso)
        else:
            files.append(_with_window(found, w))
    if missing:
        shown = ", ".join(missing[:5]) + (
            f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        )
        raise ExportError(
            f"Cannot commit {root.display!r}: {len(missing)} of {len(windows)} windows have no "
            f"file ({shown}). Export them (re-run the failed tasks) and commit again.",
            path=root.display,
        )
    return _commit(
        root, files, windows, query, database, language, params, 0, len(files), started, manifest
    )


def _commit(
    root: _Target,
    files: list[ExportedFile],
    windows: list[DatasetWindow],
    query: str,
    database: str | None,
    language: str,
    params: Mapping[str, Any] | None,
    written: int,
    skipped: int,
    started: float,
    manifest: str | None = MANIFEST_NAME,
) -> DatasetResult:
    rows = sum(f.rows for f in files)
    nbytes = sum(f.bytes for f in files)
    marker = None
    if manifest is not None:  # None: the caller commits later (or never)
        prefix = root.display.rstrip("/\\") + "/"
        doc = {
            "format": MANIFEST_FORMAT,
            **_identity(query, database, language, params, windows),
            "windows": len(windows),
            "rows": rows,
            "bytes": nbytes,
            "committed_at": format_time(dt.datetime.now(dt.UTC).replace(microsecond=0)),
            "files": [
                {
                    "path": f.path[len(prefix) :] if f.path.startswith(prefix) else f.path,
                    "rows": f.rows,
                    "bytes": f.bytes,
                    "window_start": f.window_start,
                    "window_end": f.window_end,
                }
                for f in files
            ],
        }
        marker = _write_manifest(root, doc, manifest)
    return DatasetResult(
        path=root.display,
        rows=rows,
        bytes=nbytes,
        files=tuple(files),
        written=written,
        skipped=skipped,
        committed=marker is not None,
        manifest=marker,
        seconds=time.perf_counter() - started,
    )


# --- the whole range ---------------------------------------------------------------------------------


def export_dataset(
    client: InfluxDB3Client,
    query: str,
    destination: Any,
    *,
    start: str | dt.datetime | int,
    end: str | dt.datetime | int,
    window: str | dt.timedelta | int = "1h",
    concurrency: int = DEFAULT_EXPORT_CONCURRENCY,
    on_progress: Callable[[DatasetProgress], None] | None = None,
    manifest: str | None = MANIFEST_NAME,
    **options: Unpack[WindowExportOptions],
) -> DatasetResult:
    """Export ``[start, end)`` window by window (``concurrency`` streams at once) into a
    Hive-partitioned dataset at ``destination`` and commit it with ``_SUCCESS``.

    Args:
        client: The client (thread-safe: windows share its channel).
        query: SQL or InfluxQL with ``$start`` and ``$end`` placeholders.
        destination: A directory, fsspec URL prefix or ObjectStoragePath/UPath.
        start, end: The half-open range, aligned to ``window``.
        window: One file per window ('15m', '1h', '1d').
        concurrency: Windows in flight; memory is about
            ``concurrency * (DEFAULT_ENCODE_QUEUE + 1) * row_group_size`` rows plus
            ``concurrency`` receive windows.
        on_progress: Called with a DatasetProgress as windows and rows advance (any thread).
        manifest: Where the commit marker goes (as for :func:`commit_dataset`): ``_SUCCESS`` at
            the root for a whole dataset, ``slice_manifest(start, end, window)`` for one slice
            of a growing one (a Dagster partition); ``None`` writes no marker.
        options: How each window is written, as for :func:`export_window`: ``overwrite``
            (re-export committed windows too, each replaced atomically), ``language``,
            ``params``, ``database``, ``compression``, ``row_group_size``, ``filesystem``,
            ``storage_options``.

    Raises:
        ExportError: some windows failed (the message names them); the windows that finished
            stay committed, no ``_SUCCESS`` is written, and a re-run resumes.
        ConfigurationError: bad range, window or query.
    """
    started = time.perf_counter()
    _check_query(query)
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(
            f"concurrency: expected an integer >= 1, got {concurrency!r}", field="concurrency"
        )
    unknown = sorted(set(options) - set(WindowExportOptions.__annotations__))
    if unknown:
        raise ConfigurationError(
            f"{unknown[0]}: not an export option; known: "
            f"{', '.join(WindowExportOptions.__annotations__)}",
            field=unknown[0],
        )
    # export_window's signature holds the defaults: resolve them once, from there
    settings = {**(export_window.__kwdefaults__ or {}), **options}
    overwrite, language = settings["overwrite"], settings["language"]
    params, database = settings["params"], settings["database"]
    windows = plan_windows(start, end, window)
    root = _root(destination, settings["filesystem"], settings["storage_options"])
    identity = _identity(query, database, language, params, windows)
    committed = _read_manifest(root, manifest) if manifest is not None else None
    if committed is not None and (overwrite or {k: committed.get(k) for k in identity} != identity):
        _remove_manifest(root, manifest)  # the slice is about to change: uncommit it first

    tally = _Tally(len(windows), on_progress)
    files: dict[int, ExportedFile] = {}
    written = 0
    failures: dict[int, BaseException] = {}

    def one(i: int, w: DatasetWindow) -> tuple[ExportedFile, bool]:
        return export_window(
            client,
            query,
            destination,
            w,
            on_progress=lambda rows, nbytes: tally.update(i, rows, nbytes),
            **options,
        )

    pool = ThreadPoolExecutor(
        max_workers=min(concurrency, len(windows)), thread_name_prefix="influx-export"
    )
    futures: dict[Future[tuple[ExportedFile, bool]], int] = {}
    try:
        for i, w in enumerate(windows):
            futures[pool.submit(one, i, w)] = i
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                i = futures[fut]
                exc = fut.exception() if not fut.cancelled() else None
                if fut.cancelled():
                    continue
                if exc is not None:
                    failures[i] = exc
                    continue
                exported, was_written = fut.result()
                files[i] = exported
                written += was_written
                tally.finish(i, exported.rows, exported.bytes, skipped=not was_written)
            if failures:
                for fut in pending:
                    fut.cancel()  # windows not started yet; running ones finish (atomically)
    except BaseException:
        for fut in futures:
            fut.cancel()
        client.cancel()  # running windows stop and remove their temporary files
        raise
    finally:
        pool.shutdown(wait=True)

    if failures:
        first = failures[min(failures)]
        names = [windows[i].start_iso for i in sorted(failures)]
        raise ExportError(
            f"Export to {root.display!r}: {len(failures)} window(s) failed ({', '.join(names[:5])}"
            f"{' ...' if len(names) > 5 else ''}); first error: {first}. {len(files)} of "
            f"{len(windows)} windows are committed and nothing was committed for the dataset "
            "(no _SUCCESS); re-run to resume.",
            path=root.display,
        ) from first
    ordered = [files[i] for i in range(len(windows))]
    return _commit(
        root,
        ordered,
        windows,
        query,
        database,
        language,
        params,
        written,
        len(windows) - written,
        started,
        manifest,
    )


DatasetResult.__module__ = "influx_flight"
DatasetProgress.__module__ = "influx_flight"
DatasetWindow.__module__ = "influx_flight"
