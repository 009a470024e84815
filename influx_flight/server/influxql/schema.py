"""Measurements' tags and fields as the planner sees them, and the result's fixed columns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

GROUP_KEY_METADATA = b"iox::influxql::group_key::metadata"


MEASUREMENT = "iox::measurement"


@dataclass
class Schema:
    """Tags and fields of one measurement (or the union over all selected ones)."""

    tags: list[str] = field(default_factory=list)
    fields: dict[str, pa.DataType] = field(default_factory=dict)


def engine_tables(engine: Any, database: str) -> dict[str, Schema]:
    out: dict[str, Schema] = {}
    for name, ts_ in engine.tables(database).items():
        out[name] = Schema(tags=sorted(ts_.tags), fields=dict(ts_.fields))
    return out


def field_type_name(t: pa.DataType) -> str:
    """InfluxQL's name of a field's type (SHOW FIELD KEYS, errors)."""
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_unsigned_integer(t):
        return "unsigned"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_boolean(t):
        return "boolean"
    return "string"


def is_numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


def common_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if is_numeric(a) and is_numeric(b):
        return pa.float64()
    return pa.string()


__all__ = [
    "GROUP_KEY_METADATA",
    "MEASUREMENT",
    "Schema",
    "common_type",
    "engine_tables",
    "field_type_name",
    "is_numeric",
]
