"""The exception tree and its one translation point, exercised over a real gRPC Flight peer."""

from __future__ import annotations

import email.utils
import inspect
import pickle
import time
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.flight as flight
import pytest

import influx_flight
from influx_flight import (
    AuthenticationError,
    ConfigurationError,
    DatabaseNotFoundError,
    ExportError,
    InfluxDB3Config,
    InfluxDB3Error,
    QueryCancelledError,
    QueryError,
    QueryTimeoutError,
    RejectedLine,
    ResultTooLargeError,
    ServerUnavailableError,
    TableNotFoundError,
    TransportError,
    WriteError,
    error_from_http,
    map_flight_errors,
    translate_flight_error,
)

TOKEN = "apiv3_do-not-leak-me"

# What the server raises (Python side of a real pyarrow Flight server) -> what the client maps to.
SERVER_ERRORS: dict[str, tuple[BaseException, type[InfluxDB3Error]]] = {
    "unauthenticated": (flight.FlightUnauthenticatedError("Unauthenticated"), AuthenticationError),
    "permission": (flight.FlightUnauthorizedError("Permission denied"), AuthenticationError),
    "invalid": (
        pa.ArrowInvalid("Error while planning query: syntax error at or near FORM"),
        QueryError,
    ),
    "table_not_found": (
        pa.ArrowInvalid("Error while planning query: table 'public.iox.nope' not found"),
        TableNotFoundError,
    ),
    "not_found": (KeyError("Database 'nope' not found"), DatabaseNotFoundError),
    "core_db_not_found": (
        flight.FlightInternalError(
            "Cannot retrieve database: External error: database not found: nope"
        ),
        DatabaseNotFoundError,
    ),
    "internal": (
        flight.FlightInternalError("Query would scan 999 Parquet files, exceeding the file limit"),
        QueryError,
    ),
    "unavailable": (flight.FlightUnavailableError("busy"), ServerUnavailableError),
    "timeout": (flight.FlightTimedOutError("deadline"), QueryTimeoutError),
    "cancelled": (flight.FlightCancelledError("cancelled"), QueryCancelledError),
    "unimplemented": (NotImplementedError("SHOW DATABASES"), QueryError),
    "unknown": (flight.FlightServerError("boom"), TransportError),
    "echo_token": (flight.FlightUnauthenticatedError(f"bad token {TOKEN}"), AuthenticationError),
}


class FailingServer(flight.FlightServerBase):
    """Answers each DoGet ticket with the named gRPC error."""

    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> None:
        raise SERVER_ERRORS[ticket.ticket.decode()][0]


@pytest.fixture(scope="module")
def failing_server() -> Iterator[FailingServer]:
    server = FailingServer("grpc+tcp://127.0.0.1:0")
    yield server
    server.shutdown()


@pytest.fixture
def config(failing_server: FailingServer) -> InfluxDB3Config:
    return InfluxDB3Config(
        host=f"grpc+tcp://127.0.0.1:{failing_server.port}", database="sensors", token=TOKEN
    )


@pytest.mark.parametrize("name", sorted(SERVER_ERRORS))
def test_grpc_errors_map_to_the_tree(name: str, config: InfluxDB3Config) -> None:
    expected = SERVER_ERRORS[name][1]
    client = flight.FlightClient(config.flight_location)
    with pytest.raises(InfluxDB3Error) as info, map_flight_errors(config, "SELECT 1"):
        client.do_get(flight.Ticket(name.encode())).read_all()
    err = info.value
    assert type(err) is expected
    assert isinstance(err.__cause__, pa.ArrowException)  # raised `from exc`
    assert err.host == config.host
    assert err.database == "sensors"
    assert err.query == "SELECT 1"
    text = str(err)
    assert TOKEN not in text
    assert "gRPC client debug context" not in text
    assert "Traceback" not in text
    if expected is not DatabaseNotFoundError:
        assert config.flight_location in text and "'sensors'" in text
    client.close()


def test_query_error_carries_server_message(config: InfluxDB3Config) -> None:
    client = flight.FlightClient(config.flight_location)
    with pytest.raises(QueryError) as info, map_flight_errors(config):
        client.do_get(flight.Ticket(b"invalid")).read_all()
    assert info.value.server_message == ("Error while planning query: syntax error at or near FORM")
    client.close()


