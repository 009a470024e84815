"""WritePipeline semantics without HTTP: group commit, type checks across requests waiting for
the same flush, strict mode, catalog operations and shutdown."""

from __future__ import annotations

import threading

import pytest

from influx_flight.server.engine import Engine
from influx_flight.server.writes import WritePipeline


def test_acknowledged_only_at_the_flush_and_then_visible() -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, wal_flush_interval=30.0)
    try:
        future = pipeline.submit("db", b"m f=1 1", precision="ns")
        assert not future.done()  # waiting for the group commit
        assert not engine.has_database("db")
        pipeline.flush()
        assert future.result(timeout=5).lines_written == 1
        assert engine.query_sql("db", "SELECT f FROM m").read_all().to_pylist() == [{"f": 1.0}]
    finally:
        pipeline.close()


def test_requests_in_one_flush_window_agree_on_new_field_types() -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, wal_flush_interval=30.0)
    try:
        first = pipeline.submit("db", b"m f=1 1\nm,t=x g=1i 1", precision="ns")
        second = pipeline.submit("db", b"m f=2i 2\nm t=1 3\nm f=3 4", precision="ns")
        # the second request is checked against the first one, which is not applied yet
        assert not engine.has_database("db")
        pipeline.flush()
        outcome = second.result(timeout=5)
        assert first.result(timeout=5).errors == []
        assert [e.line_number for e in outcome.errors] == [1, 2]
        assert "expected type iox::column_type::field::float" in outcome.errors[0].error_message
        assert "expected type iox::column_type::tag" in outcome.errors[1].error_message
        got = engine.query_sql("db", "SELECT f FROM m ORDER BY time").read_all().to_pylist()
        assert got == [{"f": 1.0}, {"f": None}, {"f": 3.0}]
    finally:
        pipeline.close()


def test_strict_mode_writes_nothing_and_reports_the_first_bad_line() -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, wal_flush_interval=0.01)
    try:
        outcome = pipeline.submit(
            "db", b"m f=1 1\nm f=x 2\nm f=1i 3", precision="ns", accept_partial=False
        ).result(timeout=5)
        assert outcome.rejected_all and outcome.lines_written == 0
        assert [(e.line_number, e.original_line) for e in outcome.errors] == [(2, "m f=x 2")]
        assert not engine.has_database("db")
    finally:
        pipeline.close()


def test_explicit_default_time_and_precision() -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, wal_flush_interval=0.01)
    try:
        pipeline.submit("db", b"m f=1", default_time_ns=42).result(timeout=5)
        pipeline.submit("db", b"m f=2 3", precision="ms").result(timeout=5)
        times = engine.query_sql("db", "SELECT CAST(time AS BIGINT) AS t FROM m ORDER BY t")
        assert times.read_all().column("t").to_pylist() == [42, 3_000_000]
        with pytest.raises(ValueError, match="invalid precision"):
            pipeline.submit("db", b"m f=1", precision="minutes")
    finally:
        pipeline.close()


def test_catalog_operations_and_closed_pipeline() -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, wal_flush_interval=0.01)
    pipeline.create_database("made").result(timeout=5)
    assert engine.has_database("made")
    pipeline.delete_database("made").result(timeout=5)
    assert not engine.has_database("made")
    pipeline.close()
    pipeline.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        pipeline.submit("db", b"m f=1")


def test_many_threads_submitting() -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, wal_flush_interval=0.005)
    errors: list[BaseException] = []

    def work(w: int) -> None:
        try:
            for b in range(20):
                body = "\n".join(f"m,w={w} v={b * 10 + i}i {b * 10 + i}" for i in range(10))
                assert pipeline.submit("db", body.encode()).result(timeout=30).errors == []
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    pipeline.close()
    assert errors == []
    got = engine.query_sql("db", "SELECT count(*) AS n, count(DISTINCT w) AS w FROM m").read_all()
    assert got.to_pylist() == [{"n": 1600, "w": 8}]


def test_bad_flush_interval() -> None:
    with pytest.raises(ValueError, match="wal_flush_interval"):
        WritePipeline(Engine(), wal_flush_interval=0)
