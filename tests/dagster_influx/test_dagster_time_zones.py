"""Zoned partitions: alignment of every partition at build time, wall-clock buckets across DST.

The user's scenario: a Europe/London daily asset with 1-day buckets built, then failed on every
summer day (`start 2024-06-30T23:00:00Z` not aligned). Now a UTC-bucketed spec is refused when
the asset is built, naming a summer partition and the fix, and an InfluxQL spec in the
partitions' zone materialises a summer day and both DST-change days with the right buckets.
"""

import dataclasses
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import dagster as dg
import pytest

from dagster_influx import InfluxDB3Resource, build_downsample_asset, build_export_asset
from influx_flight import DownsampleSpec

LONDON = ZoneInfo("Europe/London")
LONDON_DAILY = dg.DailyPartitionsDefinition(
    start_date="2024-01-01", end_date="2025-01-01", timezone="Europe/London"
)
SPEC = DownsampleSpec(
    source="meter",
    window="1d",
    aggregates={"kwh": ["sum", "count"]},
    target_measurement="meter_1d",
    language="influxql",
    time_zone="Europe/London",
)


def _stored_counts(influx: InfluxDB3Resource) -> dict[datetime, int]:
    """meter_1d as stored: bucket start (UTC) -> readings counted in the bucket."""
    with dg.build_resources({"influxdb": influx}) as res:
        table = res.influxdb.query("SELECT time, kwh_count FROM meter_1d ORDER BY time")
    times = [t.astimezone(UTC) for t in table.column("time").to_pylist()]
    return dict(zip(times, table.column("kwh_count").to_pylist(), strict=True))


def test_utc_buckets_for_london_days_are_refused_when_building() -> None:
    utc_spec = DownsampleSpec(
        source="meter", window="1d", aggregates={"kwh": ["sum"]}, target_measurement="meter_1d"
    )
    with pytest.raises(ValueError) as err:
        build_downsample_asset(utc_spec, partitions_def=LONDON_DAILY)
    message = str(err.value)
    # the day the clocks go forward (23 hours, ending 23:00Z) is the first misaligned one
    assert "partition '2024-03-31' [2024-03-31T00:00:00Z, 2024-03-31T23:00:00Z)" in message
    assert "DownsampleSpec(time_zone='Europe/London')" in message


def test_every_partition_is_checked_not_just_the_first() -> None:
    # January is UTC+0 in London, so the first partitions align; a summer one does not
    winter_start = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="Europe/London")
    utc_spec = DownsampleSpec(
        source="meter", window="1d", aggregates={"kwh": ["sum"]}, target_measurement="m"
    )
    with pytest.raises(ValueError, match="partition '2024-03-31'"):
        build_downsample_asset(utc_spec, partitions_def=winter_start)


@pytest.mark.parametrize(
    "partitions_def",
    [
        dg.WeeklyPartitionsDefinition(start_date="2024-01-07", timezone="Europe/London"),
        dg.MonthlyPartitionsDefinition(start_date="2024-01-01", timezone="Europe/London"),
        dg.HourlyPartitionsDefinition(start_date="2024-01-01-00:00", timezone="Europe/London"),
    ],
    ids=["weekly", "monthly", "hourly"],
)
def test_zoned_weekly_monthly_hourly_partitions_with_wall_clock_days(
    partitions_def: dg.TimeWindowPartitionsDefinition,
) -> None:
    spec = SPEC if not partitions_def.cron_schedule.startswith("0 *") else None
    hourly = DownsampleSpec(
        source="meter",
        window="1h",
        aggregates={"kwh": ["sum"]},
        target_measurement="meter_1h",
        language="influxql",
        time_zone="Europe/London",
    )
    asset = build_downsample_asset(spec or hourly, partitions_def=partitions_def)
    assert asset.partitions_def == partitions_def


def test_weeks_that_do_not_hold_whole_weekly_buckets_are_refused() -> None:
    # InfluxQL 1w buckets start on Thursdays (the epoch); Dagster weeks start on Sundays
    spec = DownsampleSpec(
        source="meter", window="1w", aggregates={"kwh": ["sum"]}, target_measurement="m"
    )
    weekly = dg.WeeklyPartitionsDefinition(start_date="2024-01-07")
    with pytest.raises(ValueError, match=r"partition '2024-01-07'.*Choose a window that divides"):
        build_downsample_asset(spec, partitions_def=weekly)


def meter_lines(first: datetime, last: datetime) -> str:
    """A reading of 1 kWh every 30 minutes (UTC instants) over [first, last)."""
    lines, t = [], first
    while t < last:
        lines.append(f"meter,site=a kwh=1.0 {int(t.timestamp()) * 10**9}")
        t += timedelta(minutes=30)
    return "\n".join(lines)


