"""Server-side line-protocol parser: whole request bodies to per-table Arrow record batches.

InfluxDB 3 Core parses line protocol with the `influxdb_line_protocol` crate; this module follows
its grammar and error messages. Two paths share one result shape:

* the **fast path** handles the common case (no quotes, tabs or NULs) for a whole body at once
  with pyarrow.compute string kernels: escapes (`\\ `, `\\,`, `\\=`, `\\\\`) are first encoded
  as placeholder characters, lines are split on spaces and commas, grouped by their "shape"
  (measurement, tag keys, field keys) with a template check, split into columns by strided
  takes, and the values are classified and cast per column;
* the **slow path** parses line by line: a regex "quick" parser for lines with quoted strings but
  no escapes, and a recursive-descent parser for the full grammar (escapes, quoted strings with
  embedded newlines, every error message). Lines the fast path does not accept go here, so
  errors always come from the full parser.

`parse()` only parses; `resolve()` then checks field types against the existing table schemas
and within the request (the earliest line fixes a new field's type, as Core's validator does) and
builds one `pa.RecordBatch` per table.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "KIND_TO_ARROW",
    "TAG_METADATA",
    "Chunk",
    "LineError",
    "ParseResult",
    "guess_precision",
    "parse",
    "resolve",
]

#: Field kinds and their Arrow types.
KIND_TO_ARROW: dict[str, pa.DataType] = {
    "float": pa.float64(),
    "int": pa.int64(),
    "uint": pa.uint64(),
    "string": pa.string(),
    "bool": pa.bool_(),
}
_ARROW_TO_KIND = {str(v): k for k, v in KIND_TO_ARROW.items()}
#: How Core names column types in its field-type-conflict message (`InfluxColumnType` Display).
_KIND_TO_CORE_NAME = {
    "float": "iox::column_type::field::float",
    "int": "iox::column_type::field::integer",
    "uint": "iox::column_type::field::uinteger",
    "string": "iox::column_type::field::string",
    "bool": "iox::column_type::field::boolean",
    "tag": "iox::column_type::tag",
}

#: Precision names accepted by the write endpoints, mapped to a nanosecond multiplier
#: (`auto` -> None: guessed per timestamp from its magnitude).
PRECISIONS: dict[str, int | None] = {
    "auto": None,
    "s": 1_000_000_000,
    "second": 1_000_000_000,
    "ms": 1_000_000,
    "millisecond": 1_000_000,
    "us": 1_000,
    "u": 1_000,
    "microsecond": 1_000,
    "ns": 1,
    "n": 1,
    "nanosecond": 1,
}

#: Field metadata marking tag columns (the engine's `iox::column::type` convention).
TAG_METADATA = {b"iox::column::type": b"iox::column_type::tag"}

_STRING_LIMIT = 65536
_INT64_MAX = 2**63 - 1
_UINT64_MAX = 2**64 - 1
_TRUE = ("true", "True", "TRUE", "t", "T")
_FALSE = ("false", "False", "FALSE", "f", "F")


@dataclass(frozen=True)
class LineError:
    """One rejected line: 1-based number among the data lines, Core's message, the line text."""

    line_number: int
    error_message: str
    original_line: str


@dataclass
class Chunk:
    """Rows of one table sharing one column shape; every field has a single kind in a chunk."""

    table: str
    line_index: np.ndarray  # int64 indices into ParseResult.lines (0-based data-line numbers)
    time: np.ndarray  # int64 nanoseconds
    tags: dict[str, pa.Array]  # name -> utf8 array
    fields: dict[str, tuple[str, pa.Array]]  # name -> (kind, array)

    def __len__(self) -> int:
        return len(self.line_index)


@dataclass
class ParseResult:
    """Chunks of parsed rows plus per-line syntax errors, in no particular order."""

    lines: list[str] | pa.Array  # the data lines (blank and comment lines removed)
    chunks: list[Chunk] = field(default_factory=list)
    errors: list[LineError] = field(default_factory=list)

    @property
    def line_count(self) -> int:
        return len(self.lines)

    def original_line(self, index: int) -> str:
        value = self.lines[index]
        return value if isinstance(value, str) else value.as_py()


class _TableSchemaLike(Protocol):
    tags: list[str]
    fields: dict[str, pa.DataType]


def guess_precision(timestamps: np.ndarray) -> np.ndarray:
    """Nanosecond multipliers for `precision=auto`, as Core's `guess_precision` does.

    The magnitude decides: |t| / 1e9 < 5 -> seconds, < 5e3 -> ms, < 5e6 -> us, else ns.
    """
    val = np.abs(timestamps) // 1_000_000_000
    return np.where(
        val < 5,
        1_000_000_000,
        np.where(val < 5_000, 1_000_000, np.where(val < 5_000_000, 1_000, 1)),
    ).astype(np.int64)


