"""QueryResult semantics over a real gRPC peer: keep-alives, restarts, cancellation, timeouts,
JSON-safe records. The peer is a tiny pyarrow Flight server (core_flaky_server.py)."""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import json
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.flight as flight
import pyarrow.parquet as pq
import pytest
from core_flaky_server import Behaviour, FlakyFlightServer, sensor_table

from influx_flight import (
    InfluxDB3Client,
    InfluxDB3Config,
    QueryCancelledError,
    QueryError,
    QueryTimeoutError,
    ResultTooLargeError,
    RetryPolicy,
    ServerUnavailableError,
)

FAST_RETRY = RetryPolicy(max_attempts=4, initial_backoff=0.01, max_backoff=0.05)
TABLE = sensor_table(5_000, batch_rows=500)


@pytest.fixture
def server() -> Iterator[FlakyFlightServer]:
    srv = FlakyFlightServer(TABLE, Behaviour())
    yield srv
    srv.shutdown()


def make_client(srv: FlakyFlightServer, **config: object) -> InfluxDB3Client:
    cfg = InfluxDB3Config(host=srv.uri, database="db", token="tok", **config)  # type: ignore[arg-type]
    return InfluxDB3Client(cfg, retry_policy=FAST_RETRY)


def expected_utc() -> pa.Table:
    i = TABLE.schema.get_field_index("time")
    return TABLE.cast(TABLE.schema.set(i, pa.field("time", pa.timestamp("ns", tz="UTC"))))


@contextlib.contextmanager
def served(table: pa.Table) -> Iterator[InfluxDB3Client]:
    """A client of a Flight peer that serves ``table`` as it is."""
    srv = FlakyFlightServer(table, Behaviour())
    try:
        with make_client(srv) as client:
            yield client
    finally:
        srv.shutdown()


def test_ticket_and_headers_on_the_wire(server: FlakyFlightServer) -> None:
    with make_client(server, headers={"X-Trace-Id": "abc"}) as client:
        client.query("SELECT $x", params={"x": 1}, language="sql", database="other").to_table()
    assert server.behaviour.tickets == [
        {"database": "other", "sql_query": "SELECT $x", "query_type": "sql", "params": {"x": 1}}
    ]
    headers = server.behaviour.headers[0]
    assert headers["authorization"] == ["Bearer tok"]
    assert headers["x-trace-id"] == ["abc"]


def test_keepalive_batches_are_skipped(server: FlakyFlightServer) -> None:
    server.behaviour.keepalive = True
    with make_client(server) as client:
        batches = list(client.query("SELECT *"))
    assert all(b.num_rows > 0 for b in batches)
    assert sum(b.num_rows for b in batches) == TABLE.num_rows


def test_timestamps_labelled_utc(server: FlakyFlightServer) -> None:
    with make_client(server) as client:
        result = client.query("SELECT *")
        assert result.schema.field("time").type == pa.timestamp("ns", tz="UTC")
        table = result.to_table()
    assert table.equals(expected_utc())


def test_transient_failures_before_stream_are_retried(server: FlakyFlightServer) -> None:
    server.behaviour.fail_first = 2
    with make_client(server) as client:
        table = client.query("SELECT *").to_table()
    assert table.equals(expected_utc())
    assert server.behaviour.calls == 3


def test_broken_stream_restarts_to_table_without_duplicates(server: FlakyFlightServer) -> None:
    server.behaviour.break_first = 2
    with make_client(server) as client:
        table = client.query("SELECT *").to_table()
    assert table.num_rows == TABLE.num_rows  # no duplicated half-streams
    assert table.equals(expected_utc())
    assert server.behaviour.calls == 3


def test_broken_stream_restarts_parquet_export(server: FlakyFlightServer, tmp_path: Path) -> None:
    server.behaviour.break_first = 1
    out = tmp_path / "out.parquet"
    with make_client(server) as client:
        result = client.query("SELECT *").to_parquet(out, row_group_size=1_000)
    assert result.rows == TABLE.num_rows
    assert pq.read_table(out).equals(expected_utc())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.parquet"]  # no temp leftovers
    assert server.behaviour.calls == 2


