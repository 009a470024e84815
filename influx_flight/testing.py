"""pytest fixtures for testing DAGs, assets and code against the local InfluxDB 3 stand-in.

Installed with the package as a pytest plugin (entry point ``pytest11``), so a project that
depends on ``influxdb3-orchestration[server]`` gets these fixtures without a conftest:

* ``influxdb3_server``: one running stand-in for the test session (Flight and HTTP on one
  free port, auth on). ``influxdb3_server_function`` is a fresh one per test.
* ``influxdb3_server_factory``: ``factory(**StandInServer options, demo=False)`` starts more
  servers (a data directory, ``without_auth``, demo data...); all stop at teardown.
* ``influxdb3_database``: a database name unique to the test (tests sharing the session server
  do not see each other's data).
* ``influxdb3_config``: an ``InfluxDB3Config`` for that server and database (host, database and
  token: nothing else, as for InfluxDB 3).
* ``influxdb3_client``: an open ``InfluxDB3Client`` on that config.
* ``influxdb3_airflow_connection``: sets ``AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT`` (the
  provider's default connection id) for the test and returns the connection id.
* ``influxdb3_dagster_resource``: a ``dagster_influx.InfluxDB3Resource`` on that database.
* ``influxdb3_server_process``: ``factory(*serve_args, data_dir=None, token=None, ...)`` starts
  ``influx-flight serve`` in its own process (:class:`StandInProcess`), for what an in-process
  server cannot show: ``kill -9``, SIGTERM, a restart on the same data directory, a server
  still computing after its client left. All are killed at teardown.

Session options, as ini keys (``pytest.ini`` / ``[tool.pytest.ini_options]``) or command-line
flags: ``influxdb3_token`` (default: a generated token), ``influxdb3_data_dir`` (keep the
session server's data on disk), ``influxdb3_demo`` (load the synthetic demo data set into
database ``demo``), ``influxdb3_query_file_limit`` (Core's 432 by default).

This module imports only pytest at load time: the server (pyarrow, DataFusion) is imported by
the fixtures that start one, and they skip with an install hint when it is missing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

__all__ = [
    "StandInProcess",
    "influxdb3_airflow_connection",
    "influxdb3_client",
    "influxdb3_config",
    "influxdb3_dagster_resource",
    "influxdb3_database",
    "influxdb3_server",
    "influxdb3_server_factory",
    "influxdb3_server_function",
    "influxdb3_server_process",
]

#: The Airflow provider's default connection id.
AIRFLOW_CONN_ID = "influxdb3_flight_default"
_WAL_FLUSH_INTERVAL = 0.01  # tests want writes acknowledged at once


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("influxdb3", "InfluxDB 3 stand-in (influx_flight.testing)")
    for name, help_text, default in (
        ("token", "token the session stand-in accepts (default: generated)", None),
        ("data_dir", "data directory of the session stand-in (default: memory only)", None),
        ("demo", "load the demo data set into database 'demo' (true/false)", "false"),
        ("query_file_limit", "Core's --query-file-limit for the stand-ins (default 432)", None),
    ):
        flag = "--influxdb3-" + name.replace("_", "-")
        group.addoption(flag, dest=f"influxdb3_{name}", default=None, help=help_text)
        parser.addini(f"influxdb3_{name}", help_text, default=default)


def _option(config: pytest.Config, name: str) -> str | None:
    value = config.getoption(f"influxdb3_{name}")
    if value is None:
        value = config.getini(f"influxdb3_{name}")
    return None if value in (None, "") else str(value)


def _server_class() -> Any:
    try:
        from influx_flight.server import StandInServer
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.skip(
            f"the InfluxDB 3 stand-in needs the server extra ({exc}): "
            'pip install "influxdb3-orchestration[server]"'
        )
    return StandInServer


def _start(demo: bool = False, **options: Any) -> Any:
    """A started stand-in with ``options``; with ``demo``, the demo data set in ``demo``."""
    options.setdefault("wal_flush_interval", _WAL_FLUSH_INTERVAL)
    server = _server_class()(**options)
    server.start()
    if demo:
        from influx_flight.server.demo_data import (
            HOME_TABLE,
            DemoSpec,
            load_demo_data,
            load_home_data,
        )

        try:
            engine = server.engine
            tables = ((DemoSpec().table, load_demo_data), (HOME_TABLE, load_home_data))
            for table, loader in tables:
                if not (engine.has_database("demo") and table in engine.tables("demo")):
                    loader(engine, "demo")
        except BaseException:
            server.stop()
            raise
    return server


def _session_options(config: pytest.Config) -> dict[str, Any]:
    options: dict[str, Any] = {}
    token = _option(config, "token")
    if token:
        options["tokens"] = [token]
    data_dir = _option(config, "data_dir")
    if data_dir:
        options["data_dir"] = data_dir
    limit = _option(config, "query_file_limit")
    if limit is not None:
        options["query_file_limit"] = int(limit)
    demo = (_option(config, "demo") or "false").lower() in ("1", "true", "yes", "on")
    return {"demo": demo, **options}


@pytest.fixture(scope="session")
def influxdb3_server(pytestconfig: pytest.Config) -> Iterator[Any]:
    """One running stand-in (``StandInServer``) for the whole session."""
    server = _start(**_session_options(pytestconfig))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influxdb3_server_function(pytestconfig: pytest.Config) -> Iterator[Any]:
    """A fresh stand-in for one test (memory only; the session's token and file limit)."""
    options = _session_options(pytestconfig)
    options.pop("data_dir", None)
    server = _start(**options)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def influxdb3_server_factory(
    pytestconfig: pytest.Config,
) -> Iterator[Callable[..., Any]]:
    """``factory(demo=False, **StandInServer options)`` -> a started stand-in; all stop at the
    end of the test. Without ``tokens`` a server generates its own; the file limit defaults to
    the session's."""
    servers: list[Any] = []
    limit = _session_options(pytestconfig).get("query_file_limit")

    def make(demo: bool = False, **options: Any) -> Any:
        if limit is not None:
            options.setdefault("query_file_limit", limit)
        server = _start(demo=demo, **options)
        servers.append(server)
        return server

    try:
        yield make
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.fixture
def influxdb3_database(request: pytest.FixtureRequest) -> str:
    """A database name unique to this test, e.g. ``test_rollup_writes_1h``."""
    name = re.sub(r"[^A-Za-z0-9_-]+", "_", request.node.name).strip("_-") or "test"
    if not name[0].isalnum():
        name = "t" + name
    return name[:200]


def _host(server: Any) -> str:
    return f"http://{server.host}:{server.flight_port}"


@pytest.fixture
def influxdb3_config(influxdb3_server: Any, influxdb3_database: str) -> Any:
    """``InfluxDB3Config`` for the session stand-in and this test's database."""
    from influx_flight import InfluxDB3Config

    return InfluxDB3Config(
        host=_host(influxdb3_server), database=influxdb3_database, token=influxdb3_server.token
    )


@pytest.fixture
def influxdb3_client(influxdb3_config: Any) -> Iterator[Any]:
    """An open ``InfluxDB3Client`` on ``influxdb3_config``."""
    from influx_flight import InfluxDB3Client

    with InfluxDB3Client(influxdb3_config) as client:
        yield client


@pytest.fixture
def influxdb3_airflow_connection(
    influxdb3_server: Any, influxdb3_database: str, monkeypatch: pytest.MonkeyPatch
) -> str:
    """Sets ``AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT`` for this test; returns the conn id."""
    import json

    connection = {
        "conn_type": "influxdb3_flight",
        "host": f"http://{influxdb3_server.host}",
        "port": influxdb3_server.flight_port,
        "schema": influxdb3_database,
        "password": influxdb3_server.token,
    }
    monkeypatch.setenv(
        "AIRFLOW_CONN_" + AIRFLOW_CONN_ID.upper(), json.dumps(connection, separators=(",", ":"))
    )
    return AIRFLOW_CONN_ID


@pytest.fixture
def influxdb3_dagster_resource(
    influxdb3_server: Any, influxdb3_database: str, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """A ``dagster_influx.InfluxDB3Resource`` on this test's database.

    The token reaches it as ``dg.EnvVar("INFLUXDB3_AUTH_TOKEN")``, as in production code.
    """
    try:
        import dagster as dg

        from dagster_influx import InfluxDB3Resource
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        pytest.skip(
            f"dagster is not installed ({exc}): pip install 'influxdb3-orchestration[dagster]'"
        )
    monkeypatch.setenv("INFLUXDB3_AUTH_TOKEN", influxdb3_server.token)
    return InfluxDB3Resource(
        host=_host(influxdb3_server),
        database=influxdb3_database,
        token=dg.EnvVar("INFLUXDB3_AUTH_TOKEN"),
    )


class StandInProcess:
    """``influx-flight serve`` in a process of its own, started and stopped like a real server.

    The in-process fixtures cannot be killed with SIGKILL, sent SIGTERM or restarted on the same
    data directory; this can. ``start()`` returns once the server listens (its ``--ready-file``
    exists) and may be called again after a stop: same arguments, same data directory, new
    ports. The server's stderr goes to :attr:`log_path` (quoted when it fails to start).

    Example::

        with StandInProcess(data_dir=tmp_path / "data", token="apiv3_t") as server:
            ...  # write through server.http_url
            server.kill()  # SIGKILL: no shutdown hook runs
            server.start()  # recovers from the write-ahead log
            assert server.terminate() == 0  # SIGTERM: a clean shutdown
    """

    def __init__(
        self,
        *serve_args: str,
        data_dir: str | os.PathLike[str] | None = None,
        token: str | None = None,
        without_auth: bool = False,
        split_ports: bool = True,
        wal_flush_interval: float = _WAL_FLUSH_INTERVAL,
        ready_timeout: float = 120.0,
    ) -> None:
        """``serve_args``: more ``influx-flight serve`` flags. ``token=None``: the server
        generates one (``settings["token"]``); ``without_auth=True``: no token at all.
        ``split_ports=False``: Flight and HTTP share one port, as on Core. ``data_dir=None``
        keeps data in memory (lost at every stop)."""
        if token and without_auth:
            raise ValueError("token= and without_auth=True contradict each other")
        self.serve_args = tuple(serve_args)
        self.data_dir = Path(data_dir) if data_dir is not None else None
        self.token = token
        self.without_auth = without_auth
        self.split_ports = split_ports
        self.wal_flush_interval = wal_flush_interval
        self.ready_timeout = ready_timeout
        self._dir = Path(tempfile.mkdtemp(prefix="influxdb3-standin-"))
        self.log_path = self._dir / "serve.log"
        self.stdout_path = self._dir / "stdout.log"
        self.settings: dict[str, Any] = {}
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        args = [sys.executable, "-m", "influx_flight.cli", "serve", "--port", "0"]
        args += ["--http-port", "0"] if self.split_ports else []
        args += ["--ready-file", str(self._dir / "ready.json")]
        args += ["--wal-flush-interval", str(self.wal_flush_interval)]
        if self.token:
            args += ["--token", self.token]
        elif self.without_auth:
            args += ["--without-auth"]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        return args + list(self.serve_args)

    def start(self) -> StandInProcess:
        if self.running:
            raise RuntimeError(f"the stand-in (pid {self.pid}) is already running")
        ready = self._dir / "ready.json"
        ready.unlink(missing_ok=True)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        with open(self.log_path, "ab") as log, open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(self.command(), stdout=out, stderr=log, env=env)
        deadline = time.monotonic() + self.ready_timeout
        while not ready.exists():  # written atomically (tmp file + rename) once listening
            if self.proc.poll() is not None:
                raise RuntimeError(f"influx-flight serve exited at start: {self._log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(
                    f"influx-flight serve was not ready after {self.ready_timeout:.0f} s: "
                    f"{self._log_tail()}"
                )
            time.sleep(0.05)
        self.settings = json.loads(ready.read_text())
        return self

    def output(self) -> str:
        """What the server printed on stdout so far (every start)."""
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError("the stand-in was never started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def flight_uri(self) -> str:
        return str(self.settings["flight_uri"])

    @property
    def http_url(self) -> str:
        return str(self.settings["http_url"])

    def config(self, database: str, **options: Any) -> Any:
        """An ``InfluxDB3Config`` for this server (queries over Flight, writes over HTTP)."""
        from influx_flight import InfluxDB3Config

        return InfluxDB3Config(
            host=self.flight_uri,
            write_url=self.http_url,
            database=database,
            token=self.settings.get("token") or None,
            **options,
        )

    def send_signal(self, sig: int) -> None:
        if self.proc is not None:
            self.proc.send_signal(sig)

    def wait(self, timeout: float | None = 60.0) -> int:
        if self.proc is None:
            raise RuntimeError("the stand-in was never started")
        return self.proc.wait(timeout)

    def kill(self, timeout: float = 30.0) -> int | None:
        """SIGKILL (``kill -9``) and reap: nothing of the server's shutdown runs."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM and wait for the exit code (a clean shutdown exits 0)."""
        self.send_signal(signal.SIGTERM)
        return self.wait(timeout)

    def close(self) -> None:
        """Kill the server if it still runs and remove its ready file and log."""
        self.kill()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> StandInProcess:
        return self.start() if not self.running else self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.proc.pid}" if self.running and self.proc else "stopped"
        return f"<StandInProcess {state} {self.settings.get('flight_uri', '')}>"


@pytest.fixture
def influxdb3_server_process() -> Iterator[Callable[..., StandInProcess]]:
    """``factory(*serve_args, data_dir=None, token=None, ...)`` -> a started
    :class:`StandInProcess`; every one is killed at the end of the test."""
    started: list[StandInProcess] = []

    def make(*serve_args: str, **options: Any) -> StandInProcess:
        server = StandInProcess(*serve_args, **options)
        started.append(server)
        return server.start()

    try:
        yield make
    finally:
        for server in reversed(started):
            server.close()
