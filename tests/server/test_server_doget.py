"""DoGet with InfluxDB 3 JSON tickets against the stand-in, over real gRPC."""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from influx_flight.server.errors import InvalidTicket
from influx_flight.server.flight import decode_json_ticket

TOKEN_HEADER = b"authorization"

INVALID_TICKET = "Invalid ticket. Error: Invalid ticket"


def _home_batch() -> pa.RecordBatch:
    rooms = pa.array(["Kitchen", "Living Room", "Kitchen", "Living Room"]).dictionary_encode()
    return pa.record_batch(
        {
            "room": rooms,
            "temp": pa.array([21.0, 21.1, 23.0, 22.2]),
            "hum": pa.array([35.9, 35.9, 36.2, 36.0]),
            "co": pa.array([0, 0, 1, 0], pa.int64()),
            "time": pa.array(
                [1641024000, 1641024000, 1641027600, 1641027600], pa.timestamp("s")
            ).cast(pa.timestamp("ns")),
        }
    )


@pytest.fixture
def home_db(standin: Any, request: pytest.FixtureRequest) -> str:
    """A fresh database named after the test, holding a small ``home`` table."""
    name = "doget_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]
    if standin.engine.has_database(name):
        standin.engine.delete_database(name)
    standin.engine.append(name, "home", _home_batch())
    return name


def _get(client: flight.FlightClient, ticket: dict[str, Any] | bytes, options: Any) -> pa.Table:
    raw = ticket if isinstance(ticket, bytes) else json.dumps(ticket).encode()
    return client.do_get(flight.Ticket(raw), options).read_all()


# -- the two seed snippets from InfluxDB's documentation, host changed only ------------------


def test_seed_snippet_namespace_name_read_all(standin: Any, home_db: str) -> None:
    from pyarrow.flight import FlightCallOptions, FlightClient, Ticket

    HOST = standin.flight_uri
    TOKEN = standin.token
    DB = home_db

    client = FlightClient(location=HOST)
    token = (b"authorization", f"Bearer {TOKEN}".encode())
    options = FlightCallOptions(headers=[token])
    ticket = Ticket(
        json.dumps({"namespace_name": DB, "sql_query": "SELECT * FROM home", "query_type": "sql"})
    )
    reader = client.do_get(ticket, options)
    table = reader.read_all()

    assert table.num_rows == 4
    assert table.column_names == ["co", "hum", "room", "temp", "time"]
    assert sorted(table.column("room").to_pylist()) == [
        "Kitchen",
        "Kitchen",
        "Living Room",
        "Living Room",
    ]


def test_seed_snippet_database_read_pandas(standin: Any, home_db: str) -> None:
    from pyarrow.flight import FlightCallOptions, FlightClient, Ticket

    client = FlightClient(location=standin.flight_uri)
    token = (b"authorization", f"Bearer {standin.token}".encode())
    options = FlightCallOptions(headers=[token])
    ticket = Ticket(
        json.dumps({"database": home_db, "sql_query": "SELECT * FROM home", "query_type": "sql"})
    )
    reader = client.do_get(ticket, options)
    df = reader.read_pandas()

    assert len(df) == 4
    assert list(df.columns) == ["co", "hum", "room", "temp", "time"]
    assert str(df["time"].dtype).startswith("datetime64[ns")
    assert set(df["room"]) == {"Kitchen", "Living Room"}


# -- ticket keys ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["database", "namespace_name", "bucket", "bucket-name"])
def test_every_database_alias_works(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str, key: str
) -> None:
    table = _get(
        flight_client, {key: home_db, "sql_query": "SELECT count(*) AS n FROM home"}, auth_options
    )
    assert table.to_pylist() == [{"n": 4}]


