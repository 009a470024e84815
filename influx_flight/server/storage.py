"""How the stand-in stores tables, with InfluxDB 3's table model (``influxdb3-protocol.md`` §5).

* a database holds tables; every table has ``time`` (``timestamp[ns]``, no time zone, not
  null), tags stored as ``Dictionary(Int32, Utf8)`` and fields of type float64, int64, uint64,
  utf8 or bool;
* a table's columns are kept sorted by name, so ``SELECT *`` is alphabetical, ``time`` included;
* the schema grows as new columns arrive; rows written before a column existed read as null;
* a point is (tag set, time): rewriting one replaces it (upsert), as InfluxDB 3 does.

``_Table`` holds one table's batches; the engine (``engine.py``) keeps the catalog and runs
queries over snapshots of them. The ``hydrate_*`` helpers give columns their wire types (tags
as Utf8).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influx_flight.server.errors import InvalidDatabaseName, WriteRejected

TIME_COLUMN = "time"
TIME_TYPE = pa.timestamp("ns")
TAG_TYPE = pa.dictionary(pa.int32(), pa.utf8())
FIELD_TYPES: tuple[pa.DataType, ...] = (
    pa.float64(),
    pa.int64(),
    pa.uint64(),
    pa.utf8(),
    pa.bool_(),
)

#: Field metadata key and values as IOx puts them on every column (``core/schema``).
COLUMN_TYPE_KEY = b"iox::column::type"
_FIELD_TYPE_NAMES = {
    pa.float64(): "iox::column_type::field::float",
    pa.int64(): "iox::column_type::field::integer",
    pa.uint64(): "iox::column_type::field::uinteger",
    pa.utf8(): "iox::column_type::field::string",
    pa.bool_(): "iox::column_type::field::boolean",
}
_TAG_TYPE_NAME = "iox::column_type::tag"
_TIME_TYPE_NAME = "iox::column_type::timestamp"

#: Small batches are merged once this many accumulate at the tail of a table, so frequent
#: WAL flushes do not leave DataFusion scanning thousands of tiny batches. "Small" is below
#: DataFusion's own batch size: bigger merges would only re-copy rows without helping scans.
_MERGE_TAIL_BATCHES = 32
_SMALL_BATCH_ROWS = 8192

_DB_NAME_MAX = 511
_DB_NAME_CHARS = re.compile(r"^[A-Za-z0-9_\-/]*$")


@dataclass(frozen=True)
class TableSchema:
    """Public view of a table: its tag names (sorted) and field types."""

    tags: list[str]
    fields: dict[str, pa.DataType]


def validate_database_name(name: str) -> None:
    """Core's ``validate_db_name`` rules; raises :class:`InvalidDatabaseName` (HTTP 400)."""
    if not isinstance(name, str) or name == "":
        raise InvalidDatabaseName("db name cannot be empty")
    if len(name) > _DB_NAME_MAX:
        raise InvalidDatabaseName(f"db name is longer than {_DB_NAME_MAX} characters")
    if not name[0].isascii() or not name[0].isalnum():
        raise InvalidDatabaseName("db name did not start with a number or letter")
    if not _DB_NAME_CHARS.match(name) or name.count("/") > 1:
        bad = next(
            (c for c in name if not (c.isascii() and (c.isalnum() or c in "_-/"))),
            "/",
        )
        raise InvalidDatabaseName(f"invalid character in database or rp name: {bad}")


def table_definition_batch(
    table: str, tags: Sequence[str], fields: Mapping[str, pa.DataType] | None = None
) -> pa.RecordBatch:
    """An empty batch with the columns of a table definition; raises WriteRejected if bad."""
    if not isinstance(table, str) or not table:
        raise WriteRejected("table name cannot be empty")
    fields = dict(fields or {})
    names = [TIME_COLUMN, *tags, *fields]
    if not all(isinstance(n, str) and n for n in names):
        raise WriteRejected(f"table '{table}': tag and field names must be non-empty strings")
    if len(set(names)) != len(names):
        raise WriteRejected(f"table '{table}': tag and field names must be distinct and not 'time'")
    for name, dtype in fields.items():
        if dtype not in FIELD_TYPES:
            raise WriteRejected(f"field '{name}' has unsupported type {dtype}")
    columns = {TIME_COLUMN: pa.array([], TIME_TYPE)}
    columns.update({t: pa.array([], TAG_TYPE) for t in tags})
    columns.update({n: pa.array([], d) for n, d in fields.items()})
    return pa.RecordBatch.from_pydict(columns)


def _kind_name(kind: str, dtype: pa.DataType) -> str:
    if kind == "tag":
        return _TAG_TYPE_NAME
    if kind == "time":
        return _TIME_TYPE_NAME
    return _FIELD_TYPE_NAMES[dtype]


