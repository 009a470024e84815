"""Parquet storage credentials from EnvVar, range runs into Parquet, and the frame types.

User scenarios: `ParquetIOManager(cloud_storage_options={"key": dg.EnvVar("AWS_SECRET")})`
passed `{'env': 'AWS_SECRET'}` to fsspec; a pandas `DatetimeIndex` was dropped silently; a
single-run backfill into the Parquet IO manager wrote to InfluxDB and then failed.
"""

from pathlib import Path
from typing import Any, ClassVar

import dagster as dg
import fsspec
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_support import HOSTS
from fsspec.implementations.memory import MemoryFileSystem

from dagster_influx import (
    InfluxDB3IOManager,
    InfluxDB3Resource,
    ParquetIOManager,
    S3Config,
    build_downsample_asset,
)
from influx_flight import DownsampleSpec


class RecordingFileSystem(MemoryFileSystem):
    """An in-memory fsspec filesystem that remembers the storage options it was opened with."""

    protocol = "recordfs"
    opened_with: ClassVar[list[dict[str, Any]]] = []
    store: ClassVar[dict[str, Any]] = {}
    pseudo_dirs: ClassVar[list[str]] = [""]

    def __init__(self, **options: Any) -> None:
        type(self).opened_with.append(options)
        super().__init__()


fsspec.register_implementation("recordfs", RecordingFileSystem, clobber=True)
pytestmark = pytest.mark.filterwarnings("ignore:UPath 'recordfs' filesystem not explicitly")


@pytest.fixture
def recording() -> type[RecordingFileSystem]:
    RecordingFileSystem.opened_with.clear()
    RecordingFileSystem.store.clear()
    RecordingFileSystem.clear_instance_cache()
    return RecordingFileSystem


@dg.asset
def small() -> pa.Table:
    return pa.table({"x": [1, 2, 3]})


def test_storage_secrets_from_envvar_reach_fsspec_at_run_time(
    recording: type[RecordingFileSystem], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AK", raising=False)
    monkeypatch.delenv("AWS_SECRET", raising=False)
    manager = ParquetIOManager(
        base_dir="recordfs://bucket/exports",
        storage=S3Config(
            access_key_id=dg.EnvVar("AK"), region="eu-west-1", endpoint_url="http://minio:9000"
        ),
        cloud_storage_options={"secret": dg.EnvVar("AWS_SECRET")},
    )
    # building the definitions needs no value; the values exist only when the run starts
    dg.Definitions.validate_loadable(
        dg.Definitions(assets=[small], resources={"io_manager": manager})
    )
    monkeypatch.setenv("AK", "AKIA-TEST")
    monkeypatch.setenv("AWS_SECRET", "s3cr3t-value")
    result = dg.materialize([small], resources={"io_manager": manager})
    assert result.success
    assert {
        "key": "AKIA-TEST",
        "secret": "s3cr3t-value",
        "client_kwargs": {"region_name": "eu-west-1", "endpoint_url": "http://minio:9000"},
    } in recording.opened_with
    assert all("env" not in str(options) for options in recording.opened_with)
    (stored,) = [k for k in recording.store if k.endswith("exports/small.parquet")]
    assert pq.read_table(recording.store[stored]).num_rows == 3
    (mat,) = result.asset_materializations_for_node("small")
    shown = repr(dict(mat.metadata)) + repr(manager) + "".join(str(e) for e in result.all_events)
    assert "s3cr3t-value" not in shown and "AKIA-TEST" not in shown


def test_a_missing_storage_variable_is_named(
    recording: type[RecordingFileSystem], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NOT_SET_ANYWHERE", raising=False)
    manager = ParquetIOManager(
        base_dir="recordfs://bucket", cloud_storage_options={"token": {"env": "NOT_SET_ANYWHERE"}}
    )
    with pytest.raises(dg.DagsterResourceFunctionError) as err:
        dg.materialize([small], resources={"io_manager": manager})
    assert "'NOT_SET_ANYWHERE', which is not set" in str(err.value.__cause__)


SPEC = DownsampleSpec(
    source="cpu",
    window="30m",
    aggregates={"usage": ["mean"]},
    group_by=["host"],
    target_measurement="cpu_30m",
)
HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", end_date="2026-01-01-06:00")


def test_single_run_range_into_parquet_writes_one_file_per_partition(
    influx: InfluxDB3Resource, seeded: str, tmp_path: Path
) -> None:
    asset = build_downsample_asset(
        SPEC,
        partitions_def=HOURLY,
        return_type="arrow",
        io_manager_key="parquet_io",
        backfill_policy=dg.BackfillPolicy.single_run(),
    )
    tags = {
        "dagster/asset_partition_range_start": "2026-01-01-02:00",
        "dagster/asset_partition_range_end": "2026-01-01-04:00",  # 04:00 has no raw data
    }
    resources = {"influxdb": influx, "parquet_io": ParquetIOManager(base_dir=str(tmp_path))}
    result = dg.materialize([asset], resources=resources, tags=tags)
    assert result.success
    files = sorted((tmp_path / "cpu_30m").glob("*.parquet"))
    first_bytes = {f.name: f.read_bytes() for f in files}
    stored_first = stored_rollups(influx)
    # the same range again, and one of its partitions alone, twice: byte-identical files and
    # identical stored points
    assert dg.materialize([asset], resources=resources, tags=tags).success
    for _ in range(2):
        assert dg.materialize(
            [asset], resources=resources, partition_key="2026-01-01-03:00"
        ).success
    assert {f.name: f.read_bytes() for f in files} == first_bytes
    assert stored_rollups(influx).equals(stored_first)
    rows = {
        name: pq.read_table(tmp_path / "cpu_30m" / f"{name}.parquet").num_rows
        for name in ("2026-01-01-0200", "2026-01-01-0300", "2026-01-01-0400")
    }
    assert rows == {"2026-01-01-0200": 4, "2026-01-01-0300": 4, "2026-01-01-0400": 0}
    counts = {
        m.partition: m.metadata["dagster/partition_row_count"].value
        for m in result.asset_materializations_for_node("cpu_30m")
    }
    assert counts == {"2026-01-01-02:00": 4, "2026-01-01-03:00": 4, "2026-01-01-04:00": 0}


def stored_rollups(influx: InfluxDB3Resource) -> pa.Table:
    with dg.build_resources({"influxdb": influx}) as res:
        return res.influxdb.query("SELECT * FROM cpu_30m ORDER BY time, host")


TIMES = pd.date_range("2026-01-01 01:00", periods=4, freq="15min", tz="UTC", name="time")


@dg.asset(
    key="indexed",
    io_manager_key="io",
    partitions_def=HOURLY,
    metadata={"partition_expr": "time", "tags": ["host"]},
)
def indexed_frame() -> pd.DataFrame:
    return pd.DataFrame({"host": ["alpha"] * 4, "usage": [1.0, 2.0, 3.0, 4.0]}, index=TIMES)


@dg.asset(
    key="polar",
    io_manager_key="io",
    partitions_def=HOURLY,
    metadata={"partition_expr": "time", "tags": ["host"]},
)
def polars_frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"time": list(TIMES), "host": list(HOSTS) * 2, "usage": [5.0, 6.0, 7.0, 8.0]}
    )


