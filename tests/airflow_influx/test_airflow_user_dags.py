"""Regression tests: DAGs written the way users wrote them (tests/airflow_influx/dags), each run
for real with dag.test() against the stand-in, reproducing what broke off the happy path."""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")

from af_dagrun import (
    asset_events,
    asset_warnings,
    known_assets,
    load_user_dags,
    queued_dags,
    running_queries,
    task_states,
    xcom,
)
from af_testdata import REPO, ROOMS, USER_DAGS

QUICKSTART = REPO / "docs" / "quickstart.md"


# --- 1. a `time` column through common.sql ----------------------------------------------------


def test_time_column_through_common_sql_and_hook_reads(
    airflow_db: None, home_db: str, default_conn: Any
) -> None:
    dag = load_user_dags("af_user_common_sql_time.py").dag
    dag_run = dag.test()
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    first_two = [
        (datetime(2022, 1, 1, 8, tzinfo=UTC), "Kitchen", 21.0),
        (datetime(2022, 1, 1, 8, tzinfo=UTC), "Living Room", 22.0),
    ]
    # SQLExecuteQueryOperator's XCom (Flight SQL path) and get_records (native path): plain
    # datetimes in UTC, as DB-API rows, round-tripped through XCom.
    for task_id in ("sql_execute", "records"):
        rows = [tuple(r) for r in xcom(dag_run, task_id)]
        assert rows == first_two, task_id
        assert all(type(r[0]) is datetime for r in rows)
    assert tuple(xcom(dag_run, "first")) == first_two[0]
    dtype, first_time = xcom(dag_run, "frame_types")
    assert "UTC" in dtype and first_time == "2022-01-01T08:00:00+00:00"


# --- 2. a deferrable sensor whose check stays False ---------------------------------------------


