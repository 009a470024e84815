"""A user's DAG: wait for the first data of a table that does not exist yet."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor

MODE = os.environ.get("AF_TEST_MISSING_TABLE", "wait")

with DAG("af_user_late_table", schedule=None, start_date=datetime(2022, 1, 1, tzinfo=UTC)) as dag:
    InfluxDB3Sensor(
        task_id="wait_poke",
        sql="SELECT count(*) FROM late_arrivals",
        value_op=">=",
        value=1,
        missing_table=MODE,
        mode="poke",
        poke_interval=0.3,
        timeout=30,
    )
    InfluxDB3Sensor(
        task_id="wait_deferrable",
        sql="SELECT count(*) FROM late_arrivals",
        value_op=">=",
        value=1,
        missing_table=MODE,
        deferrable=True,
        poke_interval=0.3,
        timeout=30,
    )
    InfluxDB3Sensor(
        task_id="wait_fresh",
        table="late_arrivals",
        max_lag="1h",
        tags={"room": "Kitchen"},
        reference_time="2022-01-01T12:00:00Z",
        missing_table=MODE,
        mode="poke",
        poke_interval=0.3,
        timeout=30,
    )