@pytest.fixture
def london_data(standin: Any, db_name: str) -> str:
    spans = [
        (datetime(2024, 3, 30, tzinfo=UTC), datetime(2024, 4, 2, tzinfo=UTC)),  # spring DST
        (datetime(2024, 6, 30, tzinfo=UTC), datetime(2024, 7, 3, tzinfo=UTC)),  # summer
        (datetime(2024, 10, 26, tzinfo=UTC), datetime(2024, 10, 29, tzinfo=UTC)),  # autumn DST
    ]
    standin.write_lp(db_name, "\n".join(meter_lines(a, b) for a, b in spans))
    return db_name


@pytest.mark.parametrize("language", ["influxql", "sql"])
@pytest.mark.parametrize(
    ("day", "hours"),
    [("2024-07-01", 24), ("2024-03-31", 23), ("2024-10-27", 25)],
    ids=["summer", "spring-forward", "fall-back"],
)
def test_london_days_get_one_wall_clock_bucket_each(
    influx: InfluxDB3Resource, london_data: str, day: str, hours: int, language: str
) -> None:
    # InfluxQL tz() and SQL date_bin_wallclock(tz(time, zone)): the same wall-clock buckets
    spec = dataclasses.replace(SPEC, language=language)
    asset = build_downsample_asset(spec, partitions_def=LONDON_DAILY)
    result = dg.materialize([asset], resources={"influxdb": influx}, partition_key=day)
    assert result.success
    (mat,) = result.asset_materializations_for_node("meter_1d")
    assert mat.metadata["dagster/partition_row_count"].value == 1
    with dg.build_resources({"influxdb": influx}) as res:
        table = res.influxdb.query("SELECT time, kwh_sum, kwh_count FROM meter_1d ORDER BY time")
    midnight = datetime.fromisoformat(day).replace(tzinfo=LONDON)
    stored = {
        t.astimezone(UTC): (s, n)
        for t, s, n in zip(*(table.column(c).to_pylist() for c in table.column_names), strict=True)
    }
    # one bucket, at local midnight, holding the local day's readings (2 per hour)
    assert stored == {midnight.astimezone(UTC): (2.0 * hours, 2 * hours)}


def test_a_london_range_run_counts_each_local_day(
    influx: InfluxDB3Resource, london_data: str
) -> None:
    asset = build_downsample_asset(
        SPEC, partitions_def=LONDON_DAILY, backfill_policy=dg.BackfillPolicy.single_run()
    )
    tags = {
        "dagster/asset_partition_range_start": "2024-06-30",
        "dagster/asset_partition_range_end": "2024-07-03",
    }
    result = dg.materialize([asset], resources={"influxdb": influx}, tags=tags)
    assert result.success
    counts = {
        m.partition: m.metadata["dagster/partition_row_count"].value
        for m in result.asset_materializations_for_node("meter_1d")
    }
    # the data covers [06-30T00:00Z, 07-03T00:00Z): every local day of the range holds some
    assert counts == {"2024-06-30": 1, "2024-07-01": 1, "2024-07-02": 1, "2024-07-03": 1}
    stored = _stored_counts(influx)
    # buckets start at London midnight (23:00Z in summer) and hold that local day's readings
    assert stored == {
        datetime(2024, 6, 29, 23, tzinfo=UTC): 46,  # local day from 01:00 (data starts 00:00Z)
        datetime(2024, 6, 30, 23, tzinfo=UTC): 48,
        datetime(2024, 7, 1, 23, tzinfo=UTC): 48,
        datetime(2024, 7, 2, 23, tzinfo=UTC): 2,  # its first local hour only
    }


def test_alignment_is_checked_to_the_end_of_the_definition_not_the_first_400_days() -> None:
    # Pyongyang moved from UTC+9 to UTC+8:30 on 2015-08-15, 956 days after this start: every
    # local midnight is a whole UTC hour before that day and half past after it
    pyongyang = dg.DailyPartitionsDefinition(start_date="2013-01-01", timezone="Asia/Pyongyang")
    hourly_utc = DownsampleSpec(
        source="meter", window="1h", aggregates={"kwh": ["sum"]}, target_measurement="m"
    )
    with pytest.raises(ValueError, match=r"partition '2015-08-1[45]'"):
        build_downsample_asset(hourly_utc, partitions_def=pyongyang)
    before_the_change = dg.DailyPartitionsDefinition(
        start_date="2013-01-01", end_date="2015-08-01", timezone="Asia/Pyongyang"
    )
    assert build_downsample_asset(hourly_utc, partitions_def=before_the_change)


