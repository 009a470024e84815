"""Observable source and partition-scoped asset checks against the stand-in."""

from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import pytest
from dagster_support import hour

from dagster_influx import (
    InfluxDB3Resource,
    build_no_nulls_check,
    build_partition_has_data_check,
    build_table_observation,
    build_value_range_check,
    fetch_last_updated_timestamps,
)
from influx_flight.time import format_time

ONE_MINUTE = timedelta(minutes=1)
HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", end_date="2026-01-01-12:00")


def test_fetch_last_updated_timestamps(influx: InfluxDB3Resource, seeded: str) -> None:
    with dg.build_resources({"influxdb": influx}) as res:
        latest = fetch_last_updated_timestamps(res.influxdb, ["cpu", "nosuch"], since=hour(0))
    assert latest == {"cpu": hour(4) - ONE_MINUTE, "nosuch": None}


def test_observation_reports_latest_time_in_the_lookback_as_data_version(
    influx: InfluxDB3Resource, db_name: str, standin: Any
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)

    def write(when: datetime) -> None:
        standin.write_lp(db_name, f"fresh,host=a v=1.0 {int(when.timestamp()) * 10**9}")

    write(now - timedelta(days=30))  # outside the 2-day lookback: never read
    fresh = build_table_observation("fresh", key=["telegraf", "fresh"], database=db_name)
    assert fresh.key == dg.AssetKey(["telegraf", "fresh"])
    defs = dg.Definitions(assets=[fresh], resources={"influxdb": influx})
    job = defs.resolve_implicit_global_asset_job_def()

    def observe() -> dg.AssetObservation:
        with dg.instance_for_test() as instance:
            result = job.execute_in_process(instance=instance)
            assert result.success
            (obs,) = [
                e.event_specific_data.asset_observation
                for e in result.all_events
                if e.event_type_value == "ASSET_OBSERVATION"
            ]
            return obs

    nothing = observe()  # nothing within the lookback: no new data version claimed
    assert "dagster/data_version" not in nothing.tags
    assert nothing.metadata["latest_time"].value.startswith("no rows since ")

    write(now - timedelta(hours=1))
    first = observe()
    assert first.tags["dagster/data_version"] == format_time(now - timedelta(hours=1))
    assert (
        first.metadata["dagster/last_updated_timestamp"].value
        == (now - timedelta(hours=1)).timestamp()
    )

    write(now - timedelta(minutes=5))
    assert observe().tags["dagster/data_version"] == format_time(now - timedelta(minutes=5))