def _to_ns(ts: np.ndarray, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """Scale raw timestamps to ns; returns (values, overflow mask)."""
    mult = PRECISIONS[precision]
    multipliers = guess_precision(ts) if mult is None else np.full(len(ts), mult, np.int64)
    limit = _INT64_MAX // multipliers
    overflow = np.abs(ts) > limit
    out = np.where(overflow, 0, ts) * multipliers
    return out, overflow


# ----------------------------------------------------------------------------------------------
# Splitting a body into lines
# ----------------------------------------------------------------------------------------------


_Q_NAME = r"[^ \t\n,=\\\x00\"]+"
_QUICK_LINE = re.compile(
    rf"({_Q_NAME})((?:,{_Q_NAME}={_Q_NAME})*) +"
    rf'((?:{_Q_NAME}=(?:"[^"\\\\]*"|[^ \t\n,"\\\\]+))(?:,{_Q_NAME}=(?:"[^"\\\\]*"|[^ \t\n,"\\\\]+))*)'
    r"(?: +(-?\d+) *)?"
)
_QUICK_FIELD = re.compile(rf'({_Q_NAME})=("[^"\\\\]*"|[^ \t\n,"\\\\]+)')


def _needs_join(piece: str, state: list[Any]) -> bool:
    """Run Core's `split_lines` state machine over one newline-free piece.

    Returns True when the newline that ends `piece` is inside a quoted string value or escaped
    by a backslash, i.e. the piece continues on the next one. `state` is
    [quoted, fields, equals, commas] carried across joined pieces.
    """
    quoted, fields, equals, commas = state
    in_escape = False
    for c in piece:
        if in_escape:
            in_escape = False
            continue
        if c == "\\":
            in_escape = True
            continue
        if c == " ":
            fields = True
            continue
        if fields:
            if not quoted and c == "=":
                equals += 1
            elif not quoted and c == ",":
                commas += 1
            elif c == '"' and equals > commas:
                quoted = not quoted
    state[:] = [quoted, fields, equals, commas]
    return quoted or in_escape


def split_lines(text: str) -> list[str]:
    """Split a body into lines; newlines inside quoted strings or after a backslash do not split."""
    pieces = text.split("\n")
    if '"' not in text and "\\" not in text:
        return pieces
    out: list[str] = []
    pending: list[str] = []
    state: list[Any] = [False, False, 0, 0]
    for piece in pieces:
        if not pending and "\\" not in piece and ('"' not in piece or _QUICK_LINE.fullmatch(piece)):
            # no quotes, or only well-formed quoted field values: the line ends here
            out.append(piece)
            continue
        pending.append(piece)
        if not _needs_join(piece, state):
            out.append("\n".join(pending))
            pending = []
            state = [False, False, 0, 0]
    if pending:
        out.append("\n".join(pending))
    return out


# ----------------------------------------------------------------------------------------------
# Slow path: the full grammar, one line at a time
# ----------------------------------------------------------------------------------------------


class _ParseError(Exception):
    pass


def _ctx(s: str) -> str:
    return s[:10] + "..." if len(s) > 10 else s


def _got(s: str) -> str:
    return "end of input" if s == "" else f"`{_ctx(s)}`"


_WS = " \t\n"
_INT_RE = re.compile(r"-?\d+(?=i)")
_UINT_RE = re.compile(r"\d+(?=u)")
_FLOAT_RE = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
_BOOL_RE = re.compile(r"true|True|TRUE|t|T|false|False|FALSE|f|F")
_TS_RE = re.compile(r"-?\d+")
_STRING_RE = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"', re.DOTALL)
_UNESCAPE_RE = re.compile(r'\\(["\\])')
_RUNS: dict[str, re.Pattern[str]] = {}


def _escaped(line: str, pos: int, stop: str, escapable: str) -> tuple[str, int]:
    """Read an escaped name/value starting at pos; stops at any char in `stop` (unescaped).

    `\\<c>` for c in `escapable` yields c; any other `\\<c>` is kept literally (as Core does).
    Raises when nothing was read (caller maps to its error) or the value ends with a backslash.
    """
    run = _RUNS.get(stop)
    if run is None:
        run = _RUNS[stop] = re.compile("[^" + re.escape(stop + "\\") + "]+")
    out: list[str] = []
    i = pos
    n = len(line)
    while i < n:
        m = run.match(line, i)
        if m is not None:
            out.append(m.group())
            i = m.end()
            if i >= n:
                break
        if line[i] != "\\":
            break
        if i + 1 < n and line[i + 1] in escapable:
            out.append(line[i + 1])
            i += 2
            continue
        out.append("\\")
        if i + 1 < n:
            out.append(line[i + 1])
            i += 2
        else:
            i += 1
    value = "".join(out)
    if i == pos:
        return "", pos
    if value.endswith("\\"):
        raise _ParseError(
            "Measurements, tag keys and values, and field keys may not end with a backslash"
        )
    if len(value.encode()) > _STRING_LIMIT:
        raise _ParseError("String is greater than 64KB")
    return value, i


def _spaces(line: str, pos: int) -> int:
    i = pos
    while i < len(line) and line[i] == " ":
        i += 1
    return i


def _field_value(line: str, pos: int) -> tuple[str, Any, int] | None:
    """Parse one field value at pos in Core's alternative order; None if no value matches."""
    if pos < len(line) and line[pos] == '"':  # only a string can start with a quote
        m = _STRING_RE.match(line, pos)
        if m is None:
            return None
        value = m.group(1)
        if "\\" in value:
            value = _UNESCAPE_RE.sub(r"\1", value)
        if len(value.encode()) > _STRING_LIMIT:
            raise _ParseError("String is greater than 64KB")
        return "string", value, m.end()
    m = _INT_RE.match(line, pos)
    if m:
        v = int(m.group())
        if not -(2**63) <= v <= _INT64_MAX:
            raise _ParseError(f"Unable to parse integer value `{m.group()}`")
        return "int", v, m.end() + 1
    m = _UINT_RE.match(line, pos)
    if m:
        v = int(m.group())
        if v > _UINT64_MAX:
            raise _ParseError(f"Unable to parse unsigned integer value `{m.group()}`")
        return "uint", v, m.end() + 1
    m = _FLOAT_RE.match(line, pos)
    if m:
        return "float", float(m.group()), m.end()
    m = _BOOL_RE.match(line, pos)
    if m:
        return "bool", m.group() in _TRUE, m.end()
    return None


def parse_line(
    line: str,
) -> tuple[str, list[tuple[str, str]], list[tuple[str, str, Any]], int | None]:
    """Parse one line (no leading whitespace) into (measurement, tags, fields, timestamp).

    Raises _ParseError with Core's message for invalid lines.
    """
    measurement, i = _escaped(line, 0, _WS + ",\x00", ", \\")
    if i == 0:
        raise _ParseError("Invalid measurement was provided")
    tags: list[tuple[str, str]] = []
    n = len(line)
    if i < n and line[i] == ",":
        tagset_start = i + 1
        i += 1
        while True:
            key, j = _escaped(line, i, _WS + "=", "\\,= ")
            if j == i:
                raise _ParseError(f"Expected tag key, got {_got(line[i:])}")
            if j >= n or line[j] != "=":
                raise _ParseError(
                    "Tag set malformed: could not find equals sign in "
                    f"`{_ctx(line[tagset_start:])}`"
                )
            k = j + 1
            value, j = _escaped(line, k, _WS + ",", "\\,= ")
            if j == k:
                raise _ParseError(f"Expected tag value, got {_got(line[k:])}")
            tags.append((key, value))
            i = j
            if i < n and line[i] == ",":
                i += 1
                continue
            break
        seen: set[str] = set()
        for key, _ in tags:
            if key in seen:
                raise _ParseError(f"Must not contain duplicate tags, but `{key}` was repeated")
            seen.add(key)
    j = _spaces(line, i)
    if j == i:
        raise _ParseError(f"Expected at least one space character, got {_got(line[i:])}")
    i = j
    fields: list[tuple[str, str, Any]] = []
    while True:
        key, j = _escaped(line, i, _WS + "=", "\\,= ")
        parsed = None
        if j > i and j < n and line[j] == "=":
            parsed = _field_value(line, j + 1)
        if parsed is None:
            if not fields:
                raise _ParseError("No fields were provided")
            raise _ParseError(
                f"Could not parse entire line. Found trailing content: `{_ctx(line[i:])}`"
            )
        kind, value, i = parsed
        fields.append((key, kind, value))
        if i < n and line[i] == ",":
            i += 1
            continue
        break
    timestamp: int | None = None
    j = _spaces(line, i)
    if j > i:
        m = _TS_RE.match(line, j)
        if m:
            timestamp = int(m.group())
            if not -(2**63) <= timestamp <= _INT64_MAX:
                raise _ParseError(f"Unable to parse timestamp value `{m.group()}`")
            i = _spaces(line, m.end())
    if i < n:
        raise _ParseError(
            f"Could not parse entire line. Found trailing content: `{_ctx(line[i:])}`"
        )
    return measurement, tags, fields, timestamp


def _parse_line_quick(
    line: str,
) -> tuple[str, list[tuple[str, str]], list[tuple[str, str, Any]], int | None] | None:
    """Regex-driven parse of a line without backslashes; None when the full parser must decide.

    Handles quoted strings (with spaces, commas and newlines but no escapes) at C speed for
    most of the line; anything unusual (errors included) goes to `parse_line`.
    """
    m = _QUICK_LINE.fullmatch(line)
    if m is None:
        return None
    measurement, tagset, fieldset, ts_text = m.groups()
    tags: list[tuple[str, str]] = []
    if tagset:
        for part in tagset[1:].split(","):
            key, _, value = part.partition("=")
            tags.append((key, value))
        if len({k for k, _ in tags}) != len(tags):
            return None
    fields: list[tuple[str, str, Any]] = []
    for fm in _QUICK_FIELD.finditer(fieldset):
        key, text = fm.groups()
        parsed = _field_value(text, 0)
        if parsed is None or parsed[2] != len(text):
            return None
        fields.append((key, parsed[0], parsed[1]))
    timestamp = None
    if ts_text is not None:
        timestamp = int(ts_text)
        if not -(2**63) <= timestamp <= _INT64_MAX:
            return None
    return measurement, tags, fields, timestamp


def _slow_path(
    lines: list[str],
    indices: np.ndarray,
    precision: str,
    default_time_ns: int,
    result: ParseResult,
) -> None:
    """Parse lines one by one and group the rows into chunks by shape."""
    groups: dict[
        tuple[Any, ...], list[tuple[int, tuple[str, ...], tuple[Any, ...], int | None]]
    ] = {}
    for idx in indices.tolist():
        line = lines[idx]
        try:
            parsed = _parse_line_quick(line) if "\\" not in line else None
            measurement, tags, fields, ts = parsed or parse_line(line)
        except _ParseError as exc:
            result.errors.append(LineError(idx + 1, str(exc), line))
            continue
        field_map: dict[str, tuple[str, Any]] = {}
        for key, kind, value in fields:  # duplicate field keys: the last one wins
            field_map.pop(key, None)
            field_map[key] = (kind, value)
        shape = (
            measurement,
            tuple(k for k, _ in tags),
            tuple((k, kind) for k, (kind, _) in field_map.items()),
        )
        # values are stored in the shape's key order
        groups.setdefault(shape, []).append(
            (idx, tuple(v for _, v in tags), tuple(v for _, v in field_map.values()), ts)
        )
    for (measurement, tag_keys, field_kinds), rows in groups.items():
        raw_ts = np.array([0 if r[3] is None else r[3] for r in rows], dtype=np.int64)
        missing = np.array([r[3] is None for r in rows], dtype=bool)
        ns, overflow = _to_ns(raw_ts, precision)
        ns = np.where(missing, default_time_ns, ns)
        line_index = np.array([r[0] for r in rows], dtype=np.int64)
        keep = ~(overflow & ~missing)
        for pos in np.flatnonzero(~keep).tolist():
            idx = int(line_index[pos])
            result.errors.append(
                LineError(idx + 1, _overflow_message(int(raw_ts[pos]), precision), lines[idx])
            )
        if not keep.all():
            rows = [r for r, k in zip(rows, keep.tolist(), strict=True) if k]
            ns = ns[keep]
            line_index = line_index[keep]
            if not rows:
                continue
        result.chunks.append(
            Chunk(
                table=measurement,
                line_index=line_index,
                time=ns,
                tags={
                    k: pa.array([r[1][j] for r in rows], pa.string())
                    for j, k in enumerate(tag_keys)
                },
                fields={
                    k: (kind, pa.array([r[2][j] for r in rows], KIND_TO_ARROW[kind]))
                    for j, (k, kind) in enumerate(field_kinds)
                },
            )
        )


def _overflow_message(ts: int, precision: str) -> str:
    return (
        f"timestamp {ts} does not fit in 64-bit nanoseconds at precision '{precision}'; "
        "send it in a finer precision or check the precision parameter"
    )


# ----------------------------------------------------------------------------------------------
# Fast path: whole-body vectorised parsing of plain lines
# ----------------------------------------------------------------------------------------------

#: Field value grammars of the fast path, by kind (a value is everything up to `,`, ` ` or the
#: end of the line); anything else is left to the full parser.
_VALUE_PATTERNS = {
    "float": r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?",
    "int": r"-?[0-9]+i",
    "uint": r"[0-9]+u",
    "bool": "(?:" + "|".join(_TRUE + _FALSE) + ")",
}
_VALUE_RES = {kind: re.compile(p) for kind, p in _VALUE_PATTERNS.items()}
_TS_FULL = re.compile(r"-?[0-9]+")
_TRUE_SET = pa.array(list(_TRUE))
_MAX_SHAPES = 64  # shapes handled vectorised per body; the rest go to the slow path
#: Separators that the split turns into commas: each line becomes name, key, value, ... parts.
_TO_COMMA = bytes.maketrans(b" =", b",,")


def _np(arr: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return arr.to_numpy(zero_copy_only=False)


def _re2_literal(text: str) -> str:
    """`text` as an RE2 literal (every character that is not a letter or digit as `\\x{..}`)."""
    return "".join(c if c.isascii() and c.isalnum() else f"\\x{{{ord(c):x}}}" for c in text)


@dataclass(frozen=True)
class _Shape:
    """Measurement, tag keys, field keys and kinds of a line, and the pattern of its shape.

    The pattern matches exactly the plain lines of this shape whose values the fast path can
    take: tag values without `=`, field values of the shape's kinds, the timestamp if the
    template line has one.
    """

    measurement: str
    tag_keys: tuple[str, ...]
    fields: tuple[tuple[str, str], ...]  # (key, kind)
    has_ts: bool
    pattern: str

    @classmethod
    def of(cls, line: str) -> _Shape | None:
        """The shape of a plain line (escapes encoded), or None to leave the line to the parser."""
        top = line.split(" ")
        if len(top) not in (2, 3) or (len(top) == 3 and not _TS_FULL.fullmatch(top[2])):
            return None
        measurement, *tag_parts = top[0].split(",")
        if not measurement:
            return None
        tag_keys = []
        for part in tag_parts:
            key, eq, value = part.partition("=")
            if not key or not eq or not value or "=" in value:
                return None
            tag_keys.append(key)
        fields = []
        for part in top[1].split(","):
            key, eq, value = part.partition("=")
            if not key or not eq:
                return None
            kind = next((k for k, r in _VALUE_RES.items() if r.fullmatch(value)), None)
            if kind is None:
                return None
            fields.append((key, kind))
        if len(set(tag_keys)) != len(tag_keys) or len({k for k, _ in fields}) != len(fields):
            return None  # duplicates: the full parser says which wins or what is wrong
        pattern = "^" + _re2_literal(measurement)
        pattern += "".join(f",{_re2_literal(k)}=[^ ,=]+" for k in tag_keys)
        pattern += " " + ",".join(f"{_re2_literal(k)}={_VALUE_PATTERNS[t]}" for k, t in fields)
        pattern += r" -?[0-9]+$" if len(top) == 3 else "$"
        return cls(measurement, tuple(tag_keys), tuple(fields), len(top) == 3, pattern)


def _commas(lines: pa.Array) -> pa.Array:
    """`lines` with spaces and `=` turned into commas (same lengths, same offsets)."""
    lines = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if lines.offset or lines.null_count:
        lines = pa.concat_arrays([lines])  # a fresh, unsliced copy
    validity, offsets, data = lines.buffers()
    first, last = _np(pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, offsets]))[[0, -1]]
    translated = pa.py_buffer(data[int(first) : int(last)].to_pybytes().translate(_TO_COMMA))
    shifted = pa.Array.from_buffers(pa.int32(), len(lines) + 1, [None, offsets])
    if first:
        shifted = pc.subtract(shifted, int(first))
    return pa.Array.from_buffers(
        pa.string(), len(lines), [validity, shifted.buffers()[1], translated]
    )


