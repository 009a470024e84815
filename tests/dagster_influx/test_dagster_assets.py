"""build_downsample_asset against the stand-in: values, metadata, backfills, idempotence."""

from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster_support import HOSTS, hour

from dagster_influx import InfluxDB3Resource, ParquetIOManager, build_downsample_asset
from influx_flight import DownsampleSpec, QueryError

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", end_date="2026-01-01-06:00")
SPEC = DownsampleSpec(
    source="cpu",
    window="10m",
    aggregates={"usage": ["mean", "sum", "spread"], "load": ["count"]},
    group_by=["host"],
    target_measurement="cpu_10m",
)


def expected_buckets(first_hour: int, hours: int) -> dict[tuple[str, str], tuple[float, ...]]:
    """The aggregates computed in Python from the generator's formula, per (time, host)."""
    out = {}
    for minute0 in range(first_hour * 60, (first_hour + hours) * 60, 10):
        for h, host in enumerate(HOSTS):
            values = [float((m * 7 + h * 13) % 100) for m in range(minute0, minute0 + 10)]
            ts = (hour(0).timestamp() + minute0 * 60) * 1_000_000_000
            key = (str(int(ts)), host)
            out[key] = (sum(values) / 10, sum(values), max(values) - min(values), 10)
    return out


def stored(influx: InfluxDB3Resource, table: str = "cpu_10m") -> pa.Table:
    with dg.build_resources({"influxdb": influx}) as res:
        return res.influxdb.query(f'SELECT * FROM "{table}" ORDER BY time, host')


def as_buckets(table: pa.Table) -> dict[tuple[str, str], tuple[float, ...]]:
    times = table.column("time").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist()
    rows = zip(
        times,
        table.column("host").to_pylist(),
        table.column("usage_mean").to_pylist(),
        table.column("usage_sum").to_pylist(),
        table.column("usage_spread").to_pylist(),
        table.column("load_count").to_pylist(),
        strict=True,
    )
    return {(str(t), h): (mean, s, spread, n) for t, h, mean, s, spread, n in rows}


def metadata_of(result: dg.ExecuteInProcessResult, node: str) -> list[dict[str, Any]]:
    return [dict(m.metadata) for m in result.asset_materializations_for_node(node)]


def test_one_partition_writes_the_expected_buckets_and_metadata(
    influx: InfluxDB3Resource, seeded: str, token_env: str
) -> None:
    cpu_10m = build_downsample_asset(SPEC, partitions_def=HOURLY)
    assert cpu_10m.key == dg.AssetKey("cpu_10m")
    assert dg.AssetKey("cpu") in cpu_10m.asset_deps[cpu_10m.key]

    result = dg.materialize(
        [cpu_10m], resources={"influxdb": influx}, partition_key="2026-01-01-01:00"
    )
    assert result.success
    assert as_buckets(stored(influx)) == expected_buckets(1, 1)

    (meta,) = metadata_of(result, "cpu_10m")
    assert meta["dagster/partition_row_count"].value == 12
    assert "dagster/row_count" not in meta
    assert meta["points_written"].value == 12
    assert meta["time_range"].value == "[2026-01-01T01:00:00Z, 2026-01-01T02:00:00Z)"
    assert meta["query_params"].value == {
        "start": "2026-01-01T01:00:00Z",
        "end": "2026-01-01T02:00:00Z",
    }
    assert "date_bin(INTERVAL '10 minutes', time" in meta["query"].value
    assert "time >= $start AND time < $end" in meta["query"].value
    columns = {c.name: c.type for c in meta["dagster/column_schema"].value.columns}
    assert set(columns) == {"time", "host", "usage_mean", "usage_sum", "usage_spread", "load_count"}
    assert columns["time"] == "timestamp[ns, tz=UTC]"
    preview = meta["preview"].value
    assert preview.splitlines()[0].startswith("| time | ")
    assert len(preview.splitlines()) == 2 + 5  # header, rule, five rows
    assert meta["dagster/table_name"].value == f"{seeded}.cpu_10m"
    assert token_env not in repr(meta)


