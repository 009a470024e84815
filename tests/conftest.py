"""Suite-wide setup: isolated homes for Airflow and Dagster, and the stand-in server fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its configuration at first import, so its home must be private before any test
# module imports it. Dagster likewise gets a throwaway DAGSTER_HOME.
_HOMES = Path(tempfile.mkdtemp(prefix="influx-orch-tests-"))
os.environ["AIRFLOW_HOME"] = str(_HOMES / "airflow")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOMES / 'airflow' / 'airflow.db'}"
os.environ["DAGSTER_HOME"] = str(_HOMES / "dagster")
(_HOMES / "airflow").mkdir(parents=True, exist_ok=True)
(_HOMES / "dagster").mkdir(parents=True, exist_ok=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# ---------------------------------------------------------------------------------------------
# Stand-in server fixtures (owned by the server-engine helper)
# ---------------------------------------------------------------------------------------------

from collections.abc import Callable, Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

STANDIN_TOKEN = "apiv3_test-token-for-the-stand-in"


@pytest.fixture(scope="session")
def standin(influxdb3_server: Any) -> Any:
    """One stand-in server for the session: auth on (token ``STANDIN_TOKEN``), fast WAL flush.

    The ``influxdb3_server`` fixture of the package's own pytest plugin
    (``influx_flight.testing``), with the token set in ``pyproject.toml``. Tests must use
    their own database names (e.g. derived from the test name, as ``influxdb3_database``
    does) so they do not see each other's data.
    """
    assert influxdb3_server.token == STANDIN_TOKEN, "influxdb3_token in pyproject.toml"
    return influxdb3_server


@pytest.fixture
def standin_factory(influxdb3_server_factory: Callable[..., Any]) -> Callable[..., Any]:
    """Build more stand-in servers with other options; all are stopped at teardown.

    ``standin_factory(without_auth=True, data_dir=str(tmp_path), ...)`` returns a started
    server (the plugin's ``influxdb3_server_factory``; ``wal_flush_interval`` 0.01 s).
    """
    return influxdb3_server_factory


@pytest.fixture
def flight_client(standin: Any) -> Iterator[Any]:
    """A pyarrow FlightClient connected to the session stand-in."""
    import pyarrow.flight as flight

    client = flight.FlightClient(standin.flight_uri)
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def auth_options() -> Any:
    """FlightCallOptions carrying ``Bearer STANDIN_TOKEN``."""
    import pyarrow.flight as flight

    return flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {STANDIN_TOKEN}".encode())]
    )
