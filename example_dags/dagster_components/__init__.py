"""The Dagster example declared with components (defs.yaml) instead of Python."""
