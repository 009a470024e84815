"""InfluxQL against the stand-in: InfluxDB 3's result shape, errors and the wiring over Flight
(JSON DoGet ticket with ``query_type: influxql``) and HTTP (``/api/v3/query_influxql``)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influx_flight.server.errors import (
    DatabaseNotFound,
    QueryNotImplemented,
    QueryPlanError,
    ServerError,
)
from influx_flight.server.influxql import execute

DB = "influxql_exec"
H = 3600
BASE = 1_700_000_000 - 1_700_000_000 % 86400  # a UTC midnight (2023-11-14)
LP = f"""\
cpu,host=a,region=east usage=10,reqs=1i {BASE}
cpu,host=a,region=east usage=20,reqs=2i {BASE + H}
cpu,host=b,region=west usage=30,reqs=3i {BASE + 600}
cpu,host=b,region=west usage=50 {BASE + 2 * H}
cpu,region=west usage=5,reqs=9i {BASE + 3 * H}
mem,host=a free=100i {BASE + 60}
mem,host=b free=200i {BASE + 2 * H + 60}
"""
W = f"time >= {BASE}s AND time < {BASE + 4 * H}s"


@pytest.fixture(scope="module")
def srv(standin: Any) -> Any:
    standin.write_lp(DB, LP, precision="s")
    return standin


def q(srv: Any, text: str, params: dict[str, Any] | None = None, db: str = DB) -> pa.Table:
    return execute(srv.engine, db, text, params).read_all()


def meta(table: pa.Table) -> dict[str, Any]:
    return json.loads(table.schema.metadata[b"iox::influxql::group_key::metadata"])


def ns(seconds: int) -> int:
    return seconds * 1_000_000_000


def times(table: pa.Table, column: str = "time") -> list[int]:
    return table.column(column).cast(pa.int64()).to_pylist()


def test_raw_select_shape(srv: Any) -> None:
    t = q(srv, f"SELECT usage, host FROM cpu WHERE {W}")
    assert t.schema.names == ["iox::measurement", "time", "usage", "host"]
    assert t.schema.field("iox::measurement").type == pa.string()
    assert t.schema.field("time").type == pa.timestamp("ns")
    assert t.schema.field("host").type == pa.string()
    assert t.column("usage").to_pylist() == [10.0, 30.0, 20.0, 50.0, 5.0]
    assert t.column("host").to_pylist() == ["a", "b", "a", "b", None]
    assert meta(t) == {}


def test_wildcard_is_alphabetical_and_excludes_group_tags(srv: Any) -> None:
    t = q(srv, "SELECT * FROM cpu")
    assert t.schema.names == ["iox::measurement", "time", "host", "region", "reqs", "usage"]
    t = q(srv, "SELECT * FROM cpu GROUP BY host")
    assert t.schema.names == ["iox::measurement", "time", "host", "region", "reqs", "usage"]
    assert meta(t) == {"tagKeyColumns": [{"tagKey": "host", "columnIndex": 2}]}
    # rows ordered by the group tag (missing tag first), then time
    assert t.column("host").to_pylist() == [None, "a", "a", "b", "b"]


def test_group_by_time_shape_and_metadata(srv: Any) -> None:
    t = q(
        srv, f"SELECT mean(usage), count(reqs) FROM cpu WHERE {W} GROUP BY time(1h), region, host"
    )
    assert t.schema.names == [
        "iox::measurement",
        "time",
        "host",
        "region",
        "mean",
        "count",
    ]
    assert meta(t) == {
        "tagKeyColumns": [
            {"tagKey": "host", "columnIndex": 2},
            {"tagKey": "region", "columnIndex": 3},
        ]
    }
    keys = list(zip(t.column("host").to_pylist(), t.column("region").to_pylist(), strict=True))
    assert keys == sorted(keys, key=lambda k: (k[0] is not None, k[0] or "", k[1] or ""))
    first = t.filter(pa.compute.equal(t.column("host"), "a"))
    assert times(first) == [ns(BASE + k * H) for k in range(4)]
    assert first.column("mean").to_pylist() == [10.0, 20.0, None, None]
    assert first.column("count").to_pylist() == [1, 1, 0, 0]  # count fills with 0


def test_projected_group_tag_keeps_its_position(srv: Any) -> None:
    t = q(srv, f"SELECT max(usage), host FROM cpu WHERE {W} GROUP BY host, region")
    assert t.schema.names == ["iox::measurement", "time", "region", "max", "host"]
    assert meta(t) == {
        "tagKeyColumns": [
            {"tagKey": "host", "columnIndex": 4, "isProjected": True},
            {"tagKey": "region", "columnIndex": 2},
        ]
    }


def test_time_of_lone_selector_and_of_aggregates(srv: Any) -> None:
    t = q(srv, "SELECT max(usage), host FROM cpu")
    assert times(t) == [ns(BASE + 2 * H)] and t.column("host").to_pylist() == ["b"]
    t = q(srv, "SELECT mean(usage) FROM cpu")
    assert times(t) == [0]  # no time range: epoch 0
    t = q(srv, f"SELECT mean(usage) FROM cpu WHERE {W}")
    assert times(t) == [ns(BASE)]  # the lower bound
    t = q(srv, f"SELECT max(usage) FROM cpu WHERE {W} GROUP BY time(2h)")
    assert times(t) == [ns(BASE), ns(BASE + 2 * H)]  # window starts


def test_aliases_and_duplicate_names(srv: Any) -> None:
    t = q(
        srv, f"SELECT time AS t, mean(usage), mean(usage) * 2, mean(reqs) AS m FROM cpu WHERE {W}"
    )
    assert t.schema.names == ["iox::measurement", "t", "mean", "mean_1", "m"]


def test_several_measurements_are_unioned_in_name_order(srv: Any) -> None:
    reader = execute(srv.engine, DB, "SELECT * FROM mem, cpu", None)
    assert reader.schema.names[:2] == ["iox::measurement", "time"]
    t = reader.read_all()
    names = t.column("iox::measurement").to_pylist()
    assert names == ["cpu"] * 5 + ["mem"] * 2
    assert set(t.schema.names) == {
        "iox::measurement",
        "time",
        "free",
        "host",
        "region",
        "reqs",
        "usage",
    }
    assert q(srv, "SELECT * FROM /^m/").column("iox::measurement").to_pylist() == ["mem", "mem"]


def test_unknown_measurement_is_an_empty_result(srv: Any) -> None:
    t = q(srv, "SELECT x FROM nosuch")
    assert t.num_rows == 0 and t.schema.names == ["iox::measurement"]


@pytest.mark.parametrize(
    "text", ["SELECT host FROM cpu", "SELECT mean(host) FROM cpu", "SELECT nosuch FROM cpu"]
)
def test_no_selected_field_in_a_measurement_means_no_rows(srv: Any, text: str) -> None:
    """As InfluxQL: a measurement none of whose selected fields exist yields no series."""
    assert q(srv, text).num_rows == 0


def test_default_upper_bound_is_now_for_group_by_time(standin: Any) -> None:
    db = "influxql_exec_now"
    now = int(time.time())
    standin.write_lp(db, f"m v=1 {now - 3 * 60}\nm v=2 {now - 90}", precision="s")
    t = q(standin, "SELECT count(v) FROM m WHERE time >= now() - 5m GROUP BY time(1m)", db=db)
    assert sum(t.column("count").to_pylist()) == 2
    assert t.num_rows in (5, 6)  # windows from now()-5m up to the one holding now()
    assert times(t)[-1] <= time.time_ns() < times(t)[-1] + ns(60)


def test_tz_clause_types_time_and_moves_windows(srv: Any) -> None:
    t = q(srv, f"SELECT count(usage) FROM cpu WHERE {W} GROUP BY time(1d) tz('Asia/Kolkata')")
    assert t.schema.field("time").type == pa.timestamp("ns", tz="Asia/Kolkata")
    # Kolkata midnight is 18:30 UTC the day before.
    assert times(t) == [ns(BASE - 5 * H - 1800)]
    with pytest.raises(QueryPlanError, match="time zone 'Mars/Base'"):
        q(srv, "SELECT usage FROM cpu tz('Mars/Base')")


def test_fill_options(srv: Any) -> None:
    base = f"SELECT max(usage) FROM cpu WHERE host = 'b' AND {W} GROUP BY time(1h)"
    assert q(srv, base).column("max").to_pylist() == [30.0, None, 50.0, None]
    assert q(srv, base + " fill(none)").column("max").to_pylist() == [30.0, 50.0]
    assert q(srv, base + " fill(-1)").column("max").to_pylist() == [30.0, -1.0, 50.0, -1.0]
    assert q(srv, base + " fill(previous)").column("max").to_pylist() == [30.0, 30.0, 50.0, 50.0]
    assert q(srv, base + " fill(linear)").column("max").to_pylist() == [30.0, 40.0, 50.0, None]


def test_transformations(srv: Any) -> None:
    t = q(srv, "SELECT difference(usage), cumulative_sum(usage) FROM cpu WHERE host = 'a'")
    assert t.column("difference").to_pylist() == [None, 10.0]
    assert t.column("cumulative_sum").to_pylist() == [10.0, 30.0]
    t = q(srv, "SELECT derivative(usage, 1h) FROM cpu WHERE host = 'a'")
    assert t.column("derivative").to_pylist() == [10.0]
    t = q(srv, "SELECT moving_average(usage, 2) FROM cpu WHERE host = 'b'")
    assert t.column("moving_average").to_pylist() == [40.0]


def test_mode_prefers_the_earliest_of_equally_frequent_values(standin: Any) -> None:
    db = "influxql_exec_mode"
    standin.write_lp(db, "m v=3i 1\nm v=1i 2\nm v=3i 3\nm v=1i 4\nm v=2i 5", precision="s")
    assert q(standin, "SELECT mode(v) FROM m", db=db).column("mode").to_pylist() == [3]


def test_bound_parameters(srv: Any) -> None:
    t = q(srv, "SELECT usage FROM cpu WHERE host = $h AND usage > $min", {"h": "b", "min": 40})
    assert t.column("usage").to_pylist() == [50.0]
    with pytest.raises(QueryPlanError, match=r"no value provided for bind parameter \$h"):
        q(srv, "SELECT usage FROM cpu WHERE host = $h")
    with pytest.raises(QueryPlanError, match="JSON arrays are not supported as query parameters"):
        q(srv, "SELECT usage FROM cpu WHERE host = $h", {"h": ["a"]})
    assert q(srv, "SELECT usage FROM cpu WHERE host = $h", {"h": None}).num_rows == 0
    t = q(srv, "SELECT usage FROM cpu WHERE reqs = $n OR usage = $f", {"n": 3, "f": 5.0})
    assert t.column("usage").to_pylist() == [30.0, 5.0]


@pytest.mark.parametrize(
    ("text", "error", "message"),
    [
        ("SHOW DATABASES", QueryNotImplemented, "This feature is not implemented: SHOW DATABASES"),
        ("SELECT sample(usage, 2) FROM cpu", QueryNotImplemented, r"not implemented: sample\(\)"),
        ("SELECT usage FROM cpu SLIMIT 1", QueryNotImplemented, "SLIMIT or SOFFSET"),
        ("SELECT usage FROM db.rp.cpu", QueryNotImplemented, "database prefix"),
        (
            "SELECT usage FROM cpu WHERE time > now() - 1h OR host = 'a'",
            QueryNotImplemented,
            "time conditions combined with OR",
        ),
        ("SHOW MEASUREMENTS ON other", QueryNotImplemented, "SHOW MEASUREMENTS ON"),
        ("SELECT mean(usage), reqs FROM cpu", QueryPlanError, "mixing aggregate and non-aggregate"),
        ("SELECT usage FROM cpu GROUP BY time(1h)", QueryPlanError, "at least one aggregate"),
        ("SELECT 1 FROM cpu", QueryPlanError, "at least one variable"),
        ("SELECT time * 2 FROM cpu", QueryNotImplemented, "time in SELECT expressions"),
        ("SELECT derivative(usage), usage FROM cpu", QueryPlanError, "mixing aggregate"),
        ("SELECT nosuch(usage) FROM cpu", QueryPlanError, "Invalid function 'nosuch'"),
        ("SELECT usage FROM cpu WHERE time > 'yesterday'", QueryPlanError, "expected RFC3339"),
        ("SELECT moving_average(usage, 1) FROM cpu", QueryPlanError, "greater than 1"),
        ("SELECT derivative(mean(usage)) FROM cpu", QueryPlanError, "requires a GROUP BY interval"),
        (
            f"SELECT mean(usage) FROM cpu WHERE time >= 0 AND time < {BASE}s GROUP BY time(1s)",
            QueryPlanError,
            "windows",
        ),
    ],
)
def test_errors(srv: Any, text: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        q(srv, text)


def test_unknown_database(srv: Any) -> None:
    with pytest.raises(DatabaseNotFound):
        execute(srv.engine, "influxql_no_such_db", "SELECT a FROM b", None)


def test_show_catalog_statements(srv: Any) -> None:
    t = q(srv, "SHOW MEASUREMENTS")
    assert t.schema.names == ["iox::measurement", "name"]
    assert t.to_pylist() == [
        {"iox::measurement": "measurements", "name": "cpu"},
        {"iox::measurement": "measurements", "name": "mem"},
    ]
    t = q(srv, "SHOW TAG KEYS FROM cpu")
    assert t.column("tagKey").to_pylist() == ["host", "region"]
    t = q(srv, "SHOW FIELD KEYS")
    assert t.schema.names == ["iox::measurement", "fieldKey", "fieldType"]
    assert list(zip(*(t.column(c).to_pylist() for c in t.schema.names), strict=True)) == [
        ("cpu", "reqs", "integer"),
        ("cpu", "usage", "float"),
        ("mem", "free", "integer"),
    ]
    t = q(srv, "SHOW RETENTION POLICIES")
    assert t.to_pylist() == [
        {
            "iox::measurement": "retention_policies",
            "name": "autogen",
            "duration": "0s",
            "shardGroupDuration": "168h0m0s",
            "replicaN": 1,
            "default": True,
        }
    ]


def test_show_tag_values_scans_only_the_last_day_without_a_time_condition(srv: Any) -> None:
    """Like InfluxDB 3 (influxql_metadata_cutoff = 24h): the 2023 data is not seen..."""
    assert q(srv, "SHOW TAG VALUES WITH KEY = host").num_rows == 0
    # ... unless the WHERE clause has a time condition.
    t = q(srv, f"SHOW TAG VALUES FROM cpu WITH KEY = host WHERE {W}")
    assert t.schema.names == ["iox::measurement", "key", "value"]
    assert t.column("value").to_pylist() == ["a", "b"]
    t = q(srv, f"SHOW TAG VALUES WITH KEY IN (host, region) WHERE {W} AND region = 'west'")
    assert t.to_pylist() == [
        {"iox::measurement": "cpu", "key": "host", "value": "b"},
        {"iox::measurement": "cpu", "key": "region", "value": "west"},
    ]


# -- wiring: Flight and HTTP -----------------------------------------------------------------
def _flight(srv: Any, text: str, params: dict[str, Any] | None = None) -> pa.Table:
    client = flight.FlightClient(srv.flight_uri)
    try:
        ticket = {"database": DB, "sql_query": text, "query_type": "influxql"}
        if params is not None:
            ticket["params"] = params
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {srv.token}".encode())]
        )
        return client.do_get(flight.Ticket(json.dumps(ticket).encode()), options).read_all()
    finally:
        client.close()


def test_flight_json_ticket(srv: Any) -> None:
    t = _flight(srv, f"SELECT mean(usage) FROM cpu WHERE {W} GROUP BY time(2h), host", None)
    assert t.schema.names == ["iox::measurement", "time", "host", "mean"]
    assert meta(t) == {"tagKeyColumns": [{"tagKey": "host", "columnIndex": 2}]}
    assert t.column("mean").to_pylist() == [None, 5.0, 15.0, None, 30.0, 50.0]
    t = _flight(srv, "SELECT usage FROM cpu WHERE host = $h", {"h": "a"})
    assert t.column("usage").to_pylist() == [10.0, 20.0]


def test_flight_errors_are_invalid_argument(srv: Any) -> None:
    with pytest.raises(pa.ArrowInvalid, match="This feature is not implemented: SHOW DATABASES"):
        _flight(srv, "SHOW DATABASES")
    with pytest.raises(pa.ArrowInvalid, match="found EOF, expected FROM at pos 13"):
        _flight(srv, "SELECT usage")


def test_http_query_influxql(srv: Any) -> None:
    query = urllib.parse.urlencode(
        {"db": DB, "q": f"SELECT max(usage) FROM cpu WHERE {W} GROUP BY region", "format": "json"}
    )
    req = urllib.request.Request(
        f"{srv.http_url}/api/v3/query_influxql?{query}",
        headers={"Authorization": f"Bearer {srv.token}"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        body = json.loads(resp.read())
    assert [(r["iox::measurement"], r["region"], r["max"]) for r in body] == [
        ("cpu", "east", 20.0),
        ("cpu", "west", 50.0),
    ]
    bad = urllib.parse.urlencode({"db": DB, "q": "SHOW DATABASES"})
    req = urllib.request.Request(
        f"{srv.http_url}/api/v3/query_influxql?{bad}",
        headers={"Authorization": f"Bearer {srv.token}"},
    )
    with pytest.raises(urllib.error.HTTPError) as err:
        urllib.request.urlopen(req, timeout=30)
    assert err.value.code in (400, 405)


def test_oracle_skips_with_install_hint_without_influxd(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """Where influxd cannot be installed the differential tests skip and say how to get it."""
    from influxql_oracle import start_influxd

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.skip.Exception, match="apt-get install influxdb"):
        next(start_influxd(tmp_path))


_TOKENS = [
    "SELECT",
    "FROM",
    "WHERE",
    "GROUP BY",
    "time(1h)",
    "time(1h, 5m)",
    "fill(linear)",
    "fill(0)",
    "fill(previous)",
    "ORDER BY time DESC",
    "LIMIT 1",
    "OFFSET 1",
    "tz('UTC')",
    "usage",
    "reqs",
    "host",
    "region",
    "free",
    "nosuch",
    "*",
    "cpu",
    "mem",
    "/c/",
    "mean(usage)",
    "count(*)",
    "max(reqs)",
    "percentile(usage, 50)",
    "mode(host)",
    "distinct(reqs)",
    "derivative(usage)",
    "difference(mean(usage))",
    "moving_average(usage, 2)",
    "cumulative_sum(reqs)",
    "last(*)",
    "spread(/u/)",
    ",",
    "(",
    ")",
    "+",
    "-",
    "/",
    "=",
    "!=",
    "=~",
    "<",
    ">=",
    "AND",
    "OR",
    "'a'",
    "1",
    "2.5",
    "1s",
    "now()",
    "time",
    "$p",
    "AS x",
    "SHOW",
    "TAG",
    "KEYS",
    "VALUES",
    "WITH KEY",
    "MEASUREMENTS",
    "IN (host)",
    f"'{BASE}'",
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(tokens=st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=12))
def test_any_input_fails_only_with_server_errors(srv: Any, tokens: list[str]) -> None:
    """Whatever the text, execute() answers or raises one of the server's errors."""
    text = " ".join(tokens)
    if tokens[0] not in ("SELECT", "SHOW"):
        text = "SELECT " + text
    try:
        execute(srv.engine, DB, text, {"p": "a"}).read_all()
    except ServerError as exc:
        assert str(exc)
