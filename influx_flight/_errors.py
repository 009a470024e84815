"""The single translation point from transport errors to the influx_flight exception tree.

``map_flight_errors()`` translates pyarrow.flight / Arrow exceptions (gRPC status codes, see the
protocol reference §3.3); ``error_from_http()`` turns an HTTP error response into an exception
for the writer. pyarrow is imported lazily, inside the context manager, so importing this module
stays cheap.
"""

from __future__ import annotations

import contextlib
import email.utils
import json
import re
import time
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    AuthenticationError,
    DatabaseNotFoundError,
    InfluxDB3Error,
    QueryCancelledError,
    QueryError,
    QueryTimeoutError,
    RejectedLine,
    ServerUnavailableError,
    TableNotFoundError,
    TransportError,
    WriteError,
)

if TYPE_CHECKING:
    from ._config import InfluxDB3Config

__all__ = [
    "error_from_http",
    "map_flight_errors",
    "parse_retry_after",
    "translate_adbc_error",
    "translate_flight_error",
]

_DB_NOT_FOUND = re.compile(
    r"database not found|database '[^']*' not found|Database .* not found", re.I
)
_TABLE_NOT_FOUND = re.compile(r"table '(?:[^'.]*\.)*([^'.]*)' not found", re.I)
_PREFIXES = re.compile(
    r"^(Flight returned [a-z ]+ error, with message: |gRPC returned [a-z ]+ error, with message: )",
    re.I,
)
_DETAIL = re.compile(
    r"\.? ?(Detail: |gRPC client debug context: |Client context: |Python exception: ).*$", re.S
)


def _server_text(exc: BaseException, config: InfluxDB3Config) -> str:
    """The server's message without pyarrow's prefixes and gRPC debug context."""
    text = str(exc).strip()
    text = _PREFIXES.sub("", text)
    text = _DETAIL.sub("", text).strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":  # KeyError's repr quotes
        text = text[1:-1]
    return config.scrub(text.strip())


def _where(config: InfluxDB3Config, database: str | None) -> str:
    return f"{config.flight_location} (database {database!r})"


def translate_flight_error(
    exc: BaseException,
    config: InfluxDB3Config,
    *,
    query: str | None = None,
    database: str | None = None,
    cancelled: bool = False,
) -> InfluxDB3Error | None:
    """The influx_flight exception for a pyarrow exception, or None if it is not an Arrow one."""
    import pyarrow as pa
    import pyarrow.flight as flight

    if isinstance(exc, InfluxDB3Error):
        return exc
    if not isinstance(exc, pa.ArrowException):
        return None
    db = database or config.database
    where = _where(config, db)
    ctx: dict[str, Any] = {"host": config.host, "database": db, "query": query}
    msg = _server_text(exc, config)

    if cancelled or isinstance(exc, flight.FlightCancelledError | pa.ArrowCancelled):
        return QueryCancelledError(
            f"The query on {where} was cancelled before it completed ({msg or 'cancelled'}).",
            **ctx,
        )
    if isinstance(exc, flight.FlightUnauthenticatedError):
        return AuthenticationError(
            f"{where} rejected the request as unauthenticated ({msg}): the token is missing or "
            "unknown. Check the token (INFLUXDB3_AUTH_TOKEN or the connection's password) and "
            "that it belongs to this server.",
            **ctx,
        )
    if isinstance(exc, flight.FlightUnauthorizedError):
        return AuthenticationError(
            f"{where} denied permission ({msg}): the token is expired or may not read this "
            "database. Use a valid token with access to it.",
            **ctx,
        )
    if isinstance(exc, flight.FlightTimedOutError):
        return QueryTimeoutError(
            f"The query on {where} did not finish before its deadline ({msg}). Raise "
            "query_timeout (or timeout=...), or narrow the time range.",
            **ctx,
        )
    if isinstance(exc, flight.FlightUnavailableError):
        return ServerUnavailableError(
            f"{where} is unavailable ({msg}). Check that the server is running and that host "
            "and port are right; transient failures are retried.",
            **ctx,
        )
    missing = _table_not_found(where, msg, ctx)
    if missing is not None:
        return missing
    if isinstance(exc, flight.FlightInternalError):
        if _DB_NOT_FOUND.search(msg):
            return _database_not_found(config, db, msg, ctx)
        return QueryError(
            f"{where} failed to run the query (internal error: {msg}). Narrow the query (time "
            "range, file limit) or check the server logs.",
            server_message=msg,
            **ctx,
        )
    if isinstance(exc, flight.FlightWriteSizeExceededError):
        return TransportError(f"A message to {where} was too large ({msg}).", **ctx)
    if isinstance(exc, pa.ArrowKeyError):  # NOT_FOUND (Cloud's unknown database)
        if _DB_NOT_FOUND.search(msg) or "not found" in msg.lower():
            return _database_not_found(config, db, msg, ctx)
        return QueryError(f"{where} reported not found: {msg}", server_message=msg, **ctx)
    if isinstance(exc, pa.ArrowInvalid):  # INVALID_ARGUMENT and RESOURCE_EXHAUSTED
        if "grpc-timeout elapsed" in msg:
            return QueryTimeoutError(
                f"The server {where} stopped the query at its deadline ({msg}). Raise "
                "query_timeout or narrow the time range.",
                **ctx,
            )
        if "resource exhausted" in str(exc).lower():
            return QueryError(
                f"{where} ran out of resources for the query ({msg}). Narrow the time range or "
                "select fewer columns.",
                server_message=msg,
                **ctx,
            )
        if _DB_NOT_FOUND.search(msg):
            return _database_not_found(config, db, msg, ctx)
        return QueryError(
            f"{where} rejected the query: {msg}. Fix the query text or its parameters.",
            server_message=msg,
            **ctx,
        )
    if isinstance(exc, pa.ArrowNotImplementedError):
        return QueryError(
            f"{where} does not implement this request: {msg}.", server_message=msg, **ctx
        )
    if isinstance(exc, flight.FlightServerError | flight.FlightError):
        return TransportError(f"Flight call to {where} failed: {msg}", **ctx)
    if isinstance(exc, pa.ArrowIOError):
        if "connect" in msg.lower() or "unavailable" in msg.lower():
            return ServerUnavailableError(
                f"Cannot reach {where} ({msg}). Check that the server is running.", **ctx
            )
        return TransportError(f"I/O error talking to {where}: {msg}", **ctx)
    # ArrowTypeError, ArrowIndexError, ArrowMemoryError, ArrowCapacityError, ...: the result
    # could not be decoded or held on the client.
    return TransportError(
        f"Reading the result from {where} failed ({type(exc).__name__}: {msg}).", **ctx
    )


