"""InfluxQL SELECT -> DataFusion SQL, one query per measurement, streamed in measurement order.

The shape follows InfluxDB 3 (``influxdb3-protocol.md`` §4.1): ``iox::measurement``, ``time``,
the GROUP BY tags not projected (sorted), then the projection; rows ordered by measurement,
GROUP BY tags, time. The values follow InfluxQL's semantics (windows, fill, selectors,
transformations), all computed by DataFusion: aggregates, window functions for fill(previous),
fill(linear) and the transformations, ``generate_series`` for the window grid.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa
import pyarrow.compute as pc

from influx_flight.server.errors import QueryPlanError, ServerError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql import functions as fn
from influx_flight.server.influxql.parser import not_implemented
from influx_flight.server.regex import Pattern, compile_regex

GROUP_KEY_METADATA = b"iox::influxql::group_key::metadata"
MEASUREMENT = "iox::measurement"
MAX_WINDOWS = 1_000_000
_SECOND = 1_000_000_000


# --------------------------------------------------------------------------- SQL helpers
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


# --------------------------------------------------------------------------- time handling
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
    return seconds * _SECOND + nanos


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


def _is_time(expr: ast.Expr) -> bool:
    return isinstance(expr, ast.VarRef) and expr.name.lower() == "time"


def _mentions_time(expr: ast.Expr | None) -> bool:
    if expr is None:
        return False
    if _is_time(expr):
        return True
    if isinstance(expr, ast.BinaryExpr):
        return _mentions_time(expr.lhs) or _mentions_time(expr.rhs)
    if isinstance(expr, ast.Paren):
        return _mentions_time(expr.expr)
    if isinstance(expr, ast.Call):
        return any(_mentions_time(a) for a in expr.args)
    return False


def _strip(expr: ast.Expr) -> ast.Expr:
    while isinstance(expr, ast.Paren):
        expr = expr.expr
    return expr


def conjuncts(expr: ast.Expr | None) -> list[ast.Expr]:
    if expr is None:
        return []
    expr = _strip(expr)
    if isinstance(expr, ast.BinaryExpr) and expr.op == "AND":
        return conjuncts(expr.lhs) + conjuncts(expr.rhs)
    return [expr]


_FLIP = {">": "<", ">=": "<=", "<": ">", "<=": ">=", "=": "=", "!=": "!="}


def time_value(expr: ast.Expr, now_ns: int, tz: ZoneInfo | None) -> int:
    """Evaluate the non-time side of a time comparison to epoch nanoseconds."""
    expr = _strip(expr)
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
        if isinstance(c, ast.BinaryExpr) and c.op in _FLIP and (_is_time(c.lhs) or _is_time(c.rhs)):
            if _is_time(c.lhs):
                op, other = c.op, c.rhs
            else:
                op, other = _FLIP[c.op], c.lhs
            if op == "!=":
                raise not_implemented("time != conditions")
            rng.restrict(op, time_value(other, now_ns, tz))
        elif _mentions_time(c):
            raise not_implemented(
                "time conditions combined with OR or nested in expressions; "
                "AND the time bounds with the rest of the WHERE clause"
            )
        else:
            rest.append(c)
    return rng, rest


# --------------------------------------------------------------------------- schema
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


def _field_type_name(t: pa.DataType) -> str:
    if pa.types.is_floating(t):
        return "float"
    if pa.types.is_unsigned_integer(t):
        return "unsigned"
    if pa.types.is_integer(t):
        return "integer"
    if pa.types.is_boolean(t):
        return "boolean"
    return "string"


def _numeric(t: pa.DataType) -> bool:
    return pa.types.is_integer(t) or pa.types.is_floating(t)


# --------------------------------------------------------------------------- naming
def column_name(expr: ast.Expr) -> str:
    """InfluxQL's default column name: function name, or the var refs joined by '_'."""
    expr = _strip(expr)
    if isinstance(expr, ast.Call):
        return expr.name
    if isinstance(expr, ast.VarRef):
        return expr.name
    if isinstance(expr, ast.BinaryExpr):
        parts = [p for p in (column_name(expr.lhs), column_name(expr.rhs)) if p]
        return "_".join(parts)
    return ""


