"""A user's DAG scheduled on the example downsampling DAGs' Parquet exports, by Asset name: the
export base is a Variable that differs per deployment, the names do not."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, Asset

with DAG(
    "af_user_export_consumer",
    schedule=Asset(name="home_1h_parquet") | Asset(name="home_1h_influxql_parquet"),
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
) as dag:
    EmptyOperator(task_id="read_export")
