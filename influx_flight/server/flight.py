"""The stand-in's Arrow Flight service: InfluxDB 3 DoGet tickets and Flight SQL dispatch.

* DoGet with a JSON ticket (``influxdb3-protocol.md`` §1.2) runs SQL (or InfluxQL through
  ``influx_flight.server.influxql.execute``) and streams the result:
  schema first, tags hydrated to Utf8, batches straight from DataFusion's C stream.
* Every other ticket (protobuf ``ReadInfo``) and GetFlightInfo / DoAction / DoPut / ListActions
  go to ``influx_flight.server.flightsql.FlightSqlHandler(engine)``.
* Errors from :mod:`influx_flight.server.errors` become gRPC codes in :func:`to_flight_error`.

Handlers get the call's request headers with :func:`call_headers` (a middleware captures them).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.flight as fl

from influx_flight.server import influxql
from influx_flight.server.auth import Authenticator, extract_grpc_token
from influx_flight.server.cancel import CANCEL_CHECK
from influx_flight.server.engine import Engine, hydrate_reader, hydrate_schema
from influx_flight.server.errors import (
    GrpcCode,
    InvalidRequest,
    InvalidTicket,
    ServerError,
    Unimplemented,
)
from influx_flight.server.flightsql import FlightSqlHandler
from influx_flight.server.wire import (
    WireError,
    WireExhausted,
    WireInvalid,
    WireNotFound,
    WireUnimplemented,
    WireUnknown,
)

log = logging.getLogger(__name__)

MIDDLEWARE_KEY = "influx_flight"

#: JSON ticket spellings of the database key (serde aliases in Core's ``ReadInfoJson``).
DATABASE_KEYS = ("database", "namespace_name", "bucket", "bucket-name")
_KNOWN_KEYS = (*DATABASE_KEYS, "sql_query", "query_type", "params", "is_debug")
_BASE_TABLE_TYPES = ("BASE TABLE", "TABLE")


# -- errors ---------------------------------------------------------------------------------


def to_flight_error(exc: ServerError) -> Exception:
    """The exception that makes the Flight server answer with ``exc``'s gRPC code.

    pyarrow turns ArrowInvalid into INVALID_ARGUMENT, ArrowKeyError into NOT_FOUND,
    ArrowNotImplementedError into UNIMPLEMENTED, ArrowCapacityError into RESOURCE_EXHAUSTED
    and the Flight*Error classes into their namesakes. The Arrow ones are raised as
    ``wire.Wire*`` so that no traceback travels with them (see ``influx_flight.server.wire``).
    """
    message = exc.message[:2000] + ("..." if len(exc.message) > 2000 else "")
    code = exc.grpc_code
    if code is GrpcCode.UNAUTHENTICATED:
        return fl.FlightUnauthenticatedError(message)
    if code is GrpcCode.PERMISSION_DENIED:
        return fl.FlightUnauthorizedError(message)
    if code is GrpcCode.INTERNAL:
        return fl.FlightInternalError(message)
    if code is GrpcCode.UNAVAILABLE:
        return fl.FlightUnavailableError(message)
    if code is GrpcCode.CANCELLED:
        return fl.FlightCancelledError(message)
    if code is GrpcCode.NOT_FOUND:
        return WireNotFound(message)
    if code is GrpcCode.UNIMPLEMENTED:
        return WireUnimplemented(message)
    if code is GrpcCode.RESOURCE_EXHAUSTED:
        return WireExhausted(message)
    return WireInvalid(message)


_INTERNAL_MESSAGE = "Internal error: the server could not handle this request (see its log)"


def wire_error(exc: BaseException) -> BaseException:
    """Any exception as one that crosses the wire cleanly: a message, the right code, no
    traceback, file path or class name. Unexpected ones are logged here with their traceback.
    """
    if isinstance(exc, ServerError):
        return to_flight_error(exc)
    if isinstance(exc, fl.FlightError | WireError):
        return exc
    if isinstance(exc, pa.ArrowException):
        message = str(exc)
        if isinstance(exc, pa.ArrowKeyError):
            return WireNotFound(message)
        if isinstance(exc, pa.ArrowNotImplementedError):
            return WireUnimplemented(message)
        if isinstance(exc, pa.ArrowCapacityError | pa.ArrowMemoryError):
            return WireExhausted(message)
        if isinstance(exc, pa.ArrowCancelled):
            return fl.FlightCancelledError(message)
        return WireInvalid(message)
    log.error("Flight request failed", exc_info=(type(exc), exc, exc.__traceback__))
    return fl.FlightInternalError(_INTERNAL_MESSAGE)


def _flight_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Decorator of every RPC: authenticate before reading anything of the request, then
    turn any exception into a clean gRPC status (:func:`wire_error`).
    """

    def wrapper(self: Any, context: fl.ServerCallContext, *args: Any) -> Any:
        token = CANCEL_CHECK.set(context.is_cancelled)
        try:
            self._authorize(context)
            return method(self, context, *args)
        except Exception as exc:
            raise wire_error(exc) from None
        finally:
            CANCEL_CHECK.reset(token)

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def _schema_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """GetSchema: pyarrow sends a Flight*Error raised there with its traceback; not this."""

    def wrapper(self: Any, context: fl.ServerCallContext, *args: Any) -> Any:
        try:
            return method(self, context, *args)
        except fl.FlightError as exc:
            raise WireUnknown(str(exc)) from None

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def clean_stream(
    reader: pa.RecordBatchReader, cancelled: Callable[[], bool] | None = None
) -> pa.RecordBatchReader:
    """``reader`` whose errors while streaming cross the wire cleanly too, and whose
    DataFusion work stops once ``cancelled()`` (the call's ``is_cancelled``) says so.
    """

    def batches() -> Iterator[pa.RecordBatch]:
        # pyarrow may resume this generator in another Context: set, never reset by token.
        CANCEL_CHECK.set(cancelled)
        try:
            yield from reader
        except Exception as exc:
            raise wire_error(exc) from None
        finally:
            CANCEL_CHECK.set(None)
            with contextlib.suppress(Exception):
                reader.close()

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


