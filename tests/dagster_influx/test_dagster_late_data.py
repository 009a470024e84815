"""Late data: per-partition data versions over a bounded lookback mark exactly one partition.

The user's scenario: the observation ran `SELECT max(time)` over the whole table (refused by
Core beyond ~72 hours of files) and its one data version was `max(time)`, so a late point in
an old window never marked anything stale. Now a late point written into 01:00-02:00 makes
that partition of the downstream rollup stale, and only that one; an automation condition
requests exactly that partition.
"""

from typing import Any

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._core.definitions.observe import observe as observe_sources
from dagster._utils.test.data_versions import get_stale_status_resolver
from dagster_support import hour

from dagster_influx import InfluxDB3Resource, build_downsample_asset, build_table_observation
from influx_flight import DownsampleSpec

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", end_date="2026-01-01-04:00")
KEYS = HOURLY.get_partition_keys()
SPEC = DownsampleSpec(
    source="cpu",
    window="10m",
    aggregates={"usage": ["mean", "count"]},
    group_by=["host"],
    target_measurement="cpu_10m",
)
REMATERIALISE = dg.AutomationCondition.any_deps_updated() & ~dg.AutomationCondition.in_progress()


def observations(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetObservation]:
    return {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }


@pytest.fixture
def setup(influx: InfluxDB3Resource, seeded: str) -> Any:
    raw = build_table_observation("cpu", partitions_def=HOURLY, lookback="6h")
    rollup = build_downsample_asset(SPEC, partitions_def=HOURLY, automation_condition=REMATERIALISE)
    defs = dg.Definitions(assets=[raw, rollup], resources={"influxdb": influx})
    return defs, raw, rollup


def observe(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[str, dg.AssetObservation]:
    """Run the observation as the UI's "Observe sources" does (an observation job)."""
    raw = defs.assets[0]  # type: ignore[index]
    result = observe_sources([raw], instance=instance, resources=dict(defs.resources or {}))
    assert result.success
    return observations(result)


def test_a_late_point_marks_exactly_its_partition_stale(
    setup: Any, standin: Any, seeded: str
) -> None:
    defs, _raw, rollup = setup
    assets = list(defs.assets or ())
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.instance_for_test() as instance:
        first = observe(defs, instance)
        assert sorted(first) == KEYS  # one version per partition, from one bounded query
        assert first["2026-01-01-01:00"].tags["dagster/data_version"] == (
            "120 rows, latest 2026-01-01T01:59:00Z"
        )
        assert first["2026-01-01-01:00"].metadata["rows"].value == 120
        for key in KEYS:
            assert job.execute_in_process(
                instance=instance, partition_key=key, asset_selection=[rollup.key]
            ).success
        cursor = dg.evaluate_automation_conditions(defs=defs, instance=instance).cursor

        observe(defs, instance)  # nothing changed: nothing is stale
        resolver = get_stale_status_resolver(instance, assets)
        assert {k: resolver.get_status(rollup.key, k) for k in KEYS} == dict.fromkeys(
            KEYS, StaleStatus.FRESH
        )

        late = int(hour(1).timestamp()) * 10**9 + 30 * 60 * 10**9  # 01:30, an old window
        standin.write_lp(seeded, f"cpu,host=gamma,region=eu usage=50.0,load=1i {late}")
        after = observe(defs, instance)
        assert after["2026-01-01-01:00"].tags["dagster/data_version"] == (
            "121 rows, latest 2026-01-01T01:59:00Z"
        )
        resolver = get_stale_status_resolver(instance, assets)
        statuses = {k: resolver.get_status(rollup.key, k) for k in KEYS}
        assert statuses == {
            "2026-01-01-00:00": StaleStatus.FRESH,
            "2026-01-01-01:00": StaleStatus.STALE,
            "2026-01-01-02:00": StaleStatus.FRESH,
            "2026-01-01-03:00": StaleStatus.FRESH,
        }

        tick = dg.evaluate_automation_conditions(defs=defs, instance=instance, cursor=cursor)
        assert tick.get_requested_partitions(rollup.key) == {"2026-01-01-01:00"}


def test_the_lookback_bounds_the_query(setup: Any, influx: InfluxDB3Resource) -> None:
    raw = build_table_observation("cpu", partitions_def=HOURLY, lookback="90m")
    defs = dg.Definitions(assets=[raw], resources={"influxdb": influx})
    with dg.instance_for_test() as instance:
        seen = observe(defs, instance)
    # the partitions end at 04:00: 90 minutes back reaches into 02:00-03:00, whole windows
    assert sorted(seen) == ["2026-01-01-02:00", "2026-01-01-03:00"]
    assert seen["2026-01-01-02:00"].metadata["rows"].value == 120


def test_lookback_and_partitions_are_validated() -> None:
    with pytest.raises(ValueError, match="lookback must be positive"):
        build_table_observation("cpu", lookback="0s")
    with pytest.raises(TypeError, match="time-window partitions"):
        build_table_observation("cpu", partitions_def=dg.StaticPartitionsDefinition(["a"]))