class _Parts:
    """Every line split into name, key, value, ... parts (see `_commas`), by row and position."""

    def __init__(self, lines: pa.Array) -> None:
        lists = pc.split_pattern(_commas(lines), ",")
        self.offsets = _np(lists.offsets).astype(np.int64)[:-1] - lists.offsets[0].as_py()
        self.flat = lists.values.slice(lists.offsets[0].as_py())

    def column(self, rows: np.ndarray, position: np.ndarray | int) -> pa.Array:
        return self.flat.take(pa.array(self.offsets[rows] + position, pa.int64()))


def _fast_path(
    lines: pa.Array,
    candidates: np.ndarray,
    precision: str,
    default_time_ns: int,
    result: ParseResult,
    escaped: bool = False,
) -> np.ndarray:
    """Parse plain lines vectorised; returns the data-line indices left for the slow path.

    The first line not yet taken gives a shape (`_Shape`); one regular-expression pass finds
    every remaining line of that shape, whose values are then cut out of one split of all lines
    on separators and cast per column. Lines that give no shape (errors included) go to the slow
    path, which reports errors.
    """
    subset = (
        lines.take(pa.array(candidates, pa.int64())) if len(candidates) != len(lines) else lines
    )
    parts = _Parts(subset)
    remaining = np.arange(len(subset), dtype=np.int64)
    leftover = []
    shapes = 0
    while len(remaining):
        shapes += 1
        if shapes > _MAX_SHAPES:
            leftover.append(candidates[remaining])
            break
        first = int(remaining[0])
        shape = _Shape.of(subset[first].as_py())
        pool = subset if len(remaining) == len(subset) else subset.take(pa.array(remaining))
        match = _np(pc.match_substring_regex(pool, shape.pattern)) if shape else None
        if shape is None or match is None or not match[0]:
            leftover.append(candidates[[first]])
            remaining = remaining[1:]
            continue
        group, remaining = remaining[match], remaining[~match]
        # position of the measurement's last part: `=` in a measurement is split too
        base = shape.measurement.count("=")
        tag_vals = [parts.column(group, base + 2 + 2 * i) for i in range(len(shape.tag_keys))]
        pos = base + 2 + 2 * len(shape.tag_keys)
        field_vals = [parts.column(group, pos + 2 * j) for j in range(len(shape.fields))]
        measurement, tag_names = shape.measurement, list(shape.tag_keys)
        field_names = [k for k, _ in shape.fields]
        if escaped:
            measurement = _decode_name(measurement, _DECODE_MEASUREMENT)
            tag_names = [_decode_name(k, _DECODE_KEY) for k in tag_names]
            field_names = [_decode_name(k, _DECODE_KEY) for k in field_names]
            tag_vals = [_decode_values(c) for c in tag_vals]
            if len(set(tag_names)) != len(tag_names) or len(set(field_names)) != len(field_names):
                leftover.append(candidates[group])  # duplicates after decoding: the parser decides
                continue
        ts = parts.column(group, pos + 2 * len(shape.fields) - 1) if shape.has_ts else None
        if not _fast_group(
            measurement,
            dict(zip(tag_names, tag_vals, strict=True)),
            {n: (k, v) for n, (_, k), v in zip(field_names, shape.fields, field_vals, strict=True)},
            ts,
            candidates[group],
            precision,
            default_time_ns,
            result,
        ):
            leftover.append(candidates[group])
    return np.sort(np.concatenate(leftover)) if leftover else candidates[:0]


