"""Dagster library for InfluxDB 3 over Arrow Flight."""
