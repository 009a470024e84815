"""The ``home`` sample data answers InfluxDB 3's documented InfluxQL examples as documented.

Two sources:

* the Get-started guide's query page (``content/shared/influxdb3-get-started/query.md`` in
  influxdata/docs-v2): it lists InfluxQL queries without results, so the expected values are
  computed here from ``home.lp`` with plain Python;
* the InfluxQL reference for InfluxDB 3 (``content/shared/influxql-v3-reference/functions/
  aggregates.md`` and ``selectors.md``), which shows each example's result table; those tables
  are transcribed below.

Queries go over Flight (a JSON DoGet ticket with ``query_type: influxql``) to the stand-in.
"""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
HOME_LP = REPO_ROOT.parent / "shared" / "data" / "home.lp"
DB = "influxql_docs_home"

pytestmark = pytest.mark.skipif(not HOME_LP.exists(), reason=f"sample data not found: {HOME_LP}")


def _points() -> list[dict[str, Any]]:
    """home.lp parsed by hand (room tag; temp, hum floats; co integer; seconds)."""
    out = []
    for line in HOME_LP.read_text().splitlines():
        if not line.strip():
            continue
        head, fields, ts = line.rsplit(" ", 2)
        room = head.split(",room=", 1)[1].replace("\\ ", " ")
        row: dict[str, Any] = {"room": room, "time": int(ts)}
        for kv in fields.split(","):
            k, v = kv.split("=")
            row[k] = int(v[:-1]) if v.endswith("i") else float(v)
        out.append(row)
    return out


@pytest.fixture(scope="module")
def home(standin: Any) -> Any:
    standin.write_lp(DB, HOME_LP.read_text(), precision="s")
    return standin


def flight_query(standin: Any, query: str) -> pa.Table:
    """Run InfluxQL over Flight the way clients do: JSON ticket, bearer token."""
    client = flight.FlightClient(standin.flight_uri)
    try:
        ticket = json.dumps({"database": DB, "sql_query": query, "query_type": "influxql"})
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {standin.token}".encode())]
        )
        return client.do_get(flight.Ticket(ticket.encode()), options).read_all()
    finally:
        client.close()


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


def rows(table: pa.Table) -> list[tuple[Any, ...]]:
    cols = [c.to_pylist() for c in table.columns]
    return [tuple(r) for r in zip(*cols, strict=True)]


