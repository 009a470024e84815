"""Core's query file limit: a scan over more gen1 files than ``--query-file-limit`` is refused.

Each 10-minute window holding rows of a table counts as one Parquet file, as Core persists them.
An unbounded query over a table with more windows than the limit fails with Core's error (gRPC
INTERNAL, HTTP 500); the same query with a time bound is answered.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from file_limit_data import CORE_TEXT, START, TEN_MINUTES, windows_table

from influx_flight.server.engine import Engine
from influx_flight.server.errors import QueryFileLimitExceeded
from influx_flight.server.file_limit import scan_time_ranges


def iso(ns: int) -> str:
    return pa.scalar(ns, pa.timestamp("ns")).as_py().isoformat() + "Z"


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = Engine()
    eng.append("db", "wide", windows_table(500), tags=["room"])  # 500 files: 83 hours
    eng.append("db", "edge", windows_table(432), tags=["room"])  # exactly the limit
    eng.append("db", "edge2", windows_table(433), tags=["room"])  # one over
    return eng


def count(engine: Engine, sql: str) -> int:
    return engine.query_sql("db", sql).read_all().column(0)[0].as_py()


def test_unbounded_query_is_refused_with_core_s_error(engine: Engine) -> None:
    with pytest.raises(QueryFileLimitExceeded) as info:
        engine.query_sql("db", "SELECT max(time) FROM wide")
    assert CORE_TEXT in info.value.message
    assert "--query-file-limit" in info.value.message


def test_the_same_query_with_a_time_bound_is_answered(engine: Engine) -> None:
    last_72h = START + 500 * TEN_MINUTES - 432 * TEN_MINUTES
    assert count(engine, f"SELECT count(*) FROM wide WHERE time >= '{iso(last_72h)}'") == 864
    between = f"time BETWEEN '{iso(START)}' AND '{iso(START + 100 * TEN_MINUTES)}'"
    assert count(engine, f"SELECT count(*) FROM wide WHERE {between}") == 201
    # a bound under OR prunes nothing, as in Core
    with pytest.raises(QueryFileLimitExceeded):
        engine.query_sql("db", f"SELECT count(*) FROM wide WHERE {between} OR v = 1")
    # tag predicates prune no files either
    with pytest.raises(QueryFileLimitExceeded):
        engine.query_sql("db", "SELECT count(*) FROM wide WHERE room = 'a'")


def test_the_limit_counts_files_strictly_above_it(engine: Engine) -> None:
    assert count(engine, "SELECT count(*) FROM edge") == 864
    with pytest.raises(QueryFileLimitExceeded):
        engine.query_sql("db", "SELECT count(*) FROM edge2")
    # the bound's window itself is one file: 432 windows from the one holding the bound
    bound = START + 1 * TEN_MINUTES + 5 * 60 * 10**9
    assert count(engine, f"SELECT count(*) FROM edge2 WHERE time > '{iso(bound)}'") == 862


def test_every_scan_is_checked_in_joins_ctes_and_subqueries(engine: Engine) -> None:
    bounded = f"time >= '{iso(START + 400 * TEN_MINUTES)}'"
    with pytest.raises(QueryFileLimitExceeded):
        engine.query_sql(
            "db",
            f"WITH recent AS (SELECT * FROM wide WHERE {bounded}) "
            "SELECT count(*) FROM recent JOIN wide w2 ON recent.time = w2.time",
        )
    sql = f"SELECT count(*) FROM (SELECT * FROM wide WHERE {bounded}) AS s"
    assert count(engine, sql) == 200


def test_zero_turns_the_limit_off() -> None:
    eng = Engine(query_file_limit=0)
    eng.append("db", "wide", windows_table(500), tags=["room"])
    assert count(eng, "SELECT count(*) FROM wide") == 1000
    low = Engine(query_file_limit=10)
    low.append("db", "wide", windows_table(11), tags=["room"])
    with pytest.raises(QueryFileLimitExceeded, match="would scan 10 Parquet files"):
        low.query_sql("db", "SELECT * FROM wide")


def test_scan_ranges_read_from_the_optimized_plan() -> None:
    plan = (
        "Projection: count(*)\n"
        "  Filter: wide.time >= TimestampNanosecond(10, None) AND wide.time < "
        'TimestampNanosecond(20, None) AND wide.room = Utf8("a")\n'
        "    TableScan: wide projection=[room, time]\n"
        "  TableScan: other projection=[time]"
    )
    assert scan_time_ranges(plan) == [("wide", 10, 19), ("other", -(2**63), 2**63 - 1)]


def test_refused_over_flight_and_http_as_core_refuses(standin_factory: Any) -> None:
    server = standin_factory(tokens=["apiv3_limit"])
    server.engine.append("db", "wide", windows_table(500), tags=["room"])
    client = flight.FlightClient(server.flight_uri)
    options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer apiv3_limit")])
    try:
        ticket = flight.Ticket(
            json.dumps({"database": "db", "sql_query": "SELECT max(time) FROM wide"}).encode()
        )
        with pytest.raises(flight.FlightInternalError, match="exceeding the file limit"):
            client.do_get(ticket, options).read_all()
        bounded = f"SELECT count(*) AS n FROM wide WHERE time >= '{iso(START + 400 * TEN_MINUTES)}'"
        ticket = flight.Ticket(json.dumps({"database": "db", "sql_query": bounded}).encode())
        assert client.do_get(ticket, options).read_all().to_pylist() == [{"n": 200}]
    finally:
        client.close()
    query = urllib.parse.urlencode({"db": "db", "q": "SELECT max(time) FROM wide"})
    request = urllib.request.Request(
        f"{server.http_url}/api/v3/query_sql?{query}",
        headers={"Authorization": "Bearer apiv3_limit"},
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=30)
    assert info.value.code == 500
    assert CORE_TEXT in info.value.read().decode()
