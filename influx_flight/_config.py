"""InfluxDB3Config: where the server is and how to talk to it (no pyarrow import).

Airflow imports this module at DAG-parse time, so it must stay light: stdlib only.

Examples:
    InfluxDB3Config(host="https://eu-central-1-1.aws.cloud2.influxdata.com", database="db",
                    token="...")                       # -> grpc+tls://...:443
    InfluxDB3Config(host="http://127.0.0.1:8181", database="db")      # no-auth local server
    InfluxDB3Config(host="localhost:8181", database="db", token="t")  # bare -> https, like
                                                                       # influxdb3-python
    InfluxDB3Config.from_env()      # INFLUXDB3_HOST_URL, INFLUXDB3_DATABASE_NAME, ...
    cfg.with_options(database="other")
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from ._exceptions import ConfigurationError
from ._options import DEFAULT_RECEIVE_WINDOW

__all__ = [
    "DEFAULT_AUTH_SCHEME",
    "DEFAULT_QUERY_TIMEOUT",
    "DEFAULT_WRITE_TIMEOUT",
    "ENV_AUTH_SCHEME",
    "ENV_AUTH_TOKEN",
    "ENV_DATABASE_NAME",
    "ENV_HOST_URL",
    "ENV_WRITE_URL",
    "InfluxDB3Config",
]

#: Query deadline in seconds (influxdb3-python uses the same 300 s default).
DEFAULT_QUERY_TIMEOUT: float = 300.0
#: Per-request write timeout in seconds.
DEFAULT_WRITE_TIMEOUT: float = 30.0
_MIN_RECEIVE_WINDOW = 64 * 1024
_MAX_RECEIVE_WINDOW = 2**31 - 1
DEFAULT_AUTH_SCHEME: str = "Bearer"
AUTH_SCHEMES: tuple[str, ...] = ("Bearer", "Token")

# The environment variable names of InfluxDB 3's own `influxdb3` CLI.
ENV_HOST_URL = "INFLUXDB3_HOST_URL"
ENV_DATABASE_NAME = "INFLUXDB3_DATABASE_NAME"
ENV_AUTH_TOKEN = "INFLUXDB3_AUTH_TOKEN"
ENV_WRITE_URL = "INFLUXDB3_WRITE_URL"
ENV_AUTH_SCHEME = "INFLUXDB3_AUTH_SCHEME"
ENV_QUERY_TIMEOUT = "INFLUXDB3_QUERY_TIMEOUT"
ENV_WRITE_TIMEOUT = "INFLUXDB3_WRITE_TIMEOUT"
ENV_TLS_CA = "INFLUXDB3_TLS_CA"
ENV_TLS_NO_VERIFY = "INFLUXDB3_TLS_NO_VERIFY"

_HOST_FORMS = (
    "'https://host[:port]' (TLS, port 443 by default), 'http://host[:port]', "
    "'grpc+tls://host:port', 'grpc+tcp://host:port' or a bare 'host:port' (taken as https)"
)
_SCHEME_TLS = {"https": True, "grpc+tls": True, "http": False, "grpc+tcp": False, "grpc": False}
_DEFAULT_PORTS = {"https": 443, "grpc+tls": 443, "http": 80, "grpc+tcp": 80, "grpc": 80}
_TRUE = frozenset({"1", "true", "yes", "on", "y", "t"})
_FALSE = frozenset({"0", "false", "no", "off", "n", "f", ""})


@dataclass(frozen=True)
class _Endpoint:
    tls: bool
    hostname: str
    port: int
    path: str


def _parse_host(value: object) -> _Endpoint:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(
            f"host: expected a non-empty string, got {value!r}; use {_HOST_FORMS}", field="host"
        )
    text = value.strip()
    if any(ch.isspace() for ch in text):
        raise ConfigurationError(
            f"host: {mask_url(text)!r} contains whitespace; use {_HOST_FORMS}", field="host"
        )
    if "://" not in text:
        text = "https://" + text
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError as exc:
        raise ConfigurationError(
            f"host: {mask_url(value)!r} is not a valid address ({exc}); use {_HOST_FORMS}",
            field="host",
        ) from None
    scheme = parts.scheme.lower()
    if scheme not in _SCHEME_TLS:
        raise ConfigurationError(
            f"host: scheme {parts.scheme!r} in {mask_url(value)!r} is not supported; use {_HOST_FORMS}",
            field="host",
        )
    if not parts.hostname:
        raise ConfigurationError(
            f"host: {mask_url(value)!r} has no host name; use {_HOST_FORMS}", field="host"
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"host: {mask_url(value)!r} must not carry credentials, a query string or a "
            f"fragment; pass the token as token=... and use {_HOST_FORMS}",
            field="host",
        )
    path = parts.path.rstrip("/")
    if path and scheme.startswith("grpc"):
        raise ConfigurationError(
            f"host: a gRPC address cannot have a path ({mask_url(value)!r}); use {_HOST_FORMS}",
            field="host",
        )
    return _Endpoint(
        tls=_SCHEME_TLS[scheme],
        hostname=parts.hostname,
        port=port if port is not None else _DEFAULT_PORTS[scheme],
        path=path,
    )


def mask_url(value: object) -> str:
    """``value`` with every secret a URL can carry masked: userinfo, query values, fragment.

    ``http://user:tok@h:1/p?token=abc&db=x#tok`` -> ``http://***@h:1/p?token=***&db=***#***``.
    Used wherever a URL given by a user is printed (errors, logs, the CLI).
    """
    text = str(value)
    head, hash_mark, _fragment = text.partition("#")
    head, question, query = head.partition("?")
    if "://" in head:
        scheme, rest = head.split("://", 1)
        authority, slash, path = rest.partition("/")
        if "@" in authority:
            authority = "***@" + authority.rsplit("@", 1)[1]
        head = f"{scheme}://{authority}{slash}{path}"
    elif "@" in head.split("/", 1)[0]:
        head = "***@" + head.split("@", 1)[1]
    if question:
        pairs = [p.split("=", 1)[0] + "=***" if "=" in p else "***" for p in query.split("&")]
        head += "?" + "&".join(pairs)
    return head + ("#***" if hash_mark else "")


def _netloc(hostname: str, port: int) -> str:
    return f"[{hostname}]:{port}" if ":" in hostname else f"{hostname}:{port}"


def _parse_write_url(value: object) -> str | None:
    if value is None or value == "":
        return None
    forms = "'http://host:port' or 'https://host[:port]'"
    if not isinstance(value, str):
        raise ConfigurationError(
            f"write_url: expected a URL string like {forms}, got {type(value).__name__}",
            field="write_url",
        )
    text = value.strip()
    try:
        parts = urlsplit(text)
        parts.port  # noqa: B018 - validates the port
    except ValueError as exc:
        raise ConfigurationError(
            f"write_url: {mask_url(text)!r} is not a valid URL ({exc}); use {forms}",
            field="write_url",
        ) from None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        raise ConfigurationError(
            f"write_url: {mask_url(text)!r} is not an HTTP URL; use {forms}",
            field="write_url",
        )
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError(
            f"write_url: {mask_url(text)!r} must not carry credentials, a query string or "
            f"a fragment; use {forms}",
            field="write_url",
        )
    return text.rstrip("/")


def _parse_receive_window(value: object) -> int | None:
    if value is None or (isinstance(value, str) and value.strip().lower() in ("none", "null")):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not _MIN_RECEIVE_WINDOW <= value <= _MAX_RECEIVE_WINDOW
    ):
        raise ConfigurationError(
            f"receive_window: expected a number of bytes between {_MIN_RECEIVE_WINDOW} and "
            f"{_MAX_RECEIVE_WINDOW}, or None (gRPC's adaptive window), got {value!r}",
            field="receive_window",
        )
    return value


def _parse_timeout(name: str, value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in ("", "none", "null"):
            return None
        try:
            value = float(text)
        except ValueError:
            raise ConfigurationError(
                f"{name}: {text!r} is not a number of seconds; pass a positive number or None "
                "(no timeout)",
                field=name,
            ) from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(
            f"{name}: expected a positive number of seconds or None (no timeout), got "
            f"{type(value).__name__} {value!r}",
            field=name,
        )
    seconds = float(value)
    if not math.isfinite(seconds) or seconds <= 0:
        raise ConfigurationError(
            f"{name}: {value!r} is not a positive, finite number of seconds; pass e.g. 300 or None "
            "(no timeout)",
            field=name,
        )
    return seconds


def _parse_bool(name: str, value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
        return value.strip().lower() in _TRUE
    raise ConfigurationError(f"{name}: expected true or false, got {value!r}", field=name)


def _parse_ca_cert(value: object) -> str | None:
    if value is None or value == "" or value == b"":
        return None
    if isinstance(value, bytes):
        try:
            value = value.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigurationError(
                "ca_cert: bytes must be a PEM certificate (ASCII)", field="ca_cert"
            ) from None
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ConfigurationError(
            f"ca_cert: expected a file path or PEM text, got {type(value).__name__}",
            field="ca_cert",
        )
    if "-----BEGIN" in value:
        return value
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigurationError(
            f"ca_cert: {value!r} is neither PEM text ('-----BEGIN CERTIFICATE-----...') nor an "
            "existing file; pass the path of a PEM CA bundle or its contents",
            field="ca_cert",
        )
    return str(path)


def _parse_headers(value: object) -> tuple[tuple[str, str], ...]:
    if value is None:
        return ()
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"headers: expected a mapping of header name to value, got {type(value).__name__}",
            field="headers",
        )
    out: list[tuple[str, str]] = []
    for key, val in value.items():
        if not isinstance(key, str) or not key or any(c.isspace() or c == ":" for c in key):
            raise ConfigurationError(
                f"headers: {key!r} is not a valid header name", field="headers"
            )
        if not isinstance(val, str) or "\n" in val or "\r" in val:
            raise ConfigurationError(
                f"headers: the value of {key!r} must be a single-line string", field="headers"
            )
        if key.lower() == "authorization":
            raise ConfigurationError(
                "headers: do not pass 'authorization' as an extra header; set token= (and "
                "auth_scheme=) instead so that it stays masked",
                field="headers",
            )
        out.append((key, val))
    return tuple(sorted(out))


@dataclass(frozen=True, kw_only=True, eq=True, repr=False)
class InfluxDB3Config:
    """Connection settings for one InfluxDB 3 server and default database.

    Args:
        host: Server address. ``https://h`` -> ``grpc+tls://h:443``; ``http://h:8181`` ->
            ``grpc+tcp://h:8181``; ``grpc+tls://h:443`` / ``grpc+tcp://h:p`` as is; a bare
            ``h:port`` is taken as https (like influxdb3-python).
        database: Default database for queries and writes.
        token: API token; optional for servers started ``--without-auth``. Never shown in
            reprs, logs or messages.
        auth_scheme: ``"Bearer"`` (default) or ``"Token"``.
        verify_tls: Verify the server certificate (set False only for test servers).
        ca_cert: A path to a PEM CA bundle, or the PEM text itself.
        query_timeout: Deadline of a whole query stream in seconds; None = no deadline.
        write_timeout: Per-request write timeout in seconds; None = no timeout.
        write_url: HTTP base URL for writes when it differs from ``host`` (the stand-in serves
            HTTP on its own port); default: derived from ``host``.
        headers: Extra headers sent with every request (gRPC metadata and HTTP).
        receive_window: Bytes of a query result gRPC may buffer ahead of the reader (fixed
            HTTP/2 stream window of the DoGet ticket protocol; Flight SQL goes through ADBC's
            driver), which bounds a query's receive memory. Raise it for fast,
            high-latency links (throughput <= window / round-trip time); None lets gRPC grow
            the window adaptively (no fixed memory bound).
    """

    host: str
    database: str
    token: str | None = None
    auth_scheme: str = DEFAULT_AUTH_SCHEME
    verify_tls: bool = True
    ca_cert: str | None = None
    query_timeout: float | None = DEFAULT_QUERY_TIMEOUT
    write_timeout: float | None = DEFAULT_WRITE_TIMEOUT
    write_url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    receive_window: int | None = DEFAULT_RECEIVE_WINDOW
    _endpoint: _Endpoint = field(init=False, compare=False, repr=False, hash=False)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "_endpoint", _parse_host(self.host))
        set_(self, "host", self.host.strip())
        if not isinstance(self.database, str) or not self.database.strip():
            raise ConfigurationError(
                f"database: expected a non-empty database name, got {self.database!r}; set "
                f"database=... or {ENV_DATABASE_NAME}",
                field="database",
                host=self.host,
            )
        set_(self, "database", self.database.strip())
        if self.token is not None:
            if not isinstance(self.token, str):
                raise ConfigurationError(
                    f"token: expected a string or None, got {type(self.token).__name__}",
                    field="token",
                    host=self.host,
                )
            token = self.token.strip()
            if any(c.isspace() for c in token):
                raise ConfigurationError(
                    "token: the token contains whitespace (value not shown); pass the bare token "
                    "without the 'Bearer ' prefix and set auth_scheme instead",
                    field="token",
                    host=self.host,
                )
            set_(self, "token", token or None)
        scheme = self.auth_scheme
        matched = [
            s for s in AUTH_SCHEMES if isinstance(scheme, str) and s.lower() == scheme.lower()
        ]
        if not matched:
            raise ConfigurationError(
                f"auth_scheme: {scheme!r} is not supported; use 'Bearer' or 'Token'",
                field="auth_scheme",
                host=self.host,
            )
        set_(self, "auth_scheme", matched[0])
        set_(self, "verify_tls", _parse_bool("verify_tls", self.verify_tls))
        set_(self, "ca_cert", _parse_ca_cert(self.ca_cert))
        set_(self, "query_timeout", _parse_timeout("query_timeout", self.query_timeout))
        set_(self, "write_timeout", _parse_timeout("write_timeout", self.write_timeout))
        set_(self, "write_url", _parse_write_url(self.write_url))
        set_(self, "headers", MappingProxyType(dict(_parse_headers(self.headers))))
        set_(self, "receive_window", _parse_receive_window(self.receive_window))

    # -- value semantics ---------------------------------------------------------------------

    def __hash__(self) -> int:
        return hash(
            tuple(
                tuple(sorted(v.items())) if isinstance(v, Mapping) else v
                for f in dataclasses.fields(self)
                if f.compare
                for v in [getattr(self, f.name)]
            )
        )

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name == "token":
                parts.append(f"token={'***' if value else None}")
            elif f.name == "headers":
                if value:
                    parts.append(f"headers={dict(value)!r}")
            else:
                parts.append(f"{f.name}={value!r}")
        return f"InfluxDB3Config({', '.join(parts)})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickle by keyword arguments (the frozen dataclass default trips over _endpoint).
        return (_rebuild, (self.as_dict(include_token=True),))

    # -- derived values ------------------------------------------------------------------------

    @property
    def uses_tls(self) -> bool:
        """True when the query channel is TLS (https / grpc+tls)."""
        return self._endpoint.tls

    @property
    def flight_location(self) -> str:
        """gRPC URI of the Flight endpoint, e.g. ``grpc+tls://host:443``."""
        ep = self._endpoint
        return f"grpc+{'tls' if ep.tls else 'tcp'}://{_netloc(ep.hostname, ep.port)}"

    @property
    def write_base_url(self) -> str:
        """HTTP base URL for writes (``write_url`` or derived from ``host``), no trailing slash."""
        if self.write_url:
            return self.write_url
        ep = self._endpoint
        return f"{'https' if ep.tls else 'http'}://{_netloc(ep.hostname, ep.port)}{ep.path}"

    @property
    def display_host(self) -> str:
        """The host as shown in messages (no credentials ever)."""
        return self.host

    def auth_header(self) -> str | None:
        """The value of the ``authorization`` header, or None without a token."""
        return f"{self.auth_scheme} {self.token}" if self.token else None

    def grpc_headers(self, *, database: str | None = None) -> list[tuple[bytes, bytes]]:
        """Call headers for Flight: extra headers (lowercased, as gRPC requires) + authorization."""
        out = [(k.lower().encode(), v.encode()) for k, v in self.headers.items()]
        auth = self.auth_header()
        if auth:
            out.append((b"authorization", auth.encode()))
        if database is not None:
            out.append((b"database", database.encode()))
        return out

    def http_headers(self) -> dict[str, str]:
        """Headers for HTTP requests: extra headers + ``Authorization``."""
        out = dict(self.headers)
        auth = self.auth_header()
        if auth:
            out["Authorization"] = auth
        return out

    def ca_cert_pem(self) -> bytes | None:
        """The CA bundle as PEM bytes (read from the file when ``ca_cert`` is a path)."""
        if self.ca_cert is None:
            return None
        if "-----BEGIN" in self.ca_cert:
            return self.ca_cert.encode("ascii")
        try:
            return Path(self.ca_cert).read_bytes()
        except OSError as exc:
            raise ConfigurationError(
                f"ca_cert: cannot read {self.ca_cert!r}: {exc.strerror or exc}",
                field="ca_cert",
                host=self.host,
            ) from None

    def scrub(self, text: str) -> str:
        """Remove the token from a text that may echo it (server messages, URLs)."""
        return text.replace(self.token, "***") if self.token else text

    # -- constructors --------------------------------------------------------------------------

    @classmethod
    def field_names(cls) -> tuple[str, ...]:
        """The accepted setting names (for from_dict and with_options)."""
        return tuple(f.name for f in dataclasses.fields(cls) if f.init)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> InfluxDB3Config:
        """Build from a mapping with the constructor's keys (e.g. an Airflow connection extra)."""
        if not isinstance(data, Mapping):
            raise ConfigurationError(
                f"from_dict expects a mapping, got {type(data).__name__}", field=None
            )
        accepted = cls.field_names()
        unknown = sorted(str(k) for k in data if k not in accepted)
        if unknown:
            raise ConfigurationError(
                f"{unknown[0]}: unknown setting(s) {', '.join(map(repr, unknown))}; accepted "
                f"keys are {', '.join(accepted)}",
                field=unknown[0],
            )
        missing = [k for k in ("host", "database") if k not in data]
        if missing:
            raise ConfigurationError(
                f"{missing[0]}: missing required setting(s) {', '.join(missing)}",
                field=missing[0],
            )
        return cls(**dict(data))

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> InfluxDB3Config:
        """Build from the environment variables of InfluxDB 3's own CLI.

        ``INFLUXDB3_HOST_URL``, ``INFLUXDB3_DATABASE_NAME`` and ``INFLUXDB3_AUTH_TOKEN``, plus
        ``INFLUXDB3_WRITE_URL``, ``INFLUXDB3_AUTH_SCHEME``, ``INFLUXDB3_QUERY_TIMEOUT``,
        ``INFLUXDB3_WRITE_TIMEOUT``, ``INFLUXDB3_TLS_CA`` and ``INFLUXDB3_TLS_NO_VERIFY``.
        Keyword ``overrides`` win over the environment (None values are ignored).
        """
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for key, var in (
            ("host", ENV_HOST_URL),
            ("database", ENV_DATABASE_NAME),
            ("token", ENV_AUTH_TOKEN),
            ("write_url", ENV_WRITE_URL),
            ("auth_scheme", ENV_AUTH_SCHEME),
            ("query_timeout", ENV_QUERY_TIMEOUT),
            ("write_timeout", ENV_WRITE_TIMEOUT),
            ("ca_cert", ENV_TLS_CA),
        ):
            if env.get(var):
                values[key] = env[var]
        if env.get(ENV_TLS_NO_VERIFY):
            values["verify_tls"] = not _parse_bool(ENV_TLS_NO_VERIFY, env[ENV_TLS_NO_VERIFY])
        values.update({k: v for k, v in overrides.items() if v is not None})
        for key, var in (("host", ENV_HOST_URL), ("database", ENV_DATABASE_NAME)):
            if key not in values:
                raise ConfigurationError(
                    f"{key}: {var} is not set; export {var} (or pass {key}=...)", field=key
                )
        accepted = cls.field_names()
        unknown = sorted(k for k in values if k not in accepted)
        if unknown:
            raise ConfigurationError(
                f"{unknown[0]}: unknown setting; accepted keys are {', '.join(accepted)}",
                field=unknown[0],
            )
        return cls(**values)

    def with_options(self, **changes: Any) -> InfluxDB3Config:
        """A copy with some settings changed, e.g. ``cfg.with_options(database="other")``."""
        accepted = self.field_names()
        unknown = sorted(k for k in changes if k not in accepted)
        if unknown:
            raise ConfigurationError(
                f"{unknown[0]}: unknown setting; accepted keys are {', '.join(accepted)}",
                field=unknown[0],
            )
        return dataclasses.replace(self, **changes)

    def as_dict(self, *, include_token: bool = False) -> dict[str, Any]:
        """The settings as a dict (accepted by from_dict); the token only when asked for."""
        out = {name: getattr(self, name) for name in self.field_names()}
        out["headers"] = dict(self.headers)
        if not include_token:
            out.pop("token")
        return out


def _rebuild(values: dict[str, Any]) -> InfluxDB3Config:
    return InfluxDB3Config(**values)


InfluxDB3Config.__module__ = "influx_flight"
