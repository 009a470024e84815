"""``DbApiHook`` over the core's Flight SQL DB-API, so common.sql works with InfluxDB 3.

common.sql's operators and ``SqlSensor`` resolve their hook from the connection type and insist on
a ``DbApiHook``; this class is that hook (the registered ``InfluxDB3FlightHook`` extends it with
the native Flight API). Flight SQL carries SQL only; use ``InfluxDB3FlightHook.query`` for
InfluxQL. Positional parameters are written ``$1``, ``$2`` (DataFusion's syntax), not ``?``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.common.sql.hooks.sql import DbApiHook

from airflow_influx.provider_info import CONN_TYPE, HOOK_NAME

if TYPE_CHECKING:
    from airflow_influx.hooks._connection import ConnectionSettings
    from influx_flight import InfluxDB3Client, InfluxDB3Config


class InfluxDB3FlightSQLHook(DbApiHook):
    """Runs SQL on InfluxDB 3 through Flight SQL (ADBC) with the common.sql hook API.

    Owns one lazily created ``InfluxDB3Client`` (created inside the task, after any fork) and
    closes it in :meth:`close`.

    :param influxdb3_conn_id: the ``influxdb3_flight`` connection id.
    :param database: overrides the connection's database (common.sql's ``database=`` also lands
        here, through ``schema``).
    """

    # The keyword naming the connection id (common.sql and Connection.get_hook use it).
    conn_name_attr = "influxdb3_conn_id"
    # The connection id used when none is given.
    default_conn_name = "influxdb3_flight_default"
    # The connection type this hook is registered for in provider info.
    conn_type = CONN_TYPE
    # The label of the connection type in the UI.
    hook_name = HOOK_NAME
    # InfluxDB 3 has no transactions; ADBC runs in autocommit mode.
    supports_autocommit = True
    # A query every InfluxDB 3 answers without touching tables.
    _test_connection_sql = "SELECT 1"

    def __init__(self, *args: Any, database: str | None = None, **kwargs: Any) -> None:
        schema = kwargs.get("schema")
        super().__init__(*args, **kwargs)
        # common.sql's BaseSQLOperator sets ``hook.schema = <database>`` for non-postgres hooks.
        self.schema: str | None = database or schema
        self._settings: ConnectionSettings | None = None
        self._client: InfluxDB3Client | None = None

    # -- connection -> config -----------------------------------------------------------------

    def get_settings(self) -> ConnectionSettings:
        """Config and query defaults from the connection (read once; the token is masked)."""
        if self._settings is None:
            from airflow_influx._secrets import load_settings

            self._settings = load_settings(self.get_conn_id(), database=self.schema)
        return self._settings

    def get_config(self) -> InfluxDB3Config:
        """The core ``InfluxDB3Config`` this hook connects with."""
        return self.get_settings().config

    def get_client(self) -> InfluxDB3Client:
        """The hook's ``InfluxDB3Client``, created on first use; :meth:`close` closes it."""
        if self._client is None:
            from influx_flight import InfluxDB3Client

            settings = self.get_settings()
            policy = settings.retry_policy()
            if policy is None:
                self._client = InfluxDB3Client(settings.config)
            else:
                self._client = InfluxDB3Client(settings.config, retry_policy=policy)
        return self._client

    def cancel(self) -> None:
        """Cancel the query this hook is running (safe from another thread, e.g. ``on_kill``)."""
        if self._client is not None:
            self._client.cancel()

    def close(self) -> None:
        """Close the client and its Flight channel (idempotent)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    # -- DbApiHook ----------------------------------------------------------------------------

    def get_conn(self) -> Any:
        """A new PEP 249 connection over Flight SQL (ADBC, autocommit); the caller closes it."""
        return self.get_client().dbapi_connect()

    def get_uri(self) -> str:
        """The Flight endpoint (no credentials); InfluxDB 3 has no SQLAlchemy dialect."""
        return self.get_config().flight_location

    def get_sqlalchemy_engine(self, engine_kwargs: Any = None) -> Any:
        """Refused: InfluxDB 3 has no SQLAlchemy dialect (this hook speaks Flight SQL)."""
        raise NotImplementedError(
            "InfluxDB 3 has no SQLAlchemy dialect, so get_sqlalchemy_engine() (and the "
            "SQLAlchemy-based inspector/get_table_schema) cannot work. Use get_records(), "
            "get_df() or get_conn() (a DB-API connection over Flight SQL) instead."
        )

    @property
    def sqlalchemy_url(self) -> Any:
        """Refused, like :meth:`get_sqlalchemy_engine`."""
        return self.get_sqlalchemy_engine()

    @property
    def inspector(self) -> Any:
        """Refused, like :meth:`get_sqlalchemy_engine`."""
        return self.get_sqlalchemy_engine()

    def _make_common_data_structure(self, result: Any) -> Any:
        """Rows as tuples of plain Python values: timestamps become ``datetime`` in UTC.

        Flight returns InfluxDB's ``time`` as an Arrow timestamp, which arrives as a
        ``pandas.Timestamp``; XCom cannot serialise that, and the common.sql convention is
        DB-API values. InfluxDB 3 timestamps without a zone are UTC.
        """
        from airflow_influx.hooks._rows import plain_row

        if result is None:
            return None
        if isinstance(result, list):
            return [plain_row(row) for row in result]
        return plain_row(result)

    # -- OpenLineage --------------------------------------------------------------------------

    def get_openlineage_database_info(self, connection: Any) -> Any:
        """Namespace ``influxdb3://host:port``; tables live in schema ``iox`` of the database."""
        from airflow.providers.openlineage.sqlparser import DatabaseInfo

        from airflow_influx._lineage import namespace

        config = self.get_config()
        return DatabaseInfo(
            scheme="influxdb3",
            authority=namespace(config).split("://", 1)[1],
            database=config.database,
            information_schema_columns=[
                "table_schema",
                "table_name",
                "column_name",
                "ordinal_position",
                "data_type",
                "table_catalog",
            ],
            information_schema_table_name="information_schema.columns",
            is_information_schema_cross_db=False,
            use_flat_cross_db_query=False,
        )

    def get_openlineage_database_dialect(self, connection: Any) -> str:
        """InfluxDB 3 SQL is DataFusion's PostgreSQL-like dialect."""
        return "postgres"

    def get_openlineage_default_schema(self) -> str | None:
        """InfluxDB 3 keeps every table in schema ``iox``."""
        return "iox"

    def insert_rows(self, table: str, rows: Any, *args: Any, **kwargs: Any) -> None:
        """InfluxDB 3 SQL has no INSERT: refuse clearly and point to the line-protocol writer."""
        raise NotImplementedError(
            "InfluxDB 3 does not accept SQL INSERT statements; write rows with "
            "InfluxDB3FlightHook.write(table_or_dataframe, measurement=..., tags=[...]) instead"
        )

    def set_autocommit(self, conn: Any, autocommit: bool) -> None:
        """ADBC connections from the core are always in autocommit mode: nothing to change."""

    def get_autocommit(self, conn: Any) -> bool:
        """Always True, so ``run()`` never calls ``commit()`` on a non-transactional server."""
        return True