@pytest.mark.parametrize(
    "ticket",
    [
        pytest.param(b"{not json", id="bad-json"),
        pytest.param(b'["database", "x"]', id="json-array"),
        pytest.param(b"\xff\xfe{", id="not-utf8"),
        pytest.param({"sql_query": "SELECT 1"}, id="no-database"),
        pytest.param(
            {"database_name": "x", "sql_query": "SELECT 1"}, id="database_name-is-unknown"
        ),
        pytest.param({"database": "x"}, id="no-sql_query"),
        pytest.param({"database": 5, "sql_query": "SELECT 1"}, id="database-not-string"),
        pytest.param({"database": "x", "sql_query": "SELECT 1", "query_type": "SQL"}, id="SQL"),
        pytest.param({"database": "x", "sql_query": "SELECT 1", "query_type": ""}, id="empty-type"),
        pytest.param(
            {"database": "x", "sql_query": "SELECT 1", "query_type": "flight"}, id="flight-type"
        ),
        pytest.param({"database": "x", "sql_query": "SELECT 1", "params": None}, id="params-null"),
        pytest.param({"database": "x", "sql_query": "SELECT 1", "params": [1]}, id="params-array"),
        pytest.param(
            {"database": "x", "sql_query": "SELECT $a", "params": {"a": [1, 2]}}, id="param-array"
        ),
        pytest.param(
            {"database": "x", "sql_query": "SELECT $a", "params": {"a": {"b": 1}}}, id="param-obj"
        ),
        pytest.param(
            {"database": "x", "bucket": "x", "sql_query": "SELECT 1"}, id="two-database-aliases"
        ),
        pytest.param(b'{"database": "x", "database": "x", "sql_query": "SELECT 1"}', id="dup-key"),
        pytest.param({"database": "x", "sql_query": "SELECT 1", "is_debug": "yes"}, id="debug-str"),
    ],
)
def test_bad_tickets_are_invalid_argument(
    flight_client: flight.FlightClient, auth_options: Any, ticket: dict[str, Any] | bytes
) -> None:
    with pytest.raises(pa.ArrowInvalid, match=re.escape(INVALID_TICKET)):
        _get(flight_client, ticket, auth_options)


def test_auth_is_checked_before_the_ticket(flight_client: flight.FlightClient) -> None:
    """Core decodes the ticket first; the stand-in tells an unauthenticated caller nothing
    about its ticket (issue 13, documented in docs/standin.md)."""
    with pytest.raises(flight.FlightUnauthenticatedError):
        flight_client.do_get(flight.Ticket(b"{oops")).read_all()


