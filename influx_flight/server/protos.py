"""Protobuf messages of Arrow Flight SQL and of InfluxDB's querier API, built without protoc.

There is no ``protoc`` on the machines this runs on and the generated ``*_pb2`` modules of
Flight SQL are not shipped by pyarrow, so the descriptors are written here by hand (field numbers
from the Flight SQL specification and from InfluxDB's ``influxdata/iox/querier/v1/*.proto``) and
turned into message classes with :mod:`google.protobuf.message_factory`. They live in a private
descriptor pool so they cannot clash with generated modules another library might register.

Only the messages the stand-in reads or writes are defined.
"""

from __future__ import annotations

from typing import Any as _AnyT

from google.protobuf import any_pb2, descriptor_pb2, descriptor_pool, message, message_factory

__all__ = [
    "FLIGHT_SQL_PACKAGE",
    "FLIGHT_SQL_TYPE_URL_PREFIX",
    "IOX_PACKAGE",
    "PREPARED_STATEMENT_HANDLE_TYPE_URL",
    "READ_INFO_TYPE_URL",
    "QueryType",
    "pack_any",
    "type_url_of",
]

FLIGHT_SQL_PACKAGE = "arrow.flight.protocol.sql"
IOX_PACKAGE = "influxdata.iox.querier.v1"
TYPE_URL_PREFIX = "type.googleapis.com/"
FLIGHT_SQL_TYPE_URL_PREFIX = f"{TYPE_URL_PREFIX}{FLIGHT_SQL_PACKAGE}."
READ_INFO_TYPE_URL = f"{TYPE_URL_PREFIX}{IOX_PACKAGE}.ReadInfo"
PREPARED_STATEMENT_HANDLE_TYPE_URL = (
    f"{TYPE_URL_PREFIX}{IOX_PACKAGE}.FlightSqlPreparedStatementHandle"
)

_F = descriptor_pb2.FieldDescriptorProto
_TYPES = {
    "string": _F.TYPE_STRING,
    "bytes": _F.TYPE_BYTES,
    "bool": _F.TYPE_BOOL,
    "int32": _F.TYPE_INT32,
    "int64": _F.TYPE_INT64,
    "uint32": _F.TYPE_UINT32,
    "uint64": _F.TYPE_UINT64,
    "double": _F.TYPE_DOUBLE,
}

# A field spec: (name, number, type, label) where type is a scalar name above, or
# ".full.name.of.Message" / "enum:.full.name.of.Enum"; label is "", "optional" (proto3 optional,
# i.e. with presence), "repeated" or "oneof:<name>".
_FieldSpec = tuple[str, int, str, str]

_FLIGHT_SQL_MESSAGES: dict[str, list[_FieldSpec]] = {
    "CommandGetSqlInfo": [("info", 1, "uint32", "repeated")],
    "CommandGetXdbcTypeInfo": [("data_type", 1, "int32", "optional")],
    "CommandGetCatalogs": [],
    "CommandGetDbSchemas": [
        ("catalog", 1, "string", "optional"),
        ("db_schema_filter_pattern", 2, "string", "optional"),
    ],
    "CommandGetTables": [
        ("catalog", 1, "string", "optional"),
        ("db_schema_filter_pattern", 2, "string", "optional"),
        ("table_name_filter_pattern", 3, "string", "optional"),
        ("table_types", 4, "string", "repeated"),
        ("include_schema", 5, "bool", ""),
    ],
    "CommandGetTableTypes": [],
    "CommandGetPrimaryKeys": [
        ("catalog", 1, "string", "optional"),
        ("db_schema", 2, "string", "optional"),
        ("table", 3, "string", ""),
    ],
    "CommandGetExportedKeys": [
        ("catalog", 1, "string", "optional"),
        ("db_schema", 2, "string", "optional"),
        ("table", 3, "string", ""),
    ],
    "CommandGetImportedKeys": [
        ("catalog", 1, "string", "optional"),
        ("db_schema", 2, "string", "optional"),
        ("table", 3, "string", ""),
    ],
    "CommandGetCrossReference": [
        ("pk_catalog", 1, "string", "optional"),
        ("pk_db_schema", 2, "string", "optional"),
        ("pk_table", 3, "string", ""),
        ("fk_catalog", 4, "string", "optional"),
        ("fk_db_schema", 5, "string", "optional"),
        ("fk_table", 6, "string", ""),
    ],
    "ActionCreatePreparedStatementRequest": [
        ("query", 1, "string", ""),
        ("transaction_id", 2, "bytes", "optional"),
    ],
    "ActionCreatePreparedStatementResult": [
        ("prepared_statement_handle", 1, "bytes", ""),
        ("dataset_schema", 2, "bytes", ""),
        ("parameter_schema", 3, "bytes", ""),
        ("is_update", 4, "bool", "optional"),
    ],
    "ActionClosePreparedStatementRequest": [("prepared_statement_handle", 1, "bytes", "")],
    "CommandStatementQuery": [
        ("query", 1, "string", ""),
        ("transaction_id", 2, "bytes", "optional"),
    ],
    "TicketStatementQuery": [("statement_handle", 1, "bytes", "")],
    "CommandPreparedStatementQuery": [("prepared_statement_handle", 1, "bytes", "")],
    "CommandStatementUpdate": [
        ("query", 1, "string", ""),
        ("transaction_id", 2, "bytes", "optional"),
    ],
    "CommandPreparedStatementUpdate": [("prepared_statement_handle", 1, "bytes", "")],
    "DoPutUpdateResult": [("record_count", 1, "int64", "")],
    "DoPutPreparedStatementResult": [("prepared_statement_handle", 1, "bytes", "optional")],
}

