"""Vectorised Arrow -> InfluxDB line protocol encoder (pyarrow.compute, no per-row Python loop).

Why: the official DataFrame serializer formats one row at a time in Python (~0.14 M rows/s);
write-back of downsampled or transferred data needs an encoder that runs at Arrow speed and
keeps, for every emitted line, the input row it came from (so the server's partial-write line
numbers can be mapped back to rows).

Escaping follows the InfluxDB 3 (IOx) parser, ``influxdb_line_protocol``:

* measurement: ``,`` and space (and ``\\``) are escaped with a backslash;
* tag keys, tag values and field keys: ``,`` ``=`` space (and ``\\``);
* string field values: ``"`` and ``\\`` inside double quotes; newlines are kept as they are
  (the server splits lines outside quotes only).

Values line protocol cannot carry are refused with :class:`EncodingError` before anything is
sent: identifiers containing a newline or tab, identifiers ending in a backslash (the server
rejects them), null timestamps. Null and NaN/inf fields are left out, null or empty tags are left
out, and rows left without any field are skipped and counted.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influx_flight._exceptions import ConfigurationError, EncodingError
from influx_flight._options import DEFAULT_BATCH_ROWS
from influx_flight.time import PRECISIONS, normalize_precision

__all__ = [
    "PRECISIONS",
    "EncodedBody",
    "EncodedChunk",
    "EncodedLines",
    "EncodingError",
    "encode_table",
    "iter_encode",
    "normalize_precision",
    "pack_bodies",
    "to_record_batches",
]

_UNIT_PER_S = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}

_BAD_IDENT = r"[\n\t]|\\$"  # characters an identifier or tag value cannot carry


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedBody:
    """One request body: complete newline-terminated lines and the input row of each line."""

    data: memoryview
    row_index: np.ndarray

    @property
    def lines(self) -> int:
        return len(self.row_index)

    def __len__(self) -> int:
        return self.data.nbytes


@dataclass(frozen=True)
class EncodedChunk:
    """Line protocol for one slice of the input.

    ``lines`` is a string array whose values each end with ``\\n``, so any run of consecutive
    lines is one contiguous slice of its data buffer (request bodies are cut without copying).
    ``row_index[i]`` is the input row of line ``i``.
    """

    lines: pa.Array
    row_index: np.ndarray
    rows: int
    rows_skipped: int

    @property
    def line_count(self) -> int:
        return len(self.lines)

    def _offsets_and_data(self) -> tuple[np.ndarray, memoryview]:
        arr = self.lines
        offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)[
            arr.offset : arr.offset + len(arr) + 1
        ]
        data_buf = arr.buffers()[2]
        data = memoryview(data_buf) if data_buf is not None else memoryview(b"")
        return offsets, data

    @property
    def nbytes(self) -> int:
        if not len(self.lines):
            return 0
        offsets, _ = self._offsets_and_data()
        return int(offsets[-1] - offsets[0])

    def text(self) -> str:
        """The lines as one string (newline-terminated)."""
        return bytes(self.body()).decode("utf-8")

    def body(self) -> memoryview:
        """All lines as one contiguous buffer (no copy)."""
        if not len(self.lines):
            return memoryview(b"")
        offsets, data = self._offsets_and_data()
        return data[int(offsets[0]) : int(offsets[-1])]

    def split(self, max_bytes: int) -> Iterator[EncodedBody]:
        """Cut into bodies of at most ``max_bytes`` (a single longer line goes alone)."""
        if max_bytes <= 0:
            raise ConfigurationError("max_bytes must be positive", field="max_body_bytes")
        n = len(self.lines)
        if not n:
            return
        offsets, data = self._offsets_and_data()
        start = 0
        while start < n:
            limit = offsets[start] + max_bytes
            end = int(np.searchsorted(offsets, limit, side="right")) - 1
            end = min(max(end, start + 1), n)
            yield EncodedBody(
                data=data[int(offsets[start]) : int(offsets[end])],
                row_index=self.row_index[start:end],
            )
            start = end


@dataclass(frozen=True)
class EncodedLines:
    """The whole encoded input: its chunks plus totals."""

    chunks: list[EncodedChunk] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return sum(c.rows for c in self.chunks)

    @property
    def rows_skipped(self) -> int:
        return sum(c.rows_skipped for c in self.chunks)

    @property
    def line_count(self) -> int:
        return sum(c.line_count for c in self.chunks)

    @property
    def nbytes(self) -> int:
        return sum(c.nbytes for c in self.chunks)

    @property
    def row_index(self) -> np.ndarray:
        if not self.chunks:
            return np.empty(0, dtype=np.int64)
        return np.concatenate([c.row_index for c in self.chunks])

    def text(self) -> str:
        return "".join(c.text() for c in self.chunks)

    def lines(self) -> list[str]:
        """The lines without their trailing newline (for tests and debugging)."""
        out: list[str] = []
        for c in self.chunks:
            out.extend(s[:-1] for s in c.lines.to_pylist())
        return out

    def split(self, max_bytes: int) -> Iterator[EncodedBody]:
        yield from pack_bodies(self.chunks, max_bytes)


def pack_bodies(chunks: Iterable[EncodedChunk], max_bytes: int) -> Iterator[EncodedBody]:
    """Fill request bodies of at most ``max_bytes`` with whole lines across chunk boundaries.

    A body within one chunk is a zero-copy slice; a body spanning chunks is concatenated. A
    single line longer than ``max_bytes`` goes alone (the server decides).
    """
    if max_bytes <= 0:
        raise ConfigurationError("max_bytes must be positive", field="max_body_bytes")
    parts: list[tuple[memoryview, np.ndarray]] = []
    size = 0

    def flush() -> EncodedBody:
        if len(parts) == 1:
            body = EncodedBody(data=parts[0][0], row_index=parts[0][1])
        else:
            body = EncodedBody(
                data=memoryview(b"".join(p[0] for p in parts)),
                row_index=np.concatenate([p[1] for p in parts]),
            )
        parts.clear()
        return body

    for chunk in chunks:
        n = chunk.line_count
        if not n:
            continue
        offsets, data = chunk._offsets_and_data()
        start = 0
        while start < n:
            room = max_bytes - size
            end = min(int(np.searchsorted(offsets, offsets[start] + room, side="right")) - 1, n)
            if end <= start:  # the next line does not fit in what is left
                if size:
                    yield flush()
                    size = 0
                    continue
                end = start + 1
            parts.append(
                (data[int(offsets[start]) : int(offsets[end])], chunk.row_index[start:end])
            )
            size += int(offsets[end] - offsets[start])
            start = end
    if parts:
        yield flush()


# --- input normalisation ----------------------------------------------------------------------


def _is_pandas(obj: object) -> bool:
    return type(obj).__module__.split(".", 1)[0] == "pandas" and hasattr(obj, "columns")


def _pandas_to_table(df: Any, time_column: str | None) -> pa.Table:
    """DataFrame -> Table; a DatetimeIndex becomes the time column when none exists."""
    import pandas as pd

    table = pa.Table.from_pandas(df, preserve_index=False)
    if (
        time_column is not None
        and time_column not in table.column_names
        and isinstance(df.index, pd.DatetimeIndex)
    ):
        table = table.append_column(time_column, pa.array(df.index))
    return table


def to_record_batches(
    data: Any, *, time_column: str | None = "time"
) -> tuple[pa.Schema | None, Iterator[pa.RecordBatch]]:
    """Accept a Table, RecordBatch, RecordBatchReader, pandas DataFrame, anything exposing the
    Arrow C stream interface, or an iterable of RecordBatches; return (schema, batches).

    The schema is None only for an empty iterable of batches (there is nothing to write)."""
    if _is_pandas(data):
        data = _pandas_to_table(data, time_column)
    if isinstance(data, pa.RecordBatch):
        return data.schema, iter([data])
    if isinstance(data, pa.Table):
        return data.schema, iter(data.to_batches())
    if isinstance(data, pa.RecordBatchReader):
        return data.schema, iter(data)
    if hasattr(data, "__arrow_c_stream__"):
        reader = pa.RecordBatchReader.from_stream(data)
        return reader.schema, iter(reader)
    if isinstance(data, Iterable) and not isinstance(data, (str, bytes)):
        it = iter(data)
        try:
            first = next(it)
        except StopIteration:
            return None, iter(())  # an empty stream: nothing to write
        if isinstance(first, pa.Table):
            first_batches = first.to_batches()
            schema = first.schema
        elif isinstance(first, pa.RecordBatch):
            first_batches = [first]
            schema = first.schema
        else:
            raise ConfigurationError(
                f"cannot write an iterable of {type(first).__name__}; "
                "it must yield pyarrow RecordBatches or Tables",
                field="data",
            )

        def _gen() -> Iterator[pa.RecordBatch]:
            yield from first_batches
            for item in it:
                yield from (item.to_batches() if isinstance(item, pa.Table) else [item])

        return schema, _gen()
    raise ConfigurationError(
        f"cannot write {type(data).__name__}; pass a pyarrow Table, RecordBatch, "
        "RecordBatchReader, an iterable of RecordBatches or a pandas DataFrame",
        field="data",
    )


# --- escaping ---------------------------------------------------------------------------------------


def _escape_key(name: str, what: str) -> str:
    """Escape a measurement, tag key or field key given as a Python str (validated)."""
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"the {what} must be a non-empty string, got {name!r}", field=what)
    if "\n" in name or "\t" in name or "\0" in name:
        raise ConfigurationError(
            f"the {what} {name!r} contains a newline, tab or NUL, which line protocol cannot "
            "carry; rename it",
            field=what,
        )
    if name.endswith("\\"):
        raise ConfigurationError(
            f"the {what} {name!r} ends with a backslash, which InfluxDB rejects; rename it",
            field=what,
        )
    out = name.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")
    if what != "measurement":
        out = out.replace("=", "\\=")
    elif name.startswith("#"):
        raise ConfigurationError(
            f"the measurement {name!r} starts with '#', which makes every line a comment; "
            "rename it",
            field=what,
        )
    return out


def _escape_tag_values(arr: pa.Array) -> pa.Array:
    """Escape backslash, comma, equals and space in a string array (vectorised)."""
    if len(arr) and pc.any(pc.match_substring_regex(arr, r"[\\, =]")).as_py():
        arr = pc.replace_substring_regex(arr, r"([\\, =])", r"\\\1")
    return arr


def _bytes_present(arr: pa.Array, chars: bytes) -> bool:
    """Whether any of ``chars`` occurs in a string array's values (one scan of its buffer)."""
    if not len(arr) or arr.null_count == len(arr):
        return False
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int32)
    lo, hi = int(offsets[arr.offset]), int(offsets[arr.offset + len(arr)])
    data_buf = arr.buffers()[2]
    if data_buf is None or hi <= lo:
        return False
    data = np.frombuffer(data_buf, dtype=np.uint8)[lo:hi]
    return any(bool((data == c).any()) for c in chars)


