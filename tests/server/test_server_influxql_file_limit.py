"""Core's query file limit applies to InfluxQL as to SQL: every data scan (SELECT, subqueries,
regex FROM, SHOW statements that scan data) over more gen1 files than ``--query-file-limit`` is
refused with Core's error (gRPC INTERNAL, HTTP 500); the same query with a time bound is answered.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pyarrow.flight as flight
import pytest
from file_limit_data import CORE_TEXT, windows_table

from influx_flight.server.engine import Engine
from influx_flight.server.errors import QueryFileLimitExceeded
from influx_flight.server.influxql import execute

RECENT = "time >= '2024-01-03T18:40:00Z'"  # the last 100 windows of 500
RECENT_COUNT = 200


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = Engine()
    eng.append("db", "wide", windows_table(500), tags=["room"])  # 500 files
    eng.append("db", "small", windows_table(10), tags=["room"])
    return eng


def rows(engine: Engine, q: str) -> list[dict[str, Any]]:
    return execute(engine, "db", q).read_all().to_pylist()


@pytest.mark.parametrize(
    "q",
    [
        "SELECT count(v) FROM wide",
        "SELECT v FROM wide WHERE room = 'a'",
        "SELECT mean(v) FROM wide WHERE time < now() GROUP BY time(1h) fill(null)",
        "SELECT count(v) FROM /w.*/",
        "SELECT count(v) FROM small, wide",
        "SELECT max(m) FROM (SELECT mean(v) AS m FROM wide GROUP BY room)",
        "EXPLAIN SELECT count(v) FROM wide",
        "SHOW TAG VALUES FROM wide WITH KEY = room WHERE time > '2024-01-01T00:00:00Z'",
        "SHOW MEASUREMENTS WHERE room = 'a' AND time > '2024-01-01T00:00:00Z'",
        "SHOW TAG KEYS FROM wide WHERE time > '2024-01-01T00:00:00Z'",
    ],
)
def test_unbounded_influxql_scans_are_refused(engine: Engine, q: str) -> None:
    with pytest.raises(QueryFileLimitExceeded) as info:
        execute(engine, "db", q).read_all()
    assert CORE_TEXT in info.value.message


def test_the_same_queries_with_a_time_bound_are_answered(engine: Engine) -> None:
    assert rows(engine, f"SELECT count(v) FROM wide WHERE {RECENT}")[0]["count"] == RECENT_COUNT
    assert rows(engine, f"SELECT count(v) FROM /w.*/ WHERE {RECENT}")[0]["count"] == RECENT_COUNT
    sub = f"SELECT count(m) FROM (SELECT v AS m FROM wide WHERE {RECENT})"
    assert rows(engine, sub)[0]["count"] == RECENT_COUNT
    outer = f"SELECT count(m) FROM (SELECT v AS m FROM wide) WHERE {RECENT}"
    assert rows(engine, outer)[0]["count"] == RECENT_COUNT  # the outer bound reaches the scan
    hourly = f"SELECT count(v) FROM wide WHERE {RECENT} AND time < '2024-01-04T12:00:00Z'"
    assert rows(engine, hourly + " GROUP BY time(1h) fill(0)")
    assert rows(engine, "SELECT count(v) FROM small")[0]["count"] == 20
    # SHOW statements: the catalog answers without a WHERE; data scans default to the last 24 h
    assert rows(engine, "SHOW MEASUREMENTS") and rows(engine, "SHOW TAG KEYS FROM wide")
    assert rows(engine, "SHOW FIELD KEYS FROM wide")
    assert rows(engine, "SHOW TAG VALUES FROM wide WITH KEY = room") == []  # data is older
    shown = rows(engine, f"SHOW TAG VALUES FROM wide WITH KEY = room WHERE {RECENT}")
    assert [r["value"] for r in shown] == ["a", "b"]


def test_refused_over_flight_and_http_as_core_refuses(standin_factory: Any) -> None:
    server = standin_factory(tokens=["apiv3_limit"])
    server.engine.append("db", "wide", windows_table(500), tags=["room"])
    client = flight.FlightClient(server.flight_uri)
    options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer apiv3_limit")])

    def ticket(q: str) -> flight.Ticket:
        body = {"database": "db", "sql_query": q, "query_type": "influxql"}
        return flight.Ticket(json.dumps(body).encode())

    try:
        with pytest.raises(flight.FlightInternalError, match="exceeding the file limit"):
            client.do_get(ticket("SELECT count(v) FROM wide"), options).read_all()
        bounded = ticket(f"SELECT count(v) FROM wide WHERE {RECENT}")
        table = client.do_get(bounded, options).read_all()
        assert table.column("count").to_pylist() == [RECENT_COUNT]
    finally:
        client.close()

    def get(q: str) -> urllib.request.Request:
        query = urllib.parse.urlencode({"db": "db", "q": q})
        return urllib.request.Request(
            f"{server.http_url}/api/v3/query_influxql?{query}",
            headers={"Authorization": "Bearer apiv3_limit"},
        )

    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(get("SELECT count(v) FROM wide"), timeout=30)
    assert info.value.code == 500
    assert CORE_TEXT in info.value.read().decode()
    with urllib.request.urlopen(get(f"SELECT count(v) FROM wide WHERE {RECENT}"), timeout=30) as r:
        body = json.loads(r.read())
    assert body[0]["count"] == RECENT_COUNT
