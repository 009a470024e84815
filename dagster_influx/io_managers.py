"""IO managers: Arrow / pandas outputs stored in InfluxDB 3, and Arrow tables stored as Parquet.

`InfluxDB3IOManager` plugs an InfluxDB-specific `DbClient` into Dagster's generic `DbIOManager`
(the pattern of dagster-duckdb and dagster-snowflake): the asset key's last part is the table
(measurement), `partition_expr` metadata names the time column, and a partition's time window
becomes the half-open range `time >= $start AND time < $end` when loading.

InfluxDB 3 cannot delete a time range (Core's HTTP API deletes only whole tables and databases),
so the usual "delete the partition slice, then insert" cannot be done. Writes are upserts: a
point with the same measurement, tag set and timestamp replaces the stored one. Re-materialising
a partition with deterministic timestamps therefore overwrites it exactly; rows of series that
disappear in the new output stay stored. `write_mode: "fail_if_exists"` refuses to write into a
non-empty slice instead. Unpartitioned outputs have a whole table to themselves, so by default
they replace it (`write_mode: "replace"`: Core's `DELETE /api/v3/configure/table`, then the
write); `write_mode: "append"` keeps the old rows (upserting by series and time).

`ParquetIOManager` stores Arrow tables, record-batch streams (including the core's
`QueryResult`) and pandas frames as one Parquet file per partition under a `UPath` (local
directory or any fsspec URL), written through the core's atomic Parquet sink.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import pyarrow as pa
import pyarrow.compute as pc
from dagster import (
    ConfigurableIOManager,
    ConfigurableIOManagerFactory,
    InputContext,
    MetadataValue,
    OutputContext,
    TableColumn,
    TableSchema,
    TimeWindowPartitionsDefinition,
    UPathIOManager,
)
from dagster._core.definitions.metadata import TableMetadataSet
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import (
    DbClient,
    DbIOManager,
    DbTypeHandler,
    TableSlice,
)
from dagster._core.storage.upath_io_manager import escape_dotdot_segments, escape_leading_slash
from pydantic import Field, PrivateAttr

from dagster_influx.frames import (
    FrameKind,
    from_arrow,
    is_pandas,
    is_polars,
    to_arrow,
    wanted_kind,
)
from dagster_influx.resource import InfluxDB3Resource
from dagster_influx.storage import (
    AzureConfig,
    GcsConfig,
    LocalConfig,
    S3Config,
    resolve_env_options,
)
from dagster_influx.tables import refuse_shared_tables, table_for_asset
from influx_flight import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE, read_parquet
from influx_flight.time import format_time, parse_time, quote_ident

if TYPE_CHECKING:
    from upath import UPath

    from influx_flight import InfluxDB3Client

__all__ = [
    "InfluxDB3ArrowTypeHandler",
    "InfluxDB3DbClient",
    "InfluxDB3IOManager",
    "InfluxDB3PandasIOManager",
    "InfluxDB3PandasTypeHandler",
    "InfluxDB3PolarsTypeHandler",
    "ParquetIOManager",
    "arrow_table_metadata",
]

WriteMode = Literal["replace", "append", "upsert", "fail_if_exists"]
#: Unpartitioned outputs replace the table by default; partitioned ones upsert their window.
_WRITE_MODES: tuple[str, ...] = ("replace", "append", "upsert", "fail_if_exists")
_PREVIEW_ROWS = 5


# ---------------------------------------------------------------------------------------------
# metadata helpers (shared with the asset factory)
# ---------------------------------------------------------------------------------------------


def arrow_table_schema(schema: pa.Schema) -> TableSchema:
    """Dagster `TableSchema` of an Arrow schema (types as Arrow spells them)."""
    return TableSchema(columns=[TableColumn(name=f.name, type=str(f.type)) for f in schema])


def arrow_table_metadata(
    table: pa.Table | None,
    *,
    schema: pa.Schema | None = None,
    num_rows: int | None = None,
    partitioned: bool,
    preview_rows: int = _PREVIEW_ROWS,
) -> dict[str, Any]:
    """Row count (`dagster/partition_row_count` when partitioned), column schema and a preview."""
    rows = table.num_rows if num_rows is None and table is not None else (num_rows or 0)
    schema = table.schema if schema is None and table is not None else schema
    counts = TableMetadataSet(partition_row_count=rows) if partitioned else None
    metadata: dict[str, Any] = dict(counts or TableMetadataSet(row_count=rows))
    if schema is not None:
        metadata.update(TableMetadataSet(column_schema=arrow_table_schema(schema)))
    if table is not None and preview_rows > 0 and table.num_rows:
        metadata["preview"] = MetadataValue.md(_markdown_preview(table, preview_rows))
    return metadata


def _markdown_preview(table: pa.Table, rows: int) -> str:
    """A small Markdown table of the first rows (cells escaped and shortened)."""
    head = table.slice(0, rows)
    if "time" in head.column_names:  # time first, then the stored (alphabetical) order
        head = head.select(["time", *(n for n in head.column_names if n != "time")])

    def cell(value: object) -> str:
        text = "" if value is None else str(value)
        text = text.replace("|", "\\|").replace("\n", " ")
        return text if len(text) <= 40 else text[:37] + "..."

    names = head.column_names
    lines = ["| " + " | ".join(cell(n) for n in names) + " |", "|" + "---|" * len(names)]
    columns = [head.column(i).to_pylist() for i in range(len(names))]
    for r in range(head.num_rows):
        lines.append("| " + " | ".join(cell(col[r]) for col in columns) + " |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# query text for a table slice
# ---------------------------------------------------------------------------------------------


def slice_query(table_slice: TableSlice) -> tuple[str, dict[str, str]]:
    """`SELECT` for a table slice with `$params`; the window is half-open `[start, end)`."""
    columns = ", ".join(quote_ident(c) for c in table_slice.columns) if table_slice.columns else "*"
    conditions: list[str] = []
    params: dict[str, str] = {}
    for n, dim in enumerate(table_slice.partition_dimensions or ()):
        expr = quote_ident(dim.partition_expr)
        if isinstance(dim.partitions, TimeWindow):
            suffix = "" if n == 0 else f"_{n}"
            params[f"start{suffix}"] = format_time(dim.partitions.start)
            params[f"end{suffix}"] = format_time(dim.partitions.end)
            conditions.append(f"{expr} >= ${'start' + suffix} AND {expr} < ${'end' + suffix}")
        else:
            names = []
            for k, key in enumerate(dim.partitions):
                params[f"p{n}_{k}"] = str(key)
                names.append(f"$p{n}_{k}")
            conditions.append(f"{expr} IN ({', '.join(names)})" if names else "FALSE")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return f"SELECT {columns} FROM {quote_ident(table_slice.table)}{where}", params


def _render(sql: str, params: Mapping[str, str]) -> str:
    """The query with its parameters spelled out, for display in metadata only."""
    for name in sorted(params, key=len, reverse=True):
        sql = sql.replace(f"${name}", "'" + params[name].replace("'", "''") + "'")
    return sql


# ---------------------------------------------------------------------------------------------
# DbClient
# ---------------------------------------------------------------------------------------------


class InfluxDB3DbClient(DbClient["InfluxDB3Client"]):
    """What `DbIOManager` needs to know about InfluxDB 3.

    `delete_table_slice` deliberately does nothing: InfluxDB 3 cannot delete a time range, and
    writes of the same series and timestamps replace the stored points instead (see the module
    docstring).
    """

    def __init__(self, resource: InfluxDB3Resource) -> None:
        self._resource = resource

    @staticmethod
    def delete_table_slice(
        context: OutputContext, table_slice: TableSlice, connection: InfluxDB3Client
    ) -> None:
        """No-op: InfluxDB 3 has no range delete; writes upsert by series and time."""

    @staticmethod
    def ensure_schema_exists(
        context: OutputContext, table_slice: TableSlice, connection: InfluxDB3Client
    ) -> None:
        """No-op: InfluxDB 3 creates tables (and columns) on first write."""

    @staticmethod
    def get_select_statement(table_slice: TableSlice) -> str:
        sql, params = slice_query(table_slice)
        return _render(sql, params)

    @staticmethod
    def get_table_name(table_slice: TableSlice) -> str:
        return f"{table_slice.database}.{table_slice.table}"

    @contextmanager
    def connect(  # type: ignore[override]
        self, context: OutputContext | InputContext, table_slice: TableSlice
    ) -> Iterator[InfluxDB3Client]:
        with self._resource.get_client() as client:
            yield client


# ---------------------------------------------------------------------------------------------
# type handlers
# ---------------------------------------------------------------------------------------------


def _metadata_list(value: object, key: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, Sequence) and all(isinstance(v, str) for v in value):
        return list(value)
    raise ValueError(f"Asset metadata {key!r} must be a column name or a list of column names.")


def _time_column(context: OutputContext, table_slice: TableSlice) -> str:
    meta = context.definition_metadata or {}
    for dim in table_slice.partition_dimensions or ():
        if isinstance(dim.partitions, TimeWindow):
            return dim.partition_expr
    return str(meta.get("time_column", "time"))


def _as_ns(column: pa.ChunkedArray, name: str) -> pa.ChunkedArray:
    """Epoch nanoseconds of a timestamp column (naive timestamps are UTC, as InfluxDB's are)."""
    if pa.types.is_timestamp(column.type):
        return column.cast(pa.timestamp("ns", tz=column.type.tz)).cast(pa.int64())
    if pa.types.is_integer(column.type):
        return column.cast(pa.int64())
    raise ValueError(
        f"Column {name!r} is the time column but has type {column.type}; convert it to a"
        " timestamp (for pandas: pd.to_datetime(df[col], utc=True))."
    )


def check_slice(table: pa.Table, table_slice: TableSlice, time_column: str) -> None:
    """Refuse rows outside the partition: without range deletes they would land in another."""
    if time_column not in table.column_names:
        raise ValueError(
            f"Output for table {table_slice.table!r} has no time column {time_column!r}"
            f" (columns: {', '.join(table.column_names)}). Name it in the asset metadata"
            " 'partition_expr' (partitioned) or 'time_column'."
        )
    for dim in table_slice.partition_dimensions or ():
        if dim.partition_expr not in table.column_names:
            raise ValueError(
                f"partition_expr {dim.partition_expr!r} is not a column of the output"
                f" (columns: {', '.join(table.column_names)}); InfluxDB 3 partitions must"
                " name a column, not an expression."
            )
        column = table.column(dim.partition_expr)
        if isinstance(dim.partitions, TimeWindow):
            lo = parse_time(dim.partitions.start)
            hi = parse_time(dim.partitions.end)
            ns = _as_ns(column, dim.partition_expr)
            outside = pc.or_kleene(pc.less(ns, lo), pc.greater_equal(ns, hi))
            label = f"[{format_time(dim.partitions.start)}, {format_time(dim.partitions.end)})"
        else:
            keys = pa.array([str(k) for k in dim.partitions])
            outside = pc.invert(pc.is_in(column.cast(pa.string()), value_set=keys))
            label = f"partition keys {list(dim.partitions)}"
        bad = pc.sum(pc.fill_null(outside, True).cast(pa.int64())).as_py() or 0
        if bad:
            raise ValueError(
                f"{bad} of {table.num_rows} rows for table {table_slice.table!r} fall outside"
                f" the partition ({dim.partition_expr} {label}). InfluxDB 3 cannot delete or"
                " move them later, so filter the output to the partition's window."
            )


class InfluxDB3ArrowTypeHandler(DbTypeHandler[pa.Table]):
    """Stores `pyarrow.Table` outputs as points and loads a slice as a `pyarrow.Table`.

    Output metadata read from the asset definition: `tags` (tag columns; the other non-time
    columns become fields), `partition_expr` (time column of a time-partitioned asset),
    `time_column` (unpartitioned assets; default `time`), `precision` (default `ns`) and
    `write_mode` (`upsert` or `fail_if_exists`).
    """

    @property
    def supported_types(self) -> Sequence[type[object]]:
        return [pa.Table]

    def handle_output(
        self,
        context: OutputContext,
        table_slice: TableSlice,
        obj: pa.Table,
        connection: InfluxDB3Client,
    ) -> Mapping[str, Any]:
        meta = context.definition_metadata or {}
        tags = _metadata_list(meta.get("tags"), "tags")
        time_column = _time_column(context, table_slice)
        missing = [t for t in tags if t not in obj.column_names]
        if missing:
            raise ValueError(
                f"Tag columns {missing} named in the 'tags' metadata are not in the output"
                f" (columns: {', '.join(obj.column_names)})."
            )
        partitioned = bool(table_slice.partition_dimensions)
        mode = str(meta.get("write_mode", "upsert" if partitioned else "replace"))
        if mode not in _WRITE_MODES:
            raise ValueError(f"write_mode {mode!r} is not supported; use one of {_WRITE_MODES}.")
        if mode == "replace" and partitioned:
            raise ValueError(
                "write_mode 'replace' deletes the whole table, which a partition must not do"
                " (InfluxDB 3 cannot delete a time range). Partitioned assets upsert their window;"
                " use write_mode 'upsert' (the default) or 'fail_if_exists'."
            )
        check_slice(obj, table_slice, time_column)
        replaced = False
        if mode == "replace":  # validated above: only now is the old table dropped
            replaced = delete_table(connection, table_slice.database, table_slice.table)
        previous = _recorded_range(context) if not partitioned else None
        # an append onto rows whose range nobody recorded: the stored range stays unknown
        unknown_rows = (
            mode == "append"
            and not partitioned
            and previous is None
            and _table_exists(connection, table_slice)
        )
        if mode == "fail_if_exists":
            existing = _count_slice(connection, table_slice, previous)
            if existing:
                raise ValueError(
                    f"write_mode 'fail_if_exists': {existing} rows already stored in"
                    f" {table_slice.table!r} for this partition; InfluxDB 3 cannot delete them."
                    " Use write_mode 'upsert' to overwrite points with the same series and time."
                )
        result = connection.write(
            obj,
            measurement=table_slice.table,
            tags=tags,
            time_column=time_column,
            precision=str(meta.get("precision", "ns")),
            database=table_slice.database,
        )
        metadata = arrow_table_metadata(obj, partitioned=context.has_asset_partitions)
        metadata["dagster/storage_kind"] = "influxdb"
        if not partitioned:  # loads (and fail_if_exists counts) read this range in windows
            stored = _time_range(obj, time_column)
            if mode != "replace" and previous is not None:  # the table keeps its old rows
                stored = previous if stored is None else _union(previous, stored)
            if stored is not None and not unknown_rows:
                metadata[STORED_TIME_RANGE] = MetadataValue.json(
                    {"min_ns": stored[0], "max_ns": stored[1]}
                )
        metadata["write_mode"] = mode
        if mode == "replace":
            metadata["replaced_existing_table"] = replaced
        metadata.update(_write_result_metadata(result))
        return metadata

    def load_input(
        self, context: InputContext, table_slice: TableSlice, connection: InfluxDB3Client
    ) -> pa.Table:
        if table_slice.partition_dimensions and any(
            isinstance(d.partitions, Sequence) and not d.partitions
            for d in table_slice.partition_dimensions
        ):
            return pa.table({})
        sql, params = slice_query(table_slice)
        if not table_slice.partition_dimensions:
            stored = _last_stored_range(context)
            if stored is not None:
                return _load_in_windows(connection, table_slice, sql, stored)
        return connection.query(sql, params=params, database=table_slice.database).to_table()


#: Output metadata of unpartitioned outputs: the table's time range, epoch ns (inclusive); in
#: append mode the union with the previous materialisation's range. Loads and fail_if_exists
#: counts read that range in bounded windows; without it (a table written outside Dagster)
#: a load reads the whole table in one query.
STORED_TIME_RANGE = "stored_time_range"
#: Loads of unpartitioned tables query this much time at once: within InfluxDB 3 Core's query
#: file limit (432 files, about 72 hours at the default 10-minute gen1 duration).
LOAD_WINDOW = timedelta(hours=48)


def _time_range(obj: pa.Table, time_column: str) -> tuple[int, int] | None:
    if time_column not in obj.column_names or not obj.num_rows:
        return None
    ns = _as_ns(obj.column(time_column), time_column)
    lo, hi = pc.min(ns).as_py(), pc.max(ns).as_py()
    return None if lo is None else (int(lo), int(hi))


def _union(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return min(a[0], b[0]), max(a[1], b[1])


def _recorded_range(context: OutputContext) -> tuple[int, int] | None:
    """The range the asset's previous materialisation recorded (append mode grows it)."""
    if not context.has_asset_key:
        return None
    try:
        instance = context.step_context.instance
    except Exception:  # built without a run (direct IO manager calls): nothing recorded
        return None
    return _stored_range_of(instance, context.asset_key)


def _last_stored_range(context: InputContext) -> tuple[int, int] | None:
    """The stored range recorded by the asset's latest materialisation, if there is one."""
    try:
        instance, key = context.instance, context.asset_key
    except Exception:  # no instance or no asset key (e.g. direct IO manager calls)
        return None
    return _stored_range_of(instance, key)


def _stored_range_of(instance: Any, key: Any) -> tuple[int, int] | None:
    try:
        event = instance.get_latest_materialization_event(key)
    except Exception:
        return None
    mat = event.asset_materialization if event is not None else None
    value = mat.metadata.get(STORED_TIME_RANGE) if mat is not None else None
    data = getattr(value, "data", None)
    if not isinstance(data, dict) or "min_ns" not in data or "max_ns" not in data:
        return None
    return int(data["min_ns"]), int(data["max_ns"])


def _load_in_windows(
    connection: InfluxDB3Client, table_slice: TableSlice, sql: str, stored: tuple[int, int]
) -> pa.Table:
    """`sql` over the stored range, one time-bounded query per `LOAD_WINDOW`."""
    from influx_flight.time import split_range

    bounded = f"{sql} WHERE time >= $start AND time < $end"
    parts = [
        connection.query(
            bounded,
            params={"start": format_time(lo), "end": format_time(hi)},
            database=table_slice.database,
        ).to_table()
        for lo, hi in split_range(stored[0], stored[1] + 1, LOAD_WINDOW)
    ]
    parts = [p for p in parts if p.num_rows] or parts[:1]
    return pa.concat_tables(parts, promote_options="permissive") if len(parts) > 1 else parts[0]


def is_missing_table(err: BaseException) -> bool:
    """Whether a query failed only because its database or table does not exist (yet)."""
    from influx_flight import DatabaseNotFoundError, TableNotFoundError

    return isinstance(err, DatabaseNotFoundError | TableNotFoundError)


def delete_table(connection: InfluxDB3Client, database: str | None, table: str) -> bool:
    """Delete a table with the core's `client.delete_table`; False if it did not exist.

    InfluxDB 3 Core deletes whole tables only. A missing table (or database) means there is
    nothing to replace.
    """
    from influx_flight import AuthenticationError

    try:
        connection.delete_table(table, database=database)
    except AuthenticationError as err:
        raise AuthenticationError(
            f"{err} The token needs permission to manage tables (to replace"
            f" {table!r}); or set write_mode 'append'.",
            host=err.host,
            database=err.database,
        ) from err
    except Exception as err:
        if is_missing_table(err):
            return False
        raise
    return True


def _count_slice(
    connection: InfluxDB3Client, table_slice: TableSlice, recorded: tuple[int, int] | None
) -> int:
    """Rows already stored in the slice, in queries of at most `LOAD_WINDOW` (Core's limit).

    A time partition bounds the count by its window; an unpartitioned table by the range its
    materialisations recorded. An unpartitioned table with no recorded range that exists
    (written outside this asset) cannot be counted within the limit: it is refused.
    """
    from influx_flight import InfluxDB3Error
    from influx_flight.time import split_range

    sql, params = slice_query(table_slice._replace(columns=None))
    sql = sql.replace("SELECT *", "SELECT count(*) AS n", 1)
    windows = [
        (d.partitions.start, d.partitions.end)
        for d in table_slice.partition_dimensions or ()
        if isinstance(d.partitions, TimeWindow)
    ]
    if windows:
        lo, hi = parse_time(windows[0][0]), parse_time(windows[0][1])
    elif recorded is not None:
        lo, hi = recorded[0], recorded[1] + 1
    elif not table_slice.partition_dimensions and _table_exists(connection, table_slice):
        raise ValueError(
            f"write_mode 'fail_if_exists': table {table_slice.table!r} already exists and no"
            " materialisation of this asset recorded its time range, so its rows cannot be"
            " counted within InfluxDB 3 Core's query file limit. Delete the table, or use"
            " write_mode 'replace' or 'append'."
        )
    else:
        lo = hi = None
    join = " AND " if " WHERE " in sql else " WHERE "
    total = 0
    try:
        if lo is None or hi is None:  # static partitions only: bounded by their tag values
            bounded = [(sql, params)]
        else:
            bounded = [
                (
                    f'{sql}{join}"time" >= $window_start AND "time" < $window_end',
                    {**params, "window_start": format_time(a), "window_end": format_time(b)},
                )
                for a, b in split_range(lo, hi, LOAD_WINDOW)
            ]
        for text, values in bounded:
            table = connection.query(text, params=values, database=table_slice.database).to_table()
            total += int(table.column(0)[0].as_py() or 0) if table.num_rows else 0
    except InfluxDB3Error as err:
        if is_missing_table(err):  # nothing was ever written there
            return 0
        raise
    return total


def _table_exists(connection: InfluxDB3Client, table_slice: TableSlice) -> bool:
    """Whether the table exists, from the catalog (no data scan, so no file limit)."""
    from influx_flight import InfluxDB3Error

    try:
        found = connection.query(
            "SELECT table_name FROM information_schema.tables"
            " WHERE table_schema = 'iox' AND table_name = $table",
            params={"table": table_slice.table},
            database=table_slice.database,
        ).to_table()
    except InfluxDB3Error as err:
        if is_missing_table(err):  # no such database
            return False
        raise
    return found.num_rows > 0


def _write_result_metadata(result: object) -> dict[str, Any]:
    """Counts from the core's WriteResult (whatever of them it reports)."""
    out: dict[str, Any] = {}
    for name in ("lines_written", "rows_skipped", "requests", "bytes_sent"):
        value = getattr(result, name, None)
        if isinstance(value, int):
            out[name] = value
    return out


class _FrameTypeHandler(DbTypeHandler["Any"]):
    """A frame type stored and loaded by way of Arrow (`dagster_influx.frames`)."""

    kind: FrameKind

    def handle_output(
        self, context: OutputContext, table_slice: TableSlice, obj: Any, connection: Any
    ) -> Mapping[str, Any]:
        table = to_arrow(obj, time_column=_time_column(context, table_slice))
        return InfluxDB3ArrowTypeHandler().handle_output(context, table_slice, table, connection)

    def load_input(self, context: InputContext, table_slice: TableSlice, connection: Any) -> Any:
        table = InfluxDB3ArrowTypeHandler().load_input(context, table_slice, connection)
        return from_arrow(table, self.kind)


class InfluxDB3PandasTypeHandler(_FrameTypeHandler):
    """Stores and loads `pandas.DataFrame` (a `DatetimeIndex` is the time column; timestamps
    load UTC-aware)."""

    kind: FrameKind = "pandas"

    @property
    def supported_types(self) -> Sequence[type[object]]:
        import pandas as pd

        return [pd.DataFrame]


class InfluxDB3PolarsTypeHandler(_FrameTypeHandler):
    """Stores and loads `polars.DataFrame` (the `polars` extra)."""

    kind: FrameKind = "polars"

    @property
    def supported_types(self) -> Sequence[type[object]]:
        import polars as pl

        return [pl.DataFrame]


# ---------------------------------------------------------------------------------------------
# IO managers
# ---------------------------------------------------------------------------------------------


class _InfluxDbIOManager(DbIOManager):
    """`DbIOManager` whose table slices name an InfluxDB database and table by our rule.

    Dagster's rule puts the key prefix in `TableSlice.schema`; here it selects the database
    (metadata `database` > IO manager `database` > key prefix > resource database), and
    metadata `table` may rename the table.
    """

    def __init__(self, *, database_setting: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._database_setting = database_setting

    def _get_table_slice(
        self, context: OutputContext | InputContext, output_context: OutputContext
    ) -> TableSlice:
        table_slice = super()._get_table_slice(context, output_context)
        if not context.has_asset_key:
            return table_slice
        ref = table_for_asset(
            output_context.asset_key,
            output_context.definition_metadata,
            database=self._database_setting,
        )
        return table_slice._replace(
            database=ref.database or table_slice.database, table=ref.table, schema=""
        )

    def handle_output(self, context: OutputContext, obj: object) -> None:
        if context.has_asset_key:
            refuse_shared_tables(context, context.asset_key)
        super().handle_output(context, obj)


class InfluxDB3IOManager(ConfigurableIOManagerFactory):
    """Stores Arrow tables and pandas DataFrames in InfluxDB 3; loads a partition's slice.

    The table (measurement) is the last part of the asset key and the database its prefix
    (`["site_a", "readings"]` is `site_a.readings`), else the IO manager's `database`, else the
    resource's; asset metadata `database` / `table` override both (see `dagster_influx.tables`).
    Two assets that would share a table are refused before anything is written.
    Time-partitioned assets need `metadata={"partition_expr": "time"}`; name tag columns with
    `metadata={"tags": [...]}`. Inputs annotated `pd.DataFrame` load as pandas, anything else
    as `pyarrow.Table`. Re-materialising overwrites points with the same series and time (there
    is no range delete in InfluxDB 3); rows outside the partition's window are refused.

    Examples:
        .. code-block:: python

            import dagster as dg
            import pyarrow as pa
            from dagster_influx import InfluxDB3IOManager, InfluxDB3Resource

            hourly = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00")

            @dg.asset(partitions_def=hourly, io_manager_key="influx_io",
                      metadata={"partition_expr": "time", "tags": ["room"]})
            def room_scores(context: dg.AssetExecutionContext) -> pa.Table:
                start, _ = context.partition_time_window
                return pa.table({"time": [start], "room": ["Kitchen"], "score": [1.0]})

            defs = dg.Definitions(
                assets=[room_scores],
                resources={"influx_io": InfluxDB3IOManager(influxdb=InfluxDB3Resource(
                    host="http://127.0.0.1:8181", database="home",
                    token=dg.EnvVar("INFLUXDB3_AUTH_TOKEN")))},
            )
    """

    influxdb: InfluxDB3Resource = Field(description="Connection used for writes and loads.")
    database: str | None = Field(
        default=None,
        description=(
            "Database for every asset of this IO manager (like Dagster's 'schema' setting);"
            " default: the asset key's prefix, else the resource's database. Asset metadata"
            " 'database' still wins."
        ),
    )

    @staticmethod
    def type_handlers() -> Sequence[DbTypeHandler]:
        """Arrow always; pandas and polars when they are installed."""
        import importlib.util

        handlers: list[DbTypeHandler] = [InfluxDB3ArrowTypeHandler()]
        if importlib.util.find_spec("pandas") is not None:
            handlers.append(InfluxDB3PandasTypeHandler())
        if importlib.util.find_spec("polars") is not None:
            handlers.append(InfluxDB3PolarsTypeHandler())
        return handlers

    @staticmethod
    def default_load_type() -> type | None:
        return pa.Table

    def create_io_manager(self, context: Any) -> DbIOManager:
        return _InfluxDbIOManager(
            database_setting=self.database,
            type_handlers=self.type_handlers(),
            db_client=InfluxDB3DbClient(self.influxdb),
            database=self.influxdb.database,
            io_manager_name=type(self).__name__,
            default_load_type=self.default_load_type(),
        )


class InfluxDB3PandasIOManager(InfluxDB3IOManager):
    """`InfluxDB3IOManager` whose unannotated inputs load as pandas DataFrames."""

    @staticmethod
    def default_load_type() -> type | None:
        import pandas as pd

        return pd.DataFrame


class ParquetIOManager(ConfigurableIOManager, UPathIOManager):
    """Parquet files under a UPath: `<base_dir>/<asset key path>/<partition>.parquet`.

    Accepts `pyarrow.Table`, `pyarrow.RecordBatchReader`, the core's `QueryResult` (streamed
    batch by batch, never held whole) and pandas DataFrames. Files are written under a
    temporary name and moved into place when complete, so a failed step leaves the previous
    file intact. Hourly partition keys such as `2026-01-01-03:00` become `2026-01-01-0300`
    (colons are awkward in object keys and on Windows). Inputs load as `pyarrow.Table`, or as a
    DataFrame when annotated `pd.DataFrame`; several partitions load as a dict by key.

    Examples:
        .. code-block:: python

            import dagster as dg
            from dagster_influx import ParquetIOManager

            defs = dg.Definitions(
                assets=[...],
                resources={"parquet_io": ParquetIOManager(base_dir="s3://bucket/exports")},
            )
    """

    extension: ClassVar[str] = ".parquet"

    base_dir: str | None = Field(
        default=None,
        description="Local directory or fsspec URL (s3://, gs://, memory://). Default: the"
        " Dagster instance's storage directory.",
    )
    storage: LocalConfig | S3Config | GcsConfig | AzureConfig = Field(
        default_factory=LocalConfig,
        discriminator="provider",
        description=(
            "Typed storage settings (local, s3, gcs, azure) whose secrets may be EnvVars;"
            " resolved when a run starts, never logged."
        ),
    )
    cloud_storage_options: dict[str, Any] = Field(
        default_factory=dict,
        description=(
            "Extra fsspec storage options for base_dir (merged over 'storage'); values given as"
            " EnvVar are read when a run starts."
        ),
    )
    compression: str = Field(default=DEFAULT_COMPRESSION, description="Parquet compression codec.")
    row_group_size: int = Field(
        default=DEFAULT_ROW_GROUP_SIZE,
        description="Rows per Parquet row group (bounds memory while writing).",
    )

    _base_path: UPath = PrivateAttr()

    def __repr_args__(self) -> Any:  # option values may be secrets: show only their names
        for name, value in super().__repr_args__():
            if name == "cloud_storage_options" and isinstance(value, dict):
                value = {k: "<hidden>" for k in value}
            yield name, value

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for base_dir (call at run time: EnvVars resolve then)."""
        return {**self.storage.storage_options(), **resolve_env_options(self.cloud_storage_options)}

    def setup_for_execution(self, context: Any) -> None:
        from upath import UPath

        if self.base_dir:
            self._base_path = UPath(self.base_dir, **self.storage_options())
        else:
            instance = context.instance
            if instance is None:
                raise ValueError("ParquetIOManager needs base_dir when there is no instance.")
            self._base_path = UPath(instance.storage_directory())

    def handle_output(self, context: OutputContext, obj: Any) -> None:
        """One file per partition; a range run's table is split by its time column."""
        keys = list(context.asset_partition_keys) if context.has_asset_partitions else []
        if len(keys) <= 1 or obj is None:
            return super().handle_output(context, obj)
        partitions_def = context.asset_partitions_def
        if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
            raise TypeError(
                "ParquetIOManager stores a range of partitions only for time-window partitions;"
                " use a multi-run backfill policy for other partitions."
            )
        if is_pandas(obj) or is_polars(obj):
            obj = to_arrow(obj, time_column=_output_time_column(context))
        if not isinstance(obj, pa.Table):
            raise TypeError(
                "ParquetIOManager splits a range run's output into one file per partition, which"
                f" needs a table (pyarrow, pandas, polars), not a stream ({type(obj).__name__});"
                " return a table or use a multi-run backfill policy."
            )
        time_column = _output_time_column(context)
        if time_column not in obj.column_names:
            raise ValueError(
                f"ParquetIOManager splits a range run by the time column {time_column!r}, which"
                f" the output lacks (columns: {', '.join(obj.column_names)})."
            )
        ns = obj.column(time_column).cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64())
        paths = self._get_paths_for_partitions(context)
        rows: dict[str, int] = {}
        for key in keys:
            window = partitions_def.time_window_for_partition_key(key)
            lo, hi = parse_time(window.start), parse_time(window.end)
            mask = pc.and_(pc.greater_equal(ns, lo), pc.less(ns, hi))
            part = obj.filter(mask)
            path = paths[key]
            self.make_directory(path.parent)
            self._write_file(part, path)
            rows[key] = part.num_rows
        metadata = arrow_table_metadata(obj, partitioned=True)
        del metadata["dagster/partition_row_count"]
        metadata["rows_in_range"] = obj.num_rows
        metadata["rows_by_partition"] = MetadataValue.json(rows)
        metadata["dagster/storage_kind"] = "parquet"
        metadata["paths"] = MetadataValue.json({k: str(v) for k, v in paths.items()})
        context.add_output_metadata(metadata)
        return None

    def _write_file(self, table: pa.Table, path: UPath) -> Any:
        from influx_flight import write_parquet

        return write_parquet(
            table.to_batches(),
            table.schema,
            path,
            compression=self.compression,
            row_group_size=self.row_group_size,
        )

    def make_safe_partition_path(self, base_path: UPath, partition: str) -> UPath:
        safe = escape_dotdot_segments(escape_leading_slash(partition.replace(":", "")))
        return base_path / safe

    def dump_to_path(self, context: OutputContext, obj: Any, path: UPath) -> None:
        from influx_flight import QueryResult, write_parquet

        options = {"compression": self.compression, "row_group_size": self.row_group_size}
        preview: pa.Table | None = None
        if isinstance(obj, QueryResult):
            result = obj.to_parquet(path, **options)
            schema = obj.schema
        else:
            if is_pandas(obj) or is_polars(obj):
                obj = to_arrow(obj, time_column=_output_time_column(context))
            if isinstance(obj, pa.Table):
                preview, schema, batches = obj, obj.schema, obj.to_batches()
            elif isinstance(obj, pa.RecordBatchReader):
                schema, batches = obj.schema, obj
            else:
                raise TypeError(
                    f"ParquetIOManager stores pyarrow.Table, pyarrow.RecordBatchReader,"
                    f" influx_flight.QueryResult, pandas or polars DataFrame outputs, not"
                    f" {type(obj).__name__}."
                )
            result = write_parquet(batches, schema, path, **options)
        metadata = arrow_table_metadata(
            preview, schema=schema, num_rows=result.rows, partitioned=context.has_asset_partitions
        )
        metadata["dagster/storage_kind"] = "parquet"
        metadata["size_bytes"] = result.bytes
        context.add_output_metadata(metadata)

    def load_from_path(self, context: InputContext, path: UPath) -> Any:
        table = read_parquet(path)
        return from_arrow(table, wanted_kind(context.dagster_type.typing_type))


def _output_time_column(context: OutputContext) -> str:
    meta = context.definition_metadata or {}
    return str(meta.get("partition_expr") or meta.get("time_column") or "time")
