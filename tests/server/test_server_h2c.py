"""Prior-knowledge HTTP/2 (h2c) to the HTTP API on the shared port, as Core serves it.

Core sends an HTTP/2 request to Flight only when its content type is gRPC; every other request,
HTTP/1.1 or h2c, reaches the HTTP router. A real HTTP/2 client (httpx with h2, prior knowledge)
talks to the stand-in's shared port here: it must get the HTTP API's answers (the same bytes
as over HTTP/1.1), while gRPC on the same port keeps working.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pyarrow.flight as flight
import pytest

TOKEN = "apiv3_h2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def server(standin_factory: Any) -> Any:
    return standin_factory(tokens=[TOKEN])


def h2c(server: Any) -> httpx.Client:
    return httpx.Client(
        base_url=f"http://127.0.0.1:{server.flight_port}", http1=False, http2=True, timeout=30
    )


def doget(server: Any, db: str, sql: str) -> list[dict[str, Any]]:
    client = flight.FlightClient(server.flight_uri)
    try:
        ticket = flight.Ticket(json.dumps({"database": db, "sql_query": sql}).encode())
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
        return client.do_get(ticket, options).read_all().to_pylist()
    finally:
        client.close()


def test_h2c_requests_reach_the_http_api(server: Any) -> None:
    with h2c(server) as client:
        health = client.get("/health", headers=AUTH)
        assert health.http_version == "HTTP/2"
        assert (health.status_code, health.text) == (200, "OK")
        assert health.headers["cluster-uuid"]
        ping = client.get("/ping", headers=AUTH)
        assert ping.json()["product_name"] == "InfluxDB 3 Core"
        assert ping.headers["x-influxdb-build"] == "Core"
        lines = "\n".join(f"m,t=t{i % 7} v={i}i {1_700_000_000 + i}" for i in range(20_000))
        write = client.post("/api/v3/write_lp?db=h2", content=lines.encode(), headers=AUTH)
        assert write.status_code == 204, write.text
        # a result far larger than HTTP/2's initial 64 KiB window: flow control both ways
        query = {"db": "h2", "q": "SELECT t, v, time FROM m ORDER BY time", "format": "csv"}
        over_h2 = client.get("/api/v3/query_sql", params=query, headers=AUTH)
        assert over_h2.status_code == 200
        assert over_h2.headers["content-type"].startswith("text/csv")
    with httpx.Client(base_url=f"http://127.0.0.1:{server.flight_port}", timeout=30) as h1:
        over_h1 = h1.get("/api/v3/query_sql", params=query, headers=AUTH)
        assert over_h1.http_version == "HTTP/1.1"
    assert len(over_h2.content) > 300_000
    assert over_h2.content == over_h1.content
    # gRPC on the same port is untouched
    assert doget(server, "h2", "SELECT count(*) AS n FROM m") == [{"n": 20_000}]


def test_h2c_errors_are_the_http_api_s(server: Any) -> None:
    with h2c(server) as client:
        unauthenticated = client.get("/api/v3/query_sql", params={"db": "x", "q": "SELECT 1"})
        assert unauthenticated.status_code == 401
        assert unauthenticated.json() == {"error": "the request was not authenticated"}
        malformed = client.get("/health", headers={"Authorization": "bearer"})
        assert malformed.status_code == 400
        missing = client.get(
            "/api/v3/query_sql", params={"db": "nope", "q": "SELECT 1"}, headers=AUTH
        )
        assert missing.status_code == 404
        assert missing.json() == {"error": "query error: database not found: nope"}
        assert client.get("/no/such/route", headers=AUTH).status_code == 404


def test_h2c_and_grpc_connections_interleave(server: Any) -> None:
    with h2c(server) as client:
        assert (
            client.post("/api/v3/write_lp?db=mix", content=b"m v=1i 1", headers=AUTH).status_code
            == 204
        )
        for n in range(2, 5):
            body = f"m v={n}i {n}".encode()
            assert (
                client.post("/api/v3/write_lp?db=mix", content=body, headers=AUTH).status_code
                == 204
            )
            assert doget(server, "mix", "SELECT count(*) AS n FROM m") == [{"n": n}]
            sql = client.get(
                "/api/v3/query_sql",
                params={"db": "mix", "q": "SELECT max(v) AS v FROM m"},
                headers=AUTH,
            )
            assert sql.json() == [{"v": n}]
