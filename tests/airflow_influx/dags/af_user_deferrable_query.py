"""A user's DAG: deferrable queries (rows to XCom, too many rows, bad SQL, a missing table).

Every failure's message is appended to AF_TEST_FAILURES_FILE (JSON lines), so the test reads
exactly what the user sees in the task log.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime

from airflow.sdk import DAG
from airflow_influx.operators.influxdb3 import InfluxDB3QueryOperator


def record_failure(context: dict) -> None:
    path = os.environ.get("AF_TEST_FAILURES_FILE")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            line = {"task_id": context["ti"].task_id, "error": repr(context.get("exception"))}
            f.write(json.dumps(line) + "\n")


with DAG(
    "af_user_deferrable_query",
    schedule=None,
    start_date=datetime(2022, 1, 1, tzinfo=UTC),
    default_args={"on_failure_callback": record_failure, "deferrable": True},
) as dag:
    InfluxDB3QueryOperator(
        task_id="kitchen_rows",
        query="SELECT time, room, temp FROM home WHERE room = $room AND time >= $start "
        "ORDER BY time LIMIT 3",
        query_params={"room": "Kitchen", "start": "2022-01-01T08:00:00Z"},
    )
    InfluxDB3QueryOperator(
        task_id="too_many_rows",
        query="SELECT time, room, temp FROM home",
        max_rows=5,
        retries=3,  # an oversized result never retries
    )
    InfluxDB3QueryOperator(task_id="bad_sql", query="SELEC time FROM home", retries=3)
    InfluxDB3QueryOperator(task_id="missing_table", query="SELECT * FROM not_written_yet")
