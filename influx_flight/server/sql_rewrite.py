"""Rewrites of InfluxDB's SQL functions into DataFusion SQL, and IOx's output column names.

``selector_*`` become ``CASE``/``named_struct`` aggregates, ``tz`` a cast, ``date_bin_wallclock``
a ``date_bin`` on local time (see ``functions`` for the whole picture).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import pyarrow as pa
from datafusion import Accumulator, SessionContext, SQLOptions, udaf, udf

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.sql_tokens import (
    Tok,
    _Call,
    _compact,
    _find_calls,
    _item_alias,
    _replace_calls,
    _Select,
    _strip,
    _text,
    tokenize,
)
from influx_flight.server.sql_tz import (
    _localize_udf_name,
    _register_localize,
    _tz_sql,
    _tz_zone_of,
)

# -- selectors, tz, date_bin_wallclock -----------------------------------------------------

SELECTORS = {"selector_first", "selector_last", "selector_min", "selector_max"}


def _selector_sql(call: _Call) -> str:
    if len(call.args) < 2:
        raise QueryPlanError(
            f"Error during planning: {call.name} requires at least 2 arguments (value, time),"
            f" got {len(call.args)}"
        )
    value, time_, *others = (f"({_text(a)})" for a in call.args)
    kind = call.name.removeprefix("selector_")
    keep = f"FILTER (WHERE {value} IS NOT NULL AND {time_} IS NOT NULL)"
    if kind == "first":
        order, value_expr, time_expr = f"{time_} ASC", None, f"min({time_}) {keep}"
    elif kind == "last":
        order, value_expr, time_expr = f"{time_} DESC", None, f"max({time_}) {keep}"
    elif kind == "min":
        order, value_expr, time_expr = f"{value} ASC, {time_} ASC", f"min({value})", None
    else:
        order, value_expr, time_expr = f"{value} DESC, {time_} ASC", f"max({value})", None
    pick = "first_value({} ORDER BY " + order + ") " + keep
    value_expr = value_expr or pick.format(value)
    time_expr = time_expr or pick.format(time_)
    fields = [f"'value', {value_expr}", f"'time', {time_expr}"]
    fields += [f"'other_{n}', {pick.format(o)}" for n, o in enumerate(others, start=1)]
    return (
        f"(CASE WHEN count({value}) {keep} = 0 THEN NULL "
        f"ELSE named_struct({', '.join(fields)}) END)"
    )


class _Rewriter:
    """Applies the function rewrites of one query, registering helper UDFs into ``ctx``."""

    def __init__(
        self, ctx: SessionContext | None, params: dict[str, pa.Scalar] | None = None
    ) -> None:
        self.ctx = ctx
        self.params = params
        self.zones: set[str] = set()

    def _wallclock_sql(self, call: _Call, fn_name: str = "date_bin") -> str:
        if len(call.args) not in (2, 3):
            raise QueryPlanError(
                f"Error during planning: {call.name} expects 2 or 3 arguments, got {len(call.args)}"
            )
        stride, source = _text(call.args[0]), _text(call.args[1])
        origin = f", {_text(call.args[2])}" if len(call.args) == 3 else ""
        zone = _tz_zone_of(call.args[1])
        if zone is None or zone == "UTC":
            return f"{fn_name}({stride}, {source}{origin})"
        if self.ctx is None:
            raise QueryPlanError(
                "Error during planning: date_bin_wallclock on a tz() time needs the session:"
                " call functions.rewrite_sql(sql, ctx)"
            )
        if zone not in self.zones:
            _register_localize(self.ctx, zone)
            self.zones.add(zone)
        name = _localize_udf_name(zone)
        return f"{name}({fn_name}({stride}, to_local_time({source}){origin}))"

    def rewrite(self, tokens: list[Tok]) -> list[Tok]:
        tokens, _ = _replace_calls(tokens, {"tz"}, lambda c: _tz_sql(c, self.params))
        tokens, _ = _replace_calls(tokens, SELECTORS, _selector_sql)
        tokens, _ = _replace_calls(tokens, {"date_bin_wallclock"}, self._wallclock_sql)
        return tokens


def register(ctx: SessionContext) -> None:
    """Hook for functions that need registering up front (all current ones are rewrites)."""


def rewrite_sql(sql: str, ctx: SessionContext | None = None) -> str:
    """``sql`` with selectors, ``tz`` and ``date_bin_wallclock`` rewritten to DataFusion SQL.

    ``ctx`` receives the helper UDF that ``date_bin_wallclock`` on a ``tz(...)`` time needs;
    without it such a call is refused with a clear error.
    """
    return _text(_Rewriter(ctx).rewrite(tokenize(sql)))


_SET_OPERATIONS = {"UNION", "INTERSECT", "EXCEPT"}


def _settle_set_operations(ctx: SessionContext, df: Any, tokens: Sequence[Tok]) -> Any:
    """``df`` re-based on its optimized plan when the query has a set operation.

    DataFusion 55 reports a UNION's column types from its first input before type coercion
    (``SUM(...) UNION ALL MIN(float)`` says Int64) while execution yields the coerced type
    (Float64), so a stream that announces ``df.schema()`` would cast 16.9 to int64 and fail.
    The optimized plan carries the coerced types.
    """
    if not any(t.kind == "word" and t.upper in _SET_OPERATIONS for t in tokens):
        return df
    try:
        settled = ctx.create_dataframe_from_logical_plan(df.optimized_logical_plan())
    except Exception:
        return df  # execution reports the error
    return settled


# -- output names ---------------------------------------------------------------------------

#: Functions the stand-in rewrites, whose output columns must still be named as IOx names them.
_NAMED = SELECTORS | {"tz", "date_bin_wallclock"}
#: Gap filling's fill functions (named like one-argument functions of the aggregate they wrap).
_FILLERS = {"locf", "interpolate"}
#: Value types tried, in order, for a probe selector's arguments (numbers coerce to Float64).
_PROBE_TYPES = (pa.float64(), pa.utf8(), pa.bool_(), pa.timestamp("ns"))
_PROBE_PREFIX = "__iox_name_probe_"
_PROBE_CALL = re.compile(r"'?(" + _PROBE_PREFIX + r"\d+)'?")


class _NameProbe(Accumulator):
    """Accumulator of the naming probe: never executed, only planned."""

    def state(self) -> list[pa.Scalar]:  # pragma: no cover - planning only
        return [pa.scalar(None, pa.null())]

    def update(self, *values: pa.Array) -> None:  # pragma: no cover
        pass

    def merge(self, states: list[pa.Array]) -> None:  # type: ignore[override]  # pragma: no cover
        pass

    def evaluate(self) -> pa.Scalar:  # pragma: no cover
        return pa.scalar(None, pa.null())


def _iox_names(
    ctx: SessionContext,
    tokens: list[Tok],
    options: SQLOptions,
    params: dict[str, pa.Scalar] | None,
    functions: frozenset[str] | set[str] = _NAMED,
) -> list[str] | None:
    """The output column names IOx gives this query, from DataFusion's own planner.

    IOx's selectors, ``tz`` and ``date_bin_wallclock`` are real functions there, so DataFusion
    names every output column (aliases in any form, nesting, CTEs, subqueries) from the call
    as written: ``selector_max(home.temp,home.time)[value]``. The stand-in rewrites those
    calls, so it plans the query once more with each call renamed to a unique stand-in
    function of the same arity (``__iox_name_probe_N``) and reads the names off that plan's
    schema, putting the real function names back. Nothing executes. Returns None when there
    is nothing to name or the probe cannot be planned (the caller's names then stand).
    ``functions`` widens the set for gap-filling queries (``date_bin_gapfill``, ``locf``...).
    """
    calls: list[tuple[str, int]] = []  # per probe function: (IOx name, arity)

    def build(call: _Call) -> str:
        n = len(calls)
        calls.append((call.name, len(call.args)))
        return f"{_PROBE_PREFIX}{n}(" + ", ".join(_text(a) for a in call.args) + ")"

    probe_tokens, _ = _replace_calls(list(tokens), set(functions), build)
    if not calls:
        return None
    probe_sql = _text(probe_tokens)
    choice = [0] * len(calls)  # index into _PROBE_TYPES per call
    for _attempt in range(len(calls) * len(_PROBE_TYPES)):
        for n, (name, arity) in enumerate(calls):
            _register_probe(ctx, n, name, arity, _PROBE_TYPES[choice[n]])
        try:
            names = ctx.sql(probe_sql, options=options, param_values=params or None).schema().names
        except Exception as exc:
            failing = _PROBE_CALL.search(str(exc))
            if failing is None:
                return None
            n = int(failing.group(1).removeprefix(_PROBE_PREFIX))
            if choice[n] + 1 >= len(_PROBE_TYPES):
                return None
            choice[n] += 1
            continue
        return [
            re.sub(
                _PROBE_PREFIX + r"(\d+)\(",
                lambda m: calls[int(m.group(1))][0] + "(",
                name,
            )
            for name in names
        ]
    return None


def _register_probe(
    ctx: SessionContext, n: int, name: str, arity: int, value_type: pa.DataType
) -> None:
    probe = f"{_PROBE_PREFIX}{n}"
    if name in SELECTORS:
        inputs = [value_type, pa.timestamp("ns")] + [value_type] * max(0, arity - 2)
        fields = [("value", value_type), ("time", pa.timestamp("ns"))]
        fields += [(f"other_{i}", value_type) for i in range(1, arity - 1)]
        ctx.register_udaf(
            udaf(_NameProbe, inputs, pa.struct(fields), [pa.null()], "immutable", probe)
        )
        return
    if name in _FILLERS:  # locf(aggregate) / interpolate(aggregate): the aggregate's type
        ctx.register_udf(udf(lambda *a: a[0], [value_type], value_type, "immutable", probe))
        return
    if name == "tz":
        inputs = [pa.timestamp("ns"), pa.utf8()][:arity] or [pa.timestamp("ns")]
        returns = pa.timestamp("ns")  # names do not depend on the zone
    else:  # date_bin_wallclock / date_bin[_wallclock]_gapfill (stride, time[, origin])
        inputs = [pa.month_day_nano_interval(), pa.timestamp("ns"), pa.timestamp("ns")][:arity]
        returns = pa.timestamp("ns")
    ctx.register_udf(udf(lambda *a: a[0], inputs, returns, "immutable", probe))


def _selector_names(ctx: SessionContext, select: _Select) -> dict[int, str]:
    """Names for unaliased select items that are a bare selector call, as IOx names them.

    DataFusion displays the arguments qualified (``selector_max(home.temp,home.time)``); a
    planning-only probe ``SELECT min(arg)... FROM <same FROM>`` yields those displays.
    """
    names: dict[int, str] = {}
    if any(_text(_strip(item)) == "*" for item in select.items):
        return names
    wanted: list[tuple[int, _Call, list[Tok]]] = []
    for index, item in enumerate(select.items):
        expr, alias = _item_alias(item)
        if alias is not None:
            continue
        calls = list(_find_calls(expr, SELECTORS))
        if len(calls) == 1 and calls[0].start == 0:
            wanted.append((index, calls[0], list(expr[calls[0].end + 1 :])))
    if not wanted:
        return names
    display: dict[str, str] = {}
    if "FROM" in select.clauses:
        unique = list(dict.fromkeys(_text(a).strip() for _, call, _ in wanted for a in call.args))
        probe = (
            "SELECT "
            + ", ".join(f"min({a})" for a in unique)
            + " FROM "
            + _text(select.clauses["FROM"])
        )
        try:
            found = ctx.sql(probe).schema().names
            if len(found) == len(unique):
                display = {
                    a: (n[4:-1] if n.startswith("min(") else n)
                    for a, n in zip(unique, found, strict=True)
                }
        except Exception:
            display = {}
    for index, call, rest in wanted:
        args = [display.get(_text(a).strip(), _compact(a)) for a in call.args]
        names[index] = f"{call.name}({','.join(args)})" + _compact(rest)
    return names


def _rename(df: Any, renames: dict[int, str]) -> Any:
    if not renames:
        return df
    schema = df.schema()
    names = schema.names
    if len(set(names)) != len(names):
        return df
    try:
        columns = df.find_qualified_columns(*names)
        exprs = [expr.alias(renames[i]) if i in renames else expr for i, expr in enumerate(columns)]
        return df.select(*exprs)
    except Exception:
        return df
