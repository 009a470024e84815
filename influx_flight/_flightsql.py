"""Flight SQL through adbc_driver_flightsql: a DB-API connection and a streaming query path.

InfluxDB 3 takes the database from the ``database`` call header and InfluxQL from the
``x-influxdata-query-language: influxql`` header (protocol reference §2.3); ADBC sends both as
``adbc.flight.sql.rpc.call_header.*`` options.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._exceptions import ConfigurationError

if TYPE_CHECKING:
    import pyarrow as pa
    from adbc_driver_manager.dbapi import Connection, Cursor

    from ._config import InfluxDB3Config

__all__ = ["connect_dbapi", "dbapi_options", "open_stream"]

_PREFIX = "adbc.flight.sql."
_CALL_HEADER = _PREFIX + "rpc.call_header."
_LANGUAGE_HEADER = "x-influxdata-query-language"


def dbapi_options(
    config: InfluxDB3Config,
    *,
    database: str | None = None,
    timeout: float | None = None,
    language: str = "sql",
) -> dict[str, str]:
    """ADBC ``db_kwargs`` for this config: auth, database header, TLS, deadlines."""
    options: dict[str, str] = {_CALL_HEADER + "database": database or config.database}
    auth = config.auth_header()
    if auth:
        options[_PREFIX + "authorization_header"] = auth
    for key, value in config.headers.items():
        options[_CALL_HEADER + key.lower()] = value
    if language == "influxql":
        options[_CALL_HEADER + _LANGUAGE_HEADER] = "influxql"
    if config.uses_tls:
        if not config.verify_tls:
            options[_PREFIX + "client_option.tls_skip_verify"] = "true"
        pem = config.ca_cert_pem()
        if pem:
            options[_PREFIX + "client_option.tls_root_certs"] = pem.decode("ascii")
    if timeout is not None:
        for kind in ("query", "fetch"):
            options[f"{_PREFIX}rpc.timeout_seconds.{kind}"] = str(float(timeout))
    return options


def connect_dbapi(
    config: InfluxDB3Config,
    database: str | None = None,
    *,
    timeout: float | None = None,
    language: str = "sql",
) -> Connection:
    """An ADBC DB-API connection to InfluxDB 3 (autocommit; read-only in practice).

    Examples:
        with connect_dbapi(cfg) as conn, conn.cursor() as cur:
            cur.execute("SELECT * FROM cpu LIMIT 5")
            table = cur.fetch_arrow_table()
    """
    from adbc_driver_flightsql import dbapi

    from ._errors import map_flight_errors

    with map_flight_errors(config, database=database):
        return dbapi.connect(
            config.flight_location,
            db_kwargs=dbapi_options(config, database=database, timeout=timeout, language=language),
            autocommit=True,
        )


class _AdbcStream:
    """An ADBC cursor's record batch reader as a BatchStream; owns connection and cursor."""

    def __init__(self, conn: Connection, cursor: Cursor, reader: pa.RecordBatchReader) -> None:
        self._conn = conn
        self._cursor = cursor
        self._reader = reader
        self.schema = reader.schema

    def read_next(self) -> pa.RecordBatch:
        return self._reader.read_next_batch()

    def cancel(self) -> None:
        self._cursor.adbc_cancel()

    def close(self) -> None:
        for closer in (self._reader.close, self._cursor.close, self._conn.close):
            with contextlib.suppress(Exception):
                closer()


def _bind_parameters(params: Mapping[str, Any]) -> pa.RecordBatch:
    """Named parameters as a one-row batch: InfluxDB names them after the batch's fields."""
    import pyarrow as pa

    return pa.RecordBatch.from_pydict({str(k): [v] for k, v in params.items()})


def open_stream(
    config: InfluxDB3Config,
    query: str,
    *,
    database: str,
    language: str = "sql",
    params: Mapping[str, Any] | None = None,
    timeout: float | None = None,
    extra_headers: Sequence[tuple[bytes, bytes]] = (),
) -> _AdbcStream:
    """Run ``query`` over Flight SQL and return its streaming reader."""
    if params and language == "influxql":
        raise ConfigurationError(
            "params: InfluxQL parameters are not supported over Flight SQL; use "
            "protocol='ticket' (the default)",
            field="params",
        )
    if extra_headers:
        headers = {k.decode(): v.decode() for k, v in extra_headers}
        config = config.with_options(headers={**config.headers, **headers})
    conn = connect_dbapi(config, database, timeout=timeout, language=language)
    cursor = None
    try:
        cursor = conn.cursor()
        if params:
            # Prepared statement + bound parameters (DoPut), as InfluxDB expects.
            from ._client import _param_value

            values = {k: _param_value(str(k), v) for k, v in params.items()}
            cursor.execute(query, _bind_parameters(values))
            reader = cursor.fetch_record_batch()
        else:
            # A plain CommandStatementQuery (the DB-API cursor would prepare first): the only
            # command on which InfluxDB honours x-influxdata-query-language.
            import pyarrow as pa

            stmt = cursor.adbc_statement
            stmt.set_sql_query(query)
            handle, _ = stmt.execute_query()
            reader = pa.RecordBatchReader._import_from_c(handle.address)
        return _AdbcStream(conn, cursor, reader)
    except BaseException:
        if cursor is not None:
            with contextlib.suppress(Exception):
                cursor.close()
        with contextlib.suppress(Exception):
            conn.close()
        raise