def test_refused_connection_is_unavailable_and_says_what_to_do() -> None:
    cfg = InfluxDB3Config(host="grpc+tcp://127.0.0.1:1", database="db")
    client = flight.FlightClient(cfg.flight_location)
    with pytest.raises(ServerUnavailableError) as info, map_flight_errors(cfg):
        client.do_get(flight.Ticket(b"x")).read_all()
    assert "Check that the server is running" in str(info.value)
    assert info.value.retryable
    client.close()


def _exception_classes(module: object) -> set[type[BaseException]]:
    return {
        obj
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, pa.ArrowException)
    }


# Every Arrow/Flight exception class -> the class it must map to. A new upstream class makes
# test_every_arrow_exception_is_mapped fail until it is added here deliberately.
EXPECTED_MAPPING: dict[str, type[InfluxDB3Error]] = {
    "FlightCancelledError": QueryCancelledError,
    "FlightError": TransportError,
    "FlightInternalError": QueryError,
    "FlightServerError": TransportError,
    "FlightTimedOutError": QueryTimeoutError,
    "FlightUnauthenticatedError": AuthenticationError,
    "FlightUnauthorizedError": AuthenticationError,
    "FlightUnavailableError": ServerUnavailableError,
    "FlightWriteSizeExceededError": TransportError,
    "ArrowCancelled": QueryCancelledError,
    "ArrowCapacityError": TransportError,
    "ArrowException": TransportError,
    "ArrowIndexError": TransportError,
    "ArrowInvalid": QueryError,
    "ArrowIOError": TransportError,
    "ArrowKeyError": QueryError,
    "ArrowMemoryError": TransportError,
    "ArrowNotImplementedError": QueryError,
    "ArrowSerializationError": TransportError,
    "ArrowTypeError": TransportError,
}


def test_every_arrow_exception_is_mapped() -> None:
    cfg = InfluxDB3Config(host="http://h:1", database="db")
    classes = _exception_classes(flight) | _exception_classes(pa.lib)
    unmapped = sorted(c.__name__ for c in classes if c.__name__ not in EXPECTED_MAPPING)
    assert unmapped == [], f"add a mapping for {unmapped}"
    for cls in classes:
        try:
            exc = cls("message")
        except TypeError:  # FlightWriteSizeExceededError(message, limit, actual)
            exc = cls("message", 1, 2)
        mapped = translate_flight_error(exc, cfg)
        assert type(mapped) is EXPECTED_MAPPING[cls.__name__], cls


def test_non_arrow_errors_pass_through() -> None:
    cfg = InfluxDB3Config(host="http://h:1", database="db")
    with pytest.raises(ZeroDivisionError), map_flight_errors(cfg):
        1 / 0  # noqa: B018


def test_resource_exhausted_and_grpc_timeout_elapsed() -> None:
    cfg = InfluxDB3Config(host="http://h:1", database="db")
    exhausted = pa.ArrowInvalid("gRPC returned resource exhausted error, with message: mem pool")
    assert type(translate_flight_error(exhausted, cfg)) is QueryError
    elapsed = pa.ArrowInvalid(
        "gRPC returned resource exhausted error, with message: grpc-timeout elapsed"
    )
    assert type(translate_flight_error(elapsed, cfg)) is QueryTimeoutError


def test_tree_shape() -> None:
    assert issubclass(ServerUnavailableError, TransportError)
    assert issubclass(QueryTimeoutError, TransportError)
    for cls in (
        ConfigurationError,
        AuthenticationError,
        DatabaseNotFoundError,
        QueryError,
        TransportError,
        WriteError,
        ResultTooLargeError,
        ExportError,
        QueryCancelledError,
    ):
        assert issubclass(cls, InfluxDB3Error)
    assert not issubclass(QueryTimeoutError, TimeoutError)  # no built-in shadowing
    retryable = {
        c.__name__
        for c in (
            InfluxDB3Error,
            ConfigurationError,
            AuthenticationError,
            DatabaseNotFoundError,
            QueryError,
            TransportError,
            ServerUnavailableError,
            QueryTimeoutError,
            WriteError,
            ResultTooLargeError,
            ExportError,
            QueryCancelledError,
        )
        if c.retryable
    }
    assert retryable == {"ServerUnavailableError"}


