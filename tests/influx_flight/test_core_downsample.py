"""Downsampling: pure builders (exact SQL / InfluxQL), window arithmetic, and spec checks."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from influx_flight import ConfigurationError, DownsampleSpec, InfluxDB3Client, InfluxDB3Config
from influx_flight.time import (
    align_range,
    format_time,
    parse_duration,
    parse_time,
    quote_ident,
    split_range,
)

H = 3_600_000_000_000
T0 = "2024-01-01T00:00:00Z"
T0_NS = 1_704_067_200_000_000_000


def _spec(**kw: object) -> DownsampleSpec:
    base: dict[str, object] = {
        "source": "home",
        "window": "1h",
        "aggregates": {"temp": ["mean", "max"], "hum": ["count"]},
        "group_by": ["room"],
        "target_measurement": "home_1h",
    }
    base.update(kw)
    return DownsampleSpec(**base)  # type: ignore[arg-type]


# --- builders ---------------------------------------------------------------------------------


def test_sql_exact() -> None:
    assert _spec().to_sql() == (
        "SELECT date_bin(INTERVAL '1 hour', time, '1970-01-01T00:00:00Z'::timestamp) AS time, "
        '"room", avg("temp") AS "temp_mean", selector_max("temp", time)[\'value\'] AS "temp_max", '
        'count("hum") AS "hum_count" FROM "home" WHERE time >= $start AND time < $end '
        'GROUP BY 1, "room" ORDER BY time, "room"'
    )


def test_sql_offset_filter_with_time_and_no_tags() -> None:
    spec = _spec(
        window=timedelta(minutes=90),
        offset="15m",
        aggregates={"temp": ["first", "spread"]},
        group_by=(),
        filter="\"room\" <> 'garage'",
        with_time=True,
    )
    assert spec.to_sql() == (
        "SELECT date_bin(INTERVAL '90 minutes', time, '1970-01-01T00:15:00Z'::timestamp) AS time, "
        'selector_first("temp", time)[\'value\'] AS "temp_first", '
        'CAST(selector_first("temp", time)[\'time\'] AS BIGINT) AS "temp_first_time", '
        'max("temp") - min("temp") AS "temp_spread" FROM "home" '
        "WHERE time >= $start AND time < $end AND (\"room\" <> 'garage') "
        "GROUP BY 1 ORDER BY time"
    )
    assert spec.output_fields == ["temp_first", "temp_first_time", "temp_spread"]


@pytest.mark.parametrize(
    ("fill", "expr"),
    [
        ("null", 'avg("temp")'),
        ("previous", 'locf(avg("temp"))'),
        ("linear", 'interpolate(avg("temp"))'),
        (0, 'coalesce(avg("temp"), 0)'),
        (-1.5, 'coalesce(avg("temp"), -1.5)'),
    ],
)
def test_sql_fill_uses_gapfill(fill: object, expr: str) -> None:
    sql = _spec(aggregates={"temp": "mean"}, fill=fill).to_sql()
    assert sql.startswith(
        "SELECT date_bin_gapfill(INTERVAL '1 hour', time, '1970-01-01T00:00:00Z'::timestamp) "
        f'AS time, "room", {expr} AS "temp_mean" FROM'
    )


def test_influxql_exact() -> None:
    assert _spec(language="influxql").to_influxql() == (
        'SELECT mean("temp") AS "temp_mean", max("temp") AS "temp_max", count("hum") AS '
        '"hum_count" FROM "home" WHERE time >= $start AND time < $end '
        'GROUP BY time(1h), "room" fill(none)'
    )


@pytest.mark.parametrize(
    ("fill", "clause"),
    [
        (None, "fill(none)"),
        ("null", "fill(null)"),
        ("previous", "fill(previous)"),
        ("linear", "fill(linear)"),
        (0, "fill(0)"),
        (2.5, "fill(2.5)"),
    ],
)
def test_influxql_fill_offset_tz(fill: object, clause: str) -> None:
    spec = _spec(
        language="influxql",
        window="1d",
        offset="-1h",
        aggregates={"temp": ["median", "stddev", "last"]},
        fill=fill,
        time_zone="Europe/Paris",
        filter="\"room\" = 'kitchen'",
    )
    assert spec.to_influxql() == (
        'SELECT median("temp") AS "temp_median", stddev("temp") AS "temp_stddev", last("temp") '
        'AS "temp_last" FROM "home" WHERE time >= $start AND time < $end AND '
        '("room" = \'kitchen\') GROUP BY time(1d, 23h), "room" '
        f"{clause} tz('Europe/Paris')"
    )


def test_query_follows_language_and_aliases() -> None:
    spec = _spec(language="influxql", aggregates={"t": ["AVG", "first_value"]})
    assert spec.query() == spec.to_influxql()
    assert spec.output_fields == ["t_mean", "t_first"]


def test_quote_ident() -> None:
    assert quote_ident('we"ird') == '"we""ird"'
    assert quote_ident('we"ird\\', "influxql") == '"we\\"ird\\\\"'
    spec = _spec(source='my "table"', aggregates={"a b": ["sum"]}, group_by=["x,y"])
    assert 'FROM "my ""table"""' in spec.to_sql() and 'sum("a b") AS "a b_sum"' in spec.to_sql()


