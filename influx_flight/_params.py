"""Query parameters and InfluxDB 3's JSON DoGet ticket (shared by the ticket and Flight SQL
paths, so neither imports the other)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from ._exceptions import ConfigurationError
from .time import format_time

__all__ = ["build_ticket", "param_value"]


def param_value(name: str, value: Any) -> Any:
    """A query parameter as a JSON value (aware datetimes become RFC 3339 UTC text)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigurationError(
                f"params: {name!r} is a naive datetime; InfluxDB stores UTC, so pass an aware "
                "datetime (e.g. datetime(..., tzinfo=timezone.utc))",
                field="params",
            )
        return format_time(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    raise ConfigurationError(
        f"params: {name!r} has unsupported type {type(value).__name__}; use str, int, float, "
        "bool, None or an aware datetime",
        field="params",
    )


def build_ticket(
    database: str, query: str, language: str, params: Mapping[str, Any] | None
) -> bytes:
    """InfluxDB 3's JSON DoGet ticket (protocol reference §1.2)."""
    doc: dict[str, Any] = {"database": database, "sql_query": query, "query_type": language}
    if params:
        doc["params"] = {str(k): param_value(str(k), v) for k, v in params.items()}
    return json.dumps(doc).encode()
