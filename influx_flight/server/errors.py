"""Server-side errors of the stand-in, each knowing its gRPC code and HTTP status.

The engine, the write path and the auth layer raise these; ``flight.py`` turns them into
Flight status codes in one place (:func:`influx_flight.server.flight.to_flight_error`) and
``http_api.py`` turns them into HTTP statuses (``exc.http_status``). The gRPC codes and
messages follow ``influxdb3-protocol.md`` §3.3 (InfluxDB 3 Core's behaviour). No pyarrow
import here, so the HTTP side can use the tree cheaply.
"""

from __future__ import annotations

from enum import Enum


class GrpcCode(Enum):
    """The gRPC status codes the stand-in produces (names as in the gRPC spec)."""

    CANCELLED = 1
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16


class ServerError(Exception):
    """Base of every error the stand-in reports to a client.

    ``str(exc)`` is the message sent to the client; it must never contain a token.
    """

    grpc_code: GrpcCode = GrpcCode.INTERNAL
    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidTicket(ServerError):
    """A DoGet ticket that is neither valid protobuf nor a valid JSON ticket (§1.1)."""

    grpc_code = GrpcCode.INVALID_ARGUMENT
    http_status = 400

    def __init__(self, detail: str | None = None) -> None:
        # The real server says exactly this; ``detail`` is kept for logs and debugging only.
        super().__init__("Invalid ticket. Error: Invalid ticket")
        self.detail = detail


class InvalidRequest(ServerError):
    """A malformed request that is not a ticket problem (bad header, bad parameter...)."""

    grpc_code = GrpcCode.INVALID_ARGUMENT
    http_status = 400


class Unauthenticated(ServerError):
    """Missing, unparseable or unknown token (gRPC UNAUTHENTICATED, HTTP 401)."""

    grpc_code = GrpcCode.UNAUTHENTICATED
    http_status = 401

    def __init__(self, message: str = "Unauthenticated") -> None:
        super().__init__(message)


class PermissionDenied(ServerError):
    """A known but expired (or otherwise not allowed) token (PERMISSION_DENIED, HTTP 403)."""

    grpc_code = GrpcCode.PERMISSION_DENIED
    http_status = 403

    def __init__(self, message: str = "Permission denied") -> None:
        super().__init__(message)


class MalformedAuthorization(ServerError):
    """An HTTP ``Authorization`` header not of the form ``<scheme> <token>`` (HTTP 400)."""

    grpc_code = GrpcCode.UNAUTHENTICATED
    http_status = 400
    #: The exact body text of InfluxDB 3 Core (note the space after the colon).
    BODY = (
        "Authorization header was malformed, the request was not in the form of "
        "'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic"
    )

    def __init__(self) -> None:
        super().__init__(self.BODY)


class DatabaseNotFound(ServerError):
    """Query or delete on a database that does not exist.

    Core answers INTERNAL over Flight (§3.3, code-derived) and 404 over HTTP.
    """

    grpc_code = GrpcCode.INTERNAL
    http_status = 404

    def __init__(self, database: str) -> None:
        super().__init__(
            f"Cannot retrieve database: External error: database not found: {database}"
        )
        self.database = database


class DatabaseAlreadyExists(ServerError):
    """``create_database`` on an existing name (HTTP 409)."""

    grpc_code = GrpcCode.ALREADY_EXISTS
    http_status = 409

    def __init__(self, database: str) -> None:
        super().__init__(f"attempted to create resource that already exists: {database}")
        self.database = database


class TableNotFound(ServerError):
    """Delete of a table that does not exist (HTTP 404, as Core's catalog NotFound)."""

    grpc_code = GrpcCode.NOT_FOUND
    http_status = 404

    def __init__(self, database: str, table: str) -> None:
        super().__init__(f"table not found: {table} in database {database}")
        self.database = database
        self.table = table


class TableAlreadyExists(ServerError):
    """Create of a table that exists already (HTTP 409)."""

    grpc_code = GrpcCode.ALREADY_EXISTS
    http_status = 409

    def __init__(self, database: str, table: str) -> None:
        super().__init__(f"attempted to create resource that already exists: {table}")
        self.database = database
        self.table = table


class InvalidDatabaseName(ServerError):
    """A database name breaking Core's ``validate_db_name`` rules (HTTP 400)."""

    grpc_code = GrpcCode.INVALID_ARGUMENT
    http_status = 400


class QueryPlanError(ServerError):
    """SQL/InfluxQL parse, plan or execution error: INVALID_ARGUMENT, HTTP 400."""

    grpc_code = GrpcCode.INVALID_ARGUMENT
    http_status = 400


class QueryNotImplemented(ServerError):
    """A statement DataFusion does not implement: INVALID_ARGUMENT over Flight, HTTP 405."""

    grpc_code = GrpcCode.INVALID_ARGUMENT
    http_status = 405


class QueryInternalError(ServerError):
    """DataFusion internal/IO/configuration errors: INTERNAL, HTTP 500."""

    grpc_code = GrpcCode.INTERNAL
    http_status = 500


class ResourcesExhausted(ServerError):
    """Memory pool exhausted or server-side timeout: RESOURCE_EXHAUSTED, HTTP 500."""

    grpc_code = GrpcCode.RESOURCE_EXHAUSTED
    http_status = 500


class QueryFileLimitExceeded(ServerError):
    """A query that would scan more Parquet files than ``--query-file-limit`` (Core's text).

    Core raises it as a DataFusion External error while planning: INTERNAL over Flight, 500
    over HTTP (``influxdb3_write/src/write_buffer/mod.rs``). Like Core, the message names the
    limit (not the count).
    """

    grpc_code = GrpcCode.INTERNAL
    http_status = 500

    def __init__(self, limit: int) -> None:
        super().__init__(
            "error while planning query: External error: Query would scan"
            f" {limit} Parquet files, exceeding the file limit. InfluxDB 3 Core caps file"
            " access to prevent performance degradation and memory issues. Use a narrower time"
            " range, or increase the limit with --query-file-limit (this may cause slower"
            " queries or instability).\n\nTo remove this limitation, upgrade to InfluxDB 3"
            " Enterprise, which automatically compacts files for efficient querying across any"
            " time range. Free for non-commercial and home use, and free trials for commercial"
            " evaluation: https://www.influxdata.com/downloads"
        )
        self.limit = limit


class WriteRejected(ServerError):
    """A batch the engine cannot take (type conflict, bad column type, missing time).

    The write path reports it per line; raised by ``Engine.append`` for a whole batch.
    """

    grpc_code = GrpcCode.INVALID_ARGUMENT
    http_status = 400


class Unimplemented(ServerError):
    """An RPC or message the stand-in (like Core) does not implement: UNIMPLEMENTED, 501."""

    grpc_code = GrpcCode.UNIMPLEMENTED
    http_status = 501


__all__ = [
    "DatabaseAlreadyExists",
    "DatabaseNotFound",
    "GrpcCode",
    "InvalidDatabaseName",
    "InvalidRequest",
    "InvalidTicket",
    "MalformedAuthorization",
    "PermissionDenied",
    "QueryFileLimitExceeded",
    "QueryInternalError",
    "QueryNotImplemented",
    "QueryPlanError",
    "ResourcesExhausted",
    "ServerError",
    "TableAlreadyExists",
    "TableNotFound",
    "Unauthenticated",
    "Unimplemented",
    "WriteRejected",
]
