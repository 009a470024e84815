"""InfluxDB's SQL functions survive real SQL: a property test over the forms users write.

Hypothesis builds selector queries with every alias form (``AS "x"``, ``AS 'x'``, bare, none),
quoted and qualified identifiers, comments and line breaks between tokens, nesting inside other
functions, and CTEs or subqueries as the source. Each generated query must give the expected
column names (the alias, or the name IOx's DataFusion gives the call as written) and the values
computed independently from the rows. Plus the documentation's own example (the pyarrow
``do_get`` seed), which must give ``time, room, max temp, min temp, average temp``.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influx_flight.server.engine import Engine

DB = "forms"
BASE = 1_640_995_200_000_000_000  # 2022-01-01T00:00:00Z
ROOMS = ["Kitchen", "Living Room"]


def _rows() -> list[dict[str, Any]]:
    rows = []
    for i in range(24):
        rows.append(
            {
                "time": BASE + i * 3_600_000_000_000,
                "room": ROOMS[i % 2],
                # ties on purpose (min/max keep the earliest), and a null
                "temp": None if i == 7 else float(20 + (i * 7) % 5),
                "hum": 30 + (i * 5) % 11,
                "co": i % 4,
            }
        )
    return rows


ROWS = _rows()


@pytest.fixture(scope="module")
def engine() -> Engine:
    eng = Engine()
    table = pa.table(
        {
            "time": pa.array([r["time"] for r in ROWS], pa.timestamp("ns")),
            "room": [r["room"] for r in ROWS],
            "temp": pa.array([r["temp"] for r in ROWS], pa.float64()),
            "hum": pa.array([r["hum"] for r in ROWS], pa.int64()),
            "co": pa.array([r["co"] for r in ROWS], pa.int64()),
        }
    )
    eng.append(DB, "home", table, tags=["room"])
    return eng


def selected(kind: str, column: str, room: str) -> dict[str, Any] | None:
    """IOx's selector rules: rows with a null value are ignored; min/max ties go earliest."""
    rows = [r for r in ROWS if r["room"] == room and r[column] is not None]
    if not rows:
        return None
    if kind == "min":
        return min(rows, key=lambda r: (r[column], r["time"]))
    if kind == "max":
        return min(rows, key=lambda r: (-r[column], r["time"]))
    if kind == "first":
        return min(rows, key=lambda r: r["time"])
    return max(rows, key=lambda r: r["time"])


# -- the generated forms ---------------------------------------------------------------------

GAPS = st.sampled_from([" ", "  ", "\n    ", " /* gap */ ", " -- note\n  ", "\t"])
KINDS = st.sampled_from(["first", "last", "min", "max"])
COLUMNS = st.sampled_from(["temp", "hum", "co"])
FIELDS = st.sampled_from([None, "value", "time"])
ALIASES = st.sampled_from(
    [None, ("AS", '"{a}"'), ("AS", "'{a}'"), ("AS", "{a}"), ("", "{a}"), ("", '"{a}"')]
)
ALIAS_NAMES = st.sampled_from(["x", "max temp", "Mixed Case", "sel_1"])
SOURCES = st.sampled_from(["table", "cte", "subquery"])
QUOTES = st.sampled_from(["bare", "quoted", "qualified"])
WRAPS = st.sampled_from([None, "round", "coalesce"])


@st.composite
def forms(draw: st.DrawFn) -> dict[str, Any]:
    alias = draw(ALIASES)
    name = draw(ALIAS_NAMES)
    if alias is not None and alias[1] == "{a}" and " " in name:
        name = name.replace(" ", "_")  # a bare alias cannot hold a space
    if alias is not None and alias[1] == "{a}" and name != name.lower():
        name = name.lower()
    field = draw(FIELDS)
    return {
        "kind": draw(KINDS),
        "column": draw(COLUMNS),
        "field": field,
        "alias": alias,
        "alias_name": name,
        "source": draw(SOURCES),
        "quote": draw(QUOTES),
        "wrap": draw(WRAPS) if field == "value" else None,
        "gaps": [draw(GAPS) for _ in range(8)],
    }


def _source_name(form: dict[str, Any]) -> str:
    return "home" if form["source"] == "table" else "src"


def _ident(form: dict[str, Any], column: str) -> str:
    """``column`` as the generated form writes it: bare, quoted or qualified by its source."""
    if form["quote"] == "quoted":
        return f'"{column}"'
    if form["quote"] == "qualified":
        return f"{_source_name(form)}.{column}"
    return column


