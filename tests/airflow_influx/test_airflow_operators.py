"""Operators, sensor and trigger against the stand-in (execute() called directly; no DB needed)."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from unittest.mock import ANY

import pytest

pytest.importorskip("airflow")

from af_compat import AirflowFailException, TaskDeferred
from af_dagrun import first_event
from af_testdata import HOME_HOURS, ROOMS, home_points
from airflow_influx.operators.influxdb3 import (
    InfluxDB3DownsampleOperator,
    InfluxDB3QueryOperator,
    InfluxDB3ToParquetOperator,
)
from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor
from airflow_influx.triggers.influxdb3 import InfluxDB3SensorTrigger

PER_ROOM = HOME_HOURS * 6
INTERVAL = {
    "data_interval_start": datetime(2022, 1, 1, 8, tzinfo=UTC),
    "data_interval_end": datetime(2022, 1, 1, 10, tzinfo=UTC),
}


class _OutletEvents:
    """Stands in for Airflow's outlet-event accessor: records ``add(asset, extra)`` and ``extra``
    per outlet (Assets are not hashable on Airflow 3.0, hence no dict)."""

    def __init__(self) -> None:
        self._items: list[tuple[Any, Any]] = []

    def __getitem__(self, key: Any) -> Any:
        for known, accessor in self._items:
            if known == key:
                return accessor
        accessor = _Accessor()
        self._items.append((key, accessor))
        return accessor

    def values(self) -> list[Any]:
        return [accessor for _, accessor in self._items]


class _Accessor:
    def __init__(self) -> None:
        self.added: list[tuple[Any, dict]] = []

        self.extra: dict = {}

    def add(self, asset: Any, extra: dict | None = None) -> None:
        self.added.append((asset, extra or {}))


# --- InfluxDB3QueryOperator ------------------------------------------------------------------


def test_query_operator_pushes_json_safe_rows(home_db: str, default_conn: Any) -> None:
    op = InfluxDB3QueryOperator(
        task_id="q",
        query="SELECT time, room, temp FROM home WHERE room = $room ORDER BY time LIMIT 2",
        query_params={"room": "Kitchen"},
    )
    rows = op.execute(context={})
    assert rows == [
        {"time": "2022-01-01T08:00:00Z", "room": "Kitchen", "temp": 21.0},
        {"time": "2022-01-01T08:10:00Z", "room": "Kitchen", "temp": 21.1},
    ]


def test_query_operator_influxql_file_extension_sets_language(
    home_db: str, default_conn: Any
) -> None:
    op = InfluxDB3QueryOperator(task_id="q", query="queries/x.influxql")
    assert op.language == "influxql"
    assert ".influxql" in op.template_ext and ".sql" in op.template_ext
    assert {"query", "query_params", "language", "influxdb3_conn_id", "database"} <= set(
        op.template_fields
    )


def test_query_operator_row_limit_points_to_parquet_operator(
    home_db: str, default_conn: Any
) -> None:
    op = InfluxDB3QueryOperator(task_id="q", query="SELECT * FROM home", max_rows=5)
    with pytest.raises(
        AirflowFailException, match=r"more than max_rows=5 rows.*Use InfluxDB3ToParquetOperator"
    ):
        op.execute(context={})


def test_query_error_fails_fast_with_the_server_message(home_db: str, default_conn: Any) -> None:
    op = InfluxDB3QueryOperator(task_id="q", query="SELECT nope FROM home")
    with pytest.raises(AirflowFailException, match=r"^QueryError: .*nope"):
        op.execute(context={})


# --- InfluxDB3ToParquetOperator ------------------------------------------------------------


def test_parquet_export_pushes_path_rows_bytes_and_asset_events(
    home_db: str, default_conn: Any, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    target = tmp_path / "2022-01-01" / "home.parquet"
    op = InfluxDB3ToParquetOperator(
        task_id="export",
        query="SELECT * FROM home ORDER BY time",
        output_path=target.as_uri(),
        compression="snappy",
        row_group_size=10,
    )
    # One Asset for the destination directory, known at parse time (not one per file).
    assert [a.uri for a in op.outlets] == [target.parent.as_uri()]
    events = _OutletEvents()
    out = op.execute(context={"outlet_events": events})
    assert out["rows"] == 2 * PER_ROOM
    assert out["path"] == target.as_uri()
    assert out["bytes"] == target.stat().st_size
    meta = pq.ParquetFile(target).metadata
    assert meta.num_rows == 2 * PER_ROOM
    assert meta.num_row_groups == -(-2 * PER_ROOM // 10)
    assert meta.row_group(0).column(0).compression == "SNAPPY"
    (asset_events,) = events.values()
    assert asset_events.added == []
    assert asset_events.extra == {
        "destination": target.parent.as_uri(),
        "path": target.as_uri(),
        "rows": 2 * PER_ROOM,
        "bytes": target.stat().st_size,
        "files": [target.as_uri()],
    }


def test_parquet_export_one_file_per_window(
    home_db: str, default_conn: Any, tmp_path: Path
) -> None:
    import pyarrow.parquet as pq

    op = InfluxDB3ToParquetOperator(
        task_id="export",
        query="SELECT * FROM home",
        output_path=str(tmp_path / "hourly"),
        split_by="1h",
        asset=False,
    )
    assert op.outlets == []
    out = op.execute(context={})
    files = sorted((tmp_path / "hourly").iterdir())
    assert len(files) == HOME_HOURS == len(out["files"])
    assert [pq.read_metadata(f).num_rows for f in files] == [2 * 6] * HOME_HOURS
    assert out["files"][0]["window_start"] == "2022-01-01T08:00:00Z"


def test_on_kill_cancels_the_running_export_and_leaves_nothing(
    standin: Any, influx_db: str, default_conn: Any, tmp_path: Path
) -> None:
    standin.write_lp(influx_db, "m v=1 1\n")
    op = InfluxDB3ToParquetOperator(
        task_id="big",
        query="SELECT value FROM range(0, 500000000) AS t(value)",
        output_path=str(tmp_path / "big.parquet"),
        asset=False,
    )
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context={})
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    deadline = time.monotonic() + 30
    while op._hook is None or op._hook._client is None:  # wait until the stream is open
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.5)
    op.on_kill()
    worker.join(30)
    assert not worker.is_alive()
    assert len(errors) == 1 and "QueryCancelledError" in str(errors[0]), errors
    assert list(tmp_path.iterdir()) == []


# --- InfluxDB3DownsampleOperator ----------------------------------------------------------------


def test_downsample_with_spec_dict_over_the_data_interval(
    home_db: str, default_conn: Any, standin: Any
) -> None:
    op = InfluxDB3DownsampleOperator(
        task_id="ds",
        spec={
            "source": "home",
            "window": "30m",
            "aggregates": {"temp": ["max"]},
            "group_by": ["room"],
            "target_measurement": "home_30m",
        },
    )
    out = op.execute(context=INTERVAL)
    assert out["rows_read"] == out["rows_written"] == 4 * len(ROOMS)
    assert (out["start"], out["end"]) == ("2022-01-01T08:00:00Z", "2022-01-01T10:00:00Z")
    rows = standin.engine.query_sql(
        home_db, "SELECT * FROM home_30m ORDER BY room, time"
    ).read_all()
    first = rows.to_pylist()[0]
    expected = max(
        p["temp"]
        for p in home_points()
        if p["room"] == "Kitchen" and p["time"] < datetime(2022, 1, 1, 8, 30, tzinfo=UTC)
    )
    assert first["temp_max"] == pytest.approx(expected)


def test_downsample_with_raw_influxql_query(home_db: str, default_conn: Any, standin: Any) -> None:
    op = InfluxDB3DownsampleOperator(
        task_id="ds",
        query="SELECT mean(temp) AS temp_mean FROM home WHERE time >= $start AND time < $end "
        "GROUP BY time(1h), room",
        language="influxql",
        target_measurement="home_raw_1h",
        target_tags=["room"],
    )
    out = op.execute(context=INTERVAL)
    assert out["rows_read"] == out["rows_written"] == 2 * len(ROOMS)
    table = standin.engine.query_sql(home_db, "SELECT * FROM home_raw_1h").read_all()
    assert sorted(table.column_names) == ["room", "temp_mean", "time"]


def test_downsample_needs_exactly_one_of_spec_or_query() -> None:
    with pytest.raises(ValueError, match=r"needs exactly one of spec= .* or query="):
        InfluxDB3DownsampleOperator(task_id="ds")
    with pytest.raises(ValueError, match=r"query= needs target_measurement="):
        InfluxDB3DownsampleOperator(task_id="ds", query="SELECT 1")


def test_downsample_without_interval_says_what_to_pass(home_db: str, default_conn: Any) -> None:
    op = InfluxDB3DownsampleOperator(task_id="ds", query="SELECT 1", target_measurement="x")
    # A configuration error: fails without retries (AirflowFailException), says what to change.
    with pytest.raises(
        AirflowFailException, match=r"no interval to downsample.*Pass start= and end="
    ):
        op.execute(context={})


# --- InfluxDB3Sensor and its trigger ----------------------------------------------------------


def test_sensor_poke_rows_and_value_checks(home_db: str, default_conn: Any) -> None:
    count = "SELECT count(*) FROM home WHERE room = $room"
    kitchen = {"room": "Kitchen"}
    assert (
        InfluxDB3Sensor(
            task_id="s", query=count, query_params=kitchen, value_op=">=", value=PER_ROOM
        )
        .poke({})
        .is_done
    )
    assert (
        not InfluxDB3Sensor(
            task_id="s", query=count, query_params=kitchen, value_op=">", value=PER_ROOM
        )
        .poke({})
        .is_done
    )
    assert (
        not InfluxDB3Sensor(task_id="s", query="SELECT * FROM home WHERE temp > 100")
        .poke({})
        .is_done
    )
    result = InfluxDB3Sensor(task_id="s", query="SELECT * FROM home", min_rows=3).poke({})
    assert result.is_done
    assert (
        InfluxDB3Sensor(task_id="s", query=count, query_params=kitchen, check=lambda v: v % 2 == 1)
        .poke({})
        .is_done
        is False
    )


def test_sensor_influxql_value_skips_measurement_and_time(home_db: str, default_conn: Any) -> None:
    sensor = InfluxDB3Sensor(
        task_id="s",
        query="SELECT count(temp) FROM home",
        language="influxql",
        value_op="==",
        value=2 * PER_ROOM,
    )
    outcome = sensor.poke({})
    assert outcome.is_done and outcome.xcom_value == 2 * PER_ROOM


def test_sensor_rejects_bad_conditions() -> None:
    with pytest.raises(ValueError, match=r"value_op must be one of truthy, ==, !=, >, >=, <, <="):
        InfluxDB3Sensor(task_id="s", query="SELECT 1", value_op="~", value=1)
    with pytest.raises(ValueError, match=r"min_rows must be an integer >= 1"):
        InfluxDB3Sensor(task_id="s", query="SELECT 1", min_rows=0)


def test_sensor_bad_token_fails_fast(home_db: str, default_conn: Any) -> None:
    default_conn(token="apiv3_wrong-token-here")
    with pytest.raises(AirflowFailException, match=r"^AuthenticationError: "):
        InfluxDB3Sensor(task_id="s", query="SELECT 1").poke({})


def test_deferrable_sensor_defers_then_trigger_fires_when_data_arrives(
    standin: Any, influx_db: str, default_conn: Any
) -> None:
    sensor = InfluxDB3Sensor(
        task_id="s",
        query="SELECT count(*) FROM late",
        value_op=">=",
        value=2,
        deferrable=True,
        poke_interval=0.1,
        timeout=60,
    )
    standin.write_lp(influx_db, "late v=1 1\n")
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context={})
    trigger = deferred.value.trigger
    assert isinstance(trigger, InfluxDB3SensorTrigger)
    assert deferred.value.method_name == "execute_complete"
    classpath, kwargs = trigger.serialize()
    assert classpath == "airflow_influx.triggers.influxdb3.InfluxDB3SensorTrigger"
    rebuilt = InfluxDB3SensorTrigger(**kwargs)

    async def run_until_event() -> Any:
        gen = rebuilt.run()
        task = asyncio.ensure_future(gen.__anext__())
        await asyncio.sleep(0.5)
        assert not task.done()  # one row so far: still waiting
        await asyncio.to_thread(standin.write_lp, influx_db, "late v=2 2\n")
        event = await asyncio.wait_for(task, 30)
        await gen.aclose()
        return event

    event = asyncio.run(run_until_event())
    assert event.payload == {
        "status": "success",
        "rows": 1,
        "value": 2,
        "checks": ANY,
        "started": ANY,
    }
    assert sensor.execute_complete(context={}, event=event.payload) == 2


def test_trigger_reports_permanent_errors(home_db: str, default_conn: Any) -> None:
    trigger = InfluxDB3SensorTrigger(
        influxdb3_conn_id="influxdb3_flight_default",
        query="SELECT nope FROM home",
        poke_interval=0.1,
    )
    payload = asyncio.run(first_event(trigger))
    assert payload["status"] == "error"
    assert payload["message"].startswith("QueryError: ")


def test_parquet_export_to_an_fsspec_url_airflow_has_no_filesystem_for(
    home_db: str, default_conn: Any
) -> None:
    import fsspec

    from influx_flight import read_parquet

    op = InfluxDB3ToParquetOperator(
        task_id="export_mem",
        query="SELECT * FROM home WHERE room = 'Kitchen'",
        output_path="memory://af-exports/kitchen.parquet",
    )
    out = op.execute(context={"outlet_events": _OutletEvents()})
    fs = fsspec.filesystem("memory")
    assert read_parquet("memory://af-exports/kitchen.parquet").num_rows == PER_ROOM == out["rows"]
    fs.rm("/af-exports", recursive=True)


def test_downsample_raw_query_over_an_empty_interval_writes_nothing(
    home_db: str, default_conn: Any
) -> None:
    op = InfluxDB3DownsampleOperator(
        task_id="ds",
        query="SELECT time, room, temp FROM home WHERE time >= $start AND time < $end",
        target_measurement="nothing_here",
        target_tags=["room"],
        start="2030-01-01T00:00:00Z",
        end="2030-01-01T01:00:00Z",
    )
    out = op.execute(context={})
    assert (out["rows_read"], out["rows_written"]) == (0, 0)
    assert (out["start"], out["end"]) == ("2030-01-01T00:00:00Z", "2030-01-01T01:00:00Z")


def test_downsample_bad_start_says_what_format() -> None:
    op = InfluxDB3DownsampleOperator(
        task_id="ds", query="SELECT 1", target_measurement="x", start="yesterday", end="now"
    )
    with pytest.raises(
        AirflowFailException, match=r"start='yesterday' is not an ISO-8601 date-time"
    ):
        op.execute(context={})


def test_trigger_gives_up_after_its_timeout(home_db: str, default_conn: Any) -> None:
    trigger = InfluxDB3SensorTrigger(
        influxdb3_conn_id="influxdb3_flight_default",
        query="SELECT * FROM home WHERE temp > 1000",
        poke_interval=0.1,
        timeout=0.5,
    )
    payload = asyncio.run(first_event(trigger))
    assert payload == {
        "status": "timeout",
        "message": "no matching data after 0.5 s",
        "checks": ANY,
    }
    from af_compat import AirflowSensorTimeout

    sensor = InfluxDB3Sensor(task_id="s", query="SELECT 1", deferrable=True, timeout=0.5)
    with pytest.raises(AirflowSensorTimeout, match=r"not met within timeout=0.5 s"):
        sensor.execute_complete(context={}, event=payload)


def test_downsample_empty_data_interval_points_to_the_timetable() -> None:
    op = InfluxDB3DownsampleOperator(task_id="ds", query="SELECT 1", target_measurement="x")
    instant = datetime(2022, 1, 1, 9, tzinfo=UTC)
    with pytest.raises(
        AirflowFailException, match=r"data interval is empty.*CronDataIntervalTimetable"
    ):
        op.execute(context={"data_interval_start": instant, "data_interval_end": instant})


@pytest.mark.parametrize(
    ("output_path", "asset_uri"),
    [
        ("s3://aws_default@bucket/home/{{ ds }}/x.parquet", "s3://bucket/home"),
        ("file:///data/x/{{ ds }}/cpu.parquet", "file:///data/x"),
        ("s3://{{ var.value.bucket }}/x.parquet", None),  # only the scheme is fixed
        ("{{ var.value.base }}/x.parquet", None),
    ],
)
def test_parquet_export_outlet_is_the_fixed_prefix_of_a_templated_path(
    output_path: str, asset_uri: str | None
) -> None:
    from airflow.sdk import Asset, AssetAlias
    from airflow_influx.operators.influxdb3 import InfluxDB3ToParquetOperator

    op = InfluxDB3ToParquetOperator(task_id="t", sql="SELECT 1", output_path=output_path)
    (outlet,) = op.outlets
    if asset_uri is None:
        assert isinstance(outlet, AssetAlias)
    else:
        assert not isinstance(outlet, AssetAlias)
        assert outlet.uri == Asset(uri=asset_uri).uri
