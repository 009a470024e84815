"""airflow_influx.mapping: window kwargs for dynamic task mapping, and the dataset commit."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pendulum
import pytest
from af_testdata import home_points
from airflow_influx.mapping import (
    commit_parquet_dataset,
    downsample_window_kwargs,
    parquet_window_kwargs,
)

from influx_flight import ConfigurationError, ExportError, InfluxDB3Client

QUERY = "SELECT * FROM home WHERE time >= $start AND time < $end"


def test_parquet_window_kwargs_from_a_pendulum_data_interval() -> None:
    kwargs = parquet_window_kwargs(
        pendulum.datetime(2022, 1, 1, tz="UTC"),
        pendulum.datetime(2022, 1, 2, tz="UTC"),
        "1h",
        "s3://aws_default@bucket/home/",
        query_params={"room": "Kitchen"},
    )
    assert len(kwargs) == 24
    assert kwargs[6] == {
        "query_params": {
            "room": "Kitchen",
            "start": "2022-01-01T06:00:00Z",
            "end": "2022-01-01T07:00:00Z",
        },
        "output_path": "s3://aws_default@bucket/home/date=2022-01-01/hour=06/part-0.parquet",
    }
    json.dumps(kwargs)  # XCom-safe


def test_downsample_window_kwargs_and_alignment() -> None:
    local = pendulum.datetime(2022, 3, 27, tz="Europe/Paris")  # a DST day, given in local time
    kwargs = downsample_window_kwargs(local, local.add(hours=3), "1h")
    assert kwargs[0] == {"start": "2022-03-26T23:00:00Z", "end": "2022-03-27T00:00:00Z"}
    assert len(kwargs) == 3
    with pytest.raises(ConfigurationError, match="aligned"):
        downsample_window_kwargs("2022-01-01T00:30:00Z", "2022-01-01T02:00:00Z", "1h")
    with pytest.raises(ValueError, match="dataset"):
        parquet_window_kwargs("2022-01-01", "2022-01-02", "1h", "")


def test_commit_after_mapped_exports(standin: Any, home_db: str, tmp_path: Path) -> None:
    from influx_flight import export_window, plan_windows

    root = (tmp_path / "home").as_uri()
    start, end = datetime(2022, 1, 1, 8, tzinfo=UTC), datetime(2022, 1, 1, 12, tzinfo=UTC)
    with InfluxDB3Client(
        {"host": standin.flight_uri, "database": home_db, "token": standin.token}
    ) as client:
        windows = plan_windows(start, end, "1h")
        for w in windows[:-1]:
            export_window(client, QUERY, root, w)
        with pytest.raises(ExportError, match="2022-01-01T11:00:00Z"):
            commit_parquet_dataset(QUERY, root, start, end, "1h")
        export_window(client, QUERY, root, windows[-1])
    summary = commit_parquet_dataset(QUERY, root, start, end, "1h")
    assert summary["committed"] and summary["windows"] == 4
    assert summary["rows"] == len(home_points())
    assert "files" not in summary  # XCom stays small
    assert json.loads((tmp_path / "home" / "_SUCCESS").read_text())["rows"] == summary["rows"]


def test_mapped_operators_declare_their_outlet_when_the_dag_is_parsed() -> None:
    """A mapped task's outlets are only what its partial() arguments say (the expanded tasks'
    ``__init__`` runs at run time): the downsample's target table and a named export Asset given
    to partial() are there, so Airflow knows them before the first run. A table that is only a
    template cannot be named then."""
    from airflow.sdk import DAG, Asset
    from airflow_influx.assets import influxdb3_asset
    from airflow_influx.operators.influxdb3 import (
        InfluxDB3DownsampleOperator,
        InfluxDB3ToParquetOperator,
    )

    from influx_flight import DownsampleSpec

    start, end = datetime(2022, 1, 1, tzinfo=UTC), datetime(2022, 1, 1, 2, tzinfo=UTC)
    windows = downsample_window_kwargs(start, end, "1h")
    with DAG("mapped_outlets", schedule=None, start_date=datetime(2022, 1, 1, tzinfo=UTC)):
        downsample = InfluxDB3DownsampleOperator.partial(
            task_id="downsample",
            spec=DownsampleSpec(
                source="home", window="1h", aggregates={"temp": ["mean"]}, target_measurement="h1"
            ),
            database="site_a",
        ).expand_kwargs(windows)
        export = InfluxDB3ToParquetOperator.partial(
            task_id="export", query=QUERY, asset="hourly_parquet"
        ).expand_kwargs(parquet_window_kwargs(start, end, "1h", "/exports"))
        templated = InfluxDB3DownsampleOperator.partial(
            task_id="templated", query=QUERY, target_measurement="{{ params.table }}"
        ).expand_kwargs(windows)
    assert downsample.outlets == [influxdb3_asset("h1", database="site_a")]
    assert export.outlets == [Asset(name="hourly_parquet")]
    assert templated.outlets == []
