"""The token never shows: `airflow tasks test` (a real task run with Airflow's secrets masker)
against the stand-in, on the success path and on the authentication-failure path.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")

from af_testdata import AIRFLOW_BIN, DEFAULT_CONN_ENV, EXAMPLE_DAGS, connection_json

HERE = Path(__file__).resolve().parent
DAG_ID = "example_influxdb3_downsample_sql"
TASK_ID = "downsample_to_home_1h"


def _tasks_test(conn_value: str, tmp_path: Any) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        DEFAULT_CONN_ENV: conn_value,
        "AIRFLOW__CORE__DAGS_FOLDER": str(EXAMPLE_DAGS),
        "AIRFLOW_VAR_INFLUXDB3_EXPORT_BASE": tmp_path.as_uri(),
        # Records every XCom value the task pushes (the temporary run is deleted afterwards).
        "AIRFLOW__CORE__XCOM_BACKEND": "af_xcom_recorder.RecordingXCom",
        "AF_TEST_XCOM_RECORD": str(tmp_path / "xcom.jsonl"),
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        # Production's level. (At DEBUG, Airflow 3.0's supervisor logs its own MaskSecret
        # request with the value in clear, before masking: an Airflow bug, fixed later.)
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
    }
    return subprocess.run(
        [str(AIRFLOW_BIN), "tasks", "test", DAG_ID, TASK_ID, "2022-01-01T09:00:00+00:00"],
        capture_output=True,
        text=True,
        timeout=240,
        env=env,
        check=False,
    )


def _xcom_values(tmp_path: Any) -> list[str]:
    record = tmp_path / "xcom.jsonl"
    return record.read_text().splitlines() if record.exists() else []


@pytest.mark.slow
def test_token_absent_from_task_output_and_xcom(
    airflow_db: None, standin_factory: Any, home_db: str, standin: Any, tmp_path: Any
) -> None:
    from af_compat import AIRFLOW_VERSION, sync_dags_to_db
    from af_testdata import home_line_protocol

    if AIRFLOW_VERSION < (3, 3):  # `tasks test` needs the DAG's outlet Asset active before 3.3
        sync_dags_to_db(EXAMPLE_DAGS / "example_influxdb3_downsample.py", "dags-folder")
    secret = "apiv3_s3cr3t-Token-that-must-never-be-printed-0123456789"
    server = standin_factory(tokens=[secret])
    server.write_lp(home_db, home_line_protocol(), precision="s")

    ok = _tasks_test(connection_json(server, home_db, secret), tmp_path)
    output = ok.stdout + ok.stderr
    assert ok.returncode == 0, output[-4000:]
    # The task really ran against the server: it read the hour and wrote the buckets.
    assert "Downsampled [2022-01-01 08:00:00+00:00, 2022-01-01 09:00:00+00:00)" in output
    assert "read 2 row(s), wrote 2 point(s)" in output
    assert secret not in output
    xcoms = _xcom_values(tmp_path)
    pushed = [json.loads(line) for line in xcoms]
    assert [x["value"]["rows_written"] for x in pushed if x["task_id"] == TASK_ID] == [2], pushed
    assert not any(secret in v for v in xcoms)

    # Failure path: the server rejects a (different, equally secret) token; the error, the
    # traceback and the retry messages must not echo it either.
    wrong = "apiv3_wrong-but-still-secret-Token-9876543210"
    failed = _tasks_test(connection_json(server, home_db, wrong), tmp_path)
    output = failed.stdout + failed.stderr
    assert "AirflowFailException: AuthenticationError: " in output, output[-4000:]
    assert wrong not in output
    assert secret not in output
    assert json.dumps(wrong)[1:-1] not in output
