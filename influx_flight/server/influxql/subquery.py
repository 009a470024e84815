"""Subqueries: ``SELECT ... FROM (SELECT ...)``.

The inner statement runs first (with the outer statement's time bounds ANDed into its WHERE
clause and the outer GROUP BY tags added to its own, as InfluxQL does) and its result becomes, per measurement, a table of the outer
query's session: the inner GROUP BY tags (and tags it selects) stay tags, every other column is
a field, ``time`` is the inner row's time. The outer statement is then planned over those
tables like over stored measurements. As in InfluxDB 3, ``fill(null)`` (the default) inside a
subquery becomes ``fill(none)``.

The inner result is materialised (it is usually an aggregate, far smaller than its input).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from influx_flight.server.influxql import ast
from influx_flight.server.influxql.schema import Schema
from influx_flight.server.influxql.timerange import conjuncts, mentions_time


@dataclass
class SubqueryTable:
    """One measurement of a subquery's result, ready to register as a table."""

    schema: Schema
    data: pa.Table


def with_outer_time(outer: ast.SelectStatement, inner: ast.SelectStatement) -> ast.SelectStatement:
    """The inner statement as it runs: the outer time bounds added, fill(null) -> fill(none)."""
    bounds = [c for c in conjuncts(outer.condition) if mentions_time(c)]
    condition = inner.condition
    for b in bounds:
        condition = b if condition is None else ast.BinaryExpr("AND", ast.Paren(condition), b)
    fill = "none" if inner.fill == "null" else inner.fill
    # The tags the outer query groups by group the inner query too (InfluxQL): its rows keep
    # them. (GROUP BY * and /regex/ expand over the subquery's own tags, as in 1.x.)
    dimensions = list(inner.dimensions)
    for d in outer.dimensions:
        if isinstance(d, ast.TagDimension) and d not in dimensions:
            dimensions.append(d)
    return dataclasses.replace(inner, condition=condition, fill=fill, dimensions=dimensions)


def run_subquery(
    engine: Any, database: str, outer: ast.SelectStatement, inner: ast.SelectStatement, now_ns: int
) -> dict[str, SubqueryTable]:
    """Run ``inner`` and split its result into one table per measurement."""
    from influx_flight.server.influxql.planner import SelectPlanner

    planner = SelectPlanner(engine, database, with_outer_time(outer, inner), now_ns)
    result = planner.run().read_all()
    if result.num_columns < 2 or result.num_rows == 0:
        return {}
    tags = set(getattr(planner, "group_tags", []))
    union = getattr(planner, "union", Schema())
    for f, name in zip(getattr(planner, "fields", []), getattr(planner, "names", []), strict=False):
        e = f.expr
        while isinstance(e, ast.Paren):
            e = e.expr
        if (
            isinstance(e, ast.VarRef)
            and e.name == name
            and e.name in union.tags
            and e.type_hint != "field"
            and e.name not in union.fields
        ):
            tags.add(name)
    time_name = result.schema.field(1).name
    columns = [n for n in result.schema.names[2:]]
    out: dict[str, SubqueryTable] = {}
    measurements = result.column(0)
    for m in pc.unique(measurements).to_pylist():
        rows = result.filter(pc.equal(measurements, m))
        arrays = {"time": rows.column(time_name).cast(pa.timestamp("ns"))}
        fields: dict[str, pa.DataType] = {}
        for c in columns:
            col = rows.column(c)
            if pa.types.is_null(col.type):
                col = col.cast(pa.float64())
            arrays[c] = col
            if c not in tags:
                fields[c] = col.type
        table = pa.table(arrays)
        out[str(m)] = SubqueryTable(Schema(sorted(t for t in tags if t in columns), fields), table)
    return out


__all__ = ["SubqueryTable", "run_subquery", "with_outer_time"]
