"""Plain DB-API values from Arrow: what common.sql, XCom and users expect of a row."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


def plain_value(value: Any) -> Any:
    """``pandas.Timestamp`` / naive ``datetime`` -> aware ``datetime`` in UTC; others as they are."""
    if isinstance(value, datetime):
        to_py = getattr(value, "to_pydatetime", None)
        if to_py is not None:  # pandas.Timestamp (a datetime subclass)
            value = to_py(warn=False) if _accepts_warn(to_py) else to_py()
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    return value


def _accepts_warn(fn: Any) -> bool:
    try:
        fn(warn=False)
    except TypeError:
        return False
    return True


def plain_row(row: Any) -> tuple:
    return tuple(plain_value(v) for v in row)


def table_rows(table: Any) -> list[tuple]:
    """A ``pyarrow.Table`` as a list of tuples of plain values (timestamps as UTC ``datetime``)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in table.columns:
        if pa.types.is_timestamp(column.type):
            # datetime has microseconds; nanoseconds below that are dropped, not rounded.
            column = pc.cast(column, pa.timestamp("us", tz="UTC"), safe=False)
        columns.append(column.to_pylist())
    return [plain_row(r) for r in zip(*columns, strict=True)] if columns else []
