"""Durability of the stand-in's write path: WAL group commit, recovery, compaction crash points,
and a real `influx-flight serve` process killed with SIGKILL in the middle of concurrent writes.

A crash is simulated in-process by copying the data directory while the pipeline runs (what is
on disk at that moment is what a crash would leave) and recovering from the copy.
"""

from __future__ import annotations

import json
import shutil
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from influx_flight.server.engine import Engine
from influx_flight.server.writes import WritePipeline
from influx_flight.testing import StandInProcess


def count(engine: Engine, db: str, table: str = "m") -> int:
    if not engine.has_database(db) or table not in engine.tables(db):
        return 0
    return engine.query_sql(db, f"SELECT count(*) AS n FROM {table}").read_all().to_pylist()[0]["n"]


def recover(data_dir: Path) -> tuple[Engine, WritePipeline]:
    engine = Engine()
    return engine, WritePipeline(engine, data_dir, wal_flush_interval=0.01)


def body(start: int, n: int, tag: str = "a") -> bytes:
    return "\n".join(f"m,t={tag} v={i}i {i}" for i in range(start, start + n)).encode()


def test_acknowledged_writes_survive_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _engine, pipeline = recover(data)
    try:
        for k in range(5):
            assert pipeline.submit("db", body(k * 100, 100)).result().lines_written == 100
        pipeline.create_database("empty").result()
        crash = tmp_path / "crash"
        shutil.copytree(data, crash)  # the disk as a kill -9 would leave it
    finally:
        pipeline.close()
    engine2, pipeline2 = recover(crash)
    try:
        assert count(engine2, "db") == 500
        assert engine2.has_database("empty")
        got = engine2.query_sql("db", "SELECT min(v) AS lo, max(v) AS hi FROM m").read_all()
        assert got.to_pylist() == [{"lo": 0, "hi": 499}]
    finally:
        pipeline2.close()


def test_clean_restart_compacts_to_parquet_and_drops_the_log(tmp_path: Path) -> None:
    engine, pipeline = recover(tmp_path)
    pipeline.submit("db", body(0, 50)).result()
    pipeline.submit("db", b'm,t=b v=1i,s="x" 1000', no_sync=True).result()
    assert count(engine, "db") == 51  # no_sync: visible on return
    pipeline.close()
    assert list((tmp_path / "snapshots").glob("*/*.parquet"))
    assert all(p.stat().st_size == 0 for p in (tmp_path / "wal").glob("*.wal"))
    engine2, pipeline2 = recover(tmp_path)
    try:
        assert count(engine2, "db") == 51
        assert engine2.tables("db")["m"].tags == ["t"]
        assert engine2.query_sql("db", "SELECT s FROM m WHERE t = 'b'").read_all().to_pylist() == [
            {"s": "x"}
        ]
        # tags come back dictionary-encoded
        assert "Dictionary" in str(
            engine2.query_sql("db", "SELECT arrow_typeof(t) AS ty FROM m LIMIT 1")
            .read_all()
            .to_pylist()[0]["ty"]
        )
    finally:
        pipeline2.close()


def test_database_deletion_survives_restart(tmp_path: Path) -> None:
    _engine, pipeline = recover(tmp_path)
    pipeline.submit("gone", body(0, 10)).result()
    pipeline.submit("kept", body(0, 10)).result()
    pipeline.delete_database("gone").result()
    crash = tmp_path.parent / (tmp_path.name + "_crash")
    shutil.copytree(tmp_path, crash)
    pipeline.close()
    for directory in (tmp_path, crash):
        engine2, pipeline2 = recover(directory)
        try:
            assert engine2.list_databases() == ["kept"]
        finally:
            pipeline2.close()


def test_torn_tail_frame_is_ignored_and_later_writes_survive(tmp_path: Path) -> None:
    _engine, pipeline = recover(tmp_path)
    pipeline.submit("db", body(0, 20)).result()
    crash = tmp_path.parent / (tmp_path.name + "_crash")
    shutil.copytree(tmp_path, crash)
    pipeline.close()
    segment = sorted((crash / "wal").glob("*.wal"))[-1]
    frame = segment.read_bytes()
    assert frame
    with open(segment, "ab") as fh:  # a second frame cut in half: an unacknowledged write
        fh.write(frame[: len(frame) // 2])
    engine2, pipeline2 = recover(crash)
    assert count(engine2, "db") == 20
    pipeline2.submit("db", body(20, 5)).result()
    crash2 = crash.parent / (crash.name + "2")
    shutil.copytree(crash, crash2)
    pipeline2.close()
    engine3, pipeline3 = recover(crash2)
    try:
        assert count(engine3, "db") == 25
    finally:
        pipeline3.close()


def test_recovery_is_exact_at_every_compaction_crash_point(tmp_path: Path) -> None:
    live = tmp_path / "live"
    _engine, pipeline = recover(live)
    pipeline.submit("db", body(0, 100)).result()
    before = tmp_path / "before"
    shutil.copytree(live, before)  # log only, no snapshot yet
    pipeline.compact()
    pipeline.submit("db", body(100, 10)).result()
    after = tmp_path / "after"
    shutil.copytree(live, after)  # snapshot + a newer log segment
    pipeline.close()

    # 1. crashed while writing the snapshot: a stale temporary directory, CURRENT unchanged
    crash1 = tmp_path / "crash1"
    shutil.copytree(before, crash1)
    (crash1 / "snapshots" / "00000000000000000099.tmp").mkdir(parents=True)
    (crash1 / "snapshots" / "00000000000000000099.tmp" / "0.parquet").write_bytes(b"partial")

    # 2. crashed after switching CURRENT but before deleting the old log: replay must skip
    #    what the snapshot already holds
    crash2 = tmp_path / "crash2"
    shutil.copytree(before, crash2)
    for item in (after / "snapshots").iterdir():
        shutil.copytree(item, crash2 / "snapshots" / item.name)
    shutil.copy(after / "CURRENT", crash2 / "CURRENT")

    expected = {"before": 100, "crash1": 100, "crash2": 100, "after": 110}
    for name, rows in expected.items():
        directory = tmp_path / name
        engine2, pipeline2 = recover(directory)
        try:
            assert count(engine2, "db") == rows, name
            assert not list((directory / "snapshots").glob("*.tmp"))
        finally:
            pipeline2.close()


def test_automatic_compaction_by_row_count(tmp_path: Path) -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, tmp_path, wal_flush_interval=0.01, compact_rows=150)
    for k in range(4):
        pipeline.submit("db", body(k * 100, 100)).result()
    deadline = time.monotonic() + 10
    while not (tmp_path / "CURRENT").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert (tmp_path / "CURRENT").exists()
    crash = tmp_path.parent / (tmp_path.name + "_crash")
    shutil.copytree(tmp_path, crash)
    pipeline.close()
    engine2, pipeline2 = recover(crash)
    try:
        assert count(engine2, "db") == 400
    finally:
        pipeline2.close()


def test_in_memory_pipeline_still_acknowledges_at_the_flush(tmp_path: Path) -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, None, wal_flush_interval=0.01)
    try:
        future = pipeline.submit("db", body(0, 3))
        assert future.result(timeout=10).lines_written == 3
        assert count(engine, "db") == 3
    finally:
        pipeline.close()
    assert not list(tmp_path.iterdir())


