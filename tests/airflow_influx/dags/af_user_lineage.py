"""A user's DAG run with OpenLineage on: which datasets does each task report?"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG
from airflow_influx.operators.influxdb3 import (
    InfluxDB3DownsampleOperator,
    InfluxDB3QueryOperator,
    InfluxDB3ToParquetOperator,
)

from influx_flight import DownsampleSpec

EXPORT_DIR = os.environ.get("AF_TEST_EXPORT_DIR", "/tmp/af-user-lineage")

with DAG("af_user_lineage", schedule=None, start_date=datetime(2022, 1, 1, tzinfo=UTC)) as dag:
    InfluxDB3QueryOperator(task_id="query", sql="SELECT room, max(temp) FROM home GROUP BY room")
    InfluxDB3ToParquetOperator(
        task_id="export", sql="SELECT * FROM home", output_path=EXPORT_DIR + "/home.parquet"
    )
    InfluxDB3DownsampleOperator(
        task_id="downsample",
        spec=DownsampleSpec(
            source="home",
            window="1h",
            aggregates={"temp": ["mean"]},
            group_by=["room"],
            target_measurement="home_1h_lineage",
        ),
        start="2022-01-01T08:00:00Z",
        end="2022-01-01T10:00:00Z",
    )
    SQLExecuteQueryOperator(
        task_id="common_sql",
        conn_id="influxdb3_flight_default",
        sql="SELECT count(*) FROM home",
    )
