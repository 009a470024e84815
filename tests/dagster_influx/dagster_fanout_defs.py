"""Definitions for the multiprocess fan-out test (loaded by reconstructable() in child processes).

Two partitioned assets over raw ``home`` readings, both with a multi-run backfill policy of 2
partitions per run: ``home_10m`` (the library's downsample asset, written back) and
``home_export`` (each partition of the run exported as one window of the core's Parquet dataset).
Connection settings come from the environment (FANOUT_* variables, token through EnvVar).
"""

import os

import dagster as dg

from dagster_influx import InfluxDB3Resource, build_downsample_asset
from influx_flight import DownsampleSpec

PARTITIONS = dg.HourlyPartitionsDefinition(
    start_date="2022-01-01-00:00", end_date="2022-01-01-06:00", timezone="UTC"
)
POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=3)
EXPORT_QUERY = "SELECT * FROM home WHERE time >= $start AND time < $end"

home_10m = build_downsample_asset(
    DownsampleSpec(
        source="home",
        window="10m",
        aggregates={"temp": ["mean", "min", "max"], "co": ["max"]},
        group_by=["room"],
        target_measurement="home_10m",
    ),
    partitions_def=PARTITIONS,
    backfill_policy=POLICY,
)


@dg.asset(
    key="home_export",
    deps=["home"],
    partitions_def=PARTITIONS,
    backfill_policy=POLICY,
    required_resource_keys={"influxdb"},
)
def home_export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    """Each partition of the run (one, or a range under multi_run) as its own atomic window."""
    from influx_flight import plan_windows
    from influx_flight._dataset import export_window

    rows = 0
    with context.resources.influxdb.get_client() as client:
        for key in context.partition_keys:
            tw = PARTITIONS.time_window_for_partition_key(key)
            (window,) = plan_windows(tw.start, tw.end, "1h")
            exported, _ = export_window(client, EXPORT_QUERY, os.environ["FANOUT_DATASET"], window)
            rows += exported.rows
    return dg.MaterializeResult(metadata={"rows": rows, "partitions": len(context.partition_keys)})


resources = {
    "influxdb": InfluxDB3Resource(
        host=dg.EnvVar("FANOUT_HOST"),
        write_url=dg.EnvVar("FANOUT_WRITE_URL"),
        database=dg.EnvVar("FANOUT_DATABASE"),
        token=dg.EnvVar("FANOUT_TOKEN"),
    )
}

fanout_job = dg.define_asset_job(
    "fanout",
    selection=[home_10m, home_export],
    partitions_def=PARTITIONS,
    # forkserver with the definitions preloaded: each step forks from a warm process instead of
    # importing Dagster, pyarrow and the definitions again (seconds per step on small machines).
    executor_def=dg.multiprocess_executor.configured(
        {
            "max_concurrent": 4,
            "start_method": {"forkserver": {"preload_modules": ["dagster_fanout_defs"]}},
        }
    ),
)

defs = dg.Definitions(assets=[home_10m, home_export], jobs=[fanout_job], resources=resources)


def get_fanout_job() -> dg.JobDefinition:
    return defs.resolve_job_def("fanout")