def _escape_string_field(arr: pa.Array) -> pa.Array:
    if _bytes_present(arr, b'"\\'):
        arr = pc.replace_substring_regex(arr, r'([\\"])', r"\\\1")
    return arr


# --- column planning --------------------------------------------------------------------------------


_FIELD_KINDS = ("float", "int", "uint", "bool", "string")


def _field_kind(t: pa.DataType) -> str | None:
    if pa.types.is_dictionary(t):
        return _field_kind(t.value_type)
    if pa.types.is_floating(t) or pa.types.is_decimal(t):
        return "float"
    if pa.types.is_signed_integer(t):
        return "int"
    if pa.types.is_unsigned_integer(t):
        return "uint"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t):
        return "string"
    if pa.types.is_null(t):
        return "null"
    return None


@dataclass(frozen=True)
class _Plan:
    measurement: str  # escaped
    time_column: str | None
    time_kind: str | None  # "timestamp" | "int"
    time_unit: str | None
    precision: str
    tags: list[tuple[str, str]]  # (column, escaped key) sorted by key
    fields: list[tuple[str, str, str]]  # (column, "escaped_key=", kind)


def _plan(
    schema: pa.Schema,
    *,
    measurement: str,
    tags: Sequence[str],
    time_column: str | None,
    precision: str,
    field_columns: Sequence[str] | None,
) -> _Plan:
    names = schema.names
    if len(set(names)) != len(names):
        dupes = sorted({n for n in names if names.count(n) > 1})
        raise ConfigurationError(f"duplicate column names {dupes}; rename them", field="data")
    meas = _escape_key(measurement, "measurement")
    prec = normalize_precision(precision)
    if isinstance(tags, str):
        tags = [tags]
    if isinstance(field_columns, str):
        field_columns = [field_columns]

    time_kind = time_unit = None
    if time_column is not None:
        if time_column not in names:
            raise ConfigurationError(
                f"time column {time_column!r} is not in the data (columns: {names}); pass "
                "time_column=<name>, or time_column=None to let the server stamp the points",
                field="time_column",
            )
        t = schema.field(time_column).type
        if pa.types.is_timestamp(t):
            time_kind, time_unit = "timestamp", t.unit
        elif pa.types.is_date(t):
            time_kind, time_unit = "timestamp", "ms"
        elif pa.types.is_integer(t):
            time_kind = "int"
        else:
            raise ConfigurationError(
                f"time column {time_column!r} has type {t}; it must be a timestamp, a date or "
                f"an integer already in precision {prec!r}",
                field="time_column",
            )

    tag_list: list[tuple[str, str]] = []
    for tag in dict.fromkeys(tags):
        if tag not in names:
            raise ConfigurationError(
                f"tag column {tag!r} is not in the data (columns: {names})", field="tags"
            )
        if tag == time_column:
            raise ConfigurationError(f"the time column {tag!r} cannot be a tag", field="tags")
        if tag == "time":
            raise ConfigurationError("'time' is reserved and cannot be a tag key", field="tags")
        t = schema.field(tag).type
        if _field_kind(t) not in (*_FIELD_KINDS, "null"):
            raise ConfigurationError(
                f"tag column {tag!r} has type {t}; tags must be strings or numbers/booleans "
                "(converted to text)",
                field="tags",
            )
        tag_list.append((tag, _escape_key(tag, "tag key")))
    tag_list.sort(key=lambda kv: kv[0].encode("utf-8"))

    if field_columns is None:
        candidates = [n for n in names if n != time_column and n not in dict(tag_list)]
    else:
        candidates = list(dict.fromkeys(field_columns))
        for f in candidates:
            if f not in names:
                raise ConfigurationError(
                    f"field column {f!r} is not in the data (columns: {names})",
                    field="field_columns",
                )
            if f == time_column or f in dict(tag_list):
                raise ConfigurationError(
                    f"column {f!r} cannot be both a field and the time column or a tag",
                    field="field_columns",
                )
    field_list: list[tuple[str, str, str]] = []
    for f in candidates:
        t = schema.field(f).type
        kind = _field_kind(t)
        if kind is None:
            raise ConfigurationError(
                f"field column {f!r} has type {t}, which line protocol cannot carry (float, "
                "integer, unsigned, boolean, string); cast it or leave it out with "
                "field_columns=[...]",
                field="field_columns",
            )
        if kind == "null":
            continue  # an all-null column contributes nothing to any line
        if f == "time":
            raise ConfigurationError(
                "a field cannot be named 'time' (reserved); rename the column or pass "
                "time_column='time'",
                field="field_columns",
            )
        field_list.append((f, _escape_key(f, "field key") + "=", kind))
    if not field_list:
        raise ConfigurationError(
            "the data has no field columns: every column is the time column or a tag "
            f"(columns: {names}, tags: {list(tags)})",
            field="field_columns",
        )
    return _Plan(meas, time_column, time_kind, time_unit, prec, tag_list, field_list)


