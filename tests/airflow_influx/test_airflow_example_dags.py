"""The example DAGs: they load cleanly, and each runs end to end with dag.test() against the
stand-in (AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT points at it); rows and files are checked.
"""

from __future__ import annotations

import importlib.util
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")

from af_testdata import EXAMPLE_DAGS, HOME_START, ROOMS, home_points

# The run for logical date 09:00 covers the hour [08:00, 09:00) of the home-style data.
LOGICAL_DATE = datetime(2022, 1, 1, 9, tzinfo=UTC)
HOUR_START = HOME_START


def _load_dag(file_name: str) -> Any:
    path = EXAMPLE_DAGS / file_name
    spec = importlib.util.spec_from_file_location(f"example_dag_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from af_compat import AIRFLOW_VERSION, sync_dags_to_db

    if AIRFLOW_VERSION < (3, 3):  # dag.test() registers the DAG (and its Assets) itself from 3.3
        sync_dags_to_db(path, "dags-folder")
    return module.dag


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


def _task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def _xcom(dag_run: Any, task_id: str) -> Any:
    from af_compat import deserialize

    ti = next(t for t in dag_run.get_task_instances() if t.task_id == task_id)
    # The metadata-DB task instance returns the stored (serde-encoded) form.
    return deserialize(ti.xcom_pull(task_ids=task_id))


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

    states = _task_states(dag_run)
    assert set(states.values()) == {"success"}, states

    downsampled = _xcom(dag_run, "downsample_to_home_1h")
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
    exported = _xcom(dag_run, "export_hour_to_parquet")
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

    # Asset events: the downsampled table (a static outlet) and the export's destination
    # directory (the rendered prefix, through the task's AssetAlias: the path is all template).
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        uris = {
            e.asset.uri
            for e in session.query(AssetEvent).all()
            if e.source_dag_id == dag_id and e.source_run_id == dag_run.run_id
        }
    from af_compat import AIRFLOW_VERSION

    expected = {f"influxdb3://influxdb3_flight_default/{table}", file.parent.as_uri()}
    if AIRFLOW_VERSION < (3, 3):  # no Assets created through an AssetAlias under 3.0's dag.test
        expected.discard(file.parent.as_uri())
    assert (
        expected <= uris <= {f"influxdb3://influxdb3_flight_default/{table}", file.parent.as_uri()}
    )


@pytest.mark.parametrize(
    ("file_name", "dag_id", "table"),
    [
        ("example_influxdb3_downsample_sql.py", "example_influxdb3_downsample_sql", "home_1h"),
        (
            "example_influxdb3_downsample_influxql.py",
            "example_influxdb3_downsample_influxql",
            "home_1h_influxql",
        ),
    ],
)
def test_downsample_dag_end_to_end(
    airflow_db: None,
    standin: Any,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    file_name: str,
    dag_id: str,
    table: str,
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_INFLUXDB3_EXPORT_BASE", tmp_path.as_uri())
    dag = _load_dag(file_name)
    assert dag.dag_id == dag_id
    dag_run = dag.test(logical_date=LOGICAL_DATE)
    _check_downsample_run(dag_run, standin, home_db, table, tmp_path, dag_id)

    # Idempotent: a second run of the same hour writes identical points (same series, same
    # bucket-start timestamps, same values), which InfluxDB 3 deduplicates on read.
    def points() -> list[tuple]:
        rows = standin.engine.query_sql(home_db, f"SELECT * FROM {table}").read_all().to_pylist()
        return [tuple(sorted(r.items())) for r in rows]

    first = set(points())
    assert len(first) == len(ROOMS)
    dag_run = dag.test(logical_date=LOGICAL_DATE)
    assert set(_task_states(dag_run).values()) == {"success"}
    assert set(points()) == first


def test_sql_checks_dag_end_to_end(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    dag = _load_dag("example_influxdb3_sql_checks.py")
    dag_run = dag.test(logical_date=LOGICAL_DATE)
    states = _task_states(dag_run)
    assert set(states.values()) == {"success"}, states
    expected = _expected_hour()
    summary = _xcom(dag_run, "hour_summary")
    assert [row[0] for row in summary] == list(ROOMS)
    for room, readings, temp_mean, co_max in summary:
        assert readings == 6
        assert temp_mean == pytest.approx(expected[room]["temp_mean"])
        assert co_max == expected[room]["co_max"]
    assert _xcom(dag_run, "wait_for_hour_deferrable") == 2 * 6


def test_sql_checks_dag_fails_on_an_empty_hour(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    """Sanity of the checks: an hour without data fails them (sensors time out fast here)."""
    dag = _load_dag("example_influxdb3_sql_checks.py")
    deferred = dag.get_task("wait_for_hour_deferrable")  # stays deferrable: its trigger times out
    deferred.timeout, deferred.poke_interval = 1, 0.2
    sql_sensor = dag.get_task("wait_for_hour_sql_sensor")
    sql_sensor.timeout, sql_sensor.poke_interval, sql_sensor.mode = 1, 0.2, "poke"
    dag_run = dag.test(logical_date=datetime(2022, 1, 2, 9, tzinfo=UTC))
    states = _task_states(dag_run)
    assert states["wait_for_hour_sql_sensor"] == "failed", states
    assert states["wait_for_hour_deferrable"] == "failed", states
    assert states["hour_summary"] != "success"
