"""A user's exports whose paths are URLs with a template after a fixed prefix: one on the local
filesystem (``file://``), one on another fsspec scheme (``memory://``, standing in for s3)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG
from airflow_influx.operators.influxdb3 import InfluxDB3ToParquetOperator

EXPORT_URL = os.environ.get("AF_TEST_EXPORT_URL", "file:///tmp/af-user-templated")
MEMORY_BUCKET = os.environ.get("AF_TEST_MEMORY_BUCKET", "af-user-templated")

with DAG(
    "af_user_templated_export",
    schedule=None,
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    InfluxDB3ToParquetOperator(
        task_id="to_file_url",
        sql="SELECT * FROM home WHERE time >= $start AND time < $end",
        query_params={"start": "2022-01-01T08:00:00Z", "end": "2022-01-01T09:00:00Z"},
        output_path=EXPORT_URL + "/{{ ds }}/cpu.parquet",
    )
    InfluxDB3ToParquetOperator(
        task_id="to_memory",
        sql="SELECT * FROM home WHERE time >= $start AND time < $end",
        query_params={"start": "2022-01-01T08:00:00Z", "end": "2022-01-01T09:00:00Z"},
        output_path=f"memory://{MEMORY_BUCKET}/{{{{ ds }}}}/x.parquet",
    )
