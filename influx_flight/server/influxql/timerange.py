"""The time part of an InfluxQL WHERE clause: RFC3339/epoch/now() literals and the bounds they set."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql.parser import not_implemented

SECOND = 1_000_000_000  # nanoseconds


_RFC3339 = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time_string(text: str, tz: ZoneInfo | None = None) -> int:
    """RFC3339 (or ``YYYY-MM-DD[ HH:MM:SS[.f]]``) to epoch nanoseconds."""
    m = _RFC3339.match(text.strip())
    if not m:
        raise QueryPlanError(
            f"Error during planning: invalid time literal {text!r}: expected RFC3339, "
            "e.g. '2022-01-01T08:00:00Z'"
        )
    date, clock, frac, zone = m.groups()
    clock = clock or "00:00:00"
    if len(clock) == 5:
        clock += ":00"
    iso = f"{date}T{clock}" + ("+00:00" if zone in (None, "Z") else zone)
    try:
        dt = datetime.fromisoformat(iso)
    except ValueError as exc:
        raise QueryPlanError(
            f"Error during planning: invalid time literal {text!r}: {exc}"
        ) from exc
    if zone is None and tz is not None:
        dt = dt.replace(tzinfo=tz)
    seconds = int(dt.timestamp())
    nanos = int((frac or "0").ljust(9, "0"))
    return seconds * SECOND + nanos


@dataclass
class TimeRange:
    lower: int | None = None  # inclusive, ns
    upper: int | None = None  # inclusive, ns

    def restrict(self, op: str, value: int) -> None:
        if op in (">", ">="):
            v = value + 1 if op == ">" else value
            self.lower = v if self.lower is None else max(self.lower, v)
        elif op in ("<", "<="):
            v = value - 1 if op == "<" else value
            self.upper = v if self.upper is None else min(self.upper, v)
        elif op == "=":
            self.restrict(">=", value)
            self.restrict("<=", value)
        else:
            raise QueryPlanError(
                f"Error during planning: invalid time comparison operator {op}: use =, <, <=, >, >="
            )


def is_time(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.VarRef) and expr.name.lower() == "time"


def mentions_time(expr: ast.Expr | None) -> bool:
    if expr is None:
        return False
    if is_time(expr):
        return True
    if isinstance(expr, ast.BinaryExpr):
        return mentions_time(expr.lhs) or mentions_time(expr.rhs)
    if isinstance(expr, ast.Paren):
        return mentions_time(expr.expr)
    if isinstance(expr, ast.Call):
        return any(mentions_time(a) for a in expr.args)
    return False


def strip_parens(expr: ast.Expr) -> ast.Expr:
    while isinstance(expr, ast.Paren):
        expr = expr.expr
    return expr


def conjuncts(expr: ast.Expr | None) -> list[ast.Expr]:
    if expr is None:
        return []
    expr = strip_parens(expr)
    if isinstance(expr, ast.BinaryExpr) and expr.op == "AND":
        return conjuncts(expr.lhs) + conjuncts(expr.rhs)
    return [expr]


_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "!=": "!="}


def time_value(expr: ast.Expr, now_ns: int, tz: ZoneInfo | None) -> int:
    """Evaluate the non-time side of a time comparison to epoch nanoseconds."""
    expr = strip_parens(expr)
    if isinstance(expr, ast.StringLit):
        return parse_time_string(expr.value, tz)
    if isinstance(expr, ast.IntegerLit):
        return expr.value
    if isinstance(expr, ast.NumberLit):
        return int(expr.value)
    if isinstance(expr, ast.DurationLit):
        return expr.ns
    if isinstance(expr, ast.Call) and expr.name == "now" and not expr.args:
        return now_ns
    if isinstance(expr, ast.BinaryExpr) and expr.op in ("+", "-"):
        lhs = time_value(expr.lhs, now_ns, tz)
        rhs = time_value(expr.rhs, now_ns, tz)
        return lhs + rhs if expr.op == "+" else lhs - rhs
    raise QueryPlanError(
        "Error during planning: invalid time condition: compare time with an RFC3339 string, "
        "an epoch number (e.g. 1641024000s) or now() +/- a duration"
    )


def split_condition(
    condition: ast.Expr | None, now_ns: int, tz: ZoneInfo | None
) -> tuple[TimeRange, list[ast.Expr]]:
    """Pull the time bounds out of the top-level AND; return them and the rest."""
    rng, rest = TimeRange(), []
    for c in conjuncts(condition):
        if isinstance(c, ast.BinaryExpr) and c.op in _FLIP and (is_time(c.lhs) or is_time(c.rhs)):
            if is_time(c.lhs):
                op, other = c.op, c.rhs
            else:
                op, other = _FLIP[c.op], c.lhs
            if op == "!=":
                raise not_implemented("time != conditions")
            rng.restrict(op, time_value(other, now_ns, tz))
        elif mentions_time(c):
            raise not_implemented(
                "time conditions combined with OR or nested in expressions; "
                "AND the time bounds with the rest of the WHERE clause"
            )
        else:
            rest.append(c)
    return rng, rest


__all__ = [
    "SECOND",
    "TimeRange",
    "conjuncts",
    "is_time",
    "mentions_time",
    "parse_time_string",
    "split_condition",
    "strip_parens",
    "time_value",
]
