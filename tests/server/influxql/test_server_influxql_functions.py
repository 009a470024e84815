"""InfluxQL functions and clauses added for InfluxDB 3 parity: shapes, edge cases and errors
that the differential tests (values against influxd 1.x) do not cover."""

from __future__ import annotations

import json
import math
from typing import Any

import pyarrow as pa
import pytest

from influx_flight.server.errors import QueryNotImplemented, QueryPlanError
from influx_flight.server.influxql import execute

DB = "influxql_functions"
S = 1_000_000_000
BASE = 1_700_000_000 - 1_700_000_000 % 86400
LP = f"""\
cpu,host=a,region=east usage=10,reqs=1i,state="ok" {BASE}
cpu,host=a,region=east usage=-4,reqs=2i {BASE + 60}
cpu,host=a,region=east usage=30,reqs=5i {BASE + 180}
cpu,host=b,region=west usage=50,reqs=3i {BASE + 60}
cpu,host=b,region=west usage=50,reqs=7i {BASE + 120}
cpu,region=west usage=-9,reqs=9i,state="warn" {BASE + 240}
mem,host=a free=100i {BASE + 30}
"""
W = f"time >= {BASE}s AND time < {BASE + 3600}s"


@pytest.fixture(scope="module")
def srv(standin: Any) -> Any:
    standin.write_lp(DB, LP, precision="s")
    return standin


def q(srv: Any, text: str) -> pa.Table:
    return execute(srv.engine, DB, text).read_all()


def col(t: pa.Table, name: str) -> list[Any]:
    return t.column(name).to_pylist()


def secs(t: pa.Table, name: str = "time") -> list[int]:
    return [v // S - BASE for v in t.column(name).cast(pa.int64()).to_pylist()]


# -- top / bottom ------------------------------------------------------------------------------
def test_top_shape_ties_and_order(srv: Any) -> None:
    t = q(srv, "SELECT top(usage, 2), host FROM cpu")
    assert t.schema.names == ["iox::measurement", "time", "top", "host"]
    # 50 twice (host b at +60 and +120): both are the two largest; time order
    assert secs(t) == [60, 120] and col(t, "top") == [50.0, 50.0] and col(t, "host") == ["b"] * 2
    t = q(srv, "SELECT top(usage, 1) FROM cpu")
    assert secs(t) == [60]  # a tie goes to the earliest time
    t = q(srv, "SELECT bottom(usage, 10) FROM cpu ORDER BY time DESC")
    assert secs(t) == [240, 180, 120, 60, 60, 0]  # N beyond the data: every row


def test_top_with_tags_and_group_by(srv: Any) -> None:
    t = q(srv, "SELECT top(reqs, host, 5) FROM cpu")
    assert t.schema.names == ["iox::measurement", "time", "top", "host"]
    assert sorted(zip(col(t, "host"), col(t, "top"), strict=True), key=str) == [
        ("a", 5),
        ("b", 7),
        (None, 9),
    ]
    t = q(srv, "SELECT bottom(reqs, 1) FROM cpu GROUP BY region LIMIT 1")
    assert col(t, "region") == ["east", "west"] and col(t, "bottom") == [1, 3]
    md = json.loads(t.schema.metadata[b"iox::influxql::group_key::metadata"])
    assert md == {"tagKeyColumns": [{"tagKey": "region", "columnIndex": 2}]}


def test_top_over_windows_keeps_point_times(srv: Any) -> None:
    t = q(srv, f"SELECT top(usage, 1) FROM cpu WHERE {W} GROUP BY time(2m)")
    assert secs(t) == [60, 120, 240]  # the selected points' own times, not window starts
    assert col(t, "top") == [50.0, 50.0, -9.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SELECT top(usage, 2), max(usage) FROM cpu", "cannot be combined with other functions"),
        ("SELECT top(usage, 0) FROM cpu", "N must be a positive integer"),
        ("SELECT top(usage, 1.5) FROM cpu", "with an integer N"),
        ("SELECT top(usage) FROM cpu", "with an integer N"),
        ("SELECT top(usage, 'x', 2) FROM cpu", "only tag keys"),
        ("SELECT top(state, 2) FROM cpu", "'state' is string"),
        ("SELECT top(usage, 2) * 2 FROM cpu", "inside an expression"),
    ],
)
def test_top_errors(srv: Any, text: str, message: str) -> None:
    with pytest.raises(QueryPlanError, match=message):
        q(srv, text)


