"""Token authentication shared by the Flight (gRPC) and HTTP sides of the stand-in.

Follows ``influxdb3-protocol.md`` §3.1/§3.2 (InfluxDB 3 Core):

* gRPC metadata ``authorization``: ``Bearer <tok>``, ``Token <tok>`` or ``Basic base64(user:tok)``
  with case-sensitive schemes. A lowercase ``bearer``, an unknown scheme or an empty token
  count as *no token* -> UNAUTHENTICATED "Unauthenticated".
* HTTP ``Authorization``: exactly ``<scheme> <token>``; anything else is a 400 with Core's exact
  body, and that check still runs under ``without_auth``.
* Unknown token -> UNAUTHENTICATED / 401; an expired token -> PERMISSION_DENIED / 403.

Tokens are kept only as SHA-512 digests (as Core's catalog does), so no token ever sits in a
repr, a log line or an exception message.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

from influx_flight.server.errors import MalformedAuthorization, PermissionDenied, Unauthenticated

_TOKEN_SCHEMES = ("Bearer", "Token")


def generate_token() -> str:
    """A new token in Core's format: ``apiv3_`` + base64 of 64 random bytes."""
    return "apiv3_" + base64.b64encode(secrets.token_bytes(64)).decode("ascii")


def _digest(token: str | bytes) -> bytes:
    raw = token.encode("utf-8") if isinstance(token, str) else token
    return hashlib.sha512(raw).digest()


def extract_grpc_token(value: str | bytes | None) -> bytes | None:
    """Token from a gRPC ``authorization`` value, or None when there is no usable token.

    Mirrors Core's ``extract_token``: split at the first space; ``Token``/``Bearer`` take the
    rest; ``Basic`` decodes base64 and takes what follows the first ``:``.
    """
    if value is None:
        return None
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    scheme, sep, rest = raw.partition(b" ")
    if not sep:
        return None
    if scheme in (b"Bearer", b"Token"):
        token = rest
    elif scheme == b"Basic":
        try:
            decoded = base64.b64decode(rest, validate=True)
        except (binascii.Error, ValueError):
            return None
        _user, colon, token = decoded.partition(b":")
        if not colon:
            return None
    else:
        return None
    return token or None


def parse_http_authorization(value: str | bytes) -> bytes:
    """Token from an HTTP ``Authorization`` header; raises :class:`MalformedAuthorization` (400).

    The header must be exactly two space-separated parts with a case-sensitive scheme
    (``Bearer``, ``Token``, ``Basic``). For Basic the token is the part after the last ``:``.
    """
    raw = value.encode("latin-1") if isinstance(value, str) else bytes(value)
    parts = raw.split(b" ")
    if len(parts) != 2 or not parts[1]:
        raise MalformedAuthorization()
    scheme, credential = parts
    if scheme in (b"Bearer", b"Token"):
        return credential
    if scheme == b"Basic":
        try:
            decoded = base64.b64decode(credential, validate=True)
        except (binascii.Error, ValueError):
            raise MalformedAuthorization() from None
        if b":" not in decoded:
            raise MalformedAuthorization()
        return decoded.rsplit(b":", 1)[1]
    raise MalformedAuthorization()


def _first_header(headers: Mapping[str, object], name: str) -> str | bytes | None:
    """First value of ``name`` in pyarrow-style (name -> list) or plain (name -> str) headers."""
    for key, values in headers.items():
        if key.lower() != name:
            continue
        if isinstance(values, str | bytes):
            return values
        if isinstance(values, Sequence) and values:
            first = values[0]
            if isinstance(first, str | bytes):
                return first
    return None


class Authenticator:
    """Holds the accepted tokens and answers "may this request proceed?".

    ``without_auth=True`` accepts every request (Core's ``--without-auth``), except that a
    malformed HTTP header is still a 400.
    """

    def __init__(self, tokens: Iterable[str] | None = None, without_auth: bool = False) -> None:
        self._lock = threading.Lock()
        # digest -> expiry (epoch seconds) or None for "never expires"
        self._tokens: dict[bytes, float | None] = {}
        self.without_auth = without_auth
        for token in tokens or ():
            self.add_token(token)

    def __repr__(self) -> str:
        return f"Authenticator(tokens={len(self._tokens)}, without_auth={self.without_auth})"

    def add_token(self, token: str, expires_at: float | None = None) -> None:
        """Accept ``token`` from now on; ``expires_at`` (epoch s) makes it expire."""
        if not token:
            raise ValueError("a token must be a non-empty string")
        with self._lock:
            self._tokens[_digest(token)] = expires_at

    def revoke(self, token: str) -> None:
        """Stop accepting ``token`` (no error if it was unknown)."""
        with self._lock:
            self._tokens.pop(_digest(token), None)

    def check_token(self, token: bytes | str | None) -> None:
        """Raise :class:`Unauthenticated` or :class:`PermissionDenied` unless ``token`` is valid."""
        if self.without_auth:
            return
        if not token:
            raise Unauthenticated()
        with self._lock:
            digest = _digest(token)
            if digest not in self._tokens:
                raise Unauthenticated()
            expiry = self._tokens[digest]
        if expiry is not None and expiry <= time.time():
            raise PermissionDenied()

    def check_grpc(self, headers: Mapping[str, object]) -> None:
        """Check the ``authorization`` metadata of a gRPC call (§3.1)."""
        if self.without_auth:
            return
        self.check_token(extract_grpc_token(_first_header(headers, "authorization")))

    def check_http(self, header_value: str | bytes | None, query_token: str | None = None) -> None:
        """Check an HTTP request's ``Authorization`` header (or v1 ``p`` query token).

        Raises :class:`MalformedAuthorization` (400) for a malformed header even under
        ``without_auth``; :class:`Unauthenticated` (401) / :class:`PermissionDenied` (403)
        otherwise.
        """
        token: bytes | str | None = None
        if header_value is not None:
            token = parse_http_authorization(header_value)
        elif query_token:
            token = query_token
        self.check_token(token)


__all__ = [
    "Authenticator",
    "extract_grpc_token",
    "generate_token",
    "parse_http_authorization",
]
