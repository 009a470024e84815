"""InfluxDB3FlightHook against the stand-in: native Flight queries, Flight SQL DB-API, writes,
the connection test, and common.sql's operators and sensor on an ``influxdb3_flight`` connection.
"""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("airflow")

from af_testdata import HOME_HOURS, ROOMS, home_points
from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

PER_ROOM = HOME_HOURS * 6


@pytest.fixture
def hook(home_db: str, default_conn: Any) -> Any:
    h = InfluxDB3FlightHook()
    yield h
    h.close()


def test_test_connection_success_names_host_and_database(
    hook: Any, standin: Any, home_db: str
) -> None:
    ok, message = hook.test_connection()
    assert ok, message
    assert message.startswith(
        f"Connected to InfluxDB 3 at {standin.flight_uri}: database '{home_db}'"
    )


def test_test_connection_wrong_token_is_clear_and_hides_token(
    default_conn: Any, home_db: str
) -> None:
    default_conn(token="apiv3_this-token-is-wrong")
    ok, message = InfluxDB3FlightHook().test_connection()
    assert not ok
    assert message.startswith("AuthenticationError: ")
    assert "Check the token" in message
    assert "apiv3_this-token-is-wrong" not in message


def test_test_connection_unknown_database(
    default_conn: Any, standin: Any, monkeypatch: Any
) -> None:
    from af_testdata import DEFAULT_CONN_ENV, connection_json

    monkeypatch.setenv(DEFAULT_CONN_ENV, connection_json(standin, "no_such_db_x", standin.token))
    ok, message = InfluxDB3FlightHook().test_connection()
    assert not ok
    assert message.startswith("DatabaseNotFoundError: Database 'no_such_db_x' does not exist")


def test_test_connection_server_down_answers_false(monkeypatch: Any) -> None:
    import json
    import socket

    from af_testdata import DEFAULT_CONN_ENV

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(
        DEFAULT_CONN_ENV,
        json.dumps(
            {"conn_type": "influxdb3_flight", "host": f"http://127.0.0.1:{port}", "schema": "d"}
        ),
    )
    ok, message = InfluxDB3FlightHook().test_connection()
    assert not ok
    assert message.startswith(("ServerUnavailableError: ", "QueryTimeoutError: ")), message


def test_get_records_native_sql_with_params(hook: Any) -> None:
    rows = hook.get_records(
        "SELECT room, count(*) AS n FROM home WHERE room = $room GROUP BY room", {"room": "Kitchen"}
    )
    assert rows == [("Kitchen", PER_ROOM)]


def test_get_records_influxql_from_the_language_argument(hook: Any) -> None:
    rows = hook.get_records("SELECT count(temp) FROM home GROUP BY room", language="influxql")
    assert sorted((r[2], r[3]) for r in rows) == [(room, PER_ROOM) for room in ROOMS]


def test_connection_query_language_extra_sets_the_default(home_db: str, default_conn: Any) -> None:
    default_conn(query_language="influxql")
    hook = InfluxDB3FlightHook()
    try:
        rows = hook.get_records("SELECT max(co) FROM home")
    finally:
        hook.close()
    assert rows[0][-1] == max(p["co"] for p in home_points())


def test_flightsql_protocol_extra(home_db: str, default_conn: Any) -> None:
    default_conn(protocol="flightsql")
    hook = InfluxDB3FlightHook()
    try:
        assert hook.get_settings().protocol == "flightsql"
        assert hook.get_records("SELECT count(*) FROM home") == [(2 * PER_ROOM,)]
    finally:
        hook.close()


def test_dbapi_path_get_first_and_positional_params(hook: Any) -> None:
    assert hook.get_first("SELECT count(*) FROM home") == (2 * PER_ROOM,)
    assert hook.get_records("SELECT count(*) FROM home WHERE room = $1", ["Living Room"]) == [
        (PER_ROOM,)
    ]
    conn = hook.get_conn()
    try:
        cur = conn.cursor()
        cur.execute("SELECT max(temp) FROM home")
        assert cur.fetchone() == (max(p["temp"] for p in home_points()),)
    finally:
        conn.close()


