"""One port for Flight and HTTP, as Core's 8181: real clients configured with a host only.

The official influxdb3-python client (queries over gRPC, writes over HTTP) and the project's
own client reach the stand-in through the same ``host:port``; HTTP/1.1 and gRPC connections
interleave; a client that connects and says nothing does not hold up others; splitting HTTP off
with ``http_port`` still works; ``influx-flight serve`` prints settings without ``write_url``.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.request
from typing import Any

import pyarrow.flight as flight
import pytest

from influx_flight.testing import StandInProcess

TOKEN = "apiv3_shared-port"


def http(url: str, data: bytes | None = None, method: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Authorization": f"Bearer {TOKEN}"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def doget(uri: str, db: str, sql: str) -> list[dict[str, Any]]:
    client = flight.FlightClient(uri)
    try:
        ticket = flight.Ticket(json.dumps({"database": db, "sql_query": sql}).encode())
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
        return client.do_get(ticket, options).read_all().to_pylist()
    finally:
        client.close()


@pytest.fixture
def server(standin_factory: Any) -> Any:
    return standin_factory(tokens=[TOKEN])


def test_flight_and_http_answer_on_one_port(server: Any) -> None:
    assert server.shared_port
    assert server.flight_port == server.http_port
    assert server.flight_uri == f"grpc+tcp://127.0.0.1:{server.http_port}"
    url = f"http://127.0.0.1:{server.flight_port}"
    assert http(f"{url}/api/v3/write_lp?db=one", b"m,t=a v=1i 1\nm,t=b v=2i 2")[0] == 204
    assert doget(server.flight_uri, "one", "SELECT t, v FROM m ORDER BY t") == [
        {"t": "a", "v": 1},
        {"t": "b", "v": 2},
    ]
    status, body = http(f"{url}/api/v3/query_sql?db=one&q=SELECT+count(*)+AS+n+FROM+m")
    assert (status, json.loads(body)) == (200, [{"n": 2}])
    assert http(f"{url}/ping")[0] == 200


def test_influxdb3_python_with_only_a_host(server: Any) -> None:
    client3 = pytest.importorskip("influxdb_client_3")
    client = client3.InfluxDBClient3(
        host=f"http://127.0.0.1:{server.flight_port}", token=TOKEN, database="py"
    )
    try:
        client.write(record="home,room=Kitchen temp=21.5 1641024000000000000")
        table = client.query("SELECT room, temp FROM home")
        assert table.to_pylist() == [{"room": "Kitchen", "temp": 21.5}]
        assert client.query("SHOW MEASUREMENTS", language="influxql").num_rows == 1
    finally:
        client.close()


def test_the_project_client_needs_no_write_url(server: Any) -> None:
    from influx_flight import InfluxDB3Client, InfluxDB3Config

    config = InfluxDB3Config(
        host=f"http://127.0.0.1:{server.flight_port}", database="core", token=TOKEN
    )
    with InfluxDB3Client(config) as client:
        client.write_lp("m,t=x v=3i 5")
        assert client.query("SELECT v FROM m").to_table().to_pylist() == [{"v": 3}]


def test_interleaved_connections_and_a_silent_client(server: Any) -> None:
    silent = socket.create_connection(("127.0.0.1", server.flight_port))  # says nothing
    try:
        errors: list[BaseException] = []

        def work(k: int) -> None:
            try:
                url = f"{server.http_url}/api/v3/write_lp?db=mix"
                assert http(url, f"m,w=w{k} v={k}i {k + 1}".encode())[0] == 204
                rows = doget(server.flight_uri, "mix", f"SELECT v FROM m WHERE w = 'w{k}'")
                assert rows == [{"v": k}]
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(k,)) for k in range(12)]
        started = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert time.monotonic() - started < 30
    finally:
        silent.close()


def test_http_split_off_on_its_own_port(standin_factory: Any) -> None:
    server = standin_factory(tokens=[TOKEN], http_port=0)
    assert not server.shared_port
    assert server.http_port != server.flight_port
    assert http(f"{server.http_url}/api/v3/write_lp?db=split", b"m v=1i 1")[0] == 204
    assert doget(server.flight_uri, "split", "SELECT v FROM m") == [{"v": 1}]


def test_stop_closes_the_shared_port(standin_factory: Any) -> None:
    server = standin_factory(tokens=[TOKEN])
    port = server.flight_port
    server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_serve_prints_a_connection_without_write_url() -> None:
    with StandInProcess(token=TOKEN, split_ports=False) as proc:
        settings = proc.settings
        assert settings["flight_port"] == settings["http_port"]
        airflow = json.loads(settings["env"]["AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT"])
        assert "extra" not in airflow
        assert "INFLUXDB3_WRITE_URL" not in settings["env"]
        url = f"http://127.0.0.1:{settings['flight_port']}/api/v3/write_lp?db=cli"
        assert http(url, b"m v=1i 1")[0] == 204
        assert doget(settings["flight_uri"], "cli", "SELECT v FROM m") == [{"v": 1}]
        assert proc.terminate() == 0
        text = proc.output()
    assert "one port" in text
    assert "WRITE_URL" not in text
