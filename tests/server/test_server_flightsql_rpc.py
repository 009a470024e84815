"""Flight SQL at the RPC level with ``pyarrow.flight`` against the stand-in (§1.3, §2, §3.3).

Commands are built with the stand-in's protobuf classes and sent over real gRPC; the answers
are checked byte for byte where the reference fixes them (tickets, handles, error messages).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest
from google.protobuf import any_pb2

from influx_flight.server import protos

DB = "flightsql_rpc"
SQL_URL = "type.googleapis.com/arrow.flight.protocol.sql."


@pytest.fixture(scope="module")
def server(standin: Any) -> Any:
    if not standin.engine.has_database(DB):
        table = pa.table(
            {
                "time": pa.array([1, 2, 3], pa.timestamp("ns")),
                "room": pa.array(["Kitchen", "Living", "Kitchen"]).dictionary_encode(),
                "temp": [21.0, 22.5, 23.0],
            }
        )
        standin.engine.append(DB, "home", table, tags=["room"])
        standin.engine.append(
            DB, "cpu", pa.table({"time": pa.array([5], pa.timestamp("ns")), "usage": [0.5]})
        )
    return standin


@pytest.fixture
def client(server: Any) -> Iterator[flight.FlightClient]:
    c = flight.FlightClient(server.flight_uri)
    try:
        yield c
    finally:
        c.close()


def _options(server: Any, *headers: tuple[str, str], database: str | None = DB) -> Any:
    pairs = [(b"authorization", f"Bearer {server.token}".encode())]
    if database is not None:
        pairs.append((b"database", database.encode()))
    pairs.extend((k.encode(), v.encode()) for k, v in headers)
    return flight.FlightCallOptions(headers=pairs)


def _cmd(msg: Any) -> flight.FlightDescriptor:
    return flight.FlightDescriptor.for_command(protos.pack_any(msg))


def _fetch(
    client: flight.FlightClient, server: Any, msg: Any, *headers: tuple[str, str]
) -> pa.Table:
    info = client.get_flight_info(_cmd(msg), _options(server, *headers))
    assert len(info.endpoints) == 1
    return client.do_get(info.endpoints[0].ticket, _options(server, *headers)).read_all()


# -- statement queries -------------------------------------------------------------------------


def test_get_flight_info_mints_an_any_wrapped_read_info_ticket(client: Any, server: Any) -> None:
    cmd = protos.CommandStatementQuery(query="SELECT * FROM home ORDER BY time")
    descriptor = _cmd(cmd)
    info = client.get_flight_info(descriptor, _options(server))
    assert info.schema == pa.schema(
        [("room", pa.utf8()), ("temp", pa.float64()), ("time", pa.timestamp("ns"), False)]
    ).with_metadata(info.schema.metadata)
    assert info.descriptor.command == descriptor.command
    (endpoint,) = info.endpoints
    assert list(endpoint.locations) == []  # the client reuses its channel
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(endpoint.ticket.ticket)
    assert wrapper.type_url == "type.googleapis.com/influxdata.iox.querier.v1.ReadInfo"
    read_info = protos.ReadInfo()
    read_info.ParseFromString(wrapper.value)
    assert read_info.database == DB
    assert read_info.query_type == protos.QueryType.FLIGHT_SQL_MESSAGE
    assert read_info.sql_query == ""
    assert read_info.flightsql_command == descriptor.command

    # DoGet takes the database from the ticket only: no database header needed
    table = client.do_get(endpoint.ticket, _options(server, database=None)).read_all()
    assert table.column("room").to_pylist() == ["Kitchen", "Living", "Kitchen"]
    assert table.schema.field("room").type == pa.utf8()


def test_empty_result_still_has_the_schema(client: Any, server: Any) -> None:
    table = _fetch(
        client, server, protos.CommandStatementQuery(query="SELECT * FROM home WHERE temp > 100")
    )
    assert table.num_rows == 0
    assert table.schema.names == ["room", "temp", "time"]


def test_plan_errors_are_invalid_argument(client: Any, server: Any) -> None:
    with pytest.raises(pa.ArrowInvalid, match=r"table 'public\.iox\.nope' not found"):
        client.get_flight_info(
            _cmd(protos.CommandStatementQuery(query="SELECT * FROM nope")), _options(server)
        )


# -- database headers (§2.3) ---------------------------------------------------------------------


@pytest.mark.parametrize("header", ["database", "bucket", "bucket-name", "iox-namespace-name"])
def test_every_database_header_spelling(client: Any, server: Any, header: str) -> None:
    opts = _options(server, (header, DB), database=None)
    info = client.get_flight_info(_cmd(protos.CommandStatementQuery(query="SELECT 1 AS x")), opts)
    read_info = protos.ReadInfo()
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(info.endpoints[0].ticket.ticket)
    read_info.ParseFromString(wrapper.value)
    assert read_info.database == DB


def test_no_database_header(client: Any, server: Any) -> None:
    with pytest.raises(pa.ArrowInvalid, match="no 'database' header in request"):
        client.get_flight_info(
            _cmd(protos.CommandStatementQuery(query="SELECT 1")), _options(server, database=None)
        )


def test_conflicting_database_headers(client: Any, server: Any) -> None:
    opts = _options(server, ("bucket", "other"))
    with pytest.raises(pa.ArrowInvalid, match=r"More than one headers are found in request: \["):
        client.get_flight_info(_cmd(protos.CommandStatementQuery(query="SELECT 1")), opts)
    same = _options(server, ("bucket", DB), ("iox-namespace-name", DB))
    info = client.get_flight_info(_cmd(protos.CommandStatementQuery(query="SELECT 1 AS x")), same)
    assert info.schema.names == ["x"]


def test_headers_also_apply_to_metadata_commands(client: Any, server: Any) -> None:
    with pytest.raises(pa.ArrowInvalid, match="no 'database' header in request"):
        client.get_flight_info(_cmd(protos.CommandGetCatalogs()), _options(server, database=None))


def test_unknown_database_is_internal_like_core(client: Any, server: Any) -> None:
    opts = _options(server, database="flightsql_missing")
    with pytest.raises(flight.FlightInternalError, match="database not found: flightsql_missing"):
        client.get_flight_info(_cmd(protos.CommandGetTables()), opts)


def test_missing_token_is_unauthenticated(client: Any, server: Any) -> None:
    opts = flight.FlightCallOptions(headers=[(b"database", DB.encode())])
    with pytest.raises(flight.FlightUnauthenticatedError):
        client.get_flight_info(_cmd(protos.CommandStatementQuery(query="SELECT 1")), opts)


# -- unsupported and misdirected messages ----------------------------------------------------


@pytest.mark.parametrize(
    "msg",
    [
        protos.CommandStatementUpdate(query="INSERT INTO home VALUES (1)"),
        protos.CommandPreparedStatementUpdate(prepared_statement_handle=b"x"),
        protos.TicketStatementQuery(statement_handle=b"x"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_unsupported_messages(client: Any, server: Any, msg: Any) -> None:
    expected = f"Unsupported FlightSQL message type: {SQL_URL}{type(msg).DESCRIPTOR.name}"
    with pytest.raises(pa.ArrowInvalid, match=re.escape(expected)):
        client.get_flight_info(_cmd(msg), _options(server))


def test_unsupported_message_on_do_put(client: Any, server: Any) -> None:
    descriptor = _cmd(protos.CommandStatementUpdate(query="INSERT INTO home VALUES (1)"))
    schema = pa.schema([("a", pa.int64())])
    with pytest.raises(pa.ArrowInvalid, match="Unsupported FlightSQL message type"):
        writer, reader = client.do_put(descriptor, schema, _options(server))
        writer.write_batch(pa.record_batch({"a": [1]}))
        writer.done_writing()
        reader.read()
        writer.close()


def test_foreign_any_and_garbage_commands(client: Any, server: Any) -> None:
    foreign = any_pb2.Any(type_url="type.googleapis.com/acme.Query", value=b"")
    with pytest.raises(
        pa.ArrowInvalid,
        match=re.escape("Unsupported FlightSQL message type: type.googleapis.com/acme.Query"),
    ):
        client.get_flight_info(
            flight.FlightDescriptor.for_command(foreign.SerializeToString()), _options(server)
        )
    with pytest.raises(pa.ArrowInvalid, match=r"google\.protobuf\.Any"):
        client.get_flight_info(flight.FlightDescriptor.for_command(b"\xff\xff"), _options(server))


def test_path_descriptor_is_unimplemented(client: Any, server: Any) -> None:
    with pytest.raises(pa.ArrowNotImplementedError, match="FlightInfo with Path"):
        client.get_flight_info(flight.FlightDescriptor.for_path("home"), _options(server))


def test_action_sent_to_get_flight_info_is_a_protocol_error(client: Any, server: Any) -> None:
    msg = protos.ActionCreatePreparedStatementRequest(query="SELECT 1")
    with pytest.raises(pa.ArrowInvalid, match="GetFlightInfo does not expect"):
        client.get_flight_info(_cmd(msg), _options(server))


# -- protobuf tickets sent directly ------------------------------------------------------------


def test_raw_and_wrapped_read_info_sql_tickets_with_params(client: Any, server: Any) -> None:
    info = protos.ReadInfo(
        database=DB,
        sql_query="SELECT temp, arrow_typeof($t) AS ty FROM home WHERE room = $room AND temp > $t",
        query_type=protos.QueryType.SQL,
    )
    info.params.add(name="room", string="Kitchen")
    info.params.add(name="t", u_int64=22)
    for raw in (info.SerializeToString(), protos.pack_any(info)):
        table = client.do_get(flight.Ticket(raw), _options(server, database=None)).read_all()
        assert table.to_pylist() == [{"temp": 23.0, "ty": "UInt64"}]


def test_too_many_fields_ticket_is_invalid(client: Any, server: Any) -> None:
    info = protos.ReadInfo(
        database=DB, sql_query="SELECT 1", query_type=protos.QueryType.FLIGHT_SQL_MESSAGE
    )
    info.flightsql_command = protos.pack_any(protos.CommandStatementQuery(query="SELECT 1"))
    with pytest.raises(pa.ArrowInvalid, match=r"Invalid ticket\. Error: Invalid ticket"):
        client.do_get(flight.Ticket(protos.pack_any(info)), _options(server)).read_all()


def test_unknown_query_type_falls_back_to_sql(client: Any, server: Any) -> None:
    info = protos.ReadInfo(database=DB, sql_query="SELECT count(*) AS n FROM home", query_type=42)
    table = client.do_get(flight.Ticket(protos.pack_any(info)), _options(server)).read_all()
    assert table.to_pylist() == [{"n": 3}]


def test_influxql_header_on_get_flight_info(client: Any, server: Any) -> None:
    descriptor = _cmd(protos.CommandStatementQuery(query="SELECT temp FROM home"))
    opts = _options(server, ("x-influxdata-query-language", "InfluxQL"))
    info = client.get_flight_info(descriptor, opts)
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(info.endpoints[0].ticket.ticket)
    read_info = protos.ReadInfo()
    read_info.ParseFromString(wrapper.value)
    assert read_info.query_type == protos.QueryType.INFLUX_QL
    assert read_info.sql_query == "SELECT temp FROM home"
    assert read_info.flightsql_command == b""
    table = client.do_get(info.endpoints[0].ticket, opts).read_all()
    assert table.column("iox::measurement").to_pylist() == ["home"] * 3
    assert table.column("temp").to_pylist() == [21.0, 22.5, 23.0]


# -- metadata commands ---------------------------------------------------------------------


def test_get_catalogs(client: Any, server: Any) -> None:
    table = _fetch(client, server, protos.CommandGetCatalogs())
    assert table.to_pylist() == [{"catalog_name": "public"}]


def test_get_db_schemas_and_filter(client: Any, server: Any) -> None:
    table = _fetch(client, server, protos.CommandGetDbSchemas())
    assert table.column("db_schema_name").to_pylist() == ["information_schema", "iox", "system"]
    assert set(table.column("catalog_name").to_pylist()) == {"public"}
    filtered = _fetch(client, server, protos.CommandGetDbSchemas(db_schema_filter_pattern="i_x"))
    assert filtered.column("db_schema_name").to_pylist() == ["iox"]
    other = _fetch(client, server, protos.CommandGetDbSchemas(catalog="elsewhere"))
    assert other.num_rows == 0


def test_get_tables_lists_views_user_and_system_tables(client: Any, server: Any) -> None:
    table = _fetch(client, server, protos.CommandGetTables())
    rows = {(r["db_schema_name"], r["table_name"]): r["table_type"] for r in table.to_pylist()}
    assert rows[("iox", "home")] == "BASE TABLE"
    assert rows[("iox", "cpu")] == "BASE TABLE"
    assert rows[("system", "queries")] == "BASE TABLE"
    assert sum(1 for (schema, _), kind in rows.items() if schema == "information_schema") == 7
    assert {kind for (schema, _), kind in rows.items() if schema == "information_schema"} == {
        "VIEW"
    }
    assert table.schema.names == ["catalog_name", "db_schema_name", "table_name", "table_type"]


def test_get_tables_filters_and_include_schema(client: Any, server: Any) -> None:
    cmd = protos.CommandGetTables(
        db_schema_filter_pattern="iox", table_name_filter_pattern="h%", include_schema=True
    )
    table = _fetch(client, server, cmd)
    assert table.column("table_name").to_pylist() == ["home"]
    schema = pa.ipc.read_schema(pa.py_buffer(table.column("table_schema")[0].as_py()))
    assert schema.names == ["room", "temp", "time"]
    assert schema.field("temp").type == pa.float64()
    by_type = _fetch(client, server, protos.CommandGetTables(table_types=["VIEW"]))
    assert set(by_type.column("db_schema_name").to_pylist()) == {"information_schema"}


def test_base_table_type_header_is_read_on_do_get(client: Any, server: Any) -> None:
    header = ("x-influxdata-base-table-type", "TABLE")
    tables = _fetch(client, server, protos.CommandGetTables(db_schema_filter_pattern="iox"), header)
    assert set(tables.column("table_type").to_pylist()) == {"TABLE"}
    types = _fetch(client, server, protos.CommandGetTableTypes(), header)
    assert types.column("table_type").to_pylist() == ["TABLE", "VIEW"]
    default = _fetch(client, server, protos.CommandGetTableTypes())
    assert default.column("table_type").to_pylist() == ["BASE TABLE", "VIEW"]
    info = client.get_flight_info(_cmd(protos.CommandGetTableTypes()), _options(server))
    with pytest.raises(pa.ArrowInvalid, match=r"[Ii]nvalid base table type"):
        client.do_get(
            info.endpoints[0].ticket, _options(server, ("x-influxdata-base-table-type", "VIEW"))
        ).read_all()


def test_get_sql_info_all_and_selected(client: Any, server: Any) -> None:
    everything = _fetch(client, server, protos.CommandGetSqlInfo())
    values = dict(
        zip(
            everything.column("info_name").to_pylist(),
            everything.column("value").to_pylist(),
            strict=True,
        )
    )
    assert values[0] == "InfluxDB IOx"
    assert values[3] is True  # read only
    assert values[8] == 0  # no transactions
    assert values[504] == '"'
    selected = _fetch(client, server, protos.CommandGetSqlInfo(info=[504, 0, 99999]))
    assert selected.column("info_name").to_pylist() == [0, 504]
    assert selected.column("value").to_pylist() == ["InfluxDB IOx", '"']
    assert selected.schema.field("value").type.type_codes == [0, 1, 2, 3, 4, 5]


@pytest.mark.parametrize(
    "msg",
    [
        protos.CommandGetPrimaryKeys(table="home"),
        protos.CommandGetExportedKeys(table="home"),
        protos.CommandGetImportedKeys(table="home"),
        protos.CommandGetCrossReference(pk_table="home", fk_table="cpu"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_key_commands_are_empty_with_standard_schema(client: Any, server: Any, msg: Any) -> None:
    table = _fetch(client, server, msg)
    assert table.num_rows == 0
    assert "key_sequence" in table.schema.names


def test_get_xdbc_type_info(client: Any, server: Any) -> None:
    everything = _fetch(client, server, protos.CommandGetXdbcTypeInfo())
    assert "VARCHAR" in everything.column("type_name").to_pylist()
    codes = everything.column("data_type").to_pylist()
    assert codes == sorted(codes)
    bigint = _fetch(client, server, protos.CommandGetXdbcTypeInfo(data_type=-5))
    assert set(bigint.column("data_type").to_pylist()) == {-5}


# -- prepared statements -----------------------------------------------------------------------


def _action(name: str, msg: Any) -> flight.Action:
    return flight.Action(name, protos.pack_any(msg))


def _create(client: Any, server: Any, query: str) -> Any:
    results = list(
        client.do_action(
            _action(
                "CreatePreparedStatement", protos.ActionCreatePreparedStatementRequest(query=query)
            ),
            _options(server),
        )
    )
    assert len(results) == 1
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(results[0].body.to_pybytes())
    assert wrapper.type_url == SQL_URL + "ActionCreatePreparedStatementResult"
    result = protos.ActionCreatePreparedStatementResult()
    result.ParseFromString(wrapper.value)
    return result


def _bind(client: Any, server: Any, handle: bytes, params: pa.RecordBatch) -> bytes:
    descriptor = _cmd(protos.CommandPreparedStatementQuery(prepared_statement_handle=handle))
    writer, reader = client.do_put(descriptor, params.schema, _options(server))
    writer.write_batch(params)
    writer.done_writing()
    metadata = reader.read()
    writer.close()
    assert metadata is not None
    result = protos.DoPutPreparedStatementResult()
    result.ParseFromString(metadata.to_pybytes())  # raw, as arrow-go decodes it
    assert result.HasField("prepared_statement_handle")
    return result.prepared_statement_handle


def test_prepared_statement_schemas_and_stateless_handle(client: Any, server: Any) -> None:
    query = "SELECT temp FROM home WHERE room = $room AND temp > $1"
    result = _create(client, server, query)
    assert pa.ipc.read_schema(pa.py_buffer(result.dataset_schema)) == pa.schema(
        [("temp", pa.float64())]
    ).with_metadata(None)
    parameter_schema = pa.ipc.read_schema(pa.py_buffer(result.parameter_schema))
    assert [(f.name, f.type) for f in parameter_schema] == [
        ("$room", pa.utf8()),
        ("$1", pa.float64()),
    ]
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(result.prepared_statement_handle)
    assert wrapper.type_url == protos.PREPARED_STATEMENT_HANDLE_TYPE_URL
    handle = protos.FlightSqlPreparedStatementHandle()
    handle.ParseFromString(wrapper.value)
    assert handle.query == query and not handle.HasField("params")

    updated = _bind(
        client,
        server,
        result.prepared_statement_handle,
        pa.record_batch({"room": ["Kitchen"], "1": [21.5]}),
    )
    wrapper.ParseFromString(updated)
    handle.ParseFromString(wrapper.value)
    params = pa.ipc.open_stream(handle.params).read_all()
    assert params.to_pylist() == [{"room": "Kitchen", "1": 21.5}]

    descriptor = _cmd(protos.CommandPreparedStatementQuery(prepared_statement_handle=updated))
    info = client.get_flight_info(descriptor, _options(server))
    assert info.schema.names == ["temp"]
    table = client.do_get(info.endpoints[0].ticket, _options(server)).read_all()
    assert table.to_pylist() == [{"temp": 23.0}]

    closed = list(
        client.do_action(
            _action(
                "ClosePreparedStatement",
                protos.ActionClosePreparedStatementRequest(prepared_statement_handle=updated),
            ),
            _options(server),
        )
    )
    assert [r.body.to_pybytes() for r in closed] == [b""]


def test_handle_works_on_another_server(server: Any, standin_factory: Any) -> None:
    """The server keeps no state: a bound handle runs on a fresh server with the same data."""
    first = flight.FlightClient(server.flight_uri)
    try:
        result = _create(first, server, "SELECT count(*) AS n FROM home WHERE room = $room")
        handle = _bind(
            first, server, result.prepared_statement_handle, pa.record_batch({"$room": ["Kitchen"]})
        )
    finally:
        first.close()
    other = standin_factory(tokens=[server.token])
    other.engine.append(
        DB,
        "home",
        pa.table(
            {
                "time": pa.array([1, 2], pa.timestamp("ns")),
                "room": pa.array(["Kitchen", "Kitchen"]).dictionary_encode(),
            }
        ),
        tags=["room"],
    )
    second = flight.FlightClient(other.flight_uri)
    try:
        descriptor = _cmd(protos.CommandPreparedStatementQuery(prepared_statement_handle=handle))
        info = second.get_flight_info(descriptor, _options(other))
        table = second.do_get(info.endpoints[0].ticket, _options(other)).read_all()
        assert table.to_pylist() == [{"n": 2}]
    finally:
        second.close()


def test_legacy_utf8_handle(client: Any, server: Any) -> None:
    descriptor = _cmd(
        protos.CommandPreparedStatementQuery(
            prepared_statement_handle=b"SELECT count(*) AS n FROM cpu"
        )
    )
    info = client.get_flight_info(descriptor, _options(server))
    assert client.do_get(info.endpoints[0].ticket, _options(server)).read_all().to_pylist() == [
        {"n": 1}
    ]


def test_foreign_handle_is_refused(client: Any, server: Any) -> None:
    foreign = any_pb2.Any(type_url="type.googleapis.com/acme.Handle", value=b"")
    descriptor = _cmd(
        protos.CommandPreparedStatementQuery(prepared_statement_handle=foreign.SerializeToString())
    )
    with pytest.raises(pa.ArrowInvalid, match="Invalid prepared statement handle"):
        client.get_flight_info(descriptor, _options(server))


def test_do_put_without_batches_is_refused(client: Any, server: Any) -> None:
    result = _create(client, server, "SELECT temp FROM home WHERE room = $room")
    descriptor = _cmd(
        protos.CommandPreparedStatementQuery(
            prepared_statement_handle=result.prepared_statement_handle
        )
    )
    schema = pa.schema([("room", pa.utf8())])
    with pytest.raises(pa.ArrowInvalid, match="No flight data"):
        writer, reader = client.do_put(descriptor, schema, _options(server))
        writer.done_writing()
        reader.read()
        writer.close()


def test_untypeable_placeholder_is_refused_at_prepare(client: Any, server: Any) -> None:
    with pytest.raises(pa.ArrowInvalid, match=r"Unable to infer the type of parameter: \$n"):
        _create(client, server, "SELECT * FROM home LIMIT $n")


def test_list_actions_is_unimplemented_like_core(client: Any, server: Any) -> None:
    with pytest.raises(pa.ArrowNotImplementedError, match="Not yet implemented: list_actions"):
        list(client.list_actions(_options(server)))


def test_do_put_uses_the_first_row_and_drains_the_rest(client: Any, server: Any) -> None:
    result = _create(client, server, "SELECT count(*) AS n FROM home WHERE room = $room")
    descriptor = _cmd(
        protos.CommandPreparedStatementQuery(
            prepared_statement_handle=result.prepared_statement_handle
        )
    )
    schema = pa.schema([("room", pa.utf8())])
    writer, reader = client.do_put(descriptor, schema, _options(server))
    writer.write_batch(pa.record_batch({"room": ["Living", "Kitchen"]}, schema=schema))
    writer.write_batch(pa.record_batch({"room": ["Kitchen"]}, schema=schema))
    writer.done_writing()
    metadata = reader.read()
    writer.close()
    answer = protos.DoPutPreparedStatementResult()
    answer.ParseFromString(metadata.to_pybytes())
    descriptor = _cmd(
        protos.CommandPreparedStatementQuery(
            prepared_statement_handle=answer.prepared_statement_handle
        )
    )
    info = client.get_flight_info(descriptor, _options(server))
    table = client.do_get(info.endpoints[0].ticket, _options(server)).read_all()
    assert table.to_pylist() == [{"n": 1}]  # "Living": first row of the first batch


def test_influxql_protobuf_ticket_with_params(client: Any, server: Any) -> None:
    info = protos.ReadInfo(
        database=DB,
        sql_query="SELECT temp FROM home WHERE room = $room",
        query_type=protos.QueryType.INFLUX_QL,
    )
    info.params.add(name="room", string="Kitchen")
    table = client.do_get(flight.Ticket(protos.pack_any(info)), _options(server)).read_all()
    assert table.column("temp").to_pylist() == [21.0, 23.0]
    info.database = "flightsql_missing"
    with pytest.raises(flight.FlightInternalError, match="database not found"):
        client.do_get(flight.Ticket(protos.pack_any(info)), _options(server)).read_all()
