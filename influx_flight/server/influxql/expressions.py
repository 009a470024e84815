"""Row-level SQL of InfluxQL expressions: var refs (field, tag, or a field of another
measurement), literals, arithmetic (``/`` always float), math functions (NULL outside their
domain), and WHERE conditions (NULL comparisons are false, a missing tag is '')."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql import functions as fn
from influx_flight.server.influxql.parser import not_implemented
from influx_flight.server.influxql.schema import Schema, is_numeric
from influx_flight.server.influxql.sql import lit, qi, qs, sql_type, ts
from influx_flight.server.influxql.timerange import strip_parens


class Expressions:
    """Expression and condition compilation (a mixin of ``SelectPlanner``)."""

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
            return f"CAST(NULL AS {sql_type(self.union.fields[name])})", "missing"
        return "NULL", "missing"

    def _cond_sql(self, expr: ast.Expr, schema: Schema) -> str:
        """WHERE (without time bounds) as SQL: NULL comparisons count as false, as InfluxQL."""
        expr = strip_parens(expr)
        if isinstance(expr, ast.BinaryExpr):
            if expr.op in ("AND", "OR"):
                return (
                    f"({self._cond_sql(expr.lhs, schema)} {expr.op} "
                    f"{self._cond_sql(expr.rhs, schema)})"
                )
            if expr.op in ("=~", "!~") or isinstance(strip_parens(expr.rhs), ast.RegexLit):
                lhs = strip_parens(expr.lhs)
                rhs = strip_parens(expr.rhs)
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
                lhs, rhs = strip_parens(expr.lhs), strip_parens(expr.rhs)
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
            return not is_numeric(t)
        if isinstance(other, ast.BoolLit):
            return not pa.types.is_boolean(t)
        return False

    def _value_sql(self, expr: ast.Expr, schema: Schema, in_where: bool = False) -> str:
        """Row-level SQL of a value expression (fields, tags, literals, arithmetic, math)."""
        expr = strip_parens(expr)
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
        expr = strip_parens(expr)
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


__all__ = ["Expressions"]
