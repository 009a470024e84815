"""Backfill a day in hourly mapped tasks: raw ``home`` -> a Parquet dataset and ``home_1h``.

Each daily run cuts its data interval into 24 aligned hours and maps two operators over them
with dynamic task mapping, so the hours run in parallel on whatever executor Airflow uses
(LocalExecutor processes, Celery workers, Kubernetes pods):

* ``export_hour``: ``InfluxDB3ToParquetOperator`` per hour into a Hive-partitioned dataset
  (``<base>/home/date=2022-01-01/hour=08/part-0.parquet``); each file appears atomically and a
  failed hour is retried alone;
* ``commit_dataset``: once every hour is there, writes ``_SUCCESS`` (files, rows, query), the
  marker downstream readers wait for;
* ``downsample_hour``: ``InfluxDB3DownsampleOperator`` per hour into ``home_1h`` (idempotent
  upserts, so retries and re-runs are safe).

Backfill a past day with ``airflow backfill create --dag-id example_influxdb3_fanout_backfill
--from-date 2022-01-01 --to-date 2022-01-01``. Point it at a server with the
``influxdb3_flight_default`` connection and choose where the dataset goes::

    export AIRFLOW_VAR_INFLUXDB3_EXPORT_BASE=s3://aws_default@bucket/exports   # or file:///data

See docs/scale.md for running it on Celery or Kubernetes. Only light imports here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param, task

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_influx.mapping import (
    commit_parquet_dataset,
    downsample_window_kwargs,
    parquet_window_kwargs,
)
from airflow_influx.operators.influxdb3 import (
    InfluxDB3DownsampleOperator,
    InfluxDB3ToParquetOperator,
)

from influx_flight import DownsampleSpec

EXPORT_QUERY = "SELECT * FROM home WHERE time >= $start AND time < $end"
DATASET = (
    "{{ var.value.get('influxdb3_export_base', 'file:///tmp/influxdb3-exports') }}/home/{{ ds }}"
)
WINDOW = "{{ params.window }}"

with DAG(
    dag_id="example_influxdb3_fanout_backfill",
    description="Backfill a day of home readings in hourly mapped tasks (Parquet + home_1h)",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    max_active_tasks=8,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    tags=["influxdb3", "example", "fan-out"],
    # One mapped task per window; a run can ask for fewer, longer ones with
    # `--dag-run-conf '{"window": "6h"}'` (any whole number of the 1h downsampling buckets).
    params={"window": Param("1h", type="string", description="One mapped task per window")},
) as dag:

    @task
    def hourly_exports(
        dataset: str, window: str, data_interval_start=None, data_interval_end=None
    ) -> list:
        """One mapped export per window (an hour by default) of the run's data interval."""
        return parquet_window_kwargs(data_interval_start, data_interval_end, window, dataset)

    @task
    def hourly_windows(window: str, data_interval_start=None, data_interval_end=None) -> list:
        """One mapped downsample per window of the run's data interval."""
        return downsample_window_kwargs(data_interval_start, data_interval_end, window)

    @task
    def commit_dataset(
        dataset: str, window: str, data_interval_start=None, data_interval_end=None
    ) -> dict:
        """Write _SUCCESS once every window has its file (fails, naming the missing ones, if not)."""
        return commit_parquet_dataset(
            EXPORT_QUERY, dataset, data_interval_start, data_interval_end, window
        )

    export = InfluxDB3ToParquetOperator.partial(
        task_id="export_hour", query=EXPORT_QUERY, compression="zstd", asset=False
    ).expand_kwargs(hourly_exports(DATASET, WINDOW))

    downsample = InfluxDB3DownsampleOperator.partial(
        task_id="downsample_hour",
        spec=DownsampleSpec(
            source="home",
            window="1h",
            aggregates={"temp": ["mean", "min", "max"], "hum": ["mean"], "co": ["max"]},
            group_by=["room"],
            target_measurement="home_1h",
        ),
    ).expand_kwargs(hourly_windows(WINDOW))

    export >> commit_dataset(DATASET, WINDOW)


if __name__ == "__main__":
    dag.test()