def test_backfill_of_three_partitions_in_one_run_is_idempotent(
    influx: InfluxDB3Resource, seeded: str
) -> None:
    cpu_10m = build_downsample_asset(
        SPEC, partitions_def=HOURLY, backfill_policy=dg.BackfillPolicy.single_run(), chunk="1h"
    )
    tags = {
        "dagster/asset_partition_range_start": "2026-01-01-01:00",
        "dagster/asset_partition_range_end": "2026-01-01-03:00",
    }
    first = dg.materialize([cpu_10m], resources={"influxdb": influx}, tags=tags)
    assert first.success
    snapshot = stored(influx)
    assert as_buckets(snapshot) == expected_buckets(1, 3)
    metas = metadata_of(first, "cpu_10m")
    assert [m["query_windows"].value for m in metas] == [3] * len(metas)
    assert metas[0]["points_written"].value == 36

    again = dg.materialize([cpu_10m], resources={"influxdb": influx}, tags=tags)
    assert again.success
    assert stored(influx).equals(snapshot)


def test_rematerialising_one_partition_leaves_the_others_alone(
    influx: InfluxDB3Resource, seeded: str
) -> None:
    cpu_10m = build_downsample_asset(SPEC, partitions_def=HOURLY)
    for key in ("2026-01-01-00:00", "2026-01-01-01:00", "2026-01-01-00:00"):
        assert dg.materialize([cpu_10m], resources={"influxdb": influx}, partition_key=key).success
    table = stored(influx)
    assert as_buckets(table) == expected_buckets(0, 2)
    assert table.num_rows == 24  # the re-run overwrote its 12 points instead of adding 12
    assert as_buckets(table) == expected_buckets(0, 2)


def test_partitions_that_cut_buckets_are_refused_when_building() -> None:
    spec = DownsampleSpec(
        source="cpu", window="7m", aggregates={"usage": ["mean"]}, target_measurement="cpu_7m"
    )
    with pytest.raises(ValueError, match=r"build_downsample_asset\('cpu_7m'\).*not aligned"):
        build_downsample_asset(spec, partitions_def=HOURLY)


def test_partitions_must_be_time_windows() -> None:
    with pytest.raises(TypeError, match="time-window partitions definition"):
        build_downsample_asset(SPEC, partitions_def=dg.StaticPartitionsDefinition(["a", "b"]))


def test_nothing_to_do_is_refused() -> None:
    with pytest.raises(ValueError, match="write_back=False set return_type"):
        build_downsample_asset(SPEC, partitions_def=HOURLY, write_back=False)


def test_return_arrow_without_write_back_into_parquet(
    influx: InfluxDB3Resource, seeded: str, tmp_path: Path
) -> None:
    rollup = build_downsample_asset(
        SPEC,
        key=["rollups", "cpu_10m_file"],
        partitions_def=HOURLY,
        write_back=False,
        return_type="arrow",
        io_manager_key="parquet_io",
    )
    resources = {"influxdb": influx, "parquet_io": ParquetIOManager(base_dir=str(tmp_path))}
    result = dg.materialize([rollup], resources=resources, partition_key="2026-01-01-02:00")
    assert result.success
    path = tmp_path / "rollups" / "cpu_10m_file" / "2026-01-01-0200.parquet"
    assert as_buckets(pq.read_table(path)) == expected_buckets(2, 1)
    (meta,) = metadata_of(result, "rollups__cpu_10m_file")
    assert meta["path"].value == str(path)
    assert meta["dagster/partition_row_count"].value == 12
    with pytest.raises(QueryError):  # nothing was written back
        stored(influx)


def test_return_pandas_after_write_back(influx: InfluxDB3Resource, seeded: str) -> None:
    cpu_10m = build_downsample_asset(SPEC, partitions_def=HOURLY, return_type="pandas")
    result = dg.materialize_to_memory(
        [cpu_10m], resources={"influxdb": influx}, partition_key="2026-01-01-03:00"
    )
    frame = result.output_for_node("cpu_10m")
    assert len(frame) == 12
    assert str(frame["time"].dtype).endswith("UTC]")
    assert as_buckets(pa.Table.from_pandas(frame)) == expected_buckets(3, 1)
    assert as_buckets(stored(influx)) == expected_buckets(3, 1)


