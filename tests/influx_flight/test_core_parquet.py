"""The Parquet sink: streamed, exact row groups, atomic on every fsspec filesystem, split by
time window; and QueryResult.to_parquet against the stand-in."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from influx_flight import (
    ExportError,
    InfluxDB3Client,
    InfluxDB3Config,
    read_parquet,
    write_parquet,
)

HOUR = 3_600 * 10**9
DAY = 24 * HOUR
T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z


def batches(rows: int, batch_rows: int, step_ns: int = 60 * 10**9) -> list[pa.RecordBatch]:
    times = pa.array([T0 + i * step_ns for i in range(rows)], pa.timestamp("ns", tz="UTC"))
    table = pa.table({"time": times, "v": pa.array([float(i) for i in range(rows)])})
    return table.to_batches(max_chunksize=batch_rows)


SCHEMA = batches(1, 1)[0].schema


def boom(items: list[pa.RecordBatch], after: int) -> Iterator[pa.RecordBatch]:
    for i, b in enumerate(items):
        if i == after:
            raise RuntimeError("stream broke")
        yield b


@pytest.fixture
def memfs() -> Iterator[Any]:
    fs = fsspec.filesystem("memory")
    root = f"/t{uuid.uuid4().hex[:8]}"
    fs.mkdir(root)
    yield fs, root
    fs.rm(root, recursive=True)


def test_row_groups_are_exact_regardless_of_batch_size(tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    res = write_parquet(batches(2_500, 333), SCHEMA, out, row_group_size=1_000)
    meta = pq.ParquetFile(out).metadata
    assert [meta.row_group(i).num_rows for i in range(meta.num_row_groups)] == [1000, 1000, 500]
    assert (res.rows, res.row_groups) == (2_500, 3)
    assert res.bytes == out.stat().st_size
    assert pq.read_table(out).column("v").to_pylist() == [float(i) for i in range(2_500)]


@pytest.mark.parametrize("compression", ["zstd", "snappy", "gzip", "none"])
def test_compression_choice(tmp_path: Path, compression: str) -> None:
    out = tmp_path / "o.parquet"
    write_parquet(batches(100, 50), SCHEMA, str(out), compression=compression)
    codec = pq.ParquetFile(out).metadata.row_group(0).column(0).compression
    assert codec == ("UNCOMPRESSED" if compression == "none" else compression.upper())


def test_invalid_compression_and_row_group(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="compression"):
        write_parquet([], SCHEMA, tmp_path / "o.parquet", compression="lzma")
    with pytest.raises(ExportError, match="row_group_size"):
        write_parquet([], SCHEMA, tmp_path / "o.parquet", row_group_size=0)
    assert list(tmp_path.iterdir()) == []


def test_empty_stream_writes_schema(tmp_path: Path) -> None:
    out = tmp_path / "empty.parquet"
    res = write_parquet(iter([]), SCHEMA, out)
    assert res.rows == 0
    assert pq.read_table(out).schema == SCHEMA


def test_failure_leaves_nothing_and_keeps_previous_file(tmp_path: Path) -> None:
    out = tmp_path / "o.parquet"
    write_parquet(batches(10, 10), SCHEMA, out)
    before = out.read_bytes()
    with pytest.raises(ExportError, match="stream broke") as info:
        write_parquet(boom(batches(5_000, 100), after=20), SCHEMA, out, row_group_size=500)
    assert info.value.path == str(out)
    assert out.read_bytes() == before  # the old export is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.parquet"]  # no temp file


def test_source_influx_errors_propagate_unchanged(tmp_path: Path) -> None:
    from influx_flight import QueryCancelledError

    def gen() -> Iterator[pa.RecordBatch]:
        yield batches(5, 5)[0]
        raise QueryCancelledError("cancelled")

    with pytest.raises(QueryCancelledError):
        write_parquet(gen(), SCHEMA, tmp_path / "o.parquet")
    assert list(tmp_path.iterdir()) == []


def test_unwritable_destination_names_path(tmp_path: Path) -> None:
    blocker = tmp_path / "file.txt"
    blocker.write_text("x")
    target = blocker / "o.parquet"
    with pytest.raises(ExportError) as info:
        write_parquet(batches(10, 10), SCHEMA, target)
    assert str(target) in str(info.value)
    assert "writable" in str(info.value)


def test_directory_destination_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="names a directory"):
        write_parquet(batches(1, 1), SCHEMA, str(tmp_path) + "/")


def test_creates_parent_directories(tmp_path: Path) -> None:
    out = tmp_path / "a" / "b" / "o.parquet"
    write_parquet(batches(3, 3), SCHEMA, out)
    assert pq.read_table(out).num_rows == 3


def test_memory_url_atomic(memfs: Any) -> None:
    fs, root = memfs
    url = f"memory://{root}/x.parquet"
    res = write_parquet(batches(100, 7), SCHEMA, url)
    assert res.path == url
    assert read_parquet(url).num_rows == 100
    assert read_parquet(f"{root}/x.parquet", filesystem=fs, columns=["time"]).num_columns == 1
    with pytest.raises(ExportError):
        write_parquet(boom(batches(100, 7), after=3), SCHEMA, f"memory://{root}/y.parquet")
    assert [p.rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)] == ["x.parquet"]


def test_object_with_fs_and_path(memfs: Any) -> None:
    """Airflow's ObjectStoragePath and UPath expose `.fs` and `.path`."""
    from upath import UPath

    fs, root = memfs
    target = UPath(f"memory://{root}/up.parquet")
    res = write_parquet(batches(10, 3), SCHEMA, target)
    assert res.rows == 10
    assert fs.exists(f"{root}/up.parquet")


