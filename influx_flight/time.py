"""Time, durations and identifiers: the one set of rules used by the core, the CLI, Airflow and
Dagster.

Why one module: a duration that one parser accepts and another refuses, or a bound formatted
with microseconds here and nanoseconds there, makes the same window mean two things. Everything
here works on integer nanoseconds since the epoch (UTC), InfluxDB's own unit, and imports only the
standard library, so DAG files and asset modules can use it for free.

Examples:
    from influx_flight.time import format_time, parse_duration, parse_time, quote_ident

    parse_duration("1h30m")                    # 5_400_000_000_000
    format_time(parse_time("2024-01-01T00:00:00.5+01:00"))   # '2023-12-31T23:00:00.5Z'
    quote_ident("cpu", "influxql")              # '"cpu"'
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Final, Literal

from ._exceptions import ConfigurationError

__all__ = [
    "EPOCH",
    "PRECISIONS",
    "align_range",
    "format_time",
    "influxql_duration",
    "normalize_precision",
    "parse_duration",
    "parse_time",
    "precision_per_second",
    "quote_ident",
    "split_range",
    "sql_interval",
    "to_datetime",
]

#: The Unix epoch, aware (UTC).
EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)

_UNIT_NS: Final = {
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
_DURATION_RE: Final = re.compile(r"(\d+)(ns|us|µs|u|ms|s|m|h|d|w)")
_INSTANT_RE: Final = re.compile(
    r"(\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2})?)?)(?:\.(\d{1,9}))?(Z|z|[+-]\d{2}:?\d{2})?"
)

#: SQL interval units, largest first.
_SQL_UNITS: Final = (
    (86_400_000_000_000, "day"),
    (3_600_000_000_000, "hour"),
    (60_000_000_000, "minute"),
    (1_000_000_000, "second"),
    (1_000_000, "millisecond"),
    (1_000, "microsecond"),
    (1, "nanosecond"),
)
#: InfluxQL duration units, largest first.
_INFLUXQL_UNITS: Final = (
    (604_800_000_000_000, "w"),
    (86_400_000_000_000, "d"),
    (3_600_000_000_000, "h"),
    (60_000_000_000, "m"),
    (1_000_000_000, "s"),
    (1_000_000, "ms"),
    (1_000, "u"),
    (1, "ns"),
)

#: Write precision name -> (canonical short name, units per second).
PRECISIONS: Final[dict[str, tuple[str, int]]] = {}
for _names, _short, _per_s in (
    (("ns", "n", "nanosecond", "nanoseconds"), "ns", 1_000_000_000),
    (("us", "u", "µs", "microsecond", "microseconds"), "us", 1_000_000),
    (("ms", "millisecond", "milliseconds"), "ms", 1_000),
    (("s", "second", "seconds"), "s", 1),
):
    for _n in _names:
        PRECISIONS[_n] = (_short, _per_s)


# --- durations ---------------------------------------------------------------------------------


def _timedelta_ns(value: timedelta) -> int:
    return (value.days * 86_400 + value.seconds) * 1_000_000_000 + value.microseconds * 1_000


def parse_duration(value: str | timedelta | int, what: str = "duration") -> int:
    """A duration as int nanoseconds.

    Accepts InfluxQL-style text (``"1h"``, ``"90m"``, ``"1h30m"``, ``"500ms"``, ``"7d"``, ``"1w"``;
    units ns, us/u/µs, ms, s, m, h, d, w; spaces ignored; a leading sign), a ``timedelta`` or int
    nanoseconds. ``what`` names the setting in the error message.
    """
    if isinstance(value, bool):
        raise ConfigurationError(f"{what}: expected a duration, got {value!r}", field=what)
    if isinstance(value, timedelta):
        return _timedelta_ns(value)
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ConfigurationError(
            f"{what}: expected a duration string or timedelta, got {type(value).__name__}",
            field=what,
        )
    text = value.strip().replace(" ", "")
    sign = -1 if text.startswith("-") else 1
    if text[:1] in "+-":
        text = text[1:]
    pos, ns = 0, 0
    for m in _DURATION_RE.finditer(text):
        if m.start() != pos:
            break
        ns += int(m.group(1)) * _UNIT_NS[m.group(2)]
        pos = m.end()
    if not text or pos != len(text):
        raise ConfigurationError(
            f"{what}: cannot read {value!r} as a duration; use forms like '1h', '15m', "
            "'1h30m', '500ms', '7d' or a datetime.timedelta",
            field=what,
        )
    return sign * ns


def sql_interval(ns: int) -> str:
    """A duration as a SQL interval literal in its largest exact unit: ``INTERVAL '90 minutes'``."""
    for unit_ns, name in _SQL_UNITS:
        if ns % unit_ns == 0:
            n = ns // unit_ns
            return f"INTERVAL '{n} {name}{'s' if n != 1 else ''}'"
    raise AssertionError("unreachable")  # pragma: no cover - 1 ns divides everything


def influxql_duration(ns: int) -> str:
    """A duration as an InfluxQL literal in its largest exact unit: ``90m``, ``1h``, ``500ms``."""
    for unit_ns, name in _INFLUXQL_UNITS:
        if ns % unit_ns == 0:
            return f"{ns // unit_ns}{name}"
    raise AssertionError("unreachable")  # pragma: no cover


# --- instants ----------------------------------------------------------------------------------


def parse_time(value: str | datetime | int, what: str = "time") -> int:
    """An instant as int nanoseconds since the epoch (UTC).

    Accepts an aware datetime (pandas Timestamps keep their nanoseconds), a naive datetime (taken
    as UTC), RFC 3339 / ISO 8601 text (``Z`` or an offset; naive = UTC; up to nanoseconds) or int
    nanoseconds.
    """
    if isinstance(value, bool):
        raise ConfigurationError(f"{what}: expected an instant, got {value!r}", field=what)
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        nanos = getattr(value, "nanosecond", 0)  # pandas.Timestamp
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return _timedelta_ns(aware - EPOCH) + nanos
    if isinstance(value, str):
        m = _INSTANT_RE.fullmatch(value.strip())
        if not m:
            raise ConfigurationError(
                f"{what}: cannot read {value!r} as an RFC 3339 (ISO-8601) instant such as "
                "'2024-01-01T00:00:00Z'",
                field=what,
            )
        base, frac, zone = m.groups()
        zone = (zone or "").upper().replace("Z", "+00:00")
        try:
            parsed = datetime.fromisoformat(base + zone)
        except ValueError as exc:
            raise ConfigurationError(
                f"{what}: {value!r} is not a valid instant: {exc}", field=what
            ) from None
        return parse_time(parsed, what) + (int(frac.ljust(9, "0")) if frac else 0)
    raise ConfigurationError(
        f"{what}: expected a datetime, RFC 3339 text or int nanoseconds, got "
        f"{type(value).__name__}",
        field=what,
    )


def format_time(value: int | datetime | str) -> str:
    """RFC 3339 in UTC with ``Z``; fractional seconds only when needed, up to nanoseconds.

    Takes int nanoseconds, a datetime (naive = UTC) or RFC 3339 text (normalised).
    """
    ns = value if isinstance(value, int) and not isinstance(value, bool) else parse_time(value)
    secs, frac = divmod(ns, 1_000_000_000)
    text = (EPOCH + timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%S")
    if frac:
        text += "." + f"{frac:09d}".rstrip("0")
    return text + "Z"


def to_datetime(ns: int) -> datetime:
    """Epoch nanoseconds as an aware UTC datetime (truncated to microseconds)."""
    return EPOCH + timedelta(microseconds=ns // 1_000)


# --- ranges -----------------------------------------------------------------------------------


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
        f"the range is not aligned to {influxql_duration(w)} windows"
        + (f" with offset {influxql_duration(off)}" if off else "")
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


# --- precision ---------------------------------------------------------------------------------


def normalize_precision(precision: str) -> str:
    """The canonical write precision (``ns``, ``us``, ``ms``, ``s``) for any accepted spelling."""
    try:
        return PRECISIONS[str(precision).strip().lower()][0]
    except KeyError:
        raise ConfigurationError(
            f"precision {precision!r} is not supported; use one of 'ns', 'us', 'ms' or 's'",
            field="precision",
        ) from None


def precision_per_second(precision: str) -> int:
    """Units per second of a write precision (``ms`` -> 1000)."""
    return PRECISIONS[normalize_precision(precision)][1]


# --- identifiers -------------------------------------------------------------------------------


def quote_ident(name: str, language: Literal["sql", "influxql"] = "sql") -> str:
    """Quote an identifier for SQL (``"a""b"``) or InfluxQL (``"a\\"b"``)."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"identifier must be a non-empty string, got {name!r}")
    if "\n" in name or "\0" in name:
        raise ConfigurationError(f"identifier {name!r} contains a newline or NUL")
    if language == "sql":
        return '"' + name.replace('"', '""') + '"'
    if language == "influxql":
        return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    raise ConfigurationError(
        f"language: expected 'sql' or 'influxql', got {language!r}", field="language"
    )
