"""A user's DAG: a `time` column through common.sql into XCom, and the hook's DB-API reads."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.sdk import DAG, task

QUERY = "SELECT time, room, temp FROM home ORDER BY time, room LIMIT 2"

with DAG(
    "af_user_common_sql_time", schedule=None, start_date=datetime(2022, 1, 1, tzinfo=UTC)
) as dag:
    SQLExecuteQueryOperator(
        task_id="sql_execute",
        conn_id="influxdb3_flight_default",
        sql=QUERY,
        show_return_value_in_logs=True,
    )

    @task
    def records() -> list:
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        return InfluxDB3FlightHook().get_records(QUERY)

    @task
    def first() -> tuple:
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        return InfluxDB3FlightHook().get_first(QUERY)

    @task
    def frame_types() -> list:
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        df = InfluxDB3FlightHook().get_df(QUERY)
        return [str(df["time"].dtype), df["time"].iloc[0].isoformat()]

    records()
    first()
    frame_types()