def test_get_df_and_get_arrow(hook: Any) -> None:
    df = hook.get_df("SELECT time, room, temp FROM home ORDER BY time, room")
    assert len(df) == 2 * PER_ROOM
    assert str(df["time"].dt.tz) == "UTC"
    table = hook.get_arrow("SELECT temp FROM home WHERE room = $room", params={"room": "Kitchen"})
    assert table.num_rows == PER_ROOM


def test_write_then_read_back(hook: Any) -> None:
    table = hook.get_arrow("SELECT time, room, temp FROM home WHERE room = 'Kitchen'")
    result = hook.write(table, measurement="kitchen_copy", tags=["room"])
    assert result.lines_written == PER_ROOM
    assert hook.get_records("SELECT count(*), sum(temp) FROM kitchen_copy") == [
        (PER_ROOM, pytest.approx(sum(p["temp"] for p in home_points() if p["room"] == "Kitchen")))
    ]


def test_insert_rows_is_refused_with_a_pointer_to_write(hook: Any) -> None:
    with pytest.raises(NotImplementedError, match=r"InfluxDB3FlightHook.write"):
        hook.insert_rows("home", [(1, 2)])


def test_token_is_registered_with_the_secrets_masker(hook: Any, standin: Any) -> None:
    try:
        from airflow.sdk._shared.secrets_masker import redact
    except ImportError:  # Airflow < 3.2
        from airflow.sdk.execution_time.secrets_masker import redact

    hook.get_config()
    assert standin.token not in str(redact(f"header Bearer {standin.token}"))


# --- common.sql on an influxdb3_flight connection ------------------------------------------------


def test_sql_execute_query_operator(home_db: str, default_conn: Any) -> None:
    from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator

    op = SQLExecuteQueryOperator(
        task_id="q",
        conn_id="influxdb3_flight_default",
        sql="SELECT room, count(*) FROM home GROUP BY room ORDER BY room",
    )
    assert isinstance(op.get_db_hook(), InfluxDB3FlightHook)
    assert op.execute(context={}) == [(room, PER_ROOM) for room in ROOMS]


def test_sql_check_operator(home_db: str, default_conn: Any) -> None:
    from af_compat import AirflowException
    from airflow.providers.common.sql.operators.sql import SQLCheckOperator

    SQLCheckOperator(
        task_id="ok", conn_id="influxdb3_flight_default", sql="SELECT count(*) FROM home"
    ).execute(context={})
    failing = SQLCheckOperator(
        task_id="bad",
        conn_id="influxdb3_flight_default",
        sql="SELECT count(*) FROM home WHERE temp > 1000",
    )
    with pytest.raises(AirflowException, match=r"Test failed"):
        failing.execute(context={})


def test_sql_value_check_operator(home_db: str, default_conn: Any) -> None:
    from af_compat import AirflowException
    from airflow.providers.common.sql.operators.sql import SQLValueCheckOperator

    SQLValueCheckOperator(
        task_id="ok",
        conn_id="influxdb3_flight_default",
        sql="SELECT count(*) FROM home",
        pass_value=2 * PER_ROOM,
    ).execute(context={})
    with pytest.raises(AirflowException, match=r"Test failed"):
        SQLValueCheckOperator(
            task_id="bad",
            conn_id="influxdb3_flight_default",
            sql="SELECT count(*) FROM home",
            pass_value=7,
        ).execute(context={})


def test_sql_sensor(home_db: str, default_conn: Any) -> None:
    from airflow.providers.common.sql.sensors.sql import SqlSensor

    found = SqlSensor(
        task_id="s",
        conn_id="influxdb3_flight_default",
        sql="SELECT count(*) FROM home WHERE room = 'Kitchen'",
    )
    assert found.poke(context={}) is True
    missing = SqlSensor(
        task_id="s2",
        conn_id="influxdb3_flight_default",
        sql="SELECT count(*) FROM home WHERE room = 'Attic'",
    )
    assert missing.poke(context={}) is False
