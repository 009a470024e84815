"""InfluxQL SELECT -> DataFusion SQL, one query per measurement, streamed in measurement order.

The shape follows InfluxDB 3 (``influxdb3-protocol.md`` §4.1): ``iox::measurement``, ``time``,
the GROUP BY tags not projected (sorted), then the projection; rows ordered by measurement,
GROUP BY tags, time. The values follow InfluxQL's semantics (windows, fill, selectors,
transformations), all computed by DataFusion: aggregates, window functions for fill(previous),
fill(linear) and the transformations, ``generate_series`` for the window grid.

This module resolves the sources (measurements, regexes, subqueries), analyses the SELECT list
and plans raw selections; ``SelectPlanner`` takes the rest from one module per job:
``expressions`` (values and WHERE), ``aggregates`` (and top/bottom), ``transforms``,
``gapfill``, ``timezones`` (windows) and ``emit`` (the result stream).
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pyarrow as pa

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql import functions as fn
from influx_flight.server.influxql.aggregates import Aggregates
from influx_flight.server.influxql.emit import Emitter
from influx_flight.server.influxql.expressions import Expressions
from influx_flight.server.influxql.gapfill import GapFill
from influx_flight.server.influxql.parser import not_implemented
from influx_flight.server.influxql.schema import (
    MEASUREMENT,
    Schema,
    engine_tables,
    is_numeric,
)
from influx_flight.server.influxql.sql import plan_error, qi, qs
from influx_flight.server.influxql.subquery import SubqueryTable, run_subquery
from influx_flight.server.influxql.timerange import (
    TimeRange,
    is_time,
    mentions_time,
    split_condition,
    strip_parens,
)
from influx_flight.server.influxql.timezones import Windows
from influx_flight.server.influxql.transforms import Transforms
from influx_flight.server.regex import Pattern, compile_regex


# --------------------------------------------------------------------------- naming
def column_name(expr: ast.Expr) -> str:
    """InfluxQL's default column name: function name, or the var refs joined by '_'."""
    expr = strip_parens(expr)
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
class SelectPlanner(Expressions, Aggregates, Transforms, GapFill, Windows, Emitter):
    """Plans and runs one SELECT statement against ``engine``."""

    def __init__(
        self,
        engine: Any,
        database: str,
        stmt: ast.SelectStatement,
        now_ns: int,
        explain: tuple[bool, bool] | None = None,
    ) -> None:
        self.explain = explain  # (ANALYZE, VERBOSE) for EXPLAIN: the plans instead of rows
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
            if isinstance(src, ast.Measurement) and src.database is not None:
                raise not_implemented("database prefix in qualified measurement syntax")
        tables = engine_tables(self.engine, self.database)
        names: set[str] = set()
        # Subqueries' results, per measurement: registered as tables of this query's session.
        self._subqueries: dict[str, SubqueryTable] = {}
        self._only_subqueries = all(isinstance(s, ast.SelectStatement) for s in stmt.sources)
        for src in stmt.sources:
            if isinstance(src, ast.SelectStatement):
                for m, sub in run_subquery(
                    self.engine, self.database, stmt, src, self.now_ns
                ).items():
                    self._subqueries[m] = sub
                    tables[m] = sub.schema
                    names.add(m)
            elif src.regex is not None:
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
        for k, (_m, sub) in enumerate(sorted(self._subqueries.items())):
            name = f"__influxql_subquery_{k}"
            batches = sub.data.to_batches() or [
                pa.RecordBatch.from_pylist([], schema=sub.data.schema)
            ]
            session.register_record_batches(name, [batches])
            sub.table_name = name
        frames = []
        for m in measurements:
            sql = self._measurement_sql(m, tables[m], session)
            if sql is None:
                continue
            if self.explain is not None:
                analyze, verbose = self.explain
                sql = f"EXPLAIN {'ANALYZE ' if analyze else ''}{'VERBOSE ' if verbose else ''}{sql}"
            try:
                df = session.sql(sql)
            except Exception as exc:
                raise plan_error(exc, sql) from exc
            # Core's --query-file-limit, as for SQL (subqueries come through here too)
            self.engine.check_file_limit(self.database, df)
            frames.append(df)
        if self.explain is not None:
            return self._explain_stream(frames)
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
                iv = strip_parens(d.interval)
                if not isinstance(iv, ast.DurationLit) or iv.ns <= 0:
                    raise QueryPlanError(
                        "Error during planning: GROUP BY time() needs a positive duration, "
                        "e.g. time(1h)"
                    )
                self.interval = iv.ns
                if d.offset is not None:
                    off = strip_parens(d.offset)
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
        expr = strip_parens(f.expr)
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
        inner = strip_parens(expr.args[0]) if isinstance(expr, ast.Call) and expr.args else None
        nested = isinstance(inner, ast.Call) and bool(inner.args)
        pattern = strip_parens(inner.args[0]) if nested else inner  # type: ignore[union-attr]
        if isinstance(pattern, ast.Wildcard | ast.RegexLit):
            # fn(*), fn(/re/) and transform(agg(*)): one column per matching field, named
            # fn_<field> (the outer function's name, as InfluxQL).
            assert isinstance(expr, ast.Call)
            if expr.name in fn.MATH and isinstance(pattern, ast.RegexLit):
                # InfluxQL (1.x, and InfluxDB 3's reference) takes a field or * here, no regex.
                raise QueryPlanError(
                    f"Error during planning: {expr.name}() takes a field or *, not a regular "
                    "expression: name the fields"
                )
            rx = self._regex(pattern.pattern) if isinstance(pattern, ast.RegexLit) else None
            applied = inner.name if nested else expr.name  # type: ignore[union-attr]
            out = []
            for n in sorted(u.fields):
                if rx is not None and not rx.search(n):
                    continue
                if applied not in fn.ANY_TYPE and not is_numeric(u.fields[n]):
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
            if is_time(strip_parens(f.expr)):
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
            if not any(strip_parens(f.expr) is self.top_call for f in fields):
                raise QueryPlanError(
                    f"Error during planning: {self.top_call.name}() cannot be used inside an "
                    "expression"
                )
        self.has_agg = any(c.name in fn.AGGREGATES | fn.SELECTORS for c in calls)
        self.transforms = [c for c in calls if c.name in fn.TRANSFORMS]
        self.is_distinct = any(
            isinstance(strip_parens(f.expr), ast.Call) and strip_parens(f.expr).name == "distinct"
            for f in fields
        )
        aggs = [c for c in calls if c.name in fn.AGGREGATES | fn.SELECTORS]
        self.lone_selector: ast.Call | None = None
        if len(aggs) == 1 and aggs[0].name in fn.SELECTORS and not self.transforms:
            self.lone_selector = aggs[0]
        for f in fields:
            if mentions_time(f.expr):
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
            len(fields) != 1 or strip_parens(fields[0].expr).__class__ is not ast.Call
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
        expr = strip_parens(expr)
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
                a0 = strip_parens(expr.args[0])
                if isinstance(a0, ast.Call):
                    self._validate(a0, calls, False, name)
            elif name == "count" and isinstance(strip_parens(expr.args[0]), ast.Call):
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
            if n != 2 or not isinstance(strip_parens(c.args[1]), ast.IntegerLit | ast.NumberLit):
                raise bad("expected percentile(field, N) with a number N")
        elif name == "moving_average":
            if n != 2 or not isinstance(strip_parens(c.args[1]), ast.IntegerLit):
                raise bad("expected moving_average(field, N) with an integer N")
            if strip_parens(c.args[1]).value < 2:  # type: ignore[attr-defined]
                raise bad("moving_average window must be greater than 1")
        elif name in ("derivative", "non_negative_derivative", "elapsed", "integral"):
            if n not in (1, 2) or (
                n == 2 and not isinstance(strip_parens(c.args[1]), ast.DurationLit)
            ):
                raise bad(f"expected {name}(field[, unit]) with a duration unit")
            if n == 2 and strip_parens(c.args[1]).ns <= 0:  # type: ignore[attr-defined]
                raise bad("the unit must be a positive duration")
        elif name in fn.TOP_BOTTOM:
            last = strip_parens(c.args[-1]) if n else None
            if n < 2 or not isinstance(last, ast.IntegerLit):
                raise bad(f"expected {name}(field[, tag, ...], N) with an integer N")
            if last.value <= 0:
                raise bad(f"N must be a positive integer, got {last.value}")
            if not all(isinstance(strip_parens(a), ast.VarRef) for a in c.args[1:-1]):
                raise bad("only tag keys may come between the field and N")
        elif n != 1:
            raise bad("expected one argument")
        a0 = strip_parens(c.args[0])
        if name in fn.TRANSFORMS:
            if not isinstance(a0, ast.VarRef | ast.Call):
                raise bad("the argument must be a field or an aggregate")
        elif name == "count" and isinstance(a0, ast.Call):
            if a0.name != "distinct":
                raise bad("only count(distinct(field)) may nest a function")
        elif not isinstance(a0, ast.VarRef):
            raise bad("the argument must be a field")

    # -- per measurement SQL ---------------------------------------------------------------
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
            f"FROM {self._table(m)} WHERE {' AND '.join(where)}"
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

    def _table(self, m: str) -> str:
        """The SQL table of measurement ``m``: stored, or a subquery's result."""
        sub = getattr(self, "_subqueries", {}).get(m)
        if sub is not None:
            return sub.table_name
        return f"public.iox.{qi(m)}"

    def _group_cols(self) -> list[str]:
        """Quoted GROUP BY tag columns (as in the source CTE)."""
        return [qi(t) for t in self.group_tags]

    def _head(self, m: str) -> list[str]:
        """The leading output columns: measurement, time, unprojected GROUP BY tags."""
        projected = {
            strip_parens(f.expr).name
            for f in self.fields
            if isinstance(strip_parens(f.expr), ast.VarRef)
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
            if isinstance(strip_parens(f.expr), ast.VarRef)
            and self._ref(strip_parens(f.expr).name, schema, strip_parens(f.expr).type_hint)[1]
            == "tag"
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
        body = f"SELECT {', '.join(head + proj)} FROM {self._table(m)} WHERE {' AND '.join(where)}"
        out_cols = [MEASUREMENT, self.time_alias, *self.unprojected, *self.names]
        self._final_cols = set(out_cols)
        # Projected GROUP BY tags still order the series.
        return self._finish(body, m, out_cols, tagcols)

    # -- transforms ------------------------------------------------------------------------

    # -- aggregates ------------------------------------------------------------------------

    # -- distinct --------------------------------------------------------------------------

    # -- top / bottom ----------------------------------------------------------------------

    # -- output ----------------------------------------------------------------------------


def _with_selected_tags(fields: list[ast.Field]) -> list[ast.Field]:
    """``top(x, tag1, tag2, N)`` also outputs the tags, as columns right after it."""
    out = []
    for f in fields:
        out.append(f)
        e = strip_parens(f.expr)
        if isinstance(e, ast.Call) and e.name in fn.TOP_BOTTOM and len(e.args) > 2:
            out += [
                ast.Field(strip_parens(a))
                for a in e.args[1:-1]
                if isinstance(strip_parens(a), ast.VarRef)
            ]
    return out


class _NothingSelected(Exception):
    """The SELECT list expanded to no field at all."""


def _is_pattern(expr: ast.Expr) -> bool:
    expr = strip_parens(expr)
    if isinstance(expr, ast.Wildcard | ast.RegexLit):
        return True
    return isinstance(expr, ast.Call) and any(_is_pattern(a) for a in expr.args)


def _has_var(expr: ast.Expr) -> bool:
    expr = strip_parens(expr)
    if isinstance(expr, ast.VarRef):
        return True
    if isinstance(expr, ast.BinaryExpr):
        return _has_var(expr.lhs) or _has_var(expr.rhs)
    if isinstance(expr, ast.Call):
        return any(_has_var(a) for a in expr.args)
    return False


def _has_bare_ref(expr: ast.Expr) -> bool:
    expr = strip_parens(expr)
    if isinstance(expr, ast.VarRef):
        return True
    if isinstance(expr, ast.BinaryExpr):
        return _has_bare_ref(expr.lhs) or _has_bare_ref(expr.rhs)
    if isinstance(expr, ast.Call) and expr.name in fn.MATH:
        return any(_has_bare_ref(a) for a in expr.args)
    return False


__all__ = ["SelectPlanner", "column_name", "dedupe"]