def dedupe(names: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    taken = set(names)
    for n in names:
        if n not in seen:
            seen[n] = 0
            out.append(n)
            continue
        while True:
            seen[n] += 1
            cand = f"{n}_{seen[n]}"
            if cand not in taken:
                break
        taken.add(cand)
        out.append(cand)
    return out


# --------------------------------------------------------------------------- planner
@dataclass
class TransformSpec:
    col: str
    name: str
    arg: ast.Expr
    n: int | None = None  # moving_average window
    unit: int | None = None  # derivative/elapsed unit (ns)
    group: int = 0  # transformations of the same argument share one window pass


class SelectPlanner:
    """Plans and runs one SELECT statement against ``engine``."""

    def __init__(self, engine: Any, database: str, stmt: ast.SelectStatement, now_ns: int) -> None:
        self.engine = engine
        self.database = database
        self.stmt = stmt
        self.now_ns = now_ns
        self.zone: ZoneInfo | None = None
        if stmt.tz is not None:
            try:
                self.zone = ZoneInfo(stmt.tz)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise QueryPlanError(
                    f"Error during planning: unable to find time zone {stmt.tz!r}: "
                    "use an IANA name such as 'America/Chicago'"
                ) from exc

    @classmethod
    def condition_compiler(cls, rng: TimeRange, rest: list[ast.Expr]) -> SelectPlanner:
        """A planner that only compiles WHERE clauses (for SHOW statements' data scans)."""
        planner = cls.__new__(cls)
        planner.range, planner.rest, planner.union = rng, rest, Schema()
        return planner

    # -- entry -----------------------------------------------------------------------------
    def run(self) -> pa.RecordBatchReader:
        """Resolve measurements, analyse the statement, plan one SQL query each, stream."""
        stmt = self.stmt
        if stmt.slimit is not None or stmt.soffset is not None:
            raise not_implemented("SLIMIT or SOFFSET")
        for src in stmt.sources:
            if isinstance(src, ast.SelectStatement):
                raise not_implemented("subqueries")
            if src.database is not None:
                raise not_implemented("database prefix in qualified measurement syntax")
        tables = engine_tables(self.engine, self.database)
        names: set[str] = set()
        for src in stmt.sources:
            assert isinstance(src, ast.Measurement)
            if src.regex is not None:
                rx = self._regex(src.regex)
                names.update(n for n in tables if rx.search(n))
            elif src.name in tables:
                names.add(src.name)
        measurements = sorted(names)
        if not measurements:
            return pa.RecordBatchReader.from_batches(pa.schema([(MEASUREMENT, pa.string())]), [])

        union = Schema()
        for m in measurements:
            for t in tables[m].tags:
                if t not in union.tags:
                    union.tags.append(t)
            for f, typ in tables[m].fields.items():
                union.fields.setdefault(f, typ)
        union.tags.sort()
        self.union = union

        self.range, self.rest = split_condition(stmt.condition, self.now_ns, self.zone)
        self._dimensions()
        try:
            self._projection()
        except _NothingSelected:
            return pa.RecordBatchReader.from_batches(pa.schema([(MEASUREMENT, pa.string())]), [])
        if self.range.upper is None and self.interval is not None:
            self.range.upper = self.now_ns  # InfluxQL: GROUP BY time defaults the end to now()
        # Transformations of windows look back: like InfluxQL, widen the range so the first
        # window of the answer has its predecessors, and cut the extra windows off at the end.
        self.output_lower: int | None = None
        if self.transforms and self.interval is not None and self.range.lower is not None:
            # One interval, whatever moving_average's N (as 1.x does); none for cumulative_sum.
            back = 1 if any(c.name != "cumulative_sum" for c in self.transforms) else 0
            if back:
                # 1.x reads exactly `back` intervals earlier (not aligned to windows).
                self.orig_lower = self.range.lower
                self.output_lower = self._bin(self.range.lower)
                self.range.lower = self.range.lower - back * self.interval

        session = self.engine.session(self.database)
        frames = []
        for m in measurements:
            sql = self._measurement_sql(m, tables[m], session)
            if sql is None:
                continue
            try:
                frames.append(session.sql(sql))
            except Exception as exc:
                raise plan_error(exc, sql) from exc
        return self._stream(frames)

    # -- analysis --------------------------------------------------------------------------
    def _regex(self, pattern: str) -> Pattern:
        return compile_regex(pattern)

    def _dimensions(self) -> None:
        """GROUP BY: the time interval/offset and the (sorted) tag keys that group."""
        self.interval: int | None = None
        self.offset = 0
        group: set[str] = set()
        for d in self.stmt.dimensions:
            if isinstance(d, ast.TimeDimension):
                if self.interval is not None:
                    raise QueryPlanError(
                        "Error during planning: multiple time dimensions in GROUP BY"
                    )
                iv = _strip(d.interval)
                if not isinstance(iv, ast.DurationLit) or iv.ns <= 0:
                    raise QueryPlanError(
                        "Error during planning: GROUP BY time() needs a positive duration, "
                        "e.g. time(1h)"
                    )
                self.interval = iv.ns
                if d.offset is not None:
                    off = _strip(d.offset)
                    if isinstance(off, ast.DurationLit):
                        self.offset = off.ns
                    elif isinstance(off, ast.Call) and off.name == "now" and not off.args:
                        self.offset = self.now_ns
                    else:
                        raise QueryPlanError(
                            "Error during planning: GROUP BY time() offset must be a duration "
                            "or now()"
                        )
            elif isinstance(d, ast.TagDimension):
                if d.name.lower() == "time":
                    raise QueryPlanError(
                        "Error during planning: time() is a function and expects at least one "
                        "argument"
                    )
                group.add(d.name)
            elif isinstance(d, ast.RegexDimension):
                rx = self._regex(d.pattern)
                group.update(t for t in self.union.tags if rx.search(t))
            else:
                group.update(self.union.tags)
        # Only tags group; naming a field in GROUP BY groups by nothing (as InfluxQL does).
        self.group_tags = sorted(g for g in group if g not in self.union.fields)

    def _expand(self, f: ast.Field) -> list[ast.Field]:
        """Expand ``*``, ``/re/`` and ``fn(*)``/``fn(/re/)`` against the union schema."""
        expr = _strip(f.expr)
        u = self.union
        tags = [t for t in u.tags if t not in self.group_tags]
        if isinstance(expr, ast.Wildcard | ast.RegexLit):
            rx = self._regex(expr.pattern) if isinstance(expr, ast.RegexLit) else None
            hint = expr.type_hint if isinstance(expr, ast.Wildcard) else None
            names: list[tuple[str, str]] = []
            if hint in (None, "field"):
                names += [(n, "field") for n in u.fields]
            if hint in (None, "tag"):
                names += [(n, "tag") for n in tags]
            names.sort()
            return [ast.Field(ast.VarRef(n, h)) for n, h in names if rx is None or rx.search(n)]
        inner = _strip(expr.args[0]) if isinstance(expr, ast.Call) and expr.args else None
        nested = isinstance(inner, ast.Call) and bool(inner.args)
        pattern = _strip(inner.args[0]) if nested else inner  # type: ignore[union-attr]
        if isinstance(pattern, ast.Wildcard | ast.RegexLit):
            # fn(*), fn(/re/) and transform(agg(*)): one column per matching field, named
            # fn_<field> (the outer function's name, as InfluxQL).
            assert isinstance(expr, ast.Call)
            rx = self._regex(pattern.pattern) if isinstance(pattern, ast.RegexLit) else None
            applied = inner.name if nested else expr.name  # type: ignore[union-attr]
            out = []
            for n in sorted(u.fields):
                if rx is not None and not rx.search(n):
                    continue
                if applied not in fn.ANY_TYPE and not _numeric(u.fields[n]):
                    continue
                ref: ast.Expr = ast.VarRef(n)
                if nested:
                    ref = ast.Call(inner.name, (ref, *inner.args[1:]))  # type: ignore[union-attr]
                call = ast.Call(expr.name, (ref, *expr.args[1:]))
                out.append(ast.Field(call, f"{expr.name}_{n}"))
            return out
        return [f]

    def _projection(self) -> None:
        """Expand the SELECT list, name its columns and classify the query (raw/aggregate/...)."""
        fields: list[ast.Field] = []
        self.time_alias = "time"
        for f in self.stmt.fields:
            if _is_time(_strip(f.expr)):
                if f.alias:
                    self.time_alias = f.alias
                continue
            fields.extend(self._expand(f))
        if not fields:
            if any(_is_pattern(f.expr) for f in self.stmt.fields):
                raise _NothingSelected  # a wildcard/regex matched nothing: empty answer
            raise QueryPlanError(
                "Error during planning: statement must have at least one field in select clause"
            )
        fields = _with_selected_tags(fields)
        self.fields = fields
        self.names = dedupe([f.alias or column_name(f.expr) for f in fields])
        calls: list[ast.Call] = []
        for f in fields:
            self._validate(f.expr, calls, top=True)
        self.calls = calls
        self.top_call: ast.Call | None = next((c for c in calls if c.name in fn.TOP_BOTTOM), None)
        if self.top_call is not None:
            if len(calls) > 1:
                raise QueryPlanError(
                    f"Error during planning: selector function {self.top_call.name}() cannot be "
                    "combined with other functions"
                )
            if not any(_strip(f.expr) is self.top_call for f in fields):
                raise QueryPlanError(
                    f"Error during planning: {self.top_call.name}() cannot be used inside an "
                    "expression"
                )
        self.has_agg = any(c.name in fn.AGGREGATES | fn.SELECTORS for c in calls)
        self.transforms = [c for c in calls if c.name in fn.TRANSFORMS]
        self.is_distinct = any(
            isinstance(_strip(f.expr), ast.Call) and _strip(f.expr).name == "distinct"
            for f in fields
        )
        aggs = [c for c in calls if c.name in fn.AGGREGATES | fn.SELECTORS]
        self.lone_selector: ast.Call | None = None
        if len(aggs) == 1 and aggs[0].name in fn.SELECTORS and not self.transforms:
            self.lone_selector = aggs[0]
        for f in fields:
            if _mentions_time(f.expr):
                raise not_implemented("time in SELECT expressions (select time on its own)")
            if not _has_var(f.expr):
                raise QueryPlanError(
                    "Error during planning: field must contain at least one variable"
                )
        if (self.has_agg and not self.lone_selector) or self.transforms:
            for f in fields:
                if _has_bare_ref(f.expr):
                    raise QueryPlanError(
                        "Error during planning: mixing aggregate and non-aggregate queries is "
                        "not supported"
                    )
        if self.is_distinct and (
            len(fields) != 1 or _strip(fields[0].expr).__class__ is not ast.Call
        ):
            raise QueryPlanError(
                "Error during planning: aggregate function distinct() cannot be combined with "
                "other functions or fields"
            )
        if self.interval is not None and not self.has_agg and self.top_call is None:
            raise QueryPlanError(
                "Error during planning: GROUP BY requires at least one aggregate function"
            )
        if self.transforms and self.has_agg and self.interval is None:
            raise QueryPlanError(
                f"Error during planning: {self.transforms[0].name} aggregate requires a "
                "GROUP BY interval"
            )

    def _validate(self, expr: ast.Expr, calls: list[ast.Call], top: bool, inside: str = "") -> None:
        """Check one SELECT expression and collect its function calls (outermost first)."""
        expr = _strip(expr)
        if isinstance(expr, ast.BinaryExpr):
            if expr.op in ("AND", "OR", "=", "!=", "<", "<=", ">", ">=", "=~", "!~"):
                raise QueryPlanError(
                    f"Error during planning: invalid operator {expr.op} in the SELECT list"
                )
            self._validate(expr.lhs, calls, False, inside)
            self._validate(expr.rhs, calls, False, inside)
        elif isinstance(expr, ast.Call):
            name = expr.name
            if name in fn.UNSUPPORTED:
                raise not_implemented(f"{name}()")
            if name in fn.MATH:
                for a in expr.args:
                    self._validate(a, calls, False, inside)
                return
            if name == "now":
                raise not_implemented("now() outside of WHERE time conditions")
            if name not in fn.AGGREGATES | fn.SELECTORS | fn.TRANSFORMS | fn.TOP_BOTTOM:
                raise QueryPlanError(f"Error during planning: Invalid function '{name}'")
            if inside and name in fn.TRANSFORMS:
                raise QueryPlanError(
                    f"Error during planning: {name}() cannot be nested inside {inside}()"
                )
            if inside in fn.AGGREGATES | fn.SELECTORS and not (
                inside == "count" and name == "distinct"
            ):
                raise QueryPlanError(
                    f"Error during planning: {name}() cannot be nested inside {inside}()"
                )
            self._check_args(expr)
            calls.append(expr)
            if name in fn.TRANSFORMS:
                a0 = _strip(expr.args[0])
                if isinstance(a0, ast.Call):
                    self._validate(a0, calls, False, name)
            elif name == "count" and isinstance(_strip(expr.args[0]), ast.Call):
                self._validate(expr.args[0], calls, False, name)
        elif isinstance(expr, ast.VarRef | ast.IntegerLit | ast.NumberLit):
            return
        elif isinstance(expr, ast.StringLit | ast.BoolLit | ast.DurationLit):
            if top:
                raise QueryPlanError(
                    "Error during planning: a literal alone is not a valid SELECT field"
                )
        else:
            raise QueryPlanError(f"Error during planning: unsupported SELECT expression {expr}")

    def _check_args(self, c: ast.Call) -> None:
        """Argument count and kinds per function, with InfluxQL's messages."""
        n = len(c.args)
        name = c.name

        def bad(msg: str) -> QueryPlanError:
            return QueryPlanError(f"Error during planning: invalid arguments for {name}(): {msg}")

        if name == "percentile":
            if n != 2 or not isinstance(_strip(c.args[1]), ast.IntegerLit | ast.NumberLit):
                raise bad("expected percentile(field, N) with a number N")
        elif name == "moving_average":
            if n != 2 or not isinstance(_strip(c.args[1]), ast.IntegerLit):
                raise bad("expected moving_average(field, N) with an integer N")
            if _strip(c.args[1]).value < 2:  # type: ignore[attr-defined]
                raise bad("moving_average window must be greater than 1")
        elif name in ("derivative", "non_negative_derivative", "elapsed", "integral"):
            if n not in (1, 2) or (n == 2 and not isinstance(_strip(c.args[1]), ast.DurationLit)):
                raise bad(f"expected {name}(field[, unit]) with a duration unit")
            if n == 2 and _strip(c.args[1]).ns <= 0:  # type: ignore[attr-defined]
                raise bad("the unit must be a positive duration")
        elif name in fn.TOP_BOTTOM:
            last = _strip(c.args[-1]) if n else None
            if n < 2 or not isinstance(last, ast.IntegerLit):
                raise bad(f"expected {name}(field[, tag, ...], N) with an integer N")
            if last.value <= 0:
                raise bad(f"N must be a positive integer, got {last.value}")
            if not all(isinstance(_strip(a), ast.VarRef) for a in c.args[1:-1]):
                raise bad("only tag keys may come between the field and N")
        elif n != 1:
            raise bad("expected one argument")
        a0 = _strip(c.args[0])
        if name in fn.TRANSFORMS:
            if not isinstance(a0, ast.VarRef | ast.Call):
                raise bad("the argument must be a field or an aggregate")
        elif name == "count" and isinstance(a0, ast.Call):
            if a0.name != "distinct":
                raise bad("only count(distinct(field)) may nest a function")
        elif not isinstance(a0, ast.VarRef):
            raise bad("the argument must be a field")

    # -- per measurement SQL ---------------------------------------------------------------
    def _ref(self, name: str, schema: Schema, hint: str | None = None) -> tuple[str, str]:
        """SQL for a var ref in this measurement, and its kind (field/tag/missing)."""
        if name in schema.fields and hint != "tag":
            return qi(name), "field"
        if name in schema.tags and hint != "field":
            return f"CAST({qi(name)} AS VARCHAR)", "tag"
        if name in schema.fields:
            return qi(name), "field"
        if name in self.union.fields and hint != "tag":
            # A field of another measurement: typed NULL, so aggregates over it plan.
            return f"CAST(NULL AS {_sql_type(self.union.fields[name])})", "missing"
        return "NULL", "missing"

    def _cond_sql(self, expr: ast.Expr, schema: Schema) -> str:
        """WHERE (without time bounds) as SQL: NULL comparisons count as false, as InfluxQL."""
        expr = _strip(expr)
        if isinstance(expr, ast.BinaryExpr):
            if expr.op in ("AND", "OR"):
                return (
                    f"({self._cond_sql(expr.lhs, schema)} {expr.op} "
                    f"{self._cond_sql(expr.rhs, schema)})"
                )
            if expr.op in ("=~", "!~") or isinstance(_strip(expr.rhs), ast.RegexLit):
                lhs = _strip(expr.lhs)
                rhs = _strip(expr.rhs)
                pattern = (
                    rhs.pattern
                    if isinstance(rhs, ast.RegexLit)
                    else rhs.value
                    if isinstance(rhs, ast.StringLit)
                    else None
                )
                if pattern is None or not isinstance(lhs, ast.VarRef):
                    raise QueryPlanError(
                        "Error during planning: regex comparisons need a tag or field on the "
                        "left and a /regex/ on the right"
                    )
                self._regex(pattern)
                sql, kind = self._ref(lhs.name, schema, lhs.type_hint)
                if kind != "field":
                    sql = f"COALESCE({sql}, '')"
                op = "~" if expr.op in ("=~", "=") else "!~"
                return f"COALESCE({sql} {op} {qs(pattern)}, FALSE)"
            if expr.op in ("=", "!=", "<", "<=", ">", ">="):
                lhs, rhs = _strip(expr.lhs), _strip(expr.rhs)
                if self._incomparable(lhs, rhs, schema) or self._incomparable(rhs, lhs, schema):
                    return "FALSE"  # InfluxQL: a field never equals a literal of another type
                left = self._value_sql(lhs, schema, in_where=True)
                right = self._value_sql(rhs, schema, in_where=True)
                return f"COALESCE({left} {'<>' if expr.op == '!=' else expr.op} {right}, FALSE)"
            return self._value_sql(expr, schema, in_where=True)
        if isinstance(expr, ast.BoolLit):
            return lit(expr.value)
        raise QueryPlanError(
            f"Error during planning: invalid WHERE condition {expr}: expected a comparison"
        )

    def _incomparable(self, ref: ast.Expr, other: ast.Expr, schema: Schema) -> bool:
        if not isinstance(ref, ast.VarRef):
            return False
        _, kind = self._ref(ref.name, schema, ref.type_hint)
        if kind != "field":
            return isinstance(other, ast.IntegerLit | ast.NumberLit | ast.BoolLit)
        t = schema.fields[ref.name]
        if isinstance(other, ast.StringLit):
            return not pa.types.is_string(t)
        if isinstance(other, ast.IntegerLit | ast.NumberLit):
            return not _numeric(t)
        if isinstance(other, ast.BoolLit):
            return not pa.types.is_boolean(t)
        return False

    def _value_sql(self, expr: ast.Expr, schema: Schema, in_where: bool = False) -> str:
        """Row-level SQL of a value expression (fields, tags, literals, arithmetic, math)."""
        expr = _strip(expr)
        if isinstance(expr, ast.VarRef):
            sql, kind = self._ref(expr.name, schema, expr.type_hint)
            if in_where and kind != "field":
                return f"COALESCE({sql}, '')"  # a missing tag compares as ''
            return sql
        if isinstance(expr, ast.IntegerLit | ast.NumberLit | ast.StringLit | ast.BoolLit):
            return lit(expr.value)
        if isinstance(expr, ast.NullLit):
            return "NULL"
        if isinstance(expr, ast.DurationLit):
            return str(expr.ns)
        if isinstance(expr, ast.BinaryExpr):
            return self._arith(expr, lambda e: self._value_sql(e, schema, in_where))
        if isinstance(expr, ast.Call) and expr.name in fn.MATH:
            return self._math(expr, lambda e: self._value_sql(e, schema, in_where))
        if isinstance(expr, ast.Call) and expr.name == "now":
            raise not_implemented("now() outside of WHERE time conditions")
        raise QueryPlanError(f"Error during planning: unsupported expression {expr}")

    def _arith(self, expr: ast.BinaryExpr, sub: Any) -> str:
        """Arithmetic; ``/`` is always float division in InfluxQL."""
        op = expr.op
        lhs, rhs = sub(expr.lhs), sub(expr.rhs)
        if op == "/":
            return f"(CAST({lhs} AS DOUBLE) / {rhs})"
        if op in ("+", "-", "*", "%"):
            return f"({lhs} {op} {rhs})"
        if op in ("&", "|", "^"):
            return f"({lhs} {'#' if op == '^' else op} {rhs})"
        raise QueryPlanError(f"Error during planning: invalid operator {op} in an expression")

    def _math(self, expr: ast.Call, sub: Any) -> str:
        """Math functions; ``log(x, base)`` keeps InfluxQL's argument order.

        Outside a function's domain (``sqrt(-1)``, ``ln(0)``'s neighbours, ``asin(2)``) InfluxQL
        gives no value (1.x returns null where Go's math gives NaN); DataFusion would raise
        for ``sqrt`` of a negative and give NaN elsewhere, so both become NULL here.
        """
        args = [sub(a) for a in expr.args]
        arity = fn.MATH_ARITY.get(expr.name, 1)
        if len(args) != arity:
            form = fn.MATH_FORMS.get(expr.name, f"{expr.name}(x)")
            raise QueryPlanError(
                f"Error during planning: invalid number of arguments for {expr.name}, "
                f"expected {arity}, got {len(args)}: use {form}"
            )
        if expr.name == "log":
            return f"nanvl(log(CAST({args[1]} AS DOUBLE), CAST({args[0]} AS DOUBLE)), NULL)"
        if expr.name == "sqrt":
            x = f"CAST({args[0]} AS DOUBLE)"
            return f"sqrt(CASE WHEN {x} >= 0 THEN {x} END)"
        call = f"{fn.MATH[expr.name]}({', '.join(args)})"
        if expr.name in fn.MATH_NAN_PRONE:
            return f"nanvl({call}, NULL)"
        return call

    def _referenced_fields(self, expr: ast.Expr, schema: Schema, out: list[str]) -> None:
        """Fields of this measurement used by ``expr`` (rows need at least one non-NULL)."""
        expr = _strip(expr)
        if isinstance(expr, ast.VarRef):
            _, kind = self._ref(expr.name, schema, expr.type_hint)
            if kind == "field" and expr.name not in out:
                out.append(expr.name)
        elif isinstance(expr, ast.BinaryExpr):
            self._referenced_fields(expr.lhs, schema, out)
            self._referenced_fields(expr.rhs, schema, out)
        elif isinstance(expr, ast.Call):
            for a in expr.args:
                self._referenced_fields(a, schema, out)

    def _where(self, schema: Schema) -> list[str]:
        """SQL predicates: the time bounds, then the rest of the WHERE clause."""
        preds = []
        if self.range.lower is not None:
            preds.append(f"time >= {ts(self.range.lower)}")
        if self.range.upper is not None:
            preds.append(f"time <= {ts(self.range.upper)}")
        preds += [self._cond_sql(c, schema) for c in self.rest]
        return preds

    def _measurement_sql(self, m: str, schema: Schema, session: Any) -> str | None:
        """The SQL answering the statement for measurement ``m`` (None: no series there)."""
        refs: list[str] = []
        for f in self.fields:
            self._referenced_fields(f.expr, schema, refs)
        if not refs:
            return None  # none of the selected fields exist here: no series (as InfluxQL)
        where = self._where(schema)
        where.append("(" + " OR ".join(f"{qi(r)} IS NOT NULL" for r in refs) + ")")
        tag_cols = [
            f"CAST({qi(t)} AS VARCHAR) AS {qi(t)}"
            if t in schema.tags
            else f"CAST(NULL AS VARCHAR) AS {qi(t)}"
            for t in self.group_tags
        ]
        tag_cols += [
            f"CAST({qi(t)} AS VARCHAR) AS {qi(t)}" for t in schema.tags if t not in self.group_tags
        ]
        src = (
            f"SELECT time, {', '.join([*tag_cols, *[qi(r) for r in refs]])} "
            f"FROM public.iox.{qi(m)} WHERE {' AND '.join(where)}"
        )
        self._session = session
        if self.is_distinct:
            return self._distinct_sql(m, schema, src)
        if self.top_call is not None:
            return self._top_sql(m, schema, src)
        if self.has_agg:
            return self._aggregate_sql(m, schema, src)
        if self.transforms:
            return self._raw_transform_sql(m, schema, src)
        return self._raw_sql(m, schema, src)

    def _group_cols(self) -> list[str]:
        """Quoted GROUP BY tag columns (as in the source CTE)."""
        return [qi(t) for t in self.group_tags]

    def _head(self, m: str) -> list[str]:
        """The leading output columns: measurement, time, unprojected GROUP BY tags."""
        projected = {
            _strip(f.expr).name for f in self.fields if isinstance(_strip(f.expr), ast.VarRef)
        }
        cols = [f"{qs(m)} AS {qi(MEASUREMENT)}", f"time AS {qi(self.time_alias)}"]
        self.unprojected = [t for t in self.group_tags if t not in projected]
        cols += [qi(t) for t in self.unprojected]
        return cols

    def _finish(self, body: str, m: str, out_cols: list[str], order_extra: list[str]) -> str:
        """Per-series LIMIT/OFFSET and the final ORDER BY (the outermost clause, so it holds)."""
        direction = "DESC" if self.stmt.order_desc else "ASC"
        tcol = qi(self.time_alias)
        part = [qi(t) for t in self.group_tags if t in self._final_cols]
        # A missing tag is InfluxQL's '' and sorts first, as in 1.x.
        order = [*[f"{p} ASC NULLS FIRST" for p in part], f"{tcol} {direction}"]
        order += [c for c in order_extra if c not in order]
        cols = ", ".join(qi(c) for c in out_cols)
        if self.stmt.limit is None and self.stmt.offset is None:
            return f"SELECT {cols} FROM ({body}) AS q ORDER BY {', '.join(order)}"
        over = (f"PARTITION BY {', '.join(part)} " if part else "") + f"ORDER BY {', '.join(order)}"
        lo = self.stmt.offset or 0
        cond = f"__rn > {lo}"
        if self.stmt.limit is not None and self.stmt.limit > 0:
            cond += f" AND __rn <= {lo + self.stmt.limit}"
        return (
            f"SELECT {cols} FROM (SELECT *, row_number() OVER ({over}) AS __rn "
            f"FROM ({body}) AS q) AS q2 WHERE {cond} ORDER BY {', '.join(order)}"
        )

    # -- raw -------------------------------------------------------------------------------
    def _raw_sql(self, m: str, schema: Schema, src: str) -> str:
        """Raw rows: the selected expressions, rows having at least one selected field."""
        head = self._head(m)
        proj = [
            f"{self._value_sql(f.expr, schema)} AS {qi(n)}"
            for f, n in zip(self.fields, self.names, strict=True)
        ]
        tagcols = [
            qi(n)
            for f, n in zip(self.fields, self.names, strict=True)
            if isinstance(_strip(f.expr), ast.VarRef)
            and self._ref(_strip(f.expr).name, schema, _strip(f.expr).type_hint)[1] == "tag"
        ]
        where = self._where(schema)
        refs: list[str] = []
        for f in self.fields:
            self._referenced_fields(f.expr, schema, refs)
        where.append("(" + " OR ".join(f"{qi(r)} IS NOT NULL" for r in refs) + ")")
        gcols = [
            f"CAST({qi(t)} AS VARCHAR) AS {qi(t)}"
            if t in schema.tags
            else f"CAST(NULL AS VARCHAR) AS {qi(t)}"
            for t in self.unprojected
        ]
        head = [head[0], head[1], *gcols]
        body = (
            f"SELECT {', '.join(head + proj)} FROM public.iox.{qi(m)} WHERE {' AND '.join(where)}"
        )
        out_cols = [MEASUREMENT, self.time_alias, *self.unprojected, *self.names]
        self._final_cols = set(out_cols)
        # Projected GROUP BY tags still order the series.
        return self._finish(body, m, out_cols, tagcols)

    # -- transforms ------------------------------------------------------------------------
    def _transform_specs(self) -> list[TransformSpec]:
        """Column names, units and window sizes of the transformations."""
        specs = []
        groups: dict[ast.Expr, int] = {}
        for i, c in enumerate(self.transforms):
            unit = None
            n = None
            if c.name in ("derivative", "non_negative_derivative", "elapsed"):
                if len(c.args) == 2:
                    unit = _strip(c.args[1]).ns  # type: ignore[attr-defined]
                elif c.name == "elapsed":
                    unit = 1
                else:
                    unit = self.interval if self.has_agg and self.interval else _SECOND
            if c.name == "moving_average":
                n = _strip(c.args[1]).value  # type: ignore[attr-defined]
            group = groups.setdefault(c.args[0], len(groups))
            specs.append(TransformSpec(f"__t{i}", c.name, c.args[0], n=n, unit=unit, group=group))
        return specs

    @staticmethod
    def _spec_groups(specs: list[TransformSpec]) -> list[list[TransformSpec]]:
        """The specs per transformed argument, in order of first appearance."""
        out: dict[int, list[TransformSpec]] = {}
        for s in specs:
            out.setdefault(s.group, []).append(s)
        return list(out.values())

    def _transform_join(self, ctes: list[str], specs: list[TransformSpec]) -> str:
        """One row per time and series where any transformation has a value.

        Each argument has its own pass (``tr<k>``: its rows are those where it is not NULL);
        the passes are joined on time and the GROUP BY tags.
        """
        part = self._group_cols()
        groups = self._spec_groups(specs)
        if len(groups) == 1:
            return "tr0"
        keys = ", ".join(["time", *part])
        union = " UNION ".join(f"SELECT {keys} FROM tr{k}" for k in range(len(groups)))
        ctes.append(f"trk AS ({union})")
        joins = []
        for k in range(len(groups)):
            on = " AND ".join(
                [f"k.time = tr{k}.time", *[f"(k.{t} IS NOT DISTINCT FROM tr{k}.{t})" for t in part]]
            )
            joins.append(f"LEFT JOIN tr{k} ON {on}")
        cols = [f"tr{s.group}.{s.col}" for s in specs]
        ctes.append(
            f"trall AS (SELECT {', '.join([*[f'k.{c}' for c in ['time', *part]], *cols])} "
            f"FROM trk k {' '.join(joins)})"
        )
        return "trall"

    def _transform_cte(self, base: str, value_sql: str, specs: list[TransformSpec]) -> str:
        """Window functions over the rows of ``base`` where the argument is not NULL."""
        part = self._group_cols()
        over = (f"PARTITION BY {', '.join(part)} " if part else "") + "ORDER BY time"
        cols = []
        for s in specs:
            lag_v = f"lag(__v) OVER ({over})"
            lag_t = f"lag(CAST(time AS BIGINT)) OVER ({over})"
            if s.name in ("derivative", "non_negative_derivative"):
                e = (
                    f"(CAST(__v AS DOUBLE) - {lag_v}) / "
                    f"(CAST(CAST(time AS BIGINT) - {lag_t} AS DOUBLE) / {s.unit})"
                )
            elif s.name in ("difference", "non_negative_difference"):
                e = f"(__v - {lag_v})"
            elif s.name == "elapsed":
                e = f"CAST((CAST(time AS BIGINT) - {lag_t}) / {int(s.unit or 1)} AS BIGINT)"
            elif s.name == "moving_average":
                e = (
                    f"CASE WHEN row_number() OVER ({over}) >= {s.n} THEN "
                    f"avg(CAST(__v AS DOUBLE)) OVER ({over} ROWS BETWEEN {int(s.n or 1) - 1} "
                    "PRECEDING AND CURRENT ROW) END"
                )
            else:  # cumulative_sum
                e = f"sum(__v) OVER ({over} ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)"
            cols.append(f"{e} AS {s.col}")
        inner = (
            f"SELECT time, {', '.join([*part, *cols]) if part else ', '.join(cols)} FROM "
            f"(SELECT time, {', '.join([*part, f'{value_sql} AS __v'])} FROM {base}) AS b "
            f"WHERE __v IS NOT NULL"
        )
        outer = []
        for s in specs:
            if s.name.startswith("non_negative"):
                outer.append(f"CASE WHEN {s.col} >= 0 THEN {s.col} END AS {s.col}")
            else:
                outer.append(s.col)
        return f"SELECT time, {', '.join([*part, *outer])} FROM ({inner}) AS w"

    def _raw_transform_sql(self, m: str, schema: Schema, src: str) -> str:
        """Transformations of a raw field, per series in time order."""
        specs = self._transform_specs()
        ctes = [f"src AS ({src})"]
        for k, group in enumerate(self._spec_groups(specs)):
            arg = self._value_sql(group[0].arg, schema)
            ctes.append(f"tr{k} AS ({self._transform_cte('src', arg, group)})")
        tr = self._transform_join(ctes, specs)
        head = self._head(m)
        proj = [
            f"{self._post_sql(f.expr, {id(c): s.col for c, s in zip(self.transforms, specs, strict=True)})} AS {qi(n)}"
            for f, n in zip(self.fields, self.names, strict=True)
        ]
        any_value = " OR ".join(f"{s.col} IS NOT NULL" for s in specs)
        body = f"WITH {', '.join(ctes)} SELECT {', '.join(head + proj)} FROM {tr} WHERE {any_value}"
        out_cols = [MEASUREMENT, self.time_alias, *self.unprojected, *self.names]
        self._final_cols = set(out_cols)
        return self._finish(body, m, out_cols, [])

    def _post_sql(self, expr: ast.Expr, cols: dict[int, str]) -> str:
        """SQL over computed columns: calls map to their column, literals stay."""
        expr = _strip(expr)
        if isinstance(expr, ast.Call) and id(expr) in cols:
            return cols[id(expr)]
        if isinstance(expr, ast.Call) and expr.name in fn.MATH:
            return self._math(expr, lambda e: self._post_sql(e, cols))
        if isinstance(expr, ast.BinaryExpr):
            return self._arith(expr, lambda e: self._post_sql(e, cols))
        if isinstance(expr, ast.IntegerLit | ast.NumberLit):
            return lit(expr.value)
        if isinstance(expr, ast.VarRef):
            return cols.get(hash(("aux", expr.name)), "NULL")
        raise QueryPlanError(f"Error during planning: unsupported expression {expr}")

    # -- aggregates ------------------------------------------------------------------------
    def _window_expr(self, column: str = "time") -> str:
        if self.interval is None:
            return ts(self.range.lower if self.range.lower is not None else 0)
        if self.zone is not None:
            return f"{self._zone_udf()}({column})"
        return f"date_bin(INTERVAL '{self.interval} nanoseconds', {column}, {ts(self.offset)})"

    def _zone_udf(self) -> str:
        """Register (once per session) the vectorised tz() window function; return its name."""
        name = "__influxql_tz_window"
        if getattr(self._session, "_influxql_tz_udf", None) != name:
            from datafusion import udf

            interval, offset, zone = self.interval, self.offset, self.zone
            assert interval is not None and zone is not None

            def windows(times: pa.Array) -> pa.Array:
                starts = tz_window_starts(times.cast(pa.int64()), interval, offset, zone)
                return starts.cast(pa.timestamp("ns"))

            self._session.register_udf(
                udf(windows, [pa.timestamp("ns")], pa.timestamp("ns"), "immutable", name)
            )
            with contextlib.suppress(AttributeError):
                self._session._influxql_tz_udf = name
        return name

    def _bin(self, t: int) -> int:
        assert self.interval is not None
        if self.zone is not None:
            one = pa.array([t], pa.int64())
            return int(tz_window_starts(one, self.interval, self.offset, self.zone)[0].as_py())
        return t - (t - self.offset) % self.interval

    def _aggregate_sql(self, m: str, schema: Schema, src: str) -> str:
        """Aggregates/selectors per window and GROUP BY tags, gap filling, transformations."""
        part = self._group_cols()
        win = self._window_expr()
        aggs: list[str] = []
        mode_ctes: list[tuple[str, str]] = []
        integral_ctes: list[tuple[str, str, int]] = []
        colmap: dict[int, str] = {}
        counts: set[str] = set()
        agg_calls = [c for c in self.calls if c.name in fn.AGGREGATES | fn.SELECTORS]
        self._presence: dict[str, str] = {}
        agg_cols: list[str] = []  # the per-window aggregate columns (what fill() applies to)
        pct_ctes: list[tuple[str, str, float, bool]] = []
        for i, c in enumerate(agg_calls):
            col = f"__a{i}"
            colmap[id(c)] = col
            a0 = _strip(c.args[0])
            if c.name == "count" and isinstance(a0, ast.Call):
                x = self._value_sql(a0.args[0], schema)
                aggs.append(f"{fn.aggregate_sql('count', x, distinct=True)} AS {col}")
                agg_cols.append(col)
                counts.add(col)
                continue
            if c.name == "distinct" and any(
                d.name == "count" and d.args and _strip(d.args[0]) is c for d in agg_calls
            ):
                continue  # computed by the enclosing count(distinct(...))
            x = self._value_sql(c.args[0], schema)
            self._check_numeric(c, a0, schema)
            agg_cols.append(col)
            if isinstance(a0, ast.VarRef) and self._ref(a0.name, schema, a0.type_hint)[1] == (
                "missing"
            ):
                # The field lives in another measurement: a typed NULL column here.
                aggs.append(f"{_missing_agg(c.name, self.union.fields.get(a0.name))} AS {col}")
                continue
            if c.name == "mode":
                mode_ctes.append((col, x))
                continue
            if c.name == "integral":
                unit = _strip(c.args[1]).ns if len(c.args) == 2 else _SECOND  # type: ignore[attr-defined]
                integral_ctes.append((col, x, unit))
                continue
            if c.name == "percentile":
                pct = float(_strip(c.args[1]).value)  # type: ignore[attr-defined]
                pct_ctes.append((col, x, pct, c is self.lone_selector))
                continue
            aggs.append(f"{fn.aggregate_sql(c.name, x)} AS {col}")
            if c.name == "stddev":
                # NULL for a window with one value; InfluxQL does not fill such a window
                # (it fills only windows without values), so remember which had some.
                aggs.append(f"NULLIF(count({x}), 0) AS {col}_n")
                self._presence[col] = f"{col}_n"
            if c.name == "count":
                counts.add(col)
        time_expr = win
        aux: dict[int, str] = {}
        sel = self.lone_selector
        lone_pct = sel is not None and sel.name == "percentile"
        if lone_pct:
            # Time and the other columns come from the percentile's own CTE (below).
            aux = {
                j: f"__x{j}"
                for j, f in enumerate(self.fields)
                if isinstance(_strip(f.expr), ast.VarRef)
            }
            sel = None
        if sel is not None:
            x = self._value_sql(sel.args[0], schema)
            if self.interval is None:
                time_expr = fn.selected(sel.name, x, "time")
            for j, f in enumerate(self.fields):
                e = _strip(f.expr)
                if isinstance(e, ast.VarRef):
                    v, kind = self._ref(e.name, schema, e.type_hint)
                    col = f"__x{j}"
                    if kind == "missing":
                        aggs.append(f"{v} AS {col}")  # a typed NULL: nothing to select
                    else:
                        aggs.append(f"{fn.selected(sel.name, x, v)} AS {col}")
                    aux[j] = col
        group_by = ["1", *part]
        having = "" if (part or self.interval is not None) else " HAVING count(*) > 0"
        agg_sql = (
            f"SELECT {', '.join([f'{time_expr} AS time', *part, *aggs])} FROM src "
            f"GROUP BY {', '.join(group_by)}{having}"
        )
        if sel is not None and self.interval is None:
            # The time comes from the selected row; group on the window only.
            agg_sql = f"SELECT {', '.join([f'{time_expr} AS time', *part, *aggs])} FROM src" + (
                f" GROUP BY {', '.join(part)}" if part else " HAVING count(*) > 0"
            )
        ctes = [f"src AS ({src})", f"agg0 AS ({agg_sql})"]
        base = "agg0"
        for k, (col, x) in enumerate(mode_ctes):
            on = " AND ".join(
                [f"a.time = md{k}.time", *[f"(a.{t} IS NOT DISTINCT FROM md{k}.{t})" for t in part]]
            )
            ctes.append(
                f"mc{k} AS (SELECT {win} AS time, {', '.join([*part, f'{x} AS v'])}, count(*) AS n, min(time) AS t0 "
                f"FROM src WHERE {x} IS NOT NULL GROUP BY {', '.join(['1', *[str(i + 2) for i in range(len(part))], str(len(part) + 2)])})"
            )
            ctes.append(
                f"md{k} AS (SELECT time, {', '.join([*part, f'first_value(v ORDER BY n DESC, t0 ASC, v ASC) AS {col}'])} "
                f"FROM mc{k} GROUP BY {', '.join(['time', *part])})"
            )
            ctes.append(
                f"agg{k + 1} AS (SELECT a.*, md{k}.{col} FROM {base} a LEFT JOIN md{k} ON {on})"
            )
            base = f"agg{k + 1}"
        for k, (col, x, pct, lone) in enumerate(pct_ctes):
            base = self._percentile_ctes(ctes, base, k, col, x, pct, schema, aux if lone else {})
        for k, (col, x, unit) in enumerate(integral_ctes):
            base = self._integral_ctes(ctes, base, k, col, x, unit, schema)
        filled = base
        # Queries whose only aggregate is integral() are not gap filled (InfluxQL, InfluxDB 3).
        only_integral = bool(integral_ctes) and all(c.name == "integral" for c in agg_calls)
        if (
            self.interval is not None
            and self.stmt.fill != "none"
            and not (only_integral and self.stmt.fill == "null")
        ):
            aux_cols = list(aux.values()) + list(self._presence.values())
            filled = self._gapfill_ctes(ctes, base, agg_cols, counts, aux_cols)

        final_cols: dict[int, str] = dict(colmap)
        for j, col in aux.items():
            final_cols[hash(("aux", _strip(self.fields[j].expr).name))] = col
        head = self._head(m)
        out_cols = [MEASUREMENT, self.time_alias, *self.unprojected, *self.names]
        self._final_cols = set(out_cols)
        if self.transforms:
            specs = self._transform_specs()
            for k, group in enumerate(self._spec_groups(specs)):
                value_sql = self._post_sql(group[0].arg, final_cols)
                ctes.append(f"tr{k} AS ({self._transform_cte(filled, value_sql, group)})")
            trname = self._transform_join(ctes, specs)
            ctes.append(f"tr AS (SELECT * FROM {trname})")
            on = " AND ".join(
                ["f.time = tr.time", *[f"(f.{t} IS NOT DISTINCT FROM tr.{t})" for t in part]]
            )
            tcols = {id(c): f"tr.{s.col}" for c, s in zip(self.transforms, specs, strict=True)}
            fcols = {k: f"f.{v}" for k, v in final_cols.items()}
            proj = [
                f"{self._post_sql(f.expr, {**fcols, **tcols})} AS {qi(n)}"
                for f, n in zip(self.fields, self.names, strict=True)
            ]
            only_transforms = all(_contains_transform(_strip(f.expr)) for f in self.fields)
            join = "JOIN" if only_transforms else "LEFT JOIN"
            headf = [
                head[0],
                f"f.time AS {qi(self.time_alias)}",
                *[f"f.{qi(t)}" for t in self.unprojected],
            ]
            conds = []
            if only_transforms:
                conds.append("(" + " OR ".join(f"tr.{s.col} IS NOT NULL" for s in specs) + ")")
            if self.output_lower is not None:
                conds.append(f"f.time >= {ts(self.output_lower)}")
            where = (" WHERE " + " AND ".join(conds)) if conds else ""
            body = (
                f"WITH {', '.join(ctes)} SELECT {', '.join(headf + proj)} FROM {filled} f "
                f"{join} tr ON {on}{where}"
            )
        else:
            proj = [
                f"{self._post_sql(f.expr, final_cols)} AS {qi(n)}"
                for f, n in zip(self.fields, self.names, strict=True)
            ]
            body = f"WITH {', '.join(ctes)} SELECT {', '.join(head + proj)} FROM {filled}"
        return self._finish(body, m, out_cols, [])

    def _percentile_ctes(
        self,
        ctes: list[str],
        base: str,
        k: int,
        col: str,
        x: str,
        pct: float,
        schema: Schema,
        aux: dict[int, str],
    ) -> str:
        """percentile() by ranking rows in each window (window functions, no sorted arrays).

        InfluxQL takes the element at ``floor(n * pct / 100 + 0.5)`` (1-based) of the sorted
        values; the row reported (its time, the other selected columns) is the earliest row
        holding that value: the first of its run, whose row number is the value's rank.
        """
        part = self._group_cols()
        win = self._window_expr()
        over = f"PARTITION BY {', '.join(['time', *part])}"
        extra = []
        for j, name in aux.items():
            e = _strip(self.fields[j].expr)
            assert isinstance(e, ast.VarRef)
            extra.append(f"{self._ref(e.name, schema, e.type_hint)[0]} AS {name}")
        ctes.append(
            f"pr{k} AS (SELECT *, "
            f"row_number() OVER ({over} ORDER BY v ASC, t ASC) AS rn, "
            f"rank() OVER ({over} ORDER BY v ASC) AS rk, "
            f"count(*) OVER ({over}) AS n FROM (SELECT "
            f"{', '.join([f'{win} AS time', *part, f'{x} AS v', 'time AS t', *extra])} "
            f"FROM src WHERE {x} IS NOT NULL) AS w)"
        )
        ctes.append(
            f"pi{k} AS (SELECT {', '.join(['time', *part])}, rk FROM pr{k} "
            f"WHERE rn = CAST(floor(n * {pct!r} / 100.0 + 0.5) AS BIGINT))"
        )
        keys = " AND ".join(
            ["r.time = i.time", *[f"(r.{t} IS NOT DISTINCT FROM i.{t})" for t in part]]
        )
        picked = [f"r.v AS {col}", "r.t AS __pt", *[f"r.{n} AS {n}" for n in aux.values()]]
        ctes.append(
            f"pp{k} AS (SELECT {', '.join(['r.time', *[f'r.{t}' for t in part], *picked])} "
            f"FROM pr{k} r JOIN pi{k} i ON {keys} AND r.rn = i.rk)"
        )
        on = " AND ".join(
            [f"a.time = pp{k}.time", *[f"(a.{t} IS NOT DISTINCT FROM pp{k}.{t})" for t in part]]
        )
        lone_time = self.lone_selector is not None and self.lone_selector.name == "percentile"
        if lone_time and self.interval is None:
            # A lone selector reports the selected row's time.
            cols = [f"COALESCE(pp{k}.__pt, a.time) AS time", *[f"a.{t}" for t in part]]
        else:
            cols = ["a.*"]
        cols += [f"pp{k}.{col}", *[f"pp{k}.{n}" for n in aux.values()]]
        ctes.append(f"pa{k} AS (SELECT {', '.join(cols)} FROM {base} a LEFT JOIN pp{k} ON {on})")
        return f"pa{k}"

    def _integral_ctes(
        self, ctes: list[str], base: str, k: int, col: str, x: str, unit: int, schema: Schema
    ) -> str:
        """integral(): the trapezoidal area under each series, per window, in ``unit``.

        As InfluxQL's integral reducer: points in time order (of equal times the last counts);
        a segment that crosses a window boundary is split there, the value at the boundary
        interpolated linearly, each part counting for its own window. All in window functions.
        """
        part = self._group_cols()
        others = [qi(t) for t in schema.tags if t not in self.group_tags]
        last = f"last_value(v ORDER BY {', '.join(others)})" if others else "last_value(v)"
        keys = ", ".join(["t", *part])
        over = (f"PARTITION BY {', '.join(part)} " if part else "") + "ORDER BY t"
        ctes.append(
            f"ip{k} AS (SELECT {keys}, {last} AS v FROM (SELECT time AS t, "
            f"{', '.join([*part, *others, f'CAST({x} AS DOUBLE) AS v'])} FROM src "
            f"WHERE {x} IS NOT NULL) "
            f"AS p GROUP BY {keys})"
        )
        wt, wp = self._window_expr("t"), self._window_expr("pt")
        ctes.append(
            f"is{k} AS (SELECT {keys}, v, {wt} AS wt, {wp} AS wp, CAST(t AS BIGINT) AS tb, "
            f"CAST(pt AS BIGINT) AS pb, pv FROM (SELECT {keys}, v, lag(t) OVER ({over}) AS pt, "
            f"lag(v) OVER ({over}) AS pv FROM ip{k}) AS s)"
        )
        step = self.interval or 0
        edge = f"(CAST(wp AS BIGINT) + {step})"  # the end of the previous point's window
        at_edge = f"(pv + (v - pv) * CAST({edge} - pb AS DOUBLE) / CAST(tb - pb AS DOUBLE))"
        same = f"0.5 * (v + pv) * CAST(tb - pb AS DOUBLE) / {unit}"
        after = f"0.5 * (v + {at_edge}) * CAST(tb - {edge} AS DOUBLE) / {unit}"
        before = f"0.5 * ({at_edge} + pv) * CAST({edge} - pb AS DOUBLE) / {unit}"
        pcols = ", ".join(part)
        sep = ", " if part else ""
        ctes.append(
            f"ic{k} AS (SELECT wt AS time{sep}{pcols}, CASE WHEN pb IS NULL THEN 0.0 "
            f"WHEN wt = wp THEN {same} ELSE {after} END AS c FROM is{k} "
            f"UNION ALL SELECT wp AS time{sep}{pcols}, {before} AS c FROM is{k} "
            f"WHERE pb IS NOT NULL AND wt <> wp)"
        )
        ctes.append(
            f"ia{k} AS (SELECT time{sep}{pcols}, sum(c) AS {col} FROM ic{k} "
            f"GROUP BY {', '.join(['time', *part])})"
        )
        on = " AND ".join(
            [f"a.time = ia{k}.time", *[f"(a.{t} IS NOT DISTINCT FROM ia{k}.{t})" for t in part]]
        )
        ctes.append(f"ig{k} AS (SELECT a.*, ia{k}.{col} FROM {base} a LEFT JOIN ia{k} ON {on})")
        return f"ig{k}"

    def _check_numeric(self, c: ast.Call, a0: ast.Expr, schema: Schema) -> None:
        """Numeric aggregates refuse string/boolean fields and tags, naming the column."""
        if c.name in ("count", "first", "last", "distinct", "mode"):
            return
        if isinstance(a0, ast.VarRef) and a0.name in schema.fields:
            t = schema.fields[a0.name]
            if not _numeric(t):
                raise QueryPlanError(
                    f"Error during planning: unsupported {c.name}() argument type: field "
                    f"{a0.name!r} is {_field_type_name(t)}; use a numeric field"
                )
        elif isinstance(a0, ast.VarRef) and a0.name in schema.tags:
            raise QueryPlanError(
                f"Error during planning: {c.name}() needs a field, {a0.name!r} is a tag"
            )

    def _gapfill_ctes(
        self, ctes: list[str], base: str, cols: list[str], counts: set[str], aux: list[str]
    ) -> str:
        """Add the window grid, LEFT JOIN the aggregates onto it and apply fill()."""
        assert self.interval is not None
        part = self._group_cols()
        lower = self.range.lower
        upper = self.range.upper if self.range.upper is not None else self.now_ns
        if lower is None:
            lower = self._min_time(ctes, base)
            if lower is None:
                return base
        start, end = self._bin(lower), self._bin(upper)
        if end < start:
            return base
        n = (end - start) // self.interval + 1
        int_cols: set[str] = set()
        text_cols: set[str] = set()
        if self.stmt.fill in ("linear", "value"):
            sch = self._session.sql(f"WITH {', '.join(ctes)} SELECT * FROM {base}").schema()
            int_cols = {f.name for f in sch if pa.types.is_integer(f.type)}
            text_cols = {f.name for f in sch if not _numeric(f.type)}
        if n > MAX_WINDOWS:
            raise QueryPlanError(
                f"Error during planning: GROUP BY time() would create {n} windows (limit "
                f"{MAX_WINDOWS}); narrow the time range or widen the interval"
            )
        keys = (
            f"SELECT DISTINCT {', '.join(part)} FROM {base}"
            if part
            else (f"SELECT DISTINCT 1 AS __k FROM {base}")
        )
        ctes.append(f"keys AS ({keys})")
        if self.zone is None:
            wins = (
                "SELECT arrow_cast(value, 'Timestamp(Nanosecond, None)') AS time "
                f"FROM generate_series({start}, {end}, {self.interval})"
            )
            ctes.append(f"wins AS ({wins})")
            ctes.append("grid AS (SELECT wins.time, keys.* FROM wins CROSS JOIN keys)")
        else:
            self._tz_grid_ctes(ctes, base, start, end)
        on = " AND ".join(
            ["g.time = a.time", *[f"(g.{t} IS NOT DISTINCT FROM a.{t})" for t in part]]
        )
        joined = ", ".join(
            [
                "g.time",
                *[f"g.{t}" for t in part],
                *[f"a.{c}" for c in cols],
                *[f"a.{c}" for c in aux],
            ]
        )
        ctes.append(f"joined AS (SELECT {joined} FROM grid g LEFT JOIN {base} a ON {on})")
        over_part = f"PARTITION BY {', '.join(part)} " if part else ""
        fill = self.stmt.fill
        exprs = []
        for c in cols:
            if fill in ("value", "linear") and c in text_cols:
                e = c  # numbers are not filled into string or boolean columns
            elif fill == "null":
                e = f"COALESCE({c}, 0)" if c in counts else c
            elif fill == "value":
                fv = self.stmt.fill_value
                # The fill value takes the column's type (integers truncate, as InfluxQL).
                fv_sql = str(int(fv)) if c in int_cols else lit(float(fv))  # type: ignore[arg-type]
                e = f"COALESCE({c}, {fv_sql})"
            elif fill == "previous":
                frame = f"OVER ({over_part}ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
                e = f"COALESCE({c}, last_value({c}) IGNORE NULLS {frame})"
                if c in self._presence:
                    # The previous window's value even when it is NULL (a one-value stddev).
                    boxed = f"CASE WHEN {self._presence[c]} IS NOT NULL THEN make_array({c}) END"
                    e = f"array_element(last_value({boxed}) IGNORE NULLS {frame}, 1)"
            else:  # linear
                prev_frame = f"OVER ({over_part}ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
                next_frame = f"OVER ({over_part}ORDER BY time ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
                tval = f"CASE WHEN {c} IS NOT NULL THEN CAST(time AS BIGINT) END"
                pv = f"last_value({c}) IGNORE NULLS {prev_frame}"
                nv = f"first_value({c}) IGNORE NULLS {next_frame}"
                if c in self._presence:
                    # Neighbours are the windows that had values, even if the value is NULL.
                    tval = (
                        f"CASE WHEN {self._presence[c]} IS NOT NULL THEN CAST(time AS BIGINT) END"
                    )
                    boxed = f"CASE WHEN {self._presence[c]} IS NOT NULL THEN make_array({c}) END"
                    pv = f"array_element(last_value({boxed}) IGNORE NULLS {prev_frame}, 1)"
                    nv = f"array_element(first_value({boxed}) IGNORE NULLS {next_frame}, 1)"
                pt = f"last_value({tval}) IGNORE NULLS {prev_frame}"
                nt = f"first_value({tval}) IGNORE NULLS {next_frame}"
                # InfluxQL: y = (nv - pv) / (nt - pt) * (t - pt) + pv, truncated for integers.
                # Multiply before dividing: exact whenever the interpolated value is (Go's
                # m*x+b may be fused, which makes 1.x exact there too).
                rise = f"CAST({nv} - {pv} AS DOUBLE) * CAST(CAST(time AS BIGINT) - {pt} AS DOUBLE)"
                interp = f"{rise} / CAST({nt} - {pt} AS DOUBLE) + CAST({pv} AS DOUBLE)"
                if c in int_cols:
                    interp = f"CAST(trunc({interp}) AS BIGINT)"
                e = f"COALESCE({c}, {interp})"
            if c in self._presence and fill != "null":
                e = f"CASE WHEN {self._presence[c]} IS NULL THEN {e} ELSE {c} END"
            if fill != "value":
                # InfluxQL's count() -> 0 (and previous/linear) apply only in series where the
                # column has values somewhere in the range; elsewhere it stays NULL.
                seen = f"count({self._presence.get(c, c)}) OVER ({over_part.strip()})"
                e = f"CASE WHEN {seen} > 0 THEN {e} END"
            exprs.append(f"{e} AS {c}")
        exprs += aux
        ctes.append(f"filled AS (SELECT {', '.join(['time', *part, *exprs])} FROM joined)")
        return "filled"

    def _tz_grid_ctes(self, ctes: list[str], base: str, start: int, end: int) -> None:
        """The per-series window grid of a tz() query, as InfluxQL's fill iterator walks it.

        Zone windows are not all equally long: the iterator steps by the interval (shifted at
        offset changes, ``tz_fill_grid``). A window holding data that is off that grid (at a
        change) is output too and takes the place of the next grid step.
        """
        assert self.interval is not None and self.zone is not None
        part = self._group_cols()
        grid = tz_fill_grid(start, end, self.interval, self.zone)
        prev = [grid[0] - self.interval, *grid[:-1]]
        table = "__influxql_tz_grid"
        with contextlib.suppress(Exception):
            self._session.deregister_table(table)
        nanos = pa.timestamp("ns")
        batch = pa.record_batch(
            {
                "time": pa.array(grid, pa.int64()).cast(nanos),
                "prev": pa.array(prev, pa.int64()).cast(nanos),
            }
        )
        self._session.register_record_batches(table, [[batch]])
        keycols = ", ".join(f"a.{t}" for t in part)
        ctes.append(
            f"offgrid AS (SELECT {', '.join(['a.time', *([keycols] if part else [])])} "
            f"FROM {base} a LEFT JOIN {table} s ON a.time = s.time "
            f"WHERE s.time IS NULL AND a.time >= {ts(start)} AND a.time <= {ts(end)})"
        )
        match = " AND ".join(
            [
                "o.time > s.prev",
                "o.time < s.time",
                *[f"(o.{t} IS NOT DISTINCT FROM k.{t})" for t in part],
            ]
        )
        kcols = [f"k.{t}" for t in part] if part else ["k.__k"]
        ctes.append(
            f"stepped AS (SELECT {', '.join(['s.time', *kcols])} FROM {table} s CROSS JOIN keys k "
            f"LEFT JOIN offgrid o ON {match} WHERE o.time IS NULL)"
        )
        ocols = [f"o.{t}" for t in part] if part else ["1 AS __k"]
        gcols = ", ".join(["time", *(part or ["__k"])])
        ctes.append(
            f"grid AS (SELECT {gcols} FROM stepped "
            f"UNION SELECT {', '.join(['o.time', *ocols])} FROM offgrid o)"
        )

    def _min_time(self, ctes: list[str], base: str) -> int | None:
        """Earliest window with data: where gap filling starts without a lower bound."""
        sql = f"WITH {', '.join(ctes)} SELECT CAST(min(time) AS BIGINT) AS t FROM {base}"
        tbl = self._session.sql(sql).to_arrow_table()
        v = tbl.column(0)[0].as_py() if tbl.num_rows else None
        return int(v) if v is not None else None

    # -- distinct --------------------------------------------------------------------------
    def _distinct_sql(self, m: str, schema: Schema, src: str) -> str:
        """distinct(): one row per value and window, in order of first appearance."""
        call = _strip(self.fields[0].expr)
        assert isinstance(call, ast.Call)
        x = self._value_sql(call.args[0], schema)
        part = self._group_cols()
        head = self._head(m)
        name = self.names[0]
        body = (
            f"WITH src AS ({src}) SELECT {', '.join(head)}, v AS {qi(name)} FROM ("
            f"SELECT {self._window_expr()} AS time, {', '.join([*part, f'{x} AS v'])}, "
            f"min(time) AS __first FROM src WHERE {x} IS NOT NULL "
            f"GROUP BY {', '.join(['1', *part, 'v'])}) AS d"
        )
        out_cols = [MEASUREMENT, self.time_alias, *self.unprojected, name]
        self._final_cols = set(out_cols)
        body = body.replace(f"v AS {qi(name)} FROM", f"v AS {qi(name)}, __first FROM")
        return self._finish(body, m, out_cols, ["__first", qi(name)])

    # -- top / bottom ----------------------------------------------------------------------
    def _top_sql(self, m: str, schema: Schema, src: str) -> str:
        """top()/bottom(): the N largest/smallest values per series (and window), ranked with
        window functions; with tag arguments, the best row per tag combination first.

        Ties go to the earliest time (the documented rule). Rows are the selected points with
        their own time (also with ``GROUP BY time()``), in time order; fill() does not apply.
        """
        call = self.top_call
        assert call is not None
        x = self._value_sql(call.args[0], schema)
        self._check_numeric(call, _strip(call.args[0]), schema)
        n = _strip(call.args[-1]).value  # type: ignore[attr-defined]
        order = "DESC" if call.name == "top" else "ASC"
        part = self._group_cols()
        window = [f"{self._window_expr()} AS __w"] if self.interval is not None else []
        by = ["__w"] if window else []
        by += part
        tag_keys = [
            self._ref(_strip(a).name, schema, "tag")[0]  # type: ignore[attr-defined]
            for a in call.args[1:-1]
        ]
        cols = ["time", *window, *part, f"{x} AS __v"]
        cols += [f"{k} AS __g{i}" for i, k in enumerate(tag_keys)]
        proj = []
        for j, (f, name) in enumerate(zip(self.fields, self.names, strict=True)):
            e = _strip(f.expr)
            if e is call:
                proj.append(f"__v AS {qi(name)}")
            else:
                cols.append(f"{self._value_sql(e, schema)} AS __x{j}")
                proj.append(f"__x{j} AS {qi(name)}")
        rank = f"ORDER BY __v {order}, time ASC"
        over = (f"PARTITION BY {', '.join(by)} " if by else "") + rank
        ctes = [
            f"src AS ({src})",
            f"r AS (SELECT {', '.join(cols)} FROM src WHERE {x} IS NOT NULL)",
        ]
        base = "r"
        if tag_keys:
            per_tag = ", ".join([*by, *[f"__g{i}" for i in range(len(tag_keys))]])
            ctes.append(
                f"rt AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY {per_tag} "
                f"{rank}) AS __tr FROM r) AS t WHERE __tr = 1)"
            )
            base = "rt"
        ctes.append(f"rk AS (SELECT *, row_number() OVER ({over}) AS __rk FROM {base})")
        head = self._head(m)
        body = (
            f"WITH {', '.join(ctes)} SELECT {', '.join([*head, *proj])}, __rk FROM rk "
            f"WHERE __rk <= {int(n)}"
        )
        out_cols = [MEASUREMENT, self.time_alias, *self.unprojected, *self.names]
        self._final_cols = set(out_cols)
        return self._finish(body, m, out_cols, ["__rk"])

    # -- output ----------------------------------------------------------------------------
    def _stream(self, frames: list[Any]) -> pa.RecordBatchReader:
        """One schema over all measurements; batches flow measurement after measurement."""
        if not frames:
            fields = [
                pa.field(MEASUREMENT, pa.string()),
                pa.field(self.time_alias, self._time_type()),
            ]
            fields += [
                pa.field(t, pa.string()) for t in self.group_tags if t not in self._proj_names()
            ]
            fields += [pa.field(n, pa.float64()) for n in self.names]
            schema = pa.schema(fields, metadata=self._metadata(fields))
            return pa.RecordBatchReader.from_batches(schema, [])
        schemas = []
        for df in frames:
            try:
                schemas.append(df.schema())
            except Exception as exc:
                raise plan_error(exc) from exc
        out_fields = []
        for i, f0 in enumerate(schemas[0]):
            typ = f0.type
            for s in schemas[1:]:
                t2 = s.field(i).type
                if t2 != typ:
                    typ = _common_type(typ, t2)
            if i == 1:
                typ = self._time_type()
            if pa.types.is_dictionary(typ):
                typ = typ.value_type
            out_fields.append(pa.field(f0.name, typ))
        schema = pa.schema(out_fields, metadata=self._metadata(out_fields))

        def batches() -> Iterator[pa.RecordBatch]:
            for df in frames:
                try:
                    stream = df.execute_stream()
                    for b in stream:
                        rb = b.to_pyarrow()
                        if rb.num_rows == 0:
                            continue
                        yield _conform(rb, schema)
                except ServerError:
                    raise
                except Exception as exc:
                    raise plan_error(exc) from exc

        return pa.RecordBatchReader.from_batches(schema, batches())

    def _proj_names(self) -> set[str]:
        return {_strip(f.expr).name for f in self.fields if isinstance(_strip(f.expr), ast.VarRef)}

    def _time_type(self) -> pa.DataType:
        return pa.timestamp("ns", tz=self.stmt.tz) if self.stmt.tz else pa.timestamp("ns")

    def _metadata(self, fields: list[pa.Field]) -> dict[bytes, bytes]:
        """``iox::influxql::group_key::metadata`` as pbjson writes it (defaults omitted)."""
        names = [f.name for f in fields]
        projected = self._proj_names()
        keys = []
        for t in sorted(self.group_tags):
            if t not in names:
                continue
            entry: dict[str, Any] = {"tagKey": t, "columnIndex": names.index(t)}
            if t in projected:
                entry["isProjected"] = True
            keys.append(entry)
        md: dict[str, Any] = {}
        if keys:
            md["tagKeyColumns"] = keys
        return {GROUP_KEY_METADATA: json.dumps(md, separators=(",", ":")).encode()}


def _zone_offsets(t: pa.Array, zone: ZoneInfo) -> pa.Array:
    """UTC offset (ns) of ``zone`` at each instant ``t`` (int64 epoch ns), vectorised."""
    local = pc.local_timestamp(t.cast(pa.timestamp("ns", tz=zone.key))).cast(pa.int64())
    return pc.subtract(local, t)


def tz_window_starts(t: pa.Array, interval: int, offset: int, zone: ZoneInfo) -> pa.Array:
    """InfluxQL's window start of each ``t`` (int64 ns) with a tz() clause (1.x ``Window``).

    Truncate in local time, then correct by the zone change between ``t`` and the window start
    when that change is smaller than the interval (so days start at local midnight across DST).
    """
    t = pc.subtract(t.cast(pa.int64()), offset)
    zone_off = _zone_offsets(t, zone)
    local = pc.add(t, zone_off)
    rem = pc.subtract(local, pc.multiply(pc.divide(local, interval), interval))  # truncating
    rem = pc.if_else(pc.less(rem, 0), pc.add(rem, interval), rem)
    start = pc.subtract(t, rem)
    diff = pc.subtract(zone_off, _zone_offsets(start, zone))
    small = pc.and_(pc.not_equal(diff, 0), pc.less(pc.abs(diff), interval))
    start = pc.add(start, pc.if_else(small, diff, 0))
    return pc.add(start, offset)


def tz_fill_grid(start: int, end: int, interval: int, zone: ZoneInfo) -> list[int]:
    """The window starts InfluxQL's fill iterator visits from ``start`` to ``end`` in ``zone``.

    It steps by ``interval`` and, when the zone's offset changed in between by less than the
    interval, shifts by that change. One step per window (not per row); bounded by MAX_WINDOWS.
    """

    def offset_at(t: int) -> int:
        off = datetime.fromtimestamp(t // _SECOND, zone).utcoffset()
        return int(off.total_seconds()) * _SECOND if off else 0

    if (end - start) // interval > MAX_WINDOWS:
        raise QueryPlanError(
            f"Error during planning: GROUP BY time() would create more than {MAX_WINDOWS} "
            "windows; narrow the time range or widen the interval"
        )
    out: list[int] = []
    t, current = start, offset_at(start)
    while t <= end:
        out.append(t)
        t += interval
        new = offset_at(t - 1)
        if new != current:
            diff = current - new
            if abs(diff) < interval:
                t += diff
            current = new
    return out


def _with_selected_tags(fields: list[ast.Field]) -> list[ast.Field]:
    """``top(x, tag1, tag2, N)`` also outputs the tags, as columns right after it."""
    out = []
    for f in fields:
        out.append(f)
        e = _strip(f.expr)
        if isinstance(e, ast.Call) and e.name in fn.TOP_BOTTOM and len(e.args) > 2:
            out += [ast.Field(_strip(a)) for a in e.args[1:-1] if isinstance(_strip(a), ast.VarRef)]
    return out


def _contains_transform(expr: ast.Expr) -> bool:
    expr = _strip(expr)
    if isinstance(expr, ast.Call):
        return expr.name in fn.TRANSFORMS or any(_contains_transform(a) for a in expr.args)
    if isinstance(expr, ast.BinaryExpr):
        return _contains_transform(expr.lhs) or _contains_transform(expr.rhs)
    return False


class _NothingSelected(Exception):
    """The SELECT list expanded to no field at all."""


def _is_pattern(expr: ast.Expr) -> bool:
    expr = _strip(expr)
    if isinstance(expr, ast.Wildcard | ast.RegexLit):
        return True
    return isinstance(expr, ast.Call) and any(_is_pattern(a) for a in expr.args)


def _missing_agg(name: str, t: pa.DataType | None) -> str:
    """The NULL an aggregate of a field absent from this measurement yields, typed."""
    if name == "count":
        return "CAST(NULL AS BIGINT)"
    if name in ("mean", "median", "stddev", "integral") or t is None:
        return "CAST(NULL AS DOUBLE)"
    return f"CAST(NULL AS {_sql_type(t)})"


def _sql_type(t: pa.DataType) -> str:
    if pa.types.is_floating(t):
        return "DOUBLE"
    if pa.types.is_unsigned_integer(t):
        return "BIGINT UNSIGNED"
    if pa.types.is_integer(t):
        return "BIGINT"
    if pa.types.is_boolean(t):
        return "BOOLEAN"
    return "VARCHAR"


def _has_var(expr: ast.Expr) -> bool:
    expr = _strip(expr)
    if isinstance(expr, ast.VarRef):
        return True
    if isinstance(expr, ast.BinaryExpr):
        return _has_var(expr.lhs) or _has_var(expr.rhs)
    if isinstance(expr, ast.Call):
        return any(_has_var(a) for a in expr.args)
    return False


def _has_bare_ref(expr: ast.Expr) -> bool:
    expr = _strip(expr)
    if isinstance(expr, ast.VarRef):
        return True
    if isinstance(expr, ast.BinaryExpr):
        return _has_bare_ref(expr.lhs) or _has_bare_ref(expr.rhs)
    if isinstance(expr, ast.Call) and expr.name in fn.MATH:
        return any(_has_bare_ref(a) for a in expr.args)
    return False


def _common_type(a: pa.DataType, b: pa.DataType) -> pa.DataType:
    if pa.types.is_null(a):
        return b
    if pa.types.is_null(b):
        return a
    if _numeric(a) and _numeric(b):
        return pa.float64()
    return pa.string()


def _conform(rb: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    cols = []
    for i, f in enumerate(schema):
        col = rb.column(i)
        if col.type != f.type:
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            col = col.cast(f.type)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=schema)


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


__all__ = ["GROUP_KEY_METADATA", "MEASUREMENT", "SelectPlanner", "parse_time_string", "plan_error"]
