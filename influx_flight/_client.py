"""InfluxDB3Client: queries over Arrow Flight (JSON ticket or Flight SQL), with a lifecycle.

The client owns one gRPC channel, created on first use: gRPC state does not survive ``fork()``
(Airflow's task runners and Celery fork), so a client built before a fork works in the child as
long as the parent never queried with it; otherwise the child gets a clear error, not a hang. Queries retry transient failures with
the client's RetryPolicy, restart broken streams from scratch for terminal consumers, and can be
cancelled from another thread with ``client.cancel()`` (Airflow's ``on_kill``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import enum
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final, Literal, TypeVar

from ._config import InfluxDB3Config
from ._exceptions import ConfigurationError, InfluxDB3Error, QueryCancelledError, TransportError
from ._retry import DEFAULT_RETRY_POLICY, RetryPolicy, call_with_retry, is_transient

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.flight as flight

    from ._results import BatchStream, QueryResult

__all__ = ["USE_CONFIG_DEFAULT", "InfluxDB3Client", "UseConfigDefault"]

log = logging.getLogger("influx_flight")
T = TypeVar("T")

LANGUAGES: Final = ("sql", "influxql")
PROTOCOLS: Final = ("ticket", "flightsql")
USER_AGENT: Final = "influx-flight/0.1.0"


class UseConfigDefault:
    """Sentinel for "not passed": leave ``timeout`` out to use ``config.query_timeout``; pass
    ``None`` to disable the deadline for this call."""

    def __repr__(self) -> str:
        return "USE_CONFIG_DEFAULT"


USE_CONFIG_DEFAULT: Final = UseConfigDefault()


class ClientState(enum.Enum):
    """UNOPENED: built, no channel yet; OPENED: in use; CLOSED: closed, refuses calls."""

    UNOPENED = 1
    OPENED = 2
    CLOSED = 3


def _param_value(name: str, value: Any) -> Any:
    """A query parameter as a JSON value (datetimes become RFC 3339 UTC strings)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            raise ConfigurationError(
                f"params: {name!r} is a naive datetime; InfluxDB stores UTC, so pass an aware "
                "datetime (e.g. datetime(..., tzinfo=timezone.utc))",
                field="params",
            )
        text = value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
        return text
    if isinstance(value, dt.date):
        return value.isoformat()
    raise ConfigurationError(
        f"params: {name!r} has unsupported type {type(value).__name__}; use str, int, float, "
        "bool, None or an aware datetime",
        field="params",
    )


def build_ticket(
    database: str, query: str, language: str, params: Mapping[str, Any] | None
) -> bytes:
    """InfluxDB 3's JSON DoGet ticket (protocol reference §1.2)."""
    doc: dict[str, Any] = {"database": database, "sql_query": query, "query_type": language}
    if params:
        doc["params"] = {str(k): _param_value(str(k), v) for k, v in params.items()}
    return json.dumps(doc).encode()


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


class _Run:
    """One query's cancellation state, shared by its attempts."""

    def __init__(self) -> None:
        self.cancelled = threading.Event()
        self.lock = threading.Lock()
        self.stream: BatchStream | None = None

    def attach(self, stream: BatchStream) -> None:
        with self.lock:
            self.stream = stream
            cancelled = self.cancelled.is_set()
        if cancelled:
            with contextlib.suppress(Exception):
                stream.cancel()

    def cancel(self) -> None:
        with self.lock:
            self.cancelled.set()
            stream = self.stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.cancel()


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
        self.run = _Run()
        self.finished = False

    def open_once(self) -> BatchStream:
        self.check_cancelled()
        stream = self._open_ticket() if self.protocol == "ticket" else self._open_flightsql()
        self.run.attach(stream)
        return stream

    def _open_ticket(self) -> BatchStream:
        import pyarrow.flight as flight

        ticket = build_ticket(self.database, self.query, self.language, self.params)
        options = flight.FlightCallOptions(
            timeout=self.timeout, headers=self.client.config.grpc_headers() + self.headers
        )
        try:
            reader = self.client._flight().do_get(flight.Ticket(ticket), options)
            return _FlightStream(reader)
        except Exception as exc:
            raise self._mapped(exc) from exc

    def _open_flightsql(self) -> BatchStream:
        from ._flightsql import open_stream

        try:
            return open_stream(
                self.client.config,
                self.query,
                database=self.database,
                language=self.language,
                params=self.params,
                timeout=self.timeout,
                extra_headers=self.headers,
            )
        except Exception as exc:
            raise self._mapped(exc) from exc

    def _mapped(self, exc: BaseException) -> BaseException:
        mapped = self.translate(exc)
        return mapped if mapped is not None else exc

    def open(self) -> BatchStream:
        """Open a stream, retrying transient failures (connection refused, UNAVAILABLE)."""
        return self.retry(self.open_once)

    def translate(self, exc: BaseException) -> InfluxDB3Error | None:
        from ._errors import translate_adbc_error, translate_flight_error

        cancelled = self.run.cancelled.is_set()
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
            "was cancelled by client.cancel(); no output was kept.",
            host=self.host,
            database=self.database,
            query=self.query,
        )

    def check_cancelled(self) -> None:
        if self.run.cancelled.is_set():
            raise self._cancelled_error()

    def _sleep(self, seconds: float) -> None:
        if self.run.cancelled.wait(seconds):
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
            is_retryable=lambda e: not self.run.cancelled.is_set() and is_transient(e),
            on_retry=on_retry,
            sleep=self._sleep,
        )

    def finish(self) -> None:
        if not self.finished:
            self.finished = True
            self.client._forget(self.run)


# --- the client ---------------------------------------------------------------------------------