def _convert(values: pa.Array, kind: str) -> pa.Array:
    """Cast matched value strings; raises pa.ArrowInvalid on out-of-range integers."""
    if kind == "float":
        return pc.cast(values, pa.float64())
    if kind == "int":
        return pc.cast(pc.utf8_slice_codeunits(values, 0, -1), pa.int64())
    if kind == "uint":
        return pc.cast(pc.utf8_slice_codeunits(values, 0, -1), pa.uint64())
    return pc.is_in(values, value_set=_TRUE_SET)


def _fast_group(
    measurement: str,
    tags: dict[str, pa.Array],
    fields: dict[str, tuple[str, pa.Array]],
    ts: pa.Array | None,
    line_index: np.ndarray,
    precision: str,
    default_time_ns: int,
    result: ParseResult,
) -> bool:
    """Add one shape's rows as a chunk; False leaves them all to the slow path (out of range)."""
    try:
        converted = {name: (kind, _convert(col, kind)) for name, (kind, col) in fields.items()}
        raw = _np(pc.cast(ts, pa.int64())) if ts is not None else None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return False  # an integer or timestamp out of range: the slow path reports it per line
    if raw is None:
        ns = np.full(len(line_index), default_time_ns, dtype=np.int64)
        keep = None
    else:
        ns, overflow = _to_ns(raw, precision)
        for pos in np.flatnonzero(overflow).tolist():
            idx = int(line_index[pos])
            result.errors.append(
                LineError(idx + 1, _overflow_message(int(raw[pos]), precision), _line(result, idx))
            )
        keep = ~overflow if overflow.any() else None
    if keep is not None:
        if not keep.any():
            return True
        mask = pa.array(keep)
        line_index, ns = line_index[keep], ns[keep]
        tags = {k: v.filter(mask) for k, v in tags.items()}
        converted = {k: (kind, v.filter(mask)) for k, (kind, v) in converted.items()}
    result.chunks.append(
        Chunk(table=measurement, line_index=line_index, time=ns, tags=tags, fields=converted)
    )
    return True


