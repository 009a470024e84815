"""``InfluxDB3QueryOperator(deferrable=True)`` and ``InfluxDB3QueryTrigger`` against the stand-in.

A real DAG run (``dag.test()``, which runs triggers as the triggerer does) shows the task
deferring, the rows resuming into XCom through the operator's guard, and clear failures; the
trigger itself is driven on an event loop the way the triggerer drives it, to show that a slow
query does not block the loop and that cancelling the trigger stops the query on the server.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("airflow")

from af_dagrun import (
    first_event,
    load_user_dags,
    logged_failures,
    running_queries,
    task_states,
    xcom,
)

TRIGGER_PATH = "airflow_influx.triggers.influxdb3.InfluxDB3QueryTrigger"
# DataFusion sums 10^11 values: minutes of work on any machine.
SLOW_QUERY = "SELECT sum(value) AS s FROM range(100000000000)"


def _failures(path: Path) -> dict[str, str]:
    lines = path.read_text().splitlines() if path.exists() else []
    return {d["task_id"]: d["error"] for d in map(json.loads, lines)}


def _stored_triggers(dag_run: Any) -> list[Any]:
    """The Trigger rows Airflow stored when the DAG run's tasks deferred."""
    from airflow.models.trigger import Trigger
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(Trigger).filter(Trigger.classpath == TRIGGER_PATH).all()
        return [(row.classpath, row.kwargs, row.encrypted_kwargs) for row in rows]


