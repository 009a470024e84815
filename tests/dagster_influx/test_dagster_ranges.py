"""Range runs (single-run backfills) report and check each partition on its own.

The user's scenario: three daily partitions in one run, the middle day without raw data, a
`min_rows=24` check. The empty day must show 0 rows and fail the check by name, while the
days around it hold 24 hourly buckets each.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest

from dagster_influx import (
    InfluxDB3Resource,
    build_downsample_asset,
    build_no_nulls_check,
    build_partition_has_data_check,
    build_value_range_check,
)
from influx_flight import DownsampleSpec

DAILY = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-10")
SPEC = DownsampleSpec(
    source="meter", window="1h", aggregates={"kwh": ["sum"]}, target_measurement="meter_1h"
)
RANGE = {
    "dagster/asset_partition_range_start": "2024-01-01",
    "dagster/asset_partition_range_end": "2024-01-03",
}


def meter_lines(days: list[int]) -> str:
    """One reading every 15 minutes on the given days of January 2024 (kwh = 1.0)."""
    lines = []
    for day in days:
        t0 = datetime(2024, 1, day, tzinfo=UTC)
        for quarter in range(96):
            ts = int((t0 + timedelta(minutes=15 * quarter)).timestamp()) * 10**9
            lines.append(f"meter,site=a kwh=1.0 {ts}")
    return "\n".join(lines)


@pytest.fixture
def two_days(standin: Any, db_name: str) -> str:
    standin.write_lp(db_name, meter_lines([1, 3]))  # 2024-01-02 stays empty
    return db_name


def build(min_rows: int = 24) -> tuple[dg.AssetsDefinition, list[dg.AssetChecksDefinition]]:
    asset = build_downsample_asset(
        SPEC, partitions_def=DAILY, backfill_policy=dg.BackfillPolicy.single_run()
    )
    checks = [
        build_partition_has_data_check(
            asset, table="meter_1h", partitions_def=DAILY, min_rows=min_rows
        ),
        build_no_nulls_check(asset, table="meter_1h", column="kwh_sum", partitions_def=DAILY),
        build_value_range_check(
            asset,
            table="meter_1h",
            column="kwh_sum",
            min_value=0,
            max_value=4,
            partitions_def=DAILY,
        ),
    ]
    return asset, checks


def test_a_range_run_records_each_partitions_own_row_count(
    influx: InfluxDB3Resource, two_days: str
) -> None:
    asset, _ = build()
    result = dg.materialize([asset], resources={"influxdb": influx}, tags=RANGE)
    assert result.success
    mats = {
        m.partition: dict(m.metadata) for m in result.asset_materializations_for_node("meter_1h")
    }
    assert sorted(mats) == ["2024-01-01", "2024-01-02", "2024-01-03"]
    counts = {key: meta["dagster/partition_row_count"].value for key, meta in mats.items()}
    assert counts == {"2024-01-01": 24, "2024-01-02": 0, "2024-01-03": 24}
    assert mats["2024-01-02"]["time_range"].value == "[2024-01-02T00:00:00Z, 2024-01-03T00:00:00Z)"
    # run-wide facts are the same on every partition and say what they cover
    for meta in mats.values():
        assert meta["rows_in_range"].value == 48
        assert meta["rows_by_partition"].value == counts
        assert meta["query_params"].value == {
            "start": "2024-01-01T00:00:00Z",
            "end": "2024-01-04T00:00:00Z",
        }


def test_a_single_partition_keeps_dagsters_single_key_convention(
    influx: InfluxDB3Resource, two_days: str
) -> None:
    asset, _ = build()
    result = dg.materialize([asset], resources={"influxdb": influx}, partition_key="2024-01-03")
    (mat,) = result.asset_materializations_for_node("meter_1h")
    assert mat.metadata["dagster/partition_row_count"].value == 24
    assert "rows_by_partition" not in mat.metadata


def test_checks_in_a_range_run_fail_with_the_failing_partitions(
    influx: InfluxDB3Resource, two_days: str
) -> None:
    asset, checks = build(min_rows=24)
    result = dg.materialize(
        [asset, *checks], resources={"influxdb": influx}, tags=RANGE, raise_on_error=False
    )
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    has_data = evals["partition_has_data"]
    assert not has_data.passed  # 48 rows over the range, but 0 on 2024-01-02
    assert has_data.metadata["failed_partitions"].value == ["2024-01-02"]
    assert has_data.metadata["partitions_checked"].value == 3
    by_partition = has_data.metadata["by_partition"].value
    assert {k: v["rows"] for k, v in by_partition.items()} == {
        "2024-01-01": 24,
        "2024-01-02": 0,
        "2024-01-03": 24,
    }
    assert "2024-01-02" in (has_data.description or "")
    # the other two checks judge each day too: an empty day has no nulls and nothing outside
    assert evals["no_nulls_kwh_sum"].passed
    assert evals["kwh_sum_in_range"].passed
    assert evals["kwh_sum_in_range"].metadata["partitions_checked"].value == 3


def test_value_check_names_the_one_bad_partition(
    influx: InfluxDB3Resource, two_days: str, standin: Any
) -> None:
    ts = int(datetime(2024, 1, 3, 5, 30, tzinfo=UTC).timestamp()) * 10**9
    standin.write_lp(two_days, f"meter,site=a kwh=99.0 {ts}")  # one hour of Jan 3 sums high
    asset, checks = build(min_rows=1)
    result = dg.materialize(
        [asset, checks[2]], resources={"influxdb": influx}, tags=RANGE, raise_on_error=False
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.metadata["failed_partitions"].value == ["2024-01-03"]
    assert evaluation.metadata["by_partition"].value["2024-01-03"]["rows_outside"] == 1