def _table_not_found(where: str, msg: str, ctx: dict[str, Any]) -> TableNotFoundError | None:
    """TableNotFoundError when the server says a table does not exist (DataFusion's planner:
    ``table 'public.iox.<name>' not found``), else None."""
    m = _TABLE_NOT_FOUND.search(msg)
    if m is None:
        return None
    return TableNotFoundError(
        f"{where} has no table {m.group(1)!r} ({msg}). Check the table name, or write to it "
        "first (tables are created by their first write).",
        table=m.group(1),
        server_message=msg,
        **ctx,
    )


def _database_not_found(
    config: InfluxDB3Config, db: str | None, msg: str, ctx: dict[str, Any]
) -> DatabaseNotFoundError:
    return DatabaseNotFoundError(
        f"Database {db!r} does not exist on {config.flight_location} ({msg}). Check the "
        "database name (INFLUXDB3_DATABASE_NAME / database=...) or write to it first.",
        **ctx,
    )


@contextlib.contextmanager
def map_flight_errors(
    config: InfluxDB3Config,
    query: str | None = None,
    *,
    database: str | None = None,
) -> Iterator[None]:
    """Re-raise pyarrow / ADBC exceptions raised inside the block as influx_flight errors
    (``from exc``)."""
    try:
        yield
    except InfluxDB3Error:
        raise
    except Exception as exc:
        mapped = translate_flight_error(exc, config, query=query, database=database)
        if mapped is None:
            mapped = translate_adbc_error(exc, config, query=query, database=database)
        if mapped is None:
            raise
        raise mapped from exc


# --- HTTP --------------------------------------------------------------------------------------


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), or None."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        return max(0.0, float(text))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def _parse_body(body: bytes | str | None) -> tuple[str, Any]:
    """(message, data) from InfluxDB's JSON error bodies (v3 {error,data} or v2 {code,message})."""
    if body is None:
        return "", None
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        doc = json.loads(text)
    except ValueError:
        return text.strip()[:2000], None
    if isinstance(doc, dict):
        if "error" in doc:
            return str(doc.get("error")), doc.get("data")
        if "message" in doc:
            return str(doc.get("message")), None
    return text.strip()[:2000], None


def rejected_lines_from(data: Any) -> list[RejectedLine]:
    """Rejected lines from a v3 partial-write ``data`` (a list, or one object for strict writes)."""
    items = data if isinstance(data, list) else [data] if isinstance(data, dict) else []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        try:
            line_number = int(item.get("line_number", 0))
        except (TypeError, ValueError):
            line_number = 0
        out.append(
            RejectedLine(
                line_number=line_number,
                message=str(item.get("error_message", "")),
                original_line=str(item.get("original_line", "")),
            )
        )
    return out


