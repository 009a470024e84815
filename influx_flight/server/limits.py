"""Guard rails of the stand-in: query text size, expression depth, concurrency, memory per query.

A real server must survive any request. DataFusion plans an expression tree recursively, so a
61 KB ``SELECT 1+1+...`` overflowed a thread's stack (SIGSEGV) and planning time grows with the
square of a chain's length: the text is checked here before anything parses it. Every query
holds one of ``max_concurrent_queries`` slots from planning until its stream is exhausted,
cancelled or dropped; a query that finds none free waits ``queue_timeout`` seconds, then fails
with RESOURCE_EXHAUSTED. Each DataFusion session gets its own memory pool of
``query_memory_bytes``, so one query cannot take the machine (Core's pool is shared: see
``docs/standin.md``). Imports no pyarrow at module level: the CLI reads the defaults.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from influx_flight.server.errors import QueryPlanError, ResourcesExhausted

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "DEFAULT_MAX_CONCURRENT_QUERIES",
    "DEFAULT_MAX_EXPRESSION_DEPTH",
    "DEFAULT_MAX_QUERY_BYTES",
    "Limits",
    "QuerySlots",
    "default_query_memory_bytes",
    "expression_depth",
]

#: Longest query text accepted (bytes of UTF-8), SQL or InfluxQL.
DEFAULT_MAX_QUERY_BYTES = 1024 * 1024
#: Deepest expression accepted: operators chained in one expression plus parentheses. 500
#: terms plan in about 0.7 s here; sqlparser itself refuses 50 nested parentheses.
DEFAULT_MAX_EXPRESSION_DEPTH = 500
#: Queries running at once; more wait for a slot (Core's default is unlimited).
DEFAULT_MAX_CONCURRENT_QUERIES = 16
#: Seconds a query waits for a slot before RESOURCE_EXHAUSTED.
DEFAULT_QUEUE_TIMEOUT = 30.0


def default_query_memory_bytes() -> int:
    """20% of physical memory, Core's ``--exec-mem-pool-bytes`` default (per query here)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - non-POSIX
        total = 8 * 1024**3
    return max(64 * 1024**2, total // 5)


@dataclass(frozen=True)
class Limits:
    """The configurable limits (``influx-flight serve --max-...`` flags)."""

    max_query_bytes: int = DEFAULT_MAX_QUERY_BYTES
    max_expression_depth: int = DEFAULT_MAX_EXPRESSION_DEPTH
    max_concurrent_queries: int = DEFAULT_MAX_CONCURRENT_QUERIES
    queue_timeout: float = DEFAULT_QUEUE_TIMEOUT
    query_memory_bytes: int | None = None  # None: default_query_memory_bytes()

    def __post_init__(self) -> None:
        for name in ("max_query_bytes", "max_expression_depth", "max_concurrent_queries"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1")
        if self.queue_timeout < 0:
            raise ValueError("queue_timeout must be >= 0 seconds")
        if self.query_memory_bytes is not None and self.query_memory_bytes < 1024 * 1024:
            raise ValueError("query_memory_bytes must be at least 1 MiB")

    @property
    def memory_bytes(self) -> int:
        return self.query_memory_bytes or default_query_memory_bytes()

    def check_query_text(self, text: str) -> None:
        """Refuse a query too long or too deep to plan safely (QueryPlanError, HTTP 400)."""
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.max_query_bytes:
            raise QueryPlanError(
                f"Error while planning query: the query is {size} bytes long, more than the"
                f" limit of {self.max_query_bytes} bytes (--max-query-bytes)"
            )
        depth = expression_depth(text, stop_after=self.max_expression_depth)
        if depth > self.max_expression_depth:
            raise QueryPlanError(
                "Error while planning query: an expression is nested more than"
                f" {self.max_expression_depth} levels deep (--max-expression-depth); use"
                " IN (...) instead of long OR chains, or split the expression"
            )


# -- expression depth -----------------------------------------------------------------------

_TOKENS = re.compile(
    r"""
    (?P<skip>\s+|--[^\n]*|/\*.*?\*/|'(?:[^']|'')*'|"(?:[^"]|"")*")
  | (?P<open>\() | (?P<close>\)) | (?P<sep>[,;])
  | (?P<op>>=|<=|<>|!=|::|\|\||=~|!~|[=<>+\-*/%^&|])
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)
_OPERATOR_WORDS = {"AND", "OR", "NOT", "LIKE", "ILIKE", "IS", "IN", "BETWEEN", "SIMILAR"}
_CLAUSE_WORDS = {
    "SELECT", "FROM", "WHERE", "GROUP", "ORDER", "HAVING", "LIMIT", "OFFSET", "UNION",
    "INTERSECT", "EXCEPT", "ON", "JOIN", "BY", "WHEN", "THEN", "ELSE", "END", "AS", "WITH",
    "FILL", "SLIMIT", "SOFFSET", "TZ",
}  # fmt: skip


def expression_depth(text: str, stop_after: int | None = None) -> int:
    """An upper bound of the deepest expression tree ``text`` can parse into.

    Counts, at each point, the binary operators chained since the last clause keyword or comma
    at every enclosing parenthesis level, plus the parentheses themselves. Linear in the text;
    stops early once ``stop_after`` is exceeded.
    """
    chains = [0]
    deepest = 0
    for match in _TOKENS.finditer(text):
        kind = match.lastgroup
        if kind == "skip" or kind == "other":
            continue
        if kind == "open":
            chains.append(0)
        elif kind == "close":
            if len(chains) > 1:
                chains.pop()
        elif kind == "sep":
            chains[-1] = 0
        elif kind == "op":
            chains[-1] += 1
        else:
            word = match.group().upper()
            if word in _OPERATOR_WORDS:
                chains[-1] += 1
            elif word in _CLAUSE_WORDS:
                chains[-1] = 0
            continue
        depth = sum(chains) + len(chains) - 1
        if depth > deepest:
            deepest = depth
            if stop_after is not None and deepest > stop_after:
                return deepest
    return deepest


# -- concurrency ----------------------------------------------------------------------------


class _Permit:
    """One query slot; released once, explicitly or when garbage collected."""

    __slots__ = ("_release",)

    def __init__(self, semaphore: threading.Semaphore) -> None:
        self._release: threading.Semaphore | None = semaphore

    def release(self) -> None:
        semaphore, self._release = self._release, None
        if semaphore is not None:
            semaphore.release()

    def __del__(self) -> None:
        self.release()


class QuerySlots:
    """At most ``limits.max_concurrent_queries`` queries between planning and end of stream."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._semaphore = threading.BoundedSemaphore(limits.max_concurrent_queries)
        self._lock = threading.Lock()
        self._running = 0

    def acquire(self) -> _Permit:
        """A permit, waiting up to ``queue_timeout``; raises ResourcesExhausted."""
        if not self._semaphore.acquire(timeout=self.limits.queue_timeout):
            raise ResourcesExhausted(
                "Resources exhausted: the query limit is reached"
                f" ({self.limits.max_concurrent_queries} queries running, waited"
                f" {self.limits.queue_timeout:g} s for a slot; --max-concurrent-queries):"
                " try again later"
            )
        return _Permit(self._semaphore)

    def hold_until_done(
        self, reader: pa.RecordBatchReader, permit: _Permit
    ) -> pa.RecordBatchReader:
        """``reader`` that frees ``permit`` (and closes ``reader``) when exhausted or dropped.

        A Flight stream the client cancels, or an HTTP response whose client went away, drops
        its reader: the permit is freed and DataFusion's stream, owned by the generator
        below, is dropped with it, which cancels its tasks.
        """

        import pyarrow as pa

        def batches(source: pa.RecordBatchReader, held: _Permit) -> Iterator[pa.RecordBatch]:
            try:
                yield from source
            finally:
                held.release()
                source.close()

        return pa.RecordBatchReader.from_batches(reader.schema, batches(reader, permit))