@dg.asset(partitions_def=HOURLY, ins={"frame": dg.AssetIn("indexed")}, io_manager_key="mem")
def indexed_back(frame: pd.DataFrame) -> pd.DataFrame:
    return frame


@dg.asset(partitions_def=HOURLY, ins={"frame": dg.AssetIn("polar")}, io_manager_key="mem")
def polars_back(frame: pl.DataFrame) -> pl.DataFrame:
    return frame


@pytest.mark.parametrize("store", ["influxdb", "parquet"])
def test_pandas_datetime_index_and_polars_round_trip(
    store: str, influx: InfluxDB3Resource, tmp_path: Path
) -> None:
    io = (
        InfluxDB3IOManager(influxdb=influx)
        if store == "influxdb"
        else ParquetIOManager(base_dir=str(tmp_path))
    )
    result = dg.materialize(
        [indexed_frame, polars_frame, indexed_back, polars_back],
        resources={"io": io, "mem": dg.InMemoryIOManager()},
        partition_key="2026-01-01-01:00",
    )
    assert result.success
    frame = result.output_for_node("indexed_back")
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.sort_values("time")["usage"]) == [1.0, 2.0, 3.0, 4.0]
    assert [t.isoformat() for t in frame.sort_values("time")["time"]] == [
        t.isoformat() for t in TIMES
    ]
    polar = result.output_for_node("polars_back")
    assert isinstance(polar, pl.DataFrame)
    assert sorted(polar["usage"].to_list()) == [5.0, 6.0, 7.0, 8.0]
    assert str(polar.schema["time"]).endswith("time_zone='UTC')")


def test_an_unnamed_custom_index_is_refused_with_the_fix(tmp_path: Path) -> None:
    @dg.asset(io_manager_key="io")
    def odd() -> pd.DataFrame:
        return pd.DataFrame({"v": [1, 2]}, index=pd.Index(["a", "b"]))

    result = dg.materialize(
        [odd], resources={"io": ParquetIOManager(base_dir=str(tmp_path))}, raise_on_error=False
    )
    assert not result.success
    error = result.get_step_failure_events()[0].event_specific_data.error
    assert "unnamed Index; name it" in str(error)
