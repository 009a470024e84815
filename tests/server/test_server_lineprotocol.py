"""Line-protocol grammar of the stand-in's parser (influx_flight.server.line_protocol).

Covers escaping, value types, comments, timestamps and precision, Core's error messages, type
resolution across lines, and property tests that encode nasty names and values per the spec,
parse them back (through both the vectorised fast path and the per-line slow path) and compare.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influx_flight.server.line_protocol import (
    LineError,
    guess_precision,
    parse,
    parse_line,
    resolve,
    split_lines,
    tag_columns,
)

NOW = 1_700_000_000_123_456_789


def rows_of(body: str | bytes, precision: str = "ns") -> list[dict[str, Any]]:
    """Parsed rows in line order as plain dicts (measurement, tags, fields with kinds, time)."""
    result = parse(body, precision, NOW)
    rows: list[dict[str, Any]] = []
    for chunk in result.chunks:
        tags = {k: v.to_pylist() for k, v in chunk.tags.items()}
        fields = {k: (kind, v.to_pylist()) for k, (kind, v) in chunk.fields.items()}
        for i, idx in enumerate(chunk.line_index.tolist()):
            rows.append(
                {
                    "line": idx + 1,
                    "measurement": chunk.table,
                    "tags": {k: v[i] for k, v in tags.items()},
                    "fields": {k: (kind, v[i]) for k, (kind, v) in fields.items()},
                    "time": int(chunk.time[i]),
                }
            )
    rows.sort(key=lambda r: r["line"])
    return rows


def errors_of(body: str, precision: str = "ns") -> list[tuple[int, str]]:
    return sorted((e.line_number, e.error_message) for e in parse(body, precision, NOW).errors)


def one(body: str, precision: str = "ns") -> dict[str, Any]:
    rows = rows_of(body, precision)
    assert len(rows) == 1, (rows, errors_of(body))
    return rows[0]


# -- the typical line -----------------------------------------------------------------------


def test_typical_sensor_line() -> None:
    row = one("home,room=Kitchen temp=21.1,hum=35.9,co=0i 1641024000", "s")
    assert row == {
        "line": 1,
        "measurement": "home",
        "tags": {"room": "Kitchen"},
        "fields": {"temp": ("float", 21.1), "hum": ("float", 35.9), "co": ("int", 0)},
        "time": 1_641_024_000_000_000_000,
    }


# -- escaping -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "measurement", "tags", "field_key"),
    [
        (r"my\ m\,x,t=v f=1", "my m,x", {"t": "v"}, "f"),
        (r"m,t\ k\,\==v\ a\,b\= f=1", "m", {"t k,=": "v a,b="}, "f"),
        (r"m f\ k\,\==1", "m", {}, "f k,="),
        (r"m\=x f=1", r"m\=x", {}, "f"),  # '=' is not an escape in measurements
        (r"m,t=a\tb f=1", "m", {"t": r"a\tb"}, "f"),  # unknown escape kept literally
        ("m=x,t=a=b f=1", "m=x", {"t": "a=b"}, "f"),  # unescaped '=' allowed there
        ("m,t=v f\\\\x=1", "m", {"t": "v"}, "f\\x"),
        ("Ünïcødé,ключ=значение 温度=1", "Ünïcødé", {"ключ": "значение"}, "温度"),
    ],
)
def test_escaping(line: str, measurement: str, tags: dict[str, str], field_key: str) -> None:
    row = one(line)
    assert row["measurement"] == measurement
    assert row["tags"] == tags
    assert list(row["fields"]) == [field_key]


def test_string_field_escapes_and_embedded_newline() -> None:
    body = 'm s="a \\"quoted\\" \\\\ back, comma=equals",t="line1\nline2" 5\nm s="",t="x" 6'
    rows = rows_of(body)
    assert rows[0]["fields"]["s"] == ("string", 'a "quoted" \\ back, comma=equals')
    assert rows[0]["fields"]["t"] == ("string", "line1\nline2")
    assert rows[1]["line"] == 2 and rows[1]["fields"]["s"] == ("string", "")


def test_lone_backslash_in_string_is_kept() -> None:
    assert one(r'm s="C:\temp\new"')["fields"]["s"] == ("string", r"C:\temp\new")


def test_split_lines_respects_quotes_and_escaped_newlines() -> None:
    assert split_lines('a f="x\ny" 1\nb f=1') == ['a f="x\ny" 1', "b f=1"]
    assert split_lines("a\\\nb f=1\nc f=2") == ["a\\\nb f=1", "c f=2"]
    assert split_lines("a f=1\nb f=2") == ["a f=1", "b f=2"]


# -- value types ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("1", "float", 1.0),
        ("1.0", "float", 1.0),
        ("-1.5e10", "float", -1.5e10),
        ("1E5", "float", 1e5),
        ("1.5e-3", "float", 1.5e-3),
        ("2e+2", "float", 200.0),
        ("-0", "float", -0.0),
        ("1i", "int", 1),
        ("-9223372036854775808i", "int", -(2**63)),
        ("9223372036854775807i", "int", 2**63 - 1),
        ("0u", "uint", 0),
        ("18446744073709551615u", "uint", 2**64 - 1),
        *[(b, "bool", True) for b in ("t", "T", "true", "True", "TRUE")],
        *[(b, "bool", False) for b in ("f", "F", "false", "False", "FALSE")],
        ('"text"', "string", "text"),
    ],
)
def test_field_value_types(text: str, kind: str, value: Any) -> None:
    # each value alone (slow path for strings) and next to plain lines (fast path)
    body = f"m v={text} 1\nm v={text} 2"
    rows = rows_of(body)
    assert [r["fields"]["v"] for r in rows] == [(kind, value), (kind, value)]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("m v=1.", "Could not parse entire line. Found trailing content: `.`"),
        ("m v=.5", "No fields were provided"),
        ("m v=+1", "No fields were provided"),
        ("m v=tru", "Could not parse entire line. Found trailing content: `ru`"),
        ("m v=1x", "Could not parse entire line. Found trailing content: `x`"),
        ("m v=-1u", "Could not parse entire line. Found trailing content: `u`"),
        ("m v=inf", "No fields were provided"),
        ("m v=9223372036854775808i", "Unable to parse integer value `9223372036854775808`"),
        (
            "m v=18446744073709551616u",
            "Unable to parse unsigned integer value `18446744073709551616`",
        ),
        ('m v="open', "No fields were provided"),
    ],
)
def test_bad_values(line: str, message: str) -> None:
    assert errors_of(line) == [(1, message)]


# -- structure and Core's messages ------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("measurement", "Expected at least one space character, got end of input"),
        (",", "Invalid measurement was provided"),
        ("J,#", "Tag set malformed: could not find equals sign in `#`"),
        ("J," + "a" * 200, "Tag set malformed: could not find equals sign in `aaaaaaaaaa...`"),
        ("J,", "Expected tag key, got end of input"),
        ("testmeasure, bar=1i", "Expected tag key, got ` bar=1i`"),
        ("0,,=", "Expected tag value, got end of input"),
        ("testmeasure,foo=,baz= bar=1i", "Expected tag value, got `,baz= bar=...`"),
        ("testmeasure,foo= sed=1i", "Expected tag value, got ` sed=1i`"),
        (
            "testmeasure,foo=f bar=1i,baz=",
            "Could not parse entire line. Found trailing content: `baz=`",
        ),
        (
            "m f=1 " + "1" * 30,
            "Unable to parse timestamp value `" + "1" * 30 + "`",
        ),
        (
            ":\x14\\",
            "Measurements, tag keys and values, and field keys may not end with a backslash",
        ),
        ("m,a=1,a=2 f=1", "Must not contain duplicate tags, but `a` was repeated"),
        (
            "m,t=a\\\\ f=1",
            "Measurements, tag keys and values, and field keys may not end with a backslash",
        ),
        ("m,t\\ x=1,t\\ x=2 f=1", "Must not contain duplicate tags, but `t x` was repeated"),
        ("m f=1 12 x", "Could not parse entire line. Found trailing content: `x`"),
        ("m f=1 ", "Could not parse entire line. Found trailing content: ` `"),
        ("m,t=a\tb f=1", "Expected at least one space character, got `\tb f=1`"),
        ("m f=1 0x10", "Could not parse entire line. Found trailing content: `x10`"),
    ],
)
def test_core_error_messages(line: str, message: str) -> None:
    assert errors_of(line) == [(1, message)]


def test_blank_lines_comments_and_whitespace() -> None:
    body = "\n# a comment\n   \n  m f=1 1\n\t# indented comment\nm  f=2   2  \n\n"
    rows = rows_of(body)
    assert [(r["line"], r["fields"]["f"][1], r["time"]) for r in rows] == [(1, 1.0, 1), (2, 2.0, 2)]


def test_line_numbers_count_data_lines_and_keep_going_after_errors() -> None:
    body = "goodline,tag1=one value=1 123\n\nbadline,\n# c\nanother,tag3=3 value=67 1234"
    result = parse(body, "ns", NOW)
    assert [(e.line_number, e.original_line) for e in result.errors] == [(2, "badline,")]
    assert sorted(r["line"] for r in rows_of(body)) == [1, 3]


def test_duplicate_field_keys_last_one_wins() -> None:
    assert one("m a=1,b=2,a=3 1")["fields"] == {"b": ("float", 2.0), "a": ("float", 3.0)}


def test_missing_timestamp_uses_server_time() -> None:
    assert one("m f=1")["time"] == NOW
    assert one("m f=1", "s")["time"] == NOW  # "now" is already nanoseconds


def test_invalid_utf8_is_refused() -> None:
    with pytest.raises(UnicodeDecodeError):
        parse(b"m f=1 \xff\xfe", "ns", NOW)


def test_bad_precision_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid precision 'hours'"):
        parse("m f=1", "hours", NOW)


# -- precision ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("precision", "ts", "ns"),
    [
        ("s", 1641024000, 1_641_024_000_000_000_000),
        ("second", 1, 1_000_000_000),
        ("ms", 1641024000123, 1_641_024_000_123_000_000),
        ("us", 5, 5_000),
        ("u", 5, 5_000),
        ("microsecond", 5, 5_000),
        ("ns", 5, 5),
        ("n", -5, -5),
        ("nanosecond", 7, 7),
        ("auto", 1641024000, 1_641_024_000_000_000_000),
        ("auto", 1641024000123, 1_641_024_000_123_000_000),
        ("auto", 1641024000123456, 1_641_024_000_123_456_000),
        ("auto", 1641024000123456789, 1_641_024_000_123_456_789),
        ("auto", -1641024000, -1_641_024_000_000_000_000),
    ],
)
def test_precision(precision: str, ts: int, ns: int) -> None:
    assert one(f"m f=1 {ts}", precision)["time"] == ns


def test_guess_precision_boundaries_follow_core() -> None:
    ts = np.array([4_999_999_999, 5_000_000_000, 4_999_999_999_999, 5_000_000_000_000])
    assert guess_precision(ts).tolist() == [1_000_000_000, 1_000_000, 1_000_000, 1_000]


def test_timestamp_overflowing_nanoseconds_is_a_line_error() -> None:
    errors = errors_of("m f=1 9223372036854775\nm f=1 9 ", "s")
    assert errors[0][0] == 1 and "does not fit in 64-bit nanoseconds" in errors[0][1]


# -- resolve: types across lines and against the schema ---------------------------------------


class _Schema:
    def __init__(self, tags: list[str], fields: dict[str, pa.DataType]) -> None:
        self.tags = tags
        self.fields = fields


def test_resolve_builds_one_batch_per_table_in_line_order() -> None:
    body = "a,t=x f=1 3\nb g=1i 1\na,t=y f=2,h=true 2\na f=3 1"
    batches, errors = resolve(parse(body, "ns", NOW))
    assert errors == []
    a = batches["a"]
    assert a.schema.names == ["f", "h", "t", "time"]
    assert a.schema.field("time").type == pa.timestamp("ns")
    assert tag_columns(a) == ["t"]
    assert a.column("f").to_pylist() == [1.0, 2.0, 3.0]
    assert a.column("t").to_pylist() == ["x", "y", None]
    assert a.column("h").to_pylist() == [None, True, None]
    assert batches["b"].column("g").type == pa.int64()


def test_resolve_first_line_fixes_a_new_field_type() -> None:
    body = "m f=1i 1\nm f=1 2\nm f=2i 3"
    batches, errors = resolve(parse(body, "ns", NOW))
    assert batches["m"].column("f").to_pylist() == [1, 2]
    assert errors == [
        LineError(
            2,
            "invalid field value in line protocol for field 'f' on line 1: expected type "
            "iox::column_type::field::integer, but got iox::column_type::field::float",
            "m f=1 2",
        )
    ]


def test_resolve_checks_the_existing_schema() -> None:
    existing = {"m": _Schema(["t"], {"f": pa.float64(), "s": pa.string()})}
    body = "m,t=a f=1i 1\nm,t=b f=2 2\nm s=1 3\nm t=1 4\nm,f=x g=1 5\nm,time=x g=1 6\nm,t=q t=1 7"
    batches, errors = resolve(parse(body, "ns", NOW), existing)
    assert batches["m"].column("f").to_pylist() == [2.0]
    messages = {e.line_number: e.error_message for e in errors}
    assert set(messages) == {1, 3, 4, 5, 6, 7}
    assert "expected type iox::column_type::field::float, but got" in messages[1]
    assert "expected type iox::column_type::field::string" in messages[3]
    assert "expected type iox::column_type::tag" in messages[4]
    assert "uses it as a tag" in messages[5]
    assert "'time' is reserved" in messages[6]
    assert "both a tag and a field" in messages[7]


def test_resolve_reports_errors_sorted_with_original_lines() -> None:
    body = "ok f=1 1\nbad\nok f=1i 2"
    _, errors = resolve(parse(body, "ns", NOW))
    assert [(e.line_number, e.original_line) for e in errors] == [(2, "bad"), (3, "ok f=1i 2")]


def test_many_shapes_and_tables_in_one_body() -> None:
    lines = [f"t{i % 80},k{i % 3}=v f{i % 5}={i}i {i}" for i in range(800)]
    batches, errors = resolve(parse("\n".join(lines), "ns", NOW))
    assert errors == []
    assert sum(b.num_rows for b in batches.values()) == 800
    assert batches["t7"].column("time").cast(pa.int64()).to_pylist() == list(range(7, 800, 80))


def test_fast_path_matches_slow_path_on_a_large_plain_body() -> None:
    rooms = ["Kitchen", "Living", "Bed"]
    lines = [
        f"home,room={rooms[i % 3]},sensor=s{i % 7} temp={20 + i % 10 / 10},co={i % 9}i,"
        f"ok={'t' if i % 2 else 'F'},n={i}u {1641024000 + i}"
        for i in range(3000)
    ]
    fast = rows_of("\n".join(lines), "s")
    assert len(fast) == 3000
    for row, line in zip(fast[::97], lines[::97], strict=True):
        measurement, tags, fields, ts = parse_line(line)
        assert row["measurement"] == measurement
        assert row["tags"] == dict(tags)
        assert row["fields"] == {k: (kind, v) for k, kind, v in fields}
        assert row["time"] == ts * 1_000_000_000


# -- property tests ----------------------------------------------------------------------------

_NASTY = st.sampled_from(list(" ,=\\\"'#ab01_-.Zé中\U0001f600\x01\x04"))
# names with backslash escapes but no quotes: the fast path with encoded escapes
_ESCAPED = st.sampled_from(list(" ,=\\ab01_-.Z"))
_PLAIN = st.sampled_from(list("abcXYZ019_-."))


def _name(alphabet: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    # Core cannot represent a name ending with a backslash, nor a measurement starting with '#'.
    return st.text(alphabet, min_size=1, max_size=8).filter(lambda s: not s.endswith("\\"))


def _esc(value: str, chars: str) -> str:
    out = value.replace("\\", "\\\\")
    for c in chars:
        out = out.replace(c, "\\" + c)
    return out


_VALUE = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(lambda v: ("float", v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: ("int", v)),
    st.integers(0, 2**64 - 1).map(lambda v: ("uint", v)),
    st.booleans().map(lambda v: ("bool", v)),
    st.text(st.characters(blacklist_categories=["Cs"]), max_size=12).map(lambda v: ("string", v)),
)
_BOOL_TEXT = {
    True: ["t", "T", "true", "True", "TRUE"],
    False: ["f", "F", "false", "False", "FALSE"],
}


@st.composite
def _point(draw: st.DrawFn, alphabet: st.SearchStrategy[str]) -> dict[str, Any]:
    measurement = draw(_name(alphabet).filter(lambda s: not s.startswith("#")))
    tag_keys = draw(st.lists(_name(alphabet), max_size=3, unique=True))
    tags = {k: draw(_name(alphabet)) for k in tag_keys}
    field_keys = draw(st.lists(_name(alphabet), min_size=1, max_size=3, unique=True))
    fields = {k: draw(_VALUE) for k in field_keys}
    ts = draw(st.one_of(st.none(), st.integers(-(2**62), 2**62)))
    spellings = {
        k: draw(st.sampled_from(_BOOL_TEXT[v])) for k, (kind, v) in fields.items() if kind == "bool"
    }
    return {"m": measurement, "tags": tags, "fields": fields, "ts": ts, "bools": spellings}


def _encode(p: dict[str, Any]) -> str:
    series = _esc(p["m"], ", ")
    for k, v in p["tags"].items():
        series += "," + _esc(k, ",= ") + "=" + _esc(v, ",= ")
    parts = []
    for k, (kind, v) in p["fields"].items():
        if kind == "float":
            text = repr(float(v))
        elif kind == "int":
            text = f"{v}i"
        elif kind == "uint":
            text = f"{v}u"
        elif kind == "bool":
            text = p["bools"][k]
        else:
            text = '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        parts.append(_esc(k, ",= ") + "=" + text)
    line = series + " " + ",".join(parts)
    return line if p["ts"] is None else f"{line} {p['ts']}"


def _check_roundtrip(points: list[dict[str, Any]]) -> None:
    body = "\n".join(_encode(p) for p in points)
    result = parse(body.encode("utf-8"), "ns", NOW)
    assert result.errors == []
    rows = rows_of(body)
    assert len(rows) == len(points)
    for row, p in zip(rows, points, strict=True):
        assert row["measurement"] == p["m"]
        assert row["tags"] == p["tags"]
        assert row["time"] == (NOW if p["ts"] is None else p["ts"])
        assert set(row["fields"]) == set(p["fields"])
        for k, (kind, v) in p["fields"].items():
            got_kind, got = row["fields"][k]
            assert got_kind == kind
            if kind == "float":
                assert got == v or (got == 0 and v == 0)
            else:
                assert got == v


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_point(_NASTY), min_size=1, max_size=6))
def test_property_nasty_names_and_values_roundtrip(points: list[dict[str, Any]]) -> None:
    _check_roundtrip(points)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_point(_PLAIN), min_size=1, max_size=12), st.lists(_point(_NASTY), max_size=3))
def test_property_fast_and_slow_paths_agree(
    plain: list[dict[str, Any]], nasty: list[dict[str, Any]]
) -> None:
    # plain points take the vectorised path; mixing in nasty ones sends those to the slow path
    _check_roundtrip(plain + nasty + plain)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(
        _point(_ESCAPED).filter(lambda p: all(k != "string" for k, _ in p["fields"].values())),
        min_size=1,
        max_size=12,
    )
)
def test_property_escaped_names_on_the_fast_path(points: list[dict[str, Any]]) -> None:
    _check_roundtrip(points + points)


@pytest.mark.parametrize(
    "line",
    [
        'home_actions,room=Kitchen,level=ok description="At 23°C, cooling (to 22°C)." 1641027600',
        'm s="two\nlines",v=1i,u=2u,b=T,f=-1.5e3',
        'm s="",t=f 5  ',
    ],
)
def test_quick_path_agrees_with_the_full_parser(line: str) -> None:
    from influx_flight.server.line_protocol import _parse_line_quick

    quick = _parse_line_quick(line)
    assert quick is not None and quick == parse_line(line)


@pytest.mark.parametrize("line", ['m s="x" ', "m,a=1,a=2 f=1", "m f=1.", 'm f="open', "m f=1 12x"])
def test_quick_path_leaves_errors_to_the_full_parser(line: str) -> None:
    from influx_flight.server.line_protocol import _parse_line_quick

    assert _parse_line_quick(line) is None
    assert parse(line, "ns", NOW).errors


def test_escaped_names_and_tag_values_take_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    import influx_flight.server.line_protocol as lp

    def no_slow_path(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the slow path was used")

    monkeypatch.setattr(lp, "_slow_path", no_slow_path)
    body = "my\\ m\\=x\\\\y,ro\\ om=Living\\ Room\\,\\=\\\\z f\\,k=1 1\nmy\\ m\\=x\\\\y,ro\\ om=K f\\,k=2 2"
    rows = rows_of(body)
    assert [r["measurement"] for r in rows] == ["my m\\=x\\y", "my m\\=x\\y"]
    assert [r["tags"] for r in rows] == [{"ro om": "Living Room,=\\z"}, {"ro om": "K"}]
    assert rows == [{**r, "line": i + 1} for i, r in enumerate(rows)]
    for row, line in zip(rows, body.split("\n"), strict=True):
        measurement, tags, _fields, _ = parse_line(line)
        assert (row["measurement"], row["tags"]) == (measurement, dict(tags))
    assert [r["fields"] for r in rows] == [{"f,k": ("float", 1.0)}, {"f,k": ("float", 2.0)}]


def test_a_line_without_a_measurement_is_rejected_among_plain_lines() -> None:
    # Core: "Invalid measurement was provided"; the vectorised path must not make a table ""
    body = ",host=a f=1 1\ncpu,host=a f=2 2\ncpu,host=b f=3 3"
    batches, errors = resolve(parse(body, "ns", NOW))
    assert [(e.line_number, e.error_message) for e in errors] == [
        (1, "Invalid measurement was provided")
    ]
    assert list(batches) == ["cpu"]
    assert batches["cpu"].column("f").to_pylist() == [2.0, 3.0]


def test_plain_lines_the_fast_path_leaves_to_the_parser_keep_their_values() -> None:
    # `=` in a tag value, mixed kinds of one field, an out-of-range integer: row by row
    body = "\n".join(
        [
            "m,t=a=b f=1 1",
            "m,t=c f=2i 2",
            "m,t=c f=99999999999999999999i 3",
            "m,t=d f=4 4",
            "m,t=e f=5 9999999999999999999",
        ]
    )
    batches, errors = resolve(parse(body, "ns", NOW))
    assert [(e.line_number, e.error_message) for e in errors] == [
        (
            2,
            "invalid field value in line protocol for field 'f' on line 1: expected type "
            "iox::column_type::field::float, but got iox::column_type::field::integer",
        ),
        (3, "Unable to parse integer value `99999999999999999999`"),
        (5, "Unable to parse timestamp value `9999999999999999999`"),
    ]
    assert batches["m"].column("t").to_pylist() == ["a=b", "d"]