def test_explicit_filesystem(memfs: Any) -> None:
    fs, root = memfs
    write_parquet(batches(4, 4), SCHEMA, f"{root}/e.parquet", filesystem=fs)
    assert fs.exists(f"{root}/e.parquet")


def test_split_by_day_into_directory(tmp_path: Path) -> None:
    # 3 days of hourly points, batches straddling day boundaries
    res = write_parquet(batches(72, 10, step_ns=HOUR), SCHEMA, tmp_path / "out", split_by="1d")
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == [
        "20240101T000000Z.parquet",
        "20240102T000000Z.parquet",
        "20240103T000000Z.parquet",
    ]
    assert [f.rows for f in res.files] == [24, 24, 24]
    assert res.files[0].window_start == "2024-01-01T00:00:00Z"
    assert res.files[0].window_end == "2024-01-02T00:00:00Z"
    for f in res.files:
        t = pq.read_table(f.path).column("time")
        start = dt.datetime.fromisoformat(f.window_start.replace("Z", "+00:00"))
        assert all(start <= v.as_py() < start + dt.timedelta(days=1) for v in t)


def test_split_by_template_and_unsorted_input(tmp_path: Path) -> None:
    items = batches(48, 48, step_ns=HOUR)
    reversed_table = pa.Table.from_batches(items).take(list(range(47, -1, -1)))
    res = write_parquet(
        reversed_table.to_batches(max_chunksize=5),
        SCHEMA,
        str(tmp_path / "cpu-{date}.parquet"),
        split_by=dt.timedelta(days=1),
        row_group_size=10,
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cpu-2024-01-01.parquet",
        "cpu-2024-01-02.parquet",
    ]
    assert res.rows == 48 and sum(f.rows for f in res.files) == 48


def test_split_failure_removes_every_window(tmp_path: Path) -> None:
    with pytest.raises(ExportError):
        write_parquet(
            boom(batches(72, 10, step_ns=HOUR), after=5), SCHEMA, tmp_path / "out", split_by="1d"
        )
    assert not (tmp_path / "out").exists() or list((tmp_path / "out").iterdir()) == []


def test_split_needs_time_column(tmp_path: Path) -> None:
    schema = pa.schema([("v", pa.float64())])
    with pytest.raises(ExportError, match="no 'time' column"):
        write_parquet([], schema, tmp_path, split_by="1h")


