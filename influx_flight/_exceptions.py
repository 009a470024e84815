"""The one exception tree of influx_flight (no pyarrow import here).

The tree is drawn in :class:`InfluxDB3Error`'s docstring (``help(InfluxDB3Error)``).

Bases carry the context (host, database, query) so that callers can log or branch on it;
messages name host and database and say what to do. Tokens never appear in any message.
The translation from pyarrow.flight / HTTP errors lives in ``influx_flight._errors``
(public as ``influx_flight.map_flight_errors`` / ``translate_flight_error`` / ``error_from_http``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "AuthenticationError",
    "ConfigurationError",
    "DatabaseNotFoundError",
    "EncodingError",
    "ExportError",
    "InfluxDB3Error",
    "OperationCancelledError",
    "QueryCancelledError",
    "QueryError",
    "QueryTimeoutError",
    "RejectedLine",
    "ResultTooLargeError",
    "ServerUnavailableError",
    "TableNotFoundError",
    "TransportError",
    "WriteError",
]


class InfluxDB3Error(Exception):
    """Base of every error raised by influx_flight; the tree below it:

    ```
    InfluxDB3Error                      host, database, query
     ├── ConfigurationError             invalid settings (.field names the setting)
     ├── AuthenticationError            UNAUTHENTICATED / PERMISSION_DENIED / 401 / 403
     ├── DatabaseNotFoundError          NOT_FOUND, Core's INTERNAL "database not found", 404
     ├── QueryError                     INVALID_ARGUMENT & co: carries .server_message
     │    └── TableNotFoundError        the query names a table that does not exist (.table)
     ├── OperationCancelledError        a write or query was cancelled (client.cancel(), close())
     │    └── QueryCancelledError       the query was cancelled (also the server's CANCELLED)
     ├── TransportError                 the connection failed
     │    ├── ServerUnavailableError    UNAVAILABLE, refused connection, 429/5xx (retried; .retry_after)
     │    └── QueryTimeoutError         deadline exceeded
     ├── WriteError                     carries .rejected_lines (line_number, message, original_line, row)
     │    └── EncodingError             a value line protocol cannot carry; nothing was sent (.column, .rows)
     ├── ResultTooLargeError            a guard (XCom rows) was exceeded
     └── ExportError                    a sink failed; nothing was left behind (.path)
    ```

    ``args == (message,)`` and the context lives in ``__dict__`` so instances pickle (Airflow and
    Dagster move exceptions across processes).
    """

    #: Whether a retry of the same call may succeed (transient failures only).
    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str,
        *,
        host: str | None = None,
        database: str | None = None,
        query: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.host = host
        self.database = database
        self.query = query

    def __str__(self) -> str:
        return self.message


# --- configuration ---------------------------------------------------------------------------


class ConfigurationError(InfluxDB3Error, ValueError):
    """Invalid settings; ``field`` names the offending setting."""

    def __init__(self, message: str, *, field: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.field = field


# --- server answers ----------------------------------------------------------------------------


class AuthenticationError(InfluxDB3Error):
    """The server rejected the token (missing, unknown, expired or not allowed)."""


class DatabaseNotFoundError(InfluxDB3Error):
    """The database does not exist on the server."""


class QueryError(InfluxDB3Error):
    """The server refused the query (syntax, unknown table or column, limits)."""

    def __init__(self, message: str, *, server_message: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.server_message = server_message


class TableNotFoundError(QueryError):
    """The query names a table (measurement) that does not exist in the database (yet);
    ``table`` is its name as the server reported it, when known."""

    def __init__(self, message: str, *, table: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.table = table


class OperationCancelledError(InfluxDB3Error):
    """A write or query was cancelled before it completed (``client.cancel()``, ``close()``).

    Writes already acknowledged were stored; writing the same points again is safe.
    """


class QueryCancelledError(OperationCancelledError):
    """The query was cancelled before it completed (``client.cancel()`` or the server)."""


# --- transport -----------------------------------------------------------------------------------


class TransportError(InfluxDB3Error):
    """The connection to the server failed."""


class ServerUnavailableError(TransportError):
    """The server is unreachable or overloaded; the call may succeed later."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, retry_after: float | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.retry_after = retry_after


class QueryTimeoutError(TransportError):
    """The call's deadline passed before the server finished."""


# --- writes, guards, sinks -----------------------------------------------------------------------


@dataclass(frozen=True)
class RejectedLine:
    """One line the server refused: ``line_number`` starts at 1; ``row`` is the input row if known."""

    line_number: int
    message: str
    original_line: str = ""
    row: int | None = None


class WriteError(InfluxDB3Error):
    """The server refused some or all written lines; ``rejected_lines`` says which and why."""

    def __init__(
        self,
        message: str,
        *,
        rejected_lines: list[RejectedLine] | tuple[RejectedLine, ...] = (),
        status: int | None = None,
        **context: Any,
    ) -> None:
        super().__init__(message, **context)
        self.rejected_lines = list(rejected_lines)
        self.status = status


class EncodingError(WriteError, ValueError):
    """Input values that line protocol cannot carry; nothing was sent.

    ``column`` names the offending column and ``rows`` lists (up to 10) input row indices.
    """

    def __init__(
        self, message: str, *, column: str | None = None, rows: Sequence[int] = (), **context: Any
    ) -> None:
        super().__init__(message, **context)
        self.column = column
        self.rows = list(rows)


class ResultTooLargeError(InfluxDB3Error):
    """A result exceeded a size guard (e.g. rows returned to XCom)."""


class ExportError(InfluxDB3Error):
    """A sink failed; the destination was left untouched (no partial file)."""

    def __init__(self, message: str, *, path: str | None = None, **context: Any) -> None:
        super().__init__(message, **context)
        self.path = path


def _set_public_module() -> None:
    """Show ``influx_flight.X`` in reprs and tracebacks (the private module is an implementation detail)."""
    for name in __all__:
        globals()[name].__module__ = "influx_flight"


_set_public_module()
