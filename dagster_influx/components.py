"""Dagster components (registered for `dg`)."""
