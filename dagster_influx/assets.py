"""`build_downsample_asset`: one partitioned Dagster asset per downsampling spec.

Each partition's time window becomes the half-open range `[$start, $end)` of the core's
downsampling query (`influx_flight.DownsampleSpec`); the core aggregates, writes the buckets
back (bucket start as timestamp, group-by tags as tags) and reports what it did. Re-running a
partition writes identical points, which InfluxDB 3 overwrites: materialisations are
idempotent without deletes.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import pyarrow as pa
from dagster import (
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    AutomationCondition,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    RetryPolicy,
    TimeWindowPartitionsDefinition,
    asset,
)
from dagster._core.definitions.asset_key import CoercibleToAssetKey

from dagster_influx.io_managers import (
    _rfc3339,
    arrow_table_metadata,
    is_missing_table,
    quote_ident,
)
from dagster_influx.observability import _quiet_beta
from influx_flight import DownsampleSpec, InfluxDB3Client

__all__ = ["build_downsample_asset"]

ReturnType = Literal["arrow", "pandas"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _check_partitions(
    spec: DownsampleSpec, partitions_def: PartitionsDefinition, name: str
) -> TimeWindowPartitionsDefinition:
    """Time-window partitions whose windows hold whole buckets, or a clear error now."""
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        raise TypeError(
            f"build_downsample_asset({name!r}): partitions_def must be a time-window partitions"
            " definition (HourlyPartitionsDefinition, DailyPartitionsDefinition, ...) because"
            f" each partition is a time range; got {type(partitions_def).__name__}."
        )
    first = partitions_def.time_window_for_partition_key(
        partitions_def.start.strftime(partitions_def.fmt)
    )
    from influx_flight import ConfigurationError

    try:
        spec.aligned(first.start, first.end)
    except ConfigurationError as err:
        raise ValueError(
            f"build_downsample_asset({name!r}): the partitions do not hold whole"
            f" {spec.window} buckets: {err}"
        ) from err
    return partitions_def


def build_downsample_asset(
    spec: DownsampleSpec,
    *,
    partitions_def: PartitionsDefinition,
    key: CoercibleToAssetKey | None = None,
    source_key: CoercibleToAssetKey | None = None,
    write_back: bool = True,
    return_type: ReturnType | None = None,
    resource_key: str = "influxdb",
    io_manager_key: str | None = None,
    chunk: str | timedelta | None = None,
    preview_rows: int = 5,
    description: str | None = None,
    group_name: str | None = None,
    backfill_policy: BackfillPolicy | None = None,
    check_specs: Sequence[AssetCheckSpec] | None = None,
    automation_condition: AutomationCondition | None = None,
    retry_policy: RetryPolicy | None = None,
    tags: Mapping[str, str] | None = None,
    pool: str | None = None,
) -> AssetsDefinition:
    """Build a partitioned asset that downsamples one partition's window per run.

    Args:
        spec: What to aggregate and where to write it (`influx_flight.DownsampleSpec`).
        partitions_def: Time-window partitions (hourly, daily, ...). Every partition must hold
            whole `spec.window` buckets; this is checked here, not at run time.
        key: Asset key; default `[spec.target_measurement]`, so `InfluxDB3IOManager` inputs
            load the target table.
        source_key: Key of the raw table's asset (a dependency); default `[spec.source]`.
        write_back: Write the buckets to `spec.target_measurement` (the core does it).
        return_type: Also return the partition's downsampled rows, as `"arrow"`
            (`pyarrow.Table`) or `"pandas"`, for an IO manager (e.g. `ParquetIOManager`). With
            `write_back` these are the rows stored in the target for the window, read back.
        resource_key: Key of the `InfluxDB3Resource`.
        io_manager_key: IO manager for the returned value (with `return_type`).
        chunk: Split the window into queries of this length (a multiple of the spec's window);
            useful with single-run backfills over many partitions.
        preview_rows: Rows shown in the `preview` metadata table (0: none).

    Every materialisation records `dagster/partition_row_count`, `dagster/column_schema`, the
    query text, the time range, write counts and a preview table.

    Examples:
        .. code-block:: python

            import dagster as dg
            from influx_flight import DownsampleSpec
            from dagster_influx import build_downsample_asset

            cpu_1h = build_downsample_asset(
                DownsampleSpec(source="cpu", window="1h", aggregates={"usage": ["mean", "max"]},
                               group_by=["host"], target_measurement="cpu_1h"),
                partitions_def=dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00"),
            )
    """
    if not write_back and return_type is None:
        raise ValueError(
            "build_downsample_asset: with write_back=False set return_type='arrow' or 'pandas',"
            " otherwise the asset would compute nothing anyone can see."
        )
    if return_type not in (None, "arrow", "pandas"):
        raise ValueError(f"return_type must be 'arrow', 'pandas' or None, got {return_type!r}.")
    asset_key = (
        AssetKey.from_coercible(key) if key is not None else AssetKey([spec.target_measurement])
    )
    name = asset_key.to_python_identifier()
    partitions = _check_partitions(spec, partitions_def, name)
    dep = AssetKey.from_coercible(source_key) if source_key is not None else AssetKey([spec.source])
    metadata: dict[str, Any] = {
        "partition_expr": "time",
        "tags": list(spec.group_by),
        "source": spec.source,
        "target": spec.target_measurement,
        "window": str(spec.window),
        "language": spec.language,
    }
    if spec.target_database:
        metadata["target_database"] = spec.target_database

    asset_kwargs: dict[str, Any] = dict(
        key=asset_key,
        deps=[dep],
        partitions_def=partitions,
        description=description
        or (
            f"{spec.source} downsampled to {spec.window} buckets"
            + (f" per {', '.join(spec.group_by)}" if spec.group_by else "")
            + (f", written to {spec.target_measurement}" if write_back else "")
            + "."
        ),
        group_name=group_name,
        kinds={"influxdb"},
        metadata=metadata,
        required_resource_keys={resource_key},
        io_manager_key=io_manager_key,
        backfill_policy=backfill_policy,
        check_specs=check_specs,
        automation_condition=automation_condition,
        retry_policy=retry_policy,
        op_tags=dict(tags) if tags else None,
        pool=pool,
    )

    def _downsample(context: AssetExecutionContext) -> MaterializeResult:
        influxdb = getattr(context.resources, resource_key)
        window = context.partition_time_window
        start, end = spec.aligned(window.start, window.end)
        params = {"start": _ns_rfc3339(start), "end": _ns_rfc3339(end)}
        out: dict[str, Any] = {
            "time_range": MetadataValue.text(f"[{params['start']}, {params['end']})"),
            "window_start": MetadataValue.timestamp(window.start),
            "window_end": MetadataValue.timestamp(window.end),
            "query": MetadataValue.md(f"```{spec.language}\n{spec.query()}\n```"),
            "query_params": MetadataValue.json(params),
        }
        table: pa.Table | None = None
        with influxdb.get_client() as client:
            if write_back:
                result = client.downsample(spec, window.start, window.end, chunk=chunk)
                target_db = result.target_database or client.config.database
                context.log.info(
                    f"Downsampled {spec.source} {out['time_range'].value}: {result.rows_read}"
                    f" buckets read, {result.points_written} points written to"
                    f" {target_db}.{spec.target_measurement}"
                )
                out.update(
                    {
                        "points_written": result.points_written,
                        "rows_skipped": result.rows_skipped,
                        "write_requests": result.write_requests,
                        "query_windows": len(result.windows),
                        "dagster/table_name": f"{target_db}.{spec.target_measurement}",
                    }
                )
                limit = None if return_type else max(preview_rows, 1)
                table = _read_back(client, spec, params, target_db, limit)
                rows = result.points_written
            else:
                table = _query(client, spec, params)
                rows = table.num_rows
        if table is None:  # nothing stored for the window (and maybe no target table yet)
            table = _empty(spec)
        out.update(
            arrow_table_metadata(table, num_rows=rows, partitioned=True, preview_rows=preview_rows)
        )
        if return_type is None:
            return MaterializeResult(metadata=out)
        value = table.to_pandas() if return_type == "pandas" else table
        return MaterializeResult(value=value, metadata=out)

    with _quiet_beta():  # backfill_policy is @beta in Dagster 1.13
        return asset(**asset_kwargs)(_downsample)


def _empty(spec: DownsampleSpec) -> pa.Table:
    """A zero-row table shaped like the spec's output (time, group-by tags, aggregates)."""
    fields = [pa.field("time", pa.timestamp("ns", tz="UTC"))]
    fields += [pa.field(tag, pa.string()) for tag in spec.group_by]
    fields += [
        pa.field(name, pa.int64() if name.endswith(("_count", "_time")) else pa.float64())
        for name in spec.output_fields
    ]
    return pa.schema(fields).empty_table()


def _ns_rfc3339(ns: int) -> str:
    """RFC 3339 UTC of epoch nanoseconds (partition bounds are whole microseconds)."""
    return _rfc3339(_EPOCH + timedelta(microseconds=ns // 1000))


def _query(client: InfluxDB3Client, spec: DownsampleSpec, params: dict[str, str]) -> pa.Table:
    """The spec's aggregates over the window, without writing them."""
    from influx_flight._downsample import drop_measurement_column

    return drop_measurement_column(
        client.query(spec.query(), language=spec.language, params=params).to_table()
    )


def _read_back(
    client: InfluxDB3Client,
    spec: DownsampleSpec,
    params: dict[str, str],
    database: str,
    limit: int | None,
) -> pa.Table | None:
    """The target's stored rows for the window (all, or the first `limit` for a preview)."""
    from influx_flight import InfluxDB3Error

    order = ", ".join(quote_ident(c) for c in ["time", *spec.group_by])
    sql = (
        f"SELECT * FROM {quote_ident(spec.target_measurement)}"
        " WHERE time >= $start AND time < $end"
        f" ORDER BY {order}" + (f" LIMIT {int(limit)}" if limit else "")
    )
    try:
        return client.query(sql, params=params, database=database).to_table()
    except InfluxDB3Error as err:
        if is_missing_table(err):  # nothing was ever written to the target
            return None
        raise
