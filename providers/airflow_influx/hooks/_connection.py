"""The one mapping from an Airflow connection to the core's ``InfluxDB3Config``.

Stdlib and ``influx_flight.InfluxDB3Config`` only (no pyarrow), so it is cheap to import and test.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from influx_flight import InfluxDB3Config

QUERY_LANGUAGES = ("sql", "influxql")
PROTOCOLS = ("ticket", "flightsql")


@dataclass(frozen=True)
class ConnectionSettings:
    """What a connection says: the client config plus the hook's query defaults."""

    config: InfluxDB3Config
    query_language: str
    protocol: str
    #: ``retries`` extra: attempts per query/write for transient failures (1 = no retry);
    #: None for the core's default policy.
    max_attempts: int | None = None
    #: ``retry_max_seconds`` extra: give up retrying after this long (None: the core default).
    retry_max_seconds: float | None = None

    def retry_policy(self) -> Any:
        """The core ``RetryPolicy`` these settings ask for, or None for the core's default."""
        if self.max_attempts is None and self.retry_max_seconds is None:
            return None
        from influx_flight import DEFAULT_RETRY_POLICY, RetryPolicy

        changes: dict[str, Any] = {}
        if self.max_attempts is not None:
            changes["max_attempts"] = self.max_attempts
        if self.retry_max_seconds is not None:
            changes["max_elapsed"] = self.retry_max_seconds
        from dataclasses import replace

        return replace(DEFAULT_RETRY_POLICY, **changes) if changes else RetryPolicy()


#: Connection types whose fields follow the official provider's ``InfluxDB3Hook``.
OFFICIAL_CONN_TYPES = ("influxdb3",)
#: The official hook's default ports per URL scheme when the connection has none.
_OFFICIAL_DEFAULT_PORTS = {"https": 443, "http": 8086}


def _official_host(conn: Any) -> str:
    """The Host URL of an official-style connection: ``schema`` is the URL scheme there."""
    host = str(conn.host).strip()
    scheme = (conn.schema or "").strip().lower()
    if "://" in host:
        return _host_with_port(host, conn.port)
    if scheme not in ("http", "https"):
        scheme = "https"
    port = conn.port or _OFFICIAL_DEFAULT_PORTS[scheme]
    return _host_with_port(f"{scheme}://{host}", port)


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def _host_with_port(host: str, port: int | None) -> str:
    """Add the connection's ``port`` to the Host URL unless the URL already carries one."""
    host = host.strip()
    if not port:
        return host
    if "://" in host:
        parts = urlsplit(host)
        try:
            has_port = parts.port is not None
        except ValueError:
            return host  # let the core report the malformed URL
        if has_port or not parts.hostname:
            return host
        netloc = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return urlunsplit(parts._replace(netloc=f"{netloc}:{port}"))
    if host.count(":") == 1 or host.startswith("["):
        return host  # bare host:port (or a bracketed IPv6 literal) already
    return f"{host}:{port}"


def _choice(conn_id: str, name: str, value: Any, allowed: tuple[str, ...], default: str) -> str:
    from influx_flight import ConfigurationError

    if _blank(value):
        return default
    text = str(value).strip().lower()
    if text not in allowed:
        raise ConfigurationError(
            f"connection {conn_id!r}: extra {name}={value!r} is not supported; use one of "
            f"{', '.join(allowed)}",
            field=name,
        )
    return text


def _int_extra(conn_id: str, name: str, value: Any) -> int | None:
    from influx_flight import ConfigurationError

    if _blank(value):
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigurationError(
            f"connection {conn_id!r}: extra {name}={value!r} must be an integer >= 1 "
            "(1 disables retries)",
            field=name,
        )
    return number


def _float_extra(conn_id: str, name: str, value: Any) -> float | None:
    from influx_flight import ConfigurationError

    if _blank(value):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        number = -1.0
    if number < 0:
        raise ConfigurationError(
            f"connection {conn_id!r}: extra {name}={value!r} must be a number of seconds >= 0",
            field=name,
        )
    return number


