"""User-supplied regular expressions, matched in linear time.

InfluxQL's ``/regex/`` (measurements, fields, tags, GROUP BY) and Flight SQL's LIKE filters
come from clients. Python's ``re`` backtracks: ``/^(a+)+$/`` against a 28-character name takes
seconds while holding the GIL, freezing every other request. RE2 (the syntax InfluxDB itself
uses, through Go's ``regexp`` and Rust's ``regex``) matches in time linear in the input.
"""

from __future__ import annotations

from typing import Protocol

import re2

from influx_flight.server.errors import QueryPlanError

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False  # errors are raised to the caller, not printed on stderr


class Pattern(Protocol):
    """What callers use of a compiled pattern (``re2`` and ``re`` share it)."""

    def search(self, text: str) -> object | None: ...

    def fullmatch(self, text: str) -> object | None: ...


def compile_regex(pattern: str, *, dotall: bool = False) -> Pattern:
    """Compile ``pattern`` with RE2; an invalid pattern is the user's planning error."""
    options = _OPTIONS
    if dotall:
        options = re2.Options()
        options.log_errors = False
        options.dot_nl = True
    try:
        return re2.compile(pattern, options=options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise QueryPlanError(f"Error during planning: invalid regex /{pattern}/: {reason}") from exc


__all__ = ["Pattern", "compile_regex"]