# -- headers middleware ---------------------------------------------------------------------


class _CallMiddleware(fl.ServerMiddleware):
    """Keeps the request headers of one call; answers Handshake with the Bearer token."""

    def __init__(self, headers: dict[str, list[Any]], method: Any) -> None:
        self.headers = headers
        self.method = method

    def sending_headers(self) -> dict[str, str]:
        if self.method != fl.FlightMethod.HANDSHAKE:
            return {}
        values = self.headers.get("authorization") or []
        token = extract_grpc_token(values[0]) if values else None
        if token is None:
            return {}
        return {"authorization": "Bearer " + token.decode("utf-8", "replace")}


class _CallMiddlewareFactory(fl.ServerMiddlewareFactory):
    def start_call(self, info: fl.CallInfo, headers: dict[str, list[Any]]) -> _CallMiddleware:
        return _CallMiddleware({k.lower(): list(v) for k, v in headers.items()}, info.method)


def call_headers(context: fl.ServerCallContext) -> dict[str, list[str]]:
    """The request headers of the current call: lowercase name -> list of values."""
    middleware = context.get_middleware(MIDDLEWARE_KEY)
    if middleware is None:
        return {}
    return {
        k: [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in values]
        for k, values in middleware.headers.items()
    }


class _EchoHandshake(fl.ServerAuthHandler):
    """Handshake checks nothing and echoes the payload (Core, §2.2).

    Authentication happens per call on the ``authorization`` header instead.
    """

    def authenticate(self, outgoing: Any, incoming: Any) -> None:
        try:
            payload = incoming.read()
        except Exception:  # an empty handshake stream
            payload = b""
        outgoing.write(payload or b"")

    def is_valid(self, token: bytes) -> str:
        return ""


# -- tickets --------------------------------------------------------------------------------


