"""Hourly downsampling: raw ``home`` readings -> a 1-hour table -> Parquet, in SQL and in InfluxQL.

One DAG per query language, built by the same function so that what differs shows in its
arguments: ``example_influxdb3_downsample_sql`` (``date_bin`` buckets into ``home_1h``) and
``example_influxdb3_downsample_influxql`` (``GROUP BY time(1h)`` buckets into
``home_1h_influxql``). Each hourly run waits until the hour has data, aggregates it per room
(a re-run or backfill overwrites the same points), then exports that hour of the 1-hour table to
one Parquet file.

The export is an event of one named Asset per DAG (``home_1h_parquet``,
``home_1h_influxql_parquet``), whatever the export base renders to in your deployment: schedule a
consumer DAG on it with ``schedule=[Asset(name="home_1h_parquet")]``; each event's ``extra``
names the destination, the files and the rows.

Point it at a server with the ``influxdb3_flight_default`` connection, e.g.::

    export AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT='{"conn_type": "influxdb3_flight",
        "host": "http://localhost:8181", "schema": "home", "password": "apiv3_..."}'
    export AIRFLOW_VAR_INFLUXDB3_EXPORT_BASE=file:///data/exports    # or s3://aws_default@bucket

Only light imports here: the scheduler parses this file often.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Asset

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow 3.0
    from airflow.timetables.interval import CronDataIntervalTimetable
from airflow_influx.operators.influxdb3 import (
    InfluxDB3DownsampleOperator,
    InfluxDB3ToParquetOperator,
)
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor

from influx_flight import DownsampleSpec

HOUR = {"start": "{{ data_interval_start | ts }}", "end": "{{ data_interval_end | ts }}"}
EXPORT_BASE = "{{ var.value.get('influxdb3_export_base', 'file:///tmp/influxdb3-exports') }}"


def hourly_downsample_dag(language: str, *, count: str, table: str, export: str) -> DAG:
    """The hourly DAG in one query language: ``count`` gates the run (the sensor), ``table`` is
    the 1-hour table written, ``export`` the query (file) exporting its hour to Parquet."""
    with DAG(
        dag_id=f"example_influxdb3_downsample_{language}",
        description=f"Downsample home readings to 1-hour buckets ({language}) and export each "
        "hour to Parquet",
        # A data-interval timetable: each run covers [logical date, +1 h), also under
        # `airflow dags test` (Airflow 3 maps a bare "@hourly" to a zero-length trigger interval).
        schedule=CronDataIntervalTimetable("@hourly", timezone="UTC"),
        start_date=datetime(2022, 1, 1, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
        tags=["influxdb3", language, "example"],
    ) as dag:
        wait_for_raw = InfluxDB3Sensor(
            task_id="wait_for_raw_data",
            query=count,
            language=language,
            query_params=HOUR,
            value_op=">=",
            value=1,
            mode="reschedule",
            poke_interval=300,
            timeout=3 * 3600,
        )

        downsample = InfluxDB3DownsampleOperator(
            task_id="downsample_to_home_1h",
            spec=DownsampleSpec(
                source="home",
                window="1h",
                aggregates={"temp": ["mean", "min", "max"], "hum": ["mean"], "co": ["max"]},
                group_by=["room"],
                target_measurement=table,
                language=language,
            ),
        )

        export = InfluxDB3ToParquetOperator(
            task_id="export_hour_to_parquet",
            query=export,
            language=language,
            query_params=HOUR,
            output_path=f"{EXPORT_BASE}/{table}/"
            + "{{ ds }}/{{ data_interval_start.strftime('%H') }}.parquet",
            compression="zstd",
            # Named, so known when the DAG is parsed although the path starts with a template.
            asset=Asset(name=f"{table}_parquet"),
        )

        wait_for_raw >> downsample >> export
    return dag


sql_dag = hourly_downsample_dag(
    "sql",
    count="SELECT count(*) FROM home WHERE time >= $start AND time < $end",
    table="home_1h",
    export="sql/home_hour_export.sql",
)
influxql_dag = hourly_downsample_dag(
    "influxql",
    count="SELECT count(temp) FROM home WHERE time >= $start AND time < $end",
    table="home_1h_influxql",
    export="sql/home_hour_export.influxql",
)


if __name__ == "__main__":
    sql_dag.test()