def build(form: dict[str, Any]) -> tuple[str, str]:
    """(query, expected name of the selector column)."""
    g = form["gaps"]
    source_name = _source_name(form)

    def ident(column: str) -> str:
        return _ident(form, column)

    call = f"selector_{form['kind']}({g[0]}{ident(form['column'])},{g[1]}{ident('time')})"
    shown = f"selector_{form['kind']}({source_name}.{form['column']},{source_name}.time)"
    if form["field"] is not None:
        call += f"['{form['field']}']"
        shown += f"[{form['field']}]"
    if form["wrap"] == "round":
        call = f"round({call}, 2)"
        shown = f"round({shown},Int64(2))"
    elif form["wrap"] == "coalesce":
        call = f"coalesce({call},{g[2]}-1)"
        shown = f"coalesce({shown},Int64(-1))"
    item = call
    expected = shown
    if form["alias"] is not None:
        keyword, pattern = form["alias"]
        item = (
            f"{call}{g[3]}{keyword}{' ' if keyword else ''}{pattern.format(a=form['alias_name'])}"
        )
        expected = form["alias_name"]
    if form["source"] == "table":
        source, head = "home", ""
    elif form["source"] == "cte":
        source, head = "src", f"WITH src AS ({g[4]}SELECT * FROM home){g[5]}"
    else:
        source, head = "(SELECT * FROM home) AS src", ""
    sql = (
        f"{head}SELECT{g[6]}room,{g[7]}{item}\nFROM {source}\nGROUP BY room\n"
        "-- trailing comment\nORDER BY room"
    )
    return sql, expected


def expected_value(form: dict[str, Any], room: str) -> Any:
    row = selected(form["kind"], form["column"], room)
    if form["field"] is None:
        if row is None:
            return None
        return {"value": row[form["column"]], "time": row["time"]}
    if row is None:
        value = None
    elif form["field"] == "value":
        value = row[form["column"]]
    else:
        value = row["time"]
    if form["wrap"] == "round" and value is not None:
        value = round(value, 2)
    if form["wrap"] == "coalesce" and value is None:
        value = -1
    return value


def as_ns(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: as_ns(v) for k, v in value.items()}
    if hasattr(value, "value") and hasattr(value, "tz_localize"):  # pandas Timestamp
        return int(value.value)
    if isinstance(value, datetime):
        return int(pa.scalar(value, pa.timestamp("ns")).value)
    return value


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(form=forms())
def test_selector_forms_keep_names_and_values(engine: Engine, form: dict[str, Any]) -> None:
    sql, expected_name = build(form)
    out = engine.query_sql(DB, sql, hydrate=True).read_all()
    assert out.schema.names == ["room", expected_name], sql
    got = {r["room"]: as_ns(r[expected_name]) for r in out.to_pylist()}
    want = {room: as_ns(expected_value(form, room)) for room in ROOMS}
    assert got == want, sql


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        (
            "SELECT tz(time, 'Europe/Oslo') AS 'local', temp FROM home LIMIT 1",
            ["local", "temp"],
        ),
        ("SELECT tz(time, 'Europe/Oslo'), temp FROM home LIMIT 1", None),
        (
            "SELECT date_bin_wallclock(INTERVAL '1 day', tz(time, 'Europe/Oslo')) AS \"day\","
            " count(*) AS n FROM home GROUP BY 1",
            ["day", "n"],
        ),
        (
            'SELECT * FROM (SELECT selector_last(temp, time) /* c */ "Last" FROM home) q',
            ["Last"],
        ),
    ],
)
def test_tz_and_wallclock_forms(engine: Engine, sql: str, names: list[str] | None) -> None:
    out = engine.query_sql(DB, sql, hydrate=True).read_all()
    if names is None:
        names = ['tz(home.time,Utf8("Europe/Oslo"))', "temp"]
    assert out.schema.names == names
    assert out.num_rows >= 1


# -- the documentation's example, over Flight -------------------------------------------------

SEED_QUERY = """
SELECT
  DATE_BIN(INTERVAL '2 hours', time, '1970-01-01T00:00:00Z'::TIMESTAMP) AS time,
  room,
  selector_max(temp, time)['value'] AS 'max temp',
  selector_min(temp, time)['value'] AS 'min temp',
  avg(temp) AS 'average temp'
FROM home
GROUP BY
  1,
  room
ORDER BY room, 1
"""


def test_documented_pyarrow_example_gives_the_documented_columns(standin: Any) -> None:
    if not standin.engine.has_database(DB):
        standin.engine.append(
            DB,
            "home",
            pa.table(
                {
                    "time": pa.array([r["time"] for r in ROWS], pa.timestamp("ns")),
                    "room": [r["room"] for r in ROWS],
                    "temp": pa.array([r["temp"] for r in ROWS], pa.float64()),
                }
            ),
            tags=["room"],
        )
    client = flight.FlightClient(standin.flight_uri)
    try:
        ticket = flight.Ticket(
            json.dumps({"database": DB, "sql_query": SEED_QUERY, "query_type": "sql"}).encode()
        )
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {standin.token}".encode())]
        )
        table = client.do_get(ticket, options).read_all()
    finally:
        client.close()
    assert table.schema.names == ["time", "room", "max temp", "min temp", "average temp"]
    first = table.to_pylist()[0]
    window = [
        r
        for r in ROWS
        if r["room"] == "Kitchen" and r["temp"] is not None and r["time"] < BASE + 7_200_000_000_000
    ]
    assert first["room"] == "Kitchen"
    assert first["max temp"] == max(r["temp"] for r in window)
    assert first["min temp"] == min(r["temp"] for r in window)
    assert first["average temp"] == pytest.approx(sum(r["temp"] for r in window) / len(window))


