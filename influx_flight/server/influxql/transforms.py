"""Transformations (derivative, difference, moving_average, cumulative_sum, elapsed and the
non-negative forms) as window functions over raw rows or over the (gap-filled) windows."""

from __future__ import annotations

from dataclasses import dataclass

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql import functions as fn
from influx_flight.server.influxql.schema import MEASUREMENT, Schema
from influx_flight.server.influxql.sql import lit, qi
from influx_flight.server.influxql.timerange import SECOND, strip_parens


@dataclass
class TransformSpec:
    col: str
    name: str
    arg: ast.Expr
    n: int | None = None  # moving_average window
    unit: int | None = None  # derivative/elapsed unit (ns)
    group: int = 0  # transformations of the same argument share one window pass


class Transforms:
    """Transformation planning (a mixin of ``SelectPlanner``)."""

    def _transform_specs(self) -> list[TransformSpec]:
        """Column names, units and window sizes of the transformations."""
        specs = []
        groups: dict[ast.Expr, int] = {}
        for i, c in enumerate(self.transforms):
            unit = None
            n = None
            if c.name in ("derivative", "non_negative_derivative", "elapsed"):
                if len(c.args) == 2:
                    unit = strip_parens(c.args[1]).ns  # type: ignore[attr-defined]
                elif c.name == "elapsed":
                    unit = 1
                else:
                    unit = self.interval if self.has_agg and self.interval else SECOND
            if c.name == "moving_average":
                n = strip_parens(c.args[1]).value  # type: ignore[attr-defined]
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
        expr = strip_parens(expr)
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


def contains_transform(expr: ast.Expr) -> bool:
    expr = strip_parens(expr)
    if isinstance(expr, ast.Call):
        return expr.name in fn.TRANSFORMS or any(contains_transform(a) for a in expr.args)
    if isinstance(expr, ast.BinaryExpr):
        return contains_transform(expr.lhs) or contains_transform(expr.rhs)
    return False


__all__ = ["TransformSpec", "Transforms", "contains_transform"]
