"""StandInServer as a whole: lifecycle, addresses, write_lp feeding DoGet, cheap import."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

import pyarrow.flight as flight
import pytest

from influx_flight.server.errors import WriteRejected


def _do_get(server: Any, ticket: dict[str, Any]) -> Any:
    client = flight.FlightClient(server.flight_uri)
    try:
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {server.token}".encode())]
        )
        return client.do_get(flight.Ticket(json.dumps(ticket)), options).read_all()
    finally:
        client.close()


def test_write_lp_is_visible_to_doget(standin: Any) -> None:
    if standin.pipeline is None:
        pytest.skip("the write pipeline is not part of this build")
    written = standin.write_lp(
        "app_write_lp",
        "home,room=Kitchen temp=21.5,hum=35.9 1641024000000000000\n"
        "home,room=Living\\ Room temp=22.1,hum=36.0 1641024000000000000\n",
    )
    assert written == 2
    table = _do_get(
        standin,
        {"database": "app_write_lp", "sql_query": "SELECT room, temp FROM home ORDER BY room"},
    )
    assert table.to_pylist() == [
        {"room": "Kitchen", "temp": 21.5},
        {"room": "Living Room", "temp": 22.1},
    ]


def test_write_lp_reports_bad_lines(standin: Any) -> None:
    if standin.pipeline is None:
        pytest.skip("the write pipeline is not part of this build")
    with pytest.raises(WriteRejected, match="line 2"):
        standin.write_lp("app_bad_lines", "m v=1 1\nm v=\n")


def test_lifecycle_and_addresses(standin_factory: Any) -> None:
    server = standin_factory(tokens=["secret-token-abc"])
    assert server.flight_uri.startswith("grpc+tcp://127.0.0.1:")
    assert server.token == "secret-token-abc"
    assert "secret-token-abc" not in repr(server)
    port = server.flight_port
    if server.http_url is not None:
        assert server.http_url.startswith("http://127.0.0.1:")
    server.stop()
    assert server.flight_uri is None
    assert server.http_url is None
    # the port is free again
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))


def test_context_manager_stops() -> None:
    from influx_flight.server import StandInServer

    with StandInServer(tokens=["x"], wal_flush_interval=0.01) as server:
        server.engine.create_database("cm")
        uri = server.flight_uri
        assert uri is not None
    assert server.flight_uri is None
    client = flight.FlightClient(uri)
    with pytest.raises(flight.FlightUnavailableError):
        client.do_get(flight.Ticket(b'{"database":"cm","sql_query":"SELECT 1"}')).read_all()


def test_empty_token_list_is_refused() -> None:
    from influx_flight.server import StandInServer

    with pytest.raises(ValueError, match="at least one non-empty token"):
        StandInServer(tokens=[])


def test_importing_the_server_package_is_cheap() -> None:
    code = (
        "import sys, influx_flight.server as s; "
        "assert 'pyarrow' not in sys.modules and 'datafusion' not in sys.modules, "
        "sorted(m for m in sys.modules if m.startswith(('pyarrow', 'datafusion'))); "
        "assert s.StandInServer.__name__ == 'StandInServer'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_busy_flight_port_is_a_clear_oserror(standin_factory: Any) -> None:
    from influx_flight.server import StandInServer

    first = standin_factory()
    with pytest.raises(OSError, match="is the port in use"):
        StandInServer(port=first.flight_port).start()