# --- encoding ---------------------------------------------------------------------------------------


def _decode(arr: pa.Array) -> pa.Array:
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    return arr


def _as_string(arr: pa.Array) -> pa.Array:
    t = arr.type
    if pa.types.is_string(t):
        return arr
    if pa.types.is_boolean(t):
        return pc.if_else(arr, "true", "false")
    return arr.cast(pa.string())


def _bad_rows(mask: pa.Array, row_offset: int) -> list[int]:
    idx = np.flatnonzero(mask.to_numpy(zero_copy_only=False))[:10]
    return [int(i) + row_offset for i in idx]


def _tag_values(arr: pa.Array, col: str, row_offset: int) -> pa.Array:
    """Escaped tag values per row, null where the tag is null or empty (left out of the line).

    Tags repeat, so the distinct values are validated and escaped once and then expanded, even
    for high-cardinality tags.
    """
    if not pa.types.is_dictionary(arr.type):
        arr = pc.dictionary_encode(_as_string(arr))
    dictionary = _as_string(arr.dictionary)
    _check_ident_values(dictionary, col, row_offset, indices=arr.indices)
    esc = _escape_tag_values(dictionary)
    if len(esc) and pc.any(pc.equal(pc.binary_length(esc), 0)).as_py():
        esc = pc.if_else(pc.equal(pc.binary_length(esc), 0), pa.scalar(None, pa.string()), esc)
    return esc.take(arr.indices)