# --- durations, instants, windows ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1h", H),
        ("90m", 90 * 60 * 10**9),
        ("1h30m", 90 * 60 * 10**9),
        ("500ms", 500 * 10**6),
        ("7d", 7 * 24 * H),
        ("1w", 7 * 24 * H),
        ("10u", 10_000),
        ("-15m", -15 * 60 * 10**9),
        (timedelta(hours=2, microseconds=3), 2 * H + 3_000),
    ],
)
def test_parse_duration(text: object, ns: int) -> None:
    assert parse_duration(text) == ns  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "1x", "h", "1h 2", "1.5h", True, 1.5])
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ConfigurationError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_parse_and_format_time() -> None:
    assert parse_time(T0) == T0_NS
    assert parse_time("2024-01-01T01:00:00+01:00") == T0_NS
    assert parse_time("2024-01-01") == T0_NS
    assert parse_time(datetime(2024, 1, 1)) == T0_NS
    assert parse_time(datetime(2024, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))) == T0_NS
    assert parse_time(pd.Timestamp("2024-01-01T00:00:00.000000001Z")) == T0_NS + 1
    assert parse_time("2024-01-01T00:00:00.123456789Z") == T0_NS + 123_456_789
    assert format_time(T0_NS) == T0
    assert format_time(T0_NS + 1_500_000) == "2024-01-01T00:00:00.0015Z"
    assert format_time(-1) == "1969-12-31T23:59:59.999999999Z"
    with pytest.raises(ConfigurationError, match="ISO-8601"):
        parse_time("yesterday")


def test_align_strict_accepts_aligned_and_names_bounds_otherwise() -> None:
    assert align_range(T0, "2024-01-01T06:00:00Z", "1h") == (T0_NS, T0_NS + 6 * H)
    with pytest.raises(ConfigurationError) as exc:
        align_range("2024-01-01T00:10:00Z", "2024-01-01T05:30:00Z", "1h")
    msg = str(exc.value)
    assert (
        "start 2024-01-01T00:10:00Z (aligned: 2024-01-01T00:00:00Z or 2024-01-01T01:00:00Z)" in msg
    )
    assert "end 2024-01-01T05:30:00Z (aligned: 2024-01-01T05:00:00Z or 2024-01-01T06:00:00Z)" in msg
    assert "align='widen'" in msg


def test_align_widen_and_offset() -> None:
    assert align_range("2024-01-01T00:10:00Z", "2024-01-01T05:30:00Z", "1h", align="widen") == (
        T0_NS,
        T0_NS + 6 * H,
    )
    quarter = 15 * 60 * 10**9
    assert align_range(
        "2024-01-01T00:10:00Z", "2024-01-01T05:30:00Z", "1h", "15m", align="widen"
    ) == (T0_NS - H + quarter, T0_NS + 6 * H + quarter)
    with pytest.raises(ConfigurationError, match="with offset 15m"):
        align_range(T0, "2024-01-01T06:00:00Z", "1h", "15m")
    with pytest.raises(ConfigurationError, match="must be after start"):
        align_range(T0, T0, "1h")


def test_align_in_time_zone() -> None:
    spec = _spec(language="influxql", window="1d", time_zone="Europe/Paris")
    # Local midnight in Paris is 23:00 UTC in winter.
    assert spec.aligned("2023-12-31T23:00:00Z", "2024-01-01T23:00:00Z") == (
        T0_NS - H,
        T0_NS + 23 * H,
    )
    with pytest.raises(ConfigurationError, match="Europe/Paris"):
        spec.aligned(T0, "2024-01-02T00:00:00Z")
    widened = _spec(language="influxql", window="1d", time_zone="Europe/Paris", align="widen")
    assert widened.aligned(T0, "2024-01-02T00:00:00Z") == (T0_NS - H, T0_NS + 47 * H)


def test_split_range() -> None:
    assert split_range(T0, "2024-01-01T10:00:00Z", "4h") == [
        (T0_NS, T0_NS + 4 * H),
        (T0_NS + 4 * H, T0_NS + 8 * H),
        (T0_NS + 8 * H, T0_NS + 10 * H),
    ]
    assert split_range(T0, "2024-01-01T01:00:00Z", "1d") == [(T0_NS, T0_NS + H)]
    with pytest.raises(ConfigurationError):
        split_range(T0, T0, "1h")