# -- gap filling: the same forms, named from DataFusion's plan --------------------------------

HOUR = 3_600_000_000_000
STRIDE_SHOWN = (
    'IntervalMonthDayNano("IntervalMonthDayNano { months: 0, days: 0, nanoseconds: 3600000000000'
    ' }")'
)
FILLS = st.sampled_from([None, "locf", "interpolate"])


@st.composite
def gapfill_forms(draw: st.DrawFn) -> dict[str, Any]:
    def alias_of() -> tuple[Any, str]:
        alias = draw(ALIASES)
        name = draw(ALIAS_NAMES)
        if alias is not None and alias[1] == "{a}":
            name = name.replace(" ", "_").lower()  # a bare alias: no space, folded
        return alias, name

    time_alias, time_name = alias_of()
    value_alias, value_name = alias_of()
    if value_alias is not None and time_alias is not None and value_name == time_name:
        value_name += "_v"
    return {
        "fill": draw(FILLS),
        "time_alias": time_alias,
        "time_name": time_name,
        "value_alias": value_alias,
        "value_name": value_name,
        "source": draw(SOURCES),
        "quote": draw(QUOTES),
        "group_by_position": draw(st.booleans()),
        "gaps": [draw(GAPS) for _ in range(8)],
    }


def build_gapfill(form: dict[str, Any]) -> tuple[str, list[str]]:
    """(query, expected column names) of a gap-filling query in one of the generated forms."""
    g = form["gaps"]
    source_name = _source_name(form)

    def ident(column: str) -> str:
        return _ident(form, column)

    def aliased(expr: str, alias: Any, name: str, shown: str) -> tuple[str, str]:
        if alias is None:
            return expr, shown
        keyword, pattern = alias
        return f"{expr}{g[3]}{keyword}{' ' if keyword else ''}{pattern.format(a=name)}", name

    bin_expr = f"date_bin_gapfill({g[0]}INTERVAL '1 hour',{g[1]}{ident('time')})"
    time_item, time_shown = aliased(
        bin_expr,
        form["time_alias"],
        form["time_name"],
        f"date_bin_gapfill({STRIDE_SHOWN},{source_name}.time)",
    )
    value_expr = f"avg({g[2]}{ident('temp')})"
    value_shown = f"avg({source_name}.temp)"
    if form["fill"] is not None:
        value_expr = f"{form['fill']}({value_expr})"
        value_shown = f"{form['fill']}({value_shown})"
    value_item, value_shown = aliased(
        value_expr, form["value_alias"], form["value_name"], value_shown
    )
    if form["source"] == "table":
        source, head = "home", ""
    elif form["source"] == "cte":
        source, head = "src", f"WITH src AS ({g[4]}SELECT * FROM home){g[5]}"
    else:
        source, head = "(SELECT * FROM home) AS src", ""
    group = "1, room" if form["group_by_position"] else f"{bin_expr}, room"
    sql = (
        f"{head}SELECT{g[6]}{time_item},\n  room,{g[7]}{value_item}\nFROM {source}\n"
        f"WHERE {ident('time')} >= '2022-01-01T00:00:00Z'\n  AND {ident('time')} <"
        f" '2022-01-02T00:00:00Z' -- one day\nGROUP BY {group}\nORDER BY room, 1"
    )
    return sql, [time_shown, "room", value_shown]


def expected_gapfill(fill: str | None, room: str) -> list[tuple[int, Any]]:
    """(bin, value) per hour of the day, with IOx's locf / interpolate rules."""
    by_time = {r["time"]: r["temp"] for r in ROWS if r["room"] == room}
    bins = [BASE + k * HOUR for k in range(24)]
    values: list[Any] = [by_time.get(t) for t in bins]
    if fill == "locf":
        last = None
        for k, v in enumerate(values):
            if v is None:
                values[k] = last
            else:
                last = v
    elif fill == "interpolate":
        known = [k for k, v in enumerate(values) if v is not None]
        for k, v in enumerate(values):
            before = [j for j in known if j < k]
            after = [j for j in known if j > k]
            if v is None and before and after:
                p, q = before[-1], after[0]
                values[k] = values[p] + (values[q] - values[p]) * (k - p) / (q - p)
    return list(zip(bins, values, strict=True))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(form=gapfill_forms())
def test_gapfill_forms_keep_names_and_values(engine: Engine, form: dict[str, Any]) -> None:
    sql, names = build_gapfill(form)
    out = engine.query_sql(DB, sql, hydrate=True).read_all()
    assert out.schema.names == names, sql
    got = [
        (r["room"], as_ns(r[names[0]]), r[names[2]])
        for r in out.to_pylist()  # ordered by room, then time
    ]
    want = [(room, t, v) for room in sorted(ROOMS) for t, v in expected_gapfill(form["fill"], room)]
    assert [(a, b) for a, b, _ in got] == [(a, b) for a, b, _ in want], sql
    for (_, _, value), (_, _, expected) in zip(got, want, strict=True):
        if expected is None:
            assert value is None, sql
        else:
            assert value == pytest.approx(expected), sql
