"""`influx-flight serve`: argument parsing, the printed settings, --ready-file, --demo data,
SIGTERM shutdown, restart on a data dir, and the deterministic demo data generator."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from influx_flight.server.cli import add_serve_arguments, connection_settings
from influx_flight.server.demo_data import DemoSpec, generate_batches, load_demo_data
from influx_flight.server.engine import Engine

REPO = Path(__file__).resolve().parents[2]


def test_serve_arguments_defaults_and_repeatable_token() -> None:
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port, args.http_port) == ("127.0.0.1", 8181, None)  # one port
    assert args.query_file_limit == 432
    assert (args.token, args.without_auth, args.data_dir) == (None, False, None)
    assert args.wal_flush_interval == 1.0 and args.demo is False
    args = parser.parse_args(["--token", "a", "--token", "b", "--demo", "--demo-points", "10"])
    assert args.token == ["a", "b"] and args.demo_points == 10


def test_connection_settings_shape() -> None:
    s = connection_settings("127.0.0.1", 1111, 2222, "tok", "demo")
    assert json.loads(s["env"]["AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT"]) == {
        "conn_type": "influxdb3_flight",
        "host": "http://127.0.0.1",
        "port": 1111,
        "schema": "demo",
        "password": "tok",
        "extra": {"write_url": "http://127.0.0.1:2222"},
    }
    assert s["env"]["INFLUXDB3_HOST_URL"] == "http://127.0.0.1:1111"
    assert s["env"]["INFLUXDB3_WRITE_URL"] == "http://127.0.0.1:2222"
    assert (s["env"]["INFLUXDB3_DATABASE_NAME"], s["env"]["INFLUXDB3_AUTH_TOKEN"]) == (
        "demo",
        "tok",
    )
    # one port (the default): host, database and token are the whole connection
    shared = connection_settings("127.0.0.1", 1111, 1111, "tok", "demo")
    assert "extra" not in json.loads(shared["env"]["AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT"])
    assert "INFLUXDB3_WRITE_URL" not in shared["env"]
    assert shared["http_url"] == "http://127.0.0.1:1111"


def test_dispatcher_knows_serve() -> None:
    from influx_flight import cli

    try:
        parser = cli.build_parser()
    except ImportError as exc:  # another subcommand's module is not there yet
        pytest.skip(f"the influx-flight dispatcher cannot build its parser yet: {exc}")
    args = parser.parse_args(["serve", "--port", "0", "--http-port", "0"])
    assert args.port == 0 and args._run.__name__ == "run_serve"


# -- demo data ----------------------------------------------------------------------------------


def test_demo_data_is_deterministic_and_shaped() -> None:
    spec = DemoSpec(rooms=3, sensors=2, days=0.01)
    first = pa.Table.from_batches(list(generate_batches(spec)))
    second = pa.Table.from_batches(list(generate_batches(spec)))
    assert first.equals(second)
    assert first.num_rows == spec.total_points == 6 * (864 // 10)
    assert first.schema.field("time").type == pa.timestamp("ns")
    assert first.schema.field("co2").type == pa.int64()
    times = first.column("time").cast(pa.int64()).to_numpy()
    assert times.min() == spec.start_ns and sorted(set((times[1:] - times[:-1]).tolist())) == [
        0,
        10**9 * 10,
    ]
    other = pa.Table.from_batches(
        list(generate_batches(DemoSpec(rooms=3, sensors=2, days=0.01, seed=7)))
    )
    assert not other.column("temperature").equals(first.column("temperature"))


def test_demo_data_loads_a_million_points(tmp_path: Path) -> None:
    engine = Engine()
    spec = DemoSpec.for_points(1_000_000, rooms=5, sensors=4)
    assert load_demo_data(engine, "demo", spec) == spec.total_points >= 999_000
    # ~6 days of data: more gen1 files than Core's query file limit, so ask for one day
    got = engine.query_sql(
        "demo",
        "SELECT count(DISTINCT room) AS rooms, count(DISTINCT sensor) AS sensors FROM sensors"
        " WHERE time >= '2024-01-01T00:00:00Z' AND time < '2024-01-02T00:00:00Z'",
    ).read_all()
    assert got.to_pylist() == [{"rooms": 5, "sensors": 4}]
    assert engine.snapshot("demo")["sensors"].num_rows == spec.total_points
    assert engine.tables("demo")["sensors"].tags == ["room", "sensor"]


# -- the real command ----------------------------------------------------------------------------


def _serve(tmp_path: Path, *extra: str) -> tuple[subprocess.Popen[str], dict[str, Any]]:
    ready = tmp_path / "ready.json"
    if ready.exists():
        ready.unlink()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "influx_flight.cli",  # the real `influx-flight` dispatcher
            "serve",
            "--port",
            "0",
            "--http-port",
            "0",
            "--wal-flush-interval",
            "0.05",
            "--ready-file",
            str(ready),
            *extra,
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"serve exited early: {proc.stderr.read() if proc.stderr else ''}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("serve did not write its ready file")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def _sql(settings: dict[str, Any], sql: str, db: str = "demo") -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"db": db, "q": sql})
    req = urllib.request.Request(
        f"{settings['http_url']}/api/v3/query_sql?{query}",
        headers={"Authorization": f"Bearer {settings['token']}"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0
    return out


def test_serve_with_demo_prints_settings_and_serves_both_protocols(tmp_path: Path) -> None:
    proc, settings = _serve(
        tmp_path, "--demo", "--demo-rooms", "3", "--demo-sensors", "2", "--demo-points", "6000"
    )
    try:
        assert settings["token"].startswith("apiv3_")
        assert settings["database"] == "demo"
        conn = json.loads(settings["env"]["AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT"])
        assert conn["port"] == settings["flight_port"] and conn["password"] == settings["token"]
        got = _sql(settings, "SELECT room, count(*) AS n FROM sensors GROUP BY room ORDER BY room")
        assert got == [
            {"room": "Bedroom", "n": 2000},
            {"room": "Kitchen", "n": 2000},
            {"room": "Living Room", "n": 2000},
        ]
        # the Get-started shaped `home` table the Airflow examples downsample: one series a room
        home = _sql(settings, "SELECT room, count(*) AS n, min(co) AS co FROM home GROUP BY room")
        assert sorted((r["room"], r["n"]) for r in home) == [
            ("Bedroom", 1000),
            ("Kitchen", 1000),
            ("Living Room", 1000),
        ]
        assert all(r["co"] >= 0 for r in home)
        client = flight.FlightClient(settings["flight_uri"])
        ticket = json.dumps(
            {
                "database": "demo",
                "sql_query": "SELECT count(*) AS n FROM sensors",
                "query_type": "sql",
            }
        )
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {settings['token']}".encode())]
        )
        table = client.do_get(flight.Ticket(ticket.encode()), options).read_all()
        assert table.to_pylist() == [{"n": 6000}]
        client.close()
    finally:
        out = _stop(proc)
    lines = out.splitlines()
    assert "ready" in lines
    assert any(line.startswith("export AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT='{") for line in lines)
    for key in (
        "INFLUXDB3_HOST_URL",
        "INFLUXDB3_DATABASE_NAME",
        "INFLUXDB3_AUTH_TOKEN",
        "INFLUXDB3_WRITE_URL",
    ):
        assert any(line.startswith(f"export {key}=") for line in lines)
    assert lines.index("ready") > max(
        i for i, line in enumerate(lines) if line.startswith("export")
    )


def test_serve_data_dir_keeps_writes_and_demo_across_restarts(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = (
        "--data-dir",
        str(data),
        "--token",
        "tok1",
        "--token",
        "tok2",
        "--demo",
        "--demo-points",
        "800",
    )
    proc, settings = _serve(tmp_path, *args)
    try:
        assert settings["token"] == "tok1"
        req = urllib.request.Request(
            settings["http_url"] + "/api/v3/write_lp?db=kept",
            data=b"m f=1 1",
            method="POST",
            headers={"Authorization": "Token tok2"},
        )
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 204
    finally:
        _stop(proc)
    proc, settings = _serve(tmp_path, *args)
    try:
        assert _sql(settings, "SELECT count(*) AS n FROM sensors") == [{"n": 800}]  # not reloaded
        assert _sql(settings, "SELECT f FROM m", db="kept") == [{"f": 1.0}]
    finally:
        out = _stop(proc)
    assert "already present" in out


def test_serve_refuses_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    from influx_flight.server.cli import run_serve

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        try:
            code = run_serve(parser.parse_args(["--port", "0", "--http-port", str(port)]))
        finally:
            for sig, handler in handlers.items():
                signal.signal(sig, handler)
    assert code == 1
    assert "--http-port 0" in capsys.readouterr().err


def test_demo_start_option() -> None:
    from datetime import UTC, datetime

    from influx_flight.server.cli import _demo_spec

    parser = argparse.ArgumentParser()
    add_serve_arguments(parser)
    spec = _demo_spec(
        parser.parse_args(["--demo-days", "0.5", "--demo-start", "2023-05-01T00:00:00Z"])
    )
    assert spec.start == datetime(2023, 5, 1, tzinfo=UTC) and spec.points_per_series == 4320
    spec = _demo_spec(parser.parse_args(["--demo-points", "800", "--demo-start", "now"]))
    end_s = spec.start_ns // 10**9 + spec.points_per_series * spec.interval_s
    assert abs(end_s - time.time()) < 60 and spec.total_points == 800
    with pytest.raises(SystemExit, match="not an ISO time"):
        _demo_spec(parser.parse_args(["--demo-start", "yesterday"]))
