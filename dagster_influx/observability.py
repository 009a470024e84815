"""Observing raw InfluxDB 3 tables and checking what landed in them.

* `build_table_observation(...)`: an observable source asset for a table that something other
  than Dagster writes (Telegraf, devices). Each observation records the table's latest `time`
  as `dagster/last_updated_timestamp` and as the data version, so downstream assets show as
  stale when new data arrives.
* Asset-check factories, partition-aware: with a time-window `partitions_def` each check looks
  only at the partition's `[start, end)`:
  `build_partition_has_data_check`, `build_no_nulls_check`, `build_value_range_check`.

All queries are parameterised (`$start`, `$end`) and identifiers quoted by the core.
"""

import bisect
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    AssetsDefinition,
    AssetSpec,
    AutomationCondition,
    DataVersion,
    DataVersionsByPartition,
    MetadataValue,
    ObserveResult,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
    asset_check,
    multi_observable_source_asset,
    observable_source_asset,
)
from dagster._core.definitions.asset_key import CoercibleToAssetKey
from dagster._core.definitions.data_version import DATA_VERSION_TAG
from dagster._utils.warnings import BetaWarning, PreviewWarning

from dagster_influx.io_managers import is_missing_table
from dagster_influx.resource import InfluxDB3Resource
from influx_flight.time import format_time, quote_ident

__all__ = [
    "build_no_nulls_check",
    "build_partition_has_data_check",
    "build_table_observation",
    "build_value_range_check",
    "fetch_last_updated_timestamps",
]


#: Default lookback of observations: within InfluxDB 3 Core's query file limit (432 Parquet
#: files per query, about 72 hours of data at the default 10-minute gen1 duration).
DEFAULT_LOOKBACK = timedelta(hours=48)


def fetch_last_updated_timestamps(
    influxdb: InfluxDB3Resource,
    tables: Sequence[str],
    *,
    time_column: str = "time",
    database: str | None = None,
    since: datetime | None = None,
    lookback: timedelta | str | None = DEFAULT_LOOKBACK,
) -> dict[str, datetime | None]:
    """Latest `time` (UTC) per table; `None` for an empty or missing table (or none since).

    The InfluxDB counterpart of the Snowflake / BigQuery resources' function of the same name.
    The scan is bounded: InfluxDB 3 Core refuses queries that would read more than its file
    limit (432 files, about 72 hours at default settings), so an unbounded `max(time)` over a
    long-lived table fails there. `since` is the lower bound; without it, the last `lookback`
    (default 48 hours). `lookback=None` (and no `since`) scans the whole table.
    """
    from influx_flight import InfluxDB3Error

    if since is None and lookback is not None:
        since = datetime.now(UTC) - _as_timedelta(lookback)
    out: dict[str, datetime | None] = {}
    for table in tables:
        col = quote_ident(time_column)
        sql = f"SELECT max({col}) AS latest FROM {quote_ident(table)}"
        params: dict[str, str] = {}
        if since is not None:
            sql += f" WHERE {col} >= $since"
            params["since"] = format_time(since)
        try:
            result = influxdb.query(sql, params=params or None, database=database)
        except InfluxDB3Error as err:
            if not is_missing_table(err):
                raise
            out[table] = None
            continue
        value = result.column(0)[0].as_py() if result.num_rows else None
        out[table] = _aware(value)
    return out


