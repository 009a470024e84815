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

import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AssetSpec,
    DataVersion,
    MetadataValue,
    ObserveResult,
    PartitionsDefinition,
    TimeWindowPartitionsDefinition,
    asset_check,
    multi_observable_source_asset,
)
from dagster._core.definitions.asset_key import CoercibleToAssetKey
from dagster._utils.warnings import BetaWarning, PreviewWarning

from dagster_influx.io_managers import _rfc3339, is_missing_table, quote_ident
from dagster_influx.resource import InfluxDB3Resource

__all__ = [
    "build_no_nulls_check",
    "build_partition_has_data_check",
    "build_table_observation",
    "build_value_range_check",
    "fetch_last_updated_timestamps",
]


def fetch_last_updated_timestamps(
    influxdb: InfluxDB3Resource,
    tables: Sequence[str],
    *,
    time_column: str = "time",
    database: str | None = None,
) -> dict[str, datetime | None]:
    """Latest `time` (UTC) per table; `None` for an empty or missing table.

    The InfluxDB counterpart of the Snowflake / BigQuery resources' function of the same name.
    """
    from influx_flight import InfluxDB3Error

    out: dict[str, datetime | None] = {}
    for table in tables:
        sql = f"SELECT max({quote_ident(time_column)}) AS latest FROM {quote_ident(table)}"
        try:
            result = influxdb.query(sql, database=database)
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
    resource_key: str = "influxdb",
    time_column: str = "time",
    database: str | None = None,
    description: str | None = None,
    group_name: str | None = None,
) -> AssetsDefinition:
    """Observable source asset for a raw table; its latest time is the data version.

    Args:
        table: Table (measurement) to observe.
        key: Asset key; defaults to the table name. Downsampling assets built for this table
            depend on this key.
        resource_key: Key of the `InfluxDB3Resource`.
        time_column: The table's time column.
        database: Database to read; defaults to the resource's.

    Examples:
        .. code-block:: python

            cpu = build_table_observation("cpu", key=["telegraf", "cpu"])
    """
    asset_key = AssetKey.from_coercible(key) if key is not None else AssetKey([table])
    spec = AssetSpec(
        key=asset_key,
        description=description or f"Raw InfluxDB 3 table {table!r}, written outside Dagster.",
        group_name=group_name,
        kinds={"influxdb"},
        metadata={"table": table},
    )

    def _observe(context: AssetExecutionContext) -> ObserveResult:
        influxdb: InfluxDB3Resource = getattr(context.resources, resource_key)
        latest = fetch_last_updated_timestamps(
            influxdb, [table], time_column=time_column, database=database
        )[table]
        if latest is None:
            return ObserveResult(
                asset_key=asset_key,
                data_version=DataVersion("empty"),
                metadata={"latest_time": MetadataValue.text("no rows")},
            )
        return ObserveResult(
            asset_key=asset_key,
            data_version=DataVersion(_rfc3339(latest)),
            metadata={
                "dagster/last_updated_timestamp": MetadataValue.timestamp(latest),
                "latest_time": MetadataValue.text(_rfc3339(latest)),
            },
        )

    with _quiet_beta():  # observable sources are @beta in Dagster 1.13
        return multi_observable_source_asset(
            specs=[spec],
            name=f"observe_{asset_key.to_python_identifier()}",
            required_resource_keys={resource_key},
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
    params = {"start": _rfc3339(start), "end": _rfc3339(end)}
    col = quote_ident(time_column)
    return f" WHERE {col} >= $start AND {col} < $end", params


def _time_range(params: dict[str, str]) -> dict[str, Any]:
    return {"time_range": MetadataValue.text(f"[{params['start']}, {params['end']})")}


_WHOLE_TABLE: dict[str, Any] = {"time_range": MetadataValue.text("whole table")}


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


def _window_check(
    asset: CoercibleToAssetKey | AssetsDefinition,
    *,
    name: str,
    description: str,
    table: str,
    select: str,
    evaluate: Callable[[dict[str, Any], dict[str, Any], str], AssetCheckResult],
    partitions_def: PartitionsDefinition | None,
    time_column: str,
    resource_key: str,
    database: str | None,
    blocking: bool,
) -> AssetChecksDefinition:
    """An asset check running `SELECT <select> FROM <table>` over the partition's window.

    `evaluate(row, metadata, sql)` turns the query's single row (empty when the table does not
    exist yet) and the window's metadata into the result; the query, the window and the
    resource handling live here once for every check.
    """
    partitions = _check_partitions(partitions_def)
    if database is None:  # the checked asset's database: its metadata, else its key prefix
        database = _asset_database(asset)

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
            return _evaluate_window(context, "", {})
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
                **_time_range({"start": _rfc3339(start), "end": _rfc3339(end)}),
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
            blocking=blocking,
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
) -> AssetChecksDefinition:
    """Check that at least `min_rows` rows are stored in the partition's window.

    Args:
        asset: The asset checked (its key or definition).
        table: Table the asset's data lives in.
        partitions_def: The asset's time-window partitions; `None` checks the whole table.
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
        name=name,
        description=f"At least {min_rows} row(s) of {table!r} in the partition's window.",
        table=table,
        select="count(*) AS n",
        evaluate=evaluate,
        partitions_def=partitions_def,
        time_column=time_column,
        resource_key=resource_key,
        database=database,
        blocking=blocking,
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
        name=name or f"no_nulls_{column}",
        description=f"Column {column!r} of {table!r} has no nulls in the partition's window.",
        table=table,
        select=f"count(*) AS n, count({quote_ident(column)}) AS non_null",
        evaluate=evaluate,
        partitions_def=partitions_def,
        time_column=time_column,
        resource_key=resource_key,
        database=database,
        blocking=blocking,
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
        name=name or f"{column}_in_range",
        description=f"Values of {column!r} in {table!r} lie within {bounds}.",
        table=table,
        select=(
            f"count(*) AS n, sum(CASE WHEN {outside} THEN 1 ELSE 0 END) AS outside,"
            f" min({col}) AS lo, max({col}) AS hi"
        ),
        evaluate=evaluate,
        partitions_def=partitions_def,
        time_column=time_column,
        resource_key=resource_key,
        database=database,
        blocking=blocking,
    )
