"""``InfluxDB3FlightHook``: the single seam between Airflow and the ``influx_flight`` core.

Registered for the ``influxdb3_flight`` connection type. It is a ``DbApiHook`` (through
:class:`~airflow_influx.hooks.flightsql.InfluxDB3FlightSQLHook`) so that common.sql's operators and
``SqlSensor`` accept the connection, and it adds the native Flight API: SQL and InfluxQL with
``$params`` over InfluxDB's DoGet ticket protocol, Arrow results, Parquet exports and write-back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from airflow_influx.hooks.flightsql import InfluxDB3FlightSQLHook

if TYPE_CHECKING:
    import pyarrow as pa

    from influx_flight import QueryResult, WriteResult


class InfluxDB3FlightHook(InfluxDB3FlightSQLHook):
    """Queries and writes InfluxDB 3 over Arrow Flight (SQL and InfluxQL) and HTTP.

    ``get_records`` / ``get_df`` honour the connection's ``query_language`` and ``protocol``
    extras and take InfluxDB ``$name`` parameters as a dict; positional parameters or lists of
    statements go through Flight SQL like any ``DbApiHook``. ``run`` / ``get_first`` (used by the
    common.sql check operators) always use Flight SQL, hence SQL.

    Example::

        hook = InfluxDB3FlightHook("influxdb3_flight_default")
        table = hook.get_arrow("SELECT * FROM home WHERE room = $room", params={"room": "Kitchen"})
        hook.write(table, measurement="home_copy", tags=["room"])
        hook.close()

    :param influxdb3_conn_id: the ``influxdb3_flight`` connection id.
    :param database: overrides the connection's database.
    :param query_language: overrides the connection's ``query_language`` extra.
    :param protocol: overrides the connection's ``protocol`` extra (``ticket`` or ``flightsql``).
    """

    def __init__(
        self,
        *args: Any,
        query_language: str | None = None,
        protocol: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.query_language = query_language
        self.protocol = protocol

    # -- connection form (Airflow < 3.2; newer ones read provider_info's conn-fields) ----------

    @classmethod
    def get_connection_form_widgets(cls) -> dict[str, Any]:
        """provider_info's ``conn-fields`` as WTForms fields (stored as plain extra keys).

        Imported here, not at module level: the form libraries come with Airflow's UI, and
        Airflow 3.0's hook-meta API patches them before calling this.
        """
        from wtforms import BooleanField, IntegerField, StringField
        from wtforms.validators import Optional, any_of

        try:  # both come with the FAB provider; the form works without them
            from flask_babel import lazy_gettext
        except ImportError:
            lazy_gettext = str
        try:
            from flask_appbuilder.fieldwidgets import BS3TextFieldWidget
        except ImportError:
            BS3TextFieldWidget = None

        from airflow_influx.provider_info import CONN_FIELDS

        widgets: dict[str, Any] = {}
        for name, field in CONN_FIELDS.items():
            schema = field["schema"]
            types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
            label = lazy_gettext(field["label"])
            default = schema.get("default")
            if "boolean" in types:
                widgets[name] = BooleanField(
                    label, description=field["description"], default=bool(default)
                )
                continue
            validators: list[Any] = [Optional()] if "null" in types else []
            if "enum" in schema:
                validators.append(any_of(schema["enum"]))
            field_class = IntegerField if "integer" in types else StringField
            widgets[name] = field_class(
                label,
                validators=validators,
                description=field["description"],
                default=default,
                widget=BS3TextFieldWidget() if BS3TextFieldWidget else None,
            )
        return widgets

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """provider_info's ``ui-field-behaviour`` in the hook-method spelling."""
        from airflow_influx.provider_info import UI_FIELD_BEHAVIOUR

        return {key.replace("-", "_"): value for key, value in UI_FIELD_BEHAVIOUR.items()}

    # -- native queries -----------------------------------------------------------------------

    def query(self, text: str, **kwargs: Any) -> QueryResult:
        """``InfluxDB3Client.query`` on the hook's client: same arguments, and ``language`` /
        ``protocol`` default to the hook's, then the connection's extras.

        :param text: SQL or InfluxQL.
        :param kwargs: as for ``influx_flight.InfluxDB3Client.query`` (``params``, ``timeout``,
            ``database``, ...); ``None`` for ``language`` or ``protocol`` means the default.
        """
        settings = self.get_settings()
        if kwargs.get("language") is None:
            kwargs["language"] = self.query_language or settings.query_language
        if kwargs.get("protocol") is None:
            kwargs["protocol"] = self.protocol or settings.protocol
        if not kwargs.get("params"):
            kwargs.pop("params", None)
        return self.get_client().query(text, **kwargs)

    def get_arrow(
        self,
        text: str,
        *,
        language: str | None = None,
        params: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> pa.Table:
        """Run a query and return the whole result as a ``pyarrow.Table``."""
        return self.query(text, language=language, params=params, **kwargs).to_table()

    def _logged_query(
        self, sql: str, language: str | None, parameters: Any, **kwargs: Any
    ) -> tuple[QueryResult, float]:
        from airflow_influx._logging import log_query

        settings = self.get_settings()
        log_query(
            self.log,
            sql,
            language=language or self.query_language or settings.query_language,
            database=kwargs.get("database") or settings.config.database,
            params=parameters,
            protocol=kwargs.get("protocol") or self.protocol or settings.protocol,
        )
        return self.query(sql, language=language, params=parameters, **kwargs), time.perf_counter()

    def _log_done(self, rows: int, nbytes: int | None, started: float) -> None:
        from airflow_influx._logging import log_done

        log_done(self.log, rows=rows, nbytes=nbytes, seconds=time.perf_counter() - started)

    def _native(self, sql: Any, parameters: Any) -> bool:
        return isinstance(sql, str) and (parameters is None or isinstance(parameters, Mapping))

    def get_records(
        self,
        sql: str | list[str],
        parameters: Any = None,
        *,
        language: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """Rows as a list of tuples (the common.sql shape), over the native Flight path.

        :param sql: the query (a list of statements goes through Flight SQL).
        :param parameters: a dict of ``$name`` values; a sequence means Flight SQL ``?`` binding.
        :param language: ``sql`` or ``influxql``; default: the hook's, then the connection's.
        """
        if not self._native(sql, parameters):
            return super().get_records(sql, parameters, **kwargs)
        from airflow_influx.hooks._rows import table_rows

        result, started = self._logged_query(sql, language, parameters, **kwargs)
        table = result.to_table()
        self._log_done(table.num_rows, table.nbytes, started)
        return table_rows(table)

    def get_df(  # type: ignore[override]
        self,
        sql: str | list[str],
        parameters: Any = None,
        *,
        df_type: str = "pandas",
        language: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A pandas (default) or polars DataFrame, over the native Flight path."""
        if not self._native(sql, parameters):
            return super().get_df(sql, parameters, df_type=df_type, **kwargs)
        result, started = self._logged_query(sql, language, parameters, **kwargs)
        if df_type == "pandas":
            frame = result.to_pandas()
            self._log_done(len(frame), getattr(result, "bytes", None), started)
            return _utc_frame(frame)
        if df_type == "polars":
            try:
                import polars as pl
            except ImportError as exc:
                raise ImportError("df_type='polars' needs polars: pip install polars") from exc
            return pl.from_arrow(result.to_table())
        raise ValueError(f"df_type must be 'pandas' or 'polars', got {df_type!r}")

    # -- writes ---------------------------------------------------------------------------------

    def write(self, data: Any, **kwargs: Any) -> WriteResult:
        """``InfluxDB3Client.write`` on the hook's client (same arguments): a ``pyarrow.Table``
        / ``RecordBatch`` / pandas DataFrame as line protocol. Rejected lines raise
        ``WriteError`` naming the rows."""
        return self.get_client().write(data, **kwargs)

    # -- connection test ----------------------------------------------------------------------

    def test_connection(self) -> tuple[bool, str]:
        """Run a cheap query; answer ``(ok, message)`` with a message a person can act on."""
        from influx_flight import InfluxDB3Error

        config = None
        try:
            config = self.get_config()
            started = time.perf_counter()
            from influx_flight import InfluxDB3Client, RetryPolicy

            # One attempt, no retries: the person pressing "Test" wants the answer now.
            self._client = InfluxDB3Client(config, retry_policy=RetryPolicy(max_attempts=1))
            self._client.check_connection()
            elapsed_ms = (time.perf_counter() - started) * 1000
            return (
                True,
                f"Connected to InfluxDB 3 at {config.display_host}: database "
                f"'{config.database}' answered a test query in {elapsed_ms:.0f} ms.",
            )
        except InfluxDB3Error as exc:
            # A connection test is one attempt: drop the core's advice about task retries.
            message = f"{type(exc).__name__}: {exc}".replace(
                "; transient failures are retried.", "."
            ).replace(" transient failures are retried.", "")
        except Exception as exc:  # any other failure still answers (False, message), not a 500
            message = f"Unexpected error ({type(exc).__name__}): {exc}"
        finally:
            self.close()
        return False, config.scrub(message) if config is not None else message


def _utc_frame(frame: Any) -> Any:
    """Timestamp columns as tz-aware UTC (InfluxDB 3's zone-less timestamps are UTC)."""
    import pandas as pd

    for name in frame.columns:
        column = frame[name]
        if pd.api.types.is_datetime64_any_dtype(column) and getattr(column.dt, "tz", None) is None:
            frame[name] = column.dt.tz_localize("UTC")
    return frame