def _check_ident_values(
    values: pa.Array, col: str, row_offset: int, *, indices: pa.Array | None = None
) -> None:
    if not len(values):
        return
    bad = pc.match_substring_regex(values, _BAD_IDENT)
    if not pc.any(bad).as_py():
        return
    if indices is not None:
        bad = bad.take(indices)
        if not pc.any(bad).as_py():
            return  # only unused dictionary entries are bad
    rows = _bad_rows(pc.fill_null(bad, False), row_offset)
    raise EncodingError(
        f"tag column {col!r} holds values line protocol cannot carry (a newline or tab, or a "
        f"trailing backslash) at rows {rows}; clean or drop those values",
        column=col,
        rows=rows,
    )


def _field_text(arr: pa.Array, prefix: str, kind: str) -> tuple[str, pa.Array, str]:
    """(``key=`` prefix, value text per row, suffix); the text is null where the value is null
    or NaN/inf (left out of the line)."""
    arr = _decode(arr)
    if kind == "float":
        if pa.types.is_decimal(arr.type):
            arr = arr.cast(pa.float64())
        elif arr.type == pa.float16():
            arr = arr.cast(pa.float32())
        text = arr.cast(pa.string())
        finite = pc.is_finite(arr)
        if finite.null_count != len(finite) and not pc.all(finite).as_py():
            text = pc.if_else(finite, text, pa.scalar(None, pa.string()))
        return prefix, text, ""
    if kind == "int":
        return prefix, arr.cast(pa.string()), "i"
    if kind == "uint":
        return prefix, arr.cast(pa.string()), "u"
    if kind == "bool":
        return prefix, pc.if_else(arr, "t", "f"), ""
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return prefix + '"', _escape_string_field(arr), '"'


