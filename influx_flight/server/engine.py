"""The stand-in's catalog and DataFusion SQL execution over the tables of ``storage.py``.

Each query runs in a fresh DataFusion ``SessionContext`` (catalog ``public``, schema ``iox``,
``system.queries``, ``information_schema`` on; InfluxDB's functions via ``functions.plan``)
over a snapshot of the tables taken under the engine lock, so appends from writer threads never
disturb a running query. Results stream: ``query_sql`` wraps DataFusion's ``execute_stream``
(which runs ahead on DataFusion's threads) in a ``pa.RecordBatchReader`` without collecting it;
pure column scans stream cached hydrated batches instead (see ``_pure_scan_reader``).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
from datafusion import RuntimeEnvBuilder, SessionConfig, SessionContext, SQLOptions

from influx_flight.server import functions
from influx_flight.server.cancel import cancellable_batches
from influx_flight.server.errors import (
    DatabaseAlreadyExists,
    DatabaseNotFound,
    QueryInternalError,
    QueryNotImplemented,
    QueryPlanError,
    ResourcesExhausted,
    ServerError,
    TableAlreadyExists,
    TableNotFound,
    WriteRejected,
)
from influx_flight.server.file_limit import (
    DEFAULT_GEN1_DURATION_NS,
    DEFAULT_QUERY_FILE_LIMIT,
    check_file_limit,
    time_range_only,
)
from influx_flight.server.limits import Limits, QuerySlots
from influx_flight.server.storage import (
    _TAG_TYPE_NAME,
    COLUMN_TYPE_KEY,
    FIELD_TYPES,
    TAG_TYPE,
    TIME_TYPE,
    TableSchema,
    _Table,
    hydrate_batch,
    hydrate_reader,
    hydrate_schema,
    hydrate_type,
    table_definition_batch,
    validate_database_name,
)


@dataclass
class _QueryRecord:
    """One row of ``system.queries``."""

    id: str
    issue_time: int
    query_type: str
    query_text: str
    phase: str = "plan"
    success: bool = False
    running: bool = True
    plan_ns: int | None = None
    end_ns: int | None = None


@dataclass
class _Database:
    tables: dict[str, _Table] = field(default_factory=dict)
    #: soft-deleted tables under their new names, with their purge time (ns; None: never)
    deleted: dict[str, tuple[_Table, int | None]] = field(default_factory=dict)
    queries: list[_QueryRecord] = field(default_factory=list)


_PLACEHOLDER_SCAN = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|--[^\n]*|/\*.*?\*/|\$([A-Za-z_][A-Za-z0-9_]*|\d+)",
    re.DOTALL,
)


def placeholders(sql: str) -> list[str]:
    """Names of ``$name`` placeholders in ``sql`` (outside literals and comments), in order."""
    seen: list[str] = []
    for match in _PLACEHOLDER_SCAN.finditer(sql):
        name = match.group(1)
        if name and name not in seen:
            seen.append(name)
    return seen


def param_to_scalar(name: str, value: Any) -> pa.Scalar:
    """A JSON param value as Core types it (§1.2): u64, else i64, else f64; bool; str; null."""
    if isinstance(value, pa.Scalar):
        return value
    if value is None:
        return pa.scalar(None, pa.null())
    if isinstance(value, bool):
        return pa.scalar(value, pa.bool_())
    if isinstance(value, int):
        if 0 <= value < 2**64:
            return pa.scalar(value, pa.uint64())
        if -(2**63) <= value < 0:
            return pa.scalar(value, pa.int64())
        return pa.scalar(float(value), pa.float64())
    if isinstance(value, float):
        return pa.scalar(value, pa.float64())
    if isinstance(value, str):
        return pa.scalar(value, pa.utf8())
    if isinstance(value, list | tuple):
        raise QueryPlanError(
            "JSON arrays are not supported as query parameters. Expected null, boolean, number,"
            f" or string. (parameter '{name}')"
        )
    if isinstance(value, dict):
        raise QueryPlanError(
            "JSON objects are not supported as query parameters. Expected null, boolean, number,"
            f" or string (parameter '{name}')"
        )
    raise QueryPlanError(
        f"unsupported value of type {type(value).__name__} for query parameter '{name}'"
    )


def translate_datafusion_error(exc: BaseException) -> ServerError:
    """Map a DataFusion exception onto the server error tree by DataFusion's error kind."""
    message = str(exc)
    missing = re.search(r"Placeholder '\$([^']+)' was not provided a value", message)
    if missing:
        return QueryPlanError(
            f"Error while planning query: No value found for placeholder with name ${missing.group(1)}"
        )
    if "Resources exhausted" in message:
        return ResourcesExhausted(message)
    if "This feature is not implemented" in message:
        return QueryNotImplemented(message)
    if (
        message.startswith("Internal error")
        or "DataFusion error: Internal error" in message
        or "IO error" in message
        or "Invalid or Unsupported Configuration" in message
    ):
        return QueryInternalError(message)
    if message.startswith(("Error during planning", "SQL error", "Schema error")):
        return QueryPlanError(f"Error while planning query: {message}")
    return QueryPlanError(message)


