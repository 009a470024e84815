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

__all__ = [
    "InfluxDB3DbapiConnection",
    "InfluxDB3DbapiCursor",
    "as_bound_parameters",
    "connect_dbapi",
    "dbapi_options",
    "open_stream",
]

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
        return InfluxDB3DbapiConnection(
            dbapi.connect(
                config.flight_location,
                db_kwargs=dbapi_options(
                    config, database=database, timeout=timeout, language=language
                ),
                autocommit=True,
            )
        )


def as_bound_parameters(parameters: Any) -> Any:
    """DB-API parameters in the form InfluxDB 3 binds: a one-row batch named after placeholders.

    InfluxDB takes placeholder names from the bound batch's field names (protocol reference
    §2.1). ADBC names a tuple's values ``0``, ``1``, ... which match no DataFusion placeholder
    (``$1`` is the first), and refuses dicts outright; so a sequence becomes fields ``1``, ``2``,
    ... for ``$1``, ``$2``, ... and a mapping becomes fields named after its keys (``$room``).
    Arrow data (a record batch or table) passes through unchanged.
    """
    if parameters is None or hasattr(parameters, "schema"):
        return parameters
    import pyarrow as pa

    from ._params import param_value

    if isinstance(parameters, Mapping):
        named = {str(k).removeprefix("$"): v for k, v in parameters.items()}
    elif isinstance(parameters, Sequence) and not isinstance(parameters, str | bytes):
        named = {str(i): v for i, v in enumerate(parameters, start=1)}
    else:
        raise ConfigurationError(
            f"parameters: expected a sequence (for $1, $2, ...) or a mapping (for $name), got "
            f"{type(parameters).__name__}",
            field="parameters",
        )
    if not named:
        return None
    return pa.RecordBatch.from_pydict({k: [param_value(k, v)] for k, v in named.items()})


class InfluxDB3DbapiCursor:
    """An ADBC cursor whose ``execute`` binds tuples and dicts the way InfluxDB 3 reads them."""

    def __init__(self, cursor: Cursor) -> None:
        self._cursor = cursor

    def execute(self, operation: Any, parameters: Any = None, **kwargs: Any) -> Any:
        return self._cursor.execute(operation, as_bound_parameters(parameters), **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def __iter__(self) -> Any:
        return iter(self._cursor)

    def __enter__(self) -> InfluxDB3DbapiCursor:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._cursor.close()


class InfluxDB3DbapiConnection:
    """A PEP 249 connection over ADBC Flight SQL; cursors bind parameters as InfluxDB 3 expects."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def cursor(self, *args: Any, **kwargs: Any) -> InfluxDB3DbapiCursor:
        return InfluxDB3DbapiCursor(self._connection.cursor(*args, **kwargs))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._connection, name)

    def __enter__(self) -> InfluxDB3DbapiConnection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._connection.close()


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
    conn = connect_dbapi(config, database, timeout=timeout, language=language)._connection
    cursor = None
    try:
        cursor = conn.cursor()
        if params:
            # Prepared statement + bound parameters (DoPut), as InfluxDB expects.
            cursor.execute(query, as_bound_parameters(params))
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
