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
    from airflow.models.dagbag import DagBag  # noqa: F401


def _version() -> tuple[int, int]:
    from airflow import __version__

    major, minor = __version__.split(".")[:2]
    return int(major), int(minor)


AIRFLOW_VERSION = _version()