def _aware(value: object) -> datetime | None:
    if not isinstance(value, datetime):
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def build_table_observation(
    table: str,
    *,
    key: CoercibleToAssetKey | None = None,
    partitions_def: PartitionsDefinition | None = None,
    lookback: timedelta | str = DEFAULT_LOOKBACK,
    resource_key: str = "influxdb",
    time_column: str = "time",
    database: str | None = None,
    description: str | None = None,
    group_name: str | None = None,
    automation_condition: AutomationCondition | None = None,
) -> AssetsDefinition:
    """Observable source asset for a raw table written outside Dagster.

    Unpartitioned: the latest `time` within the lookback is the data version (and
    `dagster/last_updated_timestamp`); an observation that finds nothing in the lookback reports
    no new version. With time-window `partitions_def`: every partition window that overlaps
    the lookback gets its own data version, its row count and latest time, so a late point
    written into an old window marks exactly that partition (and the downstream partitions
    that depend on it) stale. Both are one bounded query per observation.

    Args:
        table: Table (measurement) to observe.
        key: Asset key; defaults to the table name. Its prefix names the database.
        partitions_def: Time-window partitions, normally those of the assets built from the
            table (so that partition `k` of the source feeds partition `k` downstream).
        lookback: How far back from now (or from the partitions' end, if earlier) each
            observation looks. Keep it within the server's query file limit; the default, 48
            hours, is within Core's at default settings. Late data older than this is not seen.
        resource_key: Key of the `InfluxDB3Resource`.
        time_column: The table's time column.
        database: Database to read; default: the key's prefix, else the resource's.

    Examples:
        .. code-block:: python

            daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")
            cpu = build_table_observation("cpu", partitions_def=daily, lookback="3d")
    """
    from dagster_influx.tables import table_for_asset
    from influx_flight.time import parse_duration

    asset_key = AssetKey.from_coercible(key) if key is not None else AssetKey([table])
    database = database or table_for_asset(asset_key).database
    span = (
        lookback
        if isinstance(lookback, timedelta)
        else timedelta(microseconds=parse_duration(lookback, "lookback") // 1000)
    )
    if span <= timedelta(0):
        raise ValueError(f"lookback must be positive, got {lookback!r}.")
    text = description or f"Raw InfluxDB 3 table {table!r}, written outside Dagster."
    if partitions_def is not None:
        if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
            raise TypeError(
                "build_table_observation: partitions_def must be time-window partitions (each"
                f" data version covers a time window), got {type(partitions_def).__name__}."
            )
        return _partitioned_observation(
            table,
            asset_key,
            partitions_def,
            span,
            resource_key,
            time_column,
            database,
            text,
            group_name,
            automation_condition,
        )
    spec = AssetSpec(
        key=asset_key,
        description=text,
        group_name=group_name,
        kinds={"influxdb"},
        metadata={"table": table, "lookback": str(span)},
        automation_condition=automation_condition,
    )

    def _observe(context: AssetExecutionContext) -> ObserveResult:
        influxdb: InfluxDB3Resource = getattr(context.resources, resource_key)
        since = datetime.now(UTC) - span
        latest = fetch_last_updated_timestamps(
            influxdb, [table], time_column=time_column, database=database, since=since
        )[table]
        if latest is None:  # nothing in the lookback: no evidence of a change
            return ObserveResult(
                asset_key=asset_key,
                metadata={"latest_time": MetadataValue.text(f"no rows since {format_time(since)}")},
            )
        return ObserveResult(
            asset_key=asset_key,
            data_version=DataVersion(format_time(latest)),
            metadata={
                "dagster/last_updated_timestamp": MetadataValue.timestamp(latest),
                "latest_time": MetadataValue.text(format_time(latest)),
            },
        )

    with _quiet_beta():  # observable sources are @beta in Dagster 1.13
        return multi_observable_source_asset(
            specs=[spec],
            name=f"observe_{asset_key.to_python_identifier()}",
            required_resource_keys={resource_key},
        )(_observe)


def observed_windows(
    partitions_def: TimeWindowPartitionsDefinition, lookback: timedelta, now: datetime
) -> list[tuple[str, datetime, datetime]]:
    """(key, start, end) of the partitions that overlap `[anchor - lookback, anchor)`, where
    the anchor is now or the partitions' end, whichever comes first."""
    last = partitions_def.get_last_partition_window()
    if last is None:
        return []
    anchor = min(now, last.end)
    lo = anchor - lookback
    first = partitions_def.get_first_partition_window()
    if first is not None and lo < first.start:
        lo = first.start
    key = partitions_def.get_partition_key_for_timestamp(lo.timestamp())
    window = partitions_def.time_window_for_partition_key(key)
    out = []
    while window is not None and window.start < anchor:
        out.append((window.start.strftime(partitions_def.fmt), window.start, window.end))
        window = partitions_def.get_next_partition_window(window.end)
    return out


#: date_bin strides tried (largest first) to group the lookback into partition windows.
_STRIDES = (
    (86_400, "1 day"),
    (3_600, "1 hour"),
    (60, "1 minute"),
    (1, "1 second"),
)


def _stride(windows: Sequence[tuple[str, datetime, datetime]]) -> tuple[int, str]:
    """The largest stride whose bins never straddle a partition boundary."""
    bounds = {int(w.timestamp()) for _, s, e in windows for w in (s, e)}
    for seconds, interval in _STRIDES:
        if all(b % seconds == 0 for b in bounds):
            return seconds, interval
    return 1, "1 second"


def _partitioned_observation(
    table: str,
    asset_key: AssetKey,
    partitions_def: TimeWindowPartitionsDefinition,
    lookback: timedelta,
    resource_key: str,
    time_column: str,
    database: str | None,
    description: str,
    group_name: str | None,
    automation_condition: AutomationCondition | None,
) -> AssetsDefinition:
    def _observe(context: Any) -> DataVersionsByPartition:
        from influx_flight import InfluxDB3Error

        influxdb: InfluxDB3Resource = getattr(context.resources, resource_key)
        windows = observed_windows(partitions_def, lookback, datetime.now(UTC))
        if not windows:
            return DataVersionsByPartition({})
        _, interval = _stride(windows)
        col = quote_ident(time_column)
        sql = (
            f"SELECT date_bin(INTERVAL '{interval}', {col}) AS bin, count(*) AS n,"
            f" max({col}) AS latest FROM {quote_ident(table)}"
            f" WHERE {col} >= $start AND {col} < $end GROUP BY 1"
        )
        params = {"start": format_time(windows[0][1]), "end": format_time(windows[-1][2])}
        try:
            result = influxdb.query(sql, params=params, database=database)
        except InfluxDB3Error as err:
            if not is_missing_table(err):
                raise
            result = None
        rows = [0] * len(windows)
        latest: list[datetime | None] = [None] * len(windows)
        starts = [w[1] for w in windows]
        if result is not None:
            for b, n, t in zip(
                *(result.column(c).to_pylist() for c in ("bin", "n", "latest")), strict=True
            ):
                i = bisect.bisect_right(starts, _aware(b)) - 1
                if i < 0 or _aware(b) >= windows[i][2]:
                    continue
                rows[i] += int(n)
                t = _aware(t)
                if t is not None and (latest[i] is None or t > latest[i]):
                    latest[i] = t
        for (key, start, end), n, t in zip(windows, rows, latest, strict=True):
            version = f"{n} rows, latest {format_time(t)}" if t is not None else "no rows"
            metadata: dict[str, Any] = {
                "rows": n,
                "time_range": MetadataValue.text(f"[{format_time(start)}, {format_time(end)})"),
            }
            if t is not None:
                metadata["dagster/last_updated_timestamp"] = MetadataValue.timestamp(t)
            context.log_event(
                AssetObservation(
                    asset_key=asset_key,
                    partition=key,
                    tags={DATA_VERSION_TAG: version},
                    metadata=metadata,
                )
            )
        context.log.info(
            f"Observed {len(windows)} partition(s) of {table} over"
            f" [{params['start']}, {params['end']}) in one query"
        )
        return DataVersionsByPartition({})  # each partition's version was logged above

    with _quiet_beta():
        return observable_source_asset(
            key=asset_key,
            partitions_def=partitions_def,
            description=description,
            group_name=group_name,
            metadata={"table": table, "lookback": str(lookback)},
            required_resource_keys={resource_key},
            automation_condition=automation_condition,
        )(_observe)


# ---------------------------------------------------------------------------------------------
# asset checks
# ---------------------------------------------------------------------------------------------


@contextmanager
def _quiet_beta() -> Iterator[None]:
    """Silence Dagster's beta/preview notices for features this module chose on purpose."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)
        warnings.simplefilter("ignore", PreviewWarning)
        yield


def _window(start: datetime, end: datetime, time_column: str) -> tuple[str, dict[str, str]]:
    """WHERE clause and params of the half-open window `[start, end)`."""
    params = {"start": format_time(start), "end": format_time(end)}
    col = quote_ident(time_column)
    return f" WHERE {col} >= $start AND {col} < $end", params


def _time_range(params: dict[str, str]) -> dict[str, Any]:
    return {"time_range": MetadataValue.text(f"[{params['start']}, {params['end']})")}


_WHOLE_TABLE: dict[str, Any] = {"time_range": MetadataValue.text("whole table")}


def _as_timedelta(value: timedelta | str) -> timedelta:
    from influx_flight.time import parse_duration

    span = (
        value
        if isinstance(value, timedelta)
        else timedelta(microseconds=parse_duration(value, "lookback") // 1000)
    )
    if span <= timedelta(0):
        raise ValueError(f"lookback must be positive, got {value!r}.")
    return span


def _plain_metadata(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-able values of a check's metadata (without its query text)."""
    out = {}
    for name, value in metadata.items():
        if name in ("query", "time_range"):
            continue
        value = getattr(value, "value", value)
        if isinstance(value, str | int | float | bool) or value is None:
            out[name] = value
    return out


def _asset_database(asset: CoercibleToAssetKey | AssetsDefinition) -> str | None:
    from dagster_influx.tables import table_for_asset

    if isinstance(asset, AssetsDefinition):
        key = asset.key
        return table_for_asset(key, asset.metadata_by_key.get(key)).database
    return table_for_asset(AssetKey.from_coercible(asset)).database


def _run(
    context: AssetCheckExecutionContext,
    resource_key: str,
    sql: str,
    params: dict[str, str],
    database: str | None,
) -> pa.Table | None:
    """Run the check query; `None` when the table does not exist (yet)."""
    from influx_flight import InfluxDB3Error

    influxdb: InfluxDB3Resource = getattr(context.resources, resource_key)
    try:
        return influxdb.query(sql, params=params, database=database)
    except InfluxDB3Error as err:
        if is_missing_table(err):
            return None
        raise


def _check_partitions(
    partitions_def: PartitionsDefinition | None,
) -> TimeWindowPartitionsDefinition | None:
    if partitions_def is not None and not isinstance(
        partitions_def, TimeWindowPartitionsDefinition
    ):
        raise TypeError(
            "InfluxDB checks are scoped by time: partitions_def must be a time-window partitions"
            f" definition (hourly, daily, ...), got {type(partitions_def).__name__}."
        )
    return partitions_def


@dataclass(frozen=True)
class _Scope:
    """What every window check reads, and how: the arguments all check builders share."""

    table: str
    partitions_def: PartitionsDefinition | None
    time_column: str
    resource_key: str
    database: str | None
    blocking: bool
    lookback: timedelta | str | None


def _window_check(
    asset: CoercibleToAssetKey | AssetsDefinition,
    scope: _Scope,
    *,
    name: str,
    description: str,
    select: str,
    evaluate: Callable[[dict[str, Any], dict[str, Any], str], AssetCheckResult],
) -> AssetChecksDefinition:
    """An asset check running `SELECT <select> FROM <table>` over the partition's window.

    Unpartitioned checks read the last `lookback` (default 48 hours: InfluxDB 3 Core refuses a
    query over more than its file limit, about 72 hours by default); `lookback=None` reads the
    whole table.

    `evaluate(row, metadata, sql)` turns the query's single row (empty when the table does not
    exist yet) and the window's metadata into the result; the query, the window and the
    resource handling live here once for every check.
    """
    partitions = _check_partitions(scope.partitions_def)
    lookback = None if scope.lookback is None else _as_timedelta(scope.lookback)
    # the checked asset's database: its metadata, else its key prefix
    database = scope.database if scope.database is not None else _asset_database(asset)
    table, time_column, resource_key = scope.table, scope.time_column, scope.resource_key

    def _evaluate_window(
        context: AssetCheckExecutionContext, where: str, params: dict[str, str]
    ) -> AssetCheckResult:
        sql = f"SELECT {select} FROM {quote_ident(table)}{where}"
        result = _run(context, resource_key, sql, params, database)
        row: dict[str, Any] = {}
        if result is not None and result.num_rows:
            row = {col: result.column(col)[0].as_py() for col in result.column_names}
        return evaluate(row, _time_range(params) if params else _WHOLE_TABLE, sql)

    def _check(context: AssetCheckExecutionContext) -> AssetCheckResult:
        if partitions is None:
            if lookback is None:
                return _evaluate_window(context, "", {})
            now = datetime.now(UTC)
            return _evaluate_window(context, *_window(now - lookback, now, time_column))
        keys = list(context.partition_keys)
        if len(keys) == 1:
            start, end = context.partition_time_window
            return _evaluate_window(context, *_window(start, end, time_column))
        # A range run: each partition is judged on its own window, so one empty day fails the
        # check even when the range as a whole holds enough rows.
        results: dict[str, AssetCheckResult] = {}
        for key in keys:
            window = partitions.time_window_for_partition_key(key)
            results[key] = _evaluate_window(
                context, *_window(window.start, window.end, time_column)
            )
        failed = [key for key, result in results.items() if not result.passed]
        start, end = context.partition_time_window
        first = next(iter(results.values()))
        return AssetCheckResult(
            passed=not failed,
            severity=first.severity,
            description=(
                f"{len(failed)} of {len(keys)} partitions failed: {', '.join(failed)}"
                if failed
                else f"all {len(keys)} partitions passed"
            ),
            metadata={
                **_time_range({"start": format_time(start), "end": format_time(end)}),
                "partitions_checked": len(keys),
                "failed_partitions": MetadataValue.json(failed),
                "by_partition": MetadataValue.json(
                    {key: _plain_metadata(result.metadata) for key, result in results.items()}
                ),
            },
        )

    with _quiet_beta():  # partitioned asset checks are in preview in Dagster 1.13
        return asset_check(
            asset=asset,
            name=name,
            description=description,
            blocking=scope.blocking,
            required_resource_keys={resource_key},
            partitions_def=partitions,
        )(_check)


def build_partition_has_data_check(
    asset: CoercibleToAssetKey | AssetsDefinition,
    *,
    table: str,
    partitions_def: PartitionsDefinition | None = None,
    min_rows: int = 1,
    time_column: str = "time",
    resource_key: str = "influxdb",
    database: str | None = None,
    name: str = "partition_has_data",
    blocking: bool = False,
    lookback: timedelta | str | None = DEFAULT_LOOKBACK,
) -> AssetChecksDefinition:
    """Check that at least `min_rows` rows are stored in the partition's window.

    Args:
        asset: The asset checked (its key or definition).
        table: Table the asset's data lives in.
        partitions_def: The asset's time-window partitions; `None` checks the last `lookback`.
        lookback: Unpartitioned only: the window checked, ending now (default 48 hours, within
            Core's query file limit); `None` reads the whole table, which Core refuses once the
            table holds more than its file limit (about 72 hours).
        min_rows: Fewest rows that count as "arrived".
        blocking: Stop downstream assets of the same run when the check fails.
    """
    if min_rows < 1:
        raise ValueError(f"min_rows must be at least 1, got {min_rows}.")

    def evaluate(row: dict[str, Any], meta: dict[str, Any], sql: str) -> AssetCheckResult:
        rows = int(row.get("n") or 0)
        return AssetCheckResult(
            passed=rows >= min_rows,
            metadata={
                **meta,
                "rows": rows,
                "min_rows": min_rows,
                "query": MetadataValue.md(f"```sql\n{sql}\n```"),
            },
        )

    return _window_check(
        asset,
        _Scope(table, partitions_def, time_column, resource_key, database, blocking, lookback),
        name=name,
        description=f"At least {min_rows} row(s) of {table!r} in the partition's window.",
        select="count(*) AS n",
        evaluate=evaluate,
    )


def build_no_nulls_check(
    asset: CoercibleToAssetKey | AssetsDefinition,
    *,
    table: str,
    column: str,
    partitions_def: PartitionsDefinition | None = None,
    time_column: str = "time",
    resource_key: str = "influxdb",
    database: str | None = None,
    name: str | None = None,
    severity: AssetCheckSeverity = AssetCheckSeverity.ERROR,
    blocking: bool = False,
    lookback: timedelta | str | None = DEFAULT_LOOKBACK,
) -> AssetChecksDefinition:
    """Check that `column` has a value in every row of the partition's window.

    InfluxDB stores a row for a timestamp even when only some fields were written, so a field
    missing from some points shows up as nulls here.
    """

    def evaluate(row: dict[str, Any], meta: dict[str, Any], _sql: str) -> AssetCheckResult:
        rows, non_null = int(row.get("n") or 0), int(row.get("non_null") or 0)
        return AssetCheckResult(
            passed=rows == non_null,
            severity=severity,
            metadata={**meta, "rows": rows, "null_rows": rows - non_null, "column": column},
        )

    return _window_check(
        asset,
        _Scope(table, partitions_def, time_column, resource_key, database, blocking, lookback),
        name=name or f"no_nulls_{column}",
        description=f"Column {column!r} of {table!r} has no nulls in the partition's window.",
        select=f"count(*) AS n, count({quote_ident(column)}) AS non_null",
        evaluate=evaluate,
    )


def build_value_range_check(
    asset: CoercibleToAssetKey | AssetsDefinition,
    *,
    table: str,
    column: str,
    min_value: float | None = None,
    max_value: float | None = None,
    partitions_def: PartitionsDefinition | None = None,
    time_column: str = "time",
    resource_key: str = "influxdb",
    database: str | None = None,
    name: str | None = None,
    severity: AssetCheckSeverity = AssetCheckSeverity.WARN,
    blocking: bool = False,
    lookback: timedelta | str | None = DEFAULT_LOOKBACK,
) -> AssetChecksDefinition:
    """Check that every value of numeric `column` lies in `[min_value, max_value]`.

    Reports how many rows fall outside and the observed minimum and maximum.
    """
    if min_value is None and max_value is None:
        raise ValueError("build_value_range_check needs min_value, max_value or both.")
    if min_value is not None and max_value is not None and min_value > max_value:
        raise ValueError(f"min_value {min_value} is greater than max_value {max_value}.")
    col = quote_ident(column)
    outside = " OR ".join(
        cond
        for cond in (
            f"{col} < {float(min_value)!r}" if min_value is not None else "",
            f"{col} > {float(max_value)!r}" if max_value is not None else "",
        )
        if cond
    )
    bounds = f"[{'-inf' if min_value is None else min_value}, {'inf' if max_value is None else max_value}]"

    def evaluate(row: dict[str, Any], meta: dict[str, Any], _sql: str) -> AssetCheckResult:
        rows, bad = int(row.get("n") or 0), int(row.get("outside") or 0)
        metadata: dict[str, Any] = {**meta, "rows": rows, "rows_outside": bad, "range": bounds}
        if row.get("lo") is not None:
            metadata["observed_min"] = float(row["lo"])
            metadata["observed_max"] = float(row["hi"])
        return AssetCheckResult(passed=bad == 0, severity=severity, metadata=metadata)

    return _window_check(
        asset,
        _Scope(table, partitions_def, time_column, resource_key, database, blocking, lookback),
        name=name or f"{column}_in_range",
        description=f"Values of {column!r} in {table!r} lie within {bounds}.",
        select=(
            f"count(*) AS n, sum(CASE WHEN {outside} THEN 1 ELSE 0 END) AS outside,"
            f" min({col}) AS lo, max({col}) AS hi"
        ),
        evaluate=evaluate,
    )
