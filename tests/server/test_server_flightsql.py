"""The real ``adbc_driver_flightsql`` DB-API driver against the stand-in over gRPC (§2).

This is the path the core client's ``dbapi_connect`` and Airflow's DbApiHook use: the driver
prepares every statement (DoAction CreatePreparedStatement), binds parameters with DoPut,
fetches with GetFlightInfo + DoGet, and lists tables with the metadata commands.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest

adbc_dbapi = pytest.importorskip("adbc_driver_flightsql.dbapi")
import adbc_driver_flightsql  # noqa: E402
import adbc_driver_manager  # noqa: E402

DB = "flightsql_adbc"
ROWS = [
    # time (ns), room, temp, hum, co
    (1_700_000_000_000_000_000, "Kitchen", 21.0, 35, 0),
    (1_700_000_010_000_000_000, "Living Room", 21.5, 36, 1),
    (1_700_000_020_000_000_000, "Kitchen", 22.75, 37, 2),
    (1_700_000_030_000_000_000, "Living Room", 20.5, 38, 3),
]


def _home_table() -> pa.Table:
    return pa.table(
        {
            "time": pa.array([r[0] for r in ROWS], pa.timestamp("ns")),
            "room": pa.array([r[1] for r in ROWS]).dictionary_encode(),
            "temp": pa.array([r[2] for r in ROWS], pa.float64()),
            "hum": pa.array([r[3] for r in ROWS], pa.int64()),
            "co": pa.array([r[4] for r in ROWS], pa.uint64()),
        }
    )


@pytest.fixture(scope="module")
def server(standin: Any) -> Any:
    """The session stand-in with database ``flightsql_adbc`` holding table ``home``."""
    if not standin.engine.has_database(DB):
        standin.engine.append(DB, "home", _home_table(), tags=["room"])
    return standin


def _grpc_uri(server: Any) -> str:
    return server.flight_uri.replace("grpc+tcp://", "grpc://")


def _connect(server: Any, database: str | None = DB, token: str | None = None) -> Any:
    token = server.token if token is None else token
    db_kwargs = {
        adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value: f"Bearer {token}"
    }
    if database is not None:
        db_kwargs[
            f"{adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value}database"
        ] = database
    return adbc_dbapi.connect(_grpc_uri(server), db_kwargs=db_kwargs, autocommit=True)


@pytest.fixture
def conn(server: Any) -> Iterator[Any]:
    connection = _connect(server)
    try:
        yield connection
    finally:
        connection.close()


def test_option_names_exist_in_the_installed_driver() -> None:
    assert adbc_driver_flightsql.DatabaseOptions.RPC_CALL_HEADER_PREFIX.value == (
        "adbc.flight.sql.rpc.call_header."
    )
    assert adbc_driver_flightsql.DatabaseOptions.AUTHORIZATION_HEADER.value == (
        "adbc.flight.sql.authorization_header"
    )


def test_execute_fetchall_in_influx_column_order(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT * FROM home ORDER BY time")
        names = [d[0] for d in cur.description]
        assert names == ["co", "hum", "room", "temp", "time"]
        types = {d[0]: d[1] for d in cur.description}
        assert types["room"] == pa.utf8()  # tags hydrated, no dictionary over the wire
        assert types["time"] == pa.timestamp("ns")  # no time zone
        assert types["co"] == pa.uint64()
        rows = cur.fetchall()
    assert [(r[2], r[3], r[1], r[0]) for r in rows] == [(r[1], r[2], r[3], r[4]) for r in ROWS]


def test_fetch_arrow_table_streams_aggregates(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT room, avg(temp) AS t, count(*) AS n FROM home GROUP BY room ORDER BY room"
        )
        table = cur.fetch_arrow_table()
    assert table.schema.field("room").type == pa.utf8()
    assert table.to_pylist() == [
        {"room": "Kitchen", "t": pytest.approx(21.875), "n": 2},
        {"room": "Living Room", "t": pytest.approx(21.0), "n": 2},
    ]


def test_raw_adbc_tuple_parameters_fail_as_on_core(conn: Any) -> None:
    """ADBC names a tuple's values 0, 1, ...; Core binds names verbatim, so $1 has no value."""
    with conn.cursor() as cur, pytest.raises(Exception, match=r"placeholder with name \$1"):
        cur.execute("SELECT temp FROM home WHERE room = $1 ORDER BY time", parameters=("Kitchen",))
        cur.fetchall()