def same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def assert_rows(actual: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> None:
    assert len(actual) == len(expected), f"{actual} != {expected}"
    for a, e in zip(actual, expected, strict=True):
        assert len(a) == len(e) and all(same(x, y) for x, y in zip(a, e, strict=True)), (
            f"{a} != {e}"
        )


EPOCH = datetime(1970, 1, 1)
W = "room = 'Kitchen' AND time >= '2022-01-01T08:00:00Z' AND time <= '2022-01-01T20:00:00Z'"
W6 = [ts("2022-01-01T06:00:00Z"), ts("2022-01-01T12:00:00Z"), ts("2022-01-01T18:00:00Z")]
W812 = "time >= '2022-01-01T08:00:00Z' AND time <= '2022-01-01T12:00:00Z'"
T8, T18 = ts("2022-01-01T08:00:00Z"), ts("2022-01-01T18:00:00Z")

# (query, column names after iox::measurement, expected rows without iox::measurement)
REFERENCE = [
    ("SELECT COUNT(temp) FROM home", ["time", "count"], [(EPOCH, 26)]),
    (
        "SELECT COUNT(*) FROM home",
        ["time", "count_co", "count_hum", "count_temp"],
        [(EPOCH, 26, 26, 26)],
    ),
    ("SELECT COUNT(/^[th]/) FROM home", ["time", "count_hum", "count_temp"], [(EPOCH, 26, 26)]),
    ("SELECT COUNT(DISTINCT(co)) FROM home", ["time", "count"], [(EPOCH, 12)]),
    (
        f"SELECT COUNT(temp) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "count"],
        list(zip(W6, [4, 6, 3], strict=True)),
    ),
    (
        "SELECT DISTINCT(co) FROM home",
        ["time", "distinct"],
        [(EPOCH, v) for v in [0, 1, 3, 4, 7, 5, 9, 18, 14, 22, 17, 26]],
    ),
    ("SELECT MEAN(temp) FROM home", ["time", "mean"], [(EPOCH, 22.396153846153844)]),
    (
        "SELECT MEAN(*) FROM home",
        ["time", "mean_co", "mean_hum", "mean_temp"],
        [(EPOCH, 5.269230769230769, 36.15, 22.396153846153844)],
    ),
    (
        f"SELECT MEAN(temp) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "mean"],
        list(zip(W6, [22.275, 22.649999999999995, 23.033333333333335], strict=True)),
    ),
    ("SELECT MEDIAN(temp) FROM home", ["time", "median"], [(EPOCH, 22.45)]),
    (
        "SELECT MEDIAN(*) FROM home",
        ["time", "median_co", "median_hum", "median_temp"],
        [(EPOCH, 1, 36.05, 22.45)],
    ),
    (
        f"SELECT MEDIAN(temp) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "median"],
        list(zip(W6, [22.549999999999997, 22.7, 23.1], strict=True)),
    ),
    ("SELECT MODE(co) FROM home", ["time", "mode"], [(EPOCH, 0)]),
    (
        "SELECT MODE(*) FROM home",
        ["time", "mode_co", "mode_hum", "mode_temp"],
        [(EPOCH, 0, 36.0, 22.7)],
    ),
    (
        f"SELECT MODE(co) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "mode"],
        list(zip(W6, [0, 1, 18], strict=True)),
    ),
    ("SELECT SPREAD(temp) FROM home", ["time", "spread"], [(EPOCH, 2.3000000000000007)]),
    (
        "SELECT SPREAD(*) FROM home",
        ["time", "spread_co", "spread_hum", "spread_temp"],
        [(EPOCH, 26, 1.0, 2.3000000000000007)],
    ),
    (
        f"SELECT SPREAD(co) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "spread"],
        list(zip(W6, [0, 9, 8], strict=True)),
    ),
    ("SELECT STDDEV(temp) FROM home", ["time", "stddev"], [(EPOCH, 0.5553238833191091)]),
    (
        "SELECT STDDEV(*) FROM home",
        ["time", "stddev_co", "stddev_hum", "stddev_temp"],
        [(EPOCH, 7.774613519951676, 0.25495097567963926, 0.5553238833191091)],
    ),
    (
        f"SELECT STDDEV(co) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "stddev"],
        list(zip(W6, [0.0, 3.6742346141747673, 4.0], strict=True)),
    ),
    ("SELECT SUM(co) FROM home", ["time", "sum"], [(EPOCH, 137)]),
    (
        "SELECT SUM(*) FROM home",
        ["time", "sum_co", "sum_hum", "sum_temp"],
        [(EPOCH, 137, 939.9, 582.3)],
    ),
    (
        f"SELECT SUM(co) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "sum"],
        list(zip(W6, [0, 21, 66], strict=True)),
    ),
    ("SELECT LAST(temp) FROM home", ["time", "last"], [(ts("2022-01-01T20:00:00Z"), 22.7)]),
    (
        f"SELECT FIRST(temp) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "first"],
        list(zip(W6, [21.0, 22.5, 23.3], strict=True)),
    ),
    (
        f"SELECT LAST(temp) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "last"],
        list(zip(W6, [22.4, 22.7, 22.7], strict=True)),
    ),
    ("SELECT MAX(co) FROM home", ["time", "max"], [(ts("2022-01-01T20:00:00Z"), 26)]),
    (
        "SELECT MAX(*) FROM home",
        ["time", "max_co", "max_hum", "max_temp"],
        [(EPOCH, 26, 36.9, 23.3)],
    ),
    (
        f"SELECT MAX(temp) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "max"],
        list(zip(W6, [23.0, 22.8, 23.3], strict=True)),
    ),
    ("SELECT MIN(temp) FROM home", ["time", "min"], [(ts("2022-01-01T08:00:00Z"), 21.0)]),
    (
        "SELECT MIN(/^[th]/) FROM home",
        ["time", "min_hum", "min_temp"],
        [(EPOCH, 35.9, 21.0)],
    ),
    (
        f"SELECT MIN(temp) FROM home WHERE {W} GROUP BY time(6h)",
        ["time", "min"],
        list(zip(W6, [21.0, 22.4, 22.7], strict=True)),
    ),
    (
        "SELECT PERCENTILE(temp, 50) FROM home",
        ["time", "percentile"],
        [(ts("2022-01-01T11:00:00Z"), 22.4)],
    ),
    (
        "SELECT PERCENTILE(*, 50) FROM home",
        ["time", "percentile_co", "percentile_hum", "percentile_temp"],
        [(EPOCH, 1, 36.0, 22.4)],
    ),
    # selectors.md: TOP() and BOTTOM() keep each point's own time, also with GROUP BY time()
    (
        "SELECT BOTTOM(temp, 3) FROM home",
        ["time", "bottom"],
        [(T8, 21.0), (T8, 21.1), (ts("2022-01-01T09:00:00Z"), 21.4)],
    ),
    (
        "SELECT BOTTOM(temp, room, 2) FROM home",
        ["time", "bottom", "room"],
        [(T8, 21.0, "Kitchen"), (T8, 21.1, "Living Room")],
    ),
    (
        "SELECT BOTTOM(temp, 3), room FROM home",
        ["time", "bottom", "room"],
        [
            (T8, 21.0, "Kitchen"),
            (T8, 21.1, "Living Room"),
            (ts("2022-01-01T09:00:00Z"), 21.4, "Living Room"),
        ],
    ),
    (
        f"SELECT BOTTOM(temp, room, 2) FROM home WHERE {W812} GROUP BY time(2h)",
        ["time", "bottom", "room"],
        [
            (T8, 21.0, "Kitchen"),
            (T8, 21.1, "Living Room"),
            (ts("2022-01-01T10:00:00Z"), 21.8, "Living Room"),
            (ts("2022-01-01T11:00:00Z"), 22.4, "Kitchen"),
            (ts("2022-01-01T12:00:00Z"), 22.2, "Living Room"),
            (ts("2022-01-01T12:00:00Z"), 22.5, "Kitchen"),
        ],
    ),
    (
        "SELECT TOP(temp, 3) FROM home",
        ["time", "top"],
        [
            (ts("2022-01-01T09:00:00Z"), 23.0),
            (ts("2022-01-01T18:00:00Z"), 23.3),
            (ts("2022-01-01T19:00:00Z"), 23.1),
        ],
    ),
    (
        "SELECT TOP(temp, room, 2) FROM home",
        ["time", "top", "room"],
        [(T18, 23.3, "Kitchen"), (T18, 22.8, "Living Room")],
    ),
    (
        "SELECT TOP(temp, 3), room FROM home",
        ["time", "top", "room"],
        [
            (ts("2022-01-01T09:00:00Z"), 23.0, "Kitchen"),
            (T18, 23.3, "Kitchen"),
            (ts("2022-01-01T19:00:00Z"), 23.1, "Kitchen"),
        ],
    ),
    (
        f"SELECT TOP(temp, room, 2) FROM home WHERE {W812} GROUP BY time(2h)",
        ["time", "top", "room"],
        [
            (ts("2022-01-01T09:00:00Z"), 23.0, "Kitchen"),
            (ts("2022-01-01T09:00:00Z"), 21.4, "Living Room"),
            (ts("2022-01-01T10:00:00Z"), 22.7, "Kitchen"),
            (ts("2022-01-01T11:00:00Z"), 22.2, "Living Room"),
            (ts("2022-01-01T12:00:00Z"), 22.5, "Kitchen"),
            (ts("2022-01-01T12:00:00Z"), 22.2, "Living Room"),
        ],
    ),
    (  # fewer points than N
        "SELECT BOTTOM(temp, 5) FROM home WHERE time >= '2022-01-01T08:00:00Z' "
        "AND time <= '2022-01-01T10:00:00Z' AND room = 'Kitchen'",
        ["time", "bottom"],
        [
            (T8, 21.0),
            (ts("2022-01-01T09:00:00Z"), 23.0),
            (ts("2022-01-01T10:00:00Z"), 22.7),
        ],
    ),
    (
        "SELECT TOP(temp, room, 3) FROM home",
        ["time", "top", "room"],
        [(T18, 23.3, "Kitchen"), (T18, 22.8, "Living Room")],
    ),
    # subqueries.md (the "filter aggregate values" example is test_subquery_threshold)
    (
        "SELECT SUM(max) FROM (SELECT MAX(temp) FROM home GROUP BY room)",
        ["time", "sum"],
        [(EPOCH, 46.1)],
    ),
    (
        "SELECT SUM(co_derivative) AS sum_derivative FROM (SELECT DERIVATIVE(MEAN(co)) AS "
        "co_derivative FROM home GROUP BY time(12m), room) WHERE time >= '2022-01-01T08:00:00Z' "
        "AND time <= '2022-01-01T20:00:00Z' GROUP BY room",
        ["time", "room", "sum_derivative"],
        [(EPOCH, "Kitchen", 5.2), (EPOCH, "Living Room", 3.4)],
    ),
]


@pytest.mark.parametrize(("query", "columns", "expected"), REFERENCE)
def test_reference_examples(
    home: Any, query: str, columns: list[str], expected: list[tuple[Any, ...]]
) -> None:
    table = flight_query(home, query)
    assert table.schema.names == ["iox::measurement", *columns]
    assert set(table.column("iox::measurement").to_pylist()) == {"home"}
    assert_rows([r[1:] for r in rows(table)], expected)


def test_subquery_threshold(home: Any) -> None:
    """subqueries.md: filter aggregate values on a threshold (two rooms, one time: any order)."""
    table = flight_query(
        home,
        "SELECT co_change FROM (SELECT SPREAD(co) AS co_change FROM home GROUP BY room, time(2h)) "
        "WHERE time >= '2022-01-01T08:00:00Z' AND time <= '2022-01-01T20:00:00Z' "
        "AND co_change >= 4",
    )
    assert table.schema.names == ["iox::measurement", "time", "co_change"]
    assert sorted(r[1:] for r in rows(table)) == [(T18, 4), (T18, 5)]


# -- the Get-started guide's InfluxQL queries, expected values computed from home.lp --------
def test_get_started_show_measurements(home: Any) -> None:
    table = flight_query(home, "SHOW MEASUREMENTS")
    assert rows(table) == [("measurements", "home")]


def test_get_started_average_temperature(home: Any) -> None:
    pts = _points()
    table = flight_query(home, "SELECT MEAN(temp) AS avg_temp FROM home")
    assert table.schema.names == ["iox::measurement", "time", "avg_temp"]
    assert_rows(rows(table), [("home", EPOCH, statistics.fmean(p["temp"] for p in pts))])
    table = flight_query(home, "SELECT MEAN(temp) AS avg_temp FROM home WHERE room = 'Kitchen'")
    kitchen = statistics.fmean(p["temp"] for p in pts if p["room"] == "Kitchen")
    assert_rows(rows(table), [("home", EPOCH, kitchen)])


def test_get_started_absolute_time_range(home: Any) -> None:
    table = flight_query(
        home,
        "SELECT * FROM home WHERE time >= '2022-01-01T12:00:00Z' AND time <= '2022-01-01T18:00:00Z'",
    )
    assert table.schema.names == ["iox::measurement", "time", "co", "hum", "room", "temp"]
    lo = int(ts("2022-01-01T12:00:00Z").replace(tzinfo=UTC).timestamp())
    hi = lo + 6 * 3600
    want = sorted(
        (
            (
                "home",
                datetime.fromtimestamp(p["time"], UTC).replace(tzinfo=None),
                p["co"],
                p["hum"],
                p["room"],
                p["temp"],
            )
            for p in _points()
            if lo <= p["time"] <= hi
        ),
        key=lambda r: (r[1], r[4]),
    )
    got = sorted(rows(table), key=lambda r: (r[1], r[4]))
    assert len(got) == 14
    assert_rows(got, want)


def test_get_started_relative_time_range(home: Any) -> None:
    """The 2022 sample points are older than 7 days: the relative query finds none."""
    table = flight_query(home, "SELECT * FROM home WHERE time >= now() - 7d")
    assert table.num_rows == 0


def test_get_started_three_hour_humidity_per_room(home: Any) -> None:
    table = flight_query(
        home,
        "SELECT MEAN(hum) AS avg_hum FROM home WHERE time >= '2022-01-01T08:00:00Z' "
        "AND time <= '2022-01-01T20:00:00Z' GROUP BY time(3h), room",
    )
    assert table.schema.names == ["iox::measurement", "time", "room", "avg_hum"]
    meta = json.loads(table.schema.metadata[b"iox::influxql::group_key::metadata"])
    assert meta == {"tagKeyColumns": [{"tagKey": "room", "columnIndex": 2}]}
    want = []
    for room in ("Kitchen", "Living Room"):
        start = int(ts("2022-01-01T06:00:00Z").replace(tzinfo=UTC).timestamp())
        for k in range(5):  # windows 06:00 .. 18:00
            lo = start + k * 3 * 3600
            vals = [
                p["hum"] for p in _points() if p["room"] == room and lo <= p["time"] < lo + 10800
            ]
            win = datetime.fromtimestamp(lo, UTC).replace(tzinfo=None)
            want.append(("home", win, room, statistics.fmean(vals) if vals else None))
    got = rows(table)
    assert [r[:3] for r in got] == [r[:3] for r in want]
    for g, w in zip(got, want, strict=True):
        assert (g[3] is None and w[3] is None) or same(g[3], w[3])


# -- transformations.md and subqueries.md over the random-numbers sample data ----------------
NUMBERS_LP = REPO_ROOT.parent / "shared" / "data" / "random-numbers.lp"
N0 = datetime(2023, 1, 1)
H0 = "time >= '2023-01-01T00:00:00Z' AND time < '2023-01-01T01:00:00Z'"


def minutes(*values: int) -> list[datetime]:
    return [N0.replace(minute=m) for m in values]


B6 = [-0.163643058925645, 0.137034364053949, -0.482943221384294, -0.0729732928756677]
B6 += [1.77857552719844, 0.741147445214238]
DERIV_B = [0.005011290382993233, -0.01033295975730405, 0.006832832141810439]
DERIV_B += [0.03085914700123513, -0.017290468033070033, -0.007557890705063634]
DERIV_A = [-0.018567919587865765, -0.0024342179859877505, 0.0030371603214445152]
DERIV_A += [-0.0027862080622411984, 0.00024692132561391543, 0.016704951104985283]
NS60 = 60_000_000_000

# (query, column names after iox::measurement, expected rows without iox::measurement)
NUMBERS_REFERENCE = [
    (
        "SELECT b, SQRT(b) FROM numbers LIMIT 6",  # negative values give null
        ["time", "b", "sqrt"],
        list(
            zip(
                minutes(0, 1, 2, 3, 4, 5),
                B6,
                [None, 0.370181528515334, None, None, 1.3336324558132349, 0.860899207349059],
                strict=True,
            )
        ),
    ),
    (
        "SELECT SQRT(*) FROM numbers LIMIT 6",
        ["time", "sqrt_a", "sqrt_b"],
        list(
            zip(
                minutes(0, 1, 2, 3, 4, 5),
                [0.5823152811928947, None, None, None, None, None],
                [None, 0.370181528515334, None, None, 1.3336324558132349, 0.860899207349059],
                strict=True,
            )
        ),
    ),
    (
        f"SELECT SQRT(SUM(a)) FROM numbers WHERE {H0} GROUP BY time(10m)",
        ["time", "sqrt"],
        list(
            zip(
                minutes(0, 10, 20, 30, 40, 50),
                [
                    None,
                    1.134063865909604,
                    0.5492555015405052,
                    0.5411746169982342,
                    0.4702589287652642,
                    1.2462130097934059,
                ],
                strict=True,
            )
        ),
    ),
    (
        "SELECT ACOS(*) FROM numbers LIMIT 6",  # acos(1.78) is out of the domain: null
        ["time", "acos_a", "acos_b"],
        list(
            zip(
                minutes(0, 1, 2, 3, 4, 5),
                [
                    1.2248457522250173,
                    2.4574862443115,
                    2.741531473732281,
                    2.4020955294179256,
                    2.7044854502651114,
                    2.6707024029338,
                ],
                [
                    1.7351786975993897,
                    1.433329416131427,
                    2.074809114132046,
                    1.6438345403920092,
                    None,
                    0.7360183965088304,
                ],
                strict=True,
            )
        ),
    ),
    (
        "SELECT ATAN2(a, b) FROM numbers LIMIT 6",
        ["time", "atan2"],
        list(
            zip(
                minutes(0, 1, 2, 3, 4, 5),
                [
                    2.0204217911794937,
                    -1.395783190047229,
                    -2.053731408859953,
                    -1.669248713922653,
                    -0.47112754043763505,
                    -0.8770454978291377,
                ],
                strict=True,
            )
        ),
    ),
    (
        "SELECT DERIVATIVE(b) FROM numbers LIMIT 6",
        ["time", "derivative"],
        list(zip(minutes(1, 2, 3, 4, 5, 6), DERIV_B, strict=True)),
    ),
    (
        "SELECT DERIVATIVE(b, 5m) FROM numbers LIMIT 6",
        ["time", "derivative"],
        list(zip(minutes(1, 2, 3, 4, 5, 6), [v * 300 for v in DERIV_B], strict=True)),
    ),
    (
        "SELECT DERIVATIVE(*) FROM numbers LIMIT 6",
        ["time", "derivative_a", "derivative_b"],
        list(zip(minutes(1, 2, 3, 4, 5, 6), DERIV_A, DERIV_B, strict=True)),
    ),
    (
        "SELECT DERIVATIVE(/[ab]/) FROM numbers LIMIT 6",
        ["time", "derivative_a", "derivative_b"],
        list(zip(minutes(1, 2, 3, 4, 5, 6), DERIV_A, DERIV_B, strict=True)),
    ),
    (
        f"SELECT DERIVATIVE(MEAN(b), 1m) FROM numbers WHERE {H0} GROUP BY time(10m)",
        ["time", "derivative"],
        list(
            zip(
                minutes(10, 20, 30, 40, 50),
                [
                    -0.025809764002219633,
                    0.010434324849926194,
                    -0.06447854269326314,
                    0.05657514203880348,
                    0.021317362457152655,
                ],
                strict=True,
            )
        ),
    ),
    (
        "SELECT DIFFERENCE(*) FROM numbers LIMIT 6",
        ["time", "difference_a", "difference_b"],
        list(
            zip(
                minutes(1, 2, 3, 4, 5, 6),
                [
                    -1.114075175271946,
                    -0.14605307915926502,
                    0.18222961928667092,
                    -0.1671724837344719,
                    0.014815279536834924,
                    1.002297066299117,
                ],
                [
                    0.300677422979594,
                    -0.619977585438243,
                    0.40996992850862635,
                    1.8515488200741077,
                    -1.0374280819842019,
                    -0.45347344230381803,
                ],
                strict=True,
            )
        ),
    ),
    (
        "SELECT ELAPSED(b) FROM numbers LIMIT 6",
        ["time", "elapsed"],
        [(t, NS60) for t in minutes(1, 2, 3, 4, 5, 6)],
    ),
    (
        "SELECT ELAPSED(b, 1s) FROM numbers LIMIT 6",
        ["time", "elapsed"],
        [(t, 60) for t in minutes(1, 2, 3, 4, 5, 6)],
    ),
    (
        "SELECT ELAPSED(*) FROM numbers LIMIT 6",
        ["time", "elapsed_a", "elapsed_b"],
        [(t, NS60, NS60) for t in minutes(1, 2, 3, 4, 5, 6)],
    ),
    (
        "SELECT ELAPSED(/[ab]/, 1s) FROM numbers LIMIT 6",
        ["time", "elapsed_a", "elapsed_b"],
        [(t, 60, 60) for t in minutes(1, 2, 3, 4, 5, 6)],
    ),
    (  # subqueries.md: the average difference between two fields
        "SELECT MEAN(difference) FROM (SELECT a - b AS difference FROM numbers)",
        ["time", "mean"],
        [(EPOCH, -0.03629771779732732)],
    ),
]


@pytest.fixture(scope="module")
def numbers(home: Any) -> Any:
    if not NUMBERS_LP.exists():
        pytest.skip(f"sample data not found: {NUMBERS_LP}")
    home.write_lp(DB, NUMBERS_LP.read_text(), precision="ns")
    return home


@pytest.mark.parametrize(("query", "columns", "expected"), NUMBERS_REFERENCE)
def test_numbers_reference_examples(
    numbers: Any, query: str, columns: list[str], expected: list[tuple[Any, ...]]
) -> None:
    table = flight_query(numbers, query)
    assert table.schema.names == ["iox::measurement", *columns]
    assert set(table.column("iox::measurement").to_pylist()) == {"numbers"}
    assert_rows([r[1:] for r in rows(table)], expected)
