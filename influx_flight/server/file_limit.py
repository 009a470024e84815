"""Core's query file limit: refuse a query that would scan more Parquet files than allowed.

InfluxDB 3 Core persists each table's rows as one Parquet file per gen1 window (10 minutes by
default) and has no compactor, so a query's cost grows with the time range it covers. Before
planning a table scan it keeps the files whose time range meets the query's time predicate and
refuses the query when more than ``--query-file-limit`` (432 by default, 72 hours of gen1 files)
remain (``influxdb3_write/src/write_buffer/mod.rs``, ``get_table_chunks``).

The stand-in has no files, so it counts them: every gen1 window holding rows of a table is one
file (Core writes at least that many: one per window per snapshot, and recent rows still in its
buffer are not files yet, so this count is at most a couple of files stricter). A scan's time
range comes from the ``time`` conditions DataFusion's optimizer leaves right above it (constant
bounds, ``now()`` already folded); conditions under ``OR``, or on expressions of ``time``, give
no bound, as for Core's pruning.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from influx_flight.server.errors import QueryFileLimitExceeded

__all__ = [
    "DEFAULT_GEN1_DURATION_NS",
    "DEFAULT_QUERY_FILE_LIMIT",
    "check_file_limit",
    "scan_time_ranges",
    "time_range_only",
]

#: Core's ``--query-file-limit`` default.
DEFAULT_QUERY_FILE_LIMIT = 432
#: Core's ``--gen1-duration`` default (10 minutes).
DEFAULT_GEN1_DURATION_NS = 600 * 1_000_000_000

_MIN = -(2**63)
_MAX = 2**63 - 1
_SCAN_LINE = re.compile(r"^(?P<indent> *)TableScan: (?P<table>.+?)(?: projection=\[.*)?$")
_FILTER_LINE = re.compile(r"^(?P<indent> *)Filter: (?P<predicate>.*)$")
_BOUND = re.compile(
    r"^(?P<column>\S+) (?P<op>>=|>|<=|<|=) TimestampNanosecond\((?P<value>-?\d+), [^)]*\)$"
)


def _split_top(text: str, keyword: str) -> list[str]:
    """``text`` split at `` keyword `` outside parentheses, brackets and quotes."""
    parts: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    i = 0
    sep = f" {keyword} "
    while i < len(text):
        c = text[i]
        if quote is not None:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in "([":
            depth += 1
        elif c in ")]":
            depth -= 1
        elif depth == 0 and text.startswith(sep, i):
            parts.append(text[start:i])
            i += len(sep)
            start = i
            continue
        i += 1
    parts.append(text[start:])
    return parts


def _conjunct_bounds(conjunct: str, table: str) -> tuple[int, int] | None:
    """Inclusive (low, high) of one ``time <op> TimestampNanosecond(..)`` condition, or None."""
    match = _BOUND.match(conjunct.strip())
    if match is None or match.group("column") not in (f"{table}.time", "time"):
        return None
    value, op = int(match.group("value")), match.group("op")
    low = value + 1 if op == ">" else value if op in (">=", "=") else _MIN
    high = value - 1 if op == "<" else value if op in ("<=", "=") else _MAX
    return low, high


def _bounds(predicate: str | None, table: str) -> tuple[int, int]:
    """Inclusive (low, high) nanosecond bounds of ``table.time`` that ``predicate`` implies."""
    low, high = _MIN, _MAX
    if predicate is None or len(_split_top(predicate, "OR")) > 1:
        return low, high
    for conjunct in _split_top(predicate, "AND"):
        bound = _conjunct_bounds(conjunct, table)
        if bound is not None:
            low, high = max(low, bound[0]), min(high, bound[1])
    return low, high


def time_range_only(predicate: str, table: str) -> tuple[int, int] | None:
    """Inclusive (low, high) when ``predicate`` is nothing but constant bounds on ``table``'s
    time (``time >= a AND time < b``), else None: a scan can then select that time range
    instead of evaluating the filter row by row."""
    if len(_split_top(predicate, "OR")) > 1:
        return None
    low, high = _MIN, _MAX
    for conjunct in _split_top(predicate, "AND"):
        bound = _conjunct_bounds(conjunct, table)
        if bound is None:
            return None
        low, high = max(low, bound[0]), min(high, bound[1])
    return low, high


def scan_time_ranges(plan: str) -> list[tuple[str, int, int]]:
    """(table, low, high) for every table scan of an optimized logical plan's indented text."""
    lines = plan.splitlines()
    scans = []
    for i, line in enumerate(lines):
        scan = _SCAN_LINE.match(line)
        if scan is None:
            continue
        table = scan.group("table").split(" ", 1)[0].rstrip(",")
        predicate = None
        if i > 0:
            parent = _FILTER_LINE.match(lines[i - 1])
            if parent is not None and len(parent.group("indent")) == len(scan.group("indent")) - 2:
                predicate = parent.group("predicate")
        scans.append((table, *_bounds(predicate, table)))
    return scans


def file_windows(table: Any, batches: Sequence[pa.RecordBatch], gen1_ns: int) -> np.ndarray:
    """Sorted start times of the gen1 windows holding rows of ``batches`` (cached per batch)."""
    cache: dict[int, tuple[pa.RecordBatch, np.ndarray]] = table.file_windows
    parts = []
    for batch in batches:
        cached = cache.get(id(batch))
        if cached is None or cached[0] is not batch:
            times = batch.column("time").view(pa.int64()).to_numpy(zero_copy_only=False)
            cached = (batch, np.unique(times // gen1_ns))
            cache[id(batch)] = cached
        parts.append(cached[1])
    if not parts:
        return np.empty(0, dtype=np.int64)
    return np.unique(np.concatenate(parts)) * gen1_ns


def _unqualified(name: str) -> str:
    """``wide`` for ``public.iox.wide``, ``iox.wide`` or ``"wide"`` (InfluxQL plans qualify)."""
    for prefix in ("public.iox.", "iox."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return name.strip('"')


def check_file_limit(
    plan: str,
    tables: Mapping[str, tuple[Any, list[pa.RecordBatch]]],
    limit: int,
    gen1_ns: int = DEFAULT_GEN1_DURATION_NS,
) -> None:
    """Raise QueryFileLimitExceeded when a scan of ``plan`` would read more than ``limit`` files.

    ``tables`` maps names to (table, batches) as in the engine's snapshot; ``limit`` 0 turns
    the check off.
    """
    if limit <= 0:
        return
    for name, low, high in scan_time_ranges(plan):
        entry = tables.get(name) or tables.get(_unqualified(name))
        if entry is None:
            continue
        starts = file_windows(entry[0], entry[1], gen1_ns)
        if len(starts) <= limit:
            continue
        # files whose window [start, start + gen1) meets [low, high]
        first = np.searchsorted(starts, max(low, _MIN + gen1_ns) - gen1_ns, side="right")
        last = np.searchsorted(starts, high, side="right")
        if int(last - first) > limit:
            raise QueryFileLimitExceeded(limit)
