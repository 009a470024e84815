"""`build_downsample_asset`: one partitioned Dagster asset per downsampling spec.

Each partition's time window becomes the half-open range `[$start, $end)` of the core's
downsampling query (`influx_flight.DownsampleSpec`); the core aggregates, writes the buckets
back (bucket start as timestamp, group-by tags as tags) and reports what it did. Re-running a
partition writes identical points, which InfluxDB 3 overwrites: materialisations are
idempotent without deletes.
"""

import bisect
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

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
    arrow_table_metadata,
    is_missing_table,
)
from dagster_influx.observability import _quiet_beta
from dagster_influx.tables import WRITES_TABLE, refuse_shared_tables, table_for_asset
from influx_flight import ConfigurationError, DownsampleSpec, InfluxDB3Client
from influx_flight.time import format_time, parse_time, quote_ident

__all__ = ["build_downsample_asset"]

ReturnType = Literal["arrow", "pandas"]


def time_window_partitions(
    partitions_def: PartitionsDefinition, factory: str
) -> TimeWindowPartitionsDefinition:
    """`partitions_def` if it is time-window partitions, else a TypeError naming `factory`."""
    if not isinstance(partitions_def, TimeWindowPartitionsDefinition):
        raise TypeError(
            f"{factory}: partitions_def must be a time-window partitions definition"
            " (HourlyPartitionsDefinition, DailyPartitionsDefinition, ...) because each"
            f" partition is a time range; got {type(partitions_def).__name__}."
        )
    return partitions_def


def partition_windows(
    partitions_def: TimeWindowPartitionsDefinition,
) -> Iterator[tuple[datetime, datetime]]:
    """Every window of the definition, from its start to its `end_date`.

    An open-ended definition ends at its last partition that exists now (later partitions do
    not exist yet: Dagster cannot launch them).
    """
    first = partitions_def.get_first_partition_window()
    if first is None:
        return
    end = partitions_def.end
    if end is None:
        last = partitions_def.get_last_partition_window()
        end = last.end if last is not None else first.end
    for window in partitions_def._iterate_time_windows(first.start.timestamp()):
        if window.start >= end:
            return
        yield window.start, window.end


def fixed_period(partitions_def: TimeWindowPartitionsDefinition) -> timedelta | None:
    """The constant length of every partition, for UTC crons that fire at a fixed interval.

    `M * * * *` (hourly), `*/N * * * *` with N dividing 60, and `M H * * *` (daily) in UTC
    fire exactly every N minutes / hour / day: no daylight saving, no month lengths. Their
    boundaries are `first + k * period`, so two numbers decide alignment for the whole
    definition. Anything else (zones, weekdays, months, lists) returns None.
    """
    if (partitions_def.timezone or "UTC") not in ("UTC", "Etc/UTC"):
        return None
    fields = partitions_def.cron_schedule.split()
    if len(fields) != 5 or fields[2:] != ["*", "*", "*"]:
        return None
    minute, hour = fields[0], fields[1]
    if hour == "*":
        if minute.isdigit():
            return timedelta(hours=1)
        if minute.startswith("*/") and minute[2:].isdigit() and 60 % int(minute[2:]) == 0:
            return timedelta(minutes=int(minute[2:]))
        return None
    if minute.isdigit() and hour.isdigit():
        return timedelta(days=1)
    return None


