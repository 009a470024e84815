"""A user's DAG: a long query under execution_timeout (the query runs for minutes unstopped)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG
from airflow_influx.operators.influxdb3 import InfluxDB3QueryOperator
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor

# DataFusion sums 10^11 values: minutes of work on any machine.
LONG_QUERY = "SELECT sum(value) AS s FROM range(100000000000)"


def record_start(context: dict) -> None:
    """Notes when execute() starts (execution_timeout counts from there)."""
    path = os.environ.get("AF_TEST_STARTS_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(f"{context['ti'].task_id} {time.time()}\n")


with DAG(
    "af_user_timeout",
    schedule=None,
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    default_args={"on_execute_callback": record_start},
) as dag:
    InfluxDB3QueryOperator(
        task_id="long_query", sql=LONG_QUERY, execution_timeout=timedelta(seconds=5)
    )
    InfluxDB3Sensor(
        task_id="long_sensor_poke",
        sql=LONG_QUERY,
        execution_timeout=timedelta(seconds=5),
        poke_interval=1,
    )
