"""Fixtures for the Airflow provider tests: a migrated metadata DB, connections to the stand-in,
and deterministic home-style data.

The root conftest has already pointed AIRFLOW_HOME at a temporary directory with a sqlite DB.
``dag.test()`` only runs DAGs whose file lies in the DAGs folder, so that folder is the
repository's ``example_dags/`` for this session.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from af_testdata import (
    AIRFLOW_BIN,
    DEFAULT_CONN_ENV,
    EXAMPLE_DAGS,
    REPO,
    USER_DAGS,
    connection_json,
    db_name,
    home_line_protocol,
)

os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(EXAMPLE_DAGS))
# The users' DAGs of the regression tests live in tests/airflow_influx/dags: a second bundle, so
# that dag.test() (which runs only DAGs of a bundle) accepts them next to the examples.
os.environ.setdefault(
    "AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST",
    json.dumps(
        [
            {
                "name": "dags-folder",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {},
            },
            {
                "name": "af-user-dags",
                "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
                "kwargs": {"path": str(USER_DAGS)},
            },
        ]
    ),
)


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Migrate the session's sqlite metadata DB once (what dag.test() and tasks test need)."""
    proc = subprocess.run(
        [str(AIRFLOW_BIN), "db", "migrate"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


@pytest.fixture
def influx_db(standin: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database name on the session stand-in."""
    return db_name(request)


@pytest.fixture
def home_db(standin: Any, influx_db: str) -> str:
    """``influx_db`` loaded with the home-style data (visible to queries on return)."""
    standin.write_lp(influx_db, home_line_protocol(), precision="s")
    return influx_db


@pytest.fixture
def default_conn(
    standin: Any, influx_db: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., str]:
    """Point ``influxdb3_flight_default`` at the stand-in's ``influx_db``.

    Returns ``configure(**extra) -> json`` to change the extras (or ``token=``) afterwards.
    """

    def configure(*, token: str | None = standin.token, **extra: Any) -> str:
        value = connection_json(standin, influx_db, token, **extra)
        monkeypatch.setenv(DEFAULT_CONN_ENV, value)
        return value

    configure()
    return configure


@pytest.fixture
def artifacts_dir() -> Iterator[Path]:
    path = REPO / "test-artifacts"
    path.mkdir(exist_ok=True)
    yield path
