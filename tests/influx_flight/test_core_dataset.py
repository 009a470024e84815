"""Windowed dataset export against the stand-in: Hive layout, _SUCCESS manifest, resume after a
failure and after SIGKILL, overwrite, fan-out pieces (export_window + commit_dataset), CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from fsspec.implementations.local import LocalFileSystem

from influx_flight import (
    ConfigurationError,
    ExportError,
    InfluxDB3Client,
    InfluxDB3Config,
    commit_dataset,
    export_dataset,
    export_window,
    plan_windows,
    slice_manifest,
    window_query,
)

TOKEN = "apiv3_test-token-for-the-stand-in"
T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
MIN = 60 * 10**9
QUERY = "SELECT * FROM cpu WHERE time >= $start AND time < $end"


def load(standin: Any, database: str, *, minutes: int, per_minute: int, skip_hour: int = -1) -> int:
    """``per_minute`` rows for each minute of ``minutes`` from T0 (none in ``skip_hour``)."""
    n = minutes * per_minute
    times = T0 + (np.arange(n) // per_minute) * MIN + (np.arange(n) % per_minute) * 1_000
    keep = ((times - T0) // (60 * MIN)) != skip_hour
    times = times[keep]
    table = pa.table(
        {
            "time": pa.array(times, pa.timestamp("ns")),
            "host": pa.array([f"h{i % 5}" for i in range(len(times))]),
            "usage": pa.array(np.arange(len(times), dtype=np.float64)),
        }
    )
    standin.engine.append(database, "cpu", table, tags=["host"])
    return len(times)


@pytest.fixture
def client(standin: Any) -> Any:
    with InfluxDB3Client(
        InfluxDB3Config(host=standin.flight_uri, database="unused", token=TOKEN)
    ) as c:
        yield c


def read_dataset(path: Path) -> pa.Table:
    return pads.dataset(path, format="parquet", partitioning="hive").to_table()


def parts(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*.parquet"))


def temporaries(path: Path) -> list[Path]:
    return [p for p in path.rglob(".*") if p.name.endswith(".tmp")]


# --- planning --------------------------------------------------------------------------------------


def test_plan_windows_partitions() -> None:
    hourly = plan_windows("2024-01-01T00:00:00Z", "2024-01-01T03:00:00Z", "1h")
    assert [w.partition for w in hourly] == [
        "date=2024-01-01/hour=00",
        "date=2024-01-01/hour=01",
        "date=2024-01-01/hour=02",
    ]
    assert hourly[1].to_kwargs() == {"start": "2024-01-01T01:00:00Z", "end": "2024-01-01T02:00:00Z"}
    daily = plan_windows("2024-02-28", "2024-03-01", "1d")  # leap day
    assert [w.partition for w in daily] == ["date=2024-02-28", "date=2024-02-29"]
    quarter = plan_windows("2024-01-01T23:30:00Z", "2024-01-02T00:15:00Z", "15m")
    assert [w.partition for w in quarter] == [
        "date=2024-01-01/hour=23/minute=30",
        "date=2024-01-01/hour=23/minute=45",
        "date=2024-01-02/hour=00/minute=00",
    ]


def test_plan_windows_refuses_unaligned_and_odd_windows() -> None:
    with pytest.raises(ConfigurationError, match="aligned"):
        plan_windows("2024-01-01T00:30:00Z", "2024-01-01T03:00:00Z", "1h")
    with pytest.raises(ConfigurationError, match="whole number of minutes"):
        plan_windows("2024-01-01", "2024-01-02", "90s")
    with pytest.raises(ConfigurationError, match="after start"):
        plan_windows("2024-01-02", "2024-01-01", "1h")


def test_query_needs_start_and_end(client: Any, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"\$start and \$end"):
        export_dataset(client, "SELECT * FROM cpu", tmp_path, start="2024-01-01", end="2024-01-02")
    # the per-window options are export_window's; a misspelt one fails before any window runs
    with pytest.raises(ConfigurationError, match="compresion: not an export option") as info:
        export_dataset(
            client, window_query("cpu"), tmp_path, start="2024-01-01", end="2024-01-02",
            compresion="zstd",  # type: ignore[call-arg]
        )  # fmt: skip
    assert info.value.field == "compresion"
    assert list(tmp_path.iterdir()) == []


# --- a whole range -------------------------------------------------------------------------------


def test_export_commit_resume_and_overwrite(standin: Any, client: Any, tmp_path: Path) -> None:
    db = "scale_dataset_full"
    rows = load(standin, db, minutes=6 * 60, per_minute=3, skip_hour=2)  # hour 2 is empty
    out = tmp_path / "cpu"
    seen: list[Any] = []
    res = export_dataset(
        client,
        QUERY,
        str(out),
        start="2024-01-01T00:00:00Z",
        end="2024-01-01T06:00:00Z",
        window="1h",
        concurrency=3,
        database=db,
        on_progress=seen.append,
    )
    assert (res.rows, res.written, res.skipped, res.committed) == (rows, 6, 0, True)
    assert parts(out) == [f"date=2024-01-01/hour=0{h}/part-0.parquet" for h in range(6)]
    assert pq.read_metadata(out / "date=2024-01-01/hour=02/part-0.parquet").num_rows == 0
    table = read_dataset(out)
    assert table.num_rows == rows
    assert len(set(table.column("time").to_pylist())) == rows  # no duplicates
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert manifest["query"] == QUERY and manifest["database"] == db
    assert (manifest["start"], manifest["end"], manifest["window"]) == (
        "2024-01-01T00:00:00Z",
        "2024-01-01T06:00:00Z",
        "1h",
    )
    assert [f["rows"] for f in manifest["files"]] == [180, 180, 0, 180, 180, 180]
    assert manifest["files"][0]["path"] == "date=2024-01-01/hour=00/part-0.parquet"
    assert seen[-1].windows_done == 6 and seen[-1].rows == rows
    json.dumps(res.to_dict())

    again = export_dataset(
        client, QUERY, str(out), start="2024-01-01", end="2024-01-01T06:00:00Z", database=db
    )
    assert (again.written, again.skipped, again.rows) == (0, 6, rows)

    mtime = (out / "date=2024-01-01/hour=00/part-0.parquet").stat().st_mtime_ns
    time.sleep(0.01)
    over = export_dataset(
        client,
        QUERY,
        out,
        start="2024-01-01",
        end="2024-01-01T06:00:00Z",
        database=db,
        overwrite=True,
    )
    assert (over.written, over.skipped, over.rows) == (6, 0, rows)
    assert (out / "date=2024-01-01/hour=00/part-0.parquet").stat().st_mtime_ns > mtime
    assert read_dataset(out).num_rows == rows


class FailingOnce(LocalFileSystem):
    """Refuses to create files under one partition until ``heal()``."""

    cachable = False

    def __init__(self, poison: str) -> None:
        super().__init__()
        self.poison = poison

    def heal(self) -> None:
        self.poison = "\0never"

    def open(self, path: str, mode: str = "rb", **kwargs: Any) -> Any:  # type: ignore[override]
        if "w" in mode and self.poison in str(path):
            raise PermissionError(13, "Permission denied", str(path))
        return super().open(path, mode, **kwargs)


def test_failed_window_leaves_no_commit_and_retry_completes(
    standin: Any, client: Any, tmp_path: Path
) -> None:
    db = "scale_dataset_fail"
    rows = load(standin, db, minutes=4 * 60, per_minute=2)
    fs = FailingOnce("hour=01")
    out = tmp_path / "cpu"
    kwargs: dict[str, Any] = {
        "start": "2024-01-01T00:00:00Z",
        "end": "2024-01-01T04:00:00Z",
        "database": db,
        "filesystem": fs,
        "concurrency": 1,
    }
    with pytest.raises(ExportError, match=r"2024-01-01T01:00:00Z.*Permission denied") as info:
        export_dataset(client, QUERY, str(out), **kwargs)
    assert "no _SUCCESS" in str(info.value)
    assert not (out / "_SUCCESS").exists()
    assert "date=2024-01-01/hour=00/part-0.parquet" in parts(out)
    assert "date=2024-01-01/hour=01/part-0.parquet" not in parts(out)
    assert temporaries(out) == []
    fs.heal()
    res = export_dataset(client, QUERY, str(out), **kwargs)
    assert res.committed and res.skipped >= 1 and res.written >= 1
    assert read_dataset(out).num_rows == rows
    assert len(parts(out)) == 4


def test_fan_out_pieces_export_window_then_commit(
    standin: Any, client: Any, tmp_path: Path
) -> None:
    db = "scale_dataset_fanout"
    rows = load(standin, db, minutes=3 * 60, per_minute=1)
    out = tmp_path / "cpu"
    windows = plan_windows("2024-01-01", "2024-01-01T03:00:00Z", "1h")
    query = window_query("cpu")
    for w in windows[:2]:
        export_window(client, query, str(out), w, database=db)
    with pytest.raises(ExportError, match=r"1 of 3 windows have no file \(2024-01-01T02:00:00Z\)"):
        commit_dataset(query, str(out), start="2024-01-01", end="2024-01-01T03:00:00Z", database=db)
    assert not (out / "_SUCCESS").exists()
    _, written = export_window(client, query, str(out), windows[2], database=db)
    _, again = export_window(client, query, str(out), windows[2], database=db)
    assert (written, again) == (True, False)
    res = commit_dataset(
        query, str(out), start="2024-01-01", end="2024-01-01T03:00:00Z", database=db
    )
    assert res.committed and res.rows == rows
    assert json.loads((out / "_SUCCESS").read_text())["rows"] == rows


@pytest.mark.parametrize(
    ("start", "end", "window", "expected"),
    [
        ("2024-01-01", "2024-01-02", "1h", "date=2024-01-01/_SUCCESS"),
        ("2024-01-01", "2024-01-02", "1d", "date=2024-01-01/_SUCCESS"),
        ("2024-01-01T06:00:00Z", "2024-01-01T07:00:00Z", "15m", "date=2024-01-01/hour=06/_SUCCESS"),
        ("2024-01-01T06:15:00Z", "2024-01-01T06:30:00Z", "15m",
         "date=2024-01-01/hour=06/minute=15/_SUCCESS"),
        # not one directory: six hours of a day, a week, a day on a zoned clock
        ("2024-01-01T00:00:00Z", "2024-01-01T06:00:00Z", "1h",
         "_SUCCESS.20240101T000000Z-20240101T060000Z"),
        ("2024-01-01", "2024-01-08", "1d", "_SUCCESS.20240101T000000Z-20240108T000000Z"),
        ("2024-03-30T23:00:00Z", "2024-03-31T22:00:00Z", "1h",
         "_SUCCESS.20240330T230000Z-20240331T220000Z"),
    ],
)  # fmt: skip
def test_slice_manifest_commits_a_whole_directory_in_it(
    start: str, end: str, window: str, expected: str
) -> None:
    assert slice_manifest(start, end, window) == expected


def test_commit_one_slice_of_a_growing_dataset(standin: Any, client: Any, tmp_path: Path) -> None:
    db = "scale_dataset_slices"
    rows = load(standin, db, minutes=3 * 60, per_minute=1)
    out = tmp_path / "cpu"
    query = window_query("cpu")
    for w in plan_windows("2024-01-01", "2024-01-01T02:00:00Z", "1h"):
        export_window(client, query, str(out), w, database=db)
    first = slice_manifest("2024-01-01T00:00:00Z", "2024-01-01T01:00:00Z", "1h")
    res = commit_dataset(
        query, str(out), start="2024-01-01", end="2024-01-01T01:00:00Z", database=db, manifest=first
    )
    marker = out / "date=2024-01-01" / "hour=00" / "_SUCCESS"
    assert res.manifest == str(marker) and not (out / "_SUCCESS").exists()
    doc = json.loads(marker.read_text())
    assert (
        doc["rows"] == rows // 3
        and doc["files"][0]["path"] == "date=2024-01-01/hour=00/part-0.parquet"
    )
    assert not list(out.rglob("*.tmp"))
    with pytest.raises(ConfigurationError, match="inside the dataset"):
        commit_dataset(query, str(out), start="2024-01-01", end="2024-01-01T01:00:00Z",
                       database=db, manifest="../_SUCCESS")  # fmt: skip


def test_memory_url_destination(standin: Any, client: Any) -> None:
    import fsspec

    db = "scale_dataset_memory"
    rows = load(standin, db, minutes=120, per_minute=1)
    url = f"memory://scale-{os.getpid()}/cpu"
    res = export_dataset(
        client, QUERY, url, start="2024-01-01", end="2024-01-01T02:00:00Z", database=db
    )
    fs = fsspec.filesystem("memory")
    assert res.rows == rows
    assert fs.exists(f"/scale-{os.getpid()}/cpu/_SUCCESS")
    assert res.files[0].path == f"{url}/date=2024-01-01/hour=00/part-0.parquet"
    fs.rm(f"/scale-{os.getpid()}", recursive=True)


# --- the CLI, killed and re-run -------------------------------------------------------------------


def _cli(standin: Any, db: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "influx_flight.cli", "export", *args]


def _env(standin: Any, db: str) -> dict[str, str]:
    return {
        **os.environ,
        "INFLUXDB3_HOST_URL": standin.flight_uri,
        "INFLUXDB3_DATABASE_NAME": db,
        "INFLUXDB3_AUTH_TOKEN": TOKEN,
    }


def test_killed_export_rerun_completes_without_duplicates(standin: Any, tmp_path: Path) -> None:
    db = "scale_dataset_kill"
    rows = load(standin, db, minutes=12 * 60, per_minute=10)
    out = tmp_path / "cpu"
    argv = _cli(
        standin,
        db,
        "--table", "cpu",
        "--start", "2024-01-01T00:00:00Z",
        "--end", "2024-01-01T12:00:00Z",
        "--window", "15m",
        "--output", str(out),
        "--concurrency", "2",
    )  # fmt: skip
    proc = subprocess.Popen(
        argv, env=_env(standin, db), stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while len(parts(out) if out.exists() else []) < 3:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the export did not start"
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    killed_parts = parts(out)
    assert 3 <= len(killed_parts) < 48, "the kill came too late to test anything"
    assert not (out / "_SUCCESS").exists()

    done = subprocess.run(
        argv, env=_env(standin, db), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert (done.stdout, done.stderr) == ("", "")  # quiet when not a terminal
    assert len(parts(out)) == 48
    assert temporaries(out) == []
    table = read_dataset(out)
    assert table.num_rows == rows
    assert len(set(table.column("time").to_pylist())) == rows
    manifest = json.loads((out / "_SUCCESS").read_text())
    assert manifest["windows"] == 48 and manifest["rows"] == rows
    assert len({f["window_start"] for f in manifest["files"]}) == 48
    # every window holds exactly its own quarter hour
    for f in manifest["files"][::17]:
        t = pq.read_table(out / f["path"]).column("time").cast(pa.int64()).to_numpy()
        start = np.datetime64(f["window_start"].rstrip("Z"), "ns").astype(np.int64)
        assert len(t) == 15 * 10 and t.min() >= start and t.max() < start + 15 * MIN


def test_cli_progress_on_request_and_usage_errors(standin: Any, tmp_path: Path) -> None:
    db = "scale_dataset_cli"
    load(standin, db, minutes=60, per_minute=1)
    base = ["--start", "2024-01-01", "--end", "2024-01-01T01:00:00Z", "--output"]
    done = subprocess.run(
        _cli(standin, db, "--table", "cpu", *base, str(tmp_path / "a"), "--progress"),
        env=_env(standin, db), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1/1 windows" in done.stderr and "committed" in done.stderr
    bad = subprocess.run(
        _cli(standin, db, "SELECT * FROM cpu", *base, str(tmp_path / "b")),
        env=_env(standin, db), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert bad.returncode == 2 and "$start and $end" in bad.stderr
    assert not (tmp_path / "b").exists()
