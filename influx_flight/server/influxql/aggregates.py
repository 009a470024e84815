"""Aggregates and selectors per window and series: one SQL aggregate each, with CTEs for the
ones SQL lacks (mode, percentile, integral), distinct(), and top()/bottom()."""

from __future__ import annotations

import pyarrow as pa

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql import functions as fn
from influx_flight.server.influxql.schema import MEASUREMENT, Schema, field_type_name, is_numeric
from influx_flight.server.influxql.sql import qi, sql_type, ts
from influx_flight.server.influxql.timerange import SECOND, strip_parens
from influx_flight.server.influxql.transforms import contains_transform


class Aggregates:
    """Aggregate planning (a mixin of ``SelectPlanner``)."""

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
            a0 = strip_parens(c.args[0])
            if c.name == "count" and isinstance(a0, ast.Call):
                x = self._value_sql(a0.args[0], schema)
                aggs.append(f"{fn.aggregate_sql('count', x, distinct=True)} AS {col}")
                agg_cols.append(col)
                counts.add(col)
                continue
            if c.name == "distinct" and any(
                d.name == "count" and d.args and strip_parens(d.args[0]) is c for d in agg_calls
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
                unit = strip_parens(c.args[1]).ns if len(c.args) == 2 else SECOND  # type: ignore[attr-defined]
                integral_ctes.append((col, x, unit))
                continue
            if c.name == "percentile":
                pct = float(strip_parens(c.args[1]).value)  # type: ignore[attr-defined]
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
                if isinstance(strip_parens(f.expr), ast.VarRef)
            }
            sel = None
        if sel is not None:
            x = self._value_sql(sel.args[0], schema)
            if self.interval is None:
                time_expr = fn.selected(sel.name, x, "time")
            for j, f in enumerate(self.fields):
                e = strip_parens(f.expr)
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
            final_cols[hash(("aux", strip_parens(self.fields[j].expr).name))] = col
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
            only_transforms = all(contains_transform(strip_parens(f.expr)) for f in self.fields)
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
            e = strip_parens(self.fields[j].expr)
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
            if not is_numeric(t):
                raise QueryPlanError(
                    f"Error during planning: unsupported {c.name}() argument type: field "
                    f"{a0.name!r} is {field_type_name(t)}; use a numeric field"
                )
        elif isinstance(a0, ast.VarRef) and a0.name in schema.tags:
            raise QueryPlanError(
                f"Error during planning: {c.name}() needs a field, {a0.name!r} is a tag"
            )

    def _distinct_sql(self, m: str, schema: Schema, src: str) -> str:
        """distinct(): one row per value and window, in order of first appearance."""
        call = strip_parens(self.fields[0].expr)
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

    def _top_sql(self, m: str, schema: Schema, src: str) -> str:
        """top()/bottom(): the N largest/smallest values per series (and window), ranked with
        window functions; with tag arguments, the best row per tag combination first.

        Ties go to the earliest time (the documented rule). Rows are the selected points with
        their own time (also with ``GROUP BY time()``), in time order; fill() does not apply.
        """
        call = self.top_call
        assert call is not None
        x = self._value_sql(call.args[0], schema)
        self._check_numeric(call, strip_parens(call.args[0]), schema)
        n = strip_parens(call.args[-1]).value  # type: ignore[attr-defined]
        order = "DESC" if call.name == "top" else "ASC"
        part = self._group_cols()
        window = [f"{self._window_expr()} AS __w"] if self.interval is not None else []
        by = ["__w"] if window else []
        by += part
        tag_keys = [
            self._ref(strip_parens(a).name, schema, "tag")[0]  # type: ignore[attr-defined]
            for a in call.args[1:-1]
        ]
        cols = ["time", *window, *part, f"{x} AS __v"]
        cols += [f"{k} AS __g{i}" for i, k in enumerate(tag_keys)]
        proj = []
        for j, (f, name) in enumerate(zip(self.fields, self.names, strict=True)):
            e = strip_parens(f.expr)
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


def _missing_agg(name: str, t: pa.DataType | None) -> str:
    """The NULL an aggregate of a field absent from this measurement yields, typed."""
    if name == "count":
        return "CAST(NULL AS BIGINT)"
    if name in ("mean", "median", "stddev", "integral") or t is None:
        return "CAST(NULL AS DOUBLE)"
    return f"CAST(NULL AS {sql_type(t)})"


__all__ = ["Aggregates"]