def _schema_field(name: str, kind: str, dtype: pa.DataType) -> pa.Field:
    meta = {COLUMN_TYPE_KEY: _kind_name(kind, dtype).encode()}
    return pa.field(name, dtype, nullable=kind != "time", metadata=meta)


def _is_string(dtype: pa.DataType) -> bool:
    return (
        pa.types.is_string(dtype)
        or pa.types.is_large_string(dtype)
        or pa.types.is_string_view(dtype)
    )


def _classify(batch_field: pa.Field) -> tuple[str, pa.DataType]:
    """(kind, stored type) of an incoming column; raises WriteRejected for unusable types."""
    name, dtype = batch_field.name, batch_field.type
    meta = batch_field.metadata or {}
    declared = meta.get(COLUMN_TYPE_KEY, b"").decode()
    if name == TIME_COLUMN:
        if pa.types.is_timestamp(dtype) or pa.types.is_integer(dtype):
            return "time", TIME_TYPE
        raise WriteRejected(f"column 'time' must be a timestamp, got {dtype}")
    if declared == _TAG_TYPE_NAME or (
        pa.types.is_dictionary(dtype) and _is_string(dtype.value_type)
    ):
        if pa.types.is_dictionary(dtype) and not _is_string(dtype.value_type):
            raise WriteRejected(f"tag column '{name}' must hold strings, got {dtype}")
        if (
            not pa.types.is_dictionary(dtype)
            and not _is_string(dtype)
            and not pa.types.is_null(dtype)
        ):
            raise WriteRejected(f"tag column '{name}' must hold strings, got {dtype}")
        return "tag", TAG_TYPE
    if _is_string(dtype):
        return "field", pa.utf8()
    if dtype in FIELD_TYPES:
        return "field", dtype
    raise WriteRejected(
        f"column '{name}' has type {dtype}; fields must be float64, int64, uint64, utf8 or bool"
        " and tags Dictionary(Int32, Utf8)"
    )


def _to_time(array: pa.Array) -> pa.Array:
    """Any integer (ns) or timestamp column as ``timestamp[ns]`` without time zone (UTC)."""
    if pa.types.is_timestamp(array.type):
        if array.type.tz is not None:
            array = array.cast(pa.timestamp(array.type.unit))  # keeps the UTC instant
        return array.cast(TIME_TYPE)
    return (
        array.cast(pa.int64()).view(TIME_TYPE)
        if array.type != pa.int64()
        else array.view(TIME_TYPE)
    )


