"""InfluxDB 3 SQL functions in the stand-in: selectors, tz, date_bin_wallclock, gap filling.

Most expectations are computed independently from the raw sample rows; the gap-filling
tables are the ones InfluxDB's documentation shows for its ``home`` sample data.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from influx_flight.server.engine import Engine
from influx_flight.server.errors import QueryPlanError

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
HOME_LP = SHARED_DATA / "home.lp"


def _split(text: str, sep: str) -> list[str]:
    return re.split(rf"(?<!\\){re.escape(sep)}", text)


def load_simple_lp(engine: Engine, database: str, path: Path, precision_s: bool = True) -> None:
    """Test-only loader for the simple docs samples (escaped spaces, i-integers, no quotes)."""
    tables: dict[str, list[tuple[dict[str, Any], list[str]]]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        series, fields, ts = _split(line, " ")
        measurement, *tags = _split(series, ",")
        row: dict[str, Any] = {"time": int(ts) * (10**9 if precision_s else 1)}
        tag_names = []
        for tag in tags:
            key, value = tag.split("=", 1)
            row[key] = value.replace("\\ ", " ")
            tag_names.append(key)
        for field in _split(fields, ","):
            key, value = field.split("=", 1)
            row[key] = int(value[:-1]) if value.endswith("i") else float(value)
        tables.setdefault(measurement, []).append((row, tag_names))
    for measurement, rows in tables.items():
        columns = sorted({k for r, _ in rows for k in r})
        tags = sorted({t for _, names in rows for t in names})
        data = {c: [r.get(c) for r, _ in rows] for c in columns}
        engine.append(database, measurement, pa.RecordBatch.from_pydict(data), tags=tags)


@pytest.fixture(scope="module")
def home() -> Engine:
    if not HOME_LP.exists():
        pytest.skip(f"shared sample data not found at {HOME_LP}")
    engine = Engine()
    load_simple_lp(engine, "db", HOME_LP)
    return engine


@pytest.fixture(scope="module")
def home_rows() -> list[dict[str, Any]]:
    if not HOME_LP.exists():
        pytest.skip(f"shared sample data not found at {HOME_LP}")
    engine = Engine()
    load_simple_lp(engine, "db", HOME_LP)
    return engine.snapshot("db")["home"].to_pylist()


def q(engine: Engine, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
    return engine.query_sql("db", sql, params).read_all()


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


# -- plain SQL over the docs' sample data ----------------------------------------------------


def test_docs_average_per_room(home: Engine, home_rows: list[dict[str, Any]]) -> None:
    out = q(
        home,
        "SELECT room, avg(temp) AS temp FROM home WHERE time >= '2022-01-01T08:00:00Z'"
        " AND time <= '2022-01-01T20:00:00Z' GROUP BY room ORDER BY room",
    )
    for row in out.to_pylist():
        temps = [r["temp"] for r in home_rows if r["room"] == row["room"]]
        assert row["temp"] == pytest.approx(sum(temps) / len(temps))


def test_docs_date_bin(home: Engine, home_rows: list[dict[str, Any]]) -> None:
    out = q(
        home,
        "SELECT DATE_BIN(INTERVAL '2 hours', time, '1970-01-01T00:00:00Z'::TIMESTAMP) AS time,"
        " room, selector_max(temp, time)['value'] AS 'max temp'".replace("'max temp'", '"max temp"')
        + " FROM home GROUP BY 1, room ORDER BY room, 1",
    )
    first = out.to_pylist()[0]
    assert first["room"] == "Kitchen"
    assert first["time"] == ts("2022-01-01T08:00:00Z")
    expected = max(
        r["temp"]
        for r in home_rows
        if r["room"] == "Kitchen"
        and ts("2022-01-01T08:00:00Z") <= r["time"] < ts("2022-01-01T10:00:00Z")
    )
    assert first["max temp"] == expected


# -- selectors -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["min", "max", "first", "last"])
def test_selectors_match_raw_rows(home: Engine, home_rows: list[dict[str, Any]], kind: str) -> None:
    out = q(
        home,
        f"SELECT room, selector_{kind}(temp, time, hum) AS s FROM home GROUP BY room ORDER BY room",
    )
    assert out.schema.field("s").type == pa.struct(
        [("value", pa.float64()), ("time", pa.timestamp("ns")), ("other_1", pa.float64())]
    )
    for row in out.to_pylist():
        rows = [r for r in home_rows if r["room"] == row["room"]]
        if kind == "min":
            best = min(rows, key=lambda r: (r["temp"], r["time"]))
        elif kind == "max":
            best = min(rows, key=lambda r: (-r["temp"], r["time"]))
        elif kind == "first":
            best = min(rows, key=lambda r: r["time"])
        else:
            best = max(rows, key=lambda r: r["time"])
        assert row["s"] == {"value": best["temp"], "time": best["time"], "other_1": best["hum"]}


def test_selector_rules_ties_nulls_and_types() -> None:
    engine = Engine()
    engine.append(
        "db",
        "m",
        pa.record_batch(
            {
                "g": pa.array(["a", "a", "a", "b"]).dictionary_encode(),
                "f": pa.array([5.0, 5.0, None, None]),
                "i": pa.array([7, 7, 9, None], pa.int64()),
                "s": pa.array(["x", "y", None, "z"]),
                "b": pa.array([True, False, None, True]),
                "time": pa.array([30, 10, 5, 1], pa.timestamp("ns")),
            }
        ),
    )
    out = q(
        engine,
        "SELECT g, selector_max(f, time) AS fmax, selector_min(i, time) AS imin,"
        " selector_first(s, time) AS sfirst, selector_last(b, time) AS blast,"
        " selector_first(f, time) AS ffirst"
        " FROM m GROUP BY g ORDER BY g",
    )
    a, b = out.to_pylist()
    nano = pa.scalar(10, pa.timestamp("ns")).as_py()
    # tie on the max value: the earliest time wins; the null value at time 5 is ignored
    assert a["fmax"] == {"value": 5.0, "time": nano}
    assert a["imin"] == {"value": 7, "time": nano}
    assert a["sfirst"] == {"value": "y", "time": nano}
    assert a["blast"]["value"] is True
    assert a["ffirst"]["value"] == 5.0
    # nothing selectable (only null values): the whole struct is NULL
    assert b["fmax"] is None
    assert b["imin"] is None
    assert b["sfirst"]["value"] == "z"
    assert out.schema.field("imin").type.field("value").type == pa.int64()
    assert out.schema.field("sfirst").type.field("value").type == pa.utf8()
    assert out.schema.field("blast").type.field("value").type == pa.bool_()


def test_selector_field_access_and_default_name(home: Engine) -> None:
    out = q(home, "SELECT selector_max(temp, time)['value'], selector_max(temp, time) FROM home")
    assert out.column_names[1] == "selector_max(home.temp,home.time)"
    row = out.to_pylist()[0]
    assert row[out.column_names[0]] == 23.3
    assert row["selector_max(home.temp,home.time)"]["value"] == 23.3


def test_selector_needs_two_arguments(home: Engine) -> None:
    with pytest.raises(QueryPlanError, match="selector_max requires at least 2 arguments"):
        q(home, "SELECT selector_max(temp) FROM home")


def test_selector_text_inside_strings_is_left_alone(home: Engine) -> None:
    out = q(home, "SELECT 'selector_max(temp, time)' AS s, count(*) AS n FROM home")
    assert out.to_pylist() == [{"s": "selector_max(temp, time)", "n": 26}]


# -- tz and date_bin_wallclock ------------------------------------------------------------------


def test_tz_keeps_the_instant_and_sets_the_zone(home: Engine) -> None:
    out = q(
        home,
        "SELECT time, tz(time, 'Europe/Oslo') AS oslo, tz(time) AS utc, arrow_typeof(tz(time,"
        " 'Asia/Kolkata')) AS t FROM home ORDER BY time LIMIT 1",
    )
    assert out.schema.field("oslo").type == pa.timestamp("ns", "Europe/Oslo")
    assert out.schema.field("utc").type == pa.timestamp("ns", "UTC")
    raw = out.column("time").cast(pa.int64())[0].as_py()
    assert out.column("oslo").cast(pa.int64())[0].as_py() == raw
    assert out.column("utc").cast(pa.int64())[0].as_py() == raw
    assert out.column("t")[0].as_py() == 'Timestamp(ns, "Asia/Kolkata")'


def test_tz_rejects_unknown_zones(home: Engine) -> None:
    with pytest.raises(QueryPlanError, match="invalid timezone 'Mars/Olympus'"):
        q(home, "SELECT tz(time, 'Mars/Olympus') FROM home")


def _dst_engine() -> Engine:
    """Hourly rows across the 2022-03-13 DST change in New York."""
    engine = Engine()
    start = int(datetime(2022, 3, 12, 5, tzinfo=UTC).timestamp()) * 10**9  # local midnight
    times = [start + h * 3_600_000_000_000 for h in range(48)]
    engine.append(
        "db",
        "m",
        pa.record_batch({"v": pa.array([1.0] * 48), "time": pa.array(times, pa.timestamp("ns"))}),
    )
    return engine


def test_date_bin_wallclock_bins_on_local_midnight_across_dst() -> None:
    engine = _dst_engine()
    out = q(
        engine,
        "SELECT date_bin_wallclock(INTERVAL '1 day', tz(time, 'America/New_York')) AS day,"
        " count(*) AS n FROM m GROUP BY day ORDER BY day",
    )
    assert out.schema.field("day").type == pa.timestamp("ns", "America/New_York")
    days = [d.isoformat() for d in out.column("day").to_pylist()]
    assert days == [
        "2022-03-12T00:00:00-05:00",
        "2022-03-13T00:00:00-05:00",
        "2022-03-14T00:00:00-04:00",
    ]
    # the DST day is 23 hours long
    assert out.column("n").to_pylist() == [24, 23, 1]
    # plain date_bin bins on UTC days instead
    utc = q(
        engine,
        "SELECT date_bin(INTERVAL '1 day', time) AS day, count(*) AS n FROM m GROUP BY day"
        " ORDER BY day",
    )
    assert utc.column("n").to_pylist() == [19, 24, 5]


def test_date_bin_wallclock_without_zone_is_date_bin(home: Engine) -> None:
    a = q(home, "SELECT date_bin_wallclock(INTERVAL '3 hours', time) AS b FROM home ORDER BY b")
    b = q(home, "SELECT date_bin(INTERVAL '3 hours', time) AS b FROM home ORDER BY b")
    assert a.equals(b)


# -- gap filling ------------------------------------------------------------------------------

GAPFILL_WHERE = "WHERE time >= '2022-01-01T08:00:00Z' AND time <= '2022-01-01T10:00:00Z'"


def _series(table: pa.Table, column: str) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for row in table.to_pylist():
        out.setdefault(row["room"], []).append(row[column])
    return out


def test_docs_gapfill_interpolate(home: Engine) -> None:
    out = q(
        home,
        "SELECT date_bin_gapfill(INTERVAL '30 minutes', time) as _time, room,"
        f" interpolate(avg(temp)) FROM home {GAPFILL_WHERE} GROUP BY _time, room",
    )
    assert out.column_names == ["_time", "room", "interpolate(avg(home.temp))"]
    values = _series(out, "interpolate(avg(home.temp))")
    assert values["Kitchen"] == pytest.approx([21.0, 22.0, 23.0, 22.85, 22.7])
    assert values["Living Room"] == pytest.approx([21.1, 21.25, 21.4, 21.6, 21.8])
    times = [t.isoformat() for t in out.column("_time").to_pylist()[:5]]
    assert times == [
        "2022-01-01T08:00:00",
        "2022-01-01T08:30:00",
        "2022-01-01T09:00:00",
        "2022-01-01T09:30:00",
        "2022-01-01T10:00:00",
    ]


def test_docs_gapfill_locf(home: Engine) -> None:
    out = q(
        home,
        "SELECT date_bin_gapfill(INTERVAL '30 minutes', time) as _time, room,"
        f" locf(avg(temp)) AS temp FROM home {GAPFILL_WHERE} GROUP BY _time, room",
    )
    values = _series(out, "temp")
    assert values["Kitchen"] == [21.0, 21.0, 23.0, 23.0, 22.7]
    assert values["Living Room"] == [21.1, 21.1, 21.4, 21.4, 21.8]


def test_gapfill_without_fill_function_leaves_nulls_and_counts_zero(home: Engine) -> None:
    out = q(
        home,
        "SELECT date_bin_gapfill(INTERVAL '30 minutes', time) as _time, room, avg(temp) AS t,"
        f" count(temp) AS n FROM home {GAPFILL_WHERE} GROUP BY _time, room",
    )
    assert _series(out, "t")["Kitchen"] == [21.0, None, 23.0, None, 22.7]
    # count is not nullable: IOx fills its gaps with the default value 0
    assert _series(out, "n")["Kitchen"] == [1, 0, 1, 0, 1]


def test_gapfill_default_time_name_and_order_limit(home: Engine) -> None:
    out = q(
        home,
        "SELECT room, date_bin_gapfill(INTERVAL '1 hour', time), locf(max(temp)) AS m FROM home"
        f" {GAPFILL_WHERE} GROUP BY room, date_bin_gapfill(INTERVAL '1 hour', time)"
        " ORDER BY room DESC LIMIT 2",
    )
    assert out.column_names[1].startswith("date_bin_gapfill(IntervalMonthDayNano")
    assert out.num_rows == 2
    assert set(out.column("room").to_pylist()) == {"Living Room"}


def test_gapfill_with_params_and_exclusive_bounds(home: Engine) -> None:
    out = q(
        home,
        "SELECT date_bin_gapfill(INTERVAL '1 hour', time) AS t, max(temp) AS m FROM home"
        " WHERE time > $start AND time < $stop GROUP BY t",
        {"start": "2022-01-01T07:00:00Z", "stop": "2022-01-01T12:00:00Z"},
    )
    # (07:00, 12:00) exclusive -> bins 07:00 .. 11:00; 07:00 has no data
    assert [t.hour for t in out.column("t").to_pylist()] == [7, 8, 9, 10, 11]
    assert out.column("m").to_pylist()[0] is None
    assert out.column("m").to_pylist()[1] == 21.1


def test_gapfill_fills_a_series_with_a_null_tag() -> None:
    engine = Engine()
    engine.append(
        "db",
        "m",
        pa.record_batch(
            {
                "host": pa.array(["a", None]).dictionary_encode(),
                "v": pa.array([1.0, 2.0]),
                "time": pa.array([0, 0], pa.timestamp("ns")),
            }
        ),
    )
    out = q(
        engine,
        "SELECT date_bin_gapfill(INTERVAL '1 second', time) AS t, host, locf(sum(v)) AS v FROM m"
        " WHERE time >= '1970-01-01T00:00:00Z' AND time < '1970-01-01T00:00:03Z'"
        " GROUP BY t, host",
    )
    assert out.num_rows == 6
    assert _rows_by(out, "host") == {"a": [1.0, 1.0, 1.0], None: [2.0, 2.0, 2.0]}


def _rows_by(table: pa.Table, key: str) -> dict[Any, list[Any]]:
    out: dict[Any, list[Any]] = {}
    for row in table.to_pylist():
        out.setdefault(row[key], []).append(row["v"])
    return out


def test_wallclock_gapfill_uses_local_bins() -> None:
    engine = _dst_engine()
    out = q(
        engine,
        "SELECT date_bin_wallclock_gapfill(INTERVAL '1 day', tz(time, 'America/New_York')) AS d,"
        " count(*) AS n FROM m WHERE time >= '2022-03-11T05:00:00Z'"
        " AND time < '2022-03-14T06:00:00Z' GROUP BY d",
    )
    days = [d.isoformat() for d in out.column("d").to_pylist()]
    assert days == [
        "2022-03-11T00:00:00-05:00",
        "2022-03-12T00:00:00-05:00",
        "2022-03-13T00:00:00-05:00",
        "2022-03-14T00:00:00-04:00",
    ]
    assert out.column("n").to_pylist() == [0, 24, 23, 1]


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("", "gap-filling query is missing both upper and lower time bounds"),
        ("WHERE time >= '2022-01-01T08:00:00Z'", "gap-filling query is missing upper time bound"),
        ("WHERE time < '2022-01-01T08:00:00Z'", "gap-filling query is missing lower time bound"),
        (
            "WHERE time >= '2022-01-01T08:00:00Z' OR time < '2022-01-02T00:00:00Z'",
            "missing both upper and lower time bounds",
        ),
    ],
)
def test_gapfill_needs_both_time_bounds(home: Engine, where: str, message: str) -> None:
    with pytest.raises(QueryPlanError, match=message):
        q(
            home,
            f"SELECT date_bin_gapfill(INTERVAL '1 hour', time) AS t, avg(temp) FROM home {where}"
            " GROUP BY t",
        )


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT locf(avg(temp)) FROM home", "locf may only be used in the SELECT list"),
        (
            "SELECT room FROM home WHERE interpolate(temp) > 1",
            "interpolate may only be used in the SELECT list",
        ),
        (
            "SELECT date_bin_gapfill(INTERVAL '1 hour', time) FROM home",
            "date_bin_gapfill may only be used as a GROUP BY expression",
        ),
        (
            f"SELECT date_bin_gapfill(INTERVAL '1 hour', temp + 1) AS t, count(*) FROM home"
            f" {GAPFILL_WHERE} GROUP BY t",
            "DATE_BIN_GAPFILL requires a column as the source argument",
        ),
        (
            f"SELECT date_bin_gapfill(INTERVAL '1 month', time) AS t, count(*) FROM home"
            f" {GAPFILL_WHERE} GROUP BY t",
            "fixed-size strides",
        ),
    ],
)
def test_gapfill_misuse_is_a_plan_error(home: Engine, sql: str, message: str) -> None:
    with pytest.raises(QueryPlanError, match=message):
        q(home, sql)


def test_gapfill_over_doget(standin: Any) -> None:
    if not HOME_LP.exists():
        pytest.skip(f"shared sample data not found at {HOME_LP}")
    db = "functions_gapfill_doget"
    if not standin.engine.has_database(db):
        load_simple_lp(standin.engine, db, HOME_LP)
    client = flight.FlightClient(standin.flight_uri)
    options = flight.FlightCallOptions(
        headers=[(b"authorization", f"Bearer {standin.token}".encode())]
    )
    ticket = {
        "database": db,
        "sql_query": "SELECT date_bin_gapfill(INTERVAL '30 minutes', time) AS _time, room,"
        f" locf(avg(temp)) AS temp FROM home {GAPFILL_WHERE} GROUP BY _time, room",
    }
    table = client.do_get(flight.Ticket(json.dumps(ticket)), options).read_all()
    client.close()
    assert table.schema.field("room").type == pa.utf8()
    assert table.num_rows == 10
    assert _series(table, "temp")["Kitchen"] == [21.0, 21.0, 23.0, 23.0, 22.7]


def test_gapfill_with_no_rows_in_range_is_empty_with_schema() -> None:
    engine = Engine()
    engine.append(
        "db", "m", pa.record_batch({"v": [1.0], "time": pa.array([0], pa.timestamp("ns"))})
    )
    reader = engine.query_sql(
        "db",
        "SELECT date_bin_gapfill(INTERVAL '1 hour', time) AS t, avg(v) AS a FROM m"
        " WHERE time >= '2020-01-01T00:00:00Z' AND time < '2020-01-01T03:00:00Z' GROUP BY t",
    )
    assert reader.schema.names == ["t", "a"]
    assert reader.read_all().num_rows == 0


def test_gapfill_with_origin(home: Engine) -> None:
    out = q(
        home,
        "SELECT date_bin_gapfill(INTERVAL '1 hour', time, '1970-01-01T00:30:00Z') AS t,"
        " count(temp) AS n FROM home WHERE time >= '2022-01-01T08:00:00Z'"
        " AND time < '2022-01-01T11:00:00Z' GROUP BY t",
    )
    # bins start at half past: 07:30 holds 08:00, 08:30 holds 09:00, ...
    assert [(t.hour, t.minute) for t in out.column("t").to_pylist()] == [
        (7, 30),
        (8, 30),
        (9, 30),
        (10, 30),
    ]
    assert out.column("n").to_pylist() == [2, 2, 2, 0]


def test_tz_zone_from_a_parameter(home: Engine) -> None:
    out = q(
        home,
        "SELECT tz(time, $zone) AS t FROM home WHERE room = $room LIMIT 1",
        {"zone": "Asia/Tokyo", "room": "Kitchen"},
    )
    assert out.schema.field("t").type == pa.timestamp("ns", "Asia/Tokyo")
    with pytest.raises(QueryPlanError, match="invalid timezone 'Nowhere'"):
        q(home, "SELECT tz(time, $zone) FROM home", {"zone": "Nowhere"})
    with pytest.raises(QueryPlanError, match="string parameter"):
        q(home, "SELECT tz(time, $zone) FROM home", {"zone": 5})
