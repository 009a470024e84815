"""QueryResult: a query's answer as a stream of record batches, with ways to land it.

Iterating yields record batches as they arrive (0-row keep-alive batches skipped, timestamps
labelled UTC). The terminal methods (``to_table``, ``to_pandas``, ``to_records``,
``to_parquet``) own their output, so when the stream breaks with a transient error they restart
the query from scratch into a fresh output: they never return duplicated or partial data.
A result streams once; run the query again to read it again.
"""

from __future__ import annotations

import base64
import contextlib
import math
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, Unpack

from ._exceptions import InfluxDB3Error, ResultTooLargeError
from ._options import DEFAULT_MAX_RECORDS

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from ._sinks import ExportResult, ParquetOptions

__all__ = ["QueryResult", "utc_schema"]

T = TypeVar("T")


class BatchStream(Protocol):
    """One open server stream (a Flight DoGet reader or an ADBC record batch reader)."""

    schema: pa.Schema

    def read_next(self) -> pa.RecordBatch:
        """The next batch; raises StopIteration at the end."""
        ...

    def cancel(self) -> None: ...

    def close(self) -> None: ...


class Execution(Protocol):
    """What a QueryResult needs from the client: reopen, translate errors, retry, finish."""

    query: str
    database: str
    host: str

    def open(self) -> BatchStream: ...

    def open_once(self) -> BatchStream: ...

    def translate(self, exc: BaseException) -> InfluxDB3Error | None: ...

    def retry(self, fn: Callable[[], T]) -> T: ...

    def check_cancelled(self) -> None: ...

    def finish(self) -> None: ...


# --- UTC labelling -------------------------------------------------------------------------------


def _utc_type(t: pa.DataType) -> pa.DataType:
    import pyarrow as pa

    if pa.types.is_timestamp(t) and t.tz is None:
        return pa.timestamp(t.unit, tz="UTC")
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_utc_type(f.type)) for f in t])
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        inner = _utc_type(t.value_type)
        if inner != t.value_type:
            field = t.value_field.with_type(inner)
            return pa.list_(field) if pa.types.is_list(t) else pa.large_list(field)
    return t


def utc_schema(schema: pa.Schema) -> pa.Schema:
    """The schema with every timezone-less timestamp labelled UTC (InfluxDB stores UTC)."""
    import pyarrow as pa

    fields = [f.with_type(_utc_type(f.type)) for f in schema]
    return pa.schema(fields, metadata=schema.metadata)


class _UtcLabeller:
    """Relabels timestamp columns per batch: a zero-copy view for top-level columns."""

    def __init__(self, source: pa.Schema) -> None:
        self.schema = utc_schema(source)
        self.changed = [
            i for i, (a, b) in enumerate(zip(source, self.schema, strict=True)) if a.type != b.type
        ]

    def __call__(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        import pyarrow as pa

        if not self.changed:
            return batch
        columns = list(batch.columns)
        for i in self.changed:
            target = self.schema.field(i).type
            col = columns[i]
            columns[i] = col.view(target) if pa.types.is_timestamp(target) else col.cast(target)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)


# --- JSON-safe conversion -------------------------------------------------------------------------