class TicketRequest:
    """A decoded JSON DoGet ticket."""

    __slots__ = ("database", "is_debug", "params", "query", "query_type")

    def __init__(
        self,
        database: str,
        query: str,
        query_type: str,
        params: dict[str, Any],
        is_debug: bool,
    ) -> None:
        self.database = database
        self.query = query
        self.query_type = query_type
        self.params = params
        self.is_debug = is_debug

    def __repr__(self) -> str:
        return (
            f"TicketRequest(database={self.database!r}, query_type={self.query_type!r},"
            f" query={self.query[:80]!r})"
        )


class _Pairs(list):  # type: ignore[type-arg]
    """A JSON object as its (key, value) pairs, so duplicate keys stay visible."""


def decode_json_ticket(raw: bytes) -> TicketRequest:
    """Decode a JSON ticket as Core's serde struct would; raises :class:`InvalidTicket`."""
    try:
        obj = json.loads(raw.decode("utf-8"), object_pairs_hook=_Pairs)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidTicket(f"not UTF-8 JSON: {exc}") from None
    except RecursionError:
        raise InvalidTicket("the JSON is nested too deeply") from None
    if not isinstance(obj, _Pairs):
        raise InvalidTicket("the ticket is not a JSON object")
    top: dict[str, Any] = {}
    for key, value in obj:
        if key in top and key in _KNOWN_KEYS:
            raise InvalidTicket(f"duplicate field `{key}`")
        top[key] = value
    present = [k for k in DATABASE_KEYS if k in top]
    if len(present) > 1:
        raise InvalidTicket(f"duplicate field `database` (given as {present})")
    if not present:
        raise InvalidTicket("missing field `database`")
    database = top[present[0]]
    if not isinstance(database, str):
        raise InvalidTicket("`database` must be a string")
    if "sql_query" not in top:
        raise InvalidTicket("missing field `sql_query`")
    query = top["sql_query"]
    if not isinstance(query, str):
        raise InvalidTicket("`sql_query` must be a string")
    query_type = top.get("query_type")
    if query_type is None:
        query_type = "sql"
    if query_type not in ("sql", "influxql"):
        raise InvalidTicket(f"unknown variant `{query_type}`, expected `sql` or `influxql`")
    params: dict[str, Any] = {}
    if "params" in top:
        raw_params = top["params"]
        if not isinstance(raw_params, _Pairs):
            raise InvalidTicket("`params` must be a JSON object")
        for name, value in raw_params:
            if isinstance(value, list):  # arrays and objects (_Pairs is a list)
                raise InvalidTicket(
                    f"parameter '{name}': JSON arrays and objects are not supported as query"
                    " parameters"
                )
            params[name] = value
    is_debug = top.get("is_debug", False)
    if not isinstance(is_debug, bool):
        raise InvalidTicket("`is_debug` must be a boolean")
    return TicketRequest(database, query, query_type, params, is_debug)


# -- the service ----------------------------------------------------------------------------