# -- integral, elapsed, math ------------------------------------------------------------------
def test_integral_units_and_types(srv: Any) -> None:
    t = q(srv, "SELECT integral(usage, 1m) FROM cpu WHERE host = 'a'")
    # (10 + -4)/2 * 1m + (-4 + 30)/2 * 2m = 3 + 26
    assert col(t, "integral") == [29.0] and secs(t) == [-BASE]  # epoch 0 without a lower bound
    t = q(srv, "SELECT integral(reqs) FROM cpu WHERE host = 'b'")
    assert col(t, "integral") == [300.0] and t.schema.field("integral").type == pa.float64()
    t = q(srv, f"SELECT integral(usage, 1m) FROM cpu WHERE {W} AND host = 'a' GROUP BY time(2m)")
    # the segment 60 s -> 180 s crosses 120 s: value 13 there; 3 + 4.5 | 21.5
    assert secs(t) == [0, 120] and col(t, "integral") == [7.5, 21.5]
    t = q(
        srv,
        f"SELECT integral(usage, 1m) FROM cpu WHERE {W} AND host = 'a' GROUP BY time(2m) fill(0)",
    )
    assert len(t) == 30 and col(t, "integral")[2] == 0.0  # fill(<value>) still fills
    with pytest.raises(QueryPlanError, match="'state' is string"):
        q(srv, "SELECT integral(state) FROM cpu")
    with pytest.raises(QueryPlanError, match="positive duration"):
        q(srv, "SELECT integral(usage, 0s) FROM cpu")


def test_elapsed(srv: Any) -> None:
    t = q(srv, "SELECT elapsed(usage, 1m), elapsed(state) FROM cpu GROUP BY host")
    assert t.schema.field("elapsed").type == pa.int64()
    by_host = {
        (h, s): (e, e1)
        for h, s, e, e1 in zip(
            col(t, "host"), secs(t), col(t, "elapsed"), col(t, "elapsed_1"), strict=True
        )
    }
    assert by_host == {("a", 60): (1, None), ("a", 180): (2, None), ("b", 120): (1, None)}


def test_math_outside_the_domain_gives_no_value(srv: Any) -> None:
    t = q(
        srv, "SELECT sqrt(usage), ln(usage), log(usage, 10), log(reqs, 2) FROM cpu WHERE host = 'a'"
    )
    assert col(t, "sqrt")[1] is None and col(t, "ln")[1] is None and col(t, "log")[1] is None
    assert col(t, "sqrt")[0] == pytest.approx(math.sqrt(10))
    assert col(t, "log")[2] == pytest.approx(math.log10(30))
    assert col(t, "log_1") == [0.0, 1.0, pytest.approx(math.log2(5))]
    with pytest.raises(QueryPlanError, match=r"expected 2, got 1: use log\(x, base\)"):
        q(srv, "SELECT log(usage) FROM cpu")
    with pytest.raises(QueryPlanError, match=r"sqrt\(\) takes a field or \*, not a regular"):
        q(srv, "SELECT sqrt(/u/) FROM cpu")


# -- subqueries -----------------------------------------------------------------------------
def test_subquery_shapes(srv: Any) -> None:
    t = q(srv, "SELECT * FROM (SELECT max(usage) FROM cpu GROUP BY host)")
    assert t.schema.names == ["iox::measurement", "time", "host", "max"]
    t = q(
        srv,
        "SELECT mean(m) FROM (SELECT max(u) AS m FROM (SELECT usage AS u FROM cpu) GROUP BY host)",
    )
    assert col(t, "mean") == [pytest.approx((30 + 50 - 9) / 3)]
    assert q(srv, "SELECT mean(x) FROM (SELECT usage AS x FROM nosuch)").schema.names == [
        "iox::measurement"
    ]
    t = q(srv, "SELECT count(usage) FROM (SELECT usage FROM /c.u/, mem) GROUP BY host")
    # mem has no usage: only cpu's series (a missing host first)
    assert col(t, "host") == [None, "a", "b"] and col(t, "count") == [1, 3, 2]


def test_subquery_errors_are_the_inner_ones(srv: Any) -> None:
    with pytest.raises(QueryPlanError, match="Invalid function 'nosuch'"):
        q(srv, "SELECT mean(x) FROM (SELECT nosuch(usage) AS x FROM cpu)")
    with pytest.raises(QueryNotImplemented, match="SLIMIT or SOFFSET"):
        q(srv, "SELECT x FROM (SELECT usage AS x FROM cpu) SLIMIT 1")


# -- EXPLAIN --------------------------------------------------------------------------------
def test_explain_returns_the_plans(srv: Any) -> None:
    t = q(srv, "EXPLAIN SELECT mean(usage) FROM cpu GROUP BY host")
    assert t.schema.names == ["plan_type", "plan"]
    assert col(t, "plan_type") == ["logical_plan", "physical_plan"]
    assert all(col(t, "plan"))
    t = q(srv, "EXPLAIN ANALYZE SELECT * FROM cpu, mem")  # one plan per measurement, executed
    assert col(t, "plan_type") == ["Plan with Metrics"] * 2
    assert "output_rows" in col(t, "plan")[0]
    assert len(q(srv, "EXPLAIN VERBOSE SELECT usage FROM cpu")) > 2
    with pytest.raises(QueryPlanError, match="Invalid function 'nosuch'"):
        q(srv, "EXPLAIN SELECT nosuch(usage) FROM cpu")
