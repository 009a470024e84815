"""A task's ``execution_timeout`` ends it promptly even while the server is still computing.

A real DAG run (``dag.test()``) of ``InfluxDB3QueryOperator`` on a query the stand-in computes
for well over 30 s, with ``execution_timeout=5s``: Airflow's timeout signal interrupts the
core's wait for the first batch, the operator's hook closes the client (cancelling the call),
and the task instance ends within seconds of the timeout. The stand-in runs in a child process
that is killed afterwards, since it keeps computing the abandoned query (server-side
cancellation is the stand-in's own work).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")

from af_testdata import DEFAULT_CONN_ENV

SLOW = "SELECT count(*) AS n FROM generate_series(1, 10000000000)"
TIMEOUT_S = 5
BOUND_S = 5  # the task must end within this long after execution_timeout

DAG_FILE = f"""
import time
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG
from airflow_influx.operators.influxdb3 import InfluxDB3QueryOperator


def _mark(context):
    with open({{marker!r}}, "w") as f:
        f.write(repr(time.time()))


with DAG("af_execution_timeout", schedule=None, start_date=datetime(2024, 1, 1, tzinfo=UTC)) as dag:
    InfluxDB3QueryOperator(
        task_id="slow",
        query={SLOW!r},
        execution_timeout=timedelta(seconds={TIMEOUT_S}),
        retries=0,
        on_execute_callback=_mark,
    )

if __name__ == "__main__":
    run = dag.test()
    (ti,) = run.get_task_instances()
    with open({{marker!r}}) as f:
        started = float(f.read())
    print("RESULT", ti.state, ti.end_date.timestamp() - started)
"""


@pytest.fixture
def slow_server(influxdb3_server_process: Any) -> dict[str, Any]:
    """The stand-in's settings; its own process, killed at the end (still computing)."""
    return influxdb3_server_process(without_auth=True).settings


@pytest.mark.slow
def test_execution_timeout_ends_a_task_blocked_on_a_slow_query(
    airflow_db: None, slow_server: dict[str, Any], tmp_path: Path
) -> None:
    from influx_flight import InfluxDB3Client, InfluxDB3Config

    config = InfluxDB3Config(
        host=slow_server["flight_uri"], database="slow", write_url=slow_server["http_url"]
    )
    with InfluxDB3Client(config) as client:
        client.write_lp("m v=1 1\n")  # the database exists
    conn = {
        "conn_type": "influxdb3_flight",
        "host": slow_server["flight_uri"],
        "schema": "slow",
        "extra": {"write_url": slow_server["http_url"]},
    }
    dags = tmp_path / "dags"
    dags.mkdir()
    marker = tmp_path / "execute_started"
    dag_file = dags / "af_execution_timeout.py"
    dag_file.write_text(DAG_FILE.replace("{marker!r}", repr(str(marker))))
    # A child process, so that Airflow reads this DAGs folder from its configuration.
    env = {
        **os.environ,
        DEFAULT_CONN_ENV: json.dumps(conn),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
    }
    proc = subprocess.run(
        [sys.executable, str(dag_file)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert result, (proc.stdout + proc.stderr)[-4000:]
    _, state, ran = result[-1].split()
    assert state == "failed"
    overrun = float(ran) - TIMEOUT_S
    print(f"task ended {overrun:.2f}s after its {TIMEOUT_S}s execution_timeout")
    assert overrun < BOUND_S, f"the task ended {overrun:.1f}s after execution_timeout"
