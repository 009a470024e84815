"""Gap filling of GROUP BY time(): the window grid per series (generate_series, or the tz() walk),
LEFT JOINed with the aggregates, and fill(null|none|previous|linear|<value>) as window
functions."""

from __future__ import annotations

import contextlib

import pyarrow as pa

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql.schema import is_numeric
from influx_flight.server.influxql.sql import lit, ts
from influx_flight.server.influxql.timezones import MAX_WINDOWS, tz_fill_grid


class GapFill:
    """fill() for the aggregate planner (a mixin of ``SelectPlanner``)."""

    def _gapfill_ctes(
        self, ctes: list[str], base: str, cols: list[str], counts: set[str], aux: list[str]
    ) -> str:
        """Add the window grid, LEFT JOIN the aggregates onto it and apply fill()."""
        assert self.interval is not None
        part = self._group_cols()
        lower = self.range.lower
        upper = self.range.upper if self.range.upper is not None else self.now_ns
        if lower is None:
            lower = self._min_time(ctes, base)
            if lower is None:
                return base
        start, end = self._bin(lower), self._bin(upper)
        if end < start:
            return base
        n = (end - start) // self.interval + 1
        int_cols: set[str] = set()
        text_cols: set[str] = set()
        if self.stmt.fill in ("linear", "value"):
            sch = self._session.sql(f"WITH {', '.join(ctes)} SELECT * FROM {base}").schema()
            int_cols = {f.name for f in sch if pa.types.is_integer(f.type)}
            text_cols = {f.name for f in sch if not is_numeric(f.type)}
        if n > MAX_WINDOWS:
            raise QueryPlanError(
                f"Error during planning: GROUP BY time() would create {n} windows (limit "
                f"{MAX_WINDOWS}); narrow the time range or widen the interval"
            )
        keys = (
            f"SELECT DISTINCT {', '.join(part)} FROM {base}"
            if part
            else (f"SELECT DISTINCT 1 AS __k FROM {base}")
        )
        ctes.append(f"keys AS ({keys})")
        if self.zone is None:
            wins = (
                "SELECT arrow_cast(value, 'Timestamp(Nanosecond, None)') AS time "
                f"FROM generate_series({start}, {end}, {self.interval})"
            )
            ctes.append(f"wins AS ({wins})")
            ctes.append("grid AS (SELECT wins.time, keys.* FROM wins CROSS JOIN keys)")
        else:
            self._tz_grid_ctes(ctes, base, start, end)
        on = " AND ".join(
            ["g.time = a.time", *[f"(g.{t} IS NOT DISTINCT FROM a.{t})" for t in part]]
        )
        joined = ", ".join(
            [
                "g.time",
                *[f"g.{t}" for t in part],
                *[f"a.{c}" for c in cols],
                *[f"a.{c}" for c in aux],
            ]
        )
        ctes.append(f"joined AS (SELECT {joined} FROM grid g LEFT JOIN {base} a ON {on})")
        over_part = f"PARTITION BY {', '.join(part)} " if part else ""
        fill = self.stmt.fill
        exprs = []
        for c in cols:
            if fill in ("value", "linear") and c in text_cols:
                e = c  # numbers are not filled into string or boolean columns
            elif fill == "null":
                e = f"COALESCE({c}, 0)" if c in counts else c
            elif fill == "value":
                fv = self.stmt.fill_value
                # The fill value takes the column's type (integers truncate, as InfluxQL).
                fv_sql = str(int(fv)) if c in int_cols else lit(float(fv))  # type: ignore[arg-type]
                e = f"COALESCE({c}, {fv_sql})"
            elif fill == "previous":
                frame = f"OVER ({over_part}ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
                e = f"COALESCE({c}, last_value({c}) IGNORE NULLS {frame})"
                if c in self._presence:
                    # The previous window's value even when it is NULL (a one-value stddev).
                    boxed = f"CASE WHEN {self._presence[c]} IS NOT NULL THEN make_array({c}) END"
                    e = f"array_element(last_value({boxed}) IGNORE NULLS {frame}, 1)"
            else:  # linear
                prev_frame = f"OVER ({over_part}ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
                next_frame = f"OVER ({over_part}ORDER BY time ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
                tval = f"CASE WHEN {c} IS NOT NULL THEN CAST(time AS BIGINT) END"
                pv = f"last_value({c}) IGNORE NULLS {prev_frame}"
                nv = f"first_value({c}) IGNORE NULLS {next_frame}"
                if c in self._presence:
                    # Neighbours are the windows that had values, even if the value is NULL.
                    tval = (
                        f"CASE WHEN {self._presence[c]} IS NOT NULL THEN CAST(time AS BIGINT) END"
                    )
                    boxed = f"CASE WHEN {self._presence[c]} IS NOT NULL THEN make_array({c}) END"
                    pv = f"array_element(last_value({boxed}) IGNORE NULLS {prev_frame}, 1)"
                    nv = f"array_element(first_value({boxed}) IGNORE NULLS {next_frame}, 1)"
                pt = f"last_value({tval}) IGNORE NULLS {prev_frame}"
                nt = f"first_value({tval}) IGNORE NULLS {next_frame}"
                # InfluxQL: y = (nv - pv) / (nt - pt) * (t - pt) + pv, truncated for integers.
                # Multiply before dividing: exact whenever the interpolated value is (Go's
                # m*x+b may be fused, which makes 1.x exact there too).
                rise = f"CAST({nv} - {pv} AS DOUBLE) * CAST(CAST(time AS BIGINT) - {pt} AS DOUBLE)"
                interp = f"{rise} / CAST({nt} - {pt} AS DOUBLE) + CAST({pv} AS DOUBLE)"
                if c in int_cols:
                    interp = f"CAST(trunc({interp}) AS BIGINT)"
                e = f"COALESCE({c}, {interp})"
            if c in self._presence and fill != "null":
                e = f"CASE WHEN {self._presence[c]} IS NULL THEN {e} ELSE {c} END"
            if fill != "value":
                # InfluxQL's count() -> 0 (and previous/linear) apply only in series where the
                # column has values somewhere in the range; elsewhere it stays NULL.
                seen = f"count({self._presence.get(c, c)}) OVER ({over_part.strip()})"
                e = f"CASE WHEN {seen} > 0 THEN {e} END"
            exprs.append(f"{e} AS {c}")
        exprs += aux
        ctes.append(f"filled AS (SELECT {', '.join(['time', *part, *exprs])} FROM joined)")
        return "filled"

    def _tz_grid_ctes(self, ctes: list[str], base: str, start: int, end: int) -> None:
        """The per-series window grid of a tz() query, as InfluxQL's fill iterator walks it.

        Zone windows are not all equally long: the iterator steps by the interval (shifted at
        offset changes, ``tz_fill_grid``). A window holding data that is off that grid (at a
        change) is output too and takes the place of the next grid step.
        """
        assert self.interval is not None and self.zone is not None
        part = self._group_cols()
        grid = tz_fill_grid(start, end, self.interval, self.zone)
        prev = [grid[0] - self.interval, *grid[:-1]]
        table = "__influxql_tz_grid"
        with contextlib.suppress(Exception):
            self._session.deregister_table(table)
        nanos = pa.timestamp("ns")
        batch = pa.record_batch(
            {
                "time": pa.array(grid, pa.int64()).cast(nanos),
                "prev": pa.array(prev, pa.int64()).cast(nanos),
            }
        )
        self._session.register_record_batches(table, [[batch]])
        keycols = ", ".join(f"a.{t}" for t in part)
        ctes.append(
            f"offgrid AS (SELECT {', '.join(['a.time', *([keycols] if part else [])])} "
            f"FROM {base} a LEFT JOIN {table} s ON a.time = s.time "
            f"WHERE s.time IS NULL AND a.time >= {ts(start)} AND a.time <= {ts(end)})"
        )
        match = " AND ".join(
            [
                "o.time > s.prev",
                "o.time < s.time",
                *[f"(o.{t} IS NOT DISTINCT FROM k.{t})" for t in part],
            ]
        )
        kcols = [f"k.{t}" for t in part] if part else ["k.__k"]
        ctes.append(
            f"stepped AS (SELECT {', '.join(['s.time', *kcols])} FROM {table} s CROSS JOIN keys k "
            f"LEFT JOIN offgrid o ON {match} WHERE o.time IS NULL)"
        )
        ocols = [f"o.{t}" for t in part] if part else ["1 AS __k"]
        gcols = ", ".join(["time", *(part or ["__k"])])
        ctes.append(
            f"grid AS (SELECT {gcols} FROM stepped "
            f"UNION SELECT {', '.join(['o.time', *ocols])} FROM offgrid o)"
        )

    def _min_time(self, ctes: list[str], base: str) -> int | None:
        """Earliest window with data: where gap filling starts without a lower bound."""
        sql = f"WITH {', '.join(ctes)} SELECT CAST(min(time) AS BIGINT) AS t FROM {base}"
        df = self._session.sql(sql)
        self.engine.check_file_limit(self.database, df)  # an unbounded scan: Core's file limit
        tbl = df.to_arrow_table()
        v = tbl.column(0)[0].as_py() if tbl.num_rows else None
        return int(v) if v is not None else None


__all__ = ["GapFill"]
