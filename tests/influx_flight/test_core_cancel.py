"""cancel(), close() and timeout= stop a query that the server keeps computing.

The stand-in runs in a child process: a cancelled ``generate_series`` count keeps its CPU busy
until server-side cancellation lands (issue 13), so the fixture kills the process at the end
instead of waiting for it. Each scenario asserts on the client side only: the call returns
within 2 s of the cancel, deadline or close, while the query alone would take far longer.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from influx_flight import (
    InfluxDB3Client,
    InfluxDB3Error,
    QueryCancelledError,
    QueryTimeoutError,
)
from influx_flight.testing import StandInProcess

#: About 35 s of DataFusion work on an idle core (1e8 rows take ~0.4 s): far above every bound.
SLOW = "SELECT count(*) AS n FROM generate_series(1, 10000000000)"
#: A first batch at once, then a wait for the slow count: blocked *between* batches.
FAST_THEN_SLOW = f"SELECT 1 AS n UNION ALL {SLOW}"
BOUND = 2.0


@pytest.fixture(scope="module")
def slow_server() -> Iterator[dict[str, Any]]:
    # its own process, killed at the end: it is still computing the abandoned queries
    with StandInProcess(without_auth=True) as server:
        config = server.config("slow")
        with InfluxDB3Client(config) as client:
            client.write_lp("m v=1 1\n")
        yield {"config": config}


def _later(seconds: float, action: Any, box: dict[str, float]) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        box["at"] = time.monotonic()
        action()
        box["returned"] = time.monotonic() - box["at"]

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def test_cancel_stops_a_query_waiting_for_its_first_batch(slow_server: dict[str, Any]) -> None:
    client = InfluxDB3Client(slow_server["config"])
    box: dict[str, float] = {}
    thread = _later(1.0, client.cancel, box)
    with pytest.raises(QueryCancelledError, match=r"cancelled by client\.cancel\(\)"):
        client.query(SLOW, timeout=None).to_table()
    ended = time.monotonic() - box["at"]
    thread.join(BOUND)
    assert box["returned"] < BOUND, box  # cancel() itself does not wait for the server
    assert ended < BOUND, f"the query ended {ended:.2f}s after cancel()"
    # cancel() leaves the client usable
    assert client.query("SELECT 1 AS one").to_table().column("one").to_pylist() == [1]
    client.close()


def test_cancel_stops_a_query_blocked_between_batches(slow_server: dict[str, Any]) -> None:
    client = InfluxDB3Client(slow_server["config"])
    batches = iter(client.query(FAST_THEN_SLOW, timeout=None))
    first = next(batches)
    assert first.num_rows >= 1
    box: dict[str, float] = {}
    _later(0.5, client.cancel, box)
    with pytest.raises(QueryCancelledError):
        for _ in batches:
            pass
    ended = time.monotonic() - box["at"]
    assert ended < BOUND, f"the stream ended {ended:.2f}s after cancel()"
    client.close()


def test_deadline_stops_a_slow_query(slow_server: dict[str, Any]) -> None:
    with InfluxDB3Client(slow_server["config"]) as client:
        started = time.monotonic()
        with pytest.raises(QueryTimeoutError, match=r"1 s deadline"):
            client.query(SLOW, timeout=1.0).to_table()
        elapsed = time.monotonic() - started
    assert elapsed < 1.0 + BOUND, f"a 1 s deadline ended the query after {elapsed:.2f}s"


def test_config_query_timeout_is_the_default_deadline(
    slow_server: dict[str, Any], tmp_path: Path
) -> None:
    config = slow_server["config"].with_options(query_timeout=1.0)
    with InfluxDB3Client(config) as client:
        started = time.monotonic()
        with pytest.raises(QueryTimeoutError):
            client.query(SLOW).to_parquet(str(tmp_path / "n.parquet"))
        assert time.monotonic() - started < 1.0 + BOUND
    assert list(tmp_path.iterdir()) == []  # no partial export left behind


def test_close_stops_a_running_query_and_the_client(slow_server: dict[str, Any]) -> None:
    client = InfluxDB3Client(slow_server["config"])
    box: dict[str, float] = {}
    thread = _later(1.0, client.close, box)
    with pytest.raises(QueryCancelledError):
        client.query(SLOW, timeout=None).to_table()
    ended = time.monotonic() - box["at"]
    thread.join(BOUND)
    assert box["returned"] < BOUND, box
    assert ended < BOUND, f"the query ended {ended:.2f}s after close()"
    assert client.closed
    with pytest.raises(InfluxDB3Error, match="is closed"):
        client.query("SELECT 1")