def _json_values(arr: pa.Array) -> list[Any]:
    """A column as JSON-safe Python values (ISO-8601 UTC timestamps, NaN -> None, ...)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_dictionary(t):
        return _json_values(arr.dictionary_decode())
    if pa.types.is_timestamp(t):
        utc = arr.view(pa.timestamp(t.unit, tz="UTC")) if t.tz is None else arr
        if t.tz not in (None, "UTC", "+00:00"):
            utc = arr.cast(pa.timestamp(t.unit, tz="UTC"))
        text = pc.strftime(utc, format="%Y-%m-%dT%H:%M:%SZ")
        text = pc.replace_substring_regex(text, pattern=r"\.0+Z$", replacement="Z")
        return text.to_pylist()
    if pa.types.is_date(t) or pa.types.is_time(t):
        return [None if v is None else v.isoformat() for v in arr.to_pylist()]
    if pa.types.is_duration(t):
        per_second = {"s": 1, "ms": 1e3, "us": 1e6, "ns": 1e9}[t.unit]
        return [None if v is None else v / per_second for v in arr.cast(pa.int64()).to_pylist()]
    if pa.types.is_floating(t):
        return [None if v is None or not math.isfinite(v) else v for v in arr.to_pylist()]
    if pa.types.is_decimal(t):
        return [None if v is None else str(v) for v in arr.to_pylist()]
    if pa.types.is_binary(t) or pa.types.is_large_binary(t) or pa.types.is_fixed_size_binary(t):
        return [None if v is None else base64.b64encode(v).decode("ascii") for v in arr.to_pylist()]
    if pa.types.is_struct(t):
        valid = arr.is_valid().to_pylist()
        children = {t.field(i).name: _json_values(arr.field(i)) for i in range(t.num_fields)}
        return [
            {name: values[row] for name, values in children.items()} if ok else None
            for row, ok in enumerate(valid)
        ]
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        valid = arr.is_valid().to_pylist()
        out: list[Any] = []
        for row, ok in enumerate(valid):
            out.append(_json_values(arr[row].values) if ok else None)
        return out
    return arr.to_pylist()


def batch_to_records(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """Rows of a batch as JSON-safe dicts."""
    columns = [_json_values(col) for col in batch.columns]
    names = batch.schema.names
    return [dict(zip(names, row, strict=True)) for row in zip(*columns, strict=True)]


# --- the result ---------------------------------------------------------------------------------


class QueryResult:
    """The streamed answer of ``InfluxDB3Client.query()``.

    Examples:
        result = client.query("SELECT * FROM cpu WHERE time >= $start", params={"start": t0})
        for batch in result:            # record batches as they arrive
            ...
        client.query(q).to_parquet("s3://bucket/cpu.parquet")   # bounded memory, atomic
        client.query(q).to_records(max_rows=1000)               # JSON-safe, for XCom
    """

    def __init__(self, execution: Execution, stream: BatchStream) -> None:
        self._execution = execution
        self._stream: BatchStream | None = stream
        self._labeller = _UtcLabeller(stream.schema)
        self._consumed = False
        self._closed = False
        #: Rows and Arrow bytes delivered so far by the current attempt (for progress displays).
        self.rows = 0
        self.bytes = 0

    # -- metadata ----------------------------------------------------------------------------

    @property
    def schema(self) -> pa.Schema:
        """The result's schema (timestamps labelled UTC), known before any row is read."""
        return self._labeller.schema

    @property
    def query(self) -> str:
        return self._execution.query

    @property
    def database(self) -> str:
        return self._execution.database

    def __repr__(self) -> str:
        state = "closed" if self._closed else "consumed" if self._consumed else "open"
        return (
            f"<QueryResult {state} database={self.database!r} columns={self.schema.names!r} "
            f"rows_read={self.rows}>"
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the stream early (cancels it on the server) and release the connection."""
        if self._closed:
            return
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.cancel()
            with contextlib.suppress(Exception):
                stream.close()
        self._execution.finish()

    def __enter__(self) -> QueryResult:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take(self) -> BatchStream:
        if self._consumed:
            raise InfluxDB3Error(
                "This QueryResult was already consumed (a result streams once); run "
                "client.query(...) again to read it again.",
                host=self._execution.host,
                database=self.database,
                query=self.query,
            )
        if self._closed or self._stream is None:
            raise InfluxDB3Error(
                "This QueryResult is closed; run the query again to read it.",
                host=self._execution.host,
                database=self.database,
                query=self.query,
            )
        self._consumed = True
        stream, self._stream = self._stream, None
        return stream

    def _iterate(self, stream: BatchStream) -> Iterator[pa.RecordBatch]:
        labeller = _UtcLabeller(stream.schema)  # a restarted stream brings its own schema
        self.rows = 0
        self.bytes = 0
        try:
            while True:
                self._execution.check_cancelled()
                try:
                    batch = stream.read_next()
                except StopIteration:
                    return
                except Exception as exc:
                    mapped = self._execution.translate(exc)
                    if mapped is None:
                        raise
                    raise mapped from exc
                if batch.num_rows == 0:  # keep-alive
                    continue
                self.rows += batch.num_rows
                self.bytes += batch.nbytes
                yield labeller(batch)
        finally:
            with contextlib.suppress(Exception):
                stream.close()

    def batches(self) -> Iterator[pa.RecordBatch]:
        """Yield record batches as they arrive. A broken stream raises (no restart: the
        caller has already seen some batches)."""
        stream = self._take()
        try:
            yield from self._iterate(stream)
        finally:
            self._closed = True
            self._execution.finish()

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        return self.batches()

    def to_reader(self) -> pa.RecordBatchReader:
        """A ``pyarrow.RecordBatchReader`` over the stream (hand it to DuckDB, Polars, ...)."""
        import pyarrow as pa

        return pa.RecordBatchReader.from_batches(self.schema, self.batches())

    def consume(self, consumer: Callable[[Iterator[pa.RecordBatch], pa.Schema], T]) -> T:
        """Feed the batches to ``consumer(batches, schema)``; on a transient failure, re-run the
        query and call ``consumer`` again from scratch (it must discard its partial output)."""
        first: list[BatchStream] = [self._take()]

        def attempt() -> T:
            # A restart opens once: this retry loop already bounds attempts and time.
            stream = first.pop() if first else self._execution.open_once()
            return consumer(self._iterate(stream), _UtcLabeller(stream.schema).schema)

        try:
            return self._execution.retry(attempt)
        finally:
            self._closed = True
            self._execution.finish()

    # -- terminal forms -----------------------------------------------------------------------

    def to_table(self) -> pa.Table:
        """The whole result as a ``pyarrow.Table`` (restarts cleanly on transient failures)."""
        import pyarrow as pa

        return self.consume(lambda batches, schema: pa.Table.from_batches(list(batches), schema))

    def to_pandas(self, **to_pandas_options: Any) -> pd.DataFrame:
        """The whole result as a pandas DataFrame (timestamps tz-aware UTC)."""
        try:
            import pandas  # noqa: F401
        except ImportError as exc:
            raise ImportError(
                "QueryResult.to_pandas() needs pandas: pip install "
                "'influxdb3-orchestration[pandas]'"
            ) from exc
        options = {"split_blocks": True, "self_destruct": True, **to_pandas_options}
        return self.to_table().to_pandas(**options)

    def to_records(self, max_rows: int | None = DEFAULT_MAX_RECORDS) -> list[dict[str, Any]]:
        """JSON-safe rows: ISO-8601 UTC timestamps with Z, NaN/inf -> None, bytes -> base64,
        decimals -> str.

        Raises:
            ResultTooLargeError: more than ``max_rows`` rows (None disables the guard); write
                large results with ``to_parquet()`` instead.
        """
        if max_rows is not None and (isinstance(max_rows, bool) or max_rows < 0):
            raise ValueError(f"max_rows: expected a non-negative integer or None, got {max_rows!r}")

        def collect(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for batch in batches:
                if max_rows is not None and len(out) + batch.num_rows > max_rows:
                    raise ResultTooLargeError(
                        f"The query returned more than max_rows={max_rows} rows from database "
                        f"{self.database!r} on {self._execution.host}. Narrow the query "
                        "(time range, LIMIT, aggregation), raise max_rows, or write the result "
                        "to Parquet with to_parquet() / an export task instead.",
                        host=self._execution.host,
                        database=self.database,
                        query=self.query,
                    )
                out.extend(batch_to_records(batch))
            return out

        return self.consume(collect)

    def to_parquet(self, destination: Any, **options: Unpack[ParquetOptions]) -> ExportResult:
        """Stream the result into Parquet at ``destination`` (path, fsspec URL or
        ObjectStoragePath); atomic, bounded memory. Options and defaults are
        ``influx_flight.write_parquet``'s (compression, row_group_size, split_by, ...)."""
        from ._sinks import write_parquet

        return self.consume(
            lambda batches, schema: write_parquet(batches, schema, destination, **options)
        )


QueryResult.__module__ = "influx_flight"
