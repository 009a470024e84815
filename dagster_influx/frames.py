"""One conversion between the frames users return (pyarrow, pandas, polars) and Arrow tables.

Both IO managers go through here, so a pandas `DatetimeIndex` becomes the time column the same
way everywhere instead of being dropped, and polars stays an optional extra (imported only
when a polars frame or annotation shows up).
"""

from __future__ import annotations

from typing import Any, Literal

import pyarrow as pa

__all__ = ["FrameKind", "from_arrow", "is_pandas", "is_polars", "to_arrow", "wanted_kind"]

FrameKind = Literal["arrow", "pandas", "polars"]


def is_pandas(obj: object) -> bool:
    return type(obj).__module__.startswith("pandas")


def is_polars(obj: object) -> bool:
    return type(obj).__module__.startswith("polars")


def to_arrow(obj: Any, *, time_column: str = "time") -> pa.Table:
    """An Arrow table of a pyarrow table, a pandas DataFrame or a polars DataFrame.

    A pandas `DatetimeIndex` becomes a column named after the index (or `time_column` when it
    has no name); other named indexes become columns too; a default `RangeIndex` is dropped.
    """
    if isinstance(obj, pa.Table):
        return obj
    if is_polars(obj):
        return obj.to_arrow()
    if is_pandas(obj):
        return _pandas_to_arrow(obj, time_column)
    raise TypeError(
        f"expected a pyarrow.Table, pandas.DataFrame or polars.DataFrame, got {type(obj).__name__}"
    )


def _pandas_to_arrow(frame: Any, time_column: str) -> pa.Table:
    import pandas as pd

    index = frame.index
    if isinstance(index, pd.DatetimeIndex):
        name = index.name or time_column
        if name in frame.columns:
            raise ValueError(
                f"The DataFrame has a DatetimeIndex and also a column {name!r}; drop one of them"
                " or name the index differently."
            )
        frame = frame.reset_index(names=name)
    elif isinstance(index, pd.RangeIndex) and index.name is None:
        pass  # the default index carries no data
    elif all(name is not None for name in index.names):
        frame = frame.reset_index()
    else:
        raise ValueError(
            f"The DataFrame has an unnamed {type(index).__name__}; name it (it becomes a column)"
            " or reset_index(drop=True)."
        )
    return pa.Table.from_pandas(frame, preserve_index=False)


def wanted_kind(typing_type: object) -> FrameKind:
    """The frame kind an input's type annotation asks for (Arrow by default)."""
    module = getattr(typing_type, "__module__", "") or ""
    if module.startswith("pandas"):
        return "pandas"
    if module.startswith("polars"):
        return "polars"
    return "arrow"


def from_arrow(table: pa.Table, kind: FrameKind) -> Any:
    if kind == "pandas":
        return table.to_pandas()
    if kind == "polars":
        import polars as pl

        return pl.from_arrow(table)
    return table