def test_deferrable_sensor_with_false_check_ends_by_timeout(
    airflow_db: None,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    poke_interval, timeout = 1.0, 4.0
    checks_file = tmp_path / "checks.txt"
    monkeypatch.setenv("AF_TEST_CHECKS_FILE", str(checks_file))
    monkeypatch.setenv("AF_TEST_POKE_INTERVAL", str(poke_interval))
    monkeypatch.setenv("AF_TEST_TIMEOUT", str(timeout))
    dag = load_user_dags("af_user_deferrable_check.py").dag
    started = time.monotonic()
    dag_run = dag.test()
    elapsed = time.monotonic() - started
    assert task_states(dag_run) == {"wait_for_enough": "failed"}
    checks = checks_file.read_text().splitlines()
    # Each check sees the real value; at most timeout / poke_interval + 1 checks in all.
    assert set(checks) == {str(2 * 24)}
    assert 1 <= len(checks) <= timeout / poke_interval + 1, checks
    assert elapsed < timeout + 90, elapsed  # a loaded CI machine starts tasks slowly


# --- 4. a sensor on a table that does not exist yet -------------------------------------------


def test_sensor_waits_for_a_table_that_does_not_exist_yet(
    airflow_db: None, standin: Any, influx_db: str, default_conn: Any
) -> None:
    standin.write_lp(influx_db, "other,room=a v=1 1\n", precision="s")  # the database exists
    dag = load_user_dags("af_user_late_table.py").dag

    def first_write() -> None:
        time.sleep(1.5)
        standin.write_lp(
            influx_db,
            "late_arrivals,room=Kitchen temp=21.5 1641036600\n"  # 2022-01-01T11:30:00Z
            "late_arrivals,room=Living\\ Room temp=20.5 1641038400\n",  # 12:00
            precision="s",
        )

    writer = threading.Thread(target=first_write)
    writer.start()
    try:
        dag_run = dag.test()
    finally:
        writer.join()
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    assert xcom(dag_run, "wait_poke") == 2
    assert xcom(dag_run, "wait_deferrable") == 2
    # Freshness with tags: the newest Kitchen point (11:30) is within 1 h of 12:00.
    assert xcom(dag_run, "wait_fresh") == "2022-01-01T11:30:00+00:00"


def test_freshness_sensor_bounded_query_and_tags(
    airflow_db: None, standin: Any, influx_db: str, default_conn: Any
) -> None:
    from airflow_influx.sensors.influxdb3 import InfluxDB3Sensor

    standin.write_lp(
        influx_db,
        "late_arrivals,room=Kitchen temp=21.5 1641033000\n"  # 10:30
        "late_arrivals,room=Living\\ Room temp=20.5 1641038400\n",  # 12:00
        precision="s",
    )
    reference = "2022-01-01T12:00:00Z"

    def poke(**kwargs: Any) -> Any:
        sensor = InfluxDB3Sensor(
            task_id="fresh", table="late_arrivals", reference_time=reference, **kwargs
        )
        query, language, params, _ = sensor._condition({})
        # Never an unbounded max(time): the lower time bound is always there.
        assert "time >= $since" in query and language == "sql"
        assert params["since"] < "2022-01-01T12:00:00+00:00"
        return sensor.poke({})

    assert poke(max_lag="1h").is_done  # Living Room at 12:00
    assert poke(max_lag="1h").xcom_value == "2022-01-01T12:00:00+00:00"
    assert not poke(max_lag="1h", tags={"room": "Kitchen"}).is_done  # 10:30 is 1.5 h old
    kitchen = poke(max_lag="2h", tags={"room": "Kitchen"})
    assert kitchen.is_done and kitchen.xcom_value == "2022-01-01T10:30:00+00:00"


def test_sensor_missing_table_fail_is_opt_in(
    airflow_db: None,
    standin: Any,
    influx_db: str,
    default_conn: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    standin.write_lp(influx_db, "other,room=a v=1 1\n", precision="s")  # the database exists
    monkeypatch.setenv("AF_TEST_MISSING_TABLE", "fail")
    dag = load_user_dags("af_user_late_table.py").dag
    dag_run = dag.test()
    states = task_states(dag_run)
    assert states["wait_poke"] == "failed" and states["wait_deferrable"] == "failed", states
    for ti in dag_run.get_task_instances():  # failed at once, not by the 30 s timeout
        assert (ti.end_date - ti.start_date).total_seconds() < 25, ti.task_id


# --- 5. the quickstart's DAG, verbatim --------------------------------------------------------


def _quickstart_dag_source() -> str:
    import re

    text = QUICKSTART.read_text(encoding="utf-8")
    blocks = re.findall(r"^```python\n(.*?)^```", text, re.MULTILINE | re.DOTALL)
    (source,) = [b for b in blocks if 'dag_id="home_hourly"' in b]
    return source


def test_quickstart_dag_verbatim(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    path = USER_DAGS / "_generated_quickstart_home_hourly.py"
    path.write_text(_quickstart_dag_source(), encoding="utf-8")
    try:
        dag = load_user_dags(path.name).dag
        # `airflow dags test home_hourly 2022-01-01T09:00:00+00:00` in the quickstart's words.
        dag_run = dag.test(logical_date=datetime(2022, 1, 1, 9, tzinfo=UTC))
    finally:
        path.unlink()
    assert task_states(dag_run) == {"downsample_home": "success"}
    summary = xcom(dag_run, "downsample_home")
    # "@hourly" is a trigger timetable: the 09:00 run covers the hour that ends at 09:00.
    assert (summary["start"], summary["end"]) == ("2022-01-01T08:00:00Z", "2022-01-01T09:00:00Z")
    assert summary["rows_written"] == len(ROOMS)


def test_configuration_error_fails_without_retries(
    airflow_db: None, home_db: str, default_conn: Any
) -> None:
    from airflow.sdk import DAG
    from airflow_influx.operators.influxdb3 import InfluxDB3DownsampleOperator

    from influx_flight import DownsampleSpec

    # A DAG without schedule has no interval at all: the task fails once (retries=3 unused).
    dag = load_user_dags("af_user_common_sql_time.py").dag
    assert isinstance(dag, DAG)
    op = InfluxDB3DownsampleOperator(
        task_id="no_interval",
        retries=3,
        spec=DownsampleSpec(
            source="home", window="1h", aggregates={"temp": ["mean"]}, target_measurement="x"
        ),
        dag=dag,
    )
    try:
        dag_run = dag.test()
    finally:
        dag.task_dict.pop(op.task_id)
        dag.task_group.children.pop(op.task_id, None)
    ti = next(t for t in dag_run.get_task_instances() if t.task_id == "no_interval")
    assert str(ti.state) == "failed" and ti.try_number == 1


# --- 6. connections made for the official provider ---------------------------------------------


def _official_conn(standin: Any, database: str, *, token_in: str) -> str:
    from urllib.parse import urlsplit

    flight = urlsplit(standin.flight_uri)
    conn: dict[str, Any] = {
        "conn_type": "influxdb3",
        "host": flight.hostname,
        "port": flight.port,
        "schema": "http",  # the official hook's URL scheme, not a database
        "extra": {"database": database, "org": "ignored-by-influxdb3"},
    }
    if token_in == "extra":
        conn["extra"]["token"] = standin.token
    else:
        conn["password"] = standin.token
    return json.dumps(conn)


@pytest.mark.parametrize("token_in", ["extra", "password"])
def test_official_influxdb3_connection_works_unchanged(
    airflow_db: None,
    standin: Any,
    home_db: str,
    monkeypatch: pytest.MonkeyPatch,
    token_in: str,
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_OFFICIAL_INFLUXDB3", _official_conn(standin, home_db, token_in=token_in)
    )
    dag = load_user_dags("af_user_official_conn.py").dag
    dag_run = dag.test()
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    assert xcom(dag_run, "query") == [{"room": r, "n": 24} for r in ROOMS]
    assert xcom(dag_run, "hook_records") == [[48]]


# --- 7. Assets: one stable Asset per table / destination, no warnings --------------------------


def _events_by_uri(dag_id: str) -> dict[str, list[dict]]:
    by_uri: dict[str, list[dict]] = {}
    for _, uri, extra in asset_events(dag_id):
        by_uri.setdefault(uri, []).append(extra)
    return by_uri


def test_assets_downsample_table_and_parquet_destination(
    airflow_db: None,
    standin: Any,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("AF_TEST_EXPORT_DIR", str(tmp_path / "exports"))
    module = load_user_dags("af_user_assets.py")
    producer, consumer = module.producer, module.consumer
    from af_compat import sync_dags_to_db

    sync_dags_to_db(USER_DAGS / "af_user_assets.py", "af-user-dags")

    downsample_asset = producer.get_task("downsample").outlets[0]
    export_asset = producer.get_task("export").outlets[0]
    assert downsample_asset.uri == "influxdb3://influxdb3_flight_default/home_1h_assets"
    assert export_asset.uri == (tmp_path / "exports" / "home").as_uri()

    caplog.set_level(logging.INFO)
    for hour in (9, 10):  # two runs: still one Asset each, two events each
        dag_run = producer.test(logical_date=datetime(2022, 1, 1, hour, tzinfo=UTC))
        assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    assert asset_warnings(caplog.records) == []

    by_uri = _events_by_uri("af_user_assets_producer")
    assert set(by_uri) == {downsample_asset.uri, export_asset.uri}
    assert [e["rows_written"] for e in by_uri[downsample_asset.uri]] == [2, 2]
    assert [len(e["files"]) for e in by_uri[export_asset.uri]] == [1, 1]
    # No Asset per file: only the destination.
    assert not [uri for _, uri in known_assets() if uri.endswith(".parquet")]
    # The consumer DAG, scheduled on the downsampled table, is queued to run.
    assert consumer.dag_id in queued_dags()


def test_templated_export_urls_emit_their_fixed_prefix_asset(
    airflow_db: None,
    standin: Any,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``file:///dir/{{ ds }}/x.parquet`` and ``memory://bucket/{{ ds }}/x.parquet``: one Asset
    each (the part before the template), declared at parse time; no AssetAlias, no warnings."""
    import uuid

    bucket = f"af-templated-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AF_TEST_EXPORT_URL", (tmp_path / "x").as_uri())
    monkeypatch.setenv("AF_TEST_MEMORY_BUCKET", bucket)
    dag = load_user_dags("af_user_templated_export.py").dag
    from airflow.sdk import Asset, AssetAlias

    # As Airflow normalises them (a bare bucket gets its trailing "/").
    file_prefix = Asset(uri=(tmp_path / "x").as_uri()).uri
    memory_prefix = Asset(uri=f"memory://{bucket}").uri

    for task_id, prefix in (("to_file_url", file_prefix), ("to_memory", memory_prefix)):
        outlets = dag.get_task(task_id).outlets
        assert [o.uri for o in outlets] == [prefix]
        assert not [o for o in outlets if isinstance(o, AssetAlias)]

    caplog.set_level(logging.DEBUG)
    dag_run = dag.test(logical_date=datetime(2022, 1, 1, 8, tzinfo=UTC))
    assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
    # Airflow 3.0's provider discovery warns about its own duplicate connection types
    # ("connection_type 'fs' has been already registered"): not ours, not about assets.
    noise = [
        r.getMessage()
        for r in caplog.records
        if (r.levelno >= logging.WARNING and not r.name.startswith("airflow.providers_manager"))
        or "alias" in r.getMessage().lower()
    ]
    assert noise + asset_warnings(caplog.records) == []
    assert (tmp_path / "x" / "2022-01-01" / "cpu.parquet").stat().st_size > 0

    events = {uri: extra for _, uri, extra in asset_events("af_user_templated_export")}
    assert set(events) == {file_prefix, memory_prefix}
    assert events[file_prefix]["files"] == [
        (tmp_path / "x" / "2022-01-01" / "cpu.parquet").as_uri()
    ]
    assert events[memory_prefix]["files"] == [f"memory://{bucket}/2022-01-01/x.parquet"]
    import pyarrow.parquet as pq

    written = pq.read_table(tmp_path / "x" / "2022-01-01" / "cpu.parquet").num_rows
    assert events[file_prefix]["rows"] == events[memory_prefix]["rows"] == written > 0
    assert events[file_prefix]["destination"] == file_prefix


def test_export_path_starting_with_a_template_has_one_stable_asset(
    airflow_db: None,
    standin: Any,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``{{ var.value.base }}/cpu/{{ ds }}/x.parquet`` run on two days: ``asset="name"`` is known
    at parse time (no warning, a consumer DAG scheduled on the name is queued); without it, the
    rendered destination (``<base>/cpu``, not the day's directory) is one Asset for both days."""
    base = tmp_path / "base"
    monkeypatch.setenv("AIRFLOW_VAR_AF_TEST_EXPORT_BASE", base.as_uri())
    module = load_user_dags("af_user_templated_base.py")
    dag, consumer = module.dag, module.consumer
    from af_compat import AIRFLOW_VERSION, sync_dags_to_db
    from airflow.sdk import Asset, AssetAlias

    sync_dags_to_db(USER_DAGS / "af_user_templated_base.py", "af-user-dags")
    named = Asset(name="af_user_cpu_parquet")
    assert dag.get_task("to_named_asset").outlets == [named]
    [alias] = dag.get_task("to_derived_asset").outlets
    assert isinstance(alias, AssetAlias)

    caplog.set_level(logging.INFO)
    events = []
    for day in (1, 2):
        dag_run = dag.test(logical_date=datetime(2022, 1, day, 8, tzinfo=UTC))
        assert set(task_states(dag_run).values()) == {"success"}, task_states(dag_run)
        events += asset_events("af_user_templated_base", dag_run.run_id)
    assert not [m for m in asset_warnings(caplog.records) if named.name in m]

    named_events = [extra for name, _, extra in events if name == named.name]
    assert [e["destination"] for e in named_events] == [(base / "named").as_uri()] * 2
    assert [e["files"] for e in named_events] == [
        [(base / "named" / f"2022-01-0{day}" / "x.parquet").as_uri()] for day in (1, 2)
    ]
    assert consumer.dag_id in queued_dags(named.name)
    # Without asset=: one Asset, the rendered destination, for both days (created through the
    # alias at the first event).
    derived = [(uri, extra) for name, uri, extra in events if name != named.name]
    assert [uri for uri, _ in derived] == [(base / "cpu").as_uri()] * 2
    assert [extra["destination"] for _, extra in derived] == [(base / "cpu").as_uri()] * 2
    if AIRFLOW_VERSION < (3, 2):  # Airflow hashes an alias event's extra: no list in it
        assert [extra["file_count"] for _, extra in derived] == [1, 1]
    assert not [
        uri for _, uri in known_assets() if uri.startswith((base / "cpu" / "2022").as_uri())
    ]


# --- OpenLineage: events of a real DAG run, captured with the file transport -------------------


def test_openlineage_events_name_influxdb3_datasets(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any, tmp_path: Path
) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    import os
    import subprocess
    import sys
    from urllib.parse import urlsplit

    events_file = tmp_path / "ol-events.jsonl"
    env = dict(os.environ)
    env.update(
        {
            "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
                {"type": "file", "log_file_path": str(events_file), "append": True}
            ),
            "AIRFLOW__OPENLINEAGE__NAMESPACE": "af-tests",
            "AF_TEST_EXPORT_DIR": str(tmp_path / "exports"),
        }
    )
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    script = (
        "import importlib.util, sys\n"
        "from af_compat import AIRFLOW_VERSION, sync_dags_to_db\n"
        f"spec = importlib.util.spec_from_file_location('lineage', {str(USER_DAGS / 'af_user_lineage.py')!r})\n"
        "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)\n"
        "if AIRFLOW_VERSION < (3, 3):\n"
        "    sync_dags_to_db(spec.origin, 'af-user-dags')\n"
        "run = m.dag.test()\n"
        "states = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}\n"
        "print('STATES', states)\n"
        "sys.exit(0 if set(states.values()) == {'success'} else 1)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert events_file.exists(), proc.stdout[-2000:]
    flight = urlsplit(standin.flight_uri)
    ns = f"influxdb3://{flight.hostname}:{flight.port}"
    seen: dict[str, dict[str, set]] = {}
    for line in events_file.read_text().splitlines():
        event = json.loads(line)
        if event.get("eventType") != "COMPLETE":
            continue
        # "<dag>.<task>", or "<dag>.<task>.query.<n>" for common.sql's per-query hook lineage
        task = event["job"]["name"].split(".")[1] if "." in event["job"]["name"] else ""
        entry = seen.setdefault(task, {"inputs": set(), "outputs": set(), "sql": set()})
        entry["inputs"] |= {(d["namespace"], d["name"]) for d in event.get("inputs", [])}
        entry["outputs"] |= {(d["namespace"], d["name"]) for d in event.get("outputs", [])}
        sql = event["job"].get("facets", {}).get("sql", {}).get("query")
        if sql:
            entry["sql"].add(sql)
    print(
        "OpenLineage datasets seen:",
        json.dumps(
            {k: {kk: sorted(vv) for kk, vv in v.items()} for k, v in seen.items()}, default=str
        ),
    )
    home = (ns, f"{home_db}.iox.home")
    assert seen["query"]["inputs"] == {home}
    assert "SELECT room, max(temp) FROM home GROUP BY room" in seen["query"]["sql"]
    assert seen["export"]["inputs"] == {home}
    assert seen["export"]["outputs"] == {("file", str(tmp_path / "exports" / "home.parquet"))}
    assert seen["downsample"]["inputs"] == {home}
    assert seen["downsample"]["outputs"] == {(ns, f"{home_db}.iox.home_1h_lineage")}
    # common.sql: its SQL parser with the hook's database info (schema iox) names the table.
    assert (ns, f"{home_db}.iox.home") in seen["common_sql"]["inputs"], seen["common_sql"]


# --- 3. execution_timeout stops a long query, on the worker and on the server -----------------


def test_execution_timeout_stops_the_query_and_the_server(
    airflow_db: None,
    standin: Any,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    starts_file = tmp_path / "starts.txt"
    monkeypatch.setenv("AF_TEST_STARTS_FILE", str(starts_file))
    dag = load_user_dags("af_user_timeout.py").dag
    dag_run = dag.test()
    ended = time.monotonic()
    starts = dict(line.split() for line in starts_file.read_text().splitlines())
    tis = {ti.task_id: ti for ti in dag_run.get_task_instances()}
    for task_id in ("long_query", "long_sensor_poke"):
        ti = tis[task_id]
        assert str(ti.state) == "failed", (task_id, ti.state)
        deadline = float(starts[task_id]) + 5
        late = ti.end_date.timestamp() - deadline
        print(f"{task_id}: execution_timeout=5s; task ended {late:.2f} s after the deadline")
        # Without the fix the task ran on until the query's first result (minutes here).
        assert late < 5, (task_id, late)
    # ... and the server stopped computing: no query holds a slot any more.
    while running_queries(standin) and time.monotonic() - ended < 5:
        time.sleep(0.1)
    assert running_queries(standin) == 0
