"""The example DAGs: they load cleanly, and each runs end to end with dag.test() against the
stand-in (AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT points at it); rows and files are checked.
"""

from __future__ import annotations

import logging
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")

from af_compat import sync_dags_to_db
from af_dagrun import (
    asset_events,
    asset_warnings,
    load_example_dag,
    load_user_dags,
    queued_dags,
    task_states,
    xcom,
)
from af_testdata import EXAMPLE_DAGS, HOME_START, ROOMS, USER_DAGS, home_points

# The run for logical date 09:00 covers the hour [08:00, 09:00) of the home-style data.
LOGICAL_DATE = datetime(2022, 1, 1, 9, tzinfo=UTC)
HOUR_START = HOME_START


def _expected_hour() -> dict[str, dict[str, float]]:
    """Per room, the aggregates of the hour [08:00, 09:00) computed in plain Python."""
    out: dict[str, dict[str, float]] = {}
    for room in ROOMS:
        pts = [
            p for p in home_points() if p["room"] == room and HOUR_START <= p["time"] < LOGICAL_DATE
        ]
        temps = [p["temp"] for p in pts]
        out[room] = {
            "temp_mean": statistics.fmean(temps),
            "temp_min": min(temps),
            "temp_max": max(temps),
            "hum_mean": statistics.fmean(p["hum"] for p in pts),
            "co_max": max(p["co"] for p in pts),
        }
    return out


def test_dagbag_imports_all_examples_without_errors(airflow_db: None) -> None:
    from af_compat import DagBag

    bag = DagBag(dag_folder=str(EXAMPLE_DAGS))
    assert bag.import_errors == {}
    ours = {d for d in bag.dag_ids if d.startswith("example_influxdb3_")}
    assert ours == {
        "example_influxdb3_downsample_sql",
        "example_influxdb3_downsample_influxql",
        "example_influxdb3_sql_checks",
        "example_influxdb3_fanout_backfill",
    }
    for dag_id in ours:
        dag = bag.get_dag(dag_id)
        assert dag.tags and "influxdb3" in dag.tags
        # Each run covers a whole hour whatever [scheduler] create_cron_data_intervals says
        # (a plain "@hourly" would give zero-length intervals under Airflow 3's defaults).
        from af_compat import CronDataIntervalTimetable

        assert isinstance(dag.timetable, CronDataIntervalTimetable), dag_id


def _check_downsample_run(
    dag_run: Any, standin: Any, db: str, table: str, export_base: Path, dag_id: str
) -> None:
    import pyarrow.parquet as pq

    states = task_states(dag_run)
    assert set(states.values()) == {"success"}, states

    downsampled = xcom(dag_run, "downsample_to_home_1h")
    assert downsampled["rows_read"] == len(ROOMS)
    assert downsampled["rows_written"] == len(ROOMS)
    assert downsampled["start"] == "2022-01-01T08:00:00Z"
    assert downsampled["end"] == "2022-01-01T09:00:00Z"

    # The 1-hour table holds one point per room, at the bucket start, with the right values.
    rows = (
        standin.engine.query_sql(db, f"SELECT * FROM {table} ORDER BY room").read_all().to_pylist()
    )
    expected = _expected_hour()
    assert [r["room"] for r in rows] == list(ROOMS)
    for row in rows:
        assert row["time"] == datetime(2022, 1, 1, 8)
        for key, value in expected[row["room"]].items():
            assert row[key] == pytest.approx(value), (row["room"], key)

    # The export: one file for the run's hour, reported in XCom with its size and row count.
    exported = xcom(dag_run, "export_hour_to_parquet")
    file = export_base / table / "2022-01-01" / "08.parquet"
    assert exported["rows"] == len(ROOMS)
    assert exported["path"] == file.as_uri()
    assert exported["bytes"] == file.stat().st_size
    parquet = pq.read_table(file)
    assert parquet.num_rows == len(ROOMS)
    by_room = {r["room"]: r for r in parquet.to_pylist()}
    for room in ROOMS:
        assert by_room[room]["temp_max"] == pytest.approx(expected[room]["temp_max"])
    assert not [p for p in file.parent.iterdir() if p.name != "08.parquet"]  # no temp leftovers

    # Asset events: the downsampled table (a static outlet) and the export's named Asset, whose
    # event names the rendered destination (the export base is a template) and the file.
    events = asset_events(dag_id, dag_run.run_id)
    assert {(name, uri) for name, uri, _ in events} == {
        (f"influxdb3://influxdb3_flight_default/{table}",) * 2,
        (f"{table}_parquet",) * 2,
    }
    [export_event] = [extra for name, _, extra in events if name == f"{table}_parquet"]
    assert export_event["destination"] == (export_base / table).as_uri()
    assert export_event["files"] == [file.as_uri()]


