"""`build_export_asset`: a time-partitioned asset that is a Hive-partitioned Parquet dataset.

Each partition's time window is cut into the core's dataset windows (`influx_flight.plan_windows`);
each window is one query with `$start`/`$end` bound server-side and one atomic file
(`dest/date=2024-01-01/hour=06/part-0.parquet`, `influx_flight.export_window`). When all of a
partition's windows are there, the partition is committed with its own marker
(`influx_flight.commit_dataset(manifest=slice_manifest(...))`: `date=2024-01-01/_SUCCESS` for a
UTC day), so the dataset grows partition by partition and readers of one partition wait for
its marker. The layout is the same as `influx-flight export` and Airflow's mapped exports, so
the three can fill one dataset.

Backfills fan out on Dagster's own machinery: `BackfillPolicy.multi_run(max_partitions_per_run=k)`
makes one run per k partitions, the run launcher runs them side by side, and the multiprocess
(or Celery, or Kubernetes) executor gives every step its own process. Re-materialising a
partition replaces its windows atomically (no duplicates, nothing half-written is visible).
"""

from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from typing import Any

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
)
from dagster._core.definitions.asset_key import CoercibleToAssetKey

from dagster_influx.assets import (
    define_asset,
    time_window_partitions,
    unaligned_partition,
    window_metadata,
)
from influx_flight import (
    DEFAULT_COMPRESSION,
    DEFAULT_ROW_GROUP_SIZE,
    ConfigurationError,
    export_dataset,
    plan_windows,
    slice_manifest,
)
from influx_flight.time import format_time, parse_duration, quote_ident

__all__ = ["build_export_asset"]