@pytest.mark.parametrize(
    ("value", "ns"),
    [
        ("1d", DAY),
        ("6h", 6 * HOUR),
        ("15m", 900 * 10**9),
        ("1w", 7 * DAY),
        (dt.timedelta(hours=2), 2 * HOUR),
    ],
)
def test_split_by_window_lengths(value: Any, ns: int, tmp_path: Path) -> None:
    res = write_parquet(batches(1, 1), SCHEMA, tmp_path / "out", split_by=value)
    (file,) = res.files
    start, end = (
        dt.datetime.fromisoformat(w.replace("Z", "+00:00"))
        for w in (file.window_start, file.window_end)
    )
    assert (end - start) // dt.timedelta(microseconds=1) * 1_000 == ns
    assert start <= dt.datetime.fromtimestamp(T0 / 10**9, dt.UTC) < end


@pytest.mark.parametrize("value", ["1 day", "0h", "-1d", "", 5, dt.timedelta(0)])
def test_split_by_invalid(value: Any, tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="split_by"):
        write_parquet(batches(1, 1), SCHEMA, tmp_path / "out", split_by=value)
    assert not (tmp_path / "out").exists()


def test_export_result_to_dict_is_json(tmp_path: Path) -> None:
    res = write_parquet(batches(30, 10, step_ns=HOUR), SCHEMA, tmp_path / "d", split_by="1d")
    doc = json.loads(json.dumps(res.to_dict()))
    assert doc["rows"] == 30 and len(doc["files"]) == 2


def test_progress_callback(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    write_parquet(
        batches(100, 10),
        SCHEMA,
        tmp_path / "p.parquet",
        on_progress=lambda r, b: seen.append((r, b)),
    )
    assert [r for r, _ in seen[:-1]] == list(range(10, 101, 10))
    assert seen[-1][1] == os.path.getsize(tmp_path / "p.parquet")


# --- through the client, against the stand-in ----------------------------------------------------

TOKEN = "apiv3_test-token-for-the-stand-in"


def test_query_to_parquet_against_standin(standin: Any, tmp_path: Path) -> None:
    db = "core_parquet_export"
    lines = "\n".join(
        f"cpu,host=h{i % 3} usage={i * 0.5},n={i}i {T0 + i * HOUR}" for i in range(100)
    )
    standin.write_lp(db, lines, precision="ns")
    cfg = InfluxDB3Config(host=standin.flight_uri, database=db, token=TOKEN)
    with InfluxDB3Client(cfg) as client:
        res = client.query("SELECT * FROM cpu ORDER BY time").to_parquet(
            tmp_path / "cpu.parquet", row_group_size=40
        )
        split = client.query("SELECT host, usage, time FROM cpu").to_parquet(
            tmp_path / "days", split_by="1d"
        )
    table = pq.read_table(tmp_path / "cpu.parquet")
    assert res.rows == table.num_rows == 100
    assert table.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert table.schema.field("host").type == pa.string()
    assert pq.ParquetFile(tmp_path / "cpu.parquet").metadata.num_row_groups == 3
    assert [f.rows for f in split.files] == [24, 24, 24, 24, 4]


_READ_THEN_EXIT = """
import pyarrow as pa
from influx_flight import read_parquet, write_parquet
table = pa.table({"time": pa.array([0, 60_000_000_000], pa.timestamp("ns", tz="UTC")), "v": [1.0, 2.0]})
write_parquet(table.to_batches(), table.schema, "memory://exit/v.parquet")
assert read_parquet("memory://exit/v.parquet").equals(table)
"""


def test_reading_a_remote_file_back_does_not_abort_the_process_at_exit() -> None:
    """pq.read_table(python_file) aborts ~40% of such processes at exit (apache/arrow#33975)."""
    import subprocess
    import sys

    runs = [
        subprocess.Popen([sys.executable, "-c", _READ_THEN_EXIT], stderr=subprocess.PIPE)
        for _ in range(12)
    ]
    outcomes = [(p.wait(timeout=120), p.stderr.read().decode() if p.stderr else "") for p in runs]
    assert [code for code, _ in outcomes] == [0] * 12, outcomes


def test_read_parquet_reads_local_paths_and_pathlike(tmp_path: Path) -> None:
    res = write_parquet(batches(50, 7), SCHEMA, tmp_path / "a.parquet")
    assert read_parquet(tmp_path / "a.parquet").num_rows == res.rows == 50
    assert read_parquet(str(tmp_path / "a.parquet"), columns=["time"]).column_names == ["time"]
    with pytest.raises(FileNotFoundError):
        read_parquet(tmp_path / "missing.parquet")