def _checks_result(
    influx: InfluxDB3Resource, checks: list[dg.AssetChecksDefinition], partition_key: str
) -> dict[str, Any]:
    @dg.asset(key="cpu", partitions_def=HOURLY)
    def cpu() -> None:
        """Stands for the asset that fills the raw table."""

    result = dg.materialize(
        [cpu, *checks], resources={"influxdb": influx}, partition_key=partition_key
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_checks_pass_on_a_good_partition(influx: InfluxDB3Resource, seeded: str) -> None:
    checks = [
        build_partition_has_data_check("cpu", table="cpu", partitions_def=HOURLY, min_rows=120),
        build_no_nulls_check("cpu", table="cpu", column="usage", partitions_def=HOURLY),
        build_value_range_check(
            "cpu", table="cpu", column="usage", min_value=0, max_value=99, partitions_def=HOURLY
        ),
    ]
    evals = _checks_result(influx, checks, "2026-01-01-02:00")
    assert {name: e.passed for name, e in evals.items()} == {
        "partition_has_data": True,
        "no_nulls_usage": True,
        "usage_in_range": True,
    }
    meta = evals["partition_has_data"].metadata
    assert meta["rows"].value == 120
    assert meta["time_range"].value == "[2026-01-01T02:00:00Z, 2026-01-01T03:00:00Z)"
    assert evals["usage_in_range"].metadata["observed_max"].value <= 99


def test_checks_fail_with_the_numbers(influx: InfluxDB3Resource, seeded: str, standin: Any) -> None:
    t = int(hour(1).timestamp()) * 10**9
    # a point without `usage` (only `load`) and one out of range, inside 01:00-02:00
    standin.write_lp(
        seeded, f"cpu,host=gamma,region=eu load=3i {t}\ncpu,host=delta usage=250.0 {t}"
    )
    checks = [
        build_partition_has_data_check("cpu", table="cpu", partitions_def=HOURLY),
        build_no_nulls_check("cpu", table="cpu", column="usage", partitions_def=HOURLY),
        build_value_range_check(
            "cpu", table="cpu", column="usage", max_value=100.0, partitions_def=HOURLY
        ),
    ]
    evals = _checks_result(influx, checks, "2026-01-01-01:00")
    assert evals["partition_has_data"].passed
    nulls = evals["no_nulls_usage"]
    assert not nulls.passed
    assert nulls.metadata["null_rows"].value == 1
    assert nulls.severity == dg.AssetCheckSeverity.ERROR
    in_range = evals["usage_in_range"]
    assert not in_range.passed
    assert in_range.metadata["rows_outside"].value == 1
    assert in_range.metadata["observed_max"].value == 250.0
    assert in_range.severity == dg.AssetCheckSeverity.WARN

    # an hour without data (and a table that does not exist) fail the arrival check
    evals = _checks_result(influx, checks[:1], "2026-01-01-08:00")
    assert not evals["partition_has_data"].passed
    assert evals["partition_has_data"].metadata["rows"].value == 0
    missing = build_partition_has_data_check(
        "cpu", table="never_written", partitions_def=HOURLY, name="never"
    )
    assert not _checks_result(influx, [missing], "2026-01-01-01:00")["never"].passed


def test_check_arguments_are_validated() -> None:
    with pytest.raises(ValueError, match="needs min_value, max_value or both"):
        build_value_range_check("cpu", table="cpu", column="usage")
    with pytest.raises(ValueError, match="greater than max_value"):
        build_value_range_check("cpu", table="cpu", column="usage", min_value=5, max_value=1)
    with pytest.raises(TypeError, match="time-window partitions"):
        build_no_nulls_check(
            "cpu", table="cpu", column="u", partitions_def=dg.StaticPartitionsDefinition(["a"])
        )
    with pytest.raises(ValueError, match="min_rows must be at least 1"):
        build_partition_has_data_check("cpu", table="cpu", min_rows=0)


def test_unpartitioned_checks_can_be_bounded_by_a_lookback(
    influx: InfluxDB3Resource, db_name: str, standin: Any
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    old, recent = now - timedelta(days=10), now - timedelta(hours=1)
    standin.write_lp(
        db_name,
        "\n".join(
            f"meter,site=a kwh={v} {int(t.timestamp()) * 10**9}"
            for t, v in ((old, 500.0), (recent, 1.0))
        ),
    )

    @dg.asset(key="meter")
    def meter() -> None:
        """Stands for the asset that fills the raw table."""

    checks = [
        build_partition_has_data_check("meter", table="meter", lookback="2d", min_rows=1),
        build_value_range_check("meter", table="meter", column="kwh", max_value=10, lookback="2d"),
        build_value_range_check(
            "meter", table="meter", column="kwh", max_value=10, name="whole_table", lookback=None
        ),
    ]
    result = dg.materialize([meter, *checks], resources={"influxdb": influx})
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["partition_has_data"].metadata["rows"].value == 1  # the old row is not read
    assert evals["kwh_in_range"].passed  # 500.0 lies outside the 2-day lookback
    assert not evals["whole_table"].passed
    assert evals["kwh_in_range"].metadata["time_range"].value.startswith("[")


def test_defaults_stay_under_cores_file_limit_on_four_days_of_data(
    influx: InfluxDB3Resource, db_name: str, standin: Any
) -> None:
    """A point every 10 minutes for 4 days: over Core's 432-file limit (72 h) unless bounded."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    times = [now - timedelta(minutes=10 * k) for k in range(1, 4 * 24 * 6 + 1)]
    standin.write_lp(
        db_name,
        "\n".join(f"long,site=a kwh=1.0 {int(t.timestamp()) * 10**9}" for t in times),
    )
    with dg.build_resources({"influxdb": influx}) as res:
        with pytest.raises(Exception, match="file limit"):  # the stand-in enforces Core's limit
            res.influxdb.query("SELECT max(time) FROM long", database=db_name)
        latest = fetch_last_updated_timestamps(res.influxdb, ["long"], database=db_name)
    assert latest == {"long": times[0]}

    @dg.asset(key="long")
    def long() -> None:
        """Stands for the asset that fills the raw table."""

    checks = [
        build_partition_has_data_check("long", table="long", database=db_name),
        build_value_range_check("long", table="long", column="kwh", max_value=10, database=db_name),
    ]
    result = dg.materialize([long, *checks], resources={"influxdb": influx})
    evals = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert evals["partition_has_data"].passed
    # the 48-hour lookback ends at the check's own "now": the oldest point may just drop out
    assert 48 * 6 - 1 <= evals["partition_has_data"].metadata["rows"].value <= 48 * 6
    assert evals["kwh_in_range"].passed
