"""InfluxDB3Client: queries over Arrow Flight (JSON ticket or Flight SQL), with a lifecycle.

The client owns one gRPC channel, created on first use: gRPC state does not survive ``fork()``
(Airflow's task runners and Celery fork), so a client built before a fork works in the child as
long as the parent never queried with it; otherwise the child gets a clear error, not a hang. Queries retry transient failures with
the client's RetryPolicy, restart broken streams from scratch for terminal consumers, and can be
cancelled from another thread with ``client.cancel()`` (Airflow's ``on_kill``).
"""

from __future__ import annotations

import contextlib
import enum
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from ._cancel import Operation, Pump
from ._config import InfluxDB3Config, _parse_timeout
from ._exceptions import (
    ConfigurationError,
    InfluxDB3Error,
    QueryCancelledError,
    QueryTimeoutError,
    TransportError,
)
from ._options import USE_CLIENT_DEFAULT, UseClientDefault, WriteOptions
from ._params import build_ticket, param_value
from ._retry import DEFAULT_RETRY_POLICY, RetryPolicy, call_with_retry, is_transient

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.flight as flight
    import urllib3
    from typing_extensions import Unpack

    from ._downsample import DownsampleResult, DownsampleSpec
    from ._http import HttpTransport
    from ._options import WriteOverrides
    from ._results import BatchStream, QueryResult
    from ._writer import WriteResult

__all__ = ["InfluxDB3Client"]

log = logging.getLogger("influx_flight")
T = TypeVar("T")

LANGUAGES: Final = ("sql", "influxql")
PROTOCOLS: Final = ("ticket", "flightsql")
USER_AGENT: Final = "influx-flight/0.1.0"
_DEFAULT_WRITE_OPTIONS: Final = WriteOptions()


class ClientState(enum.Enum):
    """UNOPENED: built, no channel yet; OPENED: in use; CLOSED: closed, refuses calls."""

    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


# --- streams ------------------------------------------------------------------------------------


class _FlightStream:
    """A DoGet reader as a BatchStream."""

    def __init__(self, reader: flight.FlightStreamReader) -> None:
        self._reader = reader
        self._exhausted = False
        self.schema = reader.schema  # waits for the first message: errors surface here

    def read_next(self) -> pa.RecordBatch:
        try:
            chunk = self._reader.read_chunk()
        except StopIteration:
            self._exhausted = True
            raise
        return chunk.data

    def cancel(self) -> None:
        self._reader.cancel()

    def close(self) -> None:
        # A consumer that stops early (a row guard, an error) must not leave the server
        # streaming into a full window until the deadline: cancel the call.
        if not self._exhausted:
            self._exhausted = True
            with contextlib.suppress(Exception):
                self._reader.cancel()


class _PumpedStream:
    """A BatchStream read on a helper thread (``Pump``): the consumer's waits end within
    ``POLL_SECONDS`` of a cancel, ``close()`` or the deadline, even while the server is silent."""

    def __init__(self, pump: Pump, execution: _QueryExecution) -> None:
        self._pump = pump
        self._execution = execution
        self._exhausted = False
        kind, schema = self._get()
        assert kind == "schema"
        self.schema: pa.Schema = schema

    def _get(self) -> tuple[str, Any]:
        try:
            return self._pump.get(self._execution.op, self._execution._cancelled_error)
        except TimeoutError:
            raise self._execution._timeout_error() from None

    def read_next(self) -> pa.RecordBatch:
        kind, value = self._get()
        if kind == "end":
            self._exhausted = True
            raise StopIteration
        return value

    def cancel(self) -> None:
        self._pump.stop()

    def close(self) -> None:
        if not self._exhausted:
            self._exhausted = True
            self._pump.stop()


