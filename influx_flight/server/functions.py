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
"""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datafusion import Accumulator, SessionContext, SQLOptions, udaf, udf

from influx_flight.server.errors import QueryPlanError

# -- tokenizer -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<str>(?:[EeXxBb])?'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<param>\$[A-Za-z_0-9]+)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|<>|!=|::|\|\||=>|->>|->|[(),\[\].;=<>+\-*/%!~^&|:?@#{}])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper()

    @property
    def blank(self) -> bool:
        return self.kind in ("ws", "comment")


def tokenize(sql: str) -> list[Tok]:
    """SQL text as tokens; joining every token's text gives the input back."""
    return [Tok(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(sql)]


def _text(tokens: Sequence[Tok]) -> str:
    return "".join(t.text for t in tokens)


def _strip(tokens: Sequence[Tok]) -> list[Tok]:
    items = list(tokens)
    while items and items[0].blank:
        items.pop(0)
    while items and items[-1].blank:
        items.pop()
    return items


def _compact(tokens: Sequence[Tok]) -> str:
    """Argument text without comments and with whitespace collapsed (for column names)."""
    out: list[str] = []
    for t in tokens:
        if t.kind == "comment":
            continue
        if t.kind == "ws":
            out.append(" ")
        else:
            out.append(t.text)
    text = "".join(out).strip()
    return re.sub(r"\s*([(),\[\]])\s*", r"\1", text)


def _match_paren(tokens: Sequence[Tok], open_index: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``open_index``."""
    depth = 0
    for i in range(open_index, len(tokens)):
        text = tokens[i].text
        if tokens[i].kind != "op":
            continue
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
            if depth == 0:
                return i
    raise QueryPlanError("SQL error: unbalanced parentheses in the query")


def _split_top(tokens: Sequence[Tok], separator: str = ",") -> list[list[Tok]]:
    """Split at ``separator`` tokens that are not inside parentheses or brackets."""
    parts: list[list[Tok]] = [[]]
    depth = 0
    for t in tokens:
        if t.kind == "op" and t.text in ("(", "["):
            depth += 1
        elif t.kind == "op" and t.text in (")", "]"):
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text == separator:
            parts.append([])
            continue
        parts[-1].append(t)
    return parts


def _next_solid(tokens: Sequence[Tok], index: int) -> int:
    while index < len(tokens) and tokens[index].blank:
        index += 1
    return index


@dataclass
class _Call:
    start: int  # index of the function name token
    end: int  # index of the closing parenthesis
    name: str
    args: list[list[Tok]]


def _find_calls(tokens: Sequence[Tok], names: set[str]) -> Iterator[_Call]:
    """Outermost calls of any function in ``names`` (case-insensitive), left to right."""
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "word" and t.text.lower() in names:
            j = _next_solid(tokens, i + 1)
            prev = i - 1
            while prev >= 0 and tokens[prev].blank:
                prev -= 1
            qualified = prev >= 0 and tokens[prev].kind == "op" and tokens[prev].text == "."
            if j < len(tokens) and tokens[j].text == "(" and not qualified:
                end = _match_paren(tokens, j)
                inner = list(tokens[j + 1 : end])
                args = [_strip(a) for a in _split_top(inner)] if _strip(inner) else []
                yield _Call(i, end, t.text.lower(), args)
                i = end + 1
                continue
        i += 1


def _replace_calls(tokens: list[Tok], names: set[str], build: Any) -> tuple[list[Tok], list[_Call]]:
    """Replace each call of ``names`` by ``build(call) -> str`` (args rewritten first)."""
    out: list[Tok] = []
    calls: list[_Call] = []
    last = 0
    for call in _find_calls(tokens, names):
        out.extend(tokens[last : call.start])
        call.args = [_replace_calls(list(a), names, build)[0] for a in call.args]
        out.extend(tokenize(build(call)))
        calls.append(call)
        last = call.end + 1
    out.extend(tokens[last:])
    return out, calls


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


def _zone_literal(
    tokens: Sequence[Tok], what: str, params: dict[str, pa.Scalar] | None = None
) -> str:
    """The IANA zone named by a string literal or a ``$param`` bound to a string."""
    toks = _strip(tokens)
    zone: str | None = None
    if len(toks) == 1 and toks[0].kind == "str" and toks[0].text.startswith("'"):
        zone = toks[0].text[1:-1].replace("''", "'")
    elif len(toks) == 1 and toks[0].kind == "param" and params is not None:
        value = params.get(toks[0].text[1:])
        if value is not None and pa.types.is_string(value.type) and value.is_valid:
            zone = value.as_py()
    if zone is None:
        raise QueryPlanError(
            f"Error during planning: {what} must be a string literal (or a string parameter)"
            " naming an IANA time zone"
        )
    if zone.upper() == "UTC":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise QueryPlanError(
            f"Error during planning: invalid timezone '{zone}': use an IANA name such as"
            " 'Europe/Oslo' or 'America/New_York'"
        ) from None
    return zone


def _tz_type(zone: str) -> str:
    return f"'Timestamp(Nanosecond, Some(\"{zone}\"))'"


def _tz_sql(call: _Call, params: dict[str, pa.Scalar] | None = None) -> str:
    if len(call.args) not in (1, 2):
        raise QueryPlanError(
            f"Error during planning: tz expects 1 or 2 arguments, got {len(call.args)}"
        )
    zone = (
        _zone_literal(call.args[1], "the zone argument of tz()", params)
        if len(call.args) == 2
        else "UTC"
    )
    if '"' in zone or "'" in zone:
        raise QueryPlanError(f"Error during planning: invalid timezone {zone!r}")
    source = _text(call.args[0])
    return f"arrow_cast(arrow_cast(({source}), {_tz_type('UTC')}), {_tz_type(zone)})"


def _tz_zone_of(tokens: Sequence[Tok]) -> str | None:
    """The zone of a ``tz(x[, 'zone'])`` argument (after rewriting: the arrow_cast text)."""
    text = _text(_strip(tokens))
    match = re.fullmatch(
        r"arrow_cast\(arrow_cast\(.*\), 'Timestamp\(Nanosecond, Some\(\"UTC\"\)\)'\), "
        r"'Timestamp\(Nanosecond, Some\(\"(?P<zone>[^\"]+)\"\)\)'\)",
        text,
        re.DOTALL,
    )
    return match.group("zone") if match else None


def _localize_udf_name(zone: str) -> str:
    return "__iox_localize_" + hashlib.sha1(zone.encode()).hexdigest()[:12]


def _register_localize(ctx: SessionContext, zone: str) -> str:
    """A UDF turning local wall-clock timestamps of ``zone`` into ``Timestamp(ns, zone)``."""
    name = _localize_udf_name(zone)

    def localize(local: pa.Array) -> pa.Array:
        return pc.assume_timezone(
            local, timezone=zone, ambiguous="earliest", nonexistent="earliest"
        )

    ctx.register_udf(udf(localize, [pa.timestamp("ns")], pa.timestamp("ns", zone), "stable", name))
    return name


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


# -- query structure -----------------------------------------------------------------------

_CLAUSES = ("FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "QUALIFY", "ORDER", "LIMIT", "OFFSET")


@dataclass
class _Select:
    """The outermost SELECT of a query, cut into clauses (token lists)."""

    head: list[Tok]  # everything before the select list, including SELECT [DISTINCT]
    items: list[list[Tok]]
    clauses: dict[str, list[Tok]]  # keyword -> tokens after it, up to the next clause
    clause_order: list[str]


def _outer_select(tokens: list[Tok]) -> _Select | None:
    depth = 0
    marks: list[tuple[int, str]] = []
    select_at = None
    for i, t in enumerate(tokens):
        if t.kind == "op" and t.text in ("(", "["):
            depth += 1
        elif t.kind == "op" and t.text in (")", "]"):
            depth -= 1
        elif depth == 0 and t.kind == "word":
            word = t.upper
            if word == "SELECT" and select_at is None:
                select_at = i
            elif select_at is not None and word in _CLAUSES:
                if word in ("GROUP", "ORDER"):
                    j = _next_solid(tokens, i + 1)
                    if j >= len(tokens) or tokens[j].upper != "BY":
                        continue
                marks.append((i, word))
            elif select_at is not None and word in ("UNION", "EXCEPT", "INTERSECT"):
                return None  # set operations: no gap filling at the top level
    if select_at is None:
        return None
    head_end = select_at + 1
    j = _next_solid(tokens, head_end)
    if j < len(tokens) and tokens[j].upper in ("DISTINCT", "ALL"):
        head_end = j + 1
    list_end = marks[0][0] if marks else len(tokens)
    items = _split_top(tokens[head_end:list_end])
    clauses: dict[str, list[Tok]] = {}
    order: list[str] = []
    for n, (i, word) in enumerate(marks):
        end = marks[n + 1][0] if n + 1 < len(marks) else len(tokens)
        start = i + 1
        if word in ("GROUP", "ORDER"):
            start = _next_solid(tokens, i + 1) + 1
        clauses[word] = list(tokens[start:end])
        order.append(word)
    return _Select(list(tokens[:head_end]), items, clauses, order)


def _item_alias(item: Sequence[Tok]) -> tuple[list[Tok], str | None]:
    """(expression tokens, alias or None) of a select-list item."""
    toks = _strip(item)
    if len(toks) >= 3 and toks[-1].kind in ("word", "qid"):
        k = len(toks) - 2
        while k >= 0 and toks[k].blank:
            k -= 1
        if k >= 0 and toks[k].upper == "AS":
            return _strip(toks[:k]), _ident(toks[-1])
        implicit = k >= 0 and (
            toks[k].text in (")", "]") or toks[k].kind in ("word", "qid", "num", "str")
        )
        if implicit and toks[-1].upper not in ("END", "NULL", "TRUE", "FALSE"):
            return _strip(toks[: k + 1]), _ident(toks[-1])
    return toks, None


def _ident(tok: Tok) -> str:
    if tok.kind == "qid":
        return tok.text[1:-1].replace('""', '"')
    return tok.text.lower()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


# -- gap filling ----------------------------------------------------------------------------

GAPFILL = {"date_bin_gapfill", "date_bin_wallclock_gapfill"}
FILLERS = {"locf", "interpolate"}


def _contains_call(tokens: Sequence[Tok], names: set[str]) -> bool:
    return any(True for _ in _find_calls(tokens, names))


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
) -> list[str] | None:
    """The output column names IOx gives this query, from DataFusion's own planner.

    IOx's selectors, ``tz`` and ``date_bin_wallclock`` are real functions there, so DataFusion
    names every output column (aliases in any form, nesting, CTEs, subqueries) from the call
    as written: ``selector_max(home.temp,home.time)[value]``. The stand-in rewrites those
    calls, so it plans the query once more with each call renamed to a unique stand-in
    function of the same arity (``__iox_name_probe_N``) and reads the names off that plan's
    schema, putting the real function names back. Nothing executes. Returns None when there
    is nothing to name or the probe cannot be planned (the caller's names then stand).
    """
    calls: list[tuple[str, int]] = []  # per probe function: (IOx name, arity)

    def build(call: _Call) -> str:
        n = len(calls)
        calls.append((call.name, len(call.args)))
        return f"{_PROBE_PREFIX}{n}(" + ", ".join(_text(a) for a in call.args) + ")"

    probe_tokens, _ = _replace_calls(list(tokens), _NAMED, build)
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
    if name == "tz":
        inputs = [pa.timestamp("ns"), pa.utf8()][:arity] or [pa.timestamp("ns")]
        returns = pa.timestamp("ns")  # names do not depend on the zone
    else:  # date_bin_wallclock(stride, time[, origin])
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
    # -- which output columns are series keys ------------------------------------------------
    out_names = list(result.column_names)
    for index, fn in post_names.items():
        current = out_names[index]
        if fn == "date_bin_gapfill":
            if current.startswith("date_bin("):
                out_names[index] = "date_bin_gapfill" + current[len("date_bin") :]
        else:
            out_names[index] = f"{fn}({current})"
    if len(set(out_names)) == len(out_names):
        result = result.rename_columns(out_names)
    else:
        out_names = list(result.column_names)
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


__all__ = ["plan", "register", "rewrite_sql", "tokenize"]
