"""Fixtures for the Dagster tests: a resource pointed at the session stand-in, seeded raw data.

The token reaches the resource only through ``dagster.EnvVar`` (set with monkeypatch), as in
production; each test gets its own database so tests cannot see each other's data.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import dagster as dg
import pytest
from dagster_support import TOKEN_ENV, raw_cpu_lines

from dagster_influx import InfluxDB3Resource


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
