"""Airflow provider for InfluxDB 3 over Arrow Flight."""

from __future__ import annotations

__version__ = "0.1.0"


def get_provider_info() -> dict:
    from airflow_influx.provider_info import PROVIDER_INFO

    return PROVIDER_INFO