class _Table:
    """One table's columns and batches; every stored batch conforms to ``schema``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.kinds: dict[str, tuple[str, pa.DataType]] = {}
        self.schema: pa.Schema = pa.schema([])
        self.batches: list[pa.RecordBatch] = []
        self.version = 0
        # id(stored batch) -> (stored batch, the same rows with tags as Utf8); filled lazily by
        # pure-scan queries so repeated exports do not re-cast the dictionaries.
        self.hydrated: dict[int, tuple[pa.RecordBatch, pa.RecordBatch]] = {}
        # id(stored batch) -> (batch, its gen1 windows): the file accounting of file_limit.py
        self.file_windows: dict[int, tuple[pa.RecordBatch, Any]] = {}
        # id(stored batch) -> (batch, min time, max time, sorted by time): lets a time-range
        # scan skip, take whole or binary-search each batch instead of filtering every row.
        self.time_spans: dict[int, tuple[pa.RecordBatch, int, int, bool]] = {}
        # Upsert bookkeeping: a point is (tag set, time); rewriting one must replace it, as
        # InfluxDB 3 does. Appends that only move forward in time with distinct keys (the
        # common case) cost one min/max; anything else marks the table for a deduplication
        # pass before the next snapshot.
        self.max_time: int | None = None
        self.needs_dedup = False

    def hydrated_batches(self, batches: Sequence[pa.RecordBatch]) -> list[pa.RecordBatch]:
        """``batches`` (a snapshot of this table) with tags cast to Utf8, cached per batch.

        Called without the engine lock; the cache dict is only mutated by single assignments
        (atomic under the GIL) and pruned under the lock in :meth:`append`.
        """
        target = hydrate_schema(batches[0].schema) if batches else hydrate_schema(self.schema)
        out = []
        for batch in batches:
            cached = self.hydrated.get(id(batch))
            if cached is None or cached[0] is not batch:
                cached = (batch, hydrate_batch(batch, target))
                self.hydrated[id(batch)] = cached
            out.append(cached[1])
        return out

    def time_slices(
        self,
        batches: Sequence[pa.RecordBatch],
        hydrated: Sequence[pa.RecordBatch],
        low: int,
        high: int,
    ) -> list[pa.RecordBatch]:
        """The rows of ``hydrated`` (``batches`` hydrated) with ``low <= time <= high``, in
        stored order. Batches outside the range are skipped and batches inside it taken whole
        (by their cached min/max); a batch the range cuts is sliced by binary search when it is
        sorted by time (appends in time order are) and filtered otherwise. So a window's scan
        costs its own rows, not the table's. Called without the engine lock, like
        :meth:`hydrated_batches`."""
        out = []
        for batch, rows in zip(batches, hydrated, strict=True):
            span = self.time_spans.get(id(batch))
            times = None
            if span is None or span[0] is not batch:
                times = batch.column(TIME_COLUMN).view(pa.int64()).to_numpy(zero_copy_only=False)
                if not len(times):
                    continue
                ordered = bool(np.all(times[1:] >= times[:-1]))
                span = (batch, int(times.min()), int(times.max()), ordered)
                self.time_spans[id(batch)] = span
            _, first, last, ordered = span
            if last < low or first > high:
                continue
            if low <= first and last <= high:
                out.append(rows)
                continue
            if times is None:
                times = batch.column(TIME_COLUMN).view(pa.int64()).to_numpy(zero_copy_only=False)
            if ordered:
                start = int(np.searchsorted(times, low, side="left"))
                end = int(np.searchsorted(times, high, side="right"))
                if end > start:
                    out.append(rows.slice(start, end - start))
            else:
                mask = (times >= low) & (times <= high)
                if mask.any():
                    out.append(rows.filter(pa.array(mask)))
        return out

    def table_schema(self) -> TableSchema:
        tags = [n for n, (k, _t) in self.kinds.items() if k == "tag"]
        fields = {n: t for n, (k, t) in self.kinds.items() if k == "field"}
        return TableSchema(tags=sorted(tags), fields=dict(sorted(fields.items())))

    def _rebuild_schema(self) -> None:
        names = sorted(self.kinds)
        self.schema = pa.schema([_schema_field(n, *self.kinds[n]) for n in names])

    def _conform(self, columns: Mapping[str, pa.Array], num_rows: int) -> pa.RecordBatch:
        arrays = []
        for fld in self.schema:
            arr = columns.get(fld.name)
            arrays.append(arr if arr is not None else pa.nulls(num_rows, fld.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def append(self, batch: pa.RecordBatch) -> None:
        if TIME_COLUMN not in batch.schema.names:
            raise WriteRejected(f"batch for table '{self.name}' has no 'time' column")
        if len(set(batch.schema.names)) != len(batch.schema.names):
            raise WriteRejected(f"batch for table '{self.name}' has duplicate column names")
        incoming: dict[str, tuple[str, pa.DataType]] = {}
        for fld in batch.schema:
            if fld.name == "":
                raise WriteRejected(f"batch for table '{self.name}' has a column with no name")
            kind, dtype = _classify(fld)
            known = self.kinds.get(fld.name)
            if known is not None and known != (kind, dtype):
                raise WriteRejected(
                    f"invalid column type for column '{fld.name}' in table '{self.name}', "
                    f"expected {_kind_name(*known)}, got {_kind_name(kind, dtype)}"
                )
            incoming[fld.name] = (kind, dtype)
        columns: dict[str, pa.Array] = {}
        for fld, arr in zip(batch.schema, batch.columns, strict=True):
            kind, dtype = incoming[fld.name]
            if kind == "time":
                arr = _to_time(arr)
                if arr.null_count:
                    raise WriteRejected(f"column 'time' of table '{self.name}' has null values")
            elif arr.type != dtype:
                arr = arr.cast(dtype)
            columns[fld.name] = arr
        new_names = [n for n in incoming if n not in self.kinds]
        if new_names:
            for n in new_names:
                self.kinds[n] = incoming[n]
            self._rebuild_schema()
            self.batches = [
                self._conform(dict(zip(b.schema.names, b.columns, strict=True)), b.num_rows)
                for b in self.batches
            ]
        if batch.num_rows:
            conformed = self._conform(columns, batch.num_rows)
            self._note_keys(conformed)
            self.batches.append(conformed)
            self._merge_tail()
        self.version += 1
        if self.hydrated or self.file_windows or self.time_spans:
            live = {id(b) for b in self.batches}
            self.hydrated = {k: v for k, v in self.hydrated.items() if k in live}
            self.file_windows = {k: v for k, v in self.file_windows.items() if k in live}
            self.time_spans = {k: v for k, v in self.time_spans.items() if k in live}

    def _key_names(self) -> list[str]:
        return [n for n, (k, _t) in self.kinds.items() if k in ("tag", "time")]

    def _key_indices(self) -> list[int]:
        keys = set(self._key_names())
        return [i for i, n in enumerate(self.schema.names) if n in keys]

    def _note_keys(self, batch: pa.RecordBatch) -> None:
        """Mark the table for deduplication when ``batch`` may rewrite an existing point."""
        times = batch.column(TIME_COLUMN).view(pa.int64())
        bounds = pc.min_max(times)
        low, high = bounds["min"].as_py(), bounds["max"].as_py()
        if not self.needs_dedup:
            if self.max_time is not None and low <= self.max_time:
                self.needs_dedup = True
            elif batch.num_rows > 1:
                keys = _positional(pa.Table.from_batches([batch]).select(self._key_indices()))
                distinct = keys.group_by(keys.column_names, use_threads=False).aggregate([])
                self.needs_dedup = distinct.num_rows < batch.num_rows
        self.max_time = high if self.max_time is None else max(self.max_time, high)

    def deduplicate(self) -> None:
        """Keep one row per (tag set, time): per field, the last non-null value written.

        This is InfluxDB 3's upsert rule (IOx keeps the last non-null value per column), so a
        re-run that writes the same points leaves the table as it was.
        """
        if not self.needs_dedup:
            return
        self.needs_dedup = False
        if not self.batches:
            return
        table = pa.Table.from_batches(self.batches, schema=self.schema).unify_dictionaries()
        # Acero reads "a.b", ".t" or "[0]" as nested field paths: group by positional names.
        names = self.schema.names
        table = _positional(table)
        key_set = set(self._key_indices())
        keys = [f"c{i}" for i in range(len(names)) if i in key_set]
        fields = [f"c{i}" for i in range(len(names)) if i not in key_set]
        grouped = table.group_by(keys, use_threads=False).aggregate(
            [(f, "last", pc.ScalarAggregateOptions(skip_nulls=True)) for f in fields]
        )
        original = {f"c{i}": n for i, n in enumerate(names)}
        original.update({f"c{i}_last": n for i, n in enumerate(names)})
        grouped = grouped.rename_columns([original[n] for n in grouped.column_names])
        columns = {n: grouped.column(n).combine_chunks() for n in grouped.column_names}
        for fld in self.schema:
            if fld.name in columns and columns[fld.name].type != fld.type:
                columns[fld.name] = columns[fld.name].cast(fld.type)
        merged = self._conform(columns, grouped.num_rows)
        # Rows come back in first-seen key order; InfluxDB keeps no insertion order either.
        self.batches = pa.Table.from_batches([merged]).to_batches(
            max_chunksize=_SMALL_BATCH_ROWS * 16
        )
        self.hydrated = {}
        self.time_spans = {}

    def _merge_tail(self) -> None:
        tail = 0
        for b in reversed(self.batches):
            if b.num_rows >= _SMALL_BATCH_ROWS:
                break
            tail += 1
        if tail < _MERGE_TAIL_BATCHES:
            return
        merged = pa.Table.from_batches(self.batches[-tail:], schema=self.schema).combine_chunks()
        self.batches[-tail:] = merged.to_batches()


def _positional(table: pa.Table) -> pa.Table:
    """``table`` with columns renamed ``c0, c1, ...``: safe names for Acero's field paths."""
    return table.rename_columns([f"c{i}" for i in range(table.num_columns)])