def settings_from_connection(conn: Any, *, database: str | None = None) -> ConnectionSettings:
    """Map an Airflow ``Connection`` (from the UI, an ``AIRFLOW_CONN_*`` URI or JSON) to settings.

    Standard fields: ``host`` (URL, scheme optional), ``port`` (added when the URL has none),
    ``schema`` (the database), ``password`` (the token). A connection of the official provider's
    type ``influxdb3`` is read the way its ``InfluxDB3Hook`` reads it: ``schema`` is the URL
    scheme (http/https, default https), the port defaults to 443 (https) / 8086 (http), the
    database comes from the ``database`` extra and the token from the ``token`` extra or the
    password. Retry extras: ``retries`` (attempts, 1 = none) and ``retry_max_seconds``. Extras: ``query_language``, ``protocol``,
    ``verify_tls``, ``ca_cert``, ``timeout`` (query deadline), ``write_timeout``, ``auth_scheme``,
    ``write_url``, ``headers``; ``database`` and ``token`` are accepted as fallbacks for
    connections written for the official ``influxdb3`` type. Values from URIs arrive as strings;
    the core's config parses them and reports the field by name.

    :param conn: the Airflow connection.
    :param database: overrides the connection's database (e.g. a task's ``database=``).
    """
    from influx_flight import ConfigurationError, InfluxDB3Config

    conn_id = getattr(conn, "conn_id", None) or "<unnamed>"
    extra: Mapping[str, Any] = conn.extra_dejson or {}
    official = (getattr(conn, "conn_type", None) or "").replace("-", "_") in OFFICIAL_CONN_TYPES
    if _blank(conn.host):
        raise ConfigurationError(
            f"connection {conn_id!r}: Host URL is empty; set it to e.g. "
            "'https://my-influxdb.example.com' or 'http://localhost:8181'",
            field="host",
        )
    # The official ``influxdb3`` type keeps the URL scheme in ``schema`` and the database in
    # the ``database`` extra; ours keeps the database in ``schema``.
    schema_db = None if official else conn.schema
    db = next(
        (v for v in (database, schema_db, extra.get("database")) if not _blank(v)),
        None,
    )
    if db is None:
        raise ConfigurationError(
            f"connection {conn_id!r}: no database; "
            + (
                "set the 'database' extra of this influxdb3 connection"
                if official
                else "fill in the Database field (schema) of the connection"
            )
            + " or pass database=... to the task",
            field="database",
        )
    token_sources = (
        (extra.get("token"), conn.password) if official else (conn.password, extra.get("token"))
    )
    token = next((v for v in token_sources if not _blank(v)), None)
    kwargs: dict[str, Any] = {
        "host": _official_host(conn) if official else _host_with_port(str(conn.host), conn.port),
        "database": str(db).strip(),
        "token": token,
    }
    timeout = extra.get("timeout", extra.get("query_timeout"))
    if not _blank(timeout):
        kwargs["query_timeout"] = timeout
    for key in ("write_timeout", "auth_scheme", "ca_cert", "write_url", "receive_window"):
        if not _blank(extra.get(key)):
            kwargs[key] = extra[key]
    if not _blank(extra.get("verify_tls")):
        kwargs["verify_tls"] = extra["verify_tls"]
    if extra.get("headers"):
        kwargs["headers"] = extra["headers"]
    try:
        config = InfluxDB3Config(**kwargs)
    except ConfigurationError as exc:
        raise ConfigurationError(
            f"connection {conn_id!r}: {exc}", field=getattr(exc, "field", None)
        ) from None
    return ConnectionSettings(
        config=config,
        max_attempts=_int_extra(conn_id, "retries", extra.get("retries")),
        retry_max_seconds=_float_extra(
            conn_id, "retry_max_seconds", extra.get("retry_max_seconds")
        ),
        query_language=_choice(
            conn_id, "query_language", extra.get("query_language"), QUERY_LANGUAGES, "sql"
        ),
        protocol=_choice(conn_id, "protocol", extra.get("protocol"), PROTOCOLS, "ticket"),
    )


def config_from_connection(conn: Any, *, database: str | None = None) -> InfluxDB3Config:
    """The ``InfluxDB3Config`` for an Airflow connection (see :func:`settings_from_connection`)."""
    return settings_from_connection(conn, database=database).config
