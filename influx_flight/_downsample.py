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
    run_downsample(client, spec, "2024-01-01T00:00:00Z", "2024-01-02T00:00:00Z", chunk="6h")
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from influx_flight._exceptions import ConfigurationError

if TYPE_CHECKING:
    import pyarrow as pa

    from influx_flight._writer import WriteResult

__all__ = [
    "AGGREGATES",
    "DownsampleResult",
    "DownsampleSpec",
    "align_range",
    "format_time",
    "parse_duration",
    "parse_time",
    "quote_ident",
    "split_range",
]

_NS = {
    "ns": 1,
    "u": 1_000,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
    "d": 86_400_000_000_000,
    "w": 604_800_000_000_000,
}
_DURATION_RE = re.compile(r"(\d+)(ns|us|µs|u|ms|s|m|h|d|w)")

#: SQL unit names for rendering an interval, largest first.
_SQL_UNITS = (
    (86_400_000_000_000, "day"),
    (3_600_000_000_000, "hour"),
    (60_000_000_000, "minute"),
    (1_000_000_000, "second"),
    (1_000_000, "millisecond"),
    (1_000, "microsecond"),
    (1, "nanosecond"),
)
#: InfluxQL duration units, largest first.
_INFLUXQL_UNITS = (
    (604_800_000_000_000, "w"),
    (86_400_000_000_000, "d"),
    (3_600_000_000_000, "h"),
    (60_000_000_000, "m"),
    (1_000_000_000, "s"),
    (1_000_000, "ms"),
    (1_000, "u"),
    (1, "ns"),
)

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


# --- durations and instants ----------------------------------------------------------------------