def test_broken_stream_restarts_records(server: FlakyFlightServer) -> None:
    server.behaviour.break_first = 1
    with make_client(server) as client:
        rows = client.query("SELECT *").to_records(max_rows=None)
    assert len(rows) == TABLE.num_rows
    assert rows[0]["time"] == "2023-11-14T22:13:20Z"


def test_plain_iteration_does_not_restart(server: FlakyFlightServer) -> None:
    """A consumer that has seen batches cannot be given a restart without duplicates."""
    server.behaviour.break_first = 1
    seen = 0
    with make_client(server) as client, pytest.raises(ServerUnavailableError):
        for batch in client.query("SELECT *"):
            seen += batch.num_rows
    assert 0 < seen < TABLE.num_rows
    assert server.behaviour.calls == 1


def test_exhausted_retries_raise_and_leave_nothing(
    server: FlakyFlightServer, tmp_path: Path
) -> None:
    server.behaviour.break_first = 10
    with make_client(server) as client, pytest.raises(ServerUnavailableError):
        client.query("SELECT *").to_parquet(tmp_path / "out.parquet")
    assert list(tmp_path.iterdir()) == []
    assert server.behaviour.calls == FAST_RETRY.max_attempts


def test_non_transient_mid_stream_error_is_not_retried(
    server: FlakyFlightServer, tmp_path: Path
) -> None:
    server.behaviour.break_first = 1
    server.behaviour.break_error = flight.FlightInternalError
    with make_client(server) as client, pytest.raises(QueryError):
        client.query("SELECT *").to_parquet(tmp_path / "out.parquet")
    assert server.behaviour.calls == 1
    assert list(tmp_path.iterdir()) == []


def test_cancel_from_another_thread(server: FlakyFlightServer, tmp_path: Path) -> None:
    server.behaviour.delay = 0.05  # 10 batches -> 0.5 s
    with make_client(server) as client:
        timer = threading.Timer(0.15, client.cancel)
        timer.start()
        started = time.monotonic()
        with pytest.raises(QueryCancelledError, match="cancelled"):
            client.query("SELECT *").to_parquet(tmp_path / "out.parquet")
        assert time.monotonic() - started < 0.45
        timer.join()
        assert list(tmp_path.iterdir()) == []  # the temporary file is gone
        server.behaviour.delay = 0
        assert client.query("SELECT *").to_table().num_rows == TABLE.num_rows  # still usable


def test_cancel_during_retry_backoff(server: FlakyFlightServer) -> None:
    server.behaviour.fail_first = 100
    cfg = InfluxDB3Config(host=server.uri, database="db")
    slow = RetryPolicy(max_attempts=10, initial_backoff=5, jitter=False)
    with InfluxDB3Client(cfg, retry_policy=slow) as client:
        threading.Timer(0.2, client.cancel).start()
        started = time.monotonic()
        with pytest.raises(QueryCancelledError):
            client.query("SELECT *")
        assert time.monotonic() - started < 3
    assert server.behaviour.calls == 1


def test_close_cancels_running_queries(server: FlakyFlightServer) -> None:
    server.behaviour.delay = 0.05
    client = make_client(server)
    result = client.query("SELECT *")
    threading.Timer(0.1, client.close).start()
    with pytest.raises(QueryCancelledError):
        result.to_table()


def test_deadline_covers_the_stream(server: FlakyFlightServer) -> None:
    server.behaviour.delay = 0.1
    with make_client(server) as client, pytest.raises(QueryTimeoutError, match="deadline"):
        client.query("SELECT *", timeout=0.3).to_table()


def test_config_default_timeout_and_none(server: FlakyFlightServer) -> None:
    server.behaviour.delay = 0.05
    with make_client(server, query_timeout=0.2) as client:
        with pytest.raises(QueryTimeoutError):
            client.query("SELECT *").to_table()
        assert client.query("SELECT *", timeout=None).to_table().num_rows == TABLE.num_rows


def test_result_close_stops_stream(server: FlakyFlightServer) -> None:
    server.behaviour.delay = 0.05
    with make_client(server) as client:
        with client.query("SELECT *") as result:
            first = next(iter(result))
            assert first.num_rows == 500
        assert "closed" in repr(result)
        started = time.monotonic()
        server.behaviour.delay = 0
        assert client.query("SELECT 1").to_table().num_rows == TABLE.num_rows
        assert time.monotonic() - started < 2


