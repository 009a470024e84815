"""Prepared-statement parameters and metadata helpers of the Flight SQL handler, on a real Engine.

The RPC paths are covered over gRPC in ``test_server_flightsql_rpc.py``; these tests pin the
rules (placeholder typing, parameter naming, LIKE patterns, header resolution) directly.
"""

from __future__ import annotations

import pyarrow as pa
import pytest

from influx_flight.server import protos
from influx_flight.server.engine import Engine
from influx_flight.server.errors import InvalidRequest, QueryPlanError
from influx_flight.server.flightsql import (
    FlightSqlHandler,
    _like_to_regex,
    base_table_type_from_headers,
    database_from_headers,
    sql_info_batch,
)


@pytest.fixture(scope="module")
def handler() -> FlightSqlHandler:
    engine = Engine()
    engine.append(
        "db",
        "home",
        pa.table(
            {
                "time": pa.array([1, 2], pa.timestamp("ns")),
                "room": pa.array(["Kitchen", "Living"]).dictionary_encode(),
                "temp": [21.0, 22.0],
                "hum": pa.array([1, 2], pa.int64()),
                "co": pa.array([1, 2], pa.uint64()),
                "on": [True, False],
                "note": ["a", "b"],
            }
        ),
        tags=["room"],
    )
    return FlightSqlHandler(engine)


def test_parameter_types_come_from_the_plan(handler: FlightSqlHandler) -> None:
    schema = handler.parameter_schema(
        "db",
        "SELECT * FROM home WHERE room = $room AND temp > $1 AND hum = $h AND co = $c "
        "AND on = $on AND note = $note AND time >= $start",
    )
    assert [(f.name, f.type) for f in schema] == [
        ("$room", pa.utf8()),  # the tag's dictionary value type
        ("$1", pa.float64()),
        ("$h", pa.int64()),
        ("$c", pa.uint64()),
        ("$on", pa.bool_()),
        ("$note", pa.utf8()),
        ("$start", pa.timestamp("ns")),
    ]
    assert all(f.nullable for f in schema)


def test_no_placeholders_give_an_empty_parameter_schema(handler: FlightSqlHandler) -> None:
    assert handler.parameter_schema("db", "SELECT '$notaplaceholder' AS x FROM home") == pa.schema(
        []
    )


def test_untypeable_placeholder_is_refused(handler: FlightSqlHandler) -> None:
    with pytest.raises(QueryPlanError, match=r"Unable to infer the type of parameter: \$n"):
        handler.parameter_schema("db", "SELECT * FROM home LIMIT $n")


def test_prepared_result_round_trips_schemas(handler: FlightSqlHandler) -> None:
    result = handler.create_prepared_statement("db", "SELECT room, temp FROM home WHERE hum > $1")
    dataset = pa.ipc.read_schema(pa.py_buffer(result.dataset_schema))
    assert [(f.name, f.type) for f in dataset] == [("room", pa.utf8()), ("temp", pa.float64())]
    params = pa.ipc.read_schema(pa.py_buffer(result.parameter_schema))
    assert [(f.name, f.type) for f in params] == [("$1", pa.int64())]
    query, bound = handler._decode_handle(result.prepared_statement_handle)
    assert (query, bound) == ("SELECT room, temp FROM home WHERE hum > $1", None)


@pytest.mark.parametrize(
    ("query", "names", "expected"),
    [
        ("SELECT $1, $2", ["0", "1"], ["0", "1"]),  # ADBC's raw tuple names: verbatim, as Core
        ("SELECT $room", ["room"], ["room"]),
        ("SELECT $room", ["$room"], ["room"]),
        ("SELECT $1", ["1"], ["1"]),
    ],
)
def test_bound_parameter_names(query: str, names: list[str], expected: list[str]) -> None:
    batch = pa.record_batch([pa.array([i]) for i in range(len(names))], names=names)
    bound = FlightSqlHandler._bind_params(query, batch)
    assert list(bound) == expected
    assert [v.as_py() for v in bound.values()] == list(range(len(names)))


def test_empty_parameter_batch_is_refused() -> None:
    batch = pa.record_batch({"room": pa.array([], pa.utf8())})
    with pytest.raises(InvalidRequest, match="no rows"):
        FlightSqlHandler._bind_params("SELECT $room", batch)


def test_like_patterns() -> None:
    assert _like_to_regex("io%").fullmatch("iox")
    assert _like_to_regex("i_x").fullmatch("iox")
    assert not _like_to_regex("i_x").fullmatch("ioox")
    assert not _like_to_regex("iox").fullmatch("ioxx")
    assert _like_to_regex(r"a\_b").fullmatch("a_b")
    assert not _like_to_regex(r"a\_b").fullmatch("axb")
    assert _like_to_regex("a.b").match("a.b") and not _like_to_regex("a.b").match("axb")


def test_database_headers() -> None:
    assert database_from_headers({"bucket-name": ["db"]}) == "db"
    assert database_from_headers({"database": ["db"], "bucket": ["db"]}) == "db"
    with pytest.raises(InvalidRequest, match="no 'database' header in request"):
        database_from_headers({"authorization": ["Bearer x"]})
    with pytest.raises(InvalidRequest) as info:
        database_from_headers({"database": ["a"], "iox-namespace-name": ["b"]})
    assert str(info.value) == 'More than one headers are found in request: ["a", "b"]'


def test_base_table_type_header() -> None:
    assert base_table_type_from_headers({}) == "BASE TABLE"
    assert base_table_type_from_headers({"x-influxdata-base-table-type": ["TABLE"]}) == "TABLE"
    with pytest.raises(InvalidRequest, match="Invalid base table type"):
        base_table_type_from_headers({"x-influxdata-base-table-type": ["table"]})


def test_sql_info_union_layout() -> None:
    batch = sql_info_batch([0, 3, 8, 541])
    assert batch.column("info_name").to_pylist() == [0, 3, 8, 541]
    union = batch.column("value")
    assert union.type_codes.to_pylist() == [0, 1, 3, 2]  # string, bool, int32 bitmask, bigint
    assert union.to_pylist() == ["InfluxDB IOx", True, 0, 2**31 - 1]


def test_metadata_commands_refuse_unknown_database(handler: FlightSqlHandler) -> None:
    from influx_flight.server.errors import DatabaseNotFound

    with pytest.raises(DatabaseNotFound):
        handler._command_schema("nope", "CommandGetTables", protos.CommandGetTables())
