"""Definitions of the fan-out backfill test, loaded as a code location (``dagster api grpc``).

Two partitioned assets over raw ``home`` readings, both with a multi-run backfill policy of 3
partitions per run: ``home_10m`` (the library's downsample asset, written back) and
``home_export`` (the library's export asset: each partition one window of a Hive-partitioned
Parquet dataset). Connection settings come from the environment (FANOUT_* variables, the token
through EnvVar), the dataset root from FANOUT_DATASET; every process of the code location, the
runs and their steps inherit them.
"""

import os

import dagster as dg

from dagster_influx import InfluxDB3Resource, build_downsample_asset, build_export_asset
from influx_flight import DownsampleSpec

PARTITIONS = dg.HourlyPartitionsDefinition(
    start_date="2022-01-01-00:00", end_date="2022-01-01-06:00", timezone="UTC"
)
POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=3)
SPEC = DownsampleSpec(
    source="home",
    window="10m",
    aggregates={"temp": ["mean", "min", "max"], "co": ["max"]},
    group_by=["room"],
    target_measurement="home_10m",
)

#: The multiprocess executor, with forkserver and the definitions preloaded: each step forks
#: from a warm process instead of importing Dagster, pyarrow and the definitions again.
EXECUTOR = dg.multiprocess_executor.configured(
    {
        "max_concurrent": 4,
        "start_method": {"forkserver": {"preload_modules": ["dagster_fanout_defs"]}},
    }
)


def build_assets(dataset: str) -> list[dg.AssetsDefinition]:
    home_10m = build_downsample_asset(SPEC, partitions_def=PARTITIONS, backfill_policy=POLICY)
    home_export = build_export_asset(
        table="home",
        key="home_export",
        destination=dataset,
        partitions_def=PARTITIONS,
        window="30m",
        backfill_policy=POLICY,
    )
    return [home_10m, home_export]


resources = {
    "influxdb": InfluxDB3Resource(
        host=dg.EnvVar("FANOUT_HOST"),
        database=dg.EnvVar("FANOUT_DATABASE"),
        token=dg.EnvVar("FANOUT_TOKEN"),
    )
}

defs = dg.Definitions(
    assets=build_assets(os.environ.get("FANOUT_DATASET", "fanout-dataset")),
    resources=resources,
    executor=EXECUTOR,
)
