"""SQL text for the InfluxQL planner: quoting, literals, types, and DataFusion's errors mapped to
the server's."""

from __future__ import annotations

import os

import pyarrow as pa

from influx_flight.server.errors import QueryPlanError, ServerError
from influx_flight.server.influxql.schema import field_type_name


def qi(name: str) -> str:
    """Quote an SQL identifier."""
    return '"' + name.replace('"', '""') + '"'


def qs(value: str) -> str:
    """Quote an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"


def ts(ns: int) -> str:
    """A timestamp[ns] literal."""
    return f"arrow_cast({int(ns)}, 'Timestamp(Nanosecond, None)')"


def lit(value: int | float | str | bool) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise QueryPlanError(f"Error during planning: invalid number literal {value}")
        return repr(value)
    return qs(value)


_SQL_TYPES = {
    "float": "DOUBLE",
    "unsigned": "BIGINT UNSIGNED",
    "integer": "BIGINT",
    "boolean": "BOOLEAN",
    "string": "VARCHAR",
}


def sql_type(t: pa.DataType) -> str:
    """The SQL type of an InfluxDB field type (by its InfluxQL kind)."""
    return _SQL_TYPES[field_type_name(t)]


def plan_error(exc: Exception, sql: str | None = None) -> ServerError:
    """Map a DataFusion exception to the server's error (planning problems are the user's)."""
    if isinstance(exc, ServerError):
        return exc
    msg = str(exc)
    if sql is not None and os.environ.get("INFLUX_FLIGHT_INFLUXQL_DEBUG"):
        msg += f" [generated SQL: {sql}]"
    if "Resources exhausted" in msg:
        from influx_flight.server.errors import ResourcesExhausted

        return ResourcesExhausted(msg)
    if "Internal error" in msg:
        from influx_flight.server.errors import QueryInternalError

        return QueryInternalError(msg)
    return QueryPlanError(msg)


__all__ = ["lit", "plan_error", "qi", "qs", "sql_type", "ts"]
