"""Windows of GROUP BY time(): date_bin in UTC, InfluxQL's tz() windows (1.x ``Window``) and the
fill iterator's walk across daylight-saving changes, vectorised with pyarrow.compute."""

from __future__ import annotations

import contextlib
from datetime import datetime
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.influxql.sql import ts
from influx_flight.server.influxql.timerange import SECOND

MAX_WINDOWS = 1_000_000


class Windows:
    """The window start of a row (SQL) or of an instant (Python) for this statement."""

    def _window_expr(self, column: str = "time") -> str:
        """The window start of ``column``; without GROUP BY time() the query's lower bound (or
        epoch 0, also over subqueries only, whose time bounds belong to the inner query: the
        documented InfluxDB 3 result, where 1.x reports the outer lower bound)."""
        if self.interval is None:
            lower = self.range.lower
            if lower is None or getattr(self, "_only_subqueries", False):
                lower = 0
            return ts(lower)
        if self.zone is not None:
            return f"{self._zone_udf()}({column})"
        return f"date_bin(INTERVAL '{self.interval} nanoseconds', {column}, {ts(self.offset)})"

    def _zone_udf(self) -> str:
        """Register (once per session) the vectorised tz() window function; return its name."""
        name = "__influxql_tz_window"
        if getattr(self._session, "_influxql_tz_udf", None) != name:
            from datafusion import udf

            interval, offset, zone = self.interval, self.offset, self.zone
            assert interval is not None and zone is not None

            def windows(times: pa.Array) -> pa.Array:
                starts = tz_window_starts(times.cast(pa.int64()), interval, offset, zone)
                return starts.cast(pa.timestamp("ns"))

            self._session.register_udf(
                udf(windows, [pa.timestamp("ns")], pa.timestamp("ns"), "immutable", name)
            )
            with contextlib.suppress(AttributeError):
                self._session._influxql_tz_udf = name
        return name

    def _bin(self, t: int) -> int:
        assert self.interval is not None
        if self.zone is not None:
            one = pa.array([t], pa.int64())
            return int(tz_window_starts(one, self.interval, self.offset, self.zone)[0].as_py())
        return t - (t - self.offset) % self.interval


def _zone_offsets(t: pa.Array, zone: ZoneInfo) -> pa.Array:
    """UTC offset (ns) of ``zone`` at each instant ``t`` (int64 epoch ns), vectorised."""
    local = pc.local_timestamp(t.cast(pa.timestamp("ns", tz=zone.key))).cast(pa.int64())
    return pc.subtract(local, t)


def tz_window_starts(t: pa.Array, interval: int, offset: int, zone: ZoneInfo) -> pa.Array:
    """InfluxQL's window start of each ``t`` (int64 ns) with a tz() clause (1.x ``Window``).

    Truncate in local time, then correct by the zone change between ``t`` and the window start
    when that change is smaller than the interval (so days start at local midnight across DST).
    """
    t = pc.subtract(t.cast(pa.int64()), offset)
    zone_off = _zone_offsets(t, zone)
    local = pc.add(t, zone_off)
    rem = pc.subtract(local, pc.multiply(pc.divide(local, interval), interval))  # truncating
    rem = pc.if_else(pc.less(rem, 0), pc.add(rem, interval), rem)
    start = pc.subtract(t, rem)
    diff = pc.subtract(zone_off, _zone_offsets(start, zone))
    small = pc.and_(pc.not_equal(diff, 0), pc.less(pc.abs(diff), interval))
    start = pc.add(start, pc.if_else(small, diff, 0))
    return pc.add(start, offset)


def tz_fill_grid(start: int, end: int, interval: int, zone: ZoneInfo) -> list[int]:
    """The window starts InfluxQL's fill iterator visits from ``start`` to ``end`` in ``zone``.

    It steps by ``interval`` and, when the zone's offset changed in between by less than the
    interval, shifts by that change. One step per window (not per row); bounded by MAX_WINDOWS.
    """

    def offset_at(t: int) -> int:
        off = datetime.fromtimestamp(t // SECOND, zone).utcoffset()
        return int(off.total_seconds()) * SECOND if off else 0

    if (end - start) // interval > MAX_WINDOWS:
        raise QueryPlanError(
            f"Error during planning: GROUP BY time() would create more than {MAX_WINDOWS} "
            "windows; narrow the time range or widen the interval"
        )
    out: list[int] = []
    t, current = start, offset_at(start)
    while t <= end:
        out.append(t)
        t += interval
        new = offset_at(t - 1)
        if new != current:
            diff = current - new
            if abs(diff) < interval:
                t += diff
            current = new
    return out


__all__ = ["MAX_WINDOWS", "Windows", "tz_fill_grid", "tz_window_starts"]
