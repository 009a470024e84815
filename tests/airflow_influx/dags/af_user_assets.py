"""A user's DAGs: downsample into a table Asset, export to a Parquet destination Asset, and a
consumer DAG scheduled on the downsampled table."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_influx.assets import influxdb3_asset
from airflow_influx.operators.influxdb3 import (
    InfluxDB3DownsampleOperator,
    InfluxDB3ToParquetOperator,
)

from influx_flight import DownsampleSpec

EXPORT_DIR = os.environ.get("AF_TEST_EXPORT_DIR", "/tmp/af-user-assets")

with DAG(
    "af_user_assets_producer",
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    catchup=False,
) as producer:
    downsample = InfluxDB3DownsampleOperator(
        task_id="downsample",
        spec=DownsampleSpec(
            source="home",
            window="1h",
            aggregates={"temp": ["mean"]},
            group_by=["room"],
            target_measurement="home_1h_assets",
        ),
    )
    export = InfluxDB3ToParquetOperator(
        task_id="export",
        sql="SELECT * FROM home WHERE time >= $start AND time < $end",
        query_params={
            "start": "{{ data_interval_start | ts }}",
            "end": "{{ data_interval_end | ts }}",
        },
        output_path=EXPORT_DIR + "/home/{{ ds }}/{{ data_interval_start.strftime('%H') }}.parquet",
    )
    downsample >> export

with DAG(
    "af_user_assets_consumer",
    schedule=[influxdb3_asset("home_1h_assets")],
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
) as consumer:
    from airflow.providers.standard.operators.empty import EmptyOperator

    EmptyOperator(task_id="use_home_1h")