def test_deferred_query_resumes_with_rows_and_fails_clearly(
    airflow_db: None,
    standin: Any,
    home_db: str,
    default_conn: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    failures_file = tmp_path / "failures.jsonl"
    monkeypatch.setenv("AF_TEST_FAILURES_FILE", str(failures_file))
    dag = load_user_dags("af_user_deferrable_query.py").dag
    dag_run = dag.test()
    states = task_states(dag_run)
    assert states == {
        "kitchen_rows": "success",
        "too_many_rows": "failed",
        "bad_sql": "failed",
        "missing_table": "failed",
    }, states

    # Resumed from the trigger's event with the rows, JSON-safe, in XCom.
    rows = xcom(dag_run, "kitchen_rows")
    assert [(r["room"], r["temp"]) for r in rows] == [
        ("Kitchen", 21.0),
        ("Kitchen", 21.1),
        ("Kitchen", 21.2),
    ]
    assert str(rows[0]["time"]).startswith("2022-01-01")

    # Every task deferred: Airflow stored one query trigger per task, serialised without the
    # token (the connection id travels, the triggerer reads the connection itself).
    triggers = _stored_triggers(dag_run)
    assert len(triggers) >= 4, triggers
    queries = {kwargs["query"] for _, kwargs, _ in triggers}
    assert "SELEC time FROM home" in queries
    for _, kwargs, encrypted in triggers:
        assert kwargs["influxdb3_conn_id"] == "influxdb3_flight_default"
        assert standin.token not in json.dumps(kwargs, default=str)
        assert standin.token not in str(encrypted)

    # Failures say what is wrong and what to do, in the task log the user reads (dag.test()
    # prints it); none of them is retried.
    output = "".join(capfd.readouterr())
    logged = logged_failures(output)
    assert set(logged) == {"too_many_rows", "bad_sql", "missing_table"}, output[-4000:]
    assert {kind for kind, _ in logged.values()} == {"AirflowFailException"}, logged
    assert "max_rows=5" in logged["too_many_rows"][1], logged
    assert "InfluxDB3ToParquetOperator" in logged["too_many_rows"][1]
    assert "QueryError" in logged["bad_sql"][1] and "SELEC" in logged["bad_sql"][1], logged
    assert "no table 'not_written_yet'" in logged["missing_table"][1], logged
    assert "Check the table name" in logged["missing_table"][1], logged
    for ti in dag_run.get_task_instances():
        assert ti.try_number == 1, (ti.task_id, ti.try_number)
    assert standin.token not in output

    # The same messages reach on_failure_callback, from Airflow 3.1 on (3.0 passes no
    # exception to it after a deferral: the log above is where 3.0 users see them).
    failures = _failures(failures_file)
    from af_compat import AIRFLOW_VERSION

    if AIRFLOW_VERSION < (3, 1):
        assert set(failures.values()) == {"None"}, failures
        return
    for task_id, (_, message) in logged.items():
        assert message.split(": ", 1)[0] in failures[task_id], (task_id, failures)
    assert "max_rows=5" in failures["too_many_rows"], failures
    assert "not found" in failures["missing_table"], failures
    assert standin.token not in failures_file.read_text()


def _trigger(**kwargs: Any) -> Any:
    from airflow_influx.triggers.influxdb3 import InfluxDB3QueryTrigger

    return InfluxDB3QueryTrigger(influxdb3_conn_id="influxdb3_flight_default", **kwargs)


async def _ticks_while(work: Any, interval: float = 0.05) -> tuple[Any, int, float]:
    """Run ``work`` while another coroutine ticks; return its result, the ticks and the worst gap."""
    ticks, worst, done = 0, 0.0, asyncio.Event()

    async def ticker() -> None:
        nonlocal ticks, worst
        last = time.monotonic()
        while not done.is_set():
            await asyncio.sleep(interval)
            now = time.monotonic()
            worst = max(worst, now - last)
            ticks, last = ticks + 1, now

    tick_task = asyncio.create_task(ticker())
    try:
        result = await work
    finally:
        done.set()
        await tick_task
    return result, ticks, worst


def test_trigger_leaves_the_event_loop_free_during_a_slow_query(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    # A query the stand-in needs seconds for, capped by the trigger's own timeout.
    trigger = _trigger(query=SLOW_QUERY, timeout=3.0)
    started = time.monotonic()
    event, ticks, worst = asyncio.run(_ticks_while(first_event(trigger)))
    elapsed = time.monotonic() - started
    print(f"slow query: {elapsed:.2f}s, {ticks} ticks of 50 ms, worst gap {worst * 1000:.0f} ms")
    assert event["status"] == "error" and "Timeout" in event["message"], event
    assert elapsed >= 2.5
    # The loop kept running: ticks every ~50 ms throughout, never a gap near the query's time.
    assert ticks >= elapsed / 0.05 * 0.5, ticks
    assert worst < 1.0, worst
    deadline = time.monotonic() + 5
    while running_queries(standin) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running_queries(standin) == 0


def test_cancelled_trigger_stops_the_query_on_the_server(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    """What the triggerer does on a deferral timeout or a killed task: cancel, then cleanup."""
    trigger = _trigger(query=SLOW_QUERY)

    async def scenario() -> float:
        task = asyncio.create_task(first_event(trigger))
        deadline = time.monotonic() + 30
        while running_queries(standin) == 0:  # the query reached the server
            assert time.monotonic() < deadline and not task.done(), "query never started"
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)
        cancelled = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await trigger.cleanup()
        return time.monotonic() - cancelled

    took = asyncio.run(scenario())
    print(f"trigger cancelled in {took:.3f}s")
    assert took < 5, took
    deadline = time.monotonic() + 5
    while running_queries(standin) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert running_queries(standin) == 0, "the server kept computing the cancelled query"


def test_trigger_serialises_without_the_token_and_round_trips(
    airflow_db: None, standin: Any, home_db: str, default_conn: Any
) -> None:
    trigger = _trigger(query="SELECT 1", query_params={"x": 1}, database="other", max_rows=7)
    classpath, kwargs = trigger.serialize()
    assert classpath == TRIGGER_PATH
    assert standin.token not in json.dumps(kwargs)
    rebuilt = type(trigger)(**kwargs)
    assert rebuilt.serialize() == (classpath, kwargs)
