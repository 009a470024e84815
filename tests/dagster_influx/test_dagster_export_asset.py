"""`build_export_asset`: partitions as windows of a Hive-partitioned Parquet dataset.

Scenarios a user hits: daily partitions in hourly files, a partition with no data, a range run
(one run, three partitions, per-partition metadata), re-materialising (no duplicates, markers
rewritten), resuming with overwrite=False after a file was lost, and definitions refused with a
clear message (unaligned window, query without $start, non-time partitions).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest
from dagster_support import raw_cpu_lines

from dagster_influx import InfluxDB3Resource, build_export_asset

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", end_date="2026-01-02-00:00")
DAILY = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-04")


def _materialize(assets: list[Any], resource: InfluxDB3Resource, **kwargs: Any) -> Any:
    result = dg.materialize(
        assets, resources={"influxdb": resource}, instance=dg.DagsterInstance.ephemeral(), **kwargs
    )
    assert result.success
    return result


def _meta(result: Any, key: str, partition: str) -> dict[str, Any]:
    (mat,) = [m for m in result.asset_materializations_for_node(key) if m.partition == partition]
    return {k: getattr(v, "value", v) for k, v in mat.metadata.items()}


def _rows(path: Path) -> Any:
    return pads.dataset(path, format="parquet", partitioning="hive").to_table()


def test_daily_partition_as_hourly_files_committed_in_its_directory(
    seeded: str, influx: InfluxDB3Resource, tmp_path: Path
) -> None:
    dest = tmp_path / "cpu"
    cpu_parquet = build_export_asset(table="cpu", destination=str(dest), partitions_def=DAILY)
    assert cpu_parquet.key == dg.AssetKey("cpu_parquet")
    result = _materialize([cpu_parquet], influx, partition_key="2026-01-01")

    files = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*.parquet"))
    assert files == [f"date=2026-01-01/hour={h:02d}/part-0.parquet" for h in range(24)]
    marker = json.loads((dest / "date=2026-01-01" / "_SUCCESS").read_text())
    assert marker["rows"] == 4 * 60 * 2 and marker["windows"] == 24
    assert not (dest / "_SUCCESS").exists()  # the dataset root is not claimed by one day

    meta = _meta(result, "cpu_parquet", "2026-01-01")
    assert meta["dagster/partition_row_count"] == 480 == meta["rows"]
    assert meta["files"] == 24 and meta["windows_written"] == 24
    assert meta["bytes"] == sum(p.stat().st_size for p in dest.rglob("*.parquet"))
    assert meta["path"] == str(dest)
    assert meta["manifest"].endswith("date=2026-01-01/_SUCCESS")
    table = _rows(dest)
    assert table.num_rows == 480 and set(table.column("host").to_pylist()) == {"alpha", "beta"}


def test_without_commit_the_files_are_written_and_no_marker(
    seeded: str, influx: InfluxDB3Resource, tmp_path: Path
) -> None:
    dest = tmp_path / "cpu"
    cpu_parquet = build_export_asset(
        table="cpu", destination=str(dest), partitions_def=DAILY, commit=False
    )
    result = _materialize([cpu_parquet], influx, partition_key="2026-01-01")
    assert len(list(dest.rglob("*.parquet"))) == 24
    assert not list(dest.rglob("_SUCCESS*"))
    meta = _meta(result, "cpu_parquet", "2026-01-01")
    assert meta["rows"] == 480 and "manifest" not in meta


def test_range_run_records_each_partition_and_an_empty_one(
    seeded: str, influx: InfluxDB3Resource, tmp_path: Path
) -> None:
    """One run over three hourly partitions (hours 3, 4, 5): the data ends after hour 3."""
    dest = tmp_path / "cpu"
    asset = build_export_asset(
        "SELECT time, host, usage FROM cpu WHERE time >= $start AND time < $end",
        key=["exports", "cpu_usage"],
        destination=str(dest),
        partitions_def=HOURLY,
        window="15m",
    )
    result = _materialize(
        [asset],
        influx,
        tags={
            "dagster/asset_partition_range_start": "2026-01-01-03:00",
            "dagster/asset_partition_range_end": "2026-01-01-05:00",
        },
    )
    counts = {
        k: _meta(result, "exports__cpu_usage", k)["dagster/partition_row_count"]
        for k in ("2026-01-01-03:00", "2026-01-01-04:00", "2026-01-01-05:00")
    }
    assert counts == {"2026-01-01-03:00": 120, "2026-01-01-04:00": 0, "2026-01-01-05:00": 0}
    for h in (3, 4, 5):
        marker = dest / "date=2026-01-01" / f"hour={h:02d}" / "_SUCCESS"
        assert json.loads(marker.read_text())["windows"] == 4
    empty = pq.read_table(dest / "date=2026-01-01/hour=04/minute=15/part-0.parquet")
    assert empty.num_rows == 0 and empty.schema.names[:3] == ["time", "host", "usage"]


def test_rematerialising_replaces_windows_and_resume_keeps_them(
    seeded: str, influx: InfluxDB3Resource, tmp_path: Path, standin: Any
) -> None:
    dest = tmp_path / "cpu"
    asset = build_export_asset(table="cpu", destination=str(dest), partitions_def=HOURLY)
    _materialize([asset], influx, partition_key="2026-01-01-01:00")
    # late data arrives for hour 1; re-materialising picks it up, once
    standin.write_lp(seeded, "cpu,host=gamma,region=eu usage=1.0,load=1i 1767231000000000000")
    _materialize([asset], influx, partition_key="2026-01-01-01:00")
    table = _rows(dest)
    assert table.num_rows == 121
    assert len(list(dest.rglob("*.parquet"))) == 1 and not list(dest.rglob("*.tmp"))

    # overwrite=False resumes: a lost window is written, the existing one is kept as it is
    resume = build_export_asset(
        table="cpu", destination=str(dest), partitions_def=DAILY, overwrite=False
    )
    kept = (dest / "date=2026-01-01/hour=01/part-0.parquet").stat().st_mtime_ns
    result = _materialize([resume], influx, partition_key="2026-01-01")
    meta = _meta(result, "cpu_parquet", "2026-01-01")
    assert meta["windows_written"] == 23 and meta["windows_kept"] == 1
    assert (dest / "date=2026-01-01/hour=01/part-0.parquet").stat().st_mtime_ns == kept
    assert _rows(dest).num_rows == 481


def test_definitions_are_checked_before_anything_runs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"not a whole number of 7m windows"):
        build_export_asset(
            table="cpu", destination=str(tmp_path), partitions_def=HOURLY, window="7m"
        )
    with pytest.raises(ValueError, match=r"\$start and \$end"):
        build_export_asset(
            "SELECT * FROM cpu", key="x", destination=str(tmp_path), partitions_def=HOURLY
        )
    with pytest.raises(TypeError, match="time-window partitions"):
        build_export_asset(
            table="cpu",
            destination=str(tmp_path),
            partitions_def=dg.StaticPartitionsDefinition(["a"]),
        )
    with pytest.raises(ValueError, match=r"either query= .* or table="):
        build_export_asset(destination=str(tmp_path), partitions_def=HOURLY)
    zoned = dg.DailyPartitionsDefinition(start_date="2026-03-01", timezone="Europe/London")
    with pytest.raises(ValueError, match="not a whole number of 1d windows"):
        build_export_asset(
            table="cpu", destination=str(tmp_path), partitions_def=zoned, window="1d"
        )
    # a zoned day in hourly files is fine, and commits at the root under its own name
    assert build_export_asset(table="cpu", destination=str(tmp_path), partitions_def=zoned)


def test_export_with_a_missing_table_fails_and_commits_nothing(
    make_resource: Callable[..., InfluxDB3Resource], standin: Any, tmp_path: Path
) -> None:
    standin.write_lp("dg_export_other", raw_cpu_lines(hours=1), precision="ns")
    asset = build_export_asset(table="nope", destination=str(tmp_path / "x"), partitions_def=HOURLY)
    result = dg.materialize(
        [asset],
        resources={"influxdb": make_resource("dg_export_other")},
        partition_key="2026-01-01-00:00",
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    assert not result.success
    assert not list((tmp_path).rglob("_SUCCESS")) and not list(tmp_path.rglob("*.parquet"))


def test_both_factories_refuse_partitions_that_are_not_time_windows(tmp_path: Path) -> None:
    from dagster_influx import build_downsample_asset
    from influx_flight import DownsampleSpec

    static = dg.StaticPartitionsDefinition(["a", "b"])
    with pytest.raises(TypeError, match=r"build_export_asset\('cpu_parquet'\).*Static"):
        build_export_asset(table="cpu", destination=str(tmp_path), partitions_def=static)
    spec = DownsampleSpec(
        source="cpu", window="1h", aggregates={"v": ["mean"]}, target_measurement="cpu_1h"
    )
    with pytest.raises(TypeError, match=r"build_downsample_asset\(.*\).*Static"):
        build_downsample_asset(spec, partitions_def=static)


def test_export_factory_passes_asset_attributes_through_and_op_tags_separately(
    tmp_path: Path,
) -> None:
    condition = dg.AutomationCondition.on_cron("5 0 * * *")
    asset = build_export_asset(
        table="cpu",
        destination=str(tmp_path),
        partitions_def=DAILY,
        group_name="lake",
        tags={"tier": "bronze"},
        owners=["team:data"],
        code_version="v3",
        kinds={"s3"},
        automation_condition=condition,
        backfill_policy=dg.BackfillPolicy.multi_run(2),
        retry_policy=dg.RetryPolicy(max_retries=2),
        op_tags={"team": "data"},
        pool="influx",
    )
    spec = next(iter(asset.specs))
    assert spec.group_name == "lake" and spec.tags["tier"] == "bronze"
    assert spec.owners == ["team:data"] and spec.code_version == "v3"
    assert spec.kinds == {"influxdb", "parquet", "s3"}
    assert spec.automation_condition == condition
    assert asset.backfill_policy == dg.BackfillPolicy.multi_run(2)
    assert asset.op.retry_policy == dg.RetryPolicy(max_retries=2)
    assert asset.op.tags["team"] == "data" and "tier" not in asset.op.tags
    assert asset.op.pool == "influx"
