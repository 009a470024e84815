"""Data-quality checks on InfluxDB 3 with Airflow's common.sql operators.

An ``influxdb3_flight`` connection works with ``SQLExecuteQueryOperator``, ``SQLCheckOperator``,
``SQLValueCheckOperator`` and ``SqlSensor`` (they run SQL over Flight SQL through the provider's
``DbApiHook``). ``InfluxDB3Sensor`` waits for the hour on the triggerer (deferrable).

Each hourly run checks the previous hour of raw ``home`` readings: data arrived, both rooms
reported, temperatures are plausible; then it summarises the hour per room into XCom.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.providers.common.sql.operators.sql import (
    SQLCheckOperator,
    SQLExecuteQueryOperator,
    SQLValueCheckOperator,
)
from airflow.providers.common.sql.sensors.sql import SqlSensor
from airflow.sdk import DAG

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor

CONN_ID = "influxdb3_flight_default"
# Flight SQL binds no named parameters, so the hour is templated into the SQL as literals.
IN_HOUR = "time >= '{{ data_interval_start | ts }}' AND time < '{{ data_interval_end | ts }}'"

with DAG(
    dag_id="example_influxdb3_sql_checks",
    description="common.sql checks on an hour of InfluxDB 3 data",
    # A data-interval timetable: each run covers [logical date, +1 h), also under
    # `airflow dags test` (Airflow 3 maps a bare "@hourly" to a zero-length trigger interval).
    schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    catchup=False,
    tags=["influxdb3", "common.sql", "example"],
) as dag:
    wait_deferred = InfluxDB3Sensor(
        task_id="wait_for_hour_deferrable",
        query="SELECT count(*) FROM home WHERE time >= $start AND time < $end",
        query_params={
            "start": "{{ data_interval_start | ts }}",
            "end": "{{ data_interval_end | ts }}",
        },
        value_op=">",
        value=0,
        deferrable=True,
        poke_interval=60,
        timeout=3600,
    )

    wait_sql = SqlSensor(
        task_id="wait_for_hour_sql_sensor",
        conn_id=CONN_ID,
        sql=f"SELECT count(*) FROM home WHERE {IN_HOUR}",
        poke_interval=60,
        timeout=3600,
        mode="reschedule",
    )

    has_rows = SQLCheckOperator(
        task_id="hour_has_rows",
        conn_id=CONN_ID,
        sql=f"SELECT count(*) FROM home WHERE {IN_HOUR}",
    )

    both_rooms = SQLValueCheckOperator(
        task_id="both_rooms_reported",
        conn_id=CONN_ID,
        sql=f"SELECT count(DISTINCT room) FROM home WHERE {IN_HOUR}",
        pass_value=2,
    )

    plausible = SQLCheckOperator(
        task_id="temperatures_plausible",
        conn_id=CONN_ID,
        sql=f"SELECT min(temp) > -30 AND max(temp) < 60 FROM home WHERE {IN_HOUR}",
    )

    summary = SQLExecuteQueryOperator(
        task_id="hour_summary",
        conn_id=CONN_ID,
        sql=(
            "SELECT room, count(*) AS readings, avg(temp) AS temp_mean, max(co) AS co_max "
            f"FROM home WHERE {IN_HOUR} GROUP BY room ORDER BY room"
        ),
    )

    [wait_deferred, wait_sql] >> has_rows >> [both_rooms, plausible] >> summary


if __name__ == "__main__":
    dag.test()
