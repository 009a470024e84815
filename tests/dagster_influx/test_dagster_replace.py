"""Unpartitioned outputs replace their table; `write_mode: append` keeps the old rows.

The user's scenario: an unpartitioned asset materialised with 5 rows, then re-materialised with
2; its consumer read 5. Peer IO managers (DuckDB, Snowflake, BigQuery) replace the table.
"""

from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from dagster_influx import InfluxDB3IOManager, InfluxDB3Resource

START_NS = 1_700_000_000_000_000_000


def build(rows: list[int], **metadata: Any) -> list[dg.AssetsDefinition]:
    @dg.asset(io_manager_key="influx_io", metadata={"tags": ["site"], **metadata})
    def readings() -> pa.Table:
        return pa.table(
            {
                "time": pa.array([START_NS + i * 10**9 for i in rows], pa.timestamp("ns", "UTC")),
                "site": ["a"] * len(rows),
                "value": [float(i) for i in rows],
            }
        )

    @dg.asset
    def consumer(readings: pa.Table) -> int:
        return readings.num_rows

    return [readings, consumer]


def run(influx: InfluxDB3Resource, assets: list[dg.AssetsDefinition]) -> dg.ExecuteInProcessResult:
    result = dg.materialize(assets, resources={"influx_io": InfluxDB3IOManager(influxdb=influx)})
    assert result.success
    return result


def test_rematerialising_replaces_the_table(influx: InfluxDB3Resource) -> None:
    first = run(influx, build([0, 1, 2, 3, 4]))
    assert first.output_for_node("consumer") == 5
    (mat,) = first.asset_materializations_for_node("readings")
    assert mat.metadata["write_mode"].value == "replace"
    assert mat.metadata["replaced_existing_table"].value is False  # nothing there yet

    second = run(influx, build([0, 1]))
    assert second.output_for_node("consumer") == 2  # not 5: the old rows are gone
    (mat,) = second.asset_materializations_for_node("readings")
    assert mat.metadata["replaced_existing_table"].value is True
    assert mat.metadata["dagster/row_count"].value == 2


def test_append_mode_keeps_the_old_rows(influx: InfluxDB3Resource) -> None:
    run(influx, build([0, 1, 2, 3, 4], write_mode="append"))
    again = run(influx, build([0, 1], write_mode="append"))
    assert again.output_for_node("consumer") == 5  # upserted onto the stored rows


def test_bad_output_is_refused_before_the_table_is_dropped(influx: InfluxDB3Resource) -> None:
    run(influx, build([0, 1, 2]))
    bad = build([0], tags=["no_such_column"])
    result = dg.materialize(
        bad[:1], resources={"influx_io": InfluxDB3IOManager(influxdb=influx)}, raise_on_error=False
    )
    assert not result.success
    error = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "no_such_column" in error
    with dg.build_resources({"influxdb": influx}) as res:  # the old rows are still there
        stored = res.influxdb.query("SELECT count(*) AS n FROM readings")
    assert stored.column("n").to_pylist() == [3]


def test_replace_is_refused_for_partitions(influx: InfluxDB3Resource) -> None:
    daily = dg.DailyPartitionsDefinition(start_date="2023-11-14")

    @dg.asset(
        partitions_def=daily,
        io_manager_key="influx_io",
        metadata={"partition_expr": "time", "write_mode": "replace"},
    )
    def parts() -> pa.Table:
        return pa.table({"time": pa.array([START_NS], pa.timestamp("ns", "UTC")), "v": [1.0]})

    with pytest.raises(Exception, match="cannot delete a time range"):
        dg.materialize(
            [parts],
            resources={"influx_io": InfluxDB3IOManager(influxdb=influx)},
            partition_key="2023-11-14",
        )


def test_loading_a_table_longer_than_cores_file_limit_reads_bounded_windows(
    influx: InfluxDB3Resource,
) -> None:
    """Four days at 10-minute steps: one `SELECT *` would scan 576 files (Core's limit: 432)."""
    steps = 4 * 24 * 6
    run_result = run(influx, build([i * 600 for i in range(steps)]))
    assert run_result.output_for_node("consumer") == steps
    (mat,) = run_result.asset_materializations_for_node("readings")
    assert mat.metadata["stored_time_range"].value == {
        "min_ns": START_NS,
        "max_ns": START_NS + (steps - 1) * 600 * 10**9,
    }
    # what the load used to send:
    with (
        dg.build_resources({"influxdb": influx}) as res,
        pytest.raises(Exception, match="file limit"),
    ):
        res.influxdb.query("SELECT * FROM readings")


def test_append_mode_loads_and_counts_stay_within_cores_file_limit(
    standin_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Appends of 3 days + 3 more days (6 days: 864 ten-minute files, Core's limit 432): the
    load reads the recorded union range in 48h windows; fail_if_exists counts the same way."""
    server = standin_factory(query_file_limit=432)
    monkeypatch.setenv("INFLUXDB3_AUTH_TOKEN", server.token)
    influx = InfluxDB3Resource(
        host=server.flight_uri, database="appends", token=dg.EnvVar("INFLUXDB3_AUTH_TOKEN")
    )
    day = 24 * 6
    first = [i * 600 for i in range(3 * day)]
    second = [(3 * day + i) * 600 for i in range(3 * day)]
    with dg.instance_for_test() as instance:
        resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
        for rows in (first, second):
            result = dg.materialize(
                build(rows, write_mode="append"), resources=resources, instance=instance
            )
            assert result.success
        assert result.output_for_node("consumer") == 6 * day  # old rows kept, all loaded
        (mat,) = result.asset_materializations_for_node("readings")
        assert mat.metadata["stored_time_range"].value == {
            "min_ns": START_NS,
            "max_ns": START_NS + (6 * day - 1) * 600 * 10**9,
        }
        with (
            dg.build_resources({"influxdb": influx}) as res,
            pytest.raises(Exception, match="file limit"),
        ):
            res.influxdb.query("SELECT * FROM readings")  # what the load used to send

        refused = dg.materialize(
            build([0], write_mode="fail_if_exists"),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not refused.success
        message = str(refused.get_step_failure_events()[0].event_specific_data.error)
        assert f"{6 * day} rows already stored" in message

    # a table with rows but no recorded range (written outside Dagster) is refused, not scanned
    with dg.instance_for_test() as fresh:
        refused = dg.materialize(
            build([0], write_mode="fail_if_exists"),
            resources=resources,
            instance=fresh,
            raise_on_error=False,
        )
    assert not refused.success
    message = str(refused.get_step_failure_events()[0].event_specific_data.error)
    assert "already exists and no materialisation of this asset recorded" in message