def unaligned_partition(
    partitions_def: TimeWindowPartitionsDefinition,
    window_ns: int,
    confirm: Callable[[datetime, datetime], object],
    *,
    offset_ns: int = 0,
    clock: str = "UTC",
) -> tuple[datetime, datetime, ConfigurationError] | None:
    """The first partition that does not hold whole windows, with the core's reason; else None.

    Both factories sweep this way. Every partition of the definition is checked: to its
    `end_date`, or for an open-ended definition to the last partition that exists when the
    code loads (the core refuses an unaligned range again before a run writes anything, so
    later partitions are covered when they are launched). Calendars do not repeat in a short
    period once daylight-saving rules are involved (zones change them), so no shorter sweep
    is a proof. A boundary is aligned when its time on `clock` minus `offset_ns` is a multiple
    of `window_ns`; `confirm(start, end)` (the core's own check, raising `ConfigurationError`)
    decides the first partition and every suspect one.
    """
    first = partitions_def.get_first_partition_window()
    if first is None:
        return None
    try:
        confirm(first.start, first.end)
    except ConfigurationError as err:
        return first.start, first.end, err
    period = fixed_period(partitions_def) if clock in ("UTC", "Etc/UTC") else None
    # Boundaries of a fixed period are first + k * period: the first boundary aligned and the
    # period a multiple of the window align every one of them, to any end date. Otherwise the
    # first or second partition already fails, and the sweep below reports it.
    if (
        period is not None
        and (parse_time(first.start) - offset_ns) % window_ns == 0
        and (period // timedelta(microseconds=1) * 1000) % window_ns == 0
    ):
        return None
    zone = ZoneInfo(clock)
    checked: set[datetime] = set()
    for start, end in partition_windows(partitions_def):
        # Fast path: arithmetic on each boundary; the core's check runs on suspect windows.
        suspect = False
        for bound in (start, end):
            if bound in checked:
                continue
            checked.add(bound)
            local = bound.astimezone(zone).replace(tzinfo=None)
            if (parse_time(local) - offset_ns) % window_ns:
                suspect = True
        if not suspect:
            continue
        try:
            confirm(start, end)
        except ConfigurationError as err:
            return start, end, err
    return None


def check_alignment(
    spec: DownsampleSpec, partitions_def: PartitionsDefinition, name: str
) -> TimeWindowPartitionsDefinition:
    """Time-window partitions every one of whose windows holds whole buckets, or a clear error."""
    partitions_def = time_window_partitions(partitions_def, f"build_downsample_asset({name!r})")
    bucket_zone = spec.time_zone or "UTC"
    bad = unaligned_partition(
        partitions_def, spec.window_ns, spec.aligned, offset_ns=spec.offset_ns, clock=bucket_zone
    )
    if bad is None:
        return partitions_def
    start, end, err = bad
    zone = partitions_def.timezone or "UTC"
    key = start.strftime(partitions_def.fmt)
    hint = (
        f" The partitions follow {zone}'s wall clock but the buckets are cut in"
        f" {bucket_zone}: set DownsampleSpec(time_zone={zone!r}) (SQL"
        " date_bin_wallclock or InfluxQL tz()) so the buckets follow the same clock,"
        f" or use partitions in {bucket_zone}."
        if zone != bucket_zone
        else " Choose a window that divides the partition length (and an offset that"
        " matches the partitions' start)."
    )
    raise ValueError(
        f"build_downsample_asset({name!r}): partition {key!r} [{format_time(start)},"
        f" {format_time(end)}) does not hold whole {spec.window} buckets ({err}).{hint}"
    ) from err


def window_metadata(start: datetime, end: datetime) -> dict[str, Any]:
    """A partition's time window as materialisation metadata (both factories record it)."""
    return {
        "time_range": MetadataValue.text(f"[{format_time(start)}, {format_time(end)})"),
        "window_start": MetadataValue.timestamp(start),
        "window_end": MetadataValue.timestamp(end),
    }


#: `@dg.asset` arguments both factories take and hand on as given: each factory's signature
#: lists them (typed, for IDEs) and `define_asset` picks them from the factory's arguments.
ASSET_PASS_THROUGH = (
    "group_name",
    "tags",
    "owners",
    "code_version",
    "automation_condition",
    "backfill_policy",
    "check_specs",
    "retry_policy",
    "op_tags",
    "pool",
)


def define_asset(
    compute: Callable[..., Any],
    arguments: Mapping[str, Any],
    *,
    kinds: Iterable[str],
    **fixed: Any,
) -> AssetsDefinition:
    """`@dg.asset(...)(compute)` with a factory's pass-through `arguments` (its `locals()` at
    entry) and its own `fixed` ones: kinds added to `influxdb`, copies of tags, owners and op
    tags, and Dagster's beta warning for `backfill_policy` (Dagster 1.13) kept out of the log."""
    given = {name: arguments[name] for name in ASSET_PASS_THROUGH}
    tags, owners, op_tags = given.pop("tags"), given.pop("owners"), given.pop("op_tags")
    with _quiet_beta():
        return asset(
            kinds={"influxdb", *kinds},
            tags=dict(tags) if tags else None,
            owners=list(owners) if owners else None,
            op_tags=dict(op_tags) if op_tags else None,
            **given,
            **fixed,
        )(compute)


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
    """Build a partitioned asset that downsamples one partition's window per run.

    Args:
        spec: What to aggregate and where to write it (`influx_flight.DownsampleSpec`).
        partitions_def: Time-window partitions (hourly, daily, ...). Every partition must hold
            whole `spec.window` buckets; this is checked here, for every partition, not at run
            time. Zoned partitions (e.g. daily in Europe/London) need buckets on the same wall
            clock: `DownsampleSpec(time_zone=..., language="influxql")`.
        key: Asset key; default `[spec.target_measurement]`. Its prefix names the target
            database (`["site_a", "cpu_1h"]` writes `cpu_1h` in database `site_a`) unless the
            spec sets `target_database`, so `InfluxDB3IOManager` inputs load the same table.
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
        tags, owners, code_version, kinds, metadata, description, group_name,
            automation_condition, backfill_policy, check_specs, retry_policy, pool: passed to
            `@dg.asset` (`kinds` adds to `{"influxdb"}`; `tags` are asset tags).
        op_tags: Tags of the op that runs the asset (e.g. `dagster/concurrency_key`).

    Every materialisation records, per partition, `dagster/partition_row_count` (rows stored
    in the target for that partition's window), its time range and window; and for the run the
    query, its parameters, write counts and a preview. A single-run backfill over a range
    records each partition's own count (an empty day shows 0), and `rows_by_partition`.

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
    arguments = dict(locals())
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
    partitions = check_alignment(spec, partitions_def, name)
    dep = AssetKey.from_coercible(source_key) if source_key is not None else AssetKey([spec.source])
    target = table_for_asset(
        asset_key, {"database": spec.target_database, "table": spec.target_measurement}
    )
    asset_metadata: dict[str, Any] = {
        "partition_expr": "time",
        "tags": list(spec.group_by),
        "source": spec.source,
        "target": spec.target_measurement,
        "table": target.table,
        "window": str(spec.window),
        "language": spec.language,
        **dict(metadata or {}),
    }
    if target.database:
        asset_metadata["database"] = target.database
    if write_back:
        asset_metadata[WRITES_TABLE] = resource_key
    if spec.target_database:
        asset_metadata["target_database"] = spec.target_database

    def _downsample(context: AssetExecutionContext) -> MaterializeResult:
        influxdb = getattr(context.resources, resource_key)
        refuse_shared_tables(context, asset_key)
        window = context.partition_time_window
        keys = list(context.partition_keys)
        start, end = spec.aligned(window.start, window.end)
        params = {"start": format_time(start), "end": format_time(end)}
        out: dict[str, Any] = {
            "time_range": MetadataValue.text(f"[{params['start']}, {params['end']})"),
            "window_start": MetadataValue.timestamp(window.start),
            "window_end": MetadataValue.timestamp(window.end),
            "query": MetadataValue.md(f"```{spec.language}\n{spec.query()}\n```"),
            "query_params": MetadataValue.json(params),
        }
        table: pa.Table | None = None
        with influxdb.get_client() as client:
            target_db = target.database or client.config.database
            if write_back:
                result = client.downsample(
                    spec, window.start, window.end, chunk=chunk, target_database=target_db
                )
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
                bucket_times, bucket_rows = _stored_bucket_counts(
                    client, spec, target_db, result.windows
                )
            else:
                table = _query(client, spec, params)
                bucket_times = _as_ns(table.column("time")) if table.num_rows else []
                bucket_rows = [1] * len(bucket_times)
        if table is None:  # nothing stored for the window (and maybe no target table yet)
            table = _empty(spec)
        windows = [partitions.time_window_for_partition_key(k) for k in keys]
        counts = rows_per_window(bucket_times, bucket_rows, windows)
        total = sum(counts)
        out.update(
            arrow_table_metadata(table, num_rows=total, partitioned=True, preview_rows=preview_rows)
        )
        if len(keys) > 1:
            # A range: the run-wide count would be wrong for every partition; each partition's
            # own count and window go into its own materialisation instead.
            del out["dagster/partition_row_count"]
            out["rows_in_range"] = total
            out["rows_by_partition"] = MetadataValue.json(dict(zip(keys, counts, strict=True)))
            for k, w, n in zip(keys, windows, counts, strict=True):
                context.add_asset_metadata(
                    {"dagster/partition_row_count": n, **window_metadata(w.start, w.end)},
                    partition_key=k,
                )
        if return_type is None:
            return MaterializeResult(metadata=out)
        value = table.to_pandas() if return_type == "pandas" else table
        return MaterializeResult(value=value, metadata=out)

    return define_asset(
        _downsample,
        arguments,
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
        kinds=kinds or (),
        metadata=asset_metadata,
        required_resource_keys={resource_key},
        io_manager_key=io_manager_key,
    )


def rows_per_window(
    times_ns: Sequence[int], rows: Sequence[int], windows: Sequence[Any]
) -> list[int]:
    """Rows per `[start, end)` window, given row counts at instants (sorted windows)."""
    bounds = [parse_time(w.start) for w in windows]
    ends = [parse_time(w.end) for w in windows]
    counts = [0] * len(windows)
    for t, n in zip(times_ns, rows, strict=True):
        i = bisect.bisect_right(bounds, t) - 1
        if i >= 0 and t < ends[i]:
            counts[i] += n
    return counts


def _as_ns(column: pa.ChunkedArray) -> list[int]:
    return column.cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist()


def _stored_bucket_counts(
    client: InfluxDB3Client,
    spec: DownsampleSpec,
    database: str,
    windows: Sequence[tuple[datetime, datetime]],
) -> tuple[list[int], list[int]]:
    """Rows stored in the target per bucket time, one bounded query per run window."""
    from influx_flight import InfluxDB3Error

    sql = (
        f"SELECT time, count(*) AS n FROM {quote_ident(spec.target_measurement)}"
        " WHERE time >= $start AND time < $end GROUP BY time"
    )
    times: list[int] = []
    rows: list[int] = []
    for lo, hi in windows:
        params = {"start": format_time(lo), "end": format_time(hi)}
        try:
            table = client.query(sql, params=params, database=database).to_table()
        except InfluxDB3Error as err:
            if is_missing_table(err):
                continue
            raise
        times += _as_ns(table.column("time"))
        rows += [int(n) for n in table.column("n").to_pylist()]
    return times, rows


def _empty(spec: DownsampleSpec) -> pa.Table:
    """A zero-row table shaped like the spec's output (time, group-by tags, aggregates)."""
    fields = [pa.field("time", pa.timestamp("ns", tz="UTC"))]
    fields += [pa.field(tag, pa.string()) for tag in spec.group_by]
    fields += [
        pa.field(name, pa.int64() if name.endswith(("_count", "_time")) else pa.float64())
        for name in spec.output_fields
    ]
    return pa.schema(fields).empty_table()


def _query(client: InfluxDB3Client, spec: DownsampleSpec, params: dict[str, str]) -> pa.Table:
    """The spec's aggregates over the window, without writing them."""
    from influx_flight import drop_measurement_column

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
