"""InfluxDB 3 SQL functions on top of stock DataFusion, by query rewriting plus Arrow post-processing.

DataFusion's Python API only registers functions with one fixed signature, while InfluxDB's
functions are polymorphic (a selector returns a struct of its argument's type, ``tz`` returns
a timestamp in the zone it is given). So the stand-in rewrites them into built-in DataFusion
SQL before planning, which keeps them vectorised in Rust:

* ``selector_first/last/min/max(value, time[, extra...])`` -> ``CASE WHEN count(value) = 0
  THEN NULL ELSE named_struct('value', ..., 'time', ..., 'other_1', ...) END`` built from
  ``min``/``max``/``first_value(... ORDER BY ...) FILTER (WHERE value IS NOT NULL)`` with IOx's
  rules: rows with a null value are ignored, min/max ties go to the earliest time.
* ``tz(time[, 'zone'])`` -> a cast through UTC to ``Timestamp(ns, zone)`` (zone checked).
* ``date_bin_wallclock(stride, time[, origin])`` -> ``date_bin`` on the local wall-clock time
  when ``time`` is ``tz(...)``, converted back to the zone by a small vectorised UDF.
* ``date_bin_gapfill`` / ``date_bin_wallclock_gapfill`` with ``locf`` / ``interpolate``: the
  aggregate runs in DataFusion with ``date_bin``; the gaps between the WHERE clause's time
  bounds are then filled with numpy/pyarrow (no per-row Python), and any ORDER BY / LIMIT is
  applied by DataFusion over the filled result.

Only the outermost SELECT of a query may gap-fill. Output columns are named as IOx names them:
DataFusion plans the query once more with each rewritten call replaced by a stand-in function of
the same name shape (``_iox_names``), so aliases in any form and unaliased calls anywhere
(nested, in CTEs and subqueries) get DataFusion's own names, e.g.
``selector_max(home.temp,home.time)[value]``.

Modules: ``sql_tokens`` (tokenizer, calls, the outer SELECT's clauses), ``sql_tz`` (``tz()`` and
zone helpers), ``sql_rewrite`` (the rewrites and IOx's output names), ``sql_gapfill`` (gap
filling); this module plans a query through them (``plan``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
from datafusion import SessionContext, SQLOptions

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.sql_gapfill import FILLERS, GAPFILL, _plan_gapfill
from influx_flight.server.sql_rewrite import (
    SELECTORS,
    _iox_names,
    _rename,
    _Rewriter,
    _selector_names,
    _settle_set_operations,
    register,
    rewrite_sql,
)
from influx_flight.server.sql_tokens import (
    Tok,
    _contains_call,
    _find_calls,
    _outer_select,
    _text,
    tokenize,
)


def plan(
    ctx: SessionContext,
    sql: str,
    options: SQLOptions,
    params: dict[str, pa.Scalar] | None = None,
) -> Any:
    """Plan ``sql`` with InfluxDB's functions and return a DataFusion DataFrame."""
    tokens = tokenize(sql)
    has_gapfill = _contains_call(tokens, GAPFILL)
    has_fillers = _contains_call(tokens, FILLERS)
    if not has_gapfill:
        if has_fillers:
            name = next(_find_calls(tokens, FILLERS)).name
            raise QueryPlanError(
                f"Error during planning: {name} may only be used in the SELECT list of a"
                " gap-filling query"
            )
        rewriter = _Rewriter(ctx, params)
        df = ctx.sql(_text(rewriter.rewrite(tokens)), options=options, param_values=params or None)
        names = _iox_names(ctx, tokens, options, params)
        if names is None:
            select = _outer_select(tokens)
            renames = _selector_names(ctx, select) if select is not None else {}
        else:
            current = df.schema().names
            renames = {
                i: name
                for i, (name, now) in enumerate(zip(names, current, strict=False))
                if name != now
            }
            if len(names) != len(current):
                renames = {}
        return _settle_set_operations(ctx, _rename(df, renames), tokens)
    return _settle_set_operations(ctx, _plan_gapfill(ctx, tokens, options, params), tokens)


__all__ = [
    "FILLERS",
    "GAPFILL",
    "SELECTORS",
    "Tok",
    "plan",
    "register",
    "rewrite_sql",
    "tokenize",
]