def error_from_http(
    config: InfluxDB3Config,
    status: int,
    body: bytes | str | None = None,
    headers: Mapping[str, str] | None = None,
    *,
    operation: str = "write",
    database: str | None = None,
    url: str | None = None,
) -> InfluxDB3Error:
    """The exception for an HTTP error response (the writer raises it).

    401/403 -> AuthenticationError; 404 -> DatabaseNotFoundError; 400/422 -> WriteError (with
    the rejected lines) for writes, QueryError otherwise; 413 -> WriteError (body too large);
    429 and 5xx -> ServerUnavailableError (retryable, with ``retry_after``).
    """
    db = database or config.database
    target = config.scrub(url or config.write_base_url)
    where = f"{target} (database {db!r})"
    ctx: dict[str, Any] = {"host": config.host, "database": db}
    message, data = _parse_body(body)
    message = config.scrub(message)
    hdrs = {k.lower(): v for k, v in (headers or {}).items()}
    if status in (401, 403):
        return AuthenticationError(
            f"{where} answered HTTP {status} to the {operation} ({message or 'not authorized'}). "
            "Check the token (INFLUXDB3_AUTH_TOKEN or the connection's password) and its "
            "permissions.",
            **ctx,
        )
    if status == 404:
        return DatabaseNotFoundError(
            f"{where} answered HTTP 404 to the {operation} ({message or 'not found'}). Check the "
            "database name and the write URL.",
            **ctx,
        )
    if status == 413:
        return WriteError(
            f"{where} refused the {operation} body as too large (HTTP 413: {message}). Send "
            "smaller batches.",
            status=status,
            **ctx,
        )
    if status == 429 or status >= 500:
        return ServerUnavailableError(
            f"{where} is unavailable or overloaded (HTTP {status}: {message or 'no details'}); "
            "transient failures are retried.",
            retry_after=parse_retry_after(hdrs.get("retry-after")),
            **ctx,
        )
    if operation == "write":
        rejected = rejected_lines_from(data)
        return WriteError(
            f"{where} rejected the {operation} (HTTP {status}: {message or 'no details'})"
            + (f"; {len(rejected)} line(s) rejected" if rejected else "")
            + (
                ". The other lines were stored; fix the rejected ones."
                if "partial write" in message
                else ". Nothing was stored; fix the data and retry."
            ),
            rejected_lines=rejected,
            status=status,
            **ctx,
        )
    return QueryError(
        f"{where} rejected the {operation} (HTTP {status}: {message or 'no details'}).",
        server_message=message,
        **ctx,
    )


# --- ADBC (Flight SQL) --------------------------------------------------------------------------

_ADBC_PREFIX = re.compile(r"^\[FlightSQL\]\s*|\s*\(\w+; \w+\)$|^\w+: \[FlightSQL\]\s*")


def translate_adbc_error(
    exc: BaseException,
    config: InfluxDB3Config,
    *,
    query: str | None = None,
    database: str | None = None,
    cancelled: bool = False,
) -> InfluxDB3Error | None:
    """The influx_flight exception for an adbc_driver_manager error, or None if it is not one.

    ADBC reports gRPC codes as AdbcStatusCode: UNAUTHENTICATED, UNAUTHORIZED, INVALID_ARGUMENT,
    NOT_FOUND, INTERNAL, IO (UNAVAILABLE), TIMEOUT, CANCELLED, NOT_IMPLEMENTED.
    """
    try:
        import adbc_driver_manager as adbc
    except ImportError:  # pragma: no cover - a core dependency
        return None
    if not isinstance(exc, adbc.Error):
        return None
    code = getattr(exc, "status_code", None)
    name = getattr(code, "name", "UNKNOWN")
    db = database or config.database
    where = _where(config, db)
    ctx: dict[str, Any] = {"host": config.host, "database": db, "query": query}
    msg = config.scrub(_DETAIL.sub("", _ADBC_PREFIX.sub("", str(exc).strip())).strip())
    if cancelled or name == "CANCELLED":
        return QueryCancelledError(f"The query on {where} was cancelled ({msg}).", **ctx)
    if name in ("UNAUTHENTICATED", "UNAUTHORIZED"):
        return AuthenticationError(
            f"{where} rejected the credentials ({msg}). Check the token "
            "(INFLUXDB3_AUTH_TOKEN or the connection's password).",
            **ctx,
        )
    if name == "TIMEOUT":
        return QueryTimeoutError(
            f"The query on {where} did not finish before its deadline ({msg}). Raise "
            "query_timeout or narrow the time range.",
            **ctx,
        )
    if name == "IO":
        return ServerUnavailableError(
            f"{where} is unavailable ({msg}). Check that the server is running and that host "
            "and port are right; transient failures are retried.",
            **ctx,
        )
    missing = _table_not_found(where, msg, ctx)
    if missing is not None:
        return missing
    if _DB_NOT_FOUND.search(msg) or name == "NOT_FOUND":
        return _database_not_found(config, db, msg, ctx)
    if name in ("INVALID_ARGUMENT", "NOT_IMPLEMENTED", "INTERNAL", "INVALID_STATE", "INVALID_DATA"):
        return QueryError(
            f"{where} rejected the Flight SQL query: {msg}. Fix the query text or its parameters.",
            server_message=msg,
            **ctx,
        )
    return TransportError(f"Flight SQL call to {where} failed ({name}: {msg}).", **ctx)