def _piece(prefix: str, text: pa.Array, suffix: str) -> pa.Array:
    """``prefix + text + suffix`` per row, null where ``text`` is null."""
    return pc.binary_join_element_wise(prefix, text, suffix, "")


def _timestamps(arr: pa.Array, plan: _Plan, row_offset: int) -> pa.Array:
    arr = _decode(arr)
    if arr.null_count:
        rows = _bad_rows(arr.is_null(), row_offset)
        raise EncodingError(
            f"time column {plan.time_column!r} is null at rows {rows} ({arr.null_count} rows in "
            "all); fill or drop them (a point without a timestamp gets the server's clock, which "
            "breaks idempotent re-runs)",
            column=plan.time_column,
            rows=rows,
        )
    if plan.time_kind == "int":
        return arr.cast(pa.int64()).cast(pa.string())
    if pa.types.is_date(arr.type):
        arr = arr.cast(pa.timestamp("ms"))
    src = _UNIT_PER_S[arr.type.unit]
    dst = _UNIT_PER_S[plan.precision]
    if src == dst:
        return arr.cast(pa.int64()).cast(pa.string())
    values = arr.cast(pa.int64()).to_numpy()
    if dst > src:
        factor = dst // src
        limit = np.iinfo(np.int64).max // factor
        if len(values) and (values.max() > limit or values.min() < -limit):
            raise EncodingError(
                f"time column {plan.time_column!r} holds instants that overflow int64 at "
                f"precision {plan.precision!r}; use a coarser precision",
                column=plan.time_column,
            )
        values = values * factor
    elif src > dst:
        values = np.floor_divide(values, src // dst)
    return pa.array(values, type=pa.int64()).cast(pa.string())


def _encode_batch(batch: pa.RecordBatch, plan: _Plan, row_offset: int) -> EncodedChunk:
    """Encode one slice. Every line is built by a single ``binary_join_element_wise`` over
    scalar separators and per-column text arrays; columns with nulls contribute a piece that is
    null (replaced by "") where the value is missing."""
    n = batch.num_rows
    fields = [_field_text(batch.column(col), prefix, kind) for col, prefix, kind in plan.fields]
    # Field order in a line is free: lead with a field that is never missing, so that every
    # other field can carry its own leading comma and missing ones simply vanish.
    lead = next((i for i, f in enumerate(fields) if f[1].null_count == 0), None)
    mask: pa.Array | None = None
    field_parts: list[Any]
    if lead is not None:
        row_index = np.arange(row_offset, row_offset + n, dtype=np.int64)
        skipped = 0
        prefix, text, suffix = fields[lead]
        field_parts = [prefix, text, suffix]
        for i, (prefix, text, suffix) in enumerate(fields):
            if i == lead:
                continue
            if text.null_count == 0:
                field_parts += ["," + prefix, text, suffix]
            else:
                field_parts.append(_piece("," + prefix, text, suffix))
    else:
        pieces = [_piece(*f) for f in fields]
        has_field = pieces[0].is_valid()
        for p in pieces[1:]:
            has_field = pc.or_(has_field, p.is_valid())
        keep = has_field.to_numpy(zero_copy_only=False)
        row_index = np.flatnonzero(keep).astype(np.int64) + row_offset
        skipped = n - len(row_index)
        if not len(row_index):
            return EncodedChunk(pa.array([], pa.string()), row_index, n, skipped)
        if skipped:
            mask = pa.array(keep)
            pieces = [p.filter(mask) for p in pieces]
        # No row is all-null now (pyarrow drops all-null rows under null_handling="skip").
        field_parts = [
            pieces[0]
            if len(pieces) == 1
            else pc.binary_join_element_wise(*pieces, ",", null_handling="skip")
        ]

    def sel(a: pa.Array) -> pa.Array:
        return a if mask is None else a.filter(mask)

    parts: list[Any] = [plan.measurement]
    for col, key in plan.tags:
        values = sel(_tag_values(batch.column(col), col, row_offset))
        if values.null_count == 0:
            parts += ["," + key + "=", values]
        else:
            parts.append(_piece("," + key + "=", values, ""))
    parts.append(" ")
    parts += field_parts
    if plan.time_column is not None:
        parts += [" ", sel(_timestamps(batch.column(plan.time_column), plan, row_offset))]
    parts.append("\n")
    parts = [p for p in parts if not (isinstance(p, str) and p == "")]
    lines = pc.binary_join_element_wise(*parts, "", null_handling="replace", null_replacement="")
    if isinstance(lines, pa.ChunkedArray):
        lines = lines.combine_chunks()
    if len(lines) != len(row_index):  # guard against compute-kernel surprises
        raise AssertionError(f"encoder produced {len(lines)} lines for {len(row_index)} rows")
    return EncodedChunk(lines, row_index, n, skipped)


def iter_encode(
    data: Any,
    *,
    measurement: str,
    tags: Sequence[str] = (),
    time_column: str | None = "time",
    precision: str = "ns",
    field_columns: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int = 1,
) -> Iterator[EncodedChunk]:
    """Encode ``data`` lazily, one chunk per at most ``batch_rows`` input rows.

    Streams stay streams: a RecordBatchReader or query result is consumed batch by batch.
    ``row_index`` counts rows across the whole input. With ``threads > 1`` slices are encoded
    concurrently (pyarrow.compute releases the GIL), at most ``2 * threads`` ahead, in order.
    """
    schema, batches = to_record_batches(data, time_column=time_column)
    if schema is None:
        return
    plan = _plan(
        schema,
        measurement=measurement,
        tags=tags,
        time_column=time_column,
        precision=precision,
        field_columns=field_columns,
    )
    step = max(1, batch_rows)

    def slices() -> Iterator[tuple[pa.RecordBatch, int]]:
        offset = 0
        for batch in batches:
            if batch.schema != schema and batch.schema.names != schema.names:
                raise ConfigurationError(
                    "the batches do not share one schema; got columns "
                    f"{batch.schema.names} after {schema.names}",
                    field="data",
                )
            for start in range(0, batch.num_rows, step):
                part = batch.slice(start, step)
                yield part, offset
                offset += part.num_rows

    if threads <= 1:
        for part, offset in slices():
            yield _encode_batch(part, plan, offset)
        return
    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="lp-encode") as pool:
        pending: deque[Future[EncodedChunk]] = deque()
        try:
            for part, offset in slices():
                pending.append(pool.submit(_encode_batch, part, plan, offset))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:
                f.cancel()


def encode_table(
    table_or_batch: Any,
    *,
    measurement: str,
    tags: Sequence[str] = (),
    time_column: str | None = "time",
    precision: str = "ns",
    field_columns: Sequence[str] | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
) -> EncodedLines:
    """Encode a Table, RecordBatch or DataFrame to line protocol, all at once (``threads``:
    slices encoded concurrently; default: up to 4 by CPU count).

    Example: ``encode_table(t, measurement="home", tags=["room"]).text()``.
    """
    return EncodedLines(
        list(
            iter_encode(
                table_or_batch,
                measurement=measurement,
                tags=tags,
                time_column=time_column,
                precision=precision,
                field_columns=field_columns,
                batch_rows=batch_rows,
                threads=threads if threads is not None else min(4, os.cpu_count() or 1),
            )
        )
    )


EncodingError.__module__ = "influx_flight"
