"""InfluxQL for the stand-in: parser plus a planner onto the engine's DataFusion session.

``execute(engine, database, text, params)`` is what the Flight DoGet path (``query_type:
"influxql"``) and HTTP ``/api/v3/query_influxql`` call. It returns a stream with InfluxDB 3's
InfluxQL result shape. See docs/influxql.md for what is supported and the known differences.
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

import pyarrow as pa

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql.parser import not_implemented, parse
from influx_flight.server.influxql.planner import SelectPlanner
from influx_flight.server.influxql.show import show


def _literal(name: str, value: Any) -> ast.Expr:
    """A bound parameter as a literal, typed as SQL parameters are (``param_to_scalar``)."""
    from influx_flight.server.engine import param_to_scalar

    scalar = param_to_scalar(name, value)  # rejects arrays/objects with the SQL path's message
    py = scalar.as_py()
    if py is None:
        return ast.NullLit()
    if isinstance(py, bool):
        return ast.BoolLit(py)
    if isinstance(py, int):
        return ast.IntegerLit(py)
    if isinstance(py, float):
        return ast.NumberLit(py)
    return ast.StringLit(str(py))


def bind(node: Any, params: dict[str, Any]) -> Any:
    """Replace every ``$name`` in the tree by its value; unknown names are an error."""
    if isinstance(node, ast.BindParam):
        if node.name not in params:
            raise QueryPlanError(
                f"Error during planning: no value provided for bind parameter ${node.name}: "
                "pass it in the query's params"
            )
        return _literal(node.name, params[node.name])
    if isinstance(node, list):
        return [bind(n, params) for n in node]
    if isinstance(node, tuple):
        return tuple(bind(n, params) for n in node)
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        changes = {}
        for f in dataclasses.fields(node):
            v = getattr(node, f.name)
            nv = bind(v, params)
            if nv is not v:
                changes[f.name] = nv
        return dataclasses.replace(node, **changes) if changes else node
    return node


def execute(
    engine: Any, database: str, text: str, params: dict[str, Any] | None = None
) -> pa.RecordBatchReader:
    """Parse, plan and run one InfluxQL statement; stream the result."""
    stmt = bind(parse(text), dict(params or {}))
    now_ns = time.time_ns()
    if isinstance(stmt, ast.Unsupported):
        raise not_implemented(stmt.feature)
    if isinstance(stmt, ast.SelectStatement):
        return SelectPlanner(engine, database, stmt, now_ns).run()
    if isinstance(stmt, ast.Explain):
        explain = (stmt.analyze, stmt.verbose)
        return SelectPlanner(engine, database, stmt.statement, now_ns, explain=explain).run()
    return show(engine, database, stmt, now_ns)


__all__ = ["bind", "execute", "parse"]
