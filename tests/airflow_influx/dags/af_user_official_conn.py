"""A user's DAG on a connection made for the official provider's InfluxDB3Hook (`influxdb3`)."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, task
from airflow_influx.operators.influxdb3 import InfluxDB3QueryOperator
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor

with DAG(
    "af_user_official_conn", schedule=None, start_date=datetime(2022, 1, 1, tzinfo=UTC)
) as dag:
    sensor = InfluxDB3Sensor(
        task_id="sensor",
        influxdb3_conn_id="official_influxdb3",
        sql="SELECT count(*) FROM home",
        value_op=">",
        value=0,
        poke_interval=0.2,
        timeout=10,
    )
    query = InfluxDB3QueryOperator(
        task_id="query",
        influxdb3_conn_id="official_influxdb3",
        sql="SELECT room, count(*) AS n FROM home GROUP BY room ORDER BY room",
    )

    @task
    def hook_records() -> list:
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        hook = InfluxDB3FlightHook(influxdb3_conn_id="official_influxdb3")
        return [list(r) for r in hook.get_records("SELECT count(*) FROM home")]

    sensor >> query >> hook_records()