def parse_duration(value: str | timedelta | int, what: str = "window") -> int:
    """``"1h"``, ``"90m"``, ``"1h30m"``, ``"500ms"``, a timedelta, or int nanoseconds -> ns."""
    if isinstance(value, bool):
        raise ConfigurationError(f"{what}: expected a duration, got {value!r}", field=what)
    if isinstance(value, timedelta):
        ns = (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000
    elif isinstance(value, int):
        ns = value
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        sign = -1 if text.startswith("-") else 1
        text = text.lstrip("+-") if text[:1] in "+-" else text
        pos, ns = 0, 0
        for m in _DURATION_RE.finditer(text):
            if m.start() != pos:
                break
            ns += int(m.group(1)) * _NS[m.group(2)]
            pos = m.end()
        if not text or pos != len(text):
            raise ConfigurationError(
                f"{what}: cannot read {value!r} as a duration; use forms like '1h', '15m', "
                "'1h30m', '500ms', '7d' or a datetime.timedelta",
                field=what,
            )
        ns *= sign
    else:
        raise ConfigurationError(
            f"{what}: expected a duration string or timedelta, got {type(value).__name__}",
            field=what,
        )
    return ns


def _sql_interval(ns: int) -> str:
    for unit_ns, name in _SQL_UNITS:
        if ns % unit_ns == 0:
            n = ns // unit_ns
            return f"INTERVAL '{n} {name}{'s' if n != 1 else ''}'"
    raise AssertionError("unreachable")


def _influxql_duration(ns: int) -> str:
    for unit_ns, name in _INFLUXQL_UNITS:
        if ns % unit_ns == 0:
            return f"{ns // unit_ns}{name}"
    raise AssertionError("unreachable")


def parse_time(value: str | datetime | int, what: str = "start") -> int:
    """An instant as int nanoseconds since the epoch (UTC).

    Accepts an aware datetime (pandas Timestamps included), a naive datetime (taken as UTC),
    an ISO-8601 string (``Z`` or offset; naive = UTC, up to nanoseconds) or int nanoseconds.
    """
    if isinstance(value, bool):
        raise ConfigurationError(f"{what}: expected an instant, got {value!r}", field=what)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        nanos = getattr(value, "nanosecond", 0)  # pandas.Timestamp
        dt = value if value.tzinfo else value.replace(tzinfo=UTC)
        delta = dt - datetime(1970, 1, 1, tzinfo=UTC)
        return (
            (delta.days * 86_400 + delta.seconds) * 1_000_000_000
            + delta.microseconds * 1_000
            + nanos
        )
    if isinstance(value, str):
        text = value.strip()
        m = re.fullmatch(
            r"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?:\.(\d{1,9}))?"
            r"(Z|[+-]\d{2}:?\d{2})?",
            text,
        )
        if not m:
            raise ConfigurationError(
                f"{what}: cannot read {value!r} as an ISO-8601 instant such as "
                "'2024-01-01T00:00:00Z'",
                field=what,
            )
        base, frac, zone = m.groups()
        try:
            dt = datetime.fromisoformat(base + (zone or "").replace("Z", "+00:00"))
        except ValueError as exc:
            raise ConfigurationError(f"{what}: {value!r} is not a valid instant: {exc}") from None
        return parse_time(dt, what) + (int(frac.ljust(9, "0")) if frac else 0)
    raise ConfigurationError(
        f"{what}: expected a datetime, an ISO-8601 string or int nanoseconds, got "
        f"{type(value).__name__}",
        field=what,
    )


def format_time(ns: int) -> str:
    """RFC 3339 UTC with ``Z`` (fractional seconds only when needed, up to nanoseconds)."""
    secs, frac = divmod(ns, 1_000_000_000)
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=secs)
    text = dt.strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def _to_datetime(ns: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=ns // 1_000)


def align_range(
    start: str | datetime | int,
    end: str | datetime | int,
    window: str | timedelta | int,
    offset: str | timedelta | int | None = None,
    *,
    align: Literal["strict", "widen"] = "strict",
) -> tuple[int, int]:
    """Check (or widen) ``[start, end)`` to whole windows; returns int nanoseconds.

    Buckets start at ``epoch + offset + k * window`` (UTC). ``strict`` refuses unaligned bounds
    with a ConfigurationError naming the aligned ones; ``widen`` extends to them.
    """
    w = parse_duration(window)
    off = parse_duration(offset, "offset") % w if offset is not None else 0
    s, e = parse_time(start, "start"), parse_time(end, "end")
    if e <= s:
        raise ConfigurationError(
            f"end ({format_time(e)}) must be after start ({format_time(s)}); the range is "
            "half-open [start, end)",
            field="end",
        )
    s_floor = s - (s - off) % w
    e_ceil = e + (-(e - off)) % w
    if s_floor == s and e_ceil == e:
        return s, e
    if align == "widen":
        return s_floor, e_ceil
    if align != "strict":
        raise ConfigurationError(
            f"align: expected 'strict' or 'widen', got {align!r}", field="align"
        )
    bad = []
    if s_floor != s:
        bad.append(
            f"start {format_time(s)} (aligned: {format_time(s_floor)} or {format_time(s_floor + w)})"
        )
    if e_ceil != e:
        bad.append(
            f"end {format_time(e)} (aligned: {format_time(e_ceil - w)} or {format_time(e_ceil)})"
        )
    raise ConfigurationError(
        f"the range is not aligned to {_influxql_duration(w)} windows"
        + (f" with offset {_influxql_duration(off)}" if off else "")
        + ": "
        + "; ".join(bad)
        + ". Partial buckets would overwrite complete ones; pass aligned bounds, e.g. "
        f"[{format_time(s_floor)}, {format_time(e_ceil)}), or align='widen'.",
        field="start" if s_floor != s else "end",
    )


def split_range(
    start: str | datetime | int,
    end: str | datetime | int,
    chunk: str | timedelta | int,
) -> list[tuple[int, int]]:
    """Cut ``[start, end)`` into consecutive half-open pieces of ``chunk`` (the last may be
    shorter); int nanoseconds. Chunks start at ``start``, so aligned bounds and a chunk that is a
    multiple of the window give aligned pieces."""
    s, e = parse_time(start, "start"), parse_time(end, "end")
    c = parse_duration(chunk, "chunk")
    if c <= 0:
        raise ConfigurationError("chunk: must be a positive duration", field="chunk")
    if e <= s:
        raise ConfigurationError("end must be after start (half-open [start, end))", field="end")
    out = []
    t = s
    while t < e:
        out.append((t, min(t + c, e)))
        t += c
    return out


# --- quoting ---------------------------------------------------------------------------------------------


def quote_ident(name: str, language: Literal["sql", "influxql"] = "sql") -> str:
    """Quote an identifier for SQL (``"a""b"``) or InfluxQL (``"a\\"b"``)."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"identifier must be a non-empty string, got {name!r}")
    if "\n" in name or "\0" in name:
        raise ConfigurationError(f"identifier {name!r} contains a newline or NUL")
    if language == "sql":
        return '"' + name.replace('"', '""') + '"'
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


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
        time_zone: IANA zone for wall-clock buckets (InfluxQL ``tz()`` only).
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
        if self.time_zone is not None and self.language != "influxql":
            raise ConfigurationError(
                "time_zone: wall-clock buckets need language='influxql' (tz()); SQL date_bin "
                "bins in UTC",
                field="time_zone",
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
        interval = _sql_interval(self._window_ns)
        gapfill = self.fill is not None
        bin_fn = "date_bin_gapfill" if gapfill else "date_bin"
        cols = [f"{bin_fn}({interval}, time, {self._origin_literal()}) AS time"]
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
        group = f"time({_influxql_duration(self._window_ns)}"
        if self._offset_ns:
            group += f", {_influxql_duration(self._offset_ns)}"
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

    dt = _to_datetime(ns).astimezone(ZoneInfo(zone))
    return parse_time(dt.replace(tzinfo=None), "t") + ns % 1_000


def _utc_ns(local: int, zone: str) -> int:
    """The UTC instant of the wall-clock time ``local`` in ``zone`` (the earlier one if the
    clock time repeats; shifted forward if it is skipped)."""
    from zoneinfo import ZoneInfo

    naive = _to_datetime(local).replace(tzinfo=None)
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
            f"{name} {format_time(ns)} is not on a {_influxql_duration(w)} boundary in "
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


def _strip_batches(
    batches: Iterator[pa.RecordBatch], counter: list[int]
) -> Iterator[pa.RecordBatch]:
    """Drop InfluxQL's ``iox::measurement`` column and count rows, batch by batch."""
    for batch in batches:
        if batch.num_rows == 0:
            continue
        batch = drop_measurement_column(batch)
        counter[0] += batch.num_rows
        yield batch


def run_downsample(
    client: Any,
    spec: DownsampleSpec,
    start: str | datetime | int,
    end: str | datetime | int,
    *,
    chunk: str | timedelta | None = None,
    target_database: str | None = None,
    database: str | None = None,
    dry_run: bool = False,
    concurrency: int = 4,
) -> DownsampleResult:
    """Query ``spec`` over ``[start, end)`` (chunk by chunk) and write the buckets back.

    ``client`` is an InfluxDB3Client (``client.query(...)``, ``client.config``); ``database`` is
    the source database (default: the client's), ``target_database`` the destination (default:
    the spec's, else the client's). Re-running writes identical points (idempotent).
    """
    s, e = spec.aligned(start, end)
    if chunk is None:
        pieces = [(s, e)]
    else:
        c = parse_duration(chunk, "chunk")
        if c <= 0 or c % spec.window_ns:
            raise ConfigurationError(
                f"chunk: must be a positive multiple of the window "
                f"({_influxql_duration(spec.window_ns)}) so every chunk holds whole buckets; got "
                f"{chunk!r}",
                field="chunk",
            )
        pieces = _split_local(s, e, c, spec.time_zone) if spec.time_zone else split_range(s, e, c)
    text = spec.query()
    config = client.config
    target = target_database or spec.target_database or config.database
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
            written, read = _run_window(
                client, spec, text, params, database, config, target, concurrency
            )
        except Exception as exc:
            exc.add_note(
                f"downsample {spec.source} -> {spec.target_measurement}: {done} of "
                f"{len(pieces)} window(s) were written before [{params['start']}, "
                f"{params['end']}) failed ({points} points); re-running the same range is safe "
                "(it writes the same points)."
            )
            raise
        rows_read += read
        if written is not None:
            points += written.lines_written
            skipped += written.rows_skipped
            requests += written.requests
    return DownsampleResult(
        rows_read=rows_read,
        points_written=points,
        windows=[(_to_datetime(lo), _to_datetime(hi)) for lo, hi in pieces],
        queries=queries,
        start=_to_datetime(s),
        end=_to_datetime(e),
        rows_skipped=skipped,
        write_requests=requests,
        target_database=target,
        dry_run=dry_run,
        params=all_params,
    )


def _run_window(
    client: Any,
    spec: DownsampleSpec,
    text: str,
    params: dict[str, str],
    database: str | None,
    config: Any,
    target: str,
    concurrency: int,
) -> tuple[WriteResult | None, int]:
    """Query one window and write its buckets back; returns (write result, rows read)."""
    from influx_flight._writer import write_arrow

    result = client.query(text, language=spec.language, params=params, database=database)
    counter = [0]

    def write_back(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> WriteResult | None:
        # Called again from scratch if the stream breaks and the query is re-run: the
        # points written by the broken attempt are rewritten identically (idempotent).
        counter[0] = 0
        stripped = _strip_batches(batches, counter)
        first = next(stripped, None)
        if first is None:
            return None

        def _all() -> Iterator[pa.RecordBatch]:
            yield first
            yield from stripped

        return write_arrow(
            config,
            _all(),
            measurement=spec.target_measurement,
            tags=list(spec.group_by),
            time_column="time",
            field_columns=[f for f in spec.output_fields if f in first.schema.names],
            database=target,
            concurrency=concurrency,
        )

    if hasattr(result, "consume"):
        written = result.consume(write_back)
    else:  # any iterable of record batches
        written = write_back(iter(result), None)  # type: ignore[arg-type]
    return written, counter[0]
