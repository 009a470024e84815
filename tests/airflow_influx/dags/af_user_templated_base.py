"""A user's exports whose path starts with a template (the base is a Variable, as in the example
DAGs): one names its Asset, one leaves it to the provider; and a DAG scheduled on the name."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset
from airflow_influx.operators.influxdb3 import InfluxDB3ToParquetOperator

BASE = "{{ var.value.af_test_export_base }}"
HOUR = {"start": "2022-01-01T08:00:00Z", "end": "2022-01-01T09:00:00Z"}

with DAG(
    "af_user_templated_base",
    schedule=None,
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    catchup=False,
) as dag:
    InfluxDB3ToParquetOperator(
        task_id="to_named_asset",
        sql="SELECT * FROM home WHERE time >= $start AND time < $end",
        query_params=HOUR,
        output_path=BASE + "/named/{{ ds }}/x.parquet",
        asset="af_user_cpu_parquet",
    )
    InfluxDB3ToParquetOperator(
        task_id="to_derived_asset",
        sql="SELECT * FROM home WHERE time >= $start AND time < $end",
        query_params=HOUR,
        output_path=BASE + "/cpu/{{ ds }}/x.parquet",
    )

with DAG(
    "af_user_templated_base_consumer",
    schedule=[Asset(name="af_user_cpu_parquet")],
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
) as consumer:
    EmptyOperator(task_id="read_export")