# --- spec validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kw", "field", "match"),
    [
        ({"aggregates": {"temp": ["p99"]}}, "aggregates", "unknown aggregate 'p99'"),
        ({"aggregates": {}}, "aggregates", "at least one"),
        ({"aggregates": {"temp": []}}, "aggregates", "no aggregate"),
        ({"aggregates": {"room": ["count"]}, "group_by": ["room_count"]}, "aggregates", "clash"),
        ({"window": "0s"}, "window", "positive"),
        ({"window": "soon"}, "window", "duration"),
        ({"fill": "zero"}, "fill", "fill"),
        ({"language": "flux"}, "language", "sql"),
        ({"time_zone": "Mars/Olympus"}, "time_zone", "unknown"),
        ({"language": "influxql", "time_zone": "Mars/Olympus"}, "time_zone", "unknown"),
        ({"language": "influxql", "with_time": True}, "with_time", "sql"),
        ({"source": " "}, "source", "table"),
        ({"target_measurement": ""}, "target_measurement", "table"),
        ({"align": "loose"}, "align", "strict"),
    ],
)
def test_spec_refuses_bad_settings(kw: dict, field: str, match: str) -> None:
    with pytest.raises(ConfigurationError, match=match) as exc:
        _spec(**kw)
    assert exc.value.field == field


def _NoQueryClient() -> InfluxDB3Client:
    """A client of a server that is not there: dry runs only build the plan, never connect."""
    return InfluxDB3Client(InfluxDB3Config(host="http://127.0.0.1:1", database="src"))


def test_dry_run_plans_chunks_without_querying() -> None:
    res = _NoQueryClient().downsample(_spec(), T0, "2024-01-02T00:00:00Z", chunk="6h", dry_run=True)
    assert res.dry_run and res.rows_read == 0 and res.points_written == 0
    assert len(res.windows) == 4 and len(res.queries) == 4
    assert res.params[1] == {"start": "2024-01-01T06:00:00Z", "end": "2024-01-01T12:00:00Z"}
    assert res.windows[0] == (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 1, 1, 6, tzinfo=UTC))
    assert res.target_database == "src"
    with pytest.raises(ConfigurationError, match="multiple of the window"):
        _NoQueryClient().downsample(_spec(), T0, "2024-01-02T00:00:00Z", chunk="90m")


def test_time_zone_alignment_and_chunks_across_dst() -> None:
    # Paris switches to summer time on 2022-03-27: that local day lasts 23 hours.
    spec = _spec(language="influxql", window="1d", time_zone="Europe/Paris", align="widen")
    s, e = spec.aligned("2022-03-26T12:00:00Z", "2022-03-28T12:00:00Z")
    assert (format_time(s), format_time(e)) == ("2022-03-25T23:00:00Z", "2022-03-28T22:00:00Z")
    res = _NoQueryClient().downsample(spec, s, e, chunk="1d", dry_run=True)
    assert res.params == [
        {"start": "2022-03-25T23:00:00Z", "end": "2022-03-26T23:00:00Z"},
        {"start": "2022-03-26T23:00:00Z", "end": "2022-03-27T22:00:00Z"},
        {"start": "2022-03-27T22:00:00Z", "end": "2022-03-28T22:00:00Z"},
    ]
    strict = _spec(language="influxql", window="1d", time_zone="Europe/Paris")
    with pytest.raises(
        ConfigurationError, match=r"nearest: 2022-03-26T23:00:00Z or 2022-03-27T22:00:00Z"
    ):
        strict.aligned("2022-03-27T06:00:00Z", "2022-03-28T22:00:00Z")


_instants = st.integers(-(2**60), 2**60)
_windows = st.sampled_from([1, 1_000, 10**9, 60 * 10**9, 15 * 60 * 10**9, H, 24 * H, 7 * 24 * H])


@given(a=_instants, b=_instants, window=_windows, offset=st.integers(-(10**15), 10**15))
def test_property_widen_is_the_smallest_aligned_cover(
    a: int, b: int, window: int, offset: int
) -> None:
    if a == b:
        return
    s, e = min(a, b), max(a, b)
    ws, we = align_range(s, e, window, offset, align="widen")
    off = offset % window
    assert (ws - off) % window == 0 and (we - off) % window == 0
    assert ws <= s < ws + window and we - window < e <= we
    aligned = (ws, we) == (s, e)
    if aligned:
        assert align_range(s, e, window, offset) == (s, e)
    else:
        with pytest.raises(ConfigurationError):
            align_range(s, e, window, offset)
    chunk = window * max(3, (we - ws) // (window * 500))  # at most ~500 pieces
    pieces = split_range(ws, we, chunk)
    assert pieces[0][0] == ws and pieces[-1][1] == we
    assert all(p[1] == q[0] for p, q in itertools.pairwise(pieces))
    assert all((lo - off) % window == 0 for lo, _ in pieces)


@given(ns=st.integers(-(2**62), 2**62))
def test_property_format_then_parse_time(ns: int) -> None:
    assert parse_time(format_time(ns)) == ns
