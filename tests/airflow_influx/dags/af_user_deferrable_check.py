"""A user's DAG: a deferrable sensor whose check= stays False must end by its timeout."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from airflow.sdk import DAG
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor


def never_enough(value: object) -> bool:
    """Counts its calls in AF_TEST_CHECKS_FILE (one line per check) and always says no."""
    with open(os.environ["AF_TEST_CHECKS_FILE"], "a", encoding="utf-8") as f:
        f.write(f"{value}\n")
    return False


with DAG(
    "af_user_deferrable_check", schedule=None, start_date=datetime(2022, 1, 1, tzinfo=UTC)
) as dag:
    InfluxDB3Sensor(
        task_id="wait_for_enough",
        query="SELECT count(*) FROM home",
        check=never_enough,
        deferrable=True,
        poke_interval=float(os.environ.get("AF_TEST_POKE_INTERVAL", "5")),
        timeout=float(os.environ.get("AF_TEST_TIMEOUT", "20")),
    )
