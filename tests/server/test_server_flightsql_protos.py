"""Wire format of the hand-built protobuf messages and of DoGet ticket decoding (§1.1, §1.3).

The expected bytes are written out by hand from the protobuf encoding rules (tag = field
number << 3 | wire type), so a wrong field number or type in ``protos.py`` fails here.
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from google.protobuf import any_pb2
from hypothesis import given
from hypothesis import strategies as st

from influx_flight.server import protos
from influx_flight.server.errors import InvalidTicket
from influx_flight.server.flightsql import decode_ticket, params_from_read_info


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _len_field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _varint_field(number: int, value: int) -> bytes:
    return _varint(number << 3 | 0) + _varint(value)


def test_command_statement_query_wire_bytes() -> None:
    msg = protos.CommandStatementQuery(query="SELECT 1")
    assert msg.SerializeToString() == _len_field(1, b"SELECT 1")
    msg.transaction_id = b"tx"
    assert msg.SerializeToString() == _len_field(1, b"SELECT 1") + _len_field(2, b"tx")


def test_proto3_optional_fields_track_presence() -> None:
    tables = protos.CommandGetTables()
    assert not tables.HasField("catalog")
    tables.catalog = ""  # explicitly empty is present, and goes on the wire
    assert tables.HasField("catalog")
    assert tables.SerializeToString() == _len_field(1, b"")
    tables = protos.CommandGetTables(
        db_schema_filter_pattern="io%",
        table_name_filter_pattern="h_me",
        table_types=["BASE TABLE", "VIEW"],
        include_schema=True,
    )
    assert tables.SerializeToString() == (
        _len_field(2, b"io%")
        + _len_field(3, b"h_me")
        + _len_field(4, b"BASE TABLE")
        + _len_field(4, b"VIEW")
        + _varint_field(5, 1)
    )
    result = protos.DoPutPreparedStatementResult()
    assert not result.HasField("prepared_statement_handle")
    assert result.SerializeToString() == b""


def test_action_and_result_messages_wire_bytes() -> None:
    created = protos.ActionCreatePreparedStatementResult(
        prepared_statement_handle=b"h", dataset_schema=b"d", parameter_schema=b"p"
    )
    assert created.SerializeToString() == (
        _len_field(1, b"h") + _len_field(2, b"d") + _len_field(3, b"p")
    )
    info = protos.CommandGetSqlInfo(info=[0, 504])
    # proto3 packs repeated scalars: one length-delimited field of varints
    assert info.SerializeToString() == _len_field(1, _varint(0) + _varint(504))
    xdbc = protos.CommandGetXdbcTypeInfo(data_type=-5)
    assert xdbc.SerializeToString() == _varint_field(1, (1 << 64) - 5)
    cross = protos.CommandGetCrossReference(pk_table="a", fk_table="b")
    assert cross.SerializeToString() == _len_field(3, b"a") + _len_field(6, b"b")


def test_any_type_urls_follow_the_packages() -> None:
    assert protos.type_url_of(protos.CommandStatementQuery) == (
        "type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    )
    assert protos.type_url_of(protos.ReadInfo()) == protos.READ_INFO_TYPE_URL
    assert protos.READ_INFO_TYPE_URL == "type.googleapis.com/influxdata.iox.querier.v1.ReadInfo"
    assert protos.type_url_of(protos.FlightSqlPreparedStatementHandle) == (
        protos.PREPARED_STATEMENT_HANDLE_TYPE_URL
    )
    packed = protos.pack_any(protos.CommandGetCatalogs())
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(packed)
    assert wrapper.type_url.endswith("arrow.flight.protocol.sql.CommandGetCatalogs")
    assert wrapper.value == b""


def test_read_info_wire_bytes_and_params() -> None:
    info = protos.ReadInfo(
        database="db",
        sql_query="SELECT $a",
        query_type=protos.QueryType.SQL,
        is_debug=True,
    )
    param = info.params.add(name="a")
    param.u_int64 = 7
    expected_param = _len_field(1, b"a") + _varint_field(4, 7)
    assert info.SerializeToString() == (
        _len_field(1, b"db")
        + _len_field(2, b"SELECT $a")
        + _varint_field(3, 1)
        + _varint_field(5, 1)
        + _len_field(6, expected_param)
    )
    handle = protos.FlightSqlPreparedStatementHandle(query="q", params=b"")
    assert handle.SerializeToString() == _len_field(1, b"q") + _len_field(2, b"")


def test_query_param_oneof_typing() -> None:
    info = protos.ReadInfo(database="db", sql_query="x")
    info.params.add(name="n").null = 0
    info.params.add(name="b").boolean = False
    info.params.add(name="u").u_int64 = 2**64 - 1
    info.params.add(name="i").int64 = -5
    info.params.add(name="f").float64 = 1.5
    info.params.add(name="$s").string = "Kitchen"
    decoded = protos.ReadInfo()
    decoded.ParseFromString(info.SerializeToString())
    params = params_from_read_info(decoded)
    assert params["n"].type == pa.null() and params["n"].as_py() is None
    assert params["b"].type == pa.bool_() and params["b"].as_py() is False
    assert params["u"].type == pa.uint64() and params["u"].as_py() == 2**64 - 1
    assert params["i"].type == pa.int64() and params["i"].as_py() == -5
    assert params["f"].type == pa.float64() and params["f"].as_py() == 1.5
    assert params["s"].type == pa.utf8() and params["s"].as_py() == "Kitchen"


def _any(msg: object) -> bytes:
    return protos.pack_any(msg)  # type: ignore[arg-type]


def test_decode_ticket_accepts_any_wrapped_and_raw_read_info() -> None:
    info = protos.ReadInfo(database="db", sql_query="SELECT 1", query_type=protos.QueryType.SQL)
    for ticket in (_any(info), info.SerializeToString()):
        decoded = decode_ticket(ticket)
        assert decoded is not None
        assert (decoded.database, decoded.sql_query) == ("db", "SELECT 1")


def test_decode_ticket_leaves_json_to_the_json_decoder() -> None:
    assert decode_ticket(b'{"database": "db", "sql_query": "SELECT 1"}') is None
    assert decode_ticket(b'  {"database": "db"}') is None


def test_decode_ticket_read_info_any_with_bad_value_fails_at_once() -> None:
    wrapper = any_pb2.Any(type_url=protos.READ_INFO_TYPE_URL, value=b"\xff\xff\xff")
    with pytest.raises(InvalidTicket) as info:
        decode_ticket(wrapper.SerializeToString())
    assert str(info.value) == "Invalid ticket. Error: Invalid ticket"


@pytest.mark.parametrize(
    "info",
    [
        protos.ReadInfo(
            database="db", sql_query="SELECT 1", query_type=1, flightsql_command=b"\x0a\x00"
        ),
        protos.ReadInfo(
            database="db", sql_query="SHOW MEASUREMENTS", query_type=2, flightsql_command=b"x"
        ),
        protos.ReadInfo(database="db", sql_query="SELECT 1", query_type=3, flightsql_command=b"x"),
    ],
    ids=["sql-with-command", "influxql-with-command", "flightsql-with-query"],
)
def test_decode_ticket_too_many_fields_is_invalid(info: object) -> None:
    with pytest.raises(InvalidTicket):
        decode_ticket(_any(info))


def test_decode_ticket_unknown_query_type_is_kept_for_sql_fallback() -> None:
    raw = _len_field(1, b"db") + _len_field(2, b"SELECT 1") + _varint_field(3, 42)
    decoded = decode_ticket(raw)
    assert decoded is not None
    assert decoded.query_type == 42  # open enum: run_read_info treats it as SQL


@given(
    database=st.text(max_size=20),
    query=st.text(max_size=60),
    names=st.lists(st.text(min_size=1, max_size=8), max_size=4),
    ints=st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), min_size=4, max_size=4),
)
def test_read_info_round_trips(
    database: str, query: str, names: list[str], ints: list[int]
) -> None:
    info = protos.ReadInfo(database=database, sql_query=query, query_type=protos.QueryType.SQL)
    for name, value in zip(names, ints, strict=False):
        info.params.add(name=name, int64=value)
    again = protos.ReadInfo()
    again.ParseFromString(info.SerializeToString())
    assert again == info
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(protos.pack_any(info))
    assert wrapper.type_url == protos.READ_INFO_TYPE_URL
    unpacked = protos.ReadInfo()
    unpacked.ParseFromString(wrapper.value)
    assert unpacked == info


@given(st.binary(max_size=200))
def test_decode_ticket_never_fails_unexpectedly(data: bytes) -> None:
    """Any bytes are a ReadInfo, not protobuf (None: try JSON), or Invalid ticket."""
    try:
        decoded = decode_ticket(data)
    except InvalidTicket as exc:
        assert str(exc) == "Invalid ticket. Error: Invalid ticket"
        return
    assert decoded is None or isinstance(decoded, protos.ReadInfo)


@given(st.binary(max_size=200))
def test_command_decoding_refuses_garbage_clearly(data: bytes) -> None:
    from influx_flight.server.errors import InvalidRequest
    from influx_flight.server.flightsql import FlightSqlHandler

    try:
        name, _msg = FlightSqlHandler._decode_command(data, "GetFlightInfo")
    except InvalidRequest as exc:
        assert "FlightSQL message type" in str(exc) or "GetFlightInfo" in str(exc)
        return
    assert name.startswith(("Command", "Action"))