def test_unknown_keys_and_null_query_type_are_accepted(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    ticket = {
        "database": home_db,
        "sql_query": "SELECT count(*) AS n FROM home",
        "query_type": None,
        "is_debug": True,
        "database_name": "ignored",
        "something_new": {"nested": [1, 2]},
    }
    assert _get(flight_client, ticket, auth_options).to_pylist() == [{"n": 4}]


def test_missing_query_type_means_sql(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    ticket = {"database": home_db, "sql_query": "SELECT max(temp) AS m FROM home"}
    assert _get(flight_client, ticket, auth_options).to_pylist() == [{"m": 23.0}]


def test_decode_json_ticket_fields() -> None:
    req = decode_json_ticket(
        b'{"bucket-name": "db", "sql_query": "SELECT $a", "params": {"a": 1, "b": null},'
        b' "query_type": "influxql", "is_debug": true}'
    )
    assert (req.database, req.query, req.query_type, req.is_debug) == (
        "db",
        "SELECT $a",
        "influxql",
        True,
    )
    assert req.params == {"a": 1, "b": None}
    with pytest.raises(InvalidTicket) as info:
        decode_json_ticket(b'{"database": "db", "namespace_name": "db", "sql_query": "x"}')
    assert str(info.value) == INVALID_TICKET


# -- results ---------------------------------------------------------------------------------


def test_zero_rows_still_send_the_schema(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    reader = flight_client.do_get(
        flight.Ticket(
            json.dumps({"database": home_db, "sql_query": "SELECT * FROM home WHERE temp > 100"})
        ),
        auth_options,
    )
    assert reader.schema.names == ["co", "hum", "room", "temp", "time"]
    table = reader.read_all()
    assert table.num_rows == 0
    assert table.schema.field("room").type == pa.utf8()


def test_tags_are_hydrated_to_utf8_and_time_has_no_zone(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    table = _get(
        flight_client,
        {"database": home_db, "sql_query": "SELECT room, time, arrow_typeof(room) AS t FROM home"},
        auth_options,
    )
    assert table.schema.field("room").type == pa.utf8()
    assert table.schema.field("time").type == pa.timestamp("ns")
    # In SQL the tag is still a dictionary, as on InfluxDB 3.
    assert set(table.column("t").to_pylist()) == {"Dictionary(Int32, Utf8)"}


def test_select_star_is_alphabetical_with_time(
    standin: Any, flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    standin.engine.append(
        home_db,
        "home",
        pa.record_batch(
            {
                "zeta": pa.array([1.5]),
                "Alpha": pa.array(["x"]).dictionary_encode(),
                "time": pa.array([1], pa.timestamp("ns")),
            }
        ),
    )
    table = _get(
        flight_client, {"database": home_db, "sql_query": "SELECT * FROM home"}, auth_options
    )
    assert table.column_names == ["Alpha", "co", "hum", "room", "temp", "time", "zeta"]
    assert table.num_rows == 5
    # Rows written before a column existed read as null.
    assert table.column("zeta").null_count == 4


def test_result_streams_in_several_batches(
    standin: Any, flight_client: flight.FlightClient, auth_options: Any
) -> None:
    db = "doget_streaming"
    if standin.engine.has_database(db):
        standin.engine.delete_database(db)
    n = 50_000
    standin.engine.append(
        db,
        "m",
        pa.record_batch(
            {
                "time": pa.array(range(n), pa.int64()).cast(pa.timestamp("ns")),
                "v": pa.array(range(n), pa.float64()),
            }
        ),
    )
    reader = flight_client.do_get(
        flight.Ticket(json.dumps({"database": db, "sql_query": "SELECT * FROM m"})), auth_options
    )
    chunks = [chunk.data for chunk in reader]
    assert len(chunks) > 1
    assert sum(b.num_rows for b in chunks) == n


# -- params ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "arrow_type"),
    [
        (1234, "UInt64"),
        (0, "UInt64"),
        (-5, "Int64"),
        (1.5, "Float64"),
        (2**64, "Float64"),
        (True, "Boolean"),
        ("Kitchen", "Utf8"),
        (None, "Null"),
    ],
)
def test_param_json_typing(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str, value: Any, arrow_type: str
) -> None:
    ticket = {
        "database": home_db,
        "sql_query": "SELECT arrow_typeof($p) AS t",
        "params": {"p": value},
    }
    assert _get(flight_client, ticket, auth_options).to_pylist() == [{"t": arrow_type}]


def test_params_filter_rows(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    ticket = {
        "database": home_db,
        "sql_query": "SELECT temp FROM home WHERE room = $room AND temp > $min ORDER BY temp",
        "params": {"room": "Kitchen", "min": 21.5},
    }
    assert _get(flight_client, ticket, auth_options).to_pylist() == [{"temp": 23.0}]


def test_missing_param_names_the_placeholder(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    ticket = {"database": home_db, "sql_query": "SELECT * FROM home WHERE room = $room"}
    with pytest.raises(pa.ArrowInvalid, match=r"No value found for placeholder with name \$room"):
        _get(flight_client, ticket, auth_options)


def test_dollar_inside_string_literal_is_not_a_placeholder(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    ticket = {"database": home_db, "sql_query": "SELECT '$room' AS s"}
    assert _get(flight_client, ticket, auth_options).to_pylist() == [{"s": "$room"}]


# -- errors ------------------------------------------------------------------------------------


def test_unknown_database_is_internal_as_core(
    flight_client: flight.FlightClient, auth_options: Any
) -> None:
    with pytest.raises(
        flight.FlightInternalError,
        match="Cannot retrieve database: External error: database not found: no_such_db",
    ):
        _get(flight_client, {"database": "no_such_db", "sql_query": "SELECT 1"}, auth_options)


def test_syntax_error_is_invalid_argument(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    with pytest.raises(pa.ArrowInvalid, match="ParserError"):
        _get(flight_client, {"database": home_db, "sql_query": "SELEC * FROM home"}, auth_options)


def test_unknown_table_uses_full_name(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    with pytest.raises(pa.ArrowInvalid, match=r"table 'public\.iox\.invalid_table' not found"):
        _get(
            flight_client,
            {"database": home_db, "sql_query": "SELECT * FROM invalid_table"},
            auth_options,
        )


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE t AS SELECT 1",
        "DROP TABLE home",
        "INSERT INTO home SELECT * FROM home",
        "DELETE FROM home",
        "SET datafusion.execution.batch_size = 1",
        "CREATE VIEW v AS SELECT 1",
    ],
)
def test_ddl_dml_and_set_are_refused(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str, sql: str
) -> None:
    with pytest.raises(pa.ArrowInvalid, match="not supported"):
        _get(flight_client, {"database": home_db, "sql_query": sql}, auth_options)
    # and nothing changed
    table = _get(
        flight_client,
        {"database": home_db, "sql_query": "SELECT count(*) AS n FROM home"},
        auth_options,
    )
    assert table.to_pylist() == [{"n": 4}]


def test_influxql_ticket_routes_to_influxql(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    ticket = {"database": home_db, "sql_query": "SELECT temp FROM home", "query_type": "influxql"}
    table = _get(flight_client, ticket, auth_options)
    assert table.num_rows == 4
    assert table.column("iox::measurement").to_pylist() == ["home"] * 4


def test_unimplemented_rpcs(flight_client: flight.FlightClient, auth_options: Any) -> None:
    with pytest.raises(pa.ArrowNotImplementedError):
        list(flight_client.list_flights(options=auth_options))
    with pytest.raises(pa.ArrowNotImplementedError):
        flight_client.get_schema(flight.FlightDescriptor.for_path("x"), auth_options)


def test_concurrent_doget_while_writing(standin: Any) -> None:
    """Readers over gRPC see a growing table while writes are acknowledged, never an error."""
    import threading

    assert standin.pipeline is not None  # writes go through the WAL pipeline, as in Core
    db = "doget_concurrent"
    standin.write_lp(db, "m,host=h0 v=0 0")
    stop = threading.Event()
    errors: list[BaseException] = []
    seen: list[list[int]] = [[], [], []]

    def reader(slot: int) -> None:
        client = flight.FlightClient(standin.flight_uri)
        options = flight.FlightCallOptions(
            headers=[(b"authorization", f"Bearer {standin.token}".encode())]
        )
        ticket = flight.Ticket(json.dumps({"database": db, "sql_query": "SELECT * FROM m"}))
        try:
            while not stop.is_set():
                seen[slot].append(client.do_get(ticket, options).read_all().num_rows)
        except BaseException as exc:
            errors.append(exc)
        finally:
            client.close()

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(seen))]
    for t in threads:
        t.start()
    try:
        for i in range(1, 21):
            lines = "\n".join(f"m,host=h{i % 3} v={i * 10 + k} {i * 10 + k}" for k in range(10))
            standin.write_lp(db, lines)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert not errors
    for counts in seen:
        assert counts == sorted(counts)
        assert all(1 <= c <= 201 for c in counts)
    assert _get(
        flight.FlightClient(standin.flight_uri),
        {"database": db, "sql_query": "SELECT count(*) AS n FROM m"},
        flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {standin.token}".encode())]),
    ).to_pylist() == [{"n": 201}]


def test_system_queries_records_doget_queries(
    flight_client: flight.FlightClient, auth_options: Any, home_db: str
) -> None:
    _get(flight_client, {"database": home_db, "sql_query": "SELECT 7 AS seven"}, auth_options)
    rows = _get(
        flight_client,
        {
            "database": home_db,
            "sql_query": "SELECT query_type, query_text, success FROM system.queries"
            " WHERE query_text = 'SELECT 7 AS seven'",
        },
        auth_options,
    ).to_pylist()
    assert rows == [{"query_type": "sql", "query_text": "SELECT 7 AS seven", "success": True}]