def test_to_reader_streams(server: FlakyFlightServer) -> None:
    with make_client(server) as client:
        reader = client.query("SELECT *").to_reader()
        assert isinstance(reader, pa.RecordBatchReader)
        assert reader.read_all().num_rows == TABLE.num_rows


def test_to_records_guard_names_parquet(server: FlakyFlightServer) -> None:
    with make_client(server) as client, pytest.raises(ResultTooLargeError) as info:
        client.query("SELECT *").to_records(max_rows=100)
    assert "to_parquet()" in str(info.value)
    assert "max_rows=100" in str(info.value)


# --- JSON-safe conversion (pure) -----------------------------------------------------------------


def test_records_are_json_safe() -> None:
    ts = pa.array([0, 1_500_000_123, None], pa.timestamp("ns"))
    batch = pa.record_batch(
        {
            "time": ts,
            "tz": pa.array([0, 1_000, 2_000], pa.timestamp("ms", tz="Europe/Paris")),
            "f": pa.array([1.5, float("nan"), float("inf")]),
            "b": pa.array([b"\x00\x01", None, b""]),
            "d": pa.array(
                [decimal.Decimal("1.10"), None, decimal.Decimal("-2")], pa.decimal128(5, 2)
            ),
            "tag": pa.array(["a", "b", "a"]).dictionary_encode(),
            "sel": pa.array(
                [{"value": 1.0, "time": 5}, None, {"value": None, "time": None}],
                pa.struct([("value", pa.float64()), ("time", pa.timestamp("ns"))]),
            ),
            "day": pa.array([dt.date(2024, 1, 2), None, None]),
            "dur": pa.array([1_500_000_000, None, 0], pa.duration("ns")),
            "l": pa.array([[1.0, float("nan")], None, []]),
        }
    )
    with served(pa.Table.from_batches([batch])) as client:  # over a real Flight peer
        rows = client.query("SELECT *").to_records()
    json.dumps(rows, allow_nan=False)  # strictly valid JSON
    assert rows[0] == {
        "time": "1970-01-01T00:00:00Z",
        "tz": "1970-01-01T00:00:00Z",
        "f": 1.5,
        "b": "AAE=",
        "d": "1.10",
        "tag": "a",
        "sel": {"value": 1.0, "time": "1970-01-01T00:00:00.000000005Z"},
        "day": "2024-01-02",
        "dur": 1.5,
        "l": [1.0, None],
    }
    assert rows[1]["time"] == "1970-01-01T00:00:01.500000123Z"
    assert rows[1]["f"] is None and rows[2]["f"] is None
    assert rows[2]["time"] is None
    assert rows[1]["sel"] is None
    assert rows[2]["tz"] == "1970-01-01T00:00:02Z"
    assert not any(isinstance(v, float) and math.isnan(v) for r in rows for v in r.values())


def test_result_schema_labels_utc_keeps_metadata_and_nested() -> None:
    schema = pa.schema(
        [
            pa.field("time", pa.timestamp("ns")),
            pa.field("s", pa.struct([("time", pa.timestamp("ns")), ("v", pa.float64())])),
            pa.field("z", pa.timestamp("ns", tz="Asia/Tokyo")),
        ],
        metadata={b"iox::influxql::group_key::metadata": b"{}"},
    )
    with served(schema.empty_table()) as client:
        out = client.query("SELECT *").schema
    assert out.field("time").type == pa.timestamp("ns", tz="UTC")
    assert out.field("s").type.field("time").type == pa.timestamp("ns", tz="UTC")
    assert out.field("z").type == pa.timestamp("ns", tz="Asia/Tokyo")  # explicit zones kept
    assert out.metadata == schema.metadata


def test_to_pandas_without_pandas_names_the_extra(
    server: FlakyFlightServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)  # makes `import pandas` fail
    with make_client(server) as client, pytest.raises(ImportError) as info:
        client.query("SELECT *").to_pandas()
    assert "pip install 'influxdb3-orchestration[pandas]'" in str(info.value)
