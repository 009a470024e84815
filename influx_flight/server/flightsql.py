"""Arrow Flight SQL for the stand-in, as InfluxDB 3 Core answers it (protocol reference §2).

``flight.py`` (the pyarrow ``FlightServerBase``) calls :class:`FlightSqlHandler` for every
request that is not a JSON DoGet ticket:

* ``GetFlightInfo`` with an Any-wrapped command: the database comes from the ``database`` /
  ``bucket`` / ``bucket-name`` / ``iox-namespace-name`` headers; the answer has one endpoint
  without location whose ticket is an Any-wrapped ``ReadInfo`` (FLIGHT_SQL_MESSAGE carrying the
  command, or INFLUX_QL when ``x-influxdata-query-language: influxql`` asked for it).
* ``DoGet`` with a protobuf ``ReadInfo`` ticket (Any-wrapped or raw): SQL, InfluxQL or a Flight
  SQL command; the database comes only from the ticket.
* ``DoAction`` ``CreatePreparedStatement`` / ``ClosePreparedStatement`` and ``DoPut`` binding
  prepared-statement parameters. As in IOx the server keeps no state: the handle is an Any
  holding ``FlightSqlPreparedStatementHandle {query, params (Arrow IPC stream)}``.
* The metadata commands (GetSqlInfo, GetCatalogs, GetDbSchemas, GetTables, GetTableTypes,
  GetXdbcTypeInfo and the always-empty key commands).

Errors are raised as :mod:`influx_flight.server.errors` exceptions; ``flight.py`` maps them to
gRPC codes. Result schemas are hydrated (no dictionaries) like IOx's
``prepare_schema_for_flight``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
from google.protobuf.message import DecodeError

from influx_flight.server import protos
from influx_flight.server.engine import hydrate_reader, hydrate_schema, placeholders
from influx_flight.server.errors import (
    DatabaseNotFound,
    InvalidRequest,
    InvalidTicket,
    QueryPlanError,
    ServerError,
    Unimplemented,
)
from influx_flight.server.regex import Pattern, compile_regex

__all__ = [
    "DATABASE_HEADERS",
    "FlightSqlHandler",
    "Headers",
    "database_from_headers",
    "decode_ticket",
    "params_from_read_info",
]

#: gRPC metadata keys naming the database, in the order Core tries them (§2.3).
DATABASE_HEADERS = ("database", "bucket", "bucket-name", "iox-namespace-name")
QUERY_LANGUAGE_HEADER = "x-influxdata-query-language"
BASE_TABLE_TYPE_HEADER = "x-influxdata-base-table-type"
IOX_DEBUG_HEADER = "iox-debug"

CREATE_PREPARED_STATEMENT = "CreatePreparedStatement"
CLOSE_PREPARED_STATEMENT = "ClosePreparedStatement"

#: Lower-cased header name -> every value sent under it.
Headers = Mapping[str, Sequence[str]]
HeadersGetter = Callable[[Any], Headers]

CATALOG = "public"
#: The information_schema views Core lists in GetTables (``plan_get_tables``), all as VIEW.
INFORMATION_SCHEMA_VIEWS = (
    "columns",
    "df_settings",
    "parameters",
    "routines",
    "tables",
    "views",
    "schemata",
)


# ---------------------------------------------------------------------------------------------
# Metadata result schemas
# ---------------------------------------------------------------------------------------------

# Catalogs / DbSchemas / Tables / TableTypes: the nullability the Flight SQL spec and the
# arrow-rs builders (used by IOx) give; ADBC's Go driver compares these exactly.
CATALOGS_SCHEMA = pa.schema([pa.field("catalog_name", pa.utf8(), nullable=False)])
DB_SCHEMAS_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8(), nullable=True),
        pa.field("db_schema_name", pa.utf8(), nullable=False),
    ]
)
TABLES_SCHEMA = pa.schema(
    [
        pa.field("catalog_name", pa.utf8(), nullable=True),
        pa.field("db_schema_name", pa.utf8(), nullable=True),
        pa.field("table_name", pa.utf8(), nullable=False),
        pa.field("table_type", pa.utf8(), nullable=False),
    ]
)
TABLES_WITH_SCHEMA_SCHEMA = TABLES_SCHEMA.append(
    pa.field("table_schema", pa.binary(), nullable=False)
)
TABLE_TYPES_SCHEMA = pa.schema([pa.field("table_type", pa.utf8(), nullable=False)])

# The key commands: IOx's static schemas (every column non-null, ``planner.rs``).
PRIMARY_KEYS_SCHEMA = pa.schema(
    [
        pa.field(name, typ, nullable=False)
        for name, typ in [
            ("catalog_name", pa.utf8()),
            ("db_schema_name", pa.utf8()),
            ("table_name", pa.utf8()),
            ("column_name", pa.utf8()),
            ("key_name", pa.utf8()),
            ("key_sequence", pa.int32()),
        ]
    ]
)
FOREIGN_KEYS_SCHEMA = pa.schema(
    [
        pa.field(name, typ, nullable=False)
        for name, typ in [
            ("pk_catalog_name", pa.utf8()),
            ("pk_db_schema_name", pa.utf8()),
            ("pk_table_name", pa.utf8()),
            ("pk_column_name", pa.utf8()),
            ("fk_catalog_name", pa.utf8()),
            ("fk_db_schema_name", pa.utf8()),
            ("fk_table_name", pa.utf8()),
            ("fk_column_name", pa.utf8()),
            ("key_sequence", pa.int32()),
            ("fk_key_name", pa.utf8()),
            ("pk_key_name", pa.utf8()),
            ("update_rule", pa.uint8()),
            ("delete_rule", pa.uint8()),
        ]
    ]
)

# GetSqlInfo: info_name uint32 + dense union of the six value kinds (type codes 0..5).
_SQL_INFO_VALUE_FIELDS = [
    pa.field("string_value", pa.utf8()),
    pa.field("bool_value", pa.bool_()),
    pa.field("bigint_value", pa.int64()),
    pa.field("int32_bitmask", pa.int32()),
    pa.field("string_list", pa.list_(pa.utf8())),
    pa.field("int32_to_int32_list_map", pa.map_(pa.int32(), pa.list_(pa.int32()))),
]
SQL_INFO_SCHEMA = pa.schema(
    [
        pa.field("info_name", pa.uint32(), nullable=False),
        pa.field("value", pa.dense_union(_SQL_INFO_VALUE_FIELDS, type_codes=[0, 1, 2, 3, 4, 5])),
    ]
)

XDBC_TYPE_INFO_SCHEMA = pa.schema(
    [
        pa.field("type_name", pa.utf8(), nullable=False),
        pa.field("data_type", pa.int32(), nullable=False),
        pa.field("column_size", pa.int32()),
        pa.field("literal_prefix", pa.utf8()),
        pa.field("literal_suffix", pa.utf8()),
        pa.field("create_params", pa.list_(pa.field("item", pa.utf8(), nullable=False))),
        pa.field("nullable", pa.int32(), nullable=False),
        pa.field("case_sensitive", pa.bool_(), nullable=False),
        pa.field("searchable", pa.int32(), nullable=False),
        pa.field("unsigned_attribute", pa.bool_()),
        pa.field("fixed_prec_scale", pa.bool_(), nullable=False),
        pa.field("auto_increment", pa.bool_()),
        pa.field("local_type_name", pa.utf8()),
        pa.field("minimum_scale", pa.int32()),
        pa.field("maximum_scale", pa.int32()),
        pa.field("sql_data_type", pa.int32(), nullable=False),
        pa.field("datetime_subcode", pa.int32()),
        pa.field("num_prec_radix", pa.int32()),
        pa.field("interval_precision", pa.int32()),
    ]
)

# ---------------------------------------------------------------------------------------------
# GetSqlInfo data: the values IOx reports (``core/flightsql/src/sql_info/mod.rs``), minus the
# long keyword/function lists and the conversion map, which the stand-in leaves out.
# ---------------------------------------------------------------------------------------------

_STRING, _BOOL, _BIGINT, _INT32, _STRING_LIST = 0, 1, 2, 3, 4
_I32_MAX = 2**31 - 1

SQL_INFO: dict[int, tuple[int, Any]] = {
    0: (_STRING, "InfluxDB IOx"),  # FLIGHT_SQL_SERVER_NAME
    1: (_STRING, "2"),  # FLIGHT_SQL_SERVER_VERSION
    2: (_STRING, "1.3"),  # FLIGHT_SQL_SERVER_ARROW_VERSION
    3: (_BOOL, True),  # FLIGHT_SQL_SERVER_READ_ONLY
    4: (_BOOL, True),  # FLIGHT_SQL_SERVER_SQL
    5: (_BOOL, False),  # FLIGHT_SQL_SERVER_SUBSTRAIT
    8: (_INT32, 0),  # FLIGHT_SQL_SERVER_TRANSACTION: none
    9: (_BOOL, False),  # FLIGHT_SQL_SERVER_CANCEL
    100: (_INT32, 0),  # FLIGHT_SQL_SERVER_STATEMENT_TIMEOUT
    101: (_INT32, 0),  # FLIGHT_SQL_SERVER_TRANSACTION_TIMEOUT
    500: (_BOOL, False),  # SQL_DDL_CATALOG
    501: (_BOOL, False),  # SQL_DDL_SCHEMA
    502: (_BOOL, False),  # SQL_DDL_TABLE
    503: (_INT32, 3),  # SQL_IDENTIFIER_CASE: lowercase
    504: (_STRING, '"'),  # SQL_IDENTIFIER_QUOTE_CHAR
    505: (_INT32, 1),  # SQL_QUOTED_IDENTIFIER_CASE: case insensitive
    506: (_BOOL, True),  # SQL_ALL_TABLES_ARE_SELECTABLE
    507: (_INT32, 0),  # SQL_NULL_ORDERING: nulls sorted high
    513: (_STRING, "\\"),  # SQL_SEARCH_STRING_ESCAPE
    514: (_STRING, ""),  # SQL_EXTRA_NAME_CHARACTERS
    515: (_BOOL, True),  # SQL_SUPPORTS_COLUMN_ALIASING
    516: (_BOOL, True),  # SQL_NULL_PLUS_NULL_IS_NULL
    518: (_BOOL, False),  # SQL_SUPPORTS_TABLE_CORRELATION_NAMES
    519: (_BOOL, False),  # SQL_SUPPORTS_DIFFERENT_TABLE_CORRELATION_NAMES
    520: (_BOOL, True),  # SQL_SUPPORTS_EXPRESSIONS_IN_ORDER_BY
    521: (_BOOL, True),  # SQL_SUPPORTS_ORDER_BY_UNRELATED
    522: (_INT32, 3),  # SQL_SUPPORTED_GROUP_BY
    523: (_BOOL, True),  # SQL_SUPPORTS_LIKE_ESCAPE_CLAUSE
    524: (_BOOL, True),  # SQL_SUPPORTS_NON_NULLABLE_COLUMNS
    525: (_INT32, 1),  # SQL_SUPPORTED_GRAMMAR: core grammar
    526: (_INT32, 0b111),  # SQL_ANSI92_SUPPORTED_LEVEL
    527: (_BOOL, False),  # SQL_SUPPORTS_INTEGRITY_ENHANCEMENT_FACILITY
    528: (_INT32, 2),  # SQL_OUTER_JOINS_SUPPORT_LEVEL
    529: (_STRING, "schema"),  # SQL_SCHEMA_TERM
    530: (_STRING, "procedure"),  # SQL_PROCEDURE_TERM
    532: (_BOOL, False),  # SQL_CATALOG_AT_START
    533: (_INT32, 0),  # SQL_SCHEMAS_SUPPORTED_ACTIONS
    534: (_INT32, 0),  # SQL_CATALOGS_SUPPORTED_ACTIONS
    535: (_INT32, 0),  # SQL_SUPPORTED_POSITIONED_COMMANDS
    536: (_BOOL, False),  # SQL_SELECT_FOR_UPDATE_SUPPORTED
    537: (_BOOL, False),  # SQL_STORED_PROCEDURES_SUPPORTED
    538: (_INT32, 15),  # SQL_SUPPORTED_SUBQUERIES
    539: (_BOOL, True),  # SQL_CORRELATED_SUBQUERIES_SUPPORTED
    540: (_INT32, 3),  # SQL_SUPPORTED_UNIONS
    **{code: (_BIGINT, _I32_MAX) for code in range(541, 556)},  # SQL_MAX_* lengths and counts
    556: (_BOOL, True),  # SQL_MAX_ROW_SIZE_INCLUDES_BLOBS
    557: (_BIGINT, _I32_MAX),  # SQL_MAX_STATEMENT_LENGTH
    558: (_BIGINT, _I32_MAX),  # SQL_MAX_STATEMENTS
    559: (_BIGINT, _I32_MAX),  # SQL_MAX_TABLE_NAME_LENGTH
    560: (_BIGINT, _I32_MAX),  # SQL_MAX_TABLES_IN_SELECT
    561: (_BIGINT, _I32_MAX),  # SQL_MAX_USERNAME_LENGTH
    562: (_BIGINT, 0),  # SQL_DEFAULT_TRANSACTION_ISOLATION
    563: (_BOOL, False),  # SQL_TRANSACTIONS_SUPPORTED
    564: (_INT32, 0),  # SQL_SUPPORTED_TRANSACTIONS_ISOLATION_LEVELS
    565: (_BOOL, False),  # SQL_DATA_DEFINITION_CAUSES_TRANSACTION_COMMIT
    566: (_BOOL, True),  # SQL_DATA_DEFINITIONS_IN_TRANSACTIONS_IGNORED
    567: (_INT32, 0),  # SQL_SUPPORTED_RESULT_SET_TYPES
    568: (_INT32, 0),  # SQL_SUPPORTED_CONCURRENCIES_FOR_RESULT_SET_UNSPECIFIED
    569: (_INT32, 0),  # ..._FORWARD_ONLY
    570: (_INT32, 0),  # ..._SCROLL_SENSITIVE
    571: (_INT32, 0),  # ..._SCROLL_INSENSITIVE
    572: (_BOOL, False),  # SQL_BATCH_UPDATES_SUPPORTED
    573: (_BOOL, False),  # SQL_SAVEPOINTS_SUPPORTED
    574: (_BOOL, False),  # SQL_NAMED_PARAMETERS_SUPPORTED
    575: (_BOOL, False),  # SQL_LOCATORS_UPDATE_COPY
    576: (_BOOL, False),  # SQL_STORED_FUNCTIONS_USING_CALL_SYNTAX_SUPPORTED
}

# GetXdbcTypeInfo rows: (type_name, data_type, column_size, prefix, suffix, case_sensitive,
# searchable, unsigned, num_prec_radix). XDBC codes from the Flight SQL ``XdbcDataType`` enum.
_XDBC_TYPES: list[
    tuple[str, int, int | None, str | None, str | None, bool, int, bool | None, int | None]
] = [
    ("BIGINT", -5, 64, None, None, False, 3, False, 2),
    ("BIGINT UNSIGNED", -5, 64, None, None, False, 3, True, 2),
    ("BOOLEAN", -7, 1, None, None, False, 3, None, None),
    ("VARCHAR", 12, _I32_MAX, "'", "'", True, 3, None, None),
    ("DOUBLE", 8, 53, None, None, False, 3, False, 2),
    ("TIMESTAMP", 93, None, "'", "'", False, 3, None, None),
]


# ---------------------------------------------------------------------------------------------
# Helpers shared with flight.py
# ---------------------------------------------------------------------------------------------


def database_from_headers(headers: Headers) -> str:
    """The database named by the request headers (§2.3), or INVALID_ARGUMENT.

    All of ``database``, ``bucket``, ``bucket-name`` and ``iox-namespace-name`` are read;
    several with one value are fine, different values are refused like Core does.
    """
    found: list[tuple[str, str]] = []
    for name in DATABASE_HEADERS:
        for value in headers.get(name, ()):
            text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            found.append((name, text))
    if not found:
        raise InvalidRequest("no 'database' header in request")
    values = {value for _, value in found}
    if len(values) > 1:
        listed = ", ".join(f'"{value}"' for _, value in found)
        raise InvalidRequest(f"More than one headers are found in request: [{listed}]")
    return found[0][1]


def base_table_type_from_headers(headers: Headers) -> str:
    """``BASE TABLE`` (default) or ``TABLE``, from ``x-influxdata-base-table-type``."""
    values = list(headers.get(BASE_TABLE_TYPE_HEADER, ()))
    if not values:
        return "BASE TABLE"
    value = values[-1]
    value = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if value in ("BASE TABLE", "TABLE"):
        return value
    raise InvalidRequest(
        f"Invalid base table type {value!r}: use 'BASE TABLE' (the default) or 'TABLE' in the "
        f"{BASE_TABLE_TYPE_HEADER} header"
    )


def decode_ticket(ticket: bytes) -> Any | None:
    """Decode a protobuf DoGet ticket (§1.1 steps 1 and 2) into a ``ReadInfo``.

    Returns None when the bytes are neither an Any-wrapped nor a raw ``ReadInfo`` (the caller
    then tries JSON). An Any whose type URL names ReadInfo but whose value does not parse fails
    at once with Invalid ticket, as in Core. The §1.3 validation is applied.
    """
    read_info: Any | None = None
    try:
        wrapper = protos.unpack_any(ticket)
    except DecodeError:
        wrapper = None
    if wrapper is not None and wrapper.type_url == protos.READ_INFO_TYPE_URL:
        read_info = protos.ReadInfo()
        try:
            read_info.ParseFromString(wrapper.value)
        except DecodeError as exc:
            raise InvalidTicket(f"ReadInfo in Any does not parse: {exc}") from None
    else:
        if ticket[:1] in (b"{", b"["):
            return None  # JSON (0x7b/0x5b would be protobuf group tags, which ReadInfo never has)
        candidate = protos.ReadInfo()
        try:
            candidate.ParseFromString(ticket)
        except DecodeError:
            return None
        if not candidate.database and not candidate.sql_query and not candidate.flightsql_command:
            return None
        read_info = candidate
    _validate_read_info(read_info)
    return read_info


def _validate_read_info(read_info: Any) -> None:
    if read_info.query_type == protos.QueryType.FLIGHT_SQL_MESSAGE:
        if read_info.sql_query:
            raise InvalidTicket("FLIGHT_SQL_MESSAGE ticket with a non-empty sql_query")
    elif read_info.flightsql_command:
        raise InvalidTicket("SQL/InfluxQL ticket with a non-empty flightsql_command")


def params_from_read_info(read_info: Any) -> dict[str, pa.Scalar]:
    """``ReadInfo.params`` as typed Arrow scalars, keyed by name without ``$``."""
    params: dict[str, pa.Scalar] = {}
    for param in read_info.params:
        kind = param.WhichOneof("value")
        name = param.name[1:] if param.name.startswith("$") else param.name
        if kind is None or kind == "null":
            params[name] = pa.scalar(None, pa.null())
        elif kind == "boolean":
            params[name] = pa.scalar(param.boolean, pa.bool_())
        elif kind == "u_int64":
            params[name] = pa.scalar(param.u_int64, pa.uint64())
        elif kind == "int64":
            params[name] = pa.scalar(param.int64, pa.int64())
        elif kind == "float64":
            params[name] = pa.scalar(param.float64, pa.float64())
        else:
            params[name] = pa.scalar(param.string, pa.utf8())
    return params


def _header_values(headers: Headers, name: str) -> list[str]:
    return [
        v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
        for v in headers.get(name, ())
    ]


def default_headers_getter(context: Any) -> Headers:
    """Request headers of a pyarrow ``ServerCallContext`` (lower-cased names).

    Uses ``flight.call_headers`` (the header-capturing middleware of ``flight.py``, as the
    architecture contract says); a plain mapping passed instead of a context is used as is,
    which keeps the handler callable from unit tests and from other transports.
    """
    if context is None:
        return {}
    if isinstance(context, Mapping):
        return {str(k).lower(): _as_list(v) for k, v in context.items()}
    from influx_flight.server.flight import call_headers  # flight.py imports us lazily

    return call_headers(context)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str | bytes):
        return [value]
    return list(value)


def _like_to_regex(pattern: str) -> Pattern:
    """A SQL LIKE pattern (``%``, ``_``, ``\\`` escapes) as a regex to ``fullmatch`` (RE2:
    a client's ``%a%a%a...`` must not backtrack for seconds)."""
    out: list[str] = []
    escaped = False
    for ch in pattern:
        if escaped:
            out.append(re.escape(ch))
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return compile_regex("".join(out), dotall=True)


def _serialize_schema(schema: pa.Schema) -> bytes:
    """A schema as one encapsulated IPC message, the form Flight SQL uses for schemas."""
    return schema.serialize().to_pybytes()


def _reader_of(batch: pa.RecordBatch) -> pa.RecordBatchReader:
    return pa.RecordBatchReader.from_batches(batch.schema, [batch])


_SIMPLE_TYPES: dict[str, pa.DataType] = {
    "Null": pa.null(),
    "Boolean": pa.bool_(),
    "Int8": pa.int8(),
    "Int16": pa.int16(),
    "Int32": pa.int32(),
    "Int64": pa.int64(),
    "UInt8": pa.uint8(),
    "UInt16": pa.uint16(),
    "UInt32": pa.uint32(),
    "UInt64": pa.uint64(),
    "Float16": pa.float16(),
    "Float32": pa.float32(),
    "Float64": pa.float64(),
    "Utf8": pa.utf8(),
    "LargeUtf8": pa.utf8(),
    "Utf8View": pa.utf8(),
    "Binary": pa.binary(),
    "LargeBinary": pa.binary(),
    "Date32": pa.date32(),
    "Date64": pa.date64(),
}
_UNITS = {"Second": "s", "Millisecond": "ms", "Microsecond": "us", "Nanosecond": "ns"}
_PLACEHOLDER_REPR = re.compile(
    r'Placeholder\(Placeholder \{ id: "(?P<id>[^"]+)", (?:field|data_type): (?P<rest>None|Some\([^}]*)'
)
_DATA_TYPE_IN_FIELD = re.compile(r"data_type: (?P<type>[A-Za-z0-9]+(?:\([^()]*\))?)")


def _datafusion_type(text: str) -> pa.DataType | None:
    """An Arrow type from DataFusion's Debug text of a DataType (the common cases)."""
    text = text.strip()
    if text in _SIMPLE_TYPES:
        return _SIMPLE_TYPES[text]
    if text.startswith("Dictionary(") and text.endswith(")"):
        value = text[len("Dictionary(") : -1].split(",", 1)[-1]
        return _datafusion_type(value)
    match = re.fullmatch(r"Timestamp\((\w+), (?:None|Some\(\"([^\"]*)\"\))\)", text)
    if match and match.group(1) in _UNITS:
        return pa.timestamp(_UNITS[match.group(1)], tz=match.group(2))
    match = re.fullmatch(r"Timestamp\((\w+)(?:, \"?([^\"]*)\"?)?\)", text)
    if match and match.group(1) in ("s", "ms", "us", "ns"):
        return pa.timestamp(match.group(1), tz=match.group(2) or None)
    return None


def _plan_repr(plan: Any) -> str:
    """The Debug text of a DataFusion logical plan, which spells out placeholder types."""
    try:
        return str(plan.to_variant())
    except Exception:
        try:
            return " ".join(_plan_repr(child) for child in plan.inputs())
        except Exception:
            return ""


# ---------------------------------------------------------------------------------------------
# The handler
# ---------------------------------------------------------------------------------------------


class FlightSqlHandler:
    """Flight SQL on top of an :class:`~influx_flight.server.engine.Engine`.

    ``headers_getter`` turns the pyarrow call context into the request headers; ``flight.py``
    passes the one matching its middleware.
    """

    def __init__(self, engine: Any, headers_getter: HeadersGetter | None = None) -> None:
        self.engine = engine
        self._headers_of = headers_getter or default_headers_getter

    def __repr__(self) -> str:
        return f"FlightSqlHandler(engine={self.engine!r})"

    # -- command decoding ---------------------------------------------------------------------

    @staticmethod
    def _decode_command(data: bytes, method: str) -> tuple[str, Any]:
        """(type name, message) of an Any-wrapped Flight SQL command; refuses unknown types."""
        try:
            wrapper = protos.unpack_any(data)
        except DecodeError:
            raise InvalidRequest(
                f"{method}: the command is not a protobuf google.protobuf.Any holding a Flight "
                "SQL message (wrap commands such as CommandStatementQuery in Any)"
            ) from None
        url = wrapper.type_url
        if not url.startswith(protos.FLIGHT_SQL_TYPE_URL_PREFIX):
            raise InvalidRequest(f"Unsupported FlightSQL message type: {url}")
        name = url[len(protos.FLIGHT_SQL_TYPE_URL_PREFIX) :]
        cls = _SUPPORTED_COMMANDS.get(name)
        if cls is None:
            raise InvalidRequest(f"Unsupported FlightSQL message type: {url}")
        msg = cls()
        try:
            msg.ParseFromString(wrapper.value)
        except DecodeError:
            raise InvalidRequest(f"{method}: {name} does not parse as protobuf") from None
        return name, msg

    def _database(self, context: Any) -> str:
        return database_from_headers(self._headers_of(context))

    def _require_database(self, database: str) -> None:
        if not self.engine.has_database(database):
            raise DatabaseNotFound(database)

    # -- GetFlightInfo ------------------------------------------------------------------------

    def get_flight_info(
        self, context: Any, descriptor: flight.FlightDescriptor
    ) -> flight.FlightInfo:
        """Schema and ticket for a Flight SQL command (§2.3)."""
        if descriptor.descriptor_type != flight.DescriptorType.CMD:
            raise Unimplemented("Unsupported message type: FlightInfo with Path")
        name, cmd = self._decode_command(descriptor.command, "GetFlightInfo")
        headers = self._headers_of(context)
        database = database_from_headers(headers)
        read_info = protos.ReadInfo(database=database)

        language = (_header_values(headers, QUERY_LANGUAGE_HEADER) or ["sql"])[-1]
        if name == "CommandStatementQuery" and language.strip().lower() == "influxql":
            self._require_database(database)
            schema = self._influxql_schema(database, cmd.query)
            read_info.sql_query = cmd.query
            read_info.query_type = protos.QueryType.INFLUX_QL
        else:
            schema = self._command_schema(database, name, cmd)
            read_info.query_type = protos.QueryType.FLIGHT_SQL_MESSAGE
            read_info.flightsql_command = descriptor.command
        ticket = flight.Ticket(protos.pack_any(read_info))
        endpoint = flight.FlightEndpoint(ticket, [])
        return flight.FlightInfo(schema, descriptor, [endpoint], -1, -1)

    def _command_schema(self, database: str, name: str, cmd: Any) -> pa.Schema:
        if name == "CommandStatementQuery":
            with _placeholder_hint():
                return self.engine.sql_schema(database, cmd.query, hydrate=True)
        if name == "CommandPreparedStatementQuery":
            query, params = self._decode_handle(cmd.prepared_statement_handle)
            bound = self._bind_params(query, params) if params is not None else None
            with _placeholder_hint():
                return self.engine.sql_schema(database, query, params=bound, hydrate=True)
        if name in _METADATA_SCHEMAS:
            self._require_database(database)
            if name == "CommandGetTables" and cmd.include_schema:
                return TABLES_WITH_SCHEMA_SCHEMA
            return _METADATA_SCHEMAS[name]
        raise InvalidRequest(
            f"Method GetFlightInfo does not expect {name}: send it with "
            f"{'DoAction' if name.startswith('Action') else 'DoPut'}"
        )

    def _influxql_schema(self, database: str, text: str) -> pa.Schema:
        reader = self._influxql(database, text, {})
        try:
            return hydrate_schema(reader.schema)
        finally:
            close = getattr(reader, "close", None)
            if close is not None:
                close()

    def _influxql(
        self, database: str, text: str, params: Mapping[str, Any]
    ) -> pa.RecordBatchReader:
        try:
            from influx_flight.server import influxql
        except ImportError:  # pragma: no cover - the InfluxQL package ships with the server
            influxql = None
        execute = getattr(influxql, "execute", None)
        if execute is None:
            raise InvalidRequest(
                "InfluxQL is not available in this stand-in yet: send SQL, or a JSON ticket "
                "with query_type 'sql'"
            )
        return execute(self.engine, database, text, dict(params))

    # -- DoGet --------------------------------------------------------------------------------

    def do_get(self, context: Any, ticket: bytes | flight.Ticket) -> pa.RecordBatchReader:
        """Run a protobuf ``ReadInfo`` ticket and stream the hydrated result (§1.3, §1.4)."""
        raw = ticket.ticket if isinstance(ticket, flight.Ticket) else bytes(ticket)
        read_info = decode_ticket(raw)
        if read_info is None:
            raise InvalidTicket("not a protobuf ReadInfo ticket")
        return self.run_read_info(context, read_info)

    def run_read_info(self, context: Any, read_info: Any) -> pa.RecordBatchReader:
        """Execute an already decoded and validated ``ReadInfo``."""
        database = read_info.database
        if read_info.query_type == protos.QueryType.FLIGHT_SQL_MESSAGE:
            name, cmd = self._decode_command(read_info.flightsql_command, "DoGet")
            return self._run_command(context, database, name, cmd)
        params = params_from_read_info(read_info)
        if read_info.query_type == protos.QueryType.INFLUX_QL:
            self._require_database(database)
            values = {name: scalar.as_py() for name, scalar in params.items()}
            return hydrate_reader(self._influxql(database, read_info.sql_query, values))
        # UNSPECIFIED, SQL and unknown (newer) values all mean SQL (§1.3).
        return self.engine.query_sql(database, read_info.sql_query, params or None, hydrate=True)

    def _run_command(
        self, context: Any, database: str, name: str, cmd: Any
    ) -> pa.RecordBatchReader:
        if name == "CommandStatementQuery":
            with _placeholder_hint():
                return hydrate_reader(self.engine.query_sql(database, cmd.query, hydrate=True))
        if name == "CommandPreparedStatementQuery":
            query, params = self._decode_handle(cmd.prepared_statement_handle)
            bound = self._bind_params(query, params) if params is not None else None
            with _placeholder_hint():
                return hydrate_reader(self.engine.query_sql(database, query, bound, hydrate=True))
        if name not in _METADATA_SCHEMAS:
            raise InvalidRequest(f"Method DoGet does not expect {name}")
        self._require_database(database)
        headers = self._headers_of(context)
        base_table_type = base_table_type_from_headers(headers)
        if name == "CommandGetSqlInfo":
            return _reader_of(sql_info_batch(list(cmd.info)))
        if name == "CommandGetCatalogs":
            return _reader_of(
                pa.RecordBatch.from_pydict({"catalog_name": [CATALOG]}, CATALOGS_SCHEMA)
            )
        if name == "CommandGetDbSchemas":
            return _reader_of(self._db_schemas_batch(database, cmd))
        if name == "CommandGetTables":
            return _reader_of(self._tables_batch(database, cmd, base_table_type))
        if name == "CommandGetTableTypes":
            types = [base_table_type, "VIEW"]
            return _reader_of(pa.RecordBatch.from_pydict({"table_type": types}, TABLE_TYPES_SCHEMA))
        if name == "CommandGetXdbcTypeInfo":
            data_type = cmd.data_type if cmd.HasField("data_type") else None
            return _reader_of(xdbc_type_info_batch(data_type))
        # The key commands: always empty, with the standard schema (IOx has no keys).
        return _reader_of(pa.RecordBatch.from_pylist([], schema=_METADATA_SCHEMAS[name]))

    # -- metadata -----------------------------------------------------------------------------

    def _schema_names(self, database: str) -> list[str]:
        ctx = self.engine.session(database)
        names = {"information_schema"}
        try:
            names.update(ctx.catalog(CATALOG).schema_names())
        except Exception:
            names.update({"iox", "system"})
        return sorted(names)

    def _db_schemas_batch(self, database: str, cmd: Any) -> pa.RecordBatch:
        rows: list[tuple[str, str]] = []
        if not cmd.HasField("catalog") or cmd.catalog == CATALOG:
            pattern = (
                _like_to_regex(cmd.db_schema_filter_pattern)
                if cmd.HasField("db_schema_filter_pattern")
                else None
            )
            for schema_name in self._schema_names(database):
                if pattern is None or pattern.fullmatch(schema_name):
                    rows.append((CATALOG, schema_name))
        return pa.RecordBatch.from_pydict(
            {"catalog_name": [r[0] for r in rows], "db_schema_name": [r[1] for r in rows]},
            DB_SCHEMAS_SCHEMA,
        )

    def _list_tables(
        self, database: str, ctx: Any, base_table_type: str
    ) -> list[tuple[str, str, str]]:
        """(schema, table, type) of every table Core's GetTables would list."""
        out: list[tuple[str, str, str]] = [
            ("information_schema", view, "VIEW") for view in INFORMATION_SCHEMA_VIEWS
        ]
        try:
            catalog = ctx.catalog(CATALOG)
            schema_names = [s for s in catalog.schema_names() if s != "information_schema"]
            for schema_name in schema_names:
                for table_name in catalog.schema(schema_name).names():
                    out.append((schema_name, table_name, base_table_type))
        except Exception:
            for table_name in self.engine.tables(database):
                out.append(("iox", table_name, base_table_type))
        return out

    def _table_schema(
        self, database: str, ctx: Any, schema_name: str, table_name: str
    ) -> pa.Schema:
        """The stored schema of a user table (metadata and dictionaries kept), else DataFusion's."""
        if schema_name == "iox":
            try:
                return self.engine.table_arrow_schema(database, table_name)
            except ServerError:
                pass
        return ctx.table(f'"{CATALOG}"."{schema_name}"."{table_name}"').schema()

    def _tables_batch(self, database: str, cmd: Any, base_table_type: str) -> pa.RecordBatch:
        ctx = self.engine.session(database)  # one snapshot for the listing and the schemas
        if cmd.HasField("catalog") and cmd.catalog != CATALOG:
            rows: list[tuple[str, str, str]] = []
        else:
            rows = self._list_tables(database, ctx, base_table_type)
        if cmd.HasField("db_schema_filter_pattern"):
            pattern = _like_to_regex(cmd.db_schema_filter_pattern)
            rows = [r for r in rows if pattern.fullmatch(r[0])]
        if cmd.HasField("table_name_filter_pattern"):
            pattern = _like_to_regex(cmd.table_name_filter_pattern)
            rows = [r for r in rows if pattern.fullmatch(r[1])]
        if cmd.table_types:
            wanted = set(cmd.table_types)
            rows = [r for r in rows if r[2] in wanted]
        rows.sort()
        columns: dict[str, list[Any]] = {
            "catalog_name": [CATALOG] * len(rows),
            "db_schema_name": [r[0] for r in rows],
            "table_name": [r[1] for r in rows],
            "table_type": [r[2] for r in rows],
        }
        if not cmd.include_schema:
            return pa.RecordBatch.from_pydict(columns, TABLES_SCHEMA)
        columns["table_schema"] = [
            _serialize_schema(self._table_schema(database, ctx, r[0], r[1])) for r in rows
        ]
        return pa.RecordBatch.from_pydict(columns, TABLES_WITH_SCHEMA_SCHEMA)

    # -- DoAction -----------------------------------------------------------------------------

    def list_actions(self, context: Any = None) -> list[tuple[str, str]]:
        """UNIMPLEMENTED, as in Core (§2.2), though DoAction takes the two Flight SQL actions.

        Clients of Flight SQL know the action names (``CreatePreparedStatement``,
        ``ClosePreparedStatement``) from the specification and never list them.
        """
        raise Unimplemented("Not yet implemented: list_actions")

    def do_action(self, context: Any, action: flight.Action) -> Iterator[flight.Result]:
        """CreatePreparedStatement / ClosePreparedStatement (state travels in the handle)."""
        body = action.body.to_pybytes() if action.body is not None else b""
        name, cmd = self._decode_command(body, "DoAction")
        database = self._database(context)
        if name == "ActionCreatePreparedStatementRequest":
            result = self.create_prepared_statement(database, cmd.query)
            return iter([flight.Result(protos.pack_any(result))])
        if name == "ActionClosePreparedStatementRequest":
            self._decode_handle(cmd.prepared_statement_handle)  # a bad handle is still an error
            return iter([flight.Result(b"")])
        raise InvalidRequest(f"Method DoAction does not expect {name}")

    def create_prepared_statement(self, database: str, query: str) -> Any:
        """Plan ``query``: the handle plus IPC-encoded dataset and parameter schemas."""
        dataset_schema = self.engine.sql_schema(database, query, hydrate=True)
        parameter_schema = self.parameter_schema(database, query)
        handle = protos.FlightSqlPreparedStatementHandle(query=query)
        return protos.ActionCreatePreparedStatementResult(
            prepared_statement_handle=_pack_handle(handle),
            dataset_schema=_serialize_schema(dataset_schema),
            parameter_schema=_serialize_schema(parameter_schema),
        )

    def parameter_schema(self, database: str, query: str) -> pa.Schema:
        """Placeholders of ``query`` with the types DataFusion infers for them.

        Field names are the placeholder ids (``$1``, ``$room``), as IOx reports them. A
        placeholder DataFusion cannot type (``LIMIT $n``) is refused like IOx does; one whose type
        the stand-in cannot read back from DataFusion's plan is reported as ``null``.
        """
        names = placeholders(query)
        if not names:
            return pa.schema([])
        types: dict[str, pa.DataType | None] = {}
        unknown: set[str] = set()
        try:
            plan = self._logical_plan(database, query)
        except ServerError:
            raise
        except Exception:
            plan = None
        if plan is not None:
            for match in _PLACEHOLDER_REPR.finditer(_plan_repr(plan)):
                ident = match.group("id")
                rest = match.group("rest")
                if rest == "None":
                    unknown.add(ident)
                    continue
                found = _DATA_TYPE_IN_FIELD.search(rest) or re.match(
                    r"Some\((?P<type>[A-Za-z0-9]+(?:\([^()]*\))?)", rest
                )
                dtype = _datafusion_type(found.group("type")) if found else None
                if dtype is not None and types.get(ident) is None:
                    types[ident] = dtype
                    unknown.discard(ident)
                elif ident not in types:
                    types[ident] = None
        fields = []
        for name in names:
            ident = f"${name}"
            if ident in unknown and types.get(ident) is None:
                raise QueryPlanError(f"Unable to infer the type of parameter: {ident}")
            fields.append(pa.field(ident, types.get(ident) or pa.null(), nullable=True))
        return pa.schema(fields)

    def _logical_plan(self, database: str, query: str) -> Any:
        ctx = self.engine.session(database)
        try:
            from influx_flight.server import functions

            query = functions.rewrite_sql(query)
        except (ImportError, AttributeError):
            pass
        return ctx.sql(query).logical_plan()

    # -- DoPut --------------------------------------------------------------------------------

    def do_put(
        self,
        context: Any,
        descriptor: flight.FlightDescriptor,
        reader: flight.MetadataRecordBatchReader,
        writer: flight.FlightMetadataWriter,
    ) -> None:
        """Bind parameters to a prepared statement: answer with a handle embedding them."""
        if descriptor.descriptor_type != flight.DescriptorType.CMD:
            raise Unimplemented("Unsupported message type: DoPut with Path")
        name, cmd = self._decode_command(descriptor.command, "DoPut")
        self._database(context)
        if name != "CommandPreparedStatementQuery":
            raise InvalidRequest(f"Method DoPut does not expect {name}")
        query, _old = self._decode_handle(cmd.prepared_statement_handle)
        params: pa.RecordBatch | None = None
        try:
            while True:  # keep the first batch (as IOx), drain the rest so the client can finish
                chunk = reader.read_chunk()
                if params is None and chunk.data is not None and chunk.data.num_rows:
                    params = chunk.data
        except StopIteration:
            pass
        if params is None:
            raise InvalidRequest(
                "No flight data sent to DoPut for CommandPreparedStatementQuery: send one "
                "record batch whose columns are the parameter values"
            )
        handle = protos.FlightSqlPreparedStatementHandle(query=query, params=_ipc_stream(params))
        result = protos.DoPutPreparedStatementResult(prepared_statement_handle=_pack_handle(handle))
        # Raw (not Any-wrapped): what arrow-go's client, hence ADBC, decodes.
        writer.write(pa.py_buffer(result.SerializeToString()))

    # -- prepared statement handles -----------------------------------------------------------

    @staticmethod
    def _decode_handle(handle: bytes) -> tuple[str, pa.RecordBatch | None]:
        """(query, params batch) of a handle; a legacy raw UTF-8 handle is the query itself."""
        try:
            wrapper = protos.unpack_any(handle)
        except DecodeError:
            wrapper = None
        if wrapper is not None and wrapper.type_url:
            if wrapper.type_url != protos.PREPARED_STATEMENT_HANDLE_TYPE_URL:
                raise InvalidRequest(
                    f"Invalid prepared statement handle: type url {wrapper.type_url!r}, expected "
                    f"{protos.PREPARED_STATEMENT_HANDLE_TYPE_URL!r}"
                )
            decoded = protos.FlightSqlPreparedStatementHandle()
            try:
                decoded.ParseFromString(wrapper.value)
            except DecodeError:
                raise InvalidRequest("Invalid prepared statement handle: does not parse") from None
            params = None
            if decoded.HasField("params"):
                try:
                    stream = pa.ipc.open_stream(decoded.params)
                    params = next(iter(stream), None)
                except (pa.ArrowInvalid, StopIteration):
                    raise InvalidRequest(
                        "Invalid prepared statement handle: parameters are not an Arrow IPC stream"
                    ) from None
            return decoded.query, params
        try:
            return handle.decode("utf-8"), None
        except UnicodeDecodeError:
            raise InvalidRequest(
                "Invalid prepared statement handle: neither a FlightSqlPreparedStatementHandle "
                "nor UTF-8 query text"
            ) from None

    @staticmethod
    def _bind_params(query: str, params: pa.RecordBatch) -> dict[str, pa.Scalar]:
        """Parameter values from the first row of the bound batch, named by its fields.

        Field names are the placeholder names with or without ``$``, used verbatim as Core does:
        ADBC's raw DB-API names a tuple's values ``0``, ``1``, ... which match no DataFusion
        placeholder (``$1`` is the first), so such a bind fails here as it does on Core.
        """
        if params.num_rows == 0:
            raise InvalidRequest("the bound parameter batch has no rows: send one row of values")
        names = [n[1:] if n.startswith("$") else n for n in params.schema.names]
        return {name: params.column(i)[0] for i, name in enumerate(names)}


@contextmanager
def _placeholder_hint() -> Iterator[None]:
    """Add what to do to DataFusion's error about a ``?`` placeholder (ADBC's qmark style)."""
    try:
        yield
    except QueryPlanError as exc:
        if "placeholder with name ?" not in exc.message:
            raise
        raise QueryPlanError(
            f"{exc.message}. InfluxDB 3 SQL (DataFusion) has no '?' placeholders: write $1, $2, "
            "... for positional parameters or $name for named ones"
        ) from None


def _pack_handle(handle: Any) -> bytes:
    return protos.pack_any(handle)


def _ipc_stream(batch: pa.RecordBatch) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as stream:
        stream.write_batch(batch)
    return sink.getvalue().to_pybytes()


def sql_info_batch(requested: Iterable[int]) -> pa.RecordBatch:
    """GetSqlInfo rows for ``requested`` ids (all known ones when empty), ids sorted."""
    wanted = sorted(set(requested)) if requested else sorted(SQL_INFO)
    codes = [code for code in wanted if code in SQL_INFO]
    children: list[list[Any]] = [[] for _ in _SQL_INFO_VALUE_FIELDS]
    type_ids: list[int] = []
    offsets: list[int] = []
    for code in codes:
        kind, value = SQL_INFO[code]
        type_ids.append(kind)
        offsets.append(len(children[kind]))
        children[kind].append(value)
    child_arrays = [
        pa.array(values, type=fld.type)
        for values, fld in zip(children, _SQL_INFO_VALUE_FIELDS, strict=True)
    ]
    union = pa.UnionArray.from_dense(
        pa.array(type_ids, type=pa.int8()),
        pa.array(offsets, type=pa.int32()),
        child_arrays,
        [f.name for f in _SQL_INFO_VALUE_FIELDS],
        [0, 1, 2, 3, 4, 5],
    )
    return pa.RecordBatch.from_arrays(
        [pa.array(codes, type=pa.uint32()), union], schema=SQL_INFO_SCHEMA
    )


def xdbc_type_info_batch(data_type: int | None) -> pa.RecordBatch:
    """GetXdbcTypeInfo rows (optionally only ``data_type``), ordered by data_type, type_name."""
    rows = [r for r in _XDBC_TYPES if data_type is None or r[1] == data_type]
    rows.sort(key=lambda r: (r[1], r[0]))
    columns: dict[str, list[Any]] = {
        "type_name": [r[0] for r in rows],
        "data_type": [r[1] for r in rows],
        "column_size": [r[2] for r in rows],
        "literal_prefix": [r[3] for r in rows],
        "literal_suffix": [r[4] for r in rows],
        "create_params": [None for _ in rows],
        "nullable": [1 for _ in rows],  # NULLABILITY_NULLABLE
        "case_sensitive": [r[5] for r in rows],
        "searchable": [r[6] for r in rows],
        "unsigned_attribute": [r[7] for r in rows],
        "fixed_prec_scale": [False for _ in rows],
        "auto_increment": [None if r[7] is None else False for r in rows],
        "local_type_name": [r[0] for r in rows],
        "minimum_scale": [None for _ in rows],
        "maximum_scale": [None for _ in rows],
        "sql_data_type": [r[1] for r in rows],
        "datetime_subcode": [None for _ in rows],
        "num_prec_radix": [r[8] for r in rows],
        "interval_precision": [None for _ in rows],
    }
    return pa.RecordBatch.from_pydict(columns, XDBC_TYPE_INFO_SCHEMA)


#: Commands GetFlightInfo/DoGet/DoAction/DoPut understand; anything else is refused with
#: "Unsupported FlightSQL message type" (CommandStatementUpdate, Substrait, transactions...).
_SUPPORTED_COMMANDS: dict[str, type] = {
    "CommandStatementQuery": protos.CommandStatementQuery,
    "CommandPreparedStatementQuery": protos.CommandPreparedStatementQuery,
    "CommandGetSqlInfo": protos.CommandGetSqlInfo,
    "CommandGetCatalogs": protos.CommandGetCatalogs,
    "CommandGetCrossReference": protos.CommandGetCrossReference,
    "CommandGetDbSchemas": protos.CommandGetDbSchemas,
    "CommandGetExportedKeys": protos.CommandGetExportedKeys,
    "CommandGetImportedKeys": protos.CommandGetImportedKeys,
    "CommandGetPrimaryKeys": protos.CommandGetPrimaryKeys,
    "CommandGetTables": protos.CommandGetTables,
    "CommandGetTableTypes": protos.CommandGetTableTypes,
    "CommandGetXdbcTypeInfo": protos.CommandGetXdbcTypeInfo,
    "ActionCreatePreparedStatementRequest": protos.ActionCreatePreparedStatementRequest,
    "ActionClosePreparedStatementRequest": protos.ActionClosePreparedStatementRequest,
}

_METADATA_SCHEMAS: dict[str, pa.Schema] = {
    "CommandGetSqlInfo": SQL_INFO_SCHEMA,
    "CommandGetCatalogs": CATALOGS_SCHEMA,
    "CommandGetDbSchemas": DB_SCHEMAS_SCHEMA,
    "CommandGetTables": TABLES_SCHEMA,
    "CommandGetTableTypes": TABLE_TYPES_SCHEMA,
    "CommandGetXdbcTypeInfo": XDBC_TYPE_INFO_SCHEMA,
    "CommandGetPrimaryKeys": PRIMARY_KEYS_SCHEMA,
    "CommandGetExportedKeys": FOREIGN_KEYS_SCHEMA,
    "CommandGetImportedKeys": FOREIGN_KEYS_SCHEMA,
    "CommandGetCrossReference": FOREIGN_KEYS_SCHEMA,
}