class _QueryExecution:
    """Everything QueryResult needs to (re)open, translate, retry and finish one query."""

    def __init__(
        self,
        client: InfluxDB3Client,
        *,
        query: str,
        database: str,
        language: str,
        params: Mapping[str, Any] | None,
        protocol: str,
        timeout: float | None,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        self.client = client
        self.query = query
        self.database = database
        self.language = language
        self.params = params
        self.protocol = protocol
        self.timeout = timeout
        self.headers = headers
        self.host = client.config.host
        self.op = Operation(timeout)
        self.finished = False

    def open_once(self) -> BatchStream:
        self.check_cancelled()
        opener = self._open_ticket if self.protocol == "ticket" else self._open_flightsql
        pump = Pump(opener)
        self.op.on_cancel(pump.stop)
        try:
            return _PumpedStream(pump, self)
        except BaseException as exc:
            pump.stop()
            if isinstance(exc, Exception):
                raise self._mapped(exc) from exc
            raise

    def _call_timeout(self) -> float | None:
        remaining = self.op.remaining()
        return None if remaining is None else max(remaining, 0.001)

    def _open_ticket(self) -> BatchStream:
        import pyarrow.flight as flight

        ticket = build_ticket(self.database, self.query, self.language, self.params)
        options = flight.FlightCallOptions(
            timeout=self._call_timeout(),
            headers=self.client.config.grpc_headers() + self.headers,
        )
        reader = self.client._flight().do_get(flight.Ticket(ticket), options)
        return _FlightStream(reader)

    def _open_flightsql(self) -> BatchStream:
        from ._flightsql import open_stream

        return open_stream(
            self.client.config,
            self.query,
            database=self.database,
            language=self.language,
            params=self.params,
            timeout=self._call_timeout(),
            extra_headers=self.headers,
        )

    def _mapped(self, exc: BaseException) -> BaseException:
        mapped = self.translate(exc)
        return mapped if mapped is not None else exc

    def open(self) -> BatchStream:
        """Open a stream, retrying transient failures (connection refused, UNAVAILABLE)."""
        return self.retry(self.open_once)

    def translate(self, exc: BaseException) -> InfluxDB3Error | None:
        from ._errors import translate_adbc_error, translate_flight_error

        cancelled = self.op.cancelled.is_set()
        kwargs: dict[str, Any] = {
            "query": self.query,
            "database": self.database,
            "cancelled": cancelled,
        }
        if isinstance(exc, InfluxDB3Error):
            if cancelled and not isinstance(exc, QueryCancelledError):
                return self._cancelled_error()
            return exc
        mapped = translate_flight_error(exc, self.client.config, **kwargs)
        if mapped is None:
            mapped = translate_adbc_error(exc, self.client.config, **kwargs)
        if mapped is None and cancelled:
            return self._cancelled_error()
        return mapped

    def _cancelled_error(self) -> QueryCancelledError:
        return QueryCancelledError(
            f"The query on {self.client.config.flight_location} (database {self.database!r}) "
            "was cancelled by client.cancel() or close(); no output was kept.",
            host=self.host,
            database=self.database,
            query=self.query,
        )

    def _timeout_error(self) -> QueryTimeoutError:
        return QueryTimeoutError(
            f"The query on {self.client.config.flight_location} (database {self.database!r}) "
            f"did not finish within its {self.timeout:g} s deadline; it was cancelled. Raise "
            "query_timeout (or timeout=...), or narrow the time range.",
            host=self.host,
            database=self.database,
            query=self.query,
        )

    def check_cancelled(self) -> None:
        if self.op.cancelled.is_set():
            raise self._cancelled_error()
        if self.op.expired():
            raise self._timeout_error()

    def _sleep(self, seconds: float) -> None:
        remaining = self.op.remaining()
        if remaining is not None and remaining < seconds:
            raise self._timeout_error()
        if self.op.sleep(seconds):
            raise self._cancelled_error()

    def retry(self, fn: Callable[[], T]) -> T:
        def on_retry(attempt: int, exc: BaseException, delay: float) -> None:
            log.warning(
                "influx_flight: attempt %d of the query on %s (database %r) failed (%s); "
                "retrying from scratch in %.2fs",
                attempt,
                self.client.config.flight_location,
                self.database,
                exc,
                delay,
            )

        return call_with_retry(
            fn,
            self.client.retry_policy,
            is_retryable=lambda e: not self.op.cancelled.is_set() and is_transient(e),
            on_retry=on_retry,
            sleep=self._sleep,
        )

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.client._forget(self.op)


# --- the client ---------------------------------------------------------------------------------


class InfluxDB3Client:
    """A client for one InfluxDB 3 server: queries over Flight, writes and downsampling over
    HTTP, with one lifecycle.

    The client owns its transports, each created on first use and reused by every call: one
    gRPC channel for queries and one HTTP connection pool for writes and table management.
    Its ``retry_policy`` applies to queries and writes alike, ``config.query_timeout`` /
    ``config.write_timeout`` are the default deadlines, and ``write_options`` the default write
    settings; a call may override any of them (``timeout=``, ``concurrency=``, ...), leaving the
    others at the client's value (``USE_CLIENT_DEFAULT``).

    Args:
        config: An ``InfluxDB3Config`` (or a mapping accepted by ``InfluxDB3Config.from_dict``).
        retry_policy: Retries for transient failures (default: 4 attempts within 60 s).
        write_options: Default write settings (precision, batching, gzip, concurrency, ...).
        flight_client: A ``pyarrow.flight.FlightClient`` to use instead of building one (tests).
        http_pool: A ``urllib3.PoolManager`` to use for HTTP instead of building one (tests,
            proxies); requests on it cannot be aborted by ``cancel()``, only abandoned.

    Examples:
        with InfluxDB3Client(InfluxDB3Config.from_env()) as client:
            client.check_connection()
            table = client.query("SELECT * FROM cpu LIMIT 10").to_table()
            client.write(table, measurement="cpu_copy", tags=["host"])
            client.query("SHOW MEASUREMENTS", language="influxql").to_records()

    A client is thread-safe: several threads may query and write at once; ``cancel()`` stops
    them all (the client stays usable), ``close()`` stops them and refuses further calls.
    """

    def __init__(
        self,
        config: InfluxDB3Config | Mapping[str, Any],
        *,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
        write_options: WriteOptions = _DEFAULT_WRITE_OPTIONS,
        flight_client: flight.FlightClient | None = None,
        http_pool: urllib3.PoolManager | None = None,
    ) -> None:
        if isinstance(config, Mapping):
            config = InfluxDB3Config.from_dict(config)
        if not isinstance(config, InfluxDB3Config):
            raise ConfigurationError(
                f"config: expected an InfluxDB3Config or a mapping, got {type(config).__name__}",
                field="config",
            )
        if not isinstance(retry_policy, RetryPolicy):
            raise ConfigurationError(
                f"retry_policy: expected a RetryPolicy, got {type(retry_policy).__name__}",
                field="retry_policy",
            )
        if not isinstance(write_options, WriteOptions):
            raise ConfigurationError(
                f"write_options: expected a WriteOptions, got {type(write_options).__name__}",
                field="write_options",
            )
        self.config = config
        self.retry_policy = retry_policy
        self.write_options = write_options
        self._state = ClientState.UNOPENED
        self._lock = threading.Lock()
        self._flight_client: flight.FlightClient | None = flight_client
        self._http_pool = http_pool
        self._http: HttpTransport | None = None
        self._pid = os.getpid()
        self._ops: set[Operation] = set()

    def __repr__(self) -> str:
        return f"<InfluxDB3Client {self._state.name.lower()} {self.config!r}>"

    # -- lifecycle ----------------------------------------------------------------------------

    def __enter__(self) -> InfluxDB3Client:
        self._check_open()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._state is ClientState.CLOSED

    def close(self) -> None:
        """Cancel running queries and writes, then close the channel and the HTTP pool.

        Idempotent; returns promptly even while a query is blocked waiting for the server.
        """
        with self._lock:
            if self._state is ClientState.CLOSED:
                return
            self._state = ClientState.CLOSED
            ops = list(self._ops)
            client, self._flight_client = self._flight_client, None
            http, self._http = self._http, None
        for op in ops:
            op.cancel()
        if http is not None:
            http.close()
        if client is not None and self._pid == os.getpid():
            # Closing the channel waits for calls still unwinding on reader threads; do it in
            # the background so close() itself never blocks on the server.
            closer = threading.Thread(
                target=_close_quietly, args=(client,), name="influx-flight-close", daemon=True
            )
            closer.start()
            closer.join(0.5)

    def _check_open(self) -> None:
        if self._state is ClientState.CLOSED:
            raise InfluxDB3Error(
                f"This InfluxDB3Client for {self.config.host} is closed; create a new client "
                "(or use it inside a single `with InfluxDB3Client(...)` block).",
                host=self.config.host,
                database=self.config.database,
            )

    def _flight(self) -> flight.FlightClient:
        """The shared gRPC channel, created lazily (refused in a forked child if the parent
        already opened it)."""
        import pyarrow.flight as flight

        with self._lock:
            self._check_open()
            if self._pid != os.getpid():
                if self._flight_client is not None:
                    # gRPC state does not survive fork(): a channel opened in the parent hangs
                    # or crashes in the child, and so would a new one. Fail clearly instead.
                    raise TransportError(
                        f"This InfluxDB3Client opened its gRPC channel in process {self._pid} "
                        f"and is now used in forked process {os.getpid()}; gRPC cannot cross "
                        "fork(). Create the client in the process that uses it (clients open "
                        "their channel lazily, so creating one before fork is fine as long as "
                        "the parent does not query with it).",
                        host=self.config.host,
                        database=self.config.database,
                    )
                self._pid = os.getpid()
            if self._flight_client is None:
                cfg = self.config
                options: list[tuple[str, Any]] = [("grpc.secondary_user_agent", USER_AGENT)]
                if cfg.receive_window is not None:
                    # A fixed stream window instead of BDP probing's adaptive one: what gRPC
                    # buffers ahead of a slow reader (an export encoding Parquet) stays bounded.
                    options += [
                        ("grpc.http2.bdp_probe", 0),
                        ("grpc.http2.lookahead_bytes", cfg.receive_window),
                    ]
                kwargs: dict[str, Any] = {"generic_options": options}
                if cfg.uses_tls:
                    pem = cfg.ca_cert_pem()
                    if pem:
                        kwargs["tls_root_certs"] = pem
                    if not cfg.verify_tls:
                        kwargs["disable_server_verification"] = True
                self._flight_client = flight.FlightClient(cfg.flight_location, **kwargs)
            self._state = ClientState.OPENED
            return self._flight_client

    def _transport(self) -> HttpTransport:
        """The shared HTTP transport, created lazily."""
        from ._http import HttpTransport

        with self._lock:
            self._check_open()
            if self._http is None:
                self._http = HttpTransport(
                    self.config,
                    pool=self._http_pool,
                    maxsize=max(16, self.write_options.concurrency),
                )
            self._state = ClientState.OPENED
            return self._http

    def _begin(self, op: Operation) -> Operation:
        with self._lock:
            self._check_open()
            self._ops.add(op)
        return op

    def _forget(self, op: Operation) -> None:
        with self._lock:
            self._ops.discard(op)

    def cancel(self) -> None:
        """Cancel every query and write running on this client (safe from any thread).

        Waiting threads get ``QueryCancelledError`` (queries) or ``OperationCancelledError``
        (writes) within a fraction of a second; a Parquet export removes its temporary file.
        The client stays usable for new calls.
        """
        with self._lock:
            ops = list(self._ops)
            http = self._http
        for op in ops:
            op.cancel()
        if ops and http is not None:
            http.abort()

    # -- queries ------------------------------------------------------------------------------

    def query(
        self,
        text: str,
        *,
        language: Literal["sql", "influxql"] = "sql",
        params: Mapping[str, Any] | None = None,
        protocol: Literal["ticket", "flightsql"] = "ticket",
        timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
        database: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> QueryResult:
        """Run a SQL or InfluxQL query; returns a streaming QueryResult.

        Args:
            text: The query text; ``$name`` placeholders take values from ``params``.
            language: ``"sql"`` (default) or ``"influxql"``.
            params: Server-side parameters (str, int, float, bool, None, aware datetime).
            protocol: ``"ticket"`` (InfluxDB's JSON DoGet ticket, default) or ``"flightsql"``
                (ADBC Flight SQL).
            timeout: Deadline of the whole query, retries and streaming included, in seconds;
                leave out for ``config.query_timeout``, None for no deadline. When it passes
                the call is cancelled and ``QueryTimeoutError`` raised.
            database: Overrides ``config.database`` for this call.
            headers: Extra gRPC headers for this call.

        Raises:
            QueryError, TableNotFoundError, AuthenticationError, DatabaseNotFoundError,
            QueryTimeoutError, TransportError: mapped from the server's answer, after retries
            for transient failures.
        """
        from ._results import QueryResult

        self._check_open()
        if not isinstance(text, str) or not text.strip():
            raise ConfigurationError(
                f"text: expected non-empty query text, got {text!r}", field="text"
            )
        if language not in LANGUAGES:
            raise ConfigurationError(
                f"language: {language!r} is not supported; use 'sql' or 'influxql'",
                field="language",
            )
        if protocol not in PROTOCOLS:
            raise ConfigurationError(
                f"protocol: {protocol!r} is not supported; use 'ticket' (InfluxDB's Flight "
                "ticket) or 'flightsql'",
                field="protocol",
            )
        if params is not None and not isinstance(params, Mapping):
            raise ConfigurationError(
                f"params: expected a mapping of name to value, got {type(params).__name__}",
                field="params",
            )
        if params:
            for name, value in params.items():
                param_value(str(name), value)  # validate early, with a clear message
        db = _database(database)
        deadline = self._query_timeout(timeout)
        extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        execution = _QueryExecution(
            self,
            query=text,
            database=db or self.config.database,
            language=language,
            params=params,
            protocol=protocol,
            timeout=deadline,
            headers=extra,
        )
        self._begin(execution.op)
        try:
            stream = execution.open()
        except BaseException:
            execution.finish()
            raise
        return QueryResult(execution, stream)

    def _query_timeout(self, timeout: float | UseClientDefault | None) -> float | None:
        if isinstance(timeout, UseClientDefault):
            return self.config.query_timeout
        return _parse_timeout("timeout", timeout)

    def check_connection(self, *, timeout: float | None = 10.0) -> None:
        """Run ``SELECT 1`` against the configured database; raises the mapped error."""
        self.query("SELECT 1", timeout=timeout).to_table()

    def dbapi_connect(self, *, database: str | None = None) -> Any:
        """An ADBC Flight SQL DB-API connection (for Airflow's common.sql, pandas.read_sql)."""
        from ._flightsql import connect_dbapi

        self._check_open()
        return connect_dbapi(self.config, database=database)

    # -- writes ---------------------------------------------------------------------------------

    def write(
        self,
        data: Any,
        *,
        measurement: str,
        tags: Iterable[str] = (),
        time_column: str | None = "time",
        field_columns: Sequence[str] | None = None,
        database: str | None = None,
        **options: Unpack[WriteOverrides],
    ) -> WriteResult:
        """Write Arrow data (Table, RecordBatch, reader, iterable of batches) or a pandas
        DataFrame as line protocol.

        Columns other than ``time_column`` and ``tags`` become fields (or only
        ``field_columns``). ``options`` override the client's ``write_options`` for this call
        (``precision``, ``concurrency``, ``gzip``, ``no_sync``, ``accept_partial``,
        ``max_body_bytes``, ``batch_rows``, ``endpoint``, ``timeout``).

        Raises:
            WriteError: after all requests are done, if the server rejected lines
                (``rejected_lines`` name the input rows; ``write_result`` says what was stored).
            EncodingError: a value line protocol cannot carry (nothing was sent).
            OperationCancelledError: ``cancel()`` / ``close()`` interrupted the write.
        """
        from ._writer import arrow_chunks

        merged = self.write_options.merge(**options)
        encode = arrow_chunks(
            data,
            measurement=measurement,
            tags=list(tags or ()),  # None: no tags (as the Airflow hook always allowed)
            time_column=time_column,
            field_columns=field_columns,
        )
        return self._write(encode, database, merged)

    def write_lp(
        self,
        lines: str | bytes | Iterable[str] | Iterable[bytes],
        *,
        database: str | None = None,
        **options: Unpack[WriteOverrides],
    ) -> WriteResult:
        """Write raw line protocol: a text (split on newlines) or an iterable of lines (one line
        per item; use it when string fields contain newlines). Rejected lines carry ``row`` =
        the 0-based input line. ``options`` as for ``write``."""
        from ._writer import line_chunks

        merged = self.write_options.merge(**options)
        return self._write(line_chunks(lines), database, merged)

    def _write(self, encode: Any, database: str | None, options: WriteOptions) -> WriteResult:
        from ._writer import write_data

        self._check_open()
        db = _database(database)
        op = self._begin(Operation())
        try:
            return write_data(
                self._transport(),
                self.config,
                encode,
                database=db,
                options=options,
                retry=self.retry_policy,
                op=op,
            )
        finally:
            self._forget(op)

    # -- query -> write back ------------------------------------------------------------------

    def write_back(
        self,
        query: str,
        *,
        measurement: str,
        tags: Iterable[str] = (),
        field_columns: Sequence[str] | None = None,
        language: Literal["sql", "influxql"] = "sql",
        params: Mapping[str, Any] | None = None,
        database: str | None = None,
        target_database: str | None = None,
        protocol: Literal["ticket", "flightsql"] = "ticket",
        timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
        write_options: WriteOptions | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> WriteResult:
        """Run a query and write its rows to ``measurement``, streaming batch by batch.

        The one query-to-write loop (``downsample`` and the Airflow and Dagster adapters use
        it): InfluxQL's ``iox::measurement`` column is dropped, empty batches are skipped, and
        when the stream breaks with a transient error the query is run again from scratch and
        its rows rewritten (identical points, so the rewrite is idempotent). ``WriteResult.rows``
        is the number of rows read; an empty result writes nothing.

        Args:
            query: SQL or InfluxQL; must return a ``time`` column.
            measurement: Table to write to; ``tags`` are the columns written as tags, the
                other columns (or only ``field_columns``) become fields.
            database: Database to query (default: the client's); ``target_database`` where
                to write (default: the client's).
            timeout: Deadline of the query (as for ``query``).
            write_options: Write settings for this call instead of the client's.
        """
        from ._writer import WriteResult

        merged = self._write_options(write_options)
        tag_list = list(tags or ())
        result = self.query(
            query,
            language=language,
            params=params,
            database=database,
            protocol=protocol,
            timeout=timeout,
        )

        def write_back(batches: Iterable[pa.RecordBatch], schema: pa.Schema) -> WriteResult:
            rows = _RowCounter(batches)
            first = rows.first()
            if first is None:
                return WriteResult()
            fields = field_columns
            if fields is not None:
                fields = [f for f in fields if f in first.schema.names]
            return self._write(
                _writer_arrow(rows, measurement, tag_list, fields), target_database, merged
            )

        return result.consume(write_back)

    def downsample(
        self,
        spec: DownsampleSpec,
        start: str | datetime | int,
        end: str | datetime | int,
        *,
        chunk: str | timedelta | None = None,
        database: str | None = None,
        target_database: str | None = None,
        dry_run: bool = False,
        timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
        write_options: WriteOptions | UseClientDefault = USE_CLIENT_DEFAULT,
    ) -> DownsampleResult:
        """Aggregate ``[start, end)`` per ``spec`` (window by window with ``chunk``) and write
        the buckets back with ``write_back``. Re-running writes identical points (idempotent).

        ``database`` is the source (default: the client's), ``target_database`` the
        destination (default: the spec's, else the client's); ``timeout`` applies to each
        window's query; ``write_options`` replace the client's for this call.
        """
        from ._downsample import run_downsample

        self._check_open()
        return run_downsample(
            self,
            spec,
            start,
            end,
            chunk=chunk,
            database=database,
            target_database=target_database,
            dry_run=dry_run,
            timeout=timeout,
            write_options=self._write_options(write_options),
        )

    def _write_options(self, options: WriteOptions | UseClientDefault) -> WriteOptions:
        if isinstance(options, UseClientDefault):
            return self.write_options
        if not isinstance(options, WriteOptions):
            raise ConfigurationError(
                f"write_options: expected a WriteOptions, got {type(options).__name__}",
                field="write_options",
            )
        return options

    # -- table management (Core's /api/v3/configure/table) --------------------------------------

    def create_table(
        self,
        table: str,
        *,
        tags: Sequence[str] = (),
        fields: Mapping[str, str] | None = None,
        database: str | None = None,
        timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
    ) -> None:
        """Create ``table`` with its tag columns and typed fields
        (``{"usage": "float64"}``; types utf8, int64, uint64, float64, bool).

        Raises ConfigurationError for a bad type, QueryError when the server refuses (409:
        the table exists), DatabaseNotFoundError, AuthenticationError.
        """
        known = ("utf8", "int64", "uint64", "float64", "bool")
        field_list = []
        for name, kind in (fields or {}).items():
            if kind not in known:
                raise ConfigurationError(
                    f"fields: {name!r} has type {kind!r}; use one of {', '.join(known)}",
                    field="fields",
                )
            field_list.append({"name": name, "type": kind})
        db = _database(database) or self.config.database
        body = {"db": db, "table": table, "tags": list(tags), "fields": field_list}
        self._configure("POST", "table", db, timeout, json_body=body)

    def delete_table(
        self,
        table: str,
        *,
        database: str | None = None,
        hard_delete_at: str | datetime | None = None,
        timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT,
    ) -> None:
        """Delete ``table`` (Core soft-deletes it; ``hard_delete_at``: ``"now"``, ``"never"``,
        ``"default"`` or an instant). Raises TableNotFoundError when it does not exist."""
        from .time import format_time

        db = _database(database) or self.config.database
        params = {"db": db, "table": table}
        if hard_delete_at is not None:
            params["hard_delete_at"] = (
                format_time(hard_delete_at)
                if isinstance(hard_delete_at, datetime)
                else str(hard_delete_at)
            )
        self._configure("DELETE", "table", db, timeout, params=params, table=table)

    def _configure(
        self,
        method: str,
        what: str,
        database: str,
        timeout: float | UseClientDefault | None,
        *,
        params: Mapping[str, str] | None = None,
        json_body: Any = None,
        table: str | None = None,
    ) -> None:
        """One call to ``/api/v3/configure/<what>`` over the shared transport, with retries."""
        import json
        from urllib.parse import urlencode

        from ._errors import error_from_http
        from ._exceptions import TableNotFoundError

        self._check_open()
        url = f"{self.config.write_base_url.rstrip('/')}/api/v3/configure/{what}"
        if params:
            url += "?" + urlencode(params)
        headers = {"Accept": "application/json", "User-Agent": USER_AGENT}
        headers.update(self.config.http_headers())
        body = None
        if json_body is not None:
            headers["Content-Type"] = "application/json"
            body = json.dumps(json_body).encode()
        limit = (
            self.config.write_timeout
            if isinstance(timeout, UseClientDefault)
            else _parse_timeout("timeout", timeout)
        )
        transport = self._transport()
        op = self._begin(Operation())

        def attempt() -> Any:
            resp = transport.request(
                method, url, body=body, headers=headers, timeout=limit, database=database
            )
            if resp.status >= 400:
                err = error_from_http(
                    self.config,
                    resp.status,
                    resp.data,
                    resp.headers,
                    operation=f"{method} /api/v3/configure/{what}",
                    database=database,
                    url=url,
                )
                # Core answers 404 for an unknown database and for an unknown table.
                if resp.status == 404 and table and "database not found" not in err.message:
                    err = TableNotFoundError(
                        f"Table {table!r} does not exist in database {database!r} on "
                        f"{self.config.scrub(self.config.write_base_url)} ({err.message}).",
                        table=table,
                        host=self.config.host,
                        database=database,
                    )
                raise err
            return resp

        try:
            call_with_retry(
                attempt,
                self.retry_policy,
                is_retryable=lambda e: not op.cancelled.is_set() and is_transient(e),
                sleep=lambda s: op.sleep(s),
            )
        finally:
            self._forget(op)


class _RowCounter:
    """Batches without InfluxQL's ``iox::measurement`` column and without empty batches,
    counted as they pass."""

    def __init__(self, batches: Iterable[pa.RecordBatch]) -> None:
        from ._downsample import drop_measurement_column

        self._drop = drop_measurement_column
        self._it = iter(batches)
        self._first: pa.RecordBatch | None = None
        self.rows = 0

    def first(self) -> pa.RecordBatch | None:
        self._first = next(iter(self), None)
        return self._first

    def __iter__(self) -> Any:
        if self._first is not None:
            first, self._first = self._first, None
            yield first
        for batch in self._it:
            if batch.num_rows == 0:
                continue
            batch = self._drop(batch)
            self.rows += batch.num_rows
            yield batch


def _writer_arrow(
    rows: _RowCounter, measurement: str, tags: list[str], fields: Sequence[str] | None
) -> Any:
    from ._writer import arrow_chunks

    return arrow_chunks(
        iter(rows), measurement=measurement, tags=tags, time_column="time", field_columns=fields
    )


def _database(database: str | None) -> str | None:
    """A per-call database override, validated (None: the config's)."""
    if database is None:
        return None
    db = database.strip() if isinstance(database, str) else ""
    if not db:
        raise ConfigurationError(
            f"database: expected a non-empty name, got {database!r}", field="database"
        )
    return db


def _close_quietly(client: Any) -> None:
    with contextlib.suppress(Exception):
        client.close()


InfluxDB3Client.__module__ = "influx_flight"
