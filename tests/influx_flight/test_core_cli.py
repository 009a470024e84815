"""`influx-flight query` / `downsample` against the stand-in (in-process and as a subprocess)."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from influx_flight.cli import main

TOKEN = "apiv3_test-token-for-the-stand-in"
T0 = 1_704_067_200 * 10**9  # 2024-01-01T00:00:00Z
HOUR = 3_600 * 10**9


@pytest.fixture(scope="module")
def db(standin: Any) -> str:
    name = "core_cli"
    lines = "\n".join(
        f"home,room={'Kitchen' if i % 2 else 'Office'} temp={20 + i * 0.25},co={i}i {T0 + i * 600 * 10**9}"
        for i in range(48)
    )
    standin.write_lp(name, lines, precision="ns")
    return name


@pytest.fixture
def env(standin: Any, db: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "INFLUXDB3_HOST_URL": standin.flight_uri,
        "INFLUXDB3_DATABASE_NAME": db,
        "INFLUXDB3_AUTH_TOKEN": TOKEN,
        "INFLUXDB3_WRITE_URL": standin.http_url,
    }
    for k, v in values.items():
        monkeypatch.setenv(k, v)
    return values


def test_query_table(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "SELECT room, temp, time FROM home ORDER BY time LIMIT 2"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split(" | ")[0].strip() == "room"
    assert "2024-01-01T00:00:00Z" in out[2]
    assert out[-1] == "(2 rows)"


def test_query_json_with_params(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "query",
            "-f",
            "json",
            "-p",
            "room=Kitchen",
            "-p",
            "n=3",
            "SELECT co FROM home WHERE room = $room AND co <= $n ORDER BY time",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out) == [{"co": 1}, {"co": 3}]


def test_query_jsonl_influxql(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "-l", "influxql", "-f", "jsonl", "SELECT COUNT(co) FROM home"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert json.loads(lines[0])["count"] == 48


def test_query_csv_stdout(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "-f", "csv", "SELECT co, room FROM home ORDER BY co LIMIT 3"]) == 0
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows == [["co", "room"], ["0", "Office"], ["1", "Kitchen"], ["2", "Office"]]


def test_query_csv_to_file(env: dict, tmp_path: Path) -> None:
    out = tmp_path / "o.csv"
    assert main(["query", "-o", str(out), "SELECT co FROM home ORDER BY co"]) == 0
    assert out.read_text().splitlines()[:2] == ['"co"', "0"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv"]


def test_query_parquet_with_progress(
    env: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "home.parquet"
    assert main(["query", "--progress", "-o", str(out), "SELECT * FROM home"]) == 0
    assert pq.read_table(out).num_rows == 48
    err = capsys.readouterr().err
    assert "48 rows" in err


def test_query_parquet_split(env: dict, tmp_path: Path) -> None:
    code = main(
        [
            "query",
            "-f",
            "parquet",
            "-o",
            str(tmp_path / "h-{hour}.parquet"),
            "--split-by",
            "1h",
            "--no-progress",
            "SELECT * FROM home",
        ]
    )
    assert code == 0
    assert len(list(tmp_path.iterdir())) == 8


def test_parquet_needs_output(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "-f", "parquet", "SELECT 1"]) == 2
    assert "needs --output" in capsys.readouterr().err


def test_query_error_is_clear(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "SELECT * FROM nope"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("influx-flight: error: ")
    assert "nope" in err and "Traceback" not in err


def test_missing_env_is_usage_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("INFLUXDB3_HOST_URL", raising=False)
    assert main(["query", "SELECT 1"]) == 2
    assert "INFLUXDB3_HOST_URL is not set" in capsys.readouterr().err


def test_token_env_option(
    env: dict, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("INFLUXDB3_AUTH_TOKEN")
    assert main(["query", "SELECT 1"]) == 1  # no token -> authentication error
    assert "unauthenticated" in capsys.readouterr().err
    monkeypatch.setenv("MY_TOKEN", TOKEN)
    assert main(["query", "--token-env", "MY_TOKEN", "-f", "json", "SELECT 1 AS one"]) == 0
    assert json.loads(capsys.readouterr().out) == [{"one": 1}]
    assert main(["query", "--token-env", "UNSET_VAR", "SELECT 1"]) == 2
    assert "UNSET_VAR" in capsys.readouterr().err


def test_host_and_database_overrides(
    env: dict, standin: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    standin.write_lp("core_cli_other", "m v=7i 1", precision="ns")
    code = main(
        [
            "query",
            "--database",
            "core_cli_other",
            "--host",
            standin.flight_uri,
            "-f",
            "json",
            "SELECT v FROM m",
        ]
    )
    assert code == 0
    assert json.loads(capsys.readouterr().out) == [{"v": 7}]


def test_bad_param(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "-p", "novalue", "SELECT 1"]) == 2
    assert "NAME=VALUE" in capsys.readouterr().err


def test_max_rows_guard(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["query", "--max-rows", "5", "SELECT * FROM home"]) == 1
    assert "max_rows=5" in capsys.readouterr().err


def test_downsample_command(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "downsample",
        "--source",
        "home",
        "--window",
        "1h",
        "--agg",
        "temp:mean,sum",
        "--agg",
        "co:sum",
        "--group-by",
        "room",
        "--target",
        "home_1h",
        "--start",
        "2024-01-01T00:00:00Z",
        "--end",
        "2024-01-01T08:00:00Z",
    ]
    assert main([*args, "--output-format", "json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_read"] == 16  # 8 hours x 2 rooms
    assert summary["points_written"] == 16
    assert (
        main(
            [
                "query",
                "-f",
                "json",
                "SELECT room, temp_mean, co_sum FROM home_1h "
                "WHERE room = 'Kitchen' ORDER BY time LIMIT 1",
            ]
        )
        == 0
    )
    rows = json.loads(capsys.readouterr().out)
    assert rows == [{"room": "Kitchen", "temp_mean": 20.75, "co_sum": 9}]


def test_downsample_dry_run(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "downsample",
        "--source",
        "home",
        "--window",
        "1h",
        "--agg",
        "temp:mean",
        "--target",
        "x",
        "--start",
        "2024-01-01T00:00:00Z",
        "--end",
        "2024-01-01T02:00:00Z",
        "--dry-run",
    ]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "date_bin" in captured.out
    assert "nothing read or written" in captured.err


def test_downsample_bad_agg(env: dict, capsys: pytest.CaptureFixture[str]) -> None:
    args = [
        "downsample",
        "--source",
        "home",
        "--window",
        "1h",
        "--agg",
        "temp",
        "--target",
        "x",
        "--start",
        "2024-01-01T00:00:00Z",
        "--end",
        "2024-01-01T02:00:00Z",
    ]
    assert main(args) == 2
    assert "FIELD:FN" in capsys.readouterr().err


def test_subprocess_exit_status_and_no_traceback(env: dict) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "influx_flight.cli", "query", "SELEC 1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **env},
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "rejected the query" in proc.stderr
    assert TOKEN not in proc.stderr + proc.stdout
