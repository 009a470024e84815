"""UNION / INTERSECT / EXCEPT whose inputs have different types: the stream announces the
coerced types, over the DoGet ticket and over Flight SQL (the DB-API path Airflow's
``SQLColumnCheckOperator`` uses).
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

DB = "set_operations"


@pytest.fixture(scope="module")
def server(standin: Any) -> Any:
    if not standin.engine.has_database(DB):
        table = pa.table(
            {
                "time": pa.array([1, 2, 3], pa.timestamp("ns")),
                "room": pa.array(["a", "b", "a"]).dictionary_encode(),
                "temp": [16.9, 20.0, None],
                "hum": pa.array([35, 36, 37], pa.int64()),
            }
        )
        standin.engine.append(DB, "home", table, tags=["room"])
    return standin


def doget(server: Any, sql: str) -> pa.Table:
    client = flight.FlightClient(server.flight_uri)
    try:
        ticket = flight.Ticket(json.dumps({"database": DB, "sql_query": sql}).encode())
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {server.token}".encode())]
        )
        return client.do_get(ticket, options).read_all()
    finally:
        client.close()


def column_check_sql() -> str:
    """The query Airflow's SQLColumnCheckOperator builds for a null check and a min check."""
    sql_ops = pytest.importorskip("airflow.providers.common.sql.operators.sql")
    operator = sql_ops.SQLColumnCheckOperator(
        task_id="checks",
        table="home",
        column_mapping={"temp": {"null_check": {"equal_to": 1}, "min": {"greater_than": 0}}},
    )
    return operator.sql


def test_column_check_union_over_doget(server: Any) -> None:
    out = doget(server, column_check_sql())
    assert out.schema.field("check_result").type == pa.float64()
    rows = {(r["col_name"], r["check_type"]): r["check_result"] for r in out.to_pylist()}
    assert rows == {("temp", "null_check"): 1.0, ("temp", "min"): 16.9}


def test_column_check_union_over_flight_sql(server: Any) -> None:
    dbapi = pytest.importorskip("adbc_driver_flightsql.dbapi")
    import adbc_driver_flightsql

    options = adbc_driver_flightsql.DatabaseOptions
    conn = dbapi.connect(
        server.flight_uri.replace("grpc+tcp://", "grpc://"),
        db_kwargs={
            options.AUTHORIZATION_HEADER.value: f"Bearer {server.token}",
            f"{options.RPC_CALL_HEADER_PREFIX.value}database": DB,
        },
        autocommit=True,
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute(column_check_sql())
            records = sorted(cursor.fetchall())
    finally:
        conn.close()
    assert records == [("temp", "min", 16.9), ("temp", "null_check", 1.0)]


@pytest.mark.parametrize(
    ("sql", "expected_type", "values"),
    [
        ("SELECT hum AS v FROM home UNION ALL SELECT temp FROM home", pa.float64(), 6),
        ("SELECT count(*) AS v FROM home UNION SELECT max(temp) FROM home", pa.float64(), 2),
        ("SELECT hum AS v FROM home INTERSECT SELECT 36.0", pa.int64(), 1),  # left type
        ("SELECT temp AS v FROM home EXCEPT SELECT 20", pa.float64(), 2),
        ("SELECT room AS v FROM home UNION SELECT 'c' ORDER BY v", pa.utf8(), 3),
    ],
)
def test_set_operations_announce_the_coerced_type(
    server: Any, sql: str, expected_type: pa.DataType, values: int
) -> None:
    out = doget(server, sql)
    assert out.schema.field("v").type == expected_type
    assert out.num_rows == values
