"""Hourly downsampling in SQL: raw ``home`` readings -> the 1-hour table ``home_1h`` -> Parquet.

Each hourly run waits until the hour has data, aggregates it per room into ``home_1h``
(``date_bin`` buckets; a re-run or backfill overwrites the same points), then exports that hour
of ``home_1h`` to one Parquet file per run and reports the file as an Asset event.

Point it at a server with the ``influxdb3_flight_default`` connection, e.g.::

    export AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT='{"conn_type": "influxdb3_flight",
        "host": "http://localhost:8181", "schema": "home", "password": "apiv3_..."}'
    export AIRFLOW_VAR_INFLUXDB3_EXPORT_BASE=file:///data/exports    # or s3://aws_default@bucket

Only light imports here: the scheduler parses this file often.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_influx.operators.influxdb3 import (
    InfluxDB3DownsampleOperator,
    InfluxDB3ToParquetOperator,
)
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor

from influx_flight import DownsampleSpec

HOUR = {"start": "{{ data_interval_start | ts }}", "end": "{{ data_interval_end | ts }}"}
EXPORT_BASE = "{{ var.value.get('influxdb3_export_base', 'file:///tmp/influxdb3-exports') }}"

with DAG(
    dag_id="example_influxdb3_downsample_sql",
    description="Downsample home readings to 1-hour buckets (SQL) and export each hour to Parquet",
    # A data-interval timetable: each run covers [logical date, +1 h), also under
    # `airflow dags test` (Airflow 3 maps a bare "@hourly" to a zero-length trigger interval).
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    tags=["influxdb3", "example"],
) as dag:
    wait_for_raw = InfluxDB3Sensor(
        task_id="wait_for_raw_data",
        query="SELECT count(*) FROM home WHERE time >= $start AND time < $end",
        query_params=HOUR,
        value_op=">=",
        value=1,
        mode="reschedule",
        poke_interval=300,
        timeout=3 * 3600,
    )

    downsample = InfluxDB3DownsampleOperator(
        task_id="downsample_to_home_1h",
        spec=DownsampleSpec(
            source="home",
            window="1h",
            aggregates={"temp": ["mean", "min", "max"], "hum": ["mean"], "co": ["max"]},
            group_by=["room"],
            target_measurement="home_1h",
        ),
    )

    export = InfluxDB3ToParquetOperator(
        task_id="export_hour_to_parquet",
        query="sql/home_hour_export.sql",
        query_params=HOUR,
        output_path=EXPORT_BASE
        + "/home_1h/{{ ds }}/{{ data_interval_start.strftime('%H') }}.parquet",
        compression="zstd",
    )

    wait_for_raw >> downsample >> export


if __name__ == "__main__":
    dag.test()
