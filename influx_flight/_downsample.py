"""Downsampling: a declarative spec rendered to SQL (``date_bin``) or InfluxQL
(``GROUP BY time()``), run window by window and written back.

Why: the canonical InfluxDB 3 downsampling job (aggregate per time bucket and tag set, write the
result to another table or database) has sharp edges that this module closes once:

* **half-open, aligned ranges.** Queries are bounded by ``time >= $start AND time < $end``. A
  range whose bounds are not multiples of the window (plus offset) would produce partial first
  and last buckets that, by upsert, overwrite complete ones; such ranges are refused
  (``align="strict"``) or widened to the enclosing aligned range (``align="widen"``).
* **idempotence.** Points are written with the bucket start as timestamp, the group-by tags as
  tags and ``<field>_<agg>`` fields, so a re-run writes identical points, which InfluxDB 3
  overwrites (no deletes are needed, and none exist in Core).
* **long ranges** are split into chunks of whole windows (``split_range``), one query each, to
  stay under the server's file and memory limits.
* InfluxQL results carry ``iox::measurement``; it is dropped before writing.

Examples:
    spec = DownsampleSpec(source="home", window="1h", aggregates={"temp": ["mean", "max"]},
                          group_by=["room"], target_measurement="home_1h")
    spec.to_sql()        # SELECT date_bin(INTERVAL '1 hour', time, ...) AS time, ...
    client.downsample(spec, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", chunk="6h")
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from influx_flight._exceptions import ConfigurationError
from influx_flight._options import USE_CLIENT_DEFAULT, UseClientDefault
from influx_flight.time import (
    align_range,
    format_time,
    influxql_duration,
    parse_duration,
    parse_time,
    quote_ident,
    split_range,
    sql_interval,
    to_datetime,
)

if TYPE_CHECKING:
    from influx_flight._client import InfluxDB3Client
    from influx_flight._options import WriteOptions

__all__ = [
    "AGGREGATES",
    "MEASUREMENT_COLUMN",
    "DownsampleResult",
    "DownsampleSpec",
    "drop_measurement_column",
    "run_downsample",
]

#: Aggregates: name -> (SQL template, InfluxQL function, is a selector with a time).
AGGREGATES: dict[str, tuple[str, str, bool]] = {
    "mean": ("avg({f})", "mean", False),
    "sum": ("sum({f})", "sum", False),
    "count": ("count({f})", "count", False),
    "median": ("median({f})", "median", False),
    "stddev": ("stddev({f})", "stddev", False),
    "spread": ("max({f}) - min({f})", "spread", False),
    "min": ("selector_min({f}, time)", "min", True),
    "max": ("selector_max({f}, time)", "max", True),
    "first": ("selector_first({f}, time)", "first", True),
    "last": ("selector_last({f}, time)", "last", True),
}
_AGG_ALIASES = {"avg": "mean", "average": "mean", "first_value": "first", "last_value": "last"}

FillValue = None | Literal["null", "previous", "linear"] | int | float


# --- the spec ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownsampleSpec:
    """What to downsample and where to write it.

    Args:
        source: Source table (measurement).
        window: Bucket width: ``"1h"``, ``"15m"``, a timedelta.
        aggregates: Per field, the aggregates to compute: ``{"temp": ["mean", "max"]}``. Known:
            mean, sum, count, median, stddev, spread, min, max, first, last. Output columns are
            named ``<field>_<agg>``.
        target_measurement: Table to write the buckets to.
        offset: Shifts bucket starts from the epoch (``"15m"``: buckets at :15).
        group_by: Tags to group by; they are written back as tags.
        filter: Extra predicate ANDed to the time range (SQL or InfluxQL syntax, per language).
        fill: None (only buckets with data), "null", "previous", "linear" or a number.
        target_database: Database to write to (default: the client's database).
        language: "sql" or "influxql".
        time_zone: IANA zone for wall-clock buckets: InfluxQL ``tz()``, SQL
            ``date_bin_wallclock(..., tz(time, zone), ...)``.
        with_time: Also write the selected row's time (ns, integer field ``<field>_<agg>_time``)
            for min/max/first/last (SQL only).
        align: "strict" refuses unaligned ranges; "widen" extends them to whole windows.
    """

    source: str
    window: str | timedelta
    aggregates: Mapping[str, Sequence[str]]
    target_measurement: str
    offset: str | timedelta | None = None
    group_by: Sequence[str] = ()
    filter: str | None = None
    fill: FillValue = None
    target_database: str | None = None
    language: Literal["sql", "influxql"] = "sql"
    time_zone: str | None = None
    with_time: bool = False
    align: Literal["strict", "widen"] = "strict"
    _window_ns: int = field(init=False, repr=False, compare=False)
    _offset_ns: int = field(init=False, repr=False, compare=False)
    _aggs: tuple[tuple[str, str], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        if not isinstance(self.source, str) or not self.source.strip():
            raise ConfigurationError("source: name the table to downsample", field="source")
        if not isinstance(self.target_measurement, str) or not self.target_measurement.strip():
            raise ConfigurationError(
                "target_measurement: name the table to write the buckets to",
                field="target_measurement",
            )
        w = parse_duration(self.window, "window")
        if w <= 0:
            raise ConfigurationError("window: must be a positive duration", field="window")
        set_(self, "_window_ns", w)
        set_(
            self,
            "_offset_ns",
            parse_duration(self.offset, "offset") % w if self.offset is not None else 0,
        )
        if self.language not in ("sql", "influxql"):
            raise ConfigurationError(
                f"language: expected 'sql' or 'influxql', got {self.language!r}", field="language"
            )
        if self.align not in ("strict", "widen"):
            raise ConfigurationError(
                f"align: expected 'strict' or 'widen', got {self.align!r}", field="align"
            )
        if isinstance(self.group_by, str):
            set_(self, "group_by", (self.group_by,))
        set_(self, "group_by", tuple(dict.fromkeys(self.group_by)))
        if not isinstance(self.aggregates, Mapping) or not self.aggregates:
            raise ConfigurationError(
                "aggregates: give at least one field and its aggregates, e.g. "
                "{'temp': ['mean', 'max']}",
                field="aggregates",
            )
        aggs: list[tuple[str, str]] = []
        for fname, names in self.aggregates.items():
            if isinstance(names, str):
                names = [names]
            if not names:
                raise ConfigurationError(
                    f"aggregates: no aggregate given for field {fname!r}", field="aggregates"
                )
            for raw in names:
                agg = _AGG_ALIASES.get(str(raw).lower(), str(raw).lower())
                if agg not in AGGREGATES:
                    raise ConfigurationError(
                        f"aggregates: unknown aggregate {raw!r} for field {fname!r}; known: "
                        f"{', '.join(AGGREGATES)}",
                        field="aggregates",
                    )
                if (fname, agg) not in aggs:
                    aggs.append((fname, agg))
        set_(self, "_aggs", tuple(aggs))
        outputs = self.output_fields
        reserved = {"time", *self.group_by}
        clash = sorted(set(outputs) & reserved)
        if clash or len(set(outputs)) != len(outputs):
            raise ConfigurationError(
                f"aggregates: output column names clash: {clash or outputs}", field="aggregates"
            )
        if self.fill is not None and not (
            self.fill in ("null", "previous", "linear")
            or (isinstance(self.fill, int | float) and not isinstance(self.fill, bool))
        ):
            raise ConfigurationError(
                f"fill: expected None, 'null', 'previous', 'linear' or a number, got {self.fill!r}",
                field="fill",
            )
        if self.time_zone is not None:
            try:
                from zoneinfo import ZoneInfo

                ZoneInfo(self.time_zone)
            except Exception:
                raise ConfigurationError(
                    f"time_zone: unknown IANA zone {self.time_zone!r}", field="time_zone"
                ) from None
        if self.with_time and self.language != "sql":
            raise ConfigurationError(
                "with_time: the selected rows' times are only available with language='sql' "
                "(InfluxQL returns one time per bucket)",
                field="with_time",
            )

    # -- derived ---------------------------------------------------------------------------------------

    @property
    def window_ns(self) -> int:
        return self._window_ns

    @property
    def offset_ns(self) -> int:
        return self._offset_ns

    @property
    def output_fields(self) -> list[str]:
        """The field columns written back, in query order."""
        out = []
        for f, agg in self._aggs:
            out.append(f"{f}_{agg}")
            if self.with_time and AGGREGATES[agg][2]:
                out.append(f"{f}_{agg}_time")
        return out

    def _origin_literal(self) -> str:
        return f"'{format_time(self._offset_ns)}'::timestamp"

    # -- builders --------------------------------------------------------------------------------------

    def to_sql(self) -> str:
        """The SQL query for one ``[$start, $end)`` range."""
        q = quote_ident
        interval = sql_interval(self._window_ns)
        gapfill = self.fill is not None
        bin_fn = "date_bin_gapfill" if gapfill else "date_bin"
        source_time = "time"
        if self.time_zone:  # buckets on the zone's wall clock (23-, 24- and 25-hour days)
            bin_fn = "date_bin_wallclock_gapfill" if gapfill else "date_bin_wallclock"
            source_time = f"tz(time, '{self.time_zone}')"
        cols = [f"{bin_fn}({interval}, {source_time}, {self._origin_literal()}) AS time"]
        cols += [q(t) for t in self.group_by]
        for fname, agg in self._aggs:
            expr = AGGREGATES[agg][0].format(f=q(fname))
            selector = AGGREGATES[agg][2]
            value = f"{expr}['value']" if selector else expr
            cols.append(f"{self._fill_sql(value)} AS {q(f'{fname}_{agg}')}")
            if self.with_time and selector:
                cols.append(f"CAST({expr}['time'] AS BIGINT) AS {q(f'{fname}_{agg}_time')}")
        where = "time >= $start AND time < $end"
        if self.filter:
            where += f" AND ({self.filter})"
        group = ", ".join(["1", *(q(t) for t in self.group_by)])
        order = ", ".join(["time", *(q(t) for t in self.group_by)])
        return (
            f"SELECT {', '.join(cols)} FROM {q(self.source)} WHERE {where} "
            f"GROUP BY {group} ORDER BY {order}"
        )

    def _fill_sql(self, value: str) -> str:
        if self.fill is None or self.fill == "null":
            return value
        if self.fill == "previous":
            return f"locf({value})"
        if self.fill == "linear":
            return f"interpolate({value})"
        return f"coalesce({value}, {self.fill!r})"

    def to_influxql(self) -> str:
        """The InfluxQL query for one ``[$start, $end)`` range."""
        q = lambda name: quote_ident(name, "influxql")  # noqa: E731
        cols = [
            f"{AGGREGATES[agg][1]}({q(fname)}) AS {q(f'{fname}_{agg}')}"
            for fname, agg in self._aggs
        ]
        where = "time >= $start AND time < $end"
        if self.filter:
            where += f" AND ({self.filter})"
        group = f"time({influxql_duration(self._window_ns)}"
        if self._offset_ns:
            group += f", {influxql_duration(self._offset_ns)}"
        group += ")"
        group_by = ", ".join([group, *(q(t) for t in self.group_by)])
        if self.fill is None:
            fill = "none"
        elif isinstance(self.fill, str):
            fill = self.fill
        else:
            fill = repr(self.fill)
        text = (
            f"SELECT {', '.join(cols)} FROM {q(self.source)} WHERE {where} "
            f"GROUP BY {group_by} fill({fill})"
        )
        if self.time_zone:
            text += f" tz('{self.time_zone}')"
        return text

    def query(self) -> str:
        """The query in the spec's language."""
        return self.to_sql() if self.language == "sql" else self.to_influxql()

    def aligned(self, start: str | datetime | int, end: str | datetime | int) -> tuple[int, int]:
        """``[start, end)`` checked or widened to whole windows (in the spec's time zone)."""
        if self.time_zone is None:
            return align_range(start, end, self._window_ns, self._offset_ns, align=self.align)
        return _align_local(
            parse_time(start, "start"), parse_time(end, "end"), self, self.time_zone
        )


def _local_ns(ns: int, zone: str) -> int:
    """The wall-clock time in ``zone`` of the UTC instant ``ns``, as naive epoch nanoseconds."""
    from zoneinfo import ZoneInfo

    dt = to_datetime(ns).astimezone(ZoneInfo(zone))
    return parse_time(dt.replace(tzinfo=None), "t") + ns % 1_000


def _utc_ns(local: int, zone: str) -> int:
    """The UTC instant of the wall-clock time ``local`` in ``zone`` (the earlier one if the
    clock time repeats; shifted forward if it is skipped)."""
    from zoneinfo import ZoneInfo

    naive = to_datetime(local).replace(tzinfo=None)
    return parse_time(naive.replace(tzinfo=ZoneInfo(zone)), "t") + local % 1_000


def _split_local(s: int, e: int, chunk: int, zone: str) -> list[tuple[int, int]]:
    """``split_range`` stepping in wall-clock time, so chunks start on local boundaries."""
    out = []
    local = _local_ns(s, zone)
    lo = s
    while lo < e:
        local += chunk
        hi = min(_utc_ns(local, zone), e)
        out.append((lo, hi))
        lo = hi
    return out


def _align_local(s: int, e: int, spec: DownsampleSpec, zone: str) -> tuple[int, int]:
    """Alignment in wall-clock time: the zone's local time must sit on a bucket boundary."""

    w, off = spec.window_ns, spec.offset_ns
    out = []
    for name, ns, up in (("start", s, False), ("end", e, True)):
        loc = _local_ns(ns, zone)
        rem = (loc - off) % w
        if rem == 0:
            out.append(ns)
            continue
        lo = loc - rem
        if spec.align == "widen":
            out.append(_utc_ns(lo + w if up else lo, zone))
            continue
        raise ConfigurationError(
            f"{name} {format_time(ns)} is not on a {influxql_duration(w)} boundary in "
            f"{zone} (nearest: {format_time(_utc_ns(lo, zone))} or {format_time(_utc_ns(lo + w, zone))}"
            "). Pass aligned bounds or align='widen'.",
            field=name,
        )
    if out[1] <= out[0]:
        raise ConfigurationError("end must be after start (half-open [start, end))", field="end")
    return out[0], out[1]


# --- running ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DownsampleResult:
    """What a downsample run did: ``windows`` are the [start, end) chunks queried, ``queries``
    and ``params`` the query text and ``$start``/``$end`` values of each."""

    rows_read: int
    points_written: int
    windows: list[tuple[datetime, datetime]]
    queries: list[str]
    start: datetime
    end: datetime
    rows_skipped: int = 0
    write_requests: int = 0
    params: list[dict[str, str]] = field(default_factory=list)
    target_database: str | None = None
    dry_run: bool = False


#: The column InfluxQL results start with: it names the source measurement and is not data.
MEASUREMENT_COLUMN = "iox::measurement"


def drop_measurement_column(data: Any) -> Any:
    """A table or batch without InfluxQL's ``iox::measurement`` column (unchanged if absent)."""
    if MEASUREMENT_COLUMN in data.schema.names:
        return data.drop_columns([MEASUREMENT_COLUMN])
    return data


def run_downsample(
    client: InfluxDB3Client,
    spec: DownsampleSpec,
    start: str | datetime | int,
    end: str | datetime | int,
    *,
    chunk: str | timedelta | None = None,
    target_database: str | None = None,
    database: str | None = None,
    dry_run: bool = False,
    timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
    write_options: WriteOptions | None = None,
) -> DownsampleResult:
    """``client.downsample``: query ``spec`` over ``[start, end)`` (chunk by chunk) and write the
    buckets back with ``client.write_back``."""
    s, e = spec.aligned(start, end)
    if chunk is None:
        pieces = [(s, e)]
    else:
        c = parse_duration(chunk, "chunk")
        if c <= 0 or c % spec.window_ns:
            raise ConfigurationError(
                f"chunk: must be a positive multiple of the window "
                f"({influxql_duration(spec.window_ns)}) so every chunk holds whole buckets; got "
                f"{chunk!r}",
                field="chunk",
            )
        pieces = _split_local(s, e, c, spec.time_zone) if spec.time_zone else split_range(s, e, c)
    text = spec.query()
    target = target_database or spec.target_database or client.config.database
    options = write_options if write_options is not None else client.write_options
    rows_read = points = skipped = requests = 0
    queries: list[str] = []
    all_params: list[dict[str, str]] = []
    for done, (lo, hi) in enumerate(pieces):
        params = {"start": format_time(lo), "end": format_time(hi)}
        queries.append(text)
        all_params.append(params)
        if dry_run:
            continue
        try:
            written = client.write_back(
                text,
                measurement=spec.target_measurement,
                tags=spec.group_by,
                field_columns=spec.output_fields,
                language=spec.language,
                params=params,
                database=database,
                target_database=target,
                timeout=timeout,
                write_options=options,
            )
        except Exception as exc:
            exc.add_note(
                f"downsample {spec.source} -> {spec.target_measurement}: {done} of "
                f"{len(pieces)} window(s) were written before [{params['start']}, "
                f"{params['end']}) failed ({points} points); re-running the same range is safe "
                "(it writes the same points)."
            )
            raise
        rows_read += written.rows
        points += written.lines_written
        skipped += written.rows_skipped
        requests += written.requests
    return DownsampleResult(
        rows_read=rows_read,
        points_written=points,
        windows=[(to_datetime(lo), to_datetime(hi)) for lo, hi in pieces],
        queries=queries,
        start=to_datetime(s),
        end=to_datetime(e),
        rows_skipped=skipped,
        write_requests=requests,
        target_database=target,
        dry_run=dry_run,
        params=all_params,
    )
