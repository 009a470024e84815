"""Gap filling for the stand-in's SQL: ``date_bin_gapfill`` / ``date_bin_wallclock_gapfill``
with ``locf`` and ``interpolate``. The aggregate runs in DataFusion with ``date_bin``; the gaps
between the WHERE clause's time bounds are then filled with numpy/pyarrow (no per-row Python).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datafusion import SessionContext, SQLOptions

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.sql_rewrite import _NAMED, _iox_names, _Rewriter
from influx_flight.server.sql_tokens import (
    Tok,
    _Call,
    _compact,
    _contains_call,
    _find_calls,
    _ident,
    _item_alias,
    _match_paren,
    _outer_select,
    _quote,
    _replace_calls,
    _Select,
    _split_top,
    _strip,
    _text,
    tokenize,
)
from influx_flight.server.sql_tz import _tz_zone_of

# -- gap filling ----------------------------------------------------------------------------

GAPFILL = {"date_bin_gapfill", "date_bin_wallclock_gapfill"}
FILLERS = {"locf", "interpolate"}


def _column_of(tokens: Sequence[Tok]) -> str:
    """The column a gap-fill source argument names (a column, optionally inside tz())."""
    toks = _strip(tokens)
    calls = list(_find_calls(toks, {"tz"}))
    if len(calls) == 1 and calls[0].start == 0 and calls[0].end == len(toks) - 1:
        return _column_of(calls[0].args[0]) if calls[0].args else ""
    solid = [t for t in toks if not t.blank]
    if (
        solid
        and all(t.kind in ("word", "qid") or t.text == "." for t in solid)
        and solid[-1].kind in ("word", "qid")
    ):
        return _ident(solid[-1])
    raise QueryPlanError(
        "Error during planning: DATE_BIN_GAPFILL requires a column as the source argument"
    )


def _time_bounds(
    where: Sequence[Tok] | None, column: str
) -> tuple[list[tuple[str, bool]], list[tuple[str, bool]]]:
    """(lower, upper) bound expressions of ``column`` in a WHERE clause, each (sql, inclusive).

    Only top-level conjunctions are analysed (as IOx's range predicate does).
    """
    lower: list[tuple[str, bool]] = []
    upper: list[tuple[str, bool]] = []
    if not where:
        return [], []

    def is_col(toks: Sequence[Tok]) -> bool:
        solid = [t for t in toks if not t.blank]
        if not solid or solid[-1].kind not in ("word", "qid"):
            return False
        if not all(t.kind in ("word", "qid") or t.text == "." for t in solid):
            return False
        return _ident(solid[-1]) == column

    # split on top-level AND, keeping BETWEEN x AND y together
    conjuncts: list[list[Tok]] = [[]]
    depth = 0
    between = False
    for t in where:
        if t.kind == "op" and t.text in ("(", "["):
            depth += 1
        elif t.kind == "op" and t.text in (")", "]"):
            depth -= 1
        if depth == 0 and t.kind == "word":
            if t.upper == "BETWEEN":
                between = True
            elif t.upper == "AND":
                if between:
                    between = False
                else:
                    conjuncts.append([])
                    continue
            elif t.upper == "OR":
                return [], []
        conjuncts[-1].append(t)
    flip = {">": "<", ">=": "<=", "<": ">", "<=": ">="}
    for conj in conjuncts:
        toks = _strip(conj)
        while toks and toks[0].text == "(" and _match_paren(toks, 0) == len(toks) - 1:
            toks = _strip(toks[1:-1])
        words = [t.upper for t in toks]
        if "BETWEEN" in words:
            k = words.index("BETWEEN")
            if is_col(toks[:k]) and "NOT" not in words[:k]:
                rest = toks[k + 1 :]
                parts = [i for i, t in enumerate(rest) if t.upper == "AND"]
                if parts:
                    lower.append((_text(rest[: parts[0]]), True))
                    upper.append((_text(rest[parts[0] + 1 :]), True))
            continue
        ops = [
            i
            for i, t in enumerate(toks)
            if t.kind == "op" and t.text in (">", ">=", "<", "<=", "=")
        ]
        if len(ops) != 1:
            continue
        k = ops[0]
        op = toks[k].text
        left, right = toks[:k], toks[k + 1 :]
        if is_col(left):
            bound = _text(right)
        elif is_col(right):
            bound = _text(left)
            op = flip.get(op, op)
        else:
            continue
        if op in (">", ">="):
            lower.append((bound, op == ">="))
        elif op in ("<", "<="):
            upper.append((bound, op == "<="))
        else:
            lower.append((bound, True))
            upper.append((bound, True))
    return lower, upper


_TS_UTC = "'Timestamp(Nanosecond, Some(\"UTC\"))'"
_TS = "'Timestamp(Nanosecond, None)'"


def _eval_scalar(
    ctx: SessionContext, expr: str, options: SQLOptions, params: dict[str, pa.Scalar] | None
) -> Any:
    df = ctx.sql(f"SELECT {expr} AS v", options=options, param_values=params or None)
    table = df.to_arrow_table()
    return table.column(0)[0]


def _eval_instant(
    ctx: SessionContext, expr: str, options: SQLOptions, params: dict[str, pa.Scalar] | None
) -> int:
    sql = f"arrow_cast(arrow_cast(({expr}), {_TS_UTC}), {_TS})"
    value = _eval_scalar(ctx, sql, options, params)
    if not value.is_valid:
        raise QueryPlanError("Error during planning: a time bound of the gap-fill query is NULL")
    return int(value.cast(pa.int64()).as_py())


def _eval_stride(
    ctx: SessionContext, expr: str, options: SQLOptions, params: dict[str, pa.Scalar] | None
) -> int:
    value = _eval_scalar(ctx, f"arrow_cast(({expr}), 'Interval(MonthDayNano)')", options, params)
    interval = value.as_py()
    if interval.months:
        raise QueryPlanError(
            "Error during planning: the stand-in fills gaps only for fixed-size strides (days,"
            " hours, minutes...), not months or years"
        )
    stride = interval.days * 86_400_000_000_000 + interval.nanoseconds
    if stride <= 0:
        raise QueryPlanError("Error during planning: DATE_BIN stride must be positive")
    return int(stride)


def _date_bin(ts: np.ndarray, stride: int, origin: int) -> np.ndarray:
    return origin + np.floor_divide(ts - origin, stride) * stride


def _plan_gapfill(
    ctx: SessionContext,
    tokens: list[Tok],
    options: SQLOptions,
    params: dict[str, pa.Scalar] | None,
) -> Any:
    select = _outer_select(tokens)
    if select is None or "GROUP" not in select.clauses:
        raise QueryPlanError(
            "Error during planning: date_bin_gapfill may only be used as a GROUP BY expression"
        )
    # -- find the gap-fill call, the fill functions and the output names -----------------------
    time_index = None
    gap_call: _Call | None = None
    fill: dict[int, str] = {}
    names: list[str | None] = []
    post_names: dict[int, str] = {}
    for index, item in enumerate(select.items):
        expr, alias = _item_alias(item)
        calls = list(_find_calls(expr, GAPFILL))
        if calls:
            if time_index is not None:
                raise QueryPlanError(
                    "Error during planning: DATE_BIN_GAPFILL specified more than once"
                )
            time_index, gap_call = index, calls[0]
        fillers = list(_find_calls(expr, FILLERS))
        if fillers:
            call = fillers[0]
            if len(fillers) > 1 or call.start != 0 or _strip(expr[call.end + 1 :]):
                raise QueryPlanError(
                    f"Error during planning: {call.name} must wrap the whole select item of a"
                    " gap-filling query"
                )
            if len(call.args) != 1:
                raise QueryPlanError(
                    f"Error during planning: {call.name} expects 1 argument, got {len(call.args)}"
                )
            fill[index] = call.name
        whole_gap = bool(calls) and calls[0].start == 0 and not _strip(expr[calls[0].end + 1 :])
        if alias is None and whole_gap and calls[0].name == "date_bin_gapfill":
            post_names[index] = "date_bin_gapfill"  # DataFusion's date_bin(...) name, renamed
        elif alias is None and whole_gap:
            args = ",".join(_compact(a) for a in calls[0].args)
            alias = f"{calls[0].name}({args})"
        elif alias is None and fillers:
            post_names[index] = fillers[0].name  # locf(<DataFusion's name of the aggregate>)
        names.append(alias)
    group_tokens = select.clauses["GROUP"]
    if gap_call is None:
        in_group = list(_find_calls(group_tokens, GAPFILL))
        if in_group:
            raise QueryPlanError(
                "Error during planning: the stand-in needs the date_bin_gapfill(...) expression in"
                " the SELECT list as well as in GROUP BY"
            )
        raise QueryPlanError(
            "Error during planning: date_bin_gapfill may only be used as a GROUP BY expression"
        )
    if len(gap_call.args) not in (2, 3):
        raise QueryPlanError(
            f"Error during planning: DATE_BIN_GAPFILL expects 2 or 3 arguments, got"
            f" {len(gap_call.args)}"
        )
    assert time_index is not None
    column = _column_of(gap_call.args[1])
    lower, upper = _time_bounds(select.clauses.get("WHERE"), column)
    if not lower and not upper:
        raise QueryPlanError(
            "Error during planning: gap-filling query is missing both upper and lower time bounds"
        )
    if not lower:
        raise QueryPlanError("Error during planning: gap-filling query is missing lower time bound")
    if not upper:
        raise QueryPlanError("Error during planning: gap-filling query is missing upper time bound")
    zone = None
    if gap_call.name == "date_bin_wallclock_gapfill":
        src = tokenize(_text(_Rewriter(ctx, params).rewrite(list(gap_call.args[1]))))
        zone = _tz_zone_of(src)
        if zone == "UTC":
            zone = None
    # -- the aggregate query: gap functions -> date_bin, fillers -> their argument -----------
    rewriter = _Rewriter(ctx, params)
    items_sql: list[str] = []
    for index, item in enumerate(select.items):
        expr, _alias = _item_alias(item)
        expr_tokens = list(expr)
        if index in fill:
            expr_tokens = list(next(_find_calls(expr_tokens, FILLERS)).args[0])
        expr_tokens, _ = _replace_calls(
            expr_tokens,
            GAPFILL,
            lambda c: (
                f"date_bin_wallclock({', '.join(_text(a) for a in c.args)})"
                if c.name == "date_bin_wallclock_gapfill"
                else f"date_bin({', '.join(_text(a) for a in c.args)})"
            ),
        )
        if _contains_call(expr_tokens, FILLERS):
            name = next(_find_calls(expr_tokens, FILLERS)).name
            raise QueryPlanError(
                f"Error during planning: {name} may only be used in the SELECT list of a"
                " gap-filling query"
            )
        text = _text(rewriter.rewrite(expr_tokens))
        out_name = names[index]
        items_sql.append(f"{text} AS {_quote(out_name)}" if out_name is not None else text)
    tail: list[str] = []
    for word in select.clause_order:
        if word in ("ORDER", "LIMIT", "OFFSET"):
            continue
        clause_tokens, _ = _replace_calls(
            list(select.clauses[word]),
            GAPFILL,
            lambda c: (
                f"date_bin_wallclock({', '.join(_text(a) for a in c.args)})"
                if c.name == "date_bin_wallclock_gapfill"
                else f"date_bin({', '.join(_text(a) for a in c.args)})"
            ),
        )
        keyword = {"GROUP": "GROUP BY", "ORDER": "ORDER BY"}.get(word, word)
        tail.append(f"{keyword} {_text(rewriter.rewrite(clause_tokens))}")
    aggregate_sql = f"{_text(select.head)} {', '.join(items_sql)} {' '.join(tail)}"
    try:
        aggregate = ctx.sql(aggregate_sql, options=options, param_values=params or None)
        result = aggregate.to_arrow_table()
    except QueryPlanError:
        raise
    # -- output names: DataFusion's own, from the query as written (parsed, not text) ---------
    out_names = _iox_names(ctx, tokens, options, params, _NAMED | GAPFILL | FILLERS)
    if (
        out_names is not None
        and len(out_names) == result.num_columns
        and len(set(out_names)) == len(out_names)
    ):
        result = result.rename_columns(out_names)
    else:
        out_names = _fallback_names(result, post_names)
        result = result.rename_columns(out_names)
    keys = _series_keys(select, group_tokens, names, time_index, fill)
    stride = _eval_stride(ctx, _text(gap_call.args[0]), options, params)
    origin = (
        _eval_instant(ctx, _text(gap_call.args[2]), options, params)
        if len(gap_call.args) == 3
        else 0
    )
    lo = _bound_value(ctx, lower, options, params, is_lower=True)
    hi = _bound_value(ctx, upper, options, params, is_lower=False)
    filled = _fill(result, time_index, keys, fill, stride, origin, lo, hi, out_names, zone)
    if not any(word in select.clauses for word in ("ORDER", "LIMIT", "OFFSET")):
        # keep IOx's output order (series, then time) exactly: one partition, no re-planning
        return ctx.from_arrow(filled)
    name = "__iox_gapfill_result"
    ctx.register_record_batches(
        name, [filled.to_batches() or [pa.RecordBatch.from_pylist([], schema=filled.schema)]]
    )
    final = f"SELECT * FROM {name}"
    for word in ("ORDER", "LIMIT", "OFFSET"):
        if word in select.clauses:
            keyword = "ORDER BY" if word == "ORDER" else word
            final += f" {keyword} {_text(select.clauses[word])}"
    return ctx.sql(final, options=options, param_values=params or None)


def _fallback_names(result: pa.Table, post_names: dict[int, str]) -> list[str]:
    """Names when DataFusion cannot plan the naming probe: the aggregate's, re-wrapped."""
    out_names = list(result.column_names)
    for index, fn in post_names.items():
        current = out_names[index]
        if fn == "date_bin_gapfill":
            if current.startswith("date_bin("):
                out_names[index] = "date_bin_gapfill" + current[len("date_bin") :]
        else:
            out_names[index] = f"{fn}({current})"
    return out_names if len(set(out_names)) == len(out_names) else list(result.column_names)


def _bound_value(
    ctx: SessionContext,
    bounds: list[tuple[str, bool]],
    options: SQLOptions,
    params: dict[str, pa.Scalar] | None,
    is_lower: bool,
) -> int:
    """The first (or last) instant inside the range, in ns: the tightest of the bounds."""
    values = []
    for text, inclusive in bounds:
        value = _eval_instant(ctx, text, options, params)
        if not inclusive:
            value = value + 1 if is_lower else value - 1
        values.append(value)
    return max(values) if is_lower else min(values)


def _series_keys(
    select: _Select,
    group_tokens: Sequence[Tok],
    names: Sequence[str | None],
    time_index: int,
    fill: dict[int, str],
) -> list[int]:
    """Select indices that are GROUP BY keys (besides the time bin)."""
    group_items = [_strip(g) for g in _split_top(group_tokens)]
    exprs = [_compact(_item_alias(item)[0]).lower() for item in select.items]
    keys: list[int] = []
    for g in group_items:
        text = _compact(g)
        index = None
        if text.isdigit():
            index = int(text) - 1
        else:
            lowered = text.lower()
            ident = _ident(g[0]) if len(g) == 1 and g[0].kind in ("word", "qid") else None
            for i, name in enumerate(names):
                if ident is not None and name is not None and name == ident:
                    index = i
                    break
            if index is None:
                for i, expr in enumerate(exprs):
                    if expr == lowered or (
                        ident is not None and expr.split(".")[-1].strip('"') == ident
                    ):
                        index = i
                        break
        if index is not None and index != time_index and index not in fill and index not in keys:
            keys.append(index)
    return keys


def _group_starts(keys: Sequence[pa.ChunkedArray], n: int) -> np.ndarray:
    """Boolean array: row i starts a new series (rows sorted by the keys)."""
    starts = np.zeros(n, dtype=bool)
    if n == 0:
        return starts
    starts[0] = True
    for key in keys:
        arr = key.combine_chunks() if isinstance(key, pa.ChunkedArray) else key
        a, b = arr.slice(1), arr.slice(0, n - 1)
        same = pc.fill_null(pc.equal(a, b), False)
        both_null = pc.and_(pc.is_null(a), pc.is_null(b))
        differs = pc.invert(pc.or_(same, both_null)).to_numpy(zero_copy_only=False)
        starts[1:] |= differs
    return starts


def _fill(
    result: pa.Table,
    time_index: int,
    keys: list[int],
    fill: dict[int, str],
    stride: int,
    origin: int,
    lo: int,
    hi: int,
    out_names: list[str],
    zone: str | None,
) -> pa.Table:
    """Insert the missing bins of every series and apply locf / interpolate (vectorised)."""
    time_col = result.column(time_index)
    time_type = time_col.type
    if zone is not None:
        # wall-clock bins: work on local wall-clock instants, convert back at the end
        local_time = pc.local_timestamp(time_col)
        lo_local = int(
            pc.local_timestamp(pa.scalar(lo, pa.timestamp("ns", zone))).cast(pa.int64()).as_py()
        )
        hi_local = int(
            pc.local_timestamp(pa.scalar(hi, pa.timestamp("ns", zone))).cast(pa.int64()).as_py()
        )
        times = local_time.cast(pa.int64()).to_numpy()
    else:
        lo_local, hi_local = lo, hi
        times = (
            time_col.cast(pa.int64()).to_numpy(zero_copy_only=False)
            if len(time_col)
            else (np.zeros(0, dtype=np.int64))
        )
    first = int(_date_bin(np.array([lo_local]), stride, origin)[0])
    last = int(_date_bin(np.array([hi_local]), stride, origin)[0])
    n_bins = max(0, (last - first) // stride + 1)
    if hi_local < lo_local:
        n_bins = 0
    # sort rows by series keys then time
    sortable = pa.table(
        {f"k{n}": _sortable(result.column(k)) for n, k in enumerate([*keys, time_index])}
    )
    sort_keys = [(f"k{n}", "ascending", "at_end") for n in range(len(keys) + 1)]
    order = pc.sort_indices(sortable, sort_keys=sort_keys)
    result = result.take(order)
    times = times[order.to_numpy()] if len(times) else times
    n = result.num_rows
    key_cols = [result.column(k) for k in keys]
    starts = _group_starts(key_cols, n)
    group_of_row = np.cumsum(starts) - 1
    n_groups = int(starts.sum())
    if n_bins * max(n_groups, 1) > 50_000_000:
        raise QueryPlanError(
            "Error during planning: the gap-filled result would exceed 50 million rows; narrow the"
            " time range or widen the stride"
        )
    bin_of_row = (times - first) // stride if n else np.zeros(0, dtype=np.int64)
    inside = (
        (bin_of_row >= 0) & (bin_of_row < n_bins) & ((times - first) % stride == 0)
        if n
        else (np.zeros(0, dtype=bool))
    )
    total = n_groups * n_bins
    source = np.full(total, -1, dtype=np.int64)
    positions = group_of_row[inside] * n_bins + bin_of_row[inside]
    source[positions] = np.nonzero(inside)[0]
    missing = source < 0
    take_idx = pa.array(source, mask=missing)
    group_first_row = np.nonzero(starts)[0]
    key_take = pa.array(np.repeat(group_first_row, n_bins)) if n_bins else pa.array([], pa.int64())
    bins_local = first + np.arange(n_bins, dtype=np.int64) * stride
    time_values = np.tile(bins_local, n_groups)
    if zone is not None:
        local = pa.array(time_values, pa.timestamp("ns"))
        time_arr = pc.assume_timezone(
            local, timezone=zone, ambiguous="earliest", nonexistent="earliest"
        )
    else:
        time_arr = pa.array(time_values, pa.int64()).cast(pa.timestamp("ns")).cast(time_type)
    group_start_of_slot = np.repeat(np.arange(n_groups) * n_bins, n_bins)
    group_end_of_slot = group_start_of_slot + n_bins
    columns: list[pa.Array] = []
    for index in range(len(out_names)):
        col = result.column(index)
        if index == time_index:
            columns.append(time_arr)
        elif index in keys:
            columns.append(col.take(key_take))
        else:
            values = col.take(take_idx)
            values = values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values
            strategy = fill.get(index)
            if strategy == "locf":
                values = _locf(values, group_start_of_slot)
            elif strategy == "interpolate":
                values = _interpolate(values, time_values, group_start_of_slot, group_end_of_slot)
            elif not result.schema.field(index).nullable:
                # IOx fills non-nullable aggregates (count) with the type's default value
                values = pc.if_else(pa.array(missing), _default_value(values.type), values)
            columns.append(values)
    return pa.Table.from_arrays(columns, names=out_names)


def _sortable(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary columns sort by their values (Arrow cannot sort dictionaries directly)."""
    if pa.types.is_dictionary(column.type):
        return column.cast(column.type.value_type)
    return column


def _default_value(dtype: pa.DataType) -> pa.Scalar:
    if pa.types.is_boolean(dtype):
        return pa.scalar(False, dtype)
    if pa.types.is_string(dtype) or pa.types.is_large_string(dtype):
        return pa.scalar("", dtype)
    if pa.types.is_integer(dtype) or pa.types.is_floating(dtype):
        return pa.scalar(0, dtype)
    return pa.scalar(None, dtype)


def _locf(values: pa.Array, group_start: np.ndarray) -> pa.Array:
    n = len(values)
    if n == 0:
        return values
    valid = ~np.asarray(pc.is_null(values).to_numpy(zero_copy_only=False), dtype=bool)
    idx = np.where(valid, np.arange(n), -1)
    last = np.maximum.accumulate(idx)
    ok = last >= group_start
    take = pa.array(np.where(ok, last, 0), mask=~ok)
    return values.take(take)


def _interpolate(
    values: pa.Array, times: np.ndarray, group_start: np.ndarray, group_end: np.ndarray
) -> pa.Array:
    n = len(values)
    if n == 0:
        return values
    if not (pa.types.is_floating(values.type) or pa.types.is_integer(values.type)):
        raise QueryPlanError(
            f"Error during planning: interpolate needs a numeric aggregate, got {values.type}"
        )
    valid = ~np.asarray(pc.is_null(values).to_numpy(zero_copy_only=False), dtype=bool)
    ar = np.arange(n)
    prev = np.maximum.accumulate(np.where(valid, ar, -1))
    nxt = np.minimum.accumulate(np.where(valid, ar, n)[::-1])[::-1]
    ok = (prev >= group_start) & (nxt < group_end)
    v = np.asarray(pc.fill_null(values.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False))
    p = np.where(ok, prev, 0)
    q = np.where(ok, nxt, 0)
    span = (times[q] - times[p]).astype(np.float64)
    frac = np.divide(times - times[p], span, out=np.zeros(n), where=span != 0)
    out = v[p] + (v[q] - v[p]) * frac
    result = pa.array(out, mask=~(ok | valid))
    if pa.types.is_integer(values.type):
        result = pc.cast(pc.trunc(result), values.type)
    result = pc.if_else(pa.array(valid), values, result) if values.type == result.type else result
    return result


__all__ = ["FILLERS", "GAPFILL"]
