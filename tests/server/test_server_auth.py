"""Token checks of the stand-in: header parsing rules and gRPC status codes over real Flight."""

from __future__ import annotations

import base64
import json
import re
import time
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from influx_flight.server.auth import (
    Authenticator,
    extract_grpc_token,
    generate_token,
    parse_http_authorization,
)
from influx_flight.server.errors import MalformedAuthorization, PermissionDenied, Unauthenticated


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


# -- token format ----------------------------------------------------------------------------


def test_generated_token_has_core_format() -> None:
    token = generate_token()
    assert token.startswith("apiv3_")
    assert len(base64.b64decode(token[len("apiv3_") :], validate=True)) == 64
    assert generate_token() != token


def test_authenticator_repr_never_shows_tokens() -> None:
    token = generate_token()
    auth = Authenticator([token])
    assert token not in repr(auth)
    assert token[6:20] not in repr(auth)


# -- gRPC header parsing ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer tok", b"tok"),
        ("Token tok", b"tok"),
        (_basic("user", "tok"), b"tok"),
        (_basic("user", "to:k"), b"to:k"),  # gRPC: after the first ':'
        ("bearer tok", None),
        ("BEARER tok", None),
        ("Bearer ", None),
        ("Bearer", None),
        ("Digest tok", None),
        ("Basic !!!notbase64", None),
        (_basic("user", ""), None),
        (None, None),
    ],
)
def test_extract_grpc_token(value: str | None, expected: bytes | None) -> None:
    assert extract_grpc_token(value) == expected


# -- HTTP header parsing -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Bearer tok", b"tok"),
        ("Token tok", b"tok"),
        (_basic("user", "tok"), b"tok"),
        (_basic("user", "a:b"), b"b"),  # HTTP: after the last ':'
    ],
)
def test_parse_http_authorization(value: str, expected: bytes) -> None:
    assert parse_http_authorization(value) == expected


@pytest.mark.parametrize(
    "value",
    ["bearer tok", "Bearer", "Bearer a b", "Bearertok", "Digest tok", "Basic %%%", "Bearer "],
)
def test_malformed_http_header_is_400_with_core_body(value: str) -> None:
    with pytest.raises(MalformedAuthorization) as info:
        parse_http_authorization(value)
    assert info.value.http_status == 400
    assert str(info.value) == (
        "Authorization header was malformed, the request was not in the form of "
        "'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic"
    )


def test_http_check_rules() -> None:
    auth = Authenticator(["tok"])
    auth.check_http("Bearer tok")
    auth.check_http(None, query_token="tok")  # v1 `p` parameter
    with pytest.raises(Unauthenticated) as info:
        auth.check_http(None)
    assert info.value.http_status == 401
    with pytest.raises(Unauthenticated):
        auth.check_http("Token other")
    open_auth = Authenticator(without_auth=True)
    open_auth.check_http("Bearer anything")
    open_auth.check_http(None)
    with pytest.raises(MalformedAuthorization):  # still checked under without_auth
        open_auth.check_http("nonsense")


def test_expired_token_is_permission_denied() -> None:
    auth = Authenticator()
    auth.add_token("old", expires_at=time.time() - 1)
    auth.add_token("new", expires_at=time.time() + 3600)
    with pytest.raises(PermissionDenied):
        auth.check_grpc({"authorization": ["Bearer old"]})
    auth.check_grpc({"authorization": ["Bearer new"]})
    auth.revoke("new")
    with pytest.raises(Unauthenticated):
        auth.check_grpc({"authorization": ["Bearer new"]})


# -- over real gRPC ------------------------------------------------------------------------------


def _query(server: Any, headers: list[tuple[bytes, bytes]]) -> pa.Table:
    client = flight.FlightClient(server.flight_uri)
    try:
        ticket = flight.Ticket(json.dumps({"database": "auth_db", "sql_query": "SELECT 1 AS one"}))
        return client.do_get(ticket, flight.FlightCallOptions(headers=headers)).read_all()
    finally:
        client.close()


@pytest.fixture
def auth_server(standin_factory: Any) -> Any:
    server = standin_factory(tokens=["tok-1", "tok-2"])
    server.engine.create_database("auth_db")
    return server


@pytest.mark.parametrize(
    "header",
    [
        (b"authorization", b"Bearer tok-1"),
        (b"authorization", b"Bearer tok-2"),
        (b"authorization", b"Token tok-1"),
        (b"authorization", _basic("anyone", "tok-1").encode()),
    ],
)
def test_grpc_accepted_forms(auth_server: Any, header: tuple[bytes, bytes]) -> None:
    assert _query(auth_server, [header]).to_pylist() == [{"one": 1}]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param([], id="missing"),
        pytest.param([(b"authorization", b"Bearer wrong")], id="wrong"),
        pytest.param([(b"authorization", b"bearer tok-1")], id="lowercase-bearer"),
        pytest.param([(b"authorization", b"tok-1")], id="no-scheme"),
        pytest.param([(b"authorization", b"Bearer ")], id="empty"),
        pytest.param([(b"authorization", _basic("u", "wrong").encode())], id="basic-wrong"),
    ],
)
def test_grpc_rejected_is_unauthenticated(
    auth_server: Any, headers: list[tuple[bytes, bytes]]
) -> None:
    with pytest.raises(flight.FlightUnauthenticatedError, match="Unauthenticated"):
        _query(auth_server, headers)


def test_grpc_expired_token_is_permission_denied(auth_server: Any) -> None:
    auth_server.authenticator.add_token("stale", expires_at=time.time() - 10)
    with pytest.raises(flight.FlightUnauthorizedError, match="Permission denied"):
        _query(auth_server, [(b"authorization", b"Bearer stale")])


def test_without_auth_accepts_anything(standin_factory: Any) -> None:
    server = standin_factory(without_auth=True)
    server.engine.create_database("auth_db")
    assert _query(server, []).to_pylist() == [{"one": 1}]
    assert _query(server, [(b"authorization", b"Bearer whatever")]).to_pylist() == [{"one": 1}]
    assert server.token.startswith("apiv3_")


def test_generated_token_is_used_when_none_given(standin_factory: Any) -> None:
    server = standin_factory()
    server.engine.create_database("auth_db")
    assert re.fullmatch(r"apiv3_[A-Za-z0-9+/=]+", server.token)
    header = (b"authorization", f"Bearer {server.token}".encode())
    assert _query(server, [header]).to_pylist() == [{"one": 1}]
    with pytest.raises(flight.FlightUnauthenticatedError):
        _query(server, [])


def test_handshake_echoes_and_returns_bearer(auth_server: Any) -> None:
    """Handshake checks nothing and returns the Basic password as a Bearer header (§2.2)."""
    client = flight.FlightClient(auth_server.flight_uri)
    try:
        assert client.authenticate_basic_token("user", "tok-1") == (
            b"authorization",
            b"Bearer tok-1",
        )
    finally:
        client.close()


def test_server_error_message_never_contains_the_token(auth_server: Any) -> None:
    with pytest.raises(flight.FlightUnauthenticatedError) as info:
        _query(auth_server, [(b"authorization", b"Bearer secret-value-xyz")])
    assert "secret-value-xyz" not in str(info.value)