class InfluxDB3Client:
    """A client for one InfluxDB 3 server: queries over Flight, writes and downsampling.

    Args:
        config: An ``InfluxDB3Config`` (or a mapping accepted by ``InfluxDB3Config.from_dict``).
        retry_policy: Retries for transient failures (default: 4 attempts within 60 s).

    Examples:
        with InfluxDB3Client(InfluxDB3Config.from_env()) as client:
            client.check_connection()
            table = client.query("SELECT * FROM cpu LIMIT 10").to_table()
            client.query("SHOW MEASUREMENTS", language="influxql").to_records()

    A client is thread-safe: several threads may query at once; ``cancel()`` cancels them all.
    Once closed it refuses further calls.
    """

    def __init__(
        self,
        config: InfluxDB3Config | Mapping[str, Any],
        *,
        retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY,
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
        self.config = config
        self.retry_policy = retry_policy
        self._state = ClientState.UNOPENED
        self._lock = threading.Lock()
        self._flight_client: flight.FlightClient | None = None
        self._pid = os.getpid()
        self._runs: set[_Run] = set()

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
        """Cancel running queries and close the channel. Idempotent."""
        with self._lock:
            if self._state is ClientState.CLOSED:
                return
            self._state = ClientState.CLOSED
            runs = list(self._runs)
            client, self._flight_client = self._flight_client, None
        for run in runs:
            run.cancel()
        if client is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                client.close()

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
                kwargs: dict[str, Any] = {
                    "generic_options": [("grpc.secondary_user_agent", USER_AGENT)]
                }
                if cfg.uses_tls:
                    pem = cfg.ca_cert_pem()
                    if pem:
                        kwargs["tls_root_certs"] = pem
                    if not cfg.verify_tls:
                        kwargs["disable_server_verification"] = True
                self._flight_client = flight.FlightClient(cfg.flight_location, **kwargs)
                self._state = ClientState.OPENED
            return self._flight_client

    def _forget(self, run: _Run) -> None:
        with self._lock:
            self._runs.discard(run)

    def cancel(self) -> None:
        """Cancel every query running on this client (safe from any thread).

        The reading thread gets ``QueryCancelledError``; a Parquet export removes its temporary
        file. The client stays usable for new queries.
        """
        with self._lock:
            runs = list(self._runs)
        for run in runs:
            run.cancel()

    # -- queries ------------------------------------------------------------------------------

    def query(
        self,
        text: str,
        *,
        language: Literal["sql", "influxql"] = "sql",
        params: Mapping[str, Any] | None = None,
        protocol: Literal["ticket", "flightsql"] = "ticket",
        timeout: float | UseConfigDefault | None = USE_CONFIG_DEFAULT,
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
            timeout: Deadline of the whole stream in seconds; leave out for
                ``config.query_timeout``, None for no deadline.
            database: Overrides ``config.database`` for this call.
            headers: Extra gRPC headers for this call.

        Raises:
            QueryError, AuthenticationError, DatabaseNotFoundError, TransportError: mapped
            from the server's answer, after retries for transient failures.
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
                _param_value(str(name), value)  # validate early, with a clear message
        db = database.strip() if isinstance(database, str) and database.strip() else None
        if database is not None and db is None:
            raise ConfigurationError(
                f"database: expected a non-empty name, got {database!r}", field="database"
            )
        if isinstance(timeout, UseConfigDefault):
            deadline = self.config.query_timeout
        else:
            from ._config import _parse_timeout

            deadline = _parse_timeout("timeout", timeout)
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
        with self._lock:
            self._check_open()
            self._runs.add(execution.run)
        try:
            stream = execution.open()
        except BaseException:
            execution.finish()
            raise
        return QueryResult(execution, stream)

    def check_connection(self, *, timeout: float | None = 10.0) -> None:
        """Run ``SELECT 1`` against the configured database; raises the mapped error."""
        self.query("SELECT 1", timeout=timeout).to_table()

    def dbapi_connect(self, *, database: str | None = None) -> Any:
        """An ADBC Flight SQL DB-API connection (for Airflow's common.sql, pandas.read_sql)."""
        from ._flightsql import connect_dbapi

        self._check_open()
        return connect_dbapi(self.config, database=database)

    # -- writes and downsampling (implemented in _writer.py / _downsample.py) -------------------

    def write(
        self,
        data: Any,
        *,
        measurement: str,
        tags: Iterable[str] = (),
        time_column: str = "time",
        precision: str = "ns",
        database: str | None = None,
        concurrency: int = 4,
        **options: Any,
    ) -> Any:
        """Write an Arrow table / record batches / pandas DataFrame as line protocol.

        See ``influx_flight._writer.write_arrow``; returns a WriteResult.
        """
        from . import _writer

        self._check_open()
        return _writer.write_arrow(
            self.config,
            data,
            measurement=measurement,
            tags=tags,
            time_column=time_column,
            precision=precision,
            database=database,
            concurrency=concurrency,
            **options,
        )

    def write_lp(
        self,
        lines: str | bytes | Iterable[str],
        *,
        database: str | None = None,
        precision: str = "ns",
        **options: Any,
    ) -> Any:
        """Write line protocol text as is (see ``influx_flight._writer.write_line_protocol``)."""
        from . import _writer

        self._check_open()
        return _writer.write_line_protocol(
            self.config, lines, database=database, precision=precision, **options
        )

    def downsample(self, spec: Any, start: Any, end: Any, **options: Any) -> Any:
        """Aggregate ``[start, end)`` per ``spec`` and write it back; returns a DownsampleResult.

        See ``influx_flight._downsample.run_downsample``.
        """
        from . import _downsample

        self._check_open()
        return _downsample.run_downsample(self, spec, start, end, **options)


InfluxDB3Client.__module__ = "influx_flight"
