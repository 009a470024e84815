"""What the sensor and its trigger evaluate: a declarative, serialisable wait condition.

A condition is "the query returns at least ``min_rows`` rows" and, optionally, "the first value of
the first row compares to ``value`` with ``op``" (InfluxQL's ``iox::measurement`` and ``time``
columns are skipped when picking the value). Both the poking sensor and the deferred trigger
use :func:`probe` and :func:`condition_met`, so the two modes cannot disagree.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from influx_flight import InfluxDB3Client

OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    ">": operator.gt,
    ">=": operator.ge,
    "<": operator.lt,
    "<=": operator.le,
}
TRUTHY = "truthy"


def validate(min_rows: int, value_op: str | None, value: Any) -> None:
    """Refuse an impossible condition at DAG parse time, saying what is accepted."""
    if isinstance(min_rows, bool) or not isinstance(min_rows, int) or min_rows < 1:
        raise ValueError(f"min_rows must be an integer >= 1, got {min_rows!r}")
    if value_op is None:
        if value is not None:
            raise ValueError(f"value={value!r} needs value_op (one of {', '.join(OPERATORS)})")
        return
    if value_op == TRUTHY:
        return
    if value_op not in OPERATORS:
        raise ValueError(
            f"value_op must be one of {', '.join([TRUTHY, *OPERATORS])}, got {value_op!r}"
        )
    if value is None:
        raise ValueError(f"value_op={value_op!r} needs a value to compare with")


@dataclass(frozen=True)
class Probe:
    """The outcome of one poke: rows seen (counting stops at ``min_rows``) and the first cell."""

    rows: int
    first_value: Any
    #: The queried table does not exist yet (InfluxDB 3 creates tables on their first write).
    missing_table: bool = False


MISSING_TABLE_CHOICES = ("wait", "fail")


def is_missing_table(exc: BaseException) -> bool:
    """True when a query failed only because its table does not exist (yet)."""
    import re

    import influx_flight

    not_found = getattr(influx_flight, "TableNotFoundError", None)
    if not_found is not None and isinstance(exc, not_found):
        return True
    from influx_flight import QueryError

    message = str(getattr(exc, "server_message", None) or exc)
    return isinstance(exc, QueryError) and bool(
        re.search(
            r"table '[^']*' not found|table .* does not exist|measurement not found", message, re.I
        )
    )


def probe(
    client: InfluxDB3Client,
    query: str,
    *,
    language: str,
    params: Mapping[str, Any] | None,
    protocol: str,
    min_rows: int,
    missing_table: str = "wait",
) -> Probe:
    """Run the query, reading batches only until ``min_rows`` rows have arrived.

    A table that does not exist yet counts as no rows (``missing_table="wait"``) or raises
    (``"fail"``).
    """
    kwargs: dict[str, Any] = {"language": language, "protocol": protocol}
    if params:
        kwargs["params"] = dict(params)
    try:
        return _count(client.query(query, **kwargs), language, min_rows)
    except Exception as exc:
        if missing_table == "wait" and is_missing_table(exc):
            return Probe(rows=0, first_value=None, missing_table=True)
        raise


def _count(result: Any, language: str, min_rows: int) -> Probe:
    rows = 0
    first: Any = None
    try:
        for batch in result:
            if rows == 0 and batch.num_rows:
                column = _value_column(batch.schema.names, language)
                if column is not None:
                    first = batch.column(column)[0].as_py()
            rows += batch.num_rows
            if rows >= min_rows:
                break
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return Probe(rows=rows, first_value=first)


def _value_column(names: list[str], language: str) -> int | None:
    """The column holding "the value": the first one, skipping InfluxQL's measurement and time."""
    skip = {"iox::measurement", "time"} if language == "influxql" else {"iox::measurement"}
    return next((i for i, name in enumerate(names) if name not in skip), None)


def condition_met(found: Probe, *, min_rows: int, value_op: str | None, value: Any) -> bool:
    """True when the probe satisfies the condition (row count first, then the first cell)."""
    if found.rows < min_rows:
        return False
    if value_op is None:
        return True
    if value_op == TRUTHY:
        return bool(found.first_value)
    if found.first_value is None:
        return False
    try:
        return OPERATORS[value_op](found.first_value, value)
    except TypeError as exc:
        raise TypeError(
            f"cannot compare the first value {found.first_value!r} "
            f"({type(found.first_value).__name__}) {value_op} {value!r}: {exc}"
        ) from None


def json_safe(value: Any) -> Any:
    """A cell value that survives trigger events and XCom (datetimes become ISO-8601)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    from datetime import datetime

    if isinstance(value, datetime):  # InfluxDB 3 times are UTC, zone or not
        from airflow_influx.hooks._rows import plain_value

        return plain_value(value).isoformat()
    isoformat = getattr(value, "isoformat", None)
    if isoformat is not None:
        return isoformat()
    return str(value)