class InfluxFlightServer(fl.FlightServerBase):
    """pyarrow Flight server answering as InfluxDB 3 Core does."""

    def __init__(
        self,
        engine: Engine,
        authenticator: Authenticator,
        location: str = "grpc+tcp://127.0.0.1:0",
    ) -> None:
        super().__init__(
            location,
            auth_handler=_EchoHandshake(),
            middleware={MIDDLEWARE_KEY: _CallMiddlewareFactory()},
        )
        self.engine = engine
        self.authenticator = authenticator
        self._flightsql = FlightSqlHandler(self.engine)

    # -- helpers --------------------------------------------------------------------------

    def _authorize(self, context: fl.ServerCallContext) -> dict[str, list[str]]:
        headers = call_headers(context)
        self.authenticator.check_grpc(headers)
        return headers

    @staticmethod
    def _stream(reader: Any, context: fl.ServerCallContext) -> fl.FlightDataStream:
        if isinstance(reader, fl.FlightDataStream):
            return reader
        if isinstance(reader, pa.Table):
            reader = pa.RecordBatchReader.from_batches(
                hydrate_schema(reader.schema), reader.to_batches()
            )
        return fl.RecordBatchStream(clean_stream(hydrate_reader(reader), context.is_cancelled))

    # -- DoGet ----------------------------------------------------------------------------

    @_flight_errors
    def do_get(self, context: fl.ServerCallContext, ticket: fl.Ticket) -> fl.FlightDataStream:
        """JSON tickets here; protobuf tickets go to the Flight SQL handler."""
        raw = ticket.ticket
        headers = call_headers(context)
        base_type = (headers.get("x-influxdata-base-table-type") or [None])[0]
        if base_type is not None and base_type not in _BASE_TABLE_TYPES:
            raise InvalidRequest(
                f"Invalid base table type: '{base_type}'; expected 'BASE TABLE' or 'TABLE'"
            )
        if raw.lstrip()[:1] != b"{":
            return self._stream(self._flightsql.do_get(context, raw), context)
        request = decode_json_ticket(raw)
        return self._stream(self.run_ticket(request), context)

    def run_ticket(self, request: TicketRequest) -> pa.RecordBatchReader:
        """Execute a decoded ticket and return its (hydrated) stream."""
        if request.query_type == "influxql":
            if not self.engine.has_database(request.database):
                from influx_flight.server.errors import DatabaseNotFound

                raise DatabaseNotFound(request.database)
            # system.queries lists InfluxQL queries too (query_type "influxql", as in Core)
            self.engine.limits.check_query_text(request.query)
            record = self.engine._record_query(request.database, "influxql", request.query)
            try:
                reader = self.engine.admit(
                    lambda: influxql.execute(
                        self.engine, request.database, request.query, request.params
                    )
                )
            except BaseException:
                self.engine._finish_query(record, success=False)
                raise
            self.engine._finish_query(record, success=True)
            return reader
        return self.engine.query_sql(request.database, request.query, request.params, hydrate=True)

    # -- delegated RPCs -------------------------------------------------------------------

    @_flight_errors
    def get_flight_info(
        self, context: fl.ServerCallContext, descriptor: fl.FlightDescriptor
    ) -> fl.FlightInfo:
        handler = self._flightsql
        return handler.get_flight_info(context, descriptor)

    @_flight_errors
    def do_action(self, context: fl.ServerCallContext, action: fl.Action) -> Iterator[Any]:
        handler = self._flightsql
        result = handler.do_action(context, action)
        # Drain here (results are small) so errors raised by a generator get their gRPC code.
        return iter(list(result)) if result is not None else iter(())

    @_flight_errors
    def do_put(
        self,
        context: fl.ServerCallContext,
        descriptor: fl.FlightDescriptor,
        reader: fl.MetadataRecordBatchReader,
        writer: fl.FlightMetadataWriter,
    ) -> None:
        handler = self._flightsql
        handler.do_put(context, descriptor, reader, writer)

    @_flight_errors
    def list_actions(self, context: fl.ServerCallContext) -> list[Any]:
        return list(self._flightsql.list_actions(context))

    @_flight_errors
    def list_flights(self, context: fl.ServerCallContext, criteria: bytes) -> Iterator[Any]:
        raise Unimplemented("Not yet implemented: list_flights")

    @_schema_errors
    @_flight_errors
    def get_schema(
        self, context: fl.ServerCallContext, descriptor: fl.FlightDescriptor
    ) -> fl.SchemaResult:
        raise Unimplemented("Not yet implemented: get_schema")

    @_flight_errors
    def do_exchange(
        self,
        context: fl.ServerCallContext,
        descriptor: fl.FlightDescriptor,
        reader: Any,
        writer: Any,
    ) -> None:
        raise Unimplemented("Not yet implemented: do_exchange")


def headers_get(headers: Mapping[str, list[str]], name: str) -> str | None:
    """First value of header ``name`` (lowercase) or None."""
    values = headers.get(name.lower())
    return values[0] if values else None


__all__ = [
    "DATABASE_KEYS",
    "MIDDLEWARE_KEY",
    "InfluxFlightServer",
    "TicketRequest",
    "call_headers",
    "decode_json_ticket",
    "headers_get",
    "to_flight_error",
]