_QUERY_TYPE_VALUES = [
    ("QUERY_TYPE_UNSPECIFIED", 0),
    ("QUERY_TYPE_SQL", 1),
    ("QUERY_TYPE_INFLUX_QL", 2),
    ("QUERY_TYPE_FLIGHT_SQL_MESSAGE", 3),
]

_IOX_MESSAGES: dict[str, list[_FieldSpec]] = {
    "QueryParam": [
        ("name", 1, "string", ""),
        ("null", 2, f"enum:.{IOX_PACKAGE}.QueryParam.NullValue", "oneof:value"),
        ("boolean", 3, "bool", "oneof:value"),
        ("u_int64", 4, "uint64", "oneof:value"),
        ("int64", 5, "int64", "oneof:value"),
        ("float64", 6, "double", "oneof:value"),
        ("string", 7, "string", "oneof:value"),
    ],
    "ReadInfo": [
        ("database", 1, "string", ""),
        ("sql_query", 2, "string", ""),
        ("query_type", 3, f"enum:.{IOX_PACKAGE}.ReadInfo.QueryType", ""),
        ("flightsql_command", 4, "bytes", ""),
        ("is_debug", 5, "bool", ""),
        ("params", 6, f".{IOX_PACKAGE}.QueryParam", "repeated"),
    ],
    "FlightSqlPreparedStatementHandle": [
        ("query", 1, "string", ""),
        ("params", 2, "bytes", "optional"),
    ],
    "AppMetadata": [],
}


def _message_proto(name: str, fields: list[_FieldSpec]) -> descriptor_pb2.DescriptorProto:
    """Build one DescriptorProto, adding the synthetic oneofs proto3 ``optional`` needs."""
    msg = descriptor_pb2.DescriptorProto(name=name)
    oneofs: dict[str, int] = {}
    for field_name, number, type_name, label in fields:
        field = msg.field.add(name=field_name, number=number, json_name=_json_name(field_name))
        if type_name in _TYPES:
            field.type = _TYPES[type_name]
        elif type_name.startswith("enum:"):
            field.type = _F.TYPE_ENUM
            field.type_name = type_name[len("enum:") :]
        else:
            field.type = _F.TYPE_MESSAGE
            field.type_name = type_name
        field.label = _F.LABEL_REPEATED if label == "repeated" else _F.LABEL_OPTIONAL
        if label == "optional":
            field.proto3_optional = True
            field.oneof_index = _oneof_index(msg, oneofs, f"_{field_name}")
        elif label.startswith("oneof:"):
            field.oneof_index = _oneof_index(msg, oneofs, label[len("oneof:") :])
    # Synthetic oneofs must come after the real ones; ours are only ever of one kind per message.
    return msg


def _oneof_index(msg: descriptor_pb2.DescriptorProto, oneofs: dict[str, int], name: str) -> int:
    if name not in oneofs:
        oneofs[name] = len(msg.oneof_decl)
        msg.oneof_decl.add(name=name)
    return oneofs[name]