class Engine:
    """Databases of tables in memory, queried with DataFusion. Thread-safe."""

    def __init__(
        self,
        limits: Limits | None = None,
        query_file_limit: int = DEFAULT_QUERY_FILE_LIMIT,
        gen1_duration_ns: int = DEFAULT_GEN1_DURATION_NS,
    ) -> None:
        self.limits = limits or Limits()
        self.slots = QuerySlots(self.limits)
        self._runtime = RuntimeEnvBuilder().with_fair_spill_pool(self.limits.memory_bytes)
        #: Set at shutdown: every running query stops at its next cancellation check.
        self.stopping = threading.Event()
        #: Core's --query-file-limit (0 turns the check off); see ``file_limit.py``.
        self.query_file_limit = int(query_file_limit)
        self.gen1_duration_ns = int(gen1_duration_ns)
        self._lock = threading.RLock()
        self._dbs: dict[str, _Database] = {}
        self._sql_options = (
            SQLOptions().with_allow_ddl(False).with_allow_dml(False).with_allow_statements(False)
        )
        self._config = (
            SessionConfig()
            .with_default_catalog_and_schema("public", "iox")
            .with_information_schema(True)
            .set("datafusion.sql_parser.map_string_types_to_utf8view", "false")
            # 32768-row batches (~2 MiB of sensor rows, Core's Flight message size) stream
            # ~1.4x faster over Flight here than DataFusion's default 8192.
            .set("datafusion.execution.batch_size", str(_STREAM_ROWS))
        )

    def __repr__(self) -> str:
        with self._lock:
            return f"Engine(databases={sorted(self._dbs)})"

    # -- catalog --------------------------------------------------------------------------

    def create_database(self, database: str) -> None:
        """Create an empty database; raises DatabaseAlreadyExists / InvalidDatabaseName."""
        validate_database_name(database)
        with self._lock:
            if database in self._dbs:
                raise DatabaseAlreadyExists(database)
            self._dbs[database] = _Database()

    def delete_database(self, database: str) -> None:
        """Drop a database and its data; raises DatabaseNotFound."""
        with self._lock:
            if self._dbs.pop(database, None) is None:
                raise DatabaseNotFound(database)

    def list_databases(self) -> list[str]:
        """Names of all databases, sorted."""
        with self._lock:
            return sorted(self._dbs)

    def has_database(self, database: str) -> bool:
        with self._lock:
            return database in self._dbs

    def _db(self, database: str) -> _Database:
        db = self._dbs.get(database)
        if db is None:
            raise DatabaseNotFound(database)
        return db

    def create_table(
        self,
        database: str,
        table: str,
        tags: Sequence[str],
        fields: Mapping[str, pa.DataType] | None = None,
    ) -> None:
        """Create an empty table with ``tags`` and typed ``fields`` (Core's table create).

        Raises DatabaseNotFound, TableAlreadyExists, or WriteRejected for a bad definition.
        """
        batch = table_definition_batch(table, tags, fields)
        with self._lock:
            db = self._db(database)
            if table in db.tables:
                raise TableAlreadyExists(database, table)
            t = _Table(table)
            t.append(batch)
            db.tables[table] = t

    def delete_table(self, database: str, table: str) -> None:
        """Drop a table and its data; raises DatabaseNotFound / TableNotFound."""
        with self._lock:
            db = self._db(database)
            if db.tables.pop(table, None) is None:
                raise TableNotFound(database, table)

    def soft_delete_table(
        self, database: str, table: str, renamed: str, hard_delete_ns: int | None
    ) -> None:
        """Core's table delete: rename ``table`` to ``renamed`` and purge it at ``hard_delete_ns``.

        A soft-deleted table is out of every query and listing; its name is free at once. Given
        the name of a soft-deleted table, only its purge time changes. ``None`` never purges; a
        due time purges now. Raises DatabaseNotFound / TableNotFound, or TableAlreadyExists when
        a live table has the new name.
        """
        with self._lock:
            db = self._db(database)
            if table in db.tables:
                if renamed != table and renamed in db.tables:
                    raise TableAlreadyExists(database, renamed)
                # deleted twice in one second: the newer copy takes the name, the older goes
                db.deleted[renamed] = (db.tables.pop(table), hard_delete_ns)
            elif table in db.deleted:
                db.deleted[table] = (db.deleted[table][0], hard_delete_ns)
            else:
                raise TableNotFound(database, table)
        self.purge_deleted()

    def deleted_tables(self, database: str) -> dict[str, int | None]:
        """Soft-deleted tables of ``database``: new name -> purge time (ns; None: never)."""
        with self._lock:
            return {name: due for name, (_, due) in sorted(self._db(database).deleted.items())}

    def purge_deleted(self, now_ns: int | None = None) -> list[tuple[str, str]]:
        """Drop the soft-deleted tables whose purge time has come; returns (database, table)."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        purged = []
        with self._lock:
            for db_name, db in self._dbs.items():
                for name, (_, due) in list(db.deleted.items()):
                    if due is not None and due <= now_ns:
                        del db.deleted[name]
                        purged.append((db_name, name))
        return purged

    def deleted_snapshot(self, database: str) -> dict[str, tuple[pa.Table, list[str], int | None]]:
        """Copy-free snapshot of the soft-deleted tables: name -> (data, tags, purge time)."""
        with self._lock:
            out = {}
            for name, (t, due) in self._db(database).deleted.items():
                t.deduplicate()
                data = pa.Table.from_batches(list(t.batches), schema=t.schema)
                out[name] = (data, list(t.table_schema().tags), due)
            return out

    def has_table(self, database: str, table: str) -> bool:
        with self._lock:
            db = self._dbs.get(database)
            return db is not None and table in db.tables

    def tables(self, database: str) -> dict[str, TableSchema]:
        """Table name -> TableSchema (tags, field types) for ``database``."""
        with self._lock:
            db = self._db(database)
            return {name: t.table_schema() for name, t in sorted(db.tables.items())}

    def table_arrow_schema(self, database: str, table: str) -> pa.Schema:
        """The stored Arrow schema of one table (sorted columns, dictionary tags)."""
        with self._lock:
            t = self._db(database).tables.get(table)
            if t is None:
                raise QueryPlanError(f"table 'public.iox.{table}' not found")
            return t.schema

    def snapshot(self, database: str) -> dict[str, pa.Table]:
        """A consistent copy-free snapshot of every table (for compaction and exports)."""
        with self._lock:
            db = self._db(database)
            for t in db.tables.values():
                t.deduplicate()
            return {
                name: pa.Table.from_batches(list(t.batches), schema=t.schema)
                for name, t in db.tables.items()
            }

    # -- writes ---------------------------------------------------------------------------

    def append(
        self,
        database: str,
        table: str,
        batch: pa.RecordBatch | pa.Table,
        tags: Sequence[str] | None = None,
    ) -> None:
        """Make ``batch``'s rows visible in ``database.table``, creating both if needed.

        Columns: ``time`` (timestamp of any unit or int64 ns); tags are columns typed
        ``Dictionary(*, string)``, carrying the ``iox::column::type`` tag metadata, or named in
        ``tags``; every other column is a field (float64, int64, uint64, utf8, bool). New columns
        extend the schema; a column whose kind or type differs from the stored one raises
        :class:`WriteRejected` and nothing of the batch is stored.
        """
        if not table:
            raise WriteRejected("table name cannot be empty")
        if isinstance(batch, pa.Table):
            batch = (
                batch.combine_chunks().to_batches()[0]
                if batch.num_rows
                else pa.RecordBatch.from_pylist([], schema=batch.schema)
            )
        if tags:
            fields = []
            for fld in batch.schema:
                if fld.name in tags:
                    meta = dict(fld.metadata or {})
                    meta[COLUMN_TYPE_KEY] = _TAG_TYPE_NAME.encode()
                    fld = fld.with_metadata(meta)
                fields.append(fld)
            batch = pa.RecordBatch.from_arrays(batch.columns, schema=pa.schema(fields))
        with self._lock:
            db = self._dbs.get(database)
            if db is None:
                validate_database_name(database)
                db = _Database()
            t = db.tables.get(table)
            fresh = t is None
            if t is None:
                t = _Table(table)
            t.append(batch)
            # Only register new objects once the batch has been accepted.
            if fresh:
                db.tables[table] = t
            self._dbs.setdefault(database, db)

    # -- queries --------------------------------------------------------------------------

    def _snapshot(self, database: str) -> _Snapshot:
        with self._lock:
            db = self._db(database)
            for t in db.tables.values():
                t.deduplicate()
            tables = {name: (t, list(t.batches)) for name, t in db.tables.items()}
            return _Snapshot(tables, list(db.queries))

    def _session_for(self, snap: _Snapshot, sql: str | None = None) -> SessionContext:
        """A session over ``snap``; with ``sql``, only the tables that query can name.

        Registering costs about half a millisecond per table, so a query on a database with
        hundreds of tables registers just the ones whose names appear among its identifiers.
        Queries that look at the catalog (information_schema, SHOW, DESCRIBE) get all tables.
        """
        wanted = _referenced_tables(sql, snap.tables) if sql is not None else None
        ctx = SessionContext(self._config, self._runtime)  # a memory pool per query
        for name, (table, batches) in snap.tables.items():
            if wanted is not None and name not in wanted:
                continue
            if not batches:
                batches = [pa.RecordBatch.from_pylist([], schema=table.schema)]
            # Quoted, so DataFusion keeps the name as is (no lowercasing, dots are not schemas).
            ctx.register_record_batches('"' + name.replace('"', '""') + '"', [batches])
        _register_system_tables(ctx, snap.queries)
        functions.register(ctx)
        return ctx

    def session(self, database: str) -> SessionContext:
        """A fresh DataFusion session over a snapshot of ``database``.

        Catalog ``public``, schema ``iox`` (user tables), ``system`` (``system.queries``),
        ``information_schema`` on. Raises DatabaseNotFound.
        """
        return self._session_for(self._snapshot(database))

    def _dataframe(
        self,
        database: str,
        sql: str,
        params: Mapping[str, Any] | None,
        snap: _Snapshot | None = None,
    ) -> Any:
        if not isinstance(sql, str) or not sql.strip():
            raise QueryPlanError("the query is empty: send a SQL statement in sql_query")
        if snap is None:
            snap = self._snapshot(database)
        ctx = self._session_for(snap, sql)
        wanted = placeholders(sql)
        given = dict(params or {})
        for name in wanted:
            if name not in given:
                raise QueryPlanError(
                    f"Error while planning query: No value found for placeholder with name ${name}"
                )
        values = {name: param_to_scalar(name, v) for name, v in given.items() if name in wanted}
        try:
            df = functions.plan(ctx, sql, self._sql_options, values or None)
        except ServerError:
            raise
        except Exception as exc:
            raise translate_datafusion_error(exc) from None
        self._check_file_limit(df, snap)
        return df

    def _check_file_limit(self, df: Any, snap: _Snapshot) -> None:
        if self.query_file_limit <= 0:
            return
        try:
            plan = df.optimized_logical_plan().display_indent()
        except Exception:
            return  # execution reports the planning error
        check_file_limit(plan, snap.tables, self.query_file_limit, self.gen1_duration_ns)

    def check_file_limit(self, database: str, df: Any) -> None:
        """Raise QueryFileLimitExceeded if ``df`` (planned on a session of ``database``) would
        scan more gen1 files per table than ``query_file_limit``, as Core refuses it."""
        self._check_file_limit(df, self._snapshot(database))

    def query_sql(
        self,
        database: str,
        sql: str,
        params: Mapping[str, Any] | None = None,
        hydrate: bool = False,
    ) -> pa.RecordBatchReader:
        """Plan ``sql`` against ``database`` and stream the result.

        Planning errors raise at once (QueryPlanError, DatabaseNotFound...); execution errors
        surface while reading. ``hydrate=True`` casts dictionary columns to Utf8 inside
        DataFusion (what Flight sends).
        """
        if isinstance(sql, str):
            self.limits.check_query_text(sql)
        return self.admit(lambda: self._query_sql(database, sql, params, hydrate))

    def admit(self, start: Callable[[], pa.RecordBatchReader]) -> pa.RecordBatchReader:
        """Run ``start`` in a query slot held until its stream is exhausted or dropped.

        Raises ResourcesExhausted when no slot frees up within the limits' queue timeout.
        Callers check the query text first (``limits.check_query_text``).
        """
        permit = self.slots.acquire()
        try:
            reader = start()
        except BaseException:
            permit.release()
            raise
        return self.slots.hold_until_done(reader, permit)

    def stream_batches(self, df: Any) -> Iterator[pa.RecordBatch]:
        """Execute DataFrame ``df``; its batches, stopped when the client goes away.

        Every DataFusion stream the server reads goes through here (or ``query_sql``), so a
        cancelled request or a shutdown frees DataFusion's threads within ~0.1 s.
        """
        for item in cancellable_batches(df.execute_stream(), self.stopping):
            yield item.to_pyarrow()

    def _query_sql(
        self, database: str, sql: str, params: Mapping[str, Any] | None, hydrate: bool
    ) -> pa.RecordBatchReader:
        record = self._record_query(database, "sql", sql)
        try:
            snap = self._snapshot(database)
            df = self._dataframe(database, sql, params, snap)
            reader = _pure_scan_reader(df, snap) if hydrate else None
            if reader is None:
                reader = _stream_reader(_hydrated_dataframe(df) if hydrate else df, self.stopping)
                if hydrate:
                    reader = hydrate_reader(reader)  # a no-op when DataFusion already cast
        except ServerError:
            self._finish_query(record, success=False)
            raise
        except Exception as exc:
            self._finish_query(record, success=False)
            raise translate_datafusion_error(exc) from None
        except BaseException:
            self._finish_query(record, success=False)
            raise
        self._finish_query(record, success=True, phase="execute")
        return reader

    def sql_schema(
        self,
        database: str,
        sql: str,
        params: Mapping[str, Any] | None = None,
        hydrate: bool = False,
    ) -> pa.Schema:
        """The result schema of ``sql`` without running it (placeholders may stay unbound)."""
        if not isinstance(sql, str) or not sql.strip():
            raise QueryPlanError("the query is empty: send a SQL statement")
        self.limits.check_query_text(sql)
        ctx = self.session(database)
        values = {n: param_to_scalar(n, v) for n, v in (params or {}).items()}
        try:
            schema = functions.plan(ctx, sql, self._sql_options, values or None).schema()
        except ServerError:
            raise
        except Exception as exc:
            raise translate_datafusion_error(exc) from None
        return hydrate_schema(schema) if hydrate else schema

    # -- system.queries -------------------------------------------------------------------

    def _record_query(self, database: str, query_type: str, text: str) -> _QueryRecord | None:
        record = _QueryRecord(
            id=str(uuid.uuid4()), issue_time=time.time_ns(), query_type=query_type, query_text=text
        )
        with self._lock:
            db = self._dbs.get(database)
            if db is None:
                return None
            db.queries.append(record)
            del db.queries[:-1000]  # bounded history, like Core's query log
        return record

    def _finish_query(
        self, record: _QueryRecord | None, success: bool, phase: str = "fail"
    ) -> None:
        if record is None:
            return
        now = time.time_ns()
        record.plan_ns = now - record.issue_time
        record.end_ns = now - record.issue_time
        record.success = success
        record.running = False
        record.phase = "success" if success else phase


_QUERIES_SCHEMA = pa.schema(
    [
        ("id", pa.utf8()),
        ("phase", pa.utf8()),
        ("issue_time", pa.timestamp("ns")),
        ("query_type", pa.utf8()),
        ("query_text", pa.utf8()),
        ("partitions", pa.int64()),
        ("parquet_files", pa.int64()),
        ("plan_duration", pa.duration("ns")),
        ("permit_duration", pa.duration("ns")),
        ("execute_duration", pa.duration("ns")),
        ("end2end_duration", pa.duration("ns")),
        ("compute_duration", pa.duration("ns")),
        ("max_memory", pa.int64()),
        ("success", pa.bool_()),
        ("running", pa.bool_()),
        ("cancelled", pa.bool_()),
        ("trace_id", pa.utf8()),
    ]
)


def _register_system_tables(ctx: SessionContext, queries: list[_QueryRecord]) -> None:
    rows = {
        "id": [q.id for q in queries],
        "phase": [q.phase for q in queries],
        "issue_time": [q.issue_time for q in queries],
        "query_type": [q.query_type for q in queries],
        "query_text": [q.query_text for q in queries],
        "partitions": [0 for _ in queries],
        "parquet_files": [0 for _ in queries],
        "plan_duration": [q.plan_ns for q in queries],
        "permit_duration": [0 if q.plan_ns is not None else None for q in queries],
        "execute_duration": [None for _ in queries],
        "end2end_duration": [q.end_ns for q in queries],
        "compute_duration": [None for _ in queries],
        "max_memory": [0 for _ in queries],
        "success": [q.success for q in queries],
        "running": [q.running for q in queries],
        "cancelled": [False for _ in queries],
        "trace_id": [None for _ in queries],
    }
    batch = pa.RecordBatch.from_pydict(rows, schema=_QUERIES_SCHEMA)
    from datafusion.catalog import Schema

    catalog = ctx.catalog("public")
    if "system" not in catalog.schema_names():
        catalog.register_schema("system", Schema.memory_schema())
    ctx.register_record_batches("system.queries", [[batch]])


_IDENTIFIER = re.compile(r'"((?:[^"]|"")*)"|([A-Za-z_][A-Za-z0-9_]*)')
_CATALOG_WORDS = {"information_schema", "show", "describe", "desc"}


def _referenced_tables(sql: str, tables: Mapping[str, Any]) -> set[str] | None:
    """Table names ``sql`` can refer to, or None when it may look at the whole catalog."""
    names: set[str] = set()
    for tok in functions.tokenize(sql):
        if tok.kind == "qid":
            names.add(tok.text[1:-1].replace('""', '"'))
        elif tok.kind == "word":
            word = tok.text.lower()
            if word in _CATALOG_WORDS:
                return None
            names.add(word)
    return {name for name in tables if name in names}


@dataclass
class _Snapshot:
    """The batches of every table of a database at one instant (plus the query log)."""

    tables: dict[str, tuple[_Table, list[pa.RecordBatch]]]
    queries: list[_QueryRecord]


_SCAN = re.compile(
    r"^TableScan: (?P<table>[A-Za-z_][A-Za-z0-9_]*) projection=\[(?P<cols>[A-Za-z0-9_, ]*)\]$"
)
_PROJECTION = re.compile(r"^Projection: (?P<exprs>[A-Za-z0-9_., ]+)$")
#: Rows per message when streaming cached batches: 32768 sensor rows are about 2 MiB, the
#: message size Core's Flight encoder aims at (measured a little faster than 8192 here).
_STREAM_ROWS = 32_768


def _pure_scan_reader(df: Any, snap: _Snapshot) -> pa.RecordBatchReader | None:
    """Stream cached hydrated batches when the plan only selects columns of one table,
    optionally over a constant time range.

    ``SELECT *`` / ``SELECT a, b FROM t``, with at most ``WHERE time >= a AND time < b`` (no
    other condition, sort, limit or expression) is what exports and windowed exports run; the
    result is the stored rows of that range, so DataFusion, its row-by-row filter over the
    whole table and the per-query cast of the tag dictionaries are skipped, and a window costs
    its own rows (``_Table.time_slices``). Anything else returns None.
    """
    try:
        lines = [line.strip() for line in df.optimized_logical_plan().display_indent().splitlines()]
    except Exception:
        return None
    projection = _PROJECTION.match(lines[0]) if lines else None
    if projection is not None:
        lines = lines[1:]
    predicate = None
    if lines and lines[0].startswith("Filter: "):
        predicate = lines[0][len("Filter: ") :]
        lines = lines[1:]
    scan = _SCAN.match(lines[0]) if len(lines) == 1 else None
    if scan is None or scan.group("table") not in snap.tables:
        return None
    name = scan.group("table")
    if projection is not None:
        prefix = name + "."
        exprs = [e.strip() for e in projection.group("exprs").split(",")]
        if not all(e.startswith(prefix) for e in exprs):
            return None
        columns = [e[len(prefix) :] for e in exprs]
    else:
        columns = [c.strip() for c in scan.group("cols").split(",") if c.strip()]
    bounds = time_range_only(predicate, name) if predicate is not None else None
    if predicate is not None and bounds is None:
        return None
    table, batches = snap.tables[name]
    target = hydrate_schema(df.schema())
    if target.names != columns or not batches:
        return None
    hydrated = table.hydrated_batches(batches)
    kept = hydrated if bounds is None else table.time_slices(batches, hydrated, *bounds)
    try:
        selected = pa.Table.from_batches(kept, schema=hydrated[0].schema).select(columns)
    except (KeyError, pa.ArrowInvalid):
        return None
    if not selected.schema.equals(target):
        return None
    return selected.to_reader(max_chunksize=_STREAM_ROWS)


def _stream_reader(df: Any, stopping: threading.Event | None = None) -> pa.RecordBatchReader:
    """Execute ``df`` and wrap DataFusion's merged stream in a ``pa.RecordBatchReader``.

    ``execute_stream`` runs every partition on DataFusion's threads with read-ahead, so
    scanning and casting overlap with the consumer (the Flight writer); the Arrow C stream
    export of DataFrame drains partitions one after the other and is ~3x slower here. The
    stream is driven by :func:`cancel.cancellable_batches`, so a client that goes away (or
    ``stopping``) stops DataFusion's work at once.
    """
    schema = df.schema()
    stream = df.execute_stream()

    def batches() -> Iterator[pa.RecordBatch]:
        try:
            for item in cancellable_batches(stream, stopping):
                batch = item.to_pyarrow()
                if not batch.schema.equals(schema):
                    batch = pa.RecordBatch.from_arrays(batch.columns, schema=schema)
                yield batch
        except ServerError:
            raise
        except Exception as exc:
            error = translate_datafusion_error(exc)
            if isinstance(error, ResourcesExhausted):  # the memory pool: RESOURCE_EXHAUSTED
                raise pa.ArrowCapacityError(error.message) from None
            raise pa.ArrowInvalid(error.message) from None

    return pa.RecordBatchReader.from_batches(schema, batches())


def _hydrated_dataframe(df: Any) -> Any:
    """``df`` with dictionary columns cast to strings by DataFusion (multi-threaded)."""
    schema = df.schema()
    if not any(pa.types.is_dictionary(f.type) for f in schema):
        return df
    names = schema.names
    if len(set(names)) != len(names):
        return df  # duplicate output names cannot be re-selected; Flight casts per batch
    try:
        columns = df.find_qualified_columns(*names)
        exprs = [
            expr.cast(hydrate_type(f.type)).alias(f.name)
            if pa.types.is_dictionary(f.type)
            else expr
            for expr, f in zip(columns, schema, strict=True)
        ]
        hydrated = df.select(*exprs)
        # DataFusion may run the cast on round-robin partitions; merging them again loses the
        # order of an ORDER BY. A single-partition plan keeps one: the caller casts per batch.
        if df.execution_plan().partition_count == 1 < hydrated.execution_plan().partition_count:
            return df
        return hydrated
    except Exception:
        return df  # the caller casts per batch instead


__all__ = [
    "FIELD_TYPES",
    "TAG_TYPE",
    "TIME_TYPE",
    "Engine",
    "TableSchema",
    "hydrate_batch",
    "hydrate_reader",
    "hydrate_schema",
    "param_to_scalar",
    "placeholders",
    "table_definition_batch",
    "translate_datafusion_error",
    "validate_database_name",
]