def test_positional_parameters_as_a_batch_named_by_position(conn: Any) -> None:
    with conn.cursor() as cur:
        cur.execute(
            "SELECT temp FROM home WHERE room = $1 ORDER BY time",
            parameters=pa.record_batch({"1": ["Kitchen"]}),
        )
        assert cur.fetchall() == [(21.0,), (22.75,)]
        cur.execute(
            "SELECT count(*) FROM home WHERE hum >= $1 AND room = $2",
            parameters=pa.record_batch({"1": [36], "2": ["Living Room"]}),
        )
        assert cur.fetchall() == [(2,)]
        # same statement, new values: the driver re-binds on the same prepared handle
        cur.execute(
            "SELECT count(*) FROM home WHERE hum >= $1 AND room = $2",
            parameters=pa.record_batch({"1": [38], "2": ["Living Room"]}),
        )
        assert cur.fetchall() == [(1,)]


def test_named_parameters_from_a_record_batch(conn: Any) -> None:
    params = pa.record_batch({"room": ["Kitchen"], "t": [21.5]})
    with conn.cursor() as cur:
        cur.execute("SELECT temp FROM home WHERE room = $room AND temp > $t", parameters=params)
        assert cur.fetchall() == [(22.75,)]


def test_dict_parameters_are_refused_by_the_go_driver(conn: Any) -> None:
    """The DB-API sets ``adbc.statement.bind_by_name`` for dicts; the Go driver refuses it."""
    with (
        conn.cursor() as cur,
        pytest.raises(adbc_driver_manager.NotSupportedError, match="bind_by_name"),
    ):
        cur.execute("SELECT temp FROM home WHERE room = $room", parameters={"room": "Kitchen"})


def test_missing_parameter_value_is_reported(conn: Any) -> None:
    with conn.cursor() as cur, pytest.raises(adbc_driver_manager.ProgrammingError) as info:
        cur.execute(
            "SELECT temp FROM home WHERE room = $room AND hum > $h",
            parameters=pa.record_batch({"room": ["Kitchen"]}),
        )
        cur.fetchall()
    assert "No value found for placeholder with name $h" in str(info.value)


def test_unknown_table_is_a_programming_error(conn: Any) -> None:
    with conn.cursor() as cur, pytest.raises(adbc_driver_manager.ProgrammingError) as info:
        cur.execute("SELECT * FROM nope")
    assert "table 'public.iox.nope' not found" in str(info.value)


def test_dml_is_refused(conn: Any) -> None:
    with conn.cursor() as cur, pytest.raises(adbc_driver_manager.Error):
        cur.execute("DELETE FROM home")


def test_executemany_is_refused_like_core(conn: Any) -> None:
    """executemany is an update (CommandPreparedStatementUpdate), which IOx does not support."""
    with conn.cursor() as cur, pytest.raises(adbc_driver_manager.ProgrammingError) as info:
        cur.executemany("SELECT * FROM home WHERE room = $1", [("Kitchen",), ("Living Room",)])
    assert "Unsupported FlightSQL message type" in str(info.value)
    assert "CommandPreparedStatementUpdate" in str(info.value)


def test_get_objects_lists_tables_by_schema(conn: Any) -> None:
    objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
    assert [c["catalog_name"] for c in objects] == ["public"]
    schemas = {s["db_schema_name"]: s for s in objects[0]["catalog_db_schemas"]}
    assert set(schemas) == {"information_schema", "iox", "system"}
    iox = {(t["table_name"], t["table_type"]) for t in schemas["iox"]["db_schema_tables"]}
    assert iox == {("home", "BASE TABLE")}
    views = {t["table_name"] for t in schemas["information_schema"]["db_schema_tables"]}
    assert views == {
        "columns",
        "df_settings",
        "parameters",
        "routines",
        "tables",
        "views",
        "schemata",
    }
    assert {t["table_type"] for t in schemas["information_schema"]["db_schema_tables"]} == {"VIEW"}


def test_get_objects_with_columns_and_filters(conn: Any) -> None:
    objects = (
        conn.adbc_get_objects(depth="columns", db_schema_filter="iox", table_name_filter="ho%")
        .read_all()
        .to_pylist()
    )
    tables = objects[0]["catalog_db_schemas"][0]["db_schema_tables"]
    assert [t["table_name"] for t in tables] == ["home"]
    assert [c["column_name"] for c in tables[0]["table_columns"]] == [
        "co",
        "hum",
        "room",
        "temp",
        "time",
    ]


def test_get_table_schema_and_types(conn: Any) -> None:
    schema = conn.adbc_get_table_schema("home", db_schema_filter="iox")
    assert schema.names == ["co", "hum", "room", "temp", "time"]
    assert schema.field("temp").type == pa.float64()
    assert schema.field("time").type == pa.timestamp("ns")
    assert schema.field("room").metadata == {b"iox::column::type": b"iox::column_type::tag"}
    assert conn.adbc_get_table_types() == ["BASE TABLE", "VIEW"]


