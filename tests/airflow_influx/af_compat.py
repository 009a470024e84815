"""Airflow names the tests use, wherever the running Airflow (3.0 to 3.3) keeps them."""

from __future__ import annotations

from airflow.providers.common.compat.sdk import (  # noqa: F401
    AirflowException,
    AirflowFailException,
    AirflowSensorTimeout,
    TaskDeferred,
)

try:
    from airflow.sdk import CronDataIntervalTimetable
except ImportError:  # Airflow < 3.1
    from airflow.timetables.interval import CronDataIntervalTimetable  # noqa: F401

try:
    from airflow.sdk.serde import deserialize
except ImportError:  # Airflow < 3.2
    from airflow.serialization.serde import deserialize  # noqa: F401

try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.2
    from airflow.models.dagbag import DagBag


def _version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


AIRFLOW_VERSION = _version()


def sync_dags_to_db(path: object, bundle_name: str) -> None:
    """Register the DAGs of ``path`` (file or folder) in the metadata DB, as the DAG processor
    would: their Assets become active. ``dag.test()`` does this itself from Airflow 3.3 on; on
    3.0 a task whose outlet Asset is unknown fails with AirflowInactiveAssetInInletOrOutlet."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    DagBundlesManager().sync_bundles_to_db()
    try:
        from airflow.dag_processing.dagbag import sync_bag_to_db
    except ImportError:  # Airflow < 3.2
        bag = DagBag(dag_folder=str(path), include_examples=False)
        bag.sync_to_db(bundle_name=bundle_name, bundle_version=None)
        return
    bag = DagBag(dag_folder=str(path), bundle_name=bundle_name)
    sync_bag_to_db(bag, bundle_name=bundle_name, bundle_version=None)
