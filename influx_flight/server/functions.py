"""InfluxDB 3 SQL functions for the stand-in's DataFusion sessions (filled in below)."""

from __future__ import annotations

from typing import Any

from datafusion import SessionContext


def register(ctx: SessionContext) -> None:
    """Register the InfluxDB-specific functions into ``ctx``."""


def rewrite_sql(sql: str) -> str:
    """Rewrite InfluxDB-only SQL constructs into plain DataFusion SQL."""
    return sql


def post_process(ctx: SessionContext, df: Any, sql: str) -> Any:
    """Apply post-processing (gap filling) to a planned DataFrame."""
    return df