def build_export_asset(
    query: str | None = None,
    *,
    destination: Any,
    partitions_def: PartitionsDefinition,
    table: str | None = None,
    columns: Sequence[str] | None = None,
    window: str | timedelta = "1h",
    key: CoercibleToAssetKey | None = None,
    source_key: CoercibleToAssetKey | None = None,
    language: str = "sql",
    params: Mapping[str, Any] | None = None,
    database: str | None = None,
    overwrite: bool = True,
    commit: bool = True,
    concurrency: int = 1,
    compression: str = DEFAULT_COMPRESSION,
    row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
    storage_options: Mapping[str, Any] | None = None,
    resource_key: str = "influxdb",
    description: str | None = None,
    group_name: str | None = None,
    tags: Mapping[str, str] | None = None,
    owners: Sequence[str] | None = None,
    code_version: str | None = None,
    kinds: Iterable[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    automation_condition: AutomationCondition | None = None,
    backfill_policy: BackfillPolicy | None = None,
    check_specs: Sequence[AssetCheckSpec] | None = None,
    retry_policy: RetryPolicy | None = None,
    op_tags: Mapping[str, Any] | None = None,
    pool: str | None = None,
) -> AssetsDefinition:
    """Build a partitioned asset that exports each partition's windows into a Parquet dataset.

    Args:
        query: SQL (or InfluxQL with `language="influxql"`) with `$start` and `$end`, bound to
            each window, e.g. `SELECT * FROM home WHERE time >= $start AND time < $end`.
        destination: The dataset root: a directory, an fsspec URL (`s3://bucket/exports/home`)
            or a UPath. Every process that runs a step must reach it (object storage on
            Celery or Kubernetes).
        partitions_def: Time-window partitions; every partition must be a whole number of
            `window`s in UTC (checked here, for every partition, not at run time).
        table, columns: Instead of `query`: export these columns (default all) of one table.
        window: One file per window ('15m', '1h', '1d'); default one per hour.
        key: Asset key; default `[f"{table}_parquet"]` (required with `query`).
        source_key: The raw table's asset (a dependency); default `[table]` with `table`.
        language, params, database: How the query runs (`params` are extra server-side
            parameters next to `$start`/`$end`; `database` defaults to the resource's).
        overwrite: Re-materialising a partition re-exports its windows (each replaced
            atomically). `False` keeps windows already written and exports only the missing
            ones: a retried range run then resumes where it stopped.
        commit: Write the partition's marker (`influx_flight.slice_manifest`) once all of its
            windows are written.
        concurrency: Windows of one step exported at once (Flight streams); Dagster's executor
            already runs partitions' steps in parallel, so 1 is usually right.
        compression, row_group_size, storage_options: Parquet and fsspec settings.
        resource_key: Key of the `InfluxDB3Resource`.
        tags, owners, code_version, kinds, metadata, description, group_name,
            automation_condition, backfill_policy, check_specs, retry_policy, op_tags, pool:
            passed to `@dg.asset` (`kinds` adds to `{"influxdb", "parquet"}`).

    Each materialisation records, per partition, `dagster/partition_row_count`, `bytes`,
    `files`, `path` (the dataset root), `manifest`, the windows written and kept, and its time
    range; a multi-partition run records each partition's own values.

    Examples:
        .. code-block:: python

            import dagster as dg
            from dagster_influx import build_export_asset

            home_parquet = build_export_asset(
                table="home",
                destination="s3://lake/influxdb/home",
                partitions_def=dg.DailyPartitionsDefinition(start_date="2026-01-01"),
                backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=7),
            )
    """
    arguments = dict(locals())
    if (query is None) == (table is None):
        raise ValueError(
            "build_export_asset: pass either query= (with $start and $end) or table=, not both"
            " and not neither."
        )
    if query is None:
        assert table is not None
        cols = ", ".join(quote_ident(c) for c in columns) if columns else "*"
        query = f"SELECT {cols} FROM {quote_ident(table)} WHERE time >= $start AND time < $end"
    elif columns:
        raise ValueError("build_export_asset: columns= goes with table=, not with query=.")
    if "$start" not in query or "$end" not in query:
        raise ValueError(
            "build_export_asset: the query must bound time with $start and $end (each window"
            " binds them), e.g. SELECT * FROM home WHERE time >= $start AND time < $end."
        )
    if key is None and table is None:
        raise ValueError("build_export_asset: with query= give the asset a key=.")
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(
            f"build_export_asset: concurrency must be an int >= 1, got {concurrency!r}"
        )
    asset_key = AssetKey.from_coercible(key) if key is not None else AssetKey([f"{table}_parquet"])
    name = asset_key.to_python_identifier()
    partitions = _check_windows(partitions_def, window, name)
    if source_key is not None:
        deps = [AssetKey.from_coercible(source_key)]
    else:
        deps = [AssetKey([table])] if table else []
    root = str(destination)
    asset_metadata: dict[str, Any] = {
        "path": MetadataValue.path(root),
        "window": str(window),
        "query": MetadataValue.md(f"```{language}\n{query}\n```"),
        "format": "parquet (hive: date=/hour=/minute=)",
        **dict(metadata or {}),
    }
    query_text: str = query

    window_options: dict[str, Any] = dict(
        overwrite=overwrite,
        language=language,
        params=params,
        database=database,
        compression=compression,
        row_group_size=row_group_size,
        storage_options=storage_options,
    )

    def _export(context: AssetExecutionContext) -> MaterializeResult:
        influxdb = getattr(context.resources, resource_key)
        keys = list(context.partition_keys)
        per_partition: dict[str, dict[str, Any]] = {}
        with influxdb.get_client() as client:
            for k in keys:
                tw = partitions.time_window_for_partition_key(k)
                done = export_dataset(
                    client,
                    query_text,
                    destination,
                    start=tw.start,
                    end=tw.end,
                    window=window,
                    concurrency=concurrency,
                    manifest=slice_manifest(tw.start, tw.end, window) if commit else None,
                    **window_options,
                )
                context.log.info(
                    f"Partition {k}: {len(done.files)} window file(s), {done.rows} rows,"
                    f" {done.bytes} bytes ({done.written} written, {done.skipped} kept)"
                    + (f"; committed {done.manifest}" if done.manifest else "")
                )
                per_partition[k] = {
                    "dagster/partition_row_count": done.rows,
                    "rows": done.rows,
                    "bytes": done.bytes,
                    "files": len(done.files),
                    "windows_written": done.written,
                    "windows_kept": done.skipped,
                    "path": MetadataValue.path(root),
                    **window_metadata(tw.start, tw.end),
                    **({"manifest": MetadataValue.path(done.manifest)} if done.manifest else {}),
                }
        if len(keys) == 1:
            return MaterializeResult(metadata=per_partition[keys[0]])
        for k, values in per_partition.items():
            context.add_asset_metadata(values, partition_key=k)
        return MaterializeResult(
            metadata={
                "rows_in_range": sum(v["rows"] for v in per_partition.values()),
                "bytes_in_range": sum(v["bytes"] for v in per_partition.values()),
                "files_in_range": sum(v["files"] for v in per_partition.values()),
                "rows_by_partition": MetadataValue.json(
                    {k: v["rows"] for k, v in per_partition.items()}
                ),
            }
        )

    return define_asset(
        _export,
        arguments,
        key=asset_key,
        deps=deps,
        partitions_def=partitions,
        description=description
        or f"Parquet dataset at {root}: one file per {window} window, committed per partition.",
        kinds={"parquet", *(kinds or ())},
        metadata=asset_metadata,
        required_resource_keys={resource_key},
    )


def _check_windows(
    partitions_def: PartitionsDefinition, window: str | timedelta, name: str
) -> TimeWindowPartitionsDefinition:
    """Time-window partitions each of which is whole `window`s in UTC, or a clear error."""
    partitions_def = time_window_partitions(partitions_def, f"build_export_asset({name!r})")
    try:
        window_ns = parse_duration(window)
        bad = unaligned_partition(
            partitions_def, window_ns, lambda start, end: plan_windows(start, end, window)
        )
    except ConfigurationError as err:  # not a duration at all
        raise ValueError(f"build_export_asset({name!r}): {err}") from err
    if bad is None:
        return partitions_def
    start, end, err = bad
    key = start.strftime(partitions_def.fmt)
    raise ValueError(
        f"build_export_asset({name!r}): partition {key!r} [{format_time(start)},"
        f" {format_time(end)}) is not a whole number of {window} windows ({err})."
        " Choose a window that divides every partition in UTC (zoned daily partitions"
        " need '1h' or shorter around daylight-saving changes)."
    ) from err