def hydrate_type(dtype: pa.DataType) -> pa.DataType:
    """The type a column has on the wire: dictionaries of strings become plain Utf8."""
    if pa.types.is_dictionary(dtype):
        return hydrate_type(dtype.value_type)
    return dtype


def hydrate_schema(schema: pa.Schema) -> pa.Schema:
    """``schema`` with every dictionary column replaced by its value type (§1.4)."""
    fields = [
        f.with_type(hydrate_type(f.type)) if pa.types.is_dictionary(f.type) else f for f in schema
    ]
    return pa.schema(fields, metadata=schema.metadata)


def hydrate_batch(batch: pa.RecordBatch, schema: pa.Schema | None = None) -> pa.RecordBatch:
    """``batch`` with dictionary columns cast to their value type."""
    target = schema if schema is not None else hydrate_schema(batch.schema)
    if target.equals(batch.schema):
        return batch
    arrays = [
        arr.cast(fld.type) if arr.type != fld.type else arr
        for arr, fld in zip(batch.columns, target, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=target)


def hydrate_reader(reader: pa.RecordBatchReader) -> pa.RecordBatchReader:
    """A reader yielding ``reader``'s batches with dictionaries hydrated (lazily)."""
    target = hydrate_schema(reader.schema)
    if target.equals(reader.schema):
        return reader

    def gen() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield hydrate_batch(batch, target)

    return pa.RecordBatchReader.from_batches(target, gen())