def _json_name(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _build_pool() -> descriptor_pool.DescriptorPool:
    pool = descriptor_pool.DescriptorPool()

    flight_sql = descriptor_pb2.FileDescriptorProto(
        name="influx_flight/standin/flight_sql.proto", package=FLIGHT_SQL_PACKAGE, syntax="proto3"
    )
    for name, fields in _FLIGHT_SQL_MESSAGES.items():
        flight_sql.message_type.append(_message_proto(name, fields))
    pool.Add(flight_sql)

    iox = descriptor_pb2.FileDescriptorProto(
        name="influx_flight/standin/iox_querier.proto", package=IOX_PACKAGE, syntax="proto3"
    )
    for name, fields in _IOX_MESSAGES.items():
        msg = _message_proto(name, fields)
        if name == "QueryParam":
            enum = msg.enum_type.add(name="NullValue")
            enum.value.add(name="NULL_VALUE_UNSPECIFIED", number=0)
        if name == "ReadInfo":
            enum = msg.enum_type.add(name="QueryType")
            for value_name, number in _QUERY_TYPE_VALUES:
                enum.value.add(name=value_name, number=number)
        iox.message_type.append(msg)
    pool.Add(iox)
    return pool


_POOL = _build_pool()


def _cls(full_name: str) -> type[message.Message]:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(full_name))


CommandGetSqlInfo = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetSqlInfo")
CommandGetXdbcTypeInfo = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetXdbcTypeInfo")
CommandGetCatalogs = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetCatalogs")
CommandGetDbSchemas = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetDbSchemas")
CommandGetTables = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetTables")
CommandGetTableTypes = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetTableTypes")
CommandGetPrimaryKeys = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetPrimaryKeys")
CommandGetExportedKeys = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetExportedKeys")
CommandGetImportedKeys = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetImportedKeys")
CommandGetCrossReference = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandGetCrossReference")
ActionCreatePreparedStatementRequest = _cls(
    f"{FLIGHT_SQL_PACKAGE}.ActionCreatePreparedStatementRequest"
)
ActionCreatePreparedStatementResult = _cls(
    f"{FLIGHT_SQL_PACKAGE}.ActionCreatePreparedStatementResult"
)
ActionClosePreparedStatementRequest = _cls(
    f"{FLIGHT_SQL_PACKAGE}.ActionClosePreparedStatementRequest"
)
CommandStatementQuery = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandStatementQuery")
TicketStatementQuery = _cls(f"{FLIGHT_SQL_PACKAGE}.TicketStatementQuery")
CommandPreparedStatementQuery = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandPreparedStatementQuery")
CommandStatementUpdate = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandStatementUpdate")
CommandPreparedStatementUpdate = _cls(f"{FLIGHT_SQL_PACKAGE}.CommandPreparedStatementUpdate")
DoPutUpdateResult = _cls(f"{FLIGHT_SQL_PACKAGE}.DoPutUpdateResult")
DoPutPreparedStatementResult = _cls(f"{FLIGHT_SQL_PACKAGE}.DoPutPreparedStatementResult")

QueryParam = _cls(f"{IOX_PACKAGE}.QueryParam")
ReadInfo = _cls(f"{IOX_PACKAGE}.ReadInfo")
FlightSqlPreparedStatementHandle = _cls(f"{IOX_PACKAGE}.FlightSqlPreparedStatementHandle")
AppMetadata = _cls(f"{IOX_PACKAGE}.AppMetadata")


class QueryType:
    """Values of ``ReadInfo.QueryType`` (plain ints, as the wire carries them)."""

    UNSPECIFIED = 0
    SQL = 1
    INFLUX_QL = 2
    FLIGHT_SQL_MESSAGE = 3


def type_url_of(msg_or_cls: _AnyT) -> str:
    """The ``google.protobuf.Any`` type URL of a message (class or instance)."""
    return TYPE_URL_PREFIX + msg_or_cls.DESCRIPTOR.full_name


def pack_any(msg: message.Message) -> bytes:
    """Serialize ``msg`` wrapped in ``google.protobuf.Any``, as Flight SQL puts commands on the wire."""
    wrapper = any_pb2.Any(type_url=type_url_of(msg), value=msg.SerializeToString())
    return wrapper.SerializeToString()


def unpack_any(data: bytes) -> any_pb2.Any:
    """Parse bytes as ``google.protobuf.Any`` (raises ``google.protobuf.message.DecodeError``)."""
    wrapper = any_pb2.Any()
    wrapper.ParseFromString(data)
    return wrapper