# -- the real process, killed mid-stream --------------------------------------------------------


def _post(url: str, data: bytes, token: str) -> int:
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status


@pytest.mark.slow
def test_sigkill_mid_stream_loses_no_acknowledged_write(tmp_path: Path) -> None:
    token = "apiv3_durability-test"
    data_dir = tmp_path / "data"
    proc = StandInProcess(data_dir=data_dir, token=token, wal_flush_interval=0.05).start()
    url = proc.http_url + "/api/v3/write_lp?db=dur&precision=ns"
    acked: list[tuple[int, int]] = []
    stop = threading.Event()
    lines_per_request = 200

    def writer(w: int) -> None:
        b = 0
        while not stop.is_set():
            payload = "\n".join(
                f"m,w=w{w},b=b{b} v={i}i {b * lines_per_request + i}"
                for i in range(lines_per_request)
            ).encode()
            try:
                if _post(url, payload, token) == 204:
                    acked.append((w, b))
            except (urllib.error.URLError, ConnectionError, OSError):
                return
            b += 1

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    try:
        for t in threads:
            t.start()
        deadline = time.monotonic() + 60
        while len(acked) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        proc.kill()  # SIGKILL: no shutdown hook runs
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
        proc.kill()
    assert len(acked) >= 40, "the writers did not get going"

    proc.start()  # on the same data directory
    try:
        query = urllib.parse.urlencode(
            {"db": "dur", "q": "SELECT w, b, count(*) AS n FROM m GROUP BY w, b"}
        )
        req = urllib.request.Request(
            f"{proc.http_url}/api/v3/query_sql?{query}",
            headers={"Authorization": f"Bearer {token}"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            present = {(r["w"], r["b"]): r["n"] for r in json.loads(resp.read())}
        # every acknowledged request is there in full ...
        missing = [(w, b) for w, b in acked if present.get((f"w{w}", f"b{b}")) != lines_per_request]
        assert missing == []
        # ... and nothing partial appears: a request is all or nothing
        assert set(present.values()) == {lines_per_request}
    finally:
        code = proc.terminate()
        proc.close()
    assert code == 0  # a clean shutdown after the recovery


def test_replayed_log_is_compacted_at_the_next_clean_shutdown(tmp_path: Path) -> None:
    _engine, pipeline = recover(tmp_path)
    pipeline.submit("db", body(0, 30)).result()
    crash = tmp_path.parent / (tmp_path.name + "_crash")
    shutil.copytree(tmp_path, crash)
    pipeline.close()
    engine2, pipeline2 = recover(crash)
    assert count(engine2, "db") == 30
    pipeline2.close()  # no new writes, but the replayed log is folded into a snapshot
    assert (crash / "CURRENT").exists()
    assert all(p.stat().st_size == 0 for p in (crash / "wal").glob("*.wal"))
    engine3, pipeline3 = recover(crash)
    try:
        assert count(engine3, "db") == 30
    finally:
        pipeline3.close()


def test_replay_applies_records_in_the_order_the_engine_saw_them(tmp_path: Path) -> None:
    engine = Engine()
    pipeline = WritePipeline(engine, tmp_path, wal_flush_interval=30.0)
    sync = pipeline.submit("db", b"m,t=a v=1i 5")  # waits for the flush
    pipeline.submit("db", b"m,t=a v=2i 5", no_sync=True).result(timeout=5)  # applied now
    pipeline.flush()
    sync.result(timeout=5)
    live = engine.query_sql("db", "SELECT v FROM m").read_all().to_pylist()
    crash = tmp_path.parent / (tmp_path.name + "_crash")
    shutil.copytree(tmp_path, crash)
    pipeline.close()
    engine2, pipeline2 = recover(crash)
    try:
        assert engine2.query_sql("db", "SELECT v FROM m").read_all().to_pylist() == live
        assert len(live) == 1  # one row per tag set and time
    finally:
        pipeline2.close()
