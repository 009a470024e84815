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


def settings_from_connection(conn: Any, *, database: str | None = None) -> ConnectionSettings:
    """Map an Airflow ``Connection`` (from the UI, an ``AIRFLOW_CONN_*`` URI or JSON) to settings.

    Standard fields: ``host`` (URL, scheme optional), ``port`` (added when the URL has none),
    ``schema`` (the database), ``password`` (the token). Extras: ``query_language``, ``protocol``,
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
    if _blank(conn.host):
        raise ConfigurationError(
            f"connection {conn_id!r}: Host URL is empty; set it to e.g. "
            "'https://my-influxdb.example.com' or 'http://localhost:8181'",
            field="host",
        )
    db = next(
        (v for v in (database, conn.schema, extra.get("database")) if not _blank(v)),
        None,
    )
    if db is None:
        raise ConfigurationError(
            f"connection {conn_id!r}: no database; fill in the Database field (schema) of the "
            "connection or pass database=... to the task",
            field="database",
        )
    token = next((v for v in (conn.password, extra.get("token")) if not _blank(v)), None)
    kwargs: dict[str, Any] = {
        "host": _host_with_port(str(conn.host), conn.port),
        "database": str(db).strip(),
        "token": token,
    }
    timeout = extra.get("timeout", extra.get("query_timeout"))
    if not _blank(timeout):
        kwargs["query_timeout"] = timeout
    for key in ("write_timeout", "auth_scheme", "ca_cert", "write_url"):
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
        query_language=_choice(
            conn_id, "query_language", extra.get("query_language"), QUERY_LANGUAGES, "sql"
        ),
        protocol=_choice(conn_id, "protocol", extra.get("protocol"), PROTOCOLS, "ticket"),
    )


def config_from_connection(conn: Any, *, database: str | None = None) -> InfluxDB3Config:
    """The ``InfluxDB3Config`` for an Airflow connection (see :func:`settings_from_connection`)."""
    return settings_from_connection(conn, database=database).config
