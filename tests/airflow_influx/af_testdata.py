"""Shared test data and helpers for the Airflow provider tests (imported by conftest and tests)."""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
#: DAGs written as users write them, for the regression tests (a second DAG bundle).
USER_DAGS = Path(__file__).resolve().parent / "dags"

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
DEFAULT_CONN_ENV = "AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT"

#: Home-style data: two rooms, one point every 10 minutes, 2022-01-01 08:00Z to 12:00Z.
HOME_START = datetime(2022, 1, 1, 8, tzinfo=UTC)
HOME_HOURS = 4
ROOMS = ("Kitchen", "Living Room")


def home_points() -> list[dict[str, Any]]:
    """The rows written by :func:`home_line_protocol` (for computing expected aggregates)."""
    points = []
    for step in range(HOME_HOURS * 6):
        ts = HOME_START + timedelta(minutes=10 * step)
        for r, room in enumerate(ROOMS):
            points.append(
                {
                    "time": ts,
                    "room": room,
                    "temp": round(21.0 + r + 0.1 * step, 1),
                    "hum": round(35.0 + 0.05 * step, 2),
                    "co": step // 6 + r,
                }
            )
    return points


def home_line_protocol() -> str:
    lines = []
    for p in home_points():
        room = p["room"].replace(" ", "\\ ")
        ts = int(p["time"].timestamp())
        lines.append(f"home,room={room} temp={p['temp']},hum={p['hum']},co={p['co']}i {ts}")
    return "\n".join(lines) + "\n"


def db_name(request: pytest.FixtureRequest) -> str:
    """A database name unique to the test (the session stand-in is shared)."""
    return "af_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:50]


def connection_json(server: Any, database: str, token: str | None, **extra: Any) -> str:
    """An ``AIRFLOW_CONN_*`` JSON value for a stand-in (Flight host + separate HTTP write URL)."""
    return json.dumps(
        {
            "conn_type": "influxdb3_flight",
            "host": server.flight_uri,
            "schema": database,
            "password": token,
            "extra": {"write_url": server.http_url, **extra},
        }
    )