@pytest.mark.parametrize("factory", ["build_downsample_asset", "build_export_asset"])
def test_both_factories_sweep_the_whole_definition(factory: str, tmp_path: Path) -> None:
    """One sweep for both factories: a zone whose midnights leave whole UTC hours only after
    day 400 (Pyongyang, 2015-08-15, 591 days after this start) is refused by each, and the
    same definition ended before the change is accepted by each."""

    def build(partitions_def: dg.PartitionsDefinition) -> dg.AssetsDefinition:
        if factory == "build_export_asset":
            return build_export_asset(
                table="meter", destination=str(tmp_path), partitions_def=partitions_def
            )
        spec = DownsampleSpec(
            source="meter", window="1h", aggregates={"kwh": ["sum"]}, target_measurement="m"
        )
        return build_downsample_asset(spec, partitions_def=partitions_def)

    late_change = dg.DailyPartitionsDefinition(
        start_date="2014-01-01", end_date="2016-01-01", timezone="Asia/Pyongyang"
    )
    with pytest.raises(ValueError, match=rf"{factory}\(.*partition '2015-08-1[45]'"):
        build(late_change)
    before_the_change = dg.DailyPartitionsDefinition(
        start_date="2014-01-01", end_date="2015-08-01", timezone="Asia/Pyongyang"
    )
    assert build(before_the_change)


@pytest.mark.parametrize(
    ("cron", "window", "bad_key"),
    [
        ("0 * * * *", "7m", "2015-01-01-00:00"),  # 07:00 is not a multiple of 7 minutes
        ("*/15 * * * *", "10m", "2015-01-01-00:00"),  # the first window ends at 00:15
        ("30 * * * *", "1h", "2015-01-01-00:30"),  # offset 0 buckets start at :00
    ],
)
def test_fixed_period_utc_definitions_are_decided_exactly_and_fast(
    cron: str, window: str, bad_key: str
) -> None:
    # ~100 000+ partitions: decided by arithmetic (first boundary, period), not by iteration
    partitions = dg.TimeWindowPartitionsDefinition(
        start=bad_key, cron_schedule=cron, fmt="%Y-%m-%d-%H:%M"
    )
    spec = DownsampleSpec(
        source="s", window=window, aggregates={"v": ["mean"]}, target_measurement="t"
    )
    with pytest.raises(ValueError, match=f"partition '{bad_key}'"):
        build_downsample_asset(spec, partitions_def=partitions)
    fine = DownsampleSpec(
        source="s", window="5m", aggregates={"v": ["mean"]}, target_measurement="t"
    )
    if cron != "30 * * * *":
        assert build_downsample_asset(fine, partitions_def=partitions)


@pytest.mark.parametrize("language", ["influxql", "sql"])
def test_a_range_run_over_both_dst_changes_in_sql_and_influxql(
    influx: InfluxDB3Resource, london_data: str, language: str
) -> None:
    """Single-run ranges over the spring and autumn changes, 1-day chunks: bucket starts at
    London midnight (GMT and BST) and per-day counts of 23, 24 and 25 local hours."""
    spec = dataclasses.replace(SPEC, language=language)
    asset = build_downsample_asset(
        spec,
        partitions_def=LONDON_DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        chunk="1d",
    )
    for first, last in (("2024-03-30", "2024-04-01"), ("2024-10-26", "2024-10-28")):
        tags = {
            "dagster/asset_partition_range_start": first,
            "dagster/asset_partition_range_end": last,
        }
        result = dg.materialize([asset], resources={"influxdb": influx}, tags=tags)
        assert result.success
        counts = {
            m.partition: m.metadata["dagster/partition_row_count"].value
            for m in result.asset_materializations_for_node("meter_1d")
        }
        assert set(counts.values()) == {1}
    stored = _stored_counts(influx)
    assert stored == {
        datetime(2024, 3, 30, 0, tzinfo=UTC): 48,  # GMT midnight
        datetime(2024, 3, 31, 0, tzinfo=UTC): 46,  # spring forward: 23 local hours
        datetime(2024, 3, 31, 23, tzinfo=UTC): 48,  # BST midnight
        datetime(2024, 10, 25, 23, tzinfo=UTC): 46,  # data starts 01:00 local
        datetime(2024, 10, 26, 23, tzinfo=UTC): 50,  # fall back: 25 local hours
        datetime(2024, 10, 28, 0, tzinfo=UTC): 48,  # GMT midnight again
    }
