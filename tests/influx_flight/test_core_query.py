"""InfluxDB3Client queries against the stand-in over real gRPC (ticket and Flight SQL)."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

from influx_flight import (
    AuthenticationError,
    ConfigurationError,
    DatabaseNotFoundError,
    InfluxDB3Client,
    InfluxDB3Config,
    InfluxDB3Error,
    QueryError,
    RetryPolicy,
    ServerUnavailableError,
)

TOKEN = "apiv3_test-token-for-the-stand-in"  # tests/conftest.py STANDIN_TOKEN
LP = "\n".join(
    [
        "home,room=Kitchen temp=21.0,hum=35.9,co=0i 1641024000000000000",
        "home,room=Living\\ Room temp=21.1,hum=35.9,co=0i 1641024000000000000",
        "home,room=Kitchen temp=23.0,hum=36.2,co=1i 1641027600000000000",
        "home,room=Living\\ Room temp=22.2,hum=36.0,co=0i 1641027600000000000",
        "home,room=Kitchen temp=22.7,hum=36.1,co=3i 1641031200000000000",
    ]
)


def _db(request: pytest.FixtureRequest) -> str:
    return "core_q_" + re.sub(r"[^A-Za-z0-9_]", "_", request.node.name)[:60]


@pytest.fixture
def database(standin: Any, request: pytest.FixtureRequest) -> str:
    db = _db(request)
    standin.write_lp(db, LP, precision="ns")
    return db


@pytest.fixture
def client(standin: Any, database: str) -> Iterator[InfluxDB3Client]:
    cfg = InfluxDB3Config(
        host=standin.flight_uri, database=database, token=TOKEN, write_url=standin.http_url
    )
    with InfluxDB3Client(cfg, retry_policy=RetryPolicy(max_attempts=2, initial_backoff=0.01)) as c:
        yield c


def test_sql_query_streams_utc_timestamps(client: InfluxDB3Client) -> None:
    result = client.query("SELECT room, temp, time FROM home ORDER BY time, room")
    assert result.schema.field("time").type == pa.timestamp("ns", tz="UTC")
    assert result.schema.field("room").type == pa.string()
    batches = list(result)
    assert all(b.num_rows > 0 for b in batches)
    table = pa.Table.from_batches(batches)
    assert table.num_rows == 5
    assert table.column("time")[0].as_py() == dt.datetime(2022, 1, 1, 8, tzinfo=dt.UTC)
    assert table.column("room").to_pylist()[:2] == ["Kitchen", "Living Room"]


def test_to_table_and_schema_before_reading(client: InfluxDB3Client) -> None:
    result = client.query("SELECT * FROM home")
    assert result.schema.names == ["co", "hum", "room", "temp", "time"]
    table = result.to_table()
    assert table.num_rows == 5
    assert table.schema == result.schema


def test_params_are_sent_server_side(client: InfluxDB3Client) -> None:
    rows = client.query(
        "SELECT temp FROM home WHERE room = $room AND time >= $start ORDER BY time",
        params={"room": "Kitchen", "start": dt.datetime(2022, 1, 1, 9, tzinfo=dt.UTC)},
    ).to_records()
    assert rows == [{"temp": 23.0}, {"temp": 22.7}]


def test_naive_datetime_param_refused(client: InfluxDB3Client) -> None:
    with pytest.raises(ConfigurationError, match="naive datetime"):
        client.query("SELECT 1", params={"t": dt.datetime(2022, 1, 1)})


def test_influxql_query(client: InfluxDB3Client) -> None:
    rows = client.query(
        "SELECT MEAN(temp) FROM home WHERE room = 'Kitchen'", language="influxql"
    ).to_records()
    assert rows[0]["iox::measurement"] == "home"
    assert rows[0]["mean"] == pytest.approx((21.0 + 23.0 + 22.7) / 3)


def test_influxql_params(client: InfluxDB3Client) -> None:
    rows = client.query(
        "SELECT temp FROM home WHERE room = $room", language="influxql", params={"room": "Kitchen"}
    ).to_records()
    assert [r["temp"] for r in rows] == [21.0, 23.0, 22.7]


def test_flightsql_protocol(client: InfluxDB3Client) -> None:
    table = client.query(
        "SELECT room, temp, time FROM home WHERE temp > 22 ORDER BY time", protocol="flightsql"
    ).to_table()
    assert table.column("temp").to_pylist() == [23.0, 22.2, 22.7]
    assert table.schema.field("time").type == pa.timestamp("ns", tz="UTC")


def test_flightsql_params(client: InfluxDB3Client) -> None:
    table = client.query(
        "SELECT temp FROM home WHERE room = $room ORDER BY time",
        params={"room": "Living Room"},
        protocol="flightsql",
    ).to_table()
    assert table.column("temp").to_pylist() == [21.1, 22.2]


def test_flightsql_influxql_header(client: InfluxDB3Client) -> None:
    rows = client.query("SHOW MEASUREMENTS", language="influxql", protocol="flightsql").to_records()
    assert {"iox::measurement": "measurements", "name": "home"} in rows


def test_database_override(client: InfluxDB3Client, standin: Any) -> None:
    other = client.config.database + "_other"
    standin.write_lp(other, "m v=1i 1", precision="ns")
    assert client.query("SELECT v FROM m", database=other).to_records() == [{"v": 1}]


def test_syntax_error_is_query_error_with_server_message(client: InfluxDB3Client) -> None:
    with pytest.raises(QueryError) as info:
        client.query("SELEC * FROM home")
    assert info.value.server_message and "SELEC" in info.value.server_message
    assert info.value.database == client.config.database
    assert info.value.query == "SELEC * FROM home"


def test_unknown_table(client: InfluxDB3Client) -> None:
    with pytest.raises(QueryError, match="nope"):
        client.query("SELECT * FROM nope")


def test_unknown_database(client: InfluxDB3Client) -> None:
    with pytest.raises(DatabaseNotFoundError, match="'no_such_db'"):
        client.query("SELECT 1", database="no_such_db")


def test_wrong_token(standin: Any, database: str) -> None:
    cfg = InfluxDB3Config(host=standin.flight_uri, database=database, token="apiv3_wrong")
    with InfluxDB3Client(cfg) as c, pytest.raises(AuthenticationError) as info:
        c.query("SELECT 1")
    assert "apiv3_wrong" not in str(info.value)
    assert "INFLUXDB3_AUTH_TOKEN" in str(info.value)


def test_missing_token(standin: Any, database: str) -> None:
    cfg = InfluxDB3Config(host=standin.flight_uri, database=database)
    with InfluxDB3Client(cfg) as c, pytest.raises(AuthenticationError):
        c.check_connection()


def test_token_scheme_accepted(standin: Any, database: str) -> None:
    cfg = InfluxDB3Config(
        host=standin.flight_uri, database=database, token=TOKEN, auth_scheme="Token"
    )
    with InfluxDB3Client(cfg) as c:
        c.check_connection()  # raises AuthenticationError if the scheme were refused
        assert c.query("SELECT 1 AS one").to_records() == [{"one": 1}]
    wrong = cfg.with_options(token=TOKEN + "x")
    with InfluxDB3Client(wrong) as c, pytest.raises(AuthenticationError):
        c.check_connection()  # the same call fails with a wrong token: the check is real
    # and the server does read the scheme: an unknown one is refused with the right token
    raw = flight.FlightClient(standin.flight_uri)
    ticket = flight.Ticket(json.dumps({"database": database, "sql_query": "SELECT 1"}).encode())
    for header in (f"Token {TOKEN}", f"Bearer {TOKEN}"):
        opts = flight.FlightCallOptions(headers=[(b"authorization", header.encode())])
        assert raw.do_get(ticket, opts).read_all().num_rows == 1
    unknown = flight.FlightCallOptions(headers=[(b"authorization", f"Tok {TOKEN}".encode())])
    with pytest.raises(flight.FlightUnauthenticatedError):
        raw.do_get(ticket, unknown).read_all()
    raw.close()


def test_without_auth_server_needs_no_token(standin_factory: Any) -> None:
    srv = standin_factory(without_auth=True)
    srv.write_lp("open_db", "m v=2.5 1", precision="ns")
    with InfluxDB3Client(InfluxDB3Config(host=srv.flight_uri, database="open_db")) as c:
        assert c.query("SELECT v FROM m").to_records() == [{"v": 2.5}]


def test_refused_connection_after_retries() -> None:
    cfg = InfluxDB3Config(host="grpc+tcp://127.0.0.1:1", database="db")
    policy = RetryPolicy(max_attempts=2, initial_backoff=0.01)
    with InfluxDB3Client(cfg, retry_policy=policy) as c, pytest.raises(ServerUnavailableError):
        c.query("SELECT 1", timeout=5)


def test_check_connection(client: InfluxDB3Client, standin: Any) -> None:
    assert client.check_connection() is None
    missing = client.config.with_options(database="no_such_database_here")
    with InfluxDB3Client(missing) as other, pytest.raises(DatabaseNotFoundError):
        other.check_connection()


def test_dbapi_connect(client: InfluxDB3Client) -> None:
    with client.dbapi_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) AS n FROM home")
        assert cur.fetchone() == (5,)


def test_to_pandas_tz_aware(client: InfluxDB3Client) -> None:
    df = client.query("SELECT * FROM home ORDER BY time").to_pandas()
    assert len(df) == 5
    assert str(df["time"].dt.tz) == "UTC"


def test_result_streams_once(client: InfluxDB3Client) -> None:
    result = client.query("SELECT * FROM home")
    result.to_table()
    with pytest.raises(InfluxDB3Error, match="already consumed"):
        result.to_table()


def test_closed_client_refuses_use(standin: Any, database: str) -> None:
    c = InfluxDB3Client(InfluxDB3Config(host=standin.flight_uri, database=database, token=TOKEN))
    with c:
        c.check_connection()
    assert c.closed
    with pytest.raises(InfluxDB3Error, match="is closed"):
        c.query("SELECT 1")
    with pytest.raises(InfluxDB3Error, match="is closed"), c:
        pass
    c.close()  # idempotent


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"language": "flux"}, "language"),
        ({"protocol": "http"}, "protocol"),
        ({"params": [1, 2]}, "params"),
        ({"params": {"x": object()}}, "params"),
        ({"timeout": -1}, "timeout"),
        ({"database": " "}, "database"),
    ],
)
def test_invalid_query_arguments(client: InfluxDB3Client, kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        client.query("SELECT 1", **kwargs)
    assert info.value.field == field


def test_empty_result_keeps_schema(client: InfluxDB3Client) -> None:
    result = client.query("SELECT room, temp FROM home WHERE temp > 100")
    assert result.schema.names == ["room", "temp"]
    assert result.to_table().num_rows == 0


def test_client_from_mapping(standin: Any, database: str) -> None:
    with InfluxDB3Client({"host": standin.flight_uri, "database": database, "token": TOKEN}) as c:
        assert c.query("SELECT count(*) AS n FROM home").to_records() == [{"n": 5}]


def test_write_and_write_lp_delegate_round_trip(client: InfluxDB3Client) -> None:
    """client.write / write_lp reach the writer and the rows come back through query()."""
    table = pa.table(
        {
            "time": pa.array([1_700_000_000 * 10**9, 1_700_000_060 * 10**9], pa.timestamp("ns")),
            "room": ["Den", "Den"],
            "temp": [19.5, 19.75],
        }
    )
    written = client.write(table, measurement="written", tags=["room"], concurrency=1)
    assert written.lines_written == 2
    client.write_lp("written,room=Attic temp=12.5 1700000120000000000")
    rows = client.query("SELECT room, temp FROM written ORDER BY time").to_records()
    assert rows == [
        {"room": "Den", "temp": 19.5},
        {"room": "Den", "temp": 19.75},
        {"room": "Attic", "temp": 12.5},
    ]


def test_flightsql_influxql_params_refused(client: InfluxDB3Client) -> None:
    with pytest.raises(ConfigurationError, match="protocol='ticket'"):
        client.query(
            "SELECT temp FROM home WHERE room = $r",
            language="influxql",
            params={"r": "Kitchen"},
            protocol="flightsql",
        )


def test_empty_query_text_refused(client: InfluxDB3Client) -> None:
    with pytest.raises(ConfigurationError) as info:
        client.query("  ")
    assert info.value.field == "text"


def test_dbapi_binds_tuples_and_dicts_as_influxdb_expects(client: InfluxDB3Client) -> None:
    """Tuples bind to $1, $2 and dicts to $name, which raw ADBC cannot do against InfluxDB."""
    with client.dbapi_connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM home WHERE room = $1 AND co >= $2", ("Kitchen", 1))
        assert cur.fetchall() == [(2,)]
        cur.execute("SELECT count(*) FROM home WHERE room = $room", {"room": "Living Room"})
        assert cur.fetchall() == [(2,)]


@pytest.mark.parametrize("window", [64 * 1024, None])
def test_receive_window_bounds_the_stream_not_its_content(
    standin: Any, request: pytest.FixtureRequest, window: int | None
) -> None:
    """A result many times the fixed receive window (or gRPC's adaptive one) arrives whole."""
    db = _db(request)
    n = 200_000
    lines = "\n".join(f'big,host=h{i % 7} v={i}i,s="x{i % 13}" {1641024000 + i}' for i in range(n))
    standin.write_lp(db, lines, precision="s")
    cfg = InfluxDB3Config(host=standin.flight_uri, database=db, token=TOKEN, receive_window=window)
    assert cfg.receive_window == window
    with InfluxDB3Client(cfg) as c:
        table = c.query("SELECT v FROM big ORDER BY time").to_table()
    assert table.column("v").to_pylist() == list(range(n))
