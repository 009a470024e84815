"""InfluxDB 3's upsert rule in the stand-in: one row per (tag set, time), last non-null wins."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from influx_flight.server.engine import Engine

TAG = pa.dictionary(pa.int32(), pa.string())


def _batch(times: list[int], rooms: list[str | None], **fields: list[Any]) -> pa.RecordBatch:
    columns: dict[str, Any] = {
        "time": pa.array(times, pa.timestamp("ns")),
        "room": pa.array(rooms).cast(TAG),
    }
    columns.update(fields)
    return pa.record_batch(columns)


def _rows(engine: Engine, sql: str = "SELECT * FROM t ORDER BY time, room") -> list[dict]:
    return engine.query_sql("db", sql).read_all().to_pylist()


def test_rewriting_a_point_replaces_its_fields_and_keeps_the_others() -> None:
    engine = Engine()
    engine.append("db", "t", _batch([1, 2], ["a", "a"], v=[1.0, 2.0], w=[10, 20]))
    engine.append("db", "t", _batch([2], ["a"], v=[5.0], w=pa.array([None], pa.int64())))
    rows = _rows(engine)
    assert [(r["time"].value, r["v"], r["w"]) for r in rows] == [(1, 1.0, 10), (2, 5.0, 20)]


def test_same_time_in_other_series_is_not_a_duplicate() -> None:
    engine = Engine()
    engine.append("db", "t", _batch([1, 1, 1], ["a", "b", None], v=[1.0, 2.0, 3.0]))
    assert len(_rows(engine)) == 3


def test_duplicates_inside_one_batch_keep_the_last() -> None:
    engine = Engine()
    engine.append("db", "t", _batch([7, 7, 7], ["a", "a", "a"], v=[1.0, 2.0, 3.0]))
    assert [r["v"] for r in _rows(engine)] == [3.0]


def test_writing_the_same_points_twice_leaves_the_table_unchanged() -> None:
    engine = Engine()
    batch = _batch([3, 1, 2], ["a", "b", "a"], v=[1.5, 2.5, 3.5])
    engine.append("db", "t", batch)
    before = _rows(engine)
    engine.append("db", "t", batch)
    engine.append("db", "t", batch)
    assert _rows(engine) == before
    assert _rows(engine, "SELECT count(*) AS n FROM t") == [{"n": 3}]


def test_over_http_a_rewrite_is_an_upsert(standin: Any) -> None:
    standin.write_lp("upsert_http", "probe,t=a v=1 1\nprobe,t=a w=2i 1", precision="ns")
    standin.write_lp("upsert_http", "probe,t=a v=3 1", precision="ns")
    rows = standin.engine.query_sql("upsert_http", "SELECT t, v, w FROM probe").read_all()
    assert rows.to_pylist() == [{"t": "a", "v": 3.0, "w": 2}]
