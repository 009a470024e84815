"""Fixtures for the Dagster tests: a resource pointed at the session stand-in, seeded raw data.

The token reaches the resource only through ``dagster.EnvVar`` (set with monkeypatch), as in
production; each test gets its own database so tests cannot see each other's data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from dagster_influx import InfluxDB3Resource

TOKEN_ENV = "INFLUXDB3_AUTH_TOKEN"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOSTS = ("alpha", "beta")
STEP_S = 60


def raw_cpu_lines(hours: int = 4, start: datetime = T0) -> str:
    """Deterministic raw points: one per host per minute; usage depends on host and minute."""
    lines = []
    t0 = int(start.timestamp())
    for minute in range(hours * 60):
        ts = (t0 + minute * STEP_S) * 1_000_000_000
        for h, host in enumerate(HOSTS):
            usage = float((minute * 7 + h * 13) % 100)
            lines.append(f"cpu,host={host},region=eu usage={usage},load={minute % 5}i {ts}")
    return "\n".join(lines)


@pytest.fixture
def db_name(request: pytest.FixtureRequest) -> str:
    """A database name unique to the test."""
    return "dg_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]


@pytest.fixture
def token_env(standin: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """The stand-in's token, published only as an environment variable."""
    monkeypatch.setenv(TOKEN_ENV, standin.token)
    return standin.token


@pytest.fixture
def make_resource(standin: Any, token_env: str) -> Callable[..., InfluxDB3Resource]:
    def make(database: str, **overrides: Any) -> InfluxDB3Resource:
        settings: dict[str, Any] = {
            "host": standin.flight_uri,
            "write_url": standin.http_url,
            "database": database,
            "token": dg.EnvVar(TOKEN_ENV),
        }
        settings.update(overrides)
        return InfluxDB3Resource(**settings)

    return make


@pytest.fixture
def influx(make_resource: Callable[..., InfluxDB3Resource], db_name: str) -> InfluxDB3Resource:
    return make_resource(db_name)


@pytest.fixture
def seeded(standin: Any, db_name: str) -> str:
    """Four hours of raw `cpu` points in the test's database; returns the database name."""
    standin.write_lp(db_name, raw_cpu_lines(), precision="ns")
    return db_name


def hour(n: int) -> datetime:
    return T0 + timedelta(hours=n)