def _line(result: ParseResult, idx: int) -> str:
    return result.original_line(idx)


# ----------------------------------------------------------------------------------------------
# Entry points
# ----------------------------------------------------------------------------------------------


# Placeholders for escaped characters on the fast path: (escape sequence, placeholder).
_ESCAPES = (("\\\\", "\x04"), ("\\ ", "\x01"), ("\\,", "\x02"), ("\\=", "\x03"))
_PLACEHOLDERS = tuple(p for _, p in _ESCAPES)
_ENDS_WITH_BACKSLASH = "\x04(?:[ ,=]|$)"
#: placeholder -> character, for tag keys/values and field keys
_DECODE_KEY = {"\x01": " ", "\x02": ",", "\x03": "=", "\x04": "\\"}
#: in measurements `\=` is not an escape: it stays as written
_DECODE_MEASUREMENT = {**_DECODE_KEY, "\x03": "\\="}


def _encode_escapes(lines: pa.Array) -> pa.Array:
    """Replace `\\\\`, `\\ `, `\\,`, `\\=` left to right by placeholders (non-overlapping)."""
    for seq, placeholder in _ESCAPES:
        lines = pc.replace_substring(lines, seq, placeholder)
    return lines


def _decode_name(name: str, table: dict[str, str]) -> str:
    for placeholder, char in table.items():
        name = name.replace(placeholder, char)
    return name


