"""Dagster example: raw sensor data in InfluxDB 3 -> 5-minute rollups per hour -> daily Parquet.

Assets (the demo data set's `sensors` table: tags `room`, `sensor`; fields `temperature`,
`humidity`, `co2`):

* `sensors`: the raw table, written outside Dagster; observing it records its latest time.
* `sensors_5m`: hourly partitions; each run aggregates its hour into 5-minute buckets per room
  and writes them to the `sensors_5m` table (re-runs overwrite the same points). Checks: data
  arrived for the partition, no missing temperature, plausible temperatures.
* `sensors_5m_daily_parquet`: daily partitions; streams the day's rollups from InfluxDB into
  `<DAGSTER_EXAMPLE_EXPORT_DIR>/sensors_5m_daily_parquet/<day>.parquet`.

Connection settings come from the environment when a run starts (the token through
`dagster.EnvVar`, never resolved at load time):
INFLUXDB3_HOST_URL, INFLUXDB3_DATABASE_NAME and INFLUXDB3_AUTH_TOKEN (InfluxDB 3 and the
stand-in answer queries and writes on the same port).

Run it:
    influx-flight serve --demo   # or any InfluxDB 3
    dagster dev -m example_dags.dagster_example
    dagster definitions validate -m example_dags.dagster_example   (in a dg project: dg check defs)
"""

import os

import dagster as dg

from dagster_influx import (
    InfluxDB3Resource,
    ParquetIOManager,
    build_downsample_asset,
    build_no_nulls_check,
    build_partition_has_data_check,
    build_table_observation,
    build_value_range_check,
    validate_tables,
)
from influx_flight import DownsampleSpec, QueryResult

#: The demo data set is the day from here (influx_flight.server.demo_data.DEFAULT_START).
#: Point these at your own data's range (or drop END for partitions that grow with time).
START = "2024-01-01-00:00"
END = "2024-01-02-00:00"

hourly = dg.HourlyPartitionsDefinition(start_date=START, end_date=END)
daily = dg.DailyPartitionsDefinition(start_date=START[:10], end_date=END[:10])

#: Observing the raw table gives every hour in the last 48 hours (the default lookback, within
#: InfluxDB 3 Core's query file limit) its own data version: row count and latest time. A late
#: reading written into an old hour changes that hour's version only, so only that partition of
#: `sensors_5m` turns stale, and the automation condition below re-materialises exactly it.
raw_sensors = build_table_observation(
    "sensors",
    partitions_def=hourly,
    group_name="influxdb",
    description="Raw sensor readings (room, sensor tags).",
)

#: Re-materialise a partition when its raw hour changed (a late point) or was first observed.
RECOMPUTE_CHANGED_HOURS = dg.AutomationCondition.any_deps_updated() & ~(
    dg.AutomationCondition.in_progress() | dg.AutomationCondition.any_deps_in_progress()
)

SPEC = DownsampleSpec(
    source="sensors",
    window="5m",
    aggregates={
        "temperature": ["mean", "min", "max"],
        "humidity": ["mean"],
        "co2": ["mean", "count"],
    },
    group_by=["room"],
    target_measurement="sensors_5m",
)

sensors_5m = build_downsample_asset(
    SPEC,
    partitions_def=hourly,
    group_name="influxdb",
    # a backfill of many hours runs as one run per day, each split into hourly queries
    backfill_policy=dg.BackfillPolicy.multi_run(max_partitions_per_run=24),
    chunk="1h",
    automation_condition=RECOMPUTE_CHANGED_HOURS,
)

checks = [
    build_partition_has_data_check(
        sensors_5m, table="sensors_5m", partitions_def=hourly, blocking=True
    ),
    build_no_nulls_check(
        sensors_5m, table="sensors_5m", column="temperature_mean", partitions_def=hourly
    ),
    build_value_range_check(
        sensors_5m,
        table="sensors_5m",
        column="temperature_mean",
        min_value=-30.0,
        max_value=60.0,
        partitions_def=hourly,
    ),
]


@dg.asset(
    partitions_def=daily,
    deps=[sensors_5m],
    io_manager_key="parquet_io",
    group_name="exports",
    kinds={"influxdb", "parquet"},
)
def sensors_5m_daily_parquet(
    context: dg.AssetExecutionContext, influxdb: InfluxDB3Resource
) -> QueryResult:
    """The day's 5-minute rollups as one Parquet file, streamed batch by batch."""
    start, end = context.partition_time_window
    with influxdb.get_client() as client:
        # The run's client stays open until the run ends, so the IO manager can stream it.
        return client.query(
            "SELECT * FROM sensors_5m WHERE time >= $start AND time < $end ORDER BY time, room",
            params={"start": start, "end": end},
        )


def _export_dir() -> str:
    return os.environ.get("DAGSTER_EXAMPLE_EXPORT_DIR") or os.path.join(
        os.environ.get("DAGSTER_HOME") or ".", "exports"
    )


# validate_tables: two assets storing into one InfluxDB table fail here, when the code loads.
defs = validate_tables(
    dg.Definitions(
        assets=[raw_sensors, sensors_5m, sensors_5m_daily_parquet],
        asset_checks=checks,
        resources={
            "influxdb": InfluxDB3Resource(
                host=dg.EnvVar("INFLUXDB3_HOST_URL"),
                database=dg.EnvVar("INFLUXDB3_DATABASE_NAME"),
                token=dg.EnvVar("INFLUXDB3_AUTH_TOKEN"),
            ),
            "parquet_io": ParquetIOManager(base_dir=_export_dir()),
        },
    )
)
