"""Defaults live once: every Parquet path ends up with write_parquet's row-group size."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from influx_flight import (
    DEFAULT_ROW_GROUP_SIZE,
    InfluxDB3Client,
    InfluxDB3Config,
    QueryResult,
    write_parquet,
)

REPO = Path(__file__).resolve().parents[2]
ROWS = DEFAULT_ROW_GROUP_SIZE + 10  # two row groups at the default


def _default(fn: Any, name: str = "row_group_size") -> Any:
    return inspect.signature(fn).parameters[name].default


def test_one_constant_is_every_signature_default() -> None:
    pytest.importorskip("airflow")
    pytest.importorskip("dagster")
    from airflow_influx.operators.influxdb3 import InfluxDB3ToParquetOperator

    from dagster_influx import ParquetIOManager

    expected = _default(write_parquet)
    assert expected == DEFAULT_ROW_GROUP_SIZE
    # to_parquet has no defaults of its own to drift: its options go to write_parquet as given
    assert "row_group_size" not in inspect.signature(QueryResult.to_parquet).parameters
    assert _default(InfluxDB3ToParquetOperator.__init__) == expected
    assert ParquetIOManager.model_fields["row_group_size"].default == expected
    op = InfluxDB3ToParquetOperator(task_id="t", query="SELECT 1", output_path="x.parquet")
    assert op.row_group_size == expected


@pytest.fixture(scope="module")
def big(standin: Any) -> InfluxDB3Config:
    config = InfluxDB3Config(
        host=standin.flight_uri,
        database="defaults_rg",
        token=standin.token,
        write_url=standin.http_url,
    )
    table = pa.table(
        {
            "time": pa.array(np.arange(ROWS, dtype=np.int64) * 1_000_000, pa.timestamp("ns")),
            "v": np.arange(ROWS, dtype=np.float64),
        }
    )
    with InfluxDB3Client(config) as client:
        client.write(table, measurement="big")
    return config


def _row_groups(path: Path) -> list[int]:
    meta = pq.ParquetFile(path).metadata
    return [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]


def test_to_parquet_and_the_cli_write_default_row_groups(
    big: InfluxDB3Config, tmp_path: Path
) -> None:
    with InfluxDB3Client(big) as client:
        client.query("SELECT * FROM big ORDER BY time").to_parquet(tmp_path / "api.parquet")
    assert _row_groups(tmp_path / "api.parquet") == [DEFAULT_ROW_GROUP_SIZE, 10]

    out = tmp_path / "cli.parquet"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "influx_flight.cli",
            "query",
            "--host",
            big.host,
            "--database",
            big.database,
            "--output",
            str(out),
            "SELECT * FROM big ORDER BY time",
        ],
        cwd=REPO,
        env={**os.environ, "INFLUXDB3_AUTH_TOKEN": big.token or ""},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert _row_groups(out) == [DEFAULT_ROW_GROUP_SIZE, 10]
