"""The write path: parse at submit, group commit at the flush, visible when acknowledged.

`WritePipeline.submit()` parses a body at once (so line errors are known to the caller), checks
field types against the engine's tables plus the writes still waiting for the flush, and queues
the resulting per-table batches. A flusher thread wakes every `wal_flush_interval` seconds (1 s
by default, as InfluxDB 3 Core's WAL), writes every waiting record to the log and fsyncs once
(with a data directory), applies the records to the engine and only then resolves the futures:
an acknowledged write is both durable and visible to queries. `no_sync=True` writes are applied
and acknowledged at once; their log record is written without waiting for an fsync.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from influx_flight.server.errors import (
    DatabaseNotFound,
    ServerError,
    TableAlreadyExists,
    WriteRejected,
)
from influx_flight.server.line_protocol import (
    KIND_TO_ARROW,
    LineError,
    parse,
    resolve,
    tag_columns,
)
from influx_flight.server.wal import WalRecord, WriteAheadLog

__all__ = ["WriteOutcome", "WritePipeline"]

log = logging.getLogger(__name__)

#: Compact the log into Parquet once this many rows were logged since the last snapshot.
DEFAULT_COMPACT_ROWS = 2_000_000


@dataclass
class WriteOutcome:
    """What happened to one request: rows written and rejected lines (1-based numbers)."""

    lines_written: int
    errors: list[LineError] = field(default_factory=list)
    rejected_all: bool = False  # strict mode hit a bad line: nothing was written


@dataclass(frozen=True)
class _SchemaView:
    tags: list[str]
    fields: dict[str, pa.DataType]


@dataclass
class _Pending:
    record: WalRecord
    future: Future[Any] | None
    outcome: Any
    sync: bool


class WritePipeline:
    """Group-commit write pipeline in front of an engine (see the module docstring)."""

    def __init__(
        self,
        engine: Any,
        data_dir: Path | None = None,
        wal_flush_interval: float = 1.0,
        compact_rows: int = DEFAULT_COMPACT_ROWS,
    ) -> None:
        if wal_flush_interval <= 0:
            raise ValueError("wal_flush_interval must be > 0 seconds")
        self.engine = engine
        self.wal_flush_interval = float(wal_flush_interval)
        self.compact_rows = compact_rows
        self._lock = threading.Lock()  # guards the queue, the overlay and sequence numbers
        self._flush_lock = threading.Lock()  # one flush (WAL append + apply) at a time
        self._compact_lock = threading.Lock()  # one compaction at a time
        self._compactor: threading.Thread | None = None
        self._wake = threading.Event()
        self._pending: list[_Pending] = []
        # (db, table) -> column kinds accepted but not yet applied: keeps two requests in one
        # flush window from disagreeing about a new field's type.
        self._overlay: dict[tuple[str, str], dict[str, str]] = {}
        self._closed = False
        self._rows_since_snapshot = 0
        self._next_compact = compact_rows
        self.wal: WriteAheadLog | None = None
        self._seq = 0
        if data_dir is not None:
            self.wal = WriteAheadLog(Path(data_dir))
            self._seq = self.wal.recover(engine)
            self._rows_since_snapshot = self.wal.replayed_rows  # compacted at the next close
        self._thread = threading.Thread(target=self._run, name="wal-flusher", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        where = "memory" if self.wal is None else str(self.wal.data_dir)
        return f"WritePipeline({where}, flush every {self.wal_flush_interval}s)"

    # -- submitting ----------------------------------------------------------------------

    def _existing(self, database: str) -> dict[str, _SchemaView]:
        """Engine table schemas merged with the not-yet-applied overlay (caller holds _lock)."""
        views: dict[str, _SchemaView] = {}
        if self.engine.has_database(database):
            for name, schema in self.engine.tables(database).items():
                views[name] = _SchemaView(list(schema.tags), dict(schema.fields))
        for (db, table), kinds in self._overlay.items():
            if db != database:
                continue
            view = views.get(table) or _SchemaView([], {})
            tags = list(view.tags) + [n for n, k in kinds.items() if k == "tag"]
            fields = dict(view.fields)
            fields.update({n: KIND_TO_ARROW[k] for n, k in kinds.items() if k != "tag"})
            views[table] = _SchemaView(tags, fields)
        return views

    def submit(
        self,
        database: str,
        body: bytes,
        precision: str = "auto",
        accept_partial: bool = True,
        no_sync: bool = False,
        default_time_ns: int | None = None,
    ) -> Future[WriteOutcome]:
        """Parse `body` and queue it; the future resolves once durable and visible.

        Raises ValueError for a bad precision and UnicodeDecodeError for a non-UTF-8 body;
        line errors are reported in the outcome (strict mode writes nothing on any error).
        """
        now = time.time_ns() if default_time_ns is None else default_time_ns
        parsed = parse(body, precision, now)
        future: Future[WriteOutcome] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the write pipeline is closed")
            batches, errors = resolve(parsed, self._existing(database))
            if errors and not accept_partial:
                future.set_result(WriteOutcome(0, errors[:1], rejected_all=True))
                return future
            outcome = WriteOutcome(sum(b.num_rows for b in batches.values()), errors)
            if not batches:
                future.set_result(outcome)
                return future
            tables = {}
            for name, batch in batches.items():
                tags = tag_columns(batch)
                tables[name] = (batch, tags)
                kinds = self._overlay.setdefault((database, name), {})
                for col in batch.schema:
                    if col.name == "time":
                        continue
                    if col.name in tags:
                        kinds[col.name] = "tag"
                    else:
                        kinds[col.name] = _kind_of(col.type)
            self._seq += 1
            record = WalRecord(self._seq, "write", database, tables)
            if no_sync:
                self._apply(record)
                self._pending.append(_Pending(record, None, None, sync=False))
                future.set_result(outcome)
            else:
                self._pending.append(_Pending(record, future, outcome, sync=True))
        return future

    def create_database(self, database: str) -> Future[None]:
        """Log and apply a database creation (acknowledged at the next flush)."""
        return self._submit_op("create_db", database)

    def delete_database(self, database: str) -> Future[None]:
        """Log and apply a database deletion (acknowledged at the next flush)."""
        return self._submit_op("delete_db", database)

    def create_table(
        self, database: str, table: str, tags: list[str], fields: dict[str, pa.DataType]
    ) -> Future[None]:
        """Log and apply a table creation (acknowledged at the next flush).

        The definition is checked against the engine at once (DatabaseNotFound,
        TableAlreadyExists, WriteRejected), so a bad request never reaches the log.
        """
        from influx_flight.server.engine import table_definition_batch

        batch = table_definition_batch(table, tags, fields)
        if not self.engine.has_database(database):
            raise DatabaseNotFound(database)
        with self._lock:
            pending = (database, table) in self._overlay
        if pending or self.engine.has_table(database, table):
            raise TableAlreadyExists(database, table)
        return self._submit_op("create_table", database, {table: (batch, list(tags))})

    def delete_table(
        self,
        database: str,
        table: str,
        renamed: str | None = None,
        hard_delete_ns: int | None = None,
    ) -> Future[None]:
        """Log and apply a table deletion (acknowledged at the next flush).

        With ``renamed``, Core's soft delete (see ``Engine.soft_delete_table``); without, the
        table is dropped at once.
        """
        empty = pa.RecordBatch.from_pydict({})
        options = {} if renamed is None else {"renamed": renamed, "hard_delete_ns": hard_delete_ns}
        return self._submit_op("delete_table", database, {table: (empty, [])}, options)

    def _submit_op(
        self,
        op: str,
        database: str,
        tables: dict[str, tuple[pa.RecordBatch, list[str]]] | None = None,
        options: dict[str, Any] | None = None,
    ) -> Future[None]:
        future: Future[None] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the write pipeline is closed")
            self._seq += 1
            record = WalRecord(self._seq, op, database, dict(tables or {}), dict(options or {}))
            self._pending.append(_Pending(record, future, None, sync=True))
            if op == "delete_db":
                for key in [k for k in self._overlay if k[0] == database]:
                    del self._overlay[key]
            elif op == "delete_table":
                for table in record.tables:
                    self._overlay.pop((database, table), None)
        self._wake.set()  # catalog changes need not wait for the interval
        return future

    # -- flushing ------------------------------------------------------------------------

    def _apply(self, record: WalRecord) -> None:
        WriteAheadLog.apply(self.engine, record)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.wal_flush_interval)
            self._wake.clear()
            closed = self._closed
            try:
                self.flush()
                self.engine.purge_deleted()  # soft-deleted tables whose purge time has come
                if self.wal is not None and self._rows_since_snapshot >= self._next_compact:
                    self._compact_in_background()
            except Exception:  # pragma: no cover - keeps the flusher alive; futures carry errors
                log.exception("WAL flush failed")
            if closed:
                return

    def flush(self) -> None:
        """Log, fsync, apply and acknowledge everything queued so far."""
        with self._flush_lock:
            with self._lock:
                pending, self._pending = self._pending, []
            # no_sync records were applied at submit: log them first so that replay applies
            # records in the order the engine saw them (last write wins on upserts)
            pending.sort(key=lambda p: p.future is not None)
            if not pending:
                return
            error: BaseException | None = None
            if self.wal is not None:
                try:
                    self.wal.append(
                        [p.record.encode() for p in pending],
                        sync=any(p.sync for p in pending),
                        last_seq=max(p.record.seq for p in pending),
                    )
                except BaseException as exc:  # disk full, I/O error: nothing is acknowledged
                    error = exc
            for p in pending:
                if p.future is None:
                    self._rows_since_snapshot += p.record.rows
                    continue  # no_sync: already applied and acknowledged
                if error is not None:
                    p.future.set_exception(_wal_error(error))
                    continue
                try:
                    self._apply(p.record)
                except Exception as exc:
                    p.future.set_exception(_apply_error(exc))
                    continue
                self._rows_since_snapshot += p.record.rows
                p.future.set_result(p.outcome)
            with self._lock:
                if not self._pending:
                    self._overlay.clear()

    def compact(self) -> None:
        """Write a Parquet snapshot of every database and drop the log it covers."""
        if self.wal is None:
            return
        with self._compact_lock:
            self._compact_locked()

    def _compact_locked(self) -> None:
        assert self.wal is not None
        with self._flush_lock, self._lock:
            # Everything submitted so far gets logged and applied before the snapshot, and
            # nothing new can be submitted until the engine state is captured.
            pending, self._pending = self._pending, []
            pending.sort(key=lambda p: p.future is not None)  # as in flush()
            if pending:
                try:
                    self.wal.append(
                        [p.record.encode() for p in pending],
                        sync=True,
                        last_seq=max(p.record.seq for p in pending),
                    )
                except BaseException as exc:  # nothing acknowledged; no snapshot either
                    for p in pending:
                        if p.future is not None:
                            p.future.set_exception(_wal_error(exc))
                    raise
                for p in pending:
                    if p.future is not None:
                        try:
                            self._apply(p.record)
                        except Exception as exc:
                            p.future.set_exception(_apply_error(exc))
                            continue
                        p.future.set_result(p.outcome)
            seq = self._seq
            databases: dict[str, dict[str, tuple[pa.Table, list[str]]]] = {}
            deleted: dict[str, dict[str, tuple[pa.Table, list[str], int | None]]] = {}
            for db in self.engine.list_databases():
                deleted[db] = self.engine.deleted_snapshot(db)
                schemas = self.engine.tables(db)
                snap = self.engine.snapshot(db)
                databases[db] = {
                    name: (data, list(schemas[name].tags)) for name, data in snap.items()
                }
            old = self.wal.rotate(seq + 1)
            self._rows_since_snapshot = 0
            # A snapshot rewrites everything, so the next one waits until the log holds as many
            # rows as the snapshot: the rewriting cost stays proportional to the rows written.
            total = sum(t.num_rows for tables in databases.values() for t, _ in tables.values())
            self._next_compact = max(self.compact_rows, total)
        # Writing Parquet does not hold up flushes: new records go to the new segment.
        self.wal.write_snapshot(seq, databases, old, deleted)

    def _compact_in_background(self) -> None:
        if self._compact_lock.locked():
            return  # one is running already

        def run() -> None:
            try:
                self.compact()
            except Exception:  # pragma: no cover - the log stays; the next compaction retries
                log.exception("WAL compaction failed")

        self._compactor = threading.Thread(target=run, name="wal-compactor", daemon=True)
        self._compactor.start()

    def close(self) -> None:
        """Flush what is queued, snapshot the data directory and stop the flusher."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._wake.set()
        self._thread.join()
        if self._compactor is not None:
            self._compactor.join()
        self.flush()
        if self.wal is not None:
            if self._rows_since_snapshot:
                self.compact()
            self.wal.close()


def _wal_error(exc: BaseException) -> ServerError:
    """The client's view of a failed log append: the cause, no file path."""
    reason = (
        os.strerror(exc.errno) if isinstance(exc, OSError) and exc.errno else type(exc).__name__
    )
    return ServerError(f"the write-ahead log could not be written ({reason}): nothing was stored")


def _apply_error(exc: Exception) -> ServerError:
    """A write the engine refused: its own ServerError, or a 400 without internals."""
    if isinstance(exc, ServerError):
        return exc
    log.error("the engine could not store a write: %r", exc)
    return WriteRejected("the write could not be stored: nothing of this request was written")


def _kind_of(dtype: pa.DataType) -> str:
    for kind, arrow in KIND_TO_ARROW.items():
        if dtype == arrow:
            return kind
    return "string"
