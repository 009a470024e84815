"""Provider metadata read by Airflow's provider discovery (filled in by the provider issue)."""

from __future__ import annotations

PROVIDER_INFO: dict = {
    "package-name": "influxdb3-orchestration",
    "name": "InfluxDB 3 (Arrow Flight)",
    "description": "InfluxDB 3 over Arrow Flight: queries, Parquet exports and downsampling.",
    "versions": ["0.1.0"],
}