def test_influxql_spec_gives_the_same_buckets(influx: InfluxDB3Resource, seeded: str) -> None:
    spec = DownsampleSpec(
        source="cpu",
        window="10m",
        aggregates={"usage": ["mean", "max"]},
        group_by=["host"],
        target_measurement="cpu_10m_influxql",
        language="influxql",
    )
    asset = build_downsample_asset(spec, partitions_def=HOURLY)
    result = dg.materialize(
        [asset], resources={"influxdb": influx}, partition_key="2026-01-01-02:00"
    )
    assert result.success
    (meta,) = metadata_of(result, "cpu_10m_influxql")
    assert "GROUP BY time(10m)" in meta["query"].value
    table = stored(influx, "cpu_10m_influxql")
    assert "iox::measurement" not in table.column_names
    got = {
        (str(t), h): (mean, mx)
        for t, h, mean, mx in zip(
            table.column("time").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist(),
            table.column("host").to_pylist(),
            table.column("usage_mean").to_pylist(),
            table.column("usage_max").to_pylist(),
            strict=True,
        )
    }
    expected = {}
    for minute0 in range(120, 180, 10):
        for h, host in enumerate(HOSTS):
            values = [float((m * 7 + h * 13) % 100) for m in range(minute0, minute0 + 10)]
            ts = int(hour(0).timestamp() + minute0 * 60) * 1_000_000_000
            expected[(str(ts), host)] = (sum(values) / 10, max(values))
    assert got == expected


def test_an_empty_window_still_records_a_schema_and_an_empty_file(
    influx: InfluxDB3Resource, seeded: str, tmp_path: Path
) -> None:
    cpu_10m = build_downsample_asset(
        SPEC, partitions_def=HOURLY, return_type="arrow", io_manager_key="parquet_io"
    )
    resources = {"influxdb": influx, "parquet_io": ParquetIOManager(base_dir=str(tmp_path))}
    result = dg.materialize([cpu_10m], resources=resources, partition_key="2026-01-01-05:00")
    assert result.success  # no raw data after 04:00: nothing written, nothing to return
    (meta,) = metadata_of(result, "cpu_10m")
    assert meta["points_written"].value == 0
    assert meta["dagster/partition_row_count"].value == 0
    assert "usage_mean" in {c.name for c in meta["dagster/column_schema"].value.columns}
    assert "preview" not in meta
    written = pq.read_table(tmp_path / "cpu_10m" / "2026-01-01-0500.parquet")
    assert written.num_rows == 0
    assert written.column_names == [
        "time",
        "host",
        "usage_mean",
        "usage_sum",
        "usage_spread",
        "load_count",
    ]


def test_factory_passes_asset_attributes_through_and_op_tags_separately() -> None:
    condition = dg.AutomationCondition.on_cron("5 * * * *")
    asset = build_downsample_asset(
        SPEC,
        partitions_def=HOURLY,
        description="CPU in 10-minute buckets.",
        group_name="rollups",
        tags={"tier": "gold"},
        owners=["team:observability", "ops@example.com"],
        code_version="v2",
        kinds={"pandas"},
        metadata={"sla": "1h"},
        automation_condition=condition,
        op_tags={"dagster/concurrency_key": "influx"},
    )
    spec = next(iter(asset.specs))
    assert spec.description == "CPU in 10-minute buckets."
    assert spec.group_name == "rollups"
    assert spec.tags["tier"] == "gold"
    assert spec.owners == ["team:observability", "ops@example.com"]
    assert spec.code_version == "v2"
    assert spec.kinds == {"influxdb", "pandas"}
    assert spec.metadata["sla"] == "1h"
    assert spec.metadata["partition_expr"] == "time"
    assert spec.automation_condition == condition
    assert asset.op.tags["dagster/concurrency_key"] == "influx"
    assert "tier" not in asset.op.tags