@pytest.mark.parametrize(
    ("dag_id", "table"),
    [
        ("example_influxdb3_downsample_sql", "home_1h"),
        ("example_influxdb3_downsample_influxql", "home_1h_influxql"),
    ],
)
def test_downsample_dag_end_to_end(
    airflow_db: None,
    standin: Any,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    dag_id: str,
    table: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_INFLUXDB3_EXPORT_BASE", tmp_path.as_uri())
    dag = load_example_dag("example_influxdb3_downsample.py", dag_id)
    consumer = load_user_dags("af_user_export_consumer.py").dag
    sync_dags_to_db(USER_DAGS / "af_user_export_consumer.py", "af-user-dags")
    caplog.set_level(logging.INFO)
    dag_run = dag.test(logical_date=LOGICAL_DATE)
    _check_downsample_run(dag_run, standin, home_db, table, tmp_path, dag_id)
    # The export's Asset was known before the run: no warning; the consumer DAG scheduled on
    # its name is queued to run.
    assert asset_warnings(caplog.records) == []
    assert consumer.dag_id in queued_dags(f"{table}_parquet")

    # Idempotent: a second run of the same hour writes identical points (same series, same
    # bucket-start timestamps, same values), which InfluxDB 3 deduplicates on read.
    def points() -> list[tuple]:
        rows = standin.engine.query_sql(home_db, f"SELECT * FROM {table}").read_all().to_pylist()
        return [tuple(sorted(r.items())) for r in rows]

    first = set(points())
    assert len(first) == len(ROOMS)
    dag_run = dag.test(logical_date=LOGICAL_DATE)
    assert set(task_states(dag_run).values()) == {"success"}
    assert set(points()) == first
    assert asset_warnings(caplog.records) == []


def test_sql_checks_dag_end_to_end(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    dag = load_example_dag("example_influxdb3_sql_checks.py", "example_influxdb3_sql_checks")
    dag_run = dag.test(logical_date=LOGICAL_DATE)
    states = task_states(dag_run)
    assert set(states.values()) == {"success"}, states
    expected = _expected_hour()
    summary = xcom(dag_run, "hour_summary")
    assert [row[0] for row in summary] == list(ROOMS)
    for room, readings, temp_mean, co_max in summary:
        assert readings == 6
        assert temp_mean == pytest.approx(expected[room]["temp_mean"])
        assert co_max == expected[room]["co_max"]
    assert xcom(dag_run, "wait_for_hour_deferrable") == 2 * 6


def test_sql_checks_dag_fails_on_an_empty_hour(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    """Sanity of the checks: an hour without data fails them (sensors time out fast here)."""
    dag = load_example_dag("example_influxdb3_sql_checks.py", "example_influxdb3_sql_checks")
    deferred = dag.get_task("wait_for_hour_deferrable")  # stays deferrable: its trigger times out
    deferred.timeout, deferred.poke_interval = 1, 0.2
    sql_sensor = dag.get_task("wait_for_hour_sql_sensor")
    sql_sensor.timeout, sql_sensor.poke_interval, sql_sensor.mode = 1, 0.2, "poke"
    dag_run = dag.test(logical_date=datetime(2022, 1, 2, 9, tzinfo=UTC))
    states = task_states(dag_run)
    assert states["wait_for_hour_sql_sensor"] == "failed", states
    assert states["wait_for_hour_deferrable"] == "failed", states
    assert states["hour_summary"] != "success"
