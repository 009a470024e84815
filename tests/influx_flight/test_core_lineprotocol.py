"""The vectorised line-protocol encoder, checked against an independent parser.

`line-protocol-parser` follows the Go grammar; InfluxDB 3 (IOx) additionally unescapes ``\\\\``
in measurement names, tag keys/values and field keys, which the encoder relies on to carry
backslashes. `_go_to_iox` applies that one rule to the parser's output.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from line_protocol_parser import parse_line

from influx_flight import ConfigurationError, EncodingError, WriteError
from influx_flight.lineprotocol import encode_table, iter_encode


def _go_to_iox(s: str) -> str:
    return s.replace("\\\\", "\\")


def _parse(line: str) -> dict:
    d = parse_line(line)
    return {
        "measurement": _go_to_iox(d["measurement"]),
        "tags": {_go_to_iox(k): _go_to_iox(v) for k, v in d["tags"].items()},
        "fields": {_go_to_iox(k): v for k, v in d["fields"].items()},
        "time": d["time"],
    }


def _ts(values: list[int], unit: str = "ns", tz: str | None = None) -> pa.Array:
    return pa.array(values, pa.timestamp(unit, tz=tz))


# --- exact output ------------------------------------------------------------------------------


def test_basic_line_types_and_sorted_tags() -> None:
    t = pa.table(
        {
            "time": _ts([1_700_000_000_000_000_000]),
            "zone": ["z1"],
            "host": ["a"],
            "f": [1.5],
            "i": pa.array([-3], pa.int32()),
            "u": pa.array([7], pa.uint64()),
            "b": [True],
            "s": ["hi"],
        }
    )
    enc = encode_table(t, measurement="cpu", tags=["zone", "host"])
    assert enc.lines() == ['cpu,host=a,zone=z1 f=1.5,i=-3i,u=7u,b=t,s="hi" 1700000000000000000']
    assert enc.text().endswith("\n")
    assert enc.rows == 1 and enc.rows_skipped == 0 and enc.line_count == 1


def test_escaping_exact() -> None:
    t = pa.table(
        {
            "time": _ts([5]),
            "t k,=": ["v a,l=ue\\x"],
            "f k=,": ['say "hi" \\ bye'],
        }
    )
    enc = encode_table(t, measurement="m e,a=s", tags=["t k,="])
    assert enc.lines() == [
        r"m\ e\,a=s,t\ k\,\==v\ a\,l\=ue\\x f\ k\=\,=" + '"say \\"hi\\" \\\\ bye" 5'
    ]
    parsed = _parse(enc.lines()[0])
    assert parsed["measurement"] == "m e,a=s"
    assert parsed["tags"] == {"t k,=": "v a,l=ue\\x"}
    assert parsed["fields"] == {"f k=,": 'say "hi" \\ bye'}


def test_nulls_nan_and_empty_rows_skipped_and_counted() -> None:
    t = pa.table(
        {
            "time": _ts([1, 2, 3, 4]),
            "room": ["a", None, "", "d"],
            "x": [1.0, float("nan"), None, float("inf")],
            "y": pa.array([None, 2, None, None], pa.int64()),
        }
    )
    enc = encode_table(t, measurement="m", tags=["room"])
    assert enc.lines() == ["m,room=a x=1 1", "m y=2i 2"]
    assert enc.row_index.tolist() == [0, 1]
    assert enc.rows == 4 and enc.rows_skipped == 2


def test_float_repr_round_trips() -> None:
    values = [
        0.1,
        1 / 3,
        1e300,
        2.2250738585072014e-308,
        -0.0,
        123456789.123456789,
        2.0**53 + 2,
        1e-7,
        1e16,
    ]
    t = pa.table({"time": _ts(list(range(len(values)))), "v": values})
    for line, v in zip(encode_table(t, measurement="m").lines(), values, strict=True):
        got = _parse(line)["fields"]["v"]
        assert got == v and math.copysign(1, got) == math.copysign(1, v)


def test_subnormal_floats_keep_their_shortest_repr() -> None:
    # line-protocol-parser (strtod with ERANGE) refuses subnormals; InfluxDB's Rust parser and
    # Python read the shortest repr back exactly.
    t = pa.table({"time": _ts([0]), "v": [5e-324]})
    (line,) = encode_table(t, measurement="m").lines()
    assert line == "m v=5e-324 0" and float(line.split("=")[1].split()[0]) == 5e-324


def test_float32_uses_shortest_float32_repr() -> None:
    t = pa.table({"time": _ts([0]), "v": pa.array([0.1], pa.float32())})
    assert encode_table(t, measurement="m").lines() == ["m v=0.1 0"]


@pytest.mark.parametrize(
    ("unit", "precision", "value", "expected"),
    [
        ("ns", "ns", 1_700_000_000_123_456_789, 1_700_000_000_123_456_789),
        ("ns", "us", 1_700_000_000_123_456_789, 1_700_000_000_123_456),
        ("ns", "ms", 1_700_000_000_123_456_789, 1_700_000_000_123),
        ("ns", "s", 1_700_000_000_123_456_789, 1_700_000_000),
        ("s", "ns", 1_700_000_000, 1_700_000_000_000_000_000),
        ("ms", "us", 1_700_000_000_123, 1_700_000_000_123_000),
        ("ns", "s", -1_500_000_000, -2),  # floor, not truncation, before 1970
    ],
)
def test_timestamp_precision_conversion(
    unit: str, precision: str, value: int, expected: int
) -> None:
    t = pa.table({"time": _ts([value], unit, tz="Europe/Paris"), "v": [1.0]})
    (line,) = encode_table(t, measurement="m", precision=precision).lines()
    assert line == f"m v=1 {expected}"


def test_integer_time_taken_as_is_and_date_column() -> None:
    t = pa.table({"time": pa.array([42], pa.int64()), "v": [1]})
    assert encode_table(t, measurement="m", precision="s").lines() == ["m v=1i 42"]
    t = pa.table({"day": pa.array([datetime(2024, 1, 2).date()]), "v": [1]})
    assert encode_table(t, measurement="m", time_column="day", precision="s").lines() == [
        "m v=1i 1704153600"
    ]


def test_no_time_column_leaves_timestamp_out() -> None:
    t = pa.table({"v": [1.0]})
    assert encode_table(t, measurement="m", time_column=None).lines() == ["m v=1"]


def test_overflow_to_ns_is_refused() -> None:
    t = pa.table({"time": _ts([10**12], "s"), "v": [1.0]})
    with pytest.raises(EncodingError, match="overflow"):
        encode_table(t, measurement="m")


def test_dictionary_tags_and_fields_and_numeric_tags() -> None:
    t = pa.table(
        {
            "time": _ts([1, 2, 3]),
            "room": pa.array(["k b", "x", "k b"]).dictionary_encode(),
            "sensor": pa.array([7, None, 9], pa.int16()),
            "state": pa.array(["on", None, "off"]).dictionary_encode(),
        }
    )
    enc = encode_table(t, measurement="m", tags=["room", "sensor"])
    assert enc.lines() == [
        'm,room=k\\ b,sensor=7 state="on" 1',
        'm,room=k\\ b,sensor=9 state="off" 3',
    ]
    assert enc.row_index.tolist() == [0, 2]


def test_field_columns_select_and_types_refused() -> None:
    t = pa.table({"time": _ts([1]), "a": [1.0], "blob": pa.array([b"x"]), "lst": [[1]]})
    assert encode_table(t, measurement="m", field_columns=["a"]).lines() == ["m a=1 1"]
    with pytest.raises(ConfigurationError, match="'blob' has type binary") as exc:
        encode_table(t, measurement="m")
    assert exc.value.field == "field_columns"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"measurement": ""}, "non-empty"),
        ({"measurement": "a\nb"}, "newline"),
        ({"measurement": "ends\\"}, "backslash"),
        ({"measurement": "#comment"}, "comment"),
        ({"measurement": "m", "tags": ["nope"]}, "tag column 'nope' is not in the data"),
        ({"measurement": "m", "time_column": "ts"}, "time column 'ts' is not in the data"),
        ({"measurement": "m", "precision": "minutes"}, "precision"),
        ({"measurement": "m", "tags": ["a"], "field_columns": ["a"]}, "both a field"),
        ({"measurement": "m", "tags": ["a"]}, "no field columns"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs: dict, match: str) -> None:
    t = pa.table({"time": _ts([1]), "a": ["x"]})
    with pytest.raises(ConfigurationError, match=match):
        encode_table(t, **kwargs)


def test_unencodable_tag_values_name_rows() -> None:
    t = pa.table({"time": _ts([1, 2, 3]), "room": ["ok", "bad\nline", "tail\\"], "v": [1, 2, 3]})
    with pytest.raises(EncodingError) as exc:
        encode_table(t, measurement="m", tags=["room"])
    assert exc.value.rows == [1, 2] and exc.value.column == "room"
    assert isinstance(exc.value, WriteError) and isinstance(exc.value, ValueError)


def test_null_time_refused_with_rows() -> None:
    t = pa.table({"time": _ts([1, None]), "v": [1, 2]})
    with pytest.raises(EncodingError, match=r"null at rows \[1\]"):
        encode_table(t, measurement="m")


def test_pandas_frame_and_datetime_index() -> None:
    df = pd.DataFrame(
        {"room": ["a", "b"], "temp": [21.5, 22.0]},
        index=pd.DatetimeIndex(["2024-01-01T00:00:00Z", "2024-01-01T00:00:01Z"], name="ts"),
    )
    enc = encode_table(df, measurement="home", tags=["room"], precision="s")
    assert enc.lines() == ["home,room=a temp=21.5 1704067200", "home,room=b temp=22 1704067201"]
    df2 = df.reset_index().rename(columns={"ts": "time"})
    assert (
        encode_table(df2, measurement="home", tags=["room"], precision="s").lines() == enc.lines()
    )


def test_streaming_input_row_index_spans_batches_and_slices() -> None:
    n = 1000
    t = pa.table(
        {
            "time": _ts(list(range(n))),
            "v": pa.array([None if i % 7 == 0 else i for i in range(n)], pa.int64()),
        }
    )
    reader = pa.RecordBatchReader.from_batches(t.schema, t.to_batches(max_chunksize=300))
    chunks = list(iter_encode(reader, measurement="m", batch_rows=128))
    assert len(chunks) > 8
    rows = np.concatenate([c.row_index for c in chunks])
    assert rows.tolist() == [i for i in range(n) if i % 7]
    for c in chunks:
        for r, line in zip(c.row_index, c.lines.to_pylist(), strict=True):
            assert line == f"m v={r}i {r}\n"


def test_split_bodies_respect_limit_and_cover_all_lines() -> None:
    n = 5000
    t = pa.table({"time": _ts(list(range(n))), "s": ["x" * (i % 50) for i in range(n)]})
    enc = encode_table(t, measurement="m")
    bodies = list(enc.split(4096))
    assert len(bodies) > 10
    assert all(len(b) <= 4096 for b in bodies)
    assert b"".join(bytes(b.data) for b in bodies) == enc.text().encode()
    assert np.concatenate([b.row_index for b in bodies]).tolist() == list(range(n))
    for b in bodies:
        assert bytes(b.data).endswith(b"\n") and bytes(b.data).count(b"\n") == b.lines


# --- property tests -----------------------------------------------------------------------------

_ident_chars = st.characters(
    blacklist_categories=("Cs", "Cc"), blacklist_characters="\n\t\r\0"
) | st.sampled_from([" ", ",", "=", "\\", '"'])
_idents = st.text(_ident_chars, min_size=1, max_size=8).filter(
    lambda s: not s.endswith("\\") and s != "time"
)
_string_values = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\n\r\0")
    | st.sampled_from(['"', "\\", " ", ",", "="]),
    max_size=12,
)


def _not_subnormal(x: float) -> bool:
    return not (0 < abs(x) < 2.2250738585072014e-308)


@st.composite
def _tables(draw: st.DrawFn) -> tuple[pa.Table, str, list[str]]:
    n = draw(st.integers(1, 12))
    names = draw(st.lists(_idents, min_size=2, max_size=6, unique=True))
    n_tags = draw(st.integers(0, len(names) - 1))
    tag_names, field_names = names[:n_tags], names[n_tags:]
    cols: dict[str, pa.Array] = {
        "time": pa.array(
            draw(st.lists(st.integers(-(2**62), 2**62), min_size=n, max_size=n)), pa.int64()
        )
    }
    for tname in tag_names:
        vals = draw(st.lists(st.none() | _idents | st.just(""), min_size=n, max_size=n))
        arr = pa.array(vals, pa.string())
        cols[tname] = arr.dictionary_encode() if draw(st.booleans()) else arr
    kinds = {}
    for fname in field_names:
        kind = draw(st.sampled_from(["float", "int", "uint", "bool", "string"]))
        kinds[fname] = kind
        if kind == "float":
            vals = draw(
                st.lists(
                    st.none()
                    | st.floats(allow_nan=True, allow_infinity=True).filter(_not_subnormal),
                    min_size=n,
                    max_size=n,
                )
            )
            cols[fname] = pa.array(vals, pa.float64())
        elif kind == "int":
            vals = draw(
                st.lists(st.none() | st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n)
            )
            cols[fname] = pa.array(vals, pa.int64())
        elif kind == "uint":
            vals = draw(st.lists(st.none() | st.integers(0, 2**64 - 1), min_size=n, max_size=n))
            cols[fname] = pa.array(vals, pa.uint64())
        elif kind == "bool":
            vals = draw(st.lists(st.none() | st.booleans(), min_size=n, max_size=n))
            cols[fname] = pa.array(vals, pa.bool_())
        else:
            vals = draw(st.lists(st.none() | _string_values, min_size=n, max_size=n))
            arr = pa.array(vals, pa.string())
            cols[fname] = arr.dictionary_encode() if draw(st.booleans()) else arr
    measurement = draw(_idents.filter(lambda s: not s.startswith("#")))
    return pa.table(cols), measurement, tag_names


def _expected_fields(row: dict, tag_names: list[str]) -> dict:
    out = {}
    for k, v in row.items():
        if k == "time" or k in tag_names or v is None:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            continue
        out[k] = v
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_tables())
def test_round_trip_through_independent_parser(case: tuple[pa.Table, str, list[str]]) -> None:
    table, measurement, tag_names = case
    enc = encode_table(table, measurement=measurement, tags=tag_names, precision="ns")
    rows = table.to_pylist()
    emitted = dict(zip(enc.row_index.tolist(), enc.lines(), strict=True))
    for i, row in enumerate(rows):
        fields = _expected_fields(row, tag_names)
        if not fields:
            assert i not in emitted
            continue
        parsed = _parse(emitted[i])
        assert parsed["measurement"] == measurement
        assert parsed["tags"] == {k: row[k] for k in tag_names if row[k]}
        assert parsed["time"] == row["time"]
        assert set(parsed["fields"]) == set(fields)
        for k, v in fields.items():
            got = parsed["fields"][k]
            assert got == v and type(got) is type(v), (k, v, got)
    assert enc.rows_skipped == len(rows) - len(emitted)


def test_timestamps_with_timezone_are_utc_instants() -> None:
    t = pa.table(
        {
            "time": pa.array(
                [datetime(2024, 6, 1, 12, 0, tzinfo=UTC)], pa.timestamp("us", tz="America/New_York")
            ),
            "v": [1],
        }
    )
    assert encode_table(t, measurement="m", precision="s").lines() == ["m v=1i 1717243200"]


def test_empty_inputs_encode_to_nothing() -> None:
    t = pa.table({"time": _ts([]), "v": pa.array([], pa.float64())})
    enc = encode_table(t, measurement="m")
    assert enc.line_count == 0 and enc.rows == 0 and list(enc.split(1024)) == []
    assert encode_table(iter([]), measurement="m").line_count == 0


def test_encoding_error_pickles() -> None:
    import pickle

    err = EncodingError("bad", column="c", rows=[1, 2])
    back = pickle.loads(pickle.dumps(err))
    assert isinstance(back, EncodingError) and str(back) == "bad" and back.rows == [1, 2]


def test_threaded_encoding_keeps_order_and_row_index() -> None:
    n = 3000
    t = pa.table(
        {
            "time": _ts(list(range(n))),
            "host": [f"h{i % 13}" for i in range(n)],
            "v": pa.array([None if i % 11 == 0 else i for i in range(n)], pa.int64()),
        }
    )
    one = encode_table(t, measurement="m", tags=["host"], batch_rows=100, threads=1)
    many = encode_table(t, measurement="m", tags=["host"], batch_rows=100, threads=3)
    assert len(many.chunks) == 30
    assert many.text() == one.text()
    assert many.row_index.tolist() == one.row_index.tolist()


def test_bodies_are_packed_across_chunks() -> None:
    n = 2000
    t = pa.table({"time": _ts(list(range(n))), "s": ["y" * (i % 37) for i in range(n)]})
    enc = encode_table(t, measurement="m", batch_rows=64, threads=1)
    assert len(enc.chunks) == 32
    total = len(enc.text().encode())
    (whole,) = list(enc.split(total))  # everything fits in one body despite 32 chunks
    assert bytes(whole.data) == enc.text().encode() and whole.lines == n
    limit = 5000
    bodies = list(enc.split(limit))
    assert all(len(b) <= limit for b in bodies)
    assert len(bodies) == -(-total // limit) or len(bodies) == -(-total // limit) + 1
    assert b"".join(bytes(b.data) for b in bodies) == enc.text().encode()
    assert np.concatenate([b.row_index for b in bodies]).tolist() == list(range(n))
    for b in bodies:
        assert bytes(b.data).count(b"\n") == b.lines
