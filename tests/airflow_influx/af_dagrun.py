"""Running DAG files and triggers for real in the tests: load a DAG file, then read its run's
task states, XComs and Asset events from the metadata DB, the failures and Asset warnings
Airflow logged; drive a trigger to its first event."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import re
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from af_testdata import EXAMPLE_DAGS, USER_DAGS

#: What Airflow logs when a task emits an event for an Asset it does not know (yet).
ASSET_WARNINGS = ("cannot create asset event", "inactive assetmodel", "inactive assets")


def load_dag_file(path: Path, bundle_name: str) -> ModuleType:
    """Import a DAG file as its own module. Before Airflow 3.3 also register its DAGs (and
    their Assets) in the metadata DB, which dag.test() does itself from 3.3 on."""
    spec = importlib.util.spec_from_file_location(f"dag_file_{path.stem}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from af_compat import AIRFLOW_VERSION, sync_dags_to_db

    if AIRFLOW_VERSION < (3, 3):
        sync_dags_to_db(path, bundle_name)
    return module


def load_user_dags(file_name: str) -> ModuleType:
    """A user's DAG file from tests/airflow_influx/dags (bundle ``af-user-dags``)."""
    return load_dag_file(USER_DAGS / file_name, "af-user-dags")


def load_example_dag(file_name: str, dag_id: str) -> Any:
    """One DAG of an example file in example_dags/ (bundle ``dags-folder``)."""
    module = load_dag_file(EXAMPLE_DAGS / file_name, "dags-folder")
    return next(v for v in vars(module).values() if getattr(v, "dag_id", None) == dag_id)


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def xcom(dag_run: Any, task_id: str) -> Any:
    """A task's XCom as the task pushed it (the metadata DB keeps the serde-encoded form)."""
    from af_compat import deserialize

    ti = next(t for t in dag_run.get_task_instances() if t.task_id == task_id)
    return deserialize(ti.xcom_pull(task_ids=task_id))


def asset_warnings(records: Iterable[logging.LogRecord]) -> list[str]:
    """Airflow's warnings about events for unknown or inactive Assets."""
    messages = (r.getMessage() for r in records)
    return [m for m in messages if any(w in m.lower() for w in ASSET_WARNINGS)]


def asset_events(dag_id: str, run_id: str | None = None) -> list[tuple[str, str, dict]]:
    """``(asset name, asset uri, event extra)`` of every Asset event a DAG (run) emitted."""
    from airflow.models.asset import AssetEvent
    from airflow.utils.session import create_session

    with create_session() as session:
        return [
            (e.asset.name, e.asset.uri, e.extra)
            for e in session.query(AssetEvent).order_by(AssetEvent.id)
            if e.source_dag_id == dag_id and run_id in (None, e.source_run_id)
        ]


def queued_dags(asset_name: str | None = None) -> set[str]:
    """DAGs Airflow queued to run because an Asset they are scheduled on (named ``asset_name``,
    or any) got an event: what the scheduler turns into their next run."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(AssetDagRunQueue.target_dag_id, AssetModel.name).join(
            AssetModel, AssetModel.id == AssetDagRunQueue.asset_id
        )
        return {dag_id for dag_id, name in rows if asset_name in (None, name)}


def running_queries(standin: Any) -> int:
    """Queries holding a slot on the stand-in right now."""
    slots = standin.engine.slots
    return slots.limits.max_concurrent_queries - slots._semaphore._value


def known_assets() -> set[tuple[str, str]]:
    """``(name, uri)`` of every Asset in the metadata DB."""
    from airflow.models.asset import AssetModel
    from airflow.utils.session import create_session

    with create_session() as session:
        return {(a.name, a.uri) for a in session.query(AssetModel)}


_FAILURE = re.compile(
    # The last line of a failed task's traceback in its log, as Airflow prints it (3.0 wraps
    # it at the console width, 3.1+ prefixes the module): "AirflowFailException: Task 'x': ...".
    r"^(?:[\w.]+\.)?(?P<kind>Airflow\w*Exception): Task '(?P<task>[^']+)': (?P<message>.*?)"
    r"(?=\n\s*\n|\n\d{4}-\d\d-\d\d|\Z)",
    re.DOTALL | re.MULTILINE,
)


def logged_failures(output: str) -> dict[str, tuple[str, str]]:
    """``{task_id: (exception class, message)}`` of the failures a DAG run's task log shows."""
    return {
        m["task"]: (m["kind"], " ".join(m["message"].split())) for m in _FAILURE.finditer(output)
    }


async def first_event(trigger: Any, timeout: float = 60) -> dict[str, Any]:
    """The payload of a trigger's first event, driven as the triggerer drives it."""
    events = trigger.run()
    try:
        event = await asyncio.wait_for(events.__anext__(), timeout)
    finally:
        await events.aclose()
    return event.payload