def test_get_info_reports_influxdb_iox(conn: Any) -> None:
    info = conn.adbc_get_info()
    assert info["vendor_name"] == "InfluxDB IOx"
    assert info["vendor_version"] == "2"
    assert info["vendor_arrow_version"] == "1.3"


def test_default_autocommit_warns_but_works(server: Any) -> None:
    """No transactions (like Core): the DB-API warns that autocommit cannot be disabled."""
    db_kwargs = {
        "adbc.flight.sql.authorization_header": f"Bearer {server.token}",
        "adbc.flight.sql.rpc.call_header.database": DB,
    }
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        connection = adbc_dbapi.connect(_grpc_uri(server), db_kwargs=db_kwargs)
    try:
        assert any("autocommit" in str(w.message) for w in caught)
        with connection.cursor() as cur:
            cur.execute("SELECT count(*) FROM home")
            assert cur.fetchone() == (4,)
    finally:
        connection.close()


def test_token_through_call_header_option(server: Any) -> None:
    db_kwargs = {
        "adbc.flight.sql.rpc.call_header.authorization": f"Token {server.token}",
        "adbc.flight.sql.rpc.call_header.bucket": DB,  # a database alias header
    }
    connection = adbc_dbapi.connect(_grpc_uri(server), db_kwargs=db_kwargs, autocommit=True)
    try:
        with connection.cursor() as cur:
            cur.execute("SELECT max(hum) FROM home")
            assert cur.fetchone() == (38,)
    finally:
        connection.close()


def test_missing_database_header(server: Any) -> None:
    connection = _connect(server, database=None)
    try:
        with (
            connection.cursor() as cur,
            pytest.raises(adbc_driver_manager.ProgrammingError) as info,
        ):
            cur.execute("SELECT 1")
        assert "no 'database' header in request" in str(info.value)
    finally:
        connection.close()


def test_unknown_database(server: Any) -> None:
    connection = _connect(server, database="flightsql_no_such_db")
    try:
        with connection.cursor() as cur, pytest.raises(adbc_driver_manager.Error) as info:
            cur.execute("SELECT 1")
        assert "database not found: flightsql_no_such_db" in str(info.value)
    finally:
        connection.close()


def test_wrong_token_is_unauthenticated(server: Any) -> None:
    connection = _connect(server, token="apiv3_wrong")
    try:
        with connection.cursor() as cur, pytest.raises(adbc_driver_manager.Error) as info:
            cur.execute("SELECT 1")
        assert re.search(r"UNAUTHENTICATED|Unauthenticated", str(info.value))
        assert "apiv3_wrong" not in str(info.value)
    finally:
        connection.close()


def test_qmark_placeholders_get_a_hint(conn: Any) -> None:
    """The DB-API's paramstyle is qmark, but DataFusion only knows ``$1`` / ``$name``."""
    with conn.cursor() as cur, pytest.raises(adbc_driver_manager.ProgrammingError) as info:
        cur.execute("SELECT temp FROM home WHERE room = ?", parameters=("Kitchen",))
        cur.fetchall()
    assert "No value found for placeholder with name ?" in str(info.value)
    assert "write $1, $2" in str(info.value)


def test_influxql_through_the_query_language_header(server: Any) -> None:
    """An unprepared statement (CommandStatementQuery) honours x-influxdata-query-language."""
    from influx_flight.server import influxql

    if not hasattr(influxql, "execute"):
        pytest.skip("the InfluxQL planner (influxql.execute) is not available yet")
    db_kwargs = {
        "adbc.flight.sql.authorization_header": f"Bearer {server.token}",
        "adbc.flight.sql.rpc.call_header.database": DB,
        "adbc.flight.sql.rpc.call_header.x-influxdata-query-language": "influxql",
    }
    connection = adbc_dbapi.connect(_grpc_uri(server), db_kwargs=db_kwargs, autocommit=True)
    try:
        with connection.cursor() as cur:
            stmt = cur.adbc_statement
            stmt.set_sql_query("SELECT max(hum) FROM home GROUP BY room")
            handle, _ = stmt.execute_query()
            table = pa.RecordBatchReader._import_from_c(handle.address).read_all()
        assert table.schema.names[:2] == ["iox::measurement", "time"]
        rows = sorted(zip(table["room"].to_pylist(), table["max"].to_pylist(), strict=True))
        assert rows == [("Kitchen", 37), ("Living Room", 38)]
        # the header is ignored by every other command (here: GetTableTypes)
        assert connection.adbc_get_table_types() == ["BASE TABLE", "VIEW"]
    finally:
        connection.close()