def _decode_values(values: pa.Array) -> pa.Array:
    for placeholder, char in _DECODE_KEY.items():
        values = pc.replace_substring(values, placeholder, char)
    return values


def parse(
    body: str | bytes,
    precision: str = "auto",
    default_time_ns: int = 0,
) -> ParseResult:
    """Parse a whole body. Invalid UTF-8 raises UnicodeDecodeError (the caller answers 400)."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"invalid precision {precision!r}: use one of auto, s, ms, us, ns "
            "(or second, millisecond, microsecond, nanosecond)"
        )
    raw = bytes(body) if isinstance(body, (bytearray, memoryview)) else body
    if isinstance(raw, bytes):
        special = [c for c in ('"', "\\", "\t", "\x00") if c.encode() in raw]
    else:
        special = [c for c in ('"', "\\", "\t", "\x00") if c in raw]
    newline_escaped = (b"\\\n" in raw) if isinstance(raw, bytes) else ("\\\n" in raw)
    if '"' not in special and not newline_escaped and len(raw) < 1 << 30:
        # Plain bodies are split by Arrow, without a Python string per line.
        whole = pa.array([raw], pa.binary() if isinstance(raw, bytes) else pa.string())
        if isinstance(raw, bytes):
            try:
                whole = whole.cast(pa.string())
            except pa.ArrowInvalid:
                raise UnicodeDecodeError(
                    "utf-8", raw, 0, len(raw), "the body is not valid UTF-8"
                ) from None
        lines = pc.list_flatten(pc.split_pattern(whole, "\n"))
        sp, tab, nl = (" ", "\t", "\n") if isinstance(raw, str) else (b" ", b"\t", b"\n")
        indented = raw[:1] in (sp, tab) or nl + sp in raw or nl + tab in raw
    else:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        lines = pa.array(split_lines(text), pa.string())
        indented = True
    arr = pc.utf8_ltrim(lines, characters=" \t\n") if indented else lines
    keep = pc.and_(
        pc.greater(pc.binary_length(arr), 0),
        pc.invert(pc.starts_with(arr, "#")),
    )
    if not pc.all(keep).as_py():
        arr = arr.filter(keep)
    result = ParseResult(lines=arr)
    n = len(arr)
    if n == 0:
        return result
    all_idx = np.arange(n, dtype=np.int64)
    fast_lines = arr
    escaped = "\\" in special
    if special:
        # lines with quotes, tabs or NULs go to the slow path
        masks = [pc.match_substring(arr, c) for c in special if c != "\\"]
        if escaped:
            # Escapes in names and tag values are encoded as placeholder characters so that
            # the fast path can split on plain separators; they are decoded per column later.
            present = [
                c
                for c in _PLACEHOLDERS
                if (c.encode() in raw if isinstance(raw, bytes) else c in raw)
            ]
            masks += [pc.match_substring(arr, c) for c in present]  # cannot be encoded
            fast_lines = _encode_escapes(arr)
            masks.append(pc.match_substring(fast_lines, "\\"))  # other escapes
            # a name or tag value ending with a backslash is an error: the slow path says so
            masks.append(pc.match_substring_regex(fast_lines, _ENDS_WITH_BACKSLASH))
        mask = masks[0]
        for m in masks[1:]:
            mask = pc.or_(mask, m)
        plain = ~_np(mask)
        candidates, rest = all_idx[plain], all_idx[~plain]
    else:
        candidates, rest = all_idx, all_idx[:0]
    leftover = (
        _fast_path(fast_lines, candidates, precision, default_time_ns, result, escaped)
        if len(candidates)
        else candidates
    )
    slow = np.sort(np.concatenate([rest, leftover]))
    if len(slow):
        slow_lines = arr.take(pa.array(slow, pa.int64())).to_pylist()
        lookup = dict(zip(slow.tolist(), slow_lines, strict=True))
        _slow_path(_LookupLines(lookup), slow, precision, default_time_ns, result)
    return result


class _LookupLines:
    """Index -> line text for the slow path without materialising every line in Python."""

    def __init__(self, lookup: dict[int, str]) -> None:
        self._lookup = lookup

    def __getitem__(self, idx: int) -> str:
        return self._lookup[idx]


def tag_columns(batch: pa.RecordBatch) -> list[str]:
    """Names of the tag columns of a batch built by `resolve`."""
    return [
        f.name
        for f in batch.schema
        if (f.metadata or {}).get(b"iox::column::type") == TAG_METADATA[b"iox::column::type"]
    ]


def _schema_kinds(
    existing: Mapping[str, _TableSchemaLike] | None, table: str
) -> tuple[set[str], dict[str, str]]:
    if not existing or table not in existing:
        return set(), {}
    schema = existing[table]
    kinds = {}
    for name, dtype in schema.fields.items():
        kinds[name] = _ARROW_TO_KIND.get(str(dtype), str(dtype))
    return set(schema.tags), kinds


def resolve(
    result: ParseResult,
    existing: Mapping[str, _TableSchemaLike] | None = None,
) -> tuple[dict[str, pa.RecordBatch], list[LineError]]:
    """Type-check chunks and build one record batch per table.

    A field's type comes from the existing schema or, for a new field, from the earliest line
    that has it; lines disagreeing are rejected with Core's message. A name cannot be a tag and a
    field in one table, and `time` cannot be a tag or field key. Rows keep their line order.
    Returns (batches, errors sorted by line number) with the parse errors included.
    """
    errors = list(result.errors)
    by_table: dict[str, list[Chunk]] = {}
    for chunk in result.chunks:
        by_table.setdefault(chunk.table, []).append(chunk)
    batches: dict[str, pa.RecordBatch] = {}
    for table, chunks in by_table.items():
        schema_tags, schema_kinds = _schema_kinds(existing, table)
        first_field: dict[str, tuple[int, str]] = {}
        first_tag: dict[str, int] = {}
        for chunk in chunks:
            first = int(chunk.line_index.min())
            for name, (kind, _) in chunk.fields.items():
                if name not in first_field or first < first_field[name][0]:
                    first_field[name] = (first, kind)
            for name in chunk.tags:
                if name not in first_tag or first < first_tag[name]:
                    first_tag[name] = first
        kinds = dict(schema_kinds)
        tags = set(schema_tags)
        for name, (first, kind) in first_field.items():
            if name in kinds or name in tags:
                continue
            if name in first_tag and first_tag[name] < first:
                continue  # the name became a tag first
            kinds[name] = kind
        for name in first_tag:
            if name not in kinds:
                tags.add(name)
        good: list[Chunk] = []
        for chunk in chunks:
            message = _chunk_conflict(table, chunk, kinds, tags)
            if message is None:
                good.append(chunk)
                continue
            for idx in chunk.line_index.tolist():
                errors.append(
                    LineError(idx + 1, message.format(line=idx), result.original_line(idx))
                )
        if good:
            batches[table] = _build_batch(good, kinds)
    errors.sort(key=lambda e: e.line_number)
    return batches, errors


def _chunk_conflict(table: str, chunk: Chunk, kinds: dict[str, str], tags: set[str]) -> str | None:
    """Core-style message for the first conflicting column of a chunk, or None."""
    if "time" in chunk.tags or "time" in chunk.fields:
        return (
            f"column name 'time' is reserved for the timestamp in table '{table}': "
            "rename the tag or field"
        )
    for name in chunk.tags:
        if name in chunk.fields:
            return (
                f"column '{name}' appears as both a tag and a field in one line of table "
                f"'{table}': rename one of them"
            )
        if name in kinds:
            return (
                f"invalid column type for column '{name}' in table '{table}': it is a field "
                f"of type {_KIND_TO_CORE_NAME[kinds[name]]}, but the line uses it as a tag"
            )
    for name, (kind, _) in chunk.fields.items():
        if name in tags:
            return (
                f"invalid field value in line protocol for field '{name}' on line {{line}}: "
                f"expected type {_KIND_TO_CORE_NAME['tag']}, "
                f"but got {_KIND_TO_CORE_NAME[kind]}"
            )
        expected = kinds.get(name)
        if expected is not None and expected != kind:
            return (
                f"invalid field value in line protocol for field '{name}' on line {{line}}: "
                f"expected type {_KIND_TO_CORE_NAME.get(expected, expected)}, "
                f"but got {_KIND_TO_CORE_NAME[kind]}"
            )
    return None


def _build_batch(chunks: list[Chunk], kinds: dict[str, str]) -> pa.RecordBatch:
    """Concatenate chunks of one table (missing columns -> nulls), rows in line order."""
    tag_names = sorted({t for c in chunks for t in c.tags})
    field_names = sorted({f for c in chunks for f in c.fields})
    names = sorted([*tag_names, *field_names, "time"])
    types = {t: pa.string() for t in tag_names}
    types.update({f: KIND_TO_ARROW[kinds[f]] for f in field_names})
    types["time"] = pa.timestamp("ns")
    schema = pa.schema(
        [
            pa.field(name, types[name], metadata=TAG_METADATA if name in tag_names else None)
            for name in names
        ]
    )
    tables = []
    for c in chunks:
        n = len(c)
        cols = []
        for name in names:
            if name == "time":
                cols.append(pa.array(c.time, pa.int64()).cast(pa.timestamp("ns")))
            elif name in c.tags:
                cols.append(c.tags[name])
            elif name in c.fields:
                cols.append(c.fields[name][1])
            else:
                cols.append(pa.nulls(n, types[name]))
        tables.append(pa.Table.from_arrays(cols, schema=schema))
    if len(tables) == 1:
        table = tables[0]
        order = chunks[0].line_index
        if len(order) > 1 and not bool(np.all(order[1:] >= order[:-1])):
            table = table.take(pa.array(np.argsort(order, kind="stable")))
    else:
        table = pa.concat_tables(tables)
        order = np.concatenate([c.line_index for c in chunks])
        table = table.take(pa.array(np.argsort(order, kind="stable")))
    return table.combine_chunks().to_batches()[0]
