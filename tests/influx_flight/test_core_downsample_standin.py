"""Downsampling end to end against the stand-in: query over Flight, write back over HTTP,
compare with an independent pandas computation, and re-run to show idempotence."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influx_flight import (
    ConfigurationError,
    DownsampleSpec,
    InfluxDB3Client,
    InfluxDB3Config,
    QueryError,
    WriteError,
)

START = "2024-03-01T00:00:00Z"
END = "2024-03-01T12:00:00Z"
ROOMS = ["kitchen", "living room", "bath,1"]


def _source_frame() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    times = pd.date_range(START, END, freq="10min", inclusive="left")
    rows = []
    for room in ROOMS:
        for i, ts in enumerate(times):
            if room == "bath,1" and 20 <= i < 32:
                continue  # a gap of two hours
            rows.append(
                {
                    "time": ts,
                    "room": room,
                    "temp": round(float(rng.normal(21, 2)), 3),
                    "hum": int(rng.integers(30, 60)),
                }
            )
    # one point just outside the range on each side (must not be aggregated)
    rows.append({"time": pd.Timestamp(END), "room": "kitchen", "temp": 99.0, "hum": 99})
    rows.append(
        {
            "time": pd.Timestamp(START) - pd.Timedelta("1ns"),
            "room": "kitchen",
            "temp": -99.0,
            "hum": 1,
        }
    )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def source(standin: Any) -> Iterator[tuple[InfluxDB3Client, pd.DataFrame]]:
    cfg = InfluxDB3Config(
        host=standin.flight_uri, database="ds_src", token=standin.token, write_url=standin.http_url
    )
    df = _source_frame()
    with InfluxDB3Client(cfg) as client:
        client.write(
            pa.Table.from_pandas(df, preserve_index=False), measurement="home", tags=["room"]
        )
        yield client, df


def _expected(df: pd.DataFrame, window: str = "1h") -> pd.DataFrame:
    inside = df[(df.time >= pd.Timestamp(START)) & (df.time < pd.Timestamp(END))].copy()
    inside["bucket"] = inside.time.dt.floor(window)
    inside = inside.sort_values("time")
    g = inside.groupby(["bucket", "room"])
    out = pd.DataFrame(
        {
            "temp_mean": g.temp.mean(),
            "temp_count": g.temp.count(),
            "hum_sum": g.hum.sum(),
            "temp_max": g.temp.max(),
            "temp_first": g.temp.first(),
            "temp_last": g.temp.last(),
        }
    ).reset_index()
    return (
        out.rename(columns={"bucket": "time"}).sort_values(["time", "room"]).reset_index(drop=True)
    )


def _stored(client: InfluxDB3Client, db: str, table: str) -> pd.DataFrame:
    t = client.query(f'SELECT * FROM "{table}" ORDER BY time, room', database=db).to_table()
    df = t.to_pandas()
    df["time"] = df["time"].dt.tz_convert("UTC")
    return df


def _compare(got: pd.DataFrame, exp: pd.DataFrame, cols: list[str]) -> None:
    assert len(got) == len(exp)
    assert (got["time"].values == exp["time"].values).all()
    assert got["room"].tolist() == exp["room"].tolist()
    for c in cols:
        np.testing.assert_allclose(
            got[c].astype(float), exp[c].astype(float), rtol=1e-12, err_msg=c
        )


def _assert_same_points(after_rerun: pd.DataFrame, first_run: pd.DataFrame) -> None:
    """A re-run wrote exactly the same points (time, tags, values), which the server overwrote
    (InfluxDB 3 keeps one point per series and time), so the stored data is unchanged."""
    pd.testing.assert_frame_equal(after_rerun, first_run)


def test_sql_downsample_matches_pandas_and_rerun_is_idempotent(
    source: tuple[InfluxDB3Client, pd.DataFrame],
) -> None:
    client, df = source
    spec = DownsampleSpec(
        source="home",
        window="1h",
        aggregates={"temp": ["mean", "count"], "hum": ["sum"]},
        group_by=["room"],
        target_measurement="home_1h",
        target_database="ds_sql",
    )
    first = client.downsample(spec, START, END)
    exp = _expected(df)
    assert first.rows_read == len(exp) == first.points_written
    got = _stored(client, "ds_sql", "home_1h")
    assert sorted(got.columns) == ["hum_sum", "room", "temp_count", "temp_mean", "time"]
    _compare(got, exp, ["temp_mean", "temp_count", "hum_sum"])
    assert got["temp_count"].dtype == np.int64 and got["hum_sum"].dtype == np.int64

    second = client.downsample(spec, START, END, chunk="5h")
    assert second.points_written == first.points_written and len(second.windows) == 3
    _assert_same_points(_stored(client, "ds_sql", "home_1h"), got)


def test_influxql_downsample_drops_measurement_column(
    source: tuple[InfluxDB3Client, pd.DataFrame],
) -> None:
    client, df = source
    spec = DownsampleSpec(
        source="home",
        window="1h",
        aggregates={"temp": ["mean", "count", "max", "first", "last"], "hum": ["sum"]},
        group_by=["room"],
        target_measurement="home_1h_iql",
        target_database="ds_iql",
        language="influxql",
    )
    res = client.downsample(spec, START, END, chunk="4h")
    exp = _expected(df)
    assert res.points_written == len(exp) and len(res.windows) == 3
    got = _stored(client, "ds_iql", "home_1h_iql")
    assert "iox::measurement" not in got.columns
    _compare(
        got, exp, ["temp_mean", "temp_count", "hum_sum", "temp_max", "temp_first", "temp_last"]
    )
    client.downsample(spec, START, END)
    _assert_same_points(_stored(client, "ds_iql", "home_1h_iql"), got)


def test_widen_queries_whole_windows_only(source: tuple[InfluxDB3Client, pd.DataFrame]) -> None:
    client, _ = source
    spec = DownsampleSpec(
        source="home",
        window="2h",
        aggregates={"temp": ["count"]},
        group_by=["room"],
        target_measurement="home_2h",
        target_database="ds_widen",
        align="widen",
    )
    res = client.downsample(spec, "2024-03-01T02:30:00Z", "2024-03-01T05:00:00Z")
    assert res.params == [{"start": "2024-03-01T02:00:00Z", "end": "2024-03-01T06:00:00Z"}]
    got = _stored(client, "ds_widen", "home_2h")
    # whole 2h buckets: 12 points per room, fewer where bath,1 has its 03:20-05:20 gap
    counts = dict(zip(zip(got.time.dt.hour, got.room, strict=True), got.temp_count, strict=True))
    assert counts[(2, "kitchen")] == 12 and counts[(4, "living room")] == 12
    assert counts[(2, "bath,1")] == 8 and counts[(4, "bath,1")] == 4


def test_filter_and_offset(source: tuple[InfluxDB3Client, pd.DataFrame]) -> None:
    client, df = source
    spec = DownsampleSpec(
        source="home",
        window="1h",
        offset="30m",
        aggregates={"hum": ["sum"]},
        group_by=["room"],
        filter="room = 'kitchen'",
        target_measurement="kitchen_1h",
        target_database="ds_filter",
    )
    client.downsample(spec, "2024-03-01T00:30:00Z", "2024-03-01T03:30:00Z")
    got = _stored(client, "ds_filter", "kitchen_1h")
    k = df[(df.room == "kitchen")]
    k = k[(k.time >= "2024-03-01T00:30:00Z") & (k.time < "2024-03-01T03:30:00Z")]
    exp = k.groupby(
        (k.time - pd.Timedelta("30min")).dt.floor("1h") + pd.Timedelta("30min")
    ).hum.sum()
    assert got.room.unique().tolist() == ["kitchen"]
    assert got.hum_sum.tolist() == exp.tolist()
    assert got.time.dt.minute.unique().tolist() == [30]


def test_late_data_rerun_overwrites_bucket(standin: Any) -> None:
    cfg = InfluxDB3Config(
        host=standin.flight_uri, database="ds_late", token=standin.token, write_url=standin.http_url
    )
    with InfluxDB3Client(cfg) as client:
        client.write_lp("m,s=a v=1 0\nm,s=a v=3 60000000000\n")
        spec = DownsampleSpec(
            source="m",
            window="1h",
            aggregates={"v": ["mean", "count"]},
            group_by=["s"],
            target_measurement="m_1h",
        )
        client.downsample(spec, "1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z")
        client.write_lp("m,s=a v=8 120000000000\n")  # a late point in the same bucket
        client.downsample(spec, "1970-01-01T00:00:00Z", "1970-01-01T01:00:00Z")
        got = client.query("SELECT * FROM m_1h").to_table().to_pylist()
    assert len(got) == 1
    assert got[0]["v_mean"] == 4.0 and got[0]["v_count"] == 3


def test_sql_selectors_with_time(source: tuple[InfluxDB3Client, pd.DataFrame]) -> None:
    client, df = source
    try:
        client.query("SELECT selector_max(temp, time)['value'] AS v FROM home LIMIT 1").to_table()
    except QueryError as exc:
        if "selector_max" in str(exc):
            pytest.skip("the stand-in does not provide selector_* yet")
        raise
    spec = DownsampleSpec(
        source="home",
        window="1h",
        aggregates={"temp": ["max", "first", "last"]},
        group_by=["room"],
        target_measurement="home_sel",
        target_database="ds_sel",
        with_time=True,
    )
    client.downsample(spec, START, END)
    got = _stored(client, "ds_sel", "home_sel")
    exp = _expected(df)
    _compare(got, exp, ["temp_max", "temp_first", "temp_last"])
    inside = df[(df.time >= pd.Timestamp(START)) & (df.time < pd.Timestamp(END))]
    inside = inside.sort_values("time")
    grouped = inside.groupby([inside.time.dt.floor("1h").rename("bucket"), "room"]).time
    firsts = grouped.first().reset_index().sort_values(["bucket", "room"])
    maxes = inside.loc[inside.groupby([inside.time.dt.floor("1h"), "room"]).temp.idxmax()]
    maxes = maxes.assign(bucket=maxes.time.dt.floor("1h")).sort_values(["bucket", "room"])
    assert got["temp_first_time"].tolist() == [t.value for t in firsts.time]
    assert got["temp_max_time"].tolist() == [t.value for t in maxes.time]


@pytest.mark.parametrize("language", ["sql", "influxql"])
def test_fill_previous_fills_the_empty_bucket(
    source: tuple[InfluxDB3Client, pd.DataFrame], language: str
) -> None:
    client, df = source
    spec = DownsampleSpec(
        source="home",
        window="1h",
        aggregates={"temp": ["mean"]},
        group_by=["room"],
        fill="previous",
        language=language,  # type: ignore[arg-type]
        target_measurement=f"home_fill_{language}",
        target_database="ds_fill",
    )
    try:
        res = client.downsample(spec, START, END)
    except QueryError as exc:
        if "gapfill" in str(exc) or "locf" in str(exc) or "fill" in str(exc):
            pytest.skip(f"the stand-in cannot gap-fill yet: {exc}")
        raise
    got = _stored(client, "ds_fill", f"home_fill_{language}")
    exp = _expected(df)
    bath = got[got.room == "bath,1"].set_index(got[got.room == "bath,1"].time.dt.hour)
    exp_bath = exp[exp.room == "bath,1"].set_index(exp[exp.room == "bath,1"].time.dt.hour)
    # bath,1 has no point from 03:20 to 05:10: the 04:00 bucket carries 03:00's mean
    assert 4 not in exp_bath.index
    assert bath.loc[4, "temp_mean"] == pytest.approx(exp_bath.loc[3, "temp_mean"])
    assert res.points_written == len(exp) + 1 == len(got)


_PANDAS_AGG = {
    "mean": "mean",
    "sum": "sum",
    "count": "count",
    "min": "min",
    "max": "max",
    "first": "first",
    "last": "last",
    "median": "median",
    "stddev": "std",
    "spread": lambda s: s.max() - s.min(),
}
_spec_counter = iter(range(10**6))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    aggs=st.lists(st.sampled_from(sorted(_PANDAS_AGG)), min_size=1, max_size=4, unique=True),
    window_min=st.sampled_from([10, 30, 60, 120]),
    offset_min=st.sampled_from([0, 5, 15]),
    language=st.sampled_from(["sql", "influxql"]),
    by_room=st.booleans(),
)
def test_property_downsample_matches_pandas(
    source: tuple[InfluxDB3Client, pd.DataFrame],
    aggs: list[str],
    window_min: int,
    offset_min: int,
    language: str,
    by_room: bool,
) -> None:
    client, df = source
    offset_min %= window_min
    if not by_room:
        # the rooms share timestamps: first/last would pick among ties arbitrarily (as InfluxDB
        # documents), so they are only compared per room
        aggs = [a for a in aggs if a not in ("first", "last")] or ["count"]
    target = f"prop_ds_{next(_spec_counter)}"
    spec = DownsampleSpec(
        source="home",
        window=f"{window_min}m",
        offset=f"{offset_min}m" if offset_min else None,
        aggregates={"temp": aggs},
        group_by=["room"] if by_room else [],
        target_measurement=target,
        target_database="ds_prop",
        language=language,  # type: ignore[arg-type]
        align="widen",
    )
    res = client.downsample(spec, "2024-03-01T01:07:00Z", "2024-03-01T07:53:00Z")
    lo, hi = pd.Timestamp(res.start), pd.Timestamp(res.end)
    inside = df[(df.time >= lo) & (df.time < hi)].sort_values("time", kind="stable")
    off = pd.Timedelta(minutes=offset_min)
    bucket = (inside.time - off).dt.floor(f"{window_min}min") + off
    keys = [bucket.rename("time"), "room"] if by_room else [bucket.rename("time")]
    grouped = inside.groupby(keys).temp
    exp = pd.DataFrame({f"temp_{a}": grouped.agg(_PANDAS_AGG[a]) for a in aggs}).reset_index()
    order = ["time", "room"] if by_room else ["time"]
    exp = exp.sort_values(order).reset_index(drop=True)
    # Null aggregates (stddev of one point) are left out; rows with none left are not written.
    fields = [f"temp_{a}" for a in aggs]
    written = exp[exp[fields].notna().any(axis=1)].reset_index(drop=True)
    assert res.points_written == len(written) and res.rows_skipped == len(exp) - len(written)
    if written.empty:
        return
    got = client.query(f'SELECT * FROM "{target}" ORDER BY {", ".join(order)}', database="ds_prop")
    got_df = got.to_table().to_pandas()
    assert len(got_df) == len(written)
    assert (got_df["time"].dt.tz_convert("UTC").values == written["time"].values).all()
    for col in fields:
        if col not in got_df.columns:
            assert written[col].isna().all(), col
            continue
        np.testing.assert_allclose(
            got_df[col].astype(float),
            written[col].astype(float),
            rtol=1e-9,
            equal_nan=True,
            err_msg=col,
        )


def test_influxql_time_zone_buckets_on_local_midnight(
    source: tuple[InfluxDB3Client, pd.DataFrame],
) -> None:
    client, df = source
    spec = DownsampleSpec(
        source="home",
        window="1d",
        aggregates={"temp": ["count"]},
        group_by=["room"],
        language="influxql",
        time_zone="Europe/Paris",
        target_measurement="home_1d_paris",
        target_database="ds_tz",
    )
    with pytest.raises(ConfigurationError, match="Europe/Paris"):
        client.downsample(spec, "2024-03-01T00:00:00Z", "2024-03-02T00:00:00Z")
    # Paris midnight of 1 March 2024 is 23:00 UTC the day before
    res = client.downsample(spec, "2024-02-29T23:00:00Z", "2024-03-01T23:00:00Z")
    got = _stored(client, "ds_tz", "home_1d_paris")
    assert res.points_written == len(ROOMS) == len(got)
    assert (got.time == pd.Timestamp("2024-02-29T23:00:00Z")).all()
    lo, hi = pd.Timestamp("2024-02-29T23:00:00Z"), pd.Timestamp("2024-03-01T23:00:00Z")
    exp = df[(df.time >= lo) & (df.time < hi)].groupby("room").temp.count()
    assert dict(zip(got.room, got.temp_count, strict=True)) == exp.to_dict()


def test_failure_in_a_later_window_says_what_was_written(standin: Any) -> None:
    cfg = InfluxDB3Config(
        host=standin.flight_uri, database="ds_fail", token=standin.token, write_url=standin.http_url
    )
    # A tag value line protocol cannot carry (a tab), seeded through the engine in the second
    # hour only: the first window writes, the second cannot be encoded.
    standin.engine.append(
        "ds_fail",
        "m",
        pa.table(
            {
                "time": pa.array([0, 3_600_000_000_000], pa.timestamp("ns")),
                "s": ["fine", "tab\there"],
                "v": [1.0, 2.0],
            }
        ),
        tags=["s"],
    )
    spec = DownsampleSpec(
        source="m",
        window="1h",
        aggregates={"v": ["sum"]},
        group_by=["s"],
        target_measurement="m_1h",
    )
    with InfluxDB3Client(cfg) as client:
        with pytest.raises(WriteError) as exc:
            client.downsample(spec, "1970-01-01T00:00:00Z", "1970-01-01T02:00:00Z", chunk="1h")
        notes = " ".join(exc.value.__notes__)
        assert "1 of 2 window(s) were written before [1970-01-01T01:00:00Z" in notes
        assert client.query("SELECT s, v_sum FROM m_1h").to_table().to_pylist() == [
            {"s": "fine", "v_sum": 1.0}
        ]