def test_docstring_draws_the_tree() -> None:
    doc = influx_flight.InfluxDB3Error.__doc__ or ""  # help(InfluxDB3Error) draws the tree
    for name in ("InfluxDB3Error", "├── AuthenticationError", "│    ├── ServerUnavailableError"):
        assert name in doc


@pytest.mark.parametrize(
    "exc",
    [
        QueryError("q", host="h", database="d", query="SELECT 1", server_message="bad"),
        WriteError("w", rejected_lines=[RejectedLine(1, "bad", "cpu x", row=0)], status=400),
        ServerUnavailableError("u", retry_after=2.5),
        ConfigurationError("c", field="host"),
        ExportError("e", path="/x"),
    ],
)
def test_exceptions_pickle_with_context(exc: InfluxDB3Error) -> None:
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc)
    assert back.__dict__ == exc.__dict__
    assert str(back) == str(exc)


# --- HTTP status mapping (used by the writer) ---------------------------------------------------

HTTP_CFG = InfluxDB3Config(host="http://127.0.0.1:8181", database="db", token=TOKEN)


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, DatabaseNotFoundError),
        (400, WriteError),
        (413, WriteError),
        (422, WriteError),
        (429, ServerUnavailableError),
        (500, ServerUnavailableError),
        (503, ServerUnavailableError),
    ],
)
def test_http_status_mapping(status: int, expected: type) -> None:
    err = error_from_http(HTTP_CFG, status, b'{"error":"x"}', {})
    assert type(err) is expected
    assert "127.0.0.1:8181" in str(err) and "'db'" in str(err)
    assert err.retryable is (expected is ServerUnavailableError)


def test_http_partial_write_rejected_lines() -> None:
    body = (
        b'{"error":"partial write of line protocol occurred","data":['
        b'{"error_message":"invalid column type","line_number":2,"original_line":"cpu,host=a u'
        b'sage=\\"x\\""},{"error_message":"no fields","line_number":5,"original_line":"cpu"}]}'
    )
    err = error_from_http(HTTP_CFG, 400, body)
    assert isinstance(err, WriteError)
    assert [(r.line_number, r.message) for r in err.rejected_lines] == [
        (2, "invalid column type"),
        (5, "no fields"),
    ]
    assert "other lines were stored" in str(err)


def test_http_strict_write_single_object() -> None:
    body = (
        b'{"error":"line protocol parsing error","data":{"error_message":"bad",'
        b'"line_number":1,"original_line":"x"}}'
    )
    err = error_from_http(HTTP_CFG, 400, body)
    assert [r.line_number for r in err.rejected_lines] == [1]
    assert "Nothing was stored" in str(err)


def test_http_query_operation_gives_query_error() -> None:
    err = error_from_http(HTTP_CFG, 400, "plain text plan error", operation="query")
    assert type(err) is QueryError
    assert err.server_message == "plain text plan error"


def test_http_retry_after_and_token_scrub() -> None:
    err = error_from_http(HTTP_CFG, 503, f"token {TOKEN} is busy", {"Retry-After": "3"})
    assert isinstance(err, ServerUnavailableError)
    assert err.retry_after == 3.0
    assert TOKEN not in str(err)


def _retry_after(value: str | None) -> float | None:
    headers = {} if value is None else {"Retry-After": value}
    err = error_from_http(HTTP_CFG, 503, "busy", headers)
    assert isinstance(err, ServerUnavailableError)
    return err.retry_after


def test_retry_after_forms() -> None:
    assert _retry_after("5") == 5.0
    assert _retry_after(None) is None
    assert _retry_after("soon") is None
    ahead = _retry_after(email.utils.formatdate(time.time() + 100, usegmt=True))  # an HTTP-date
    assert ahead is not None and 90.0 <= ahead <= 100.0
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past: retry now
