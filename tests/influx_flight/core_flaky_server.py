"""A tiny real pyarrow Flight server for the core client's failure-path tests.

It is a real gRPC peer on 127.0.0.1 (no mocking): it streams a fixed table as JSON-ticket DoGet
answers and can fail the first N calls, break a stream midway, stream slowly, or interleave
0-row keep-alive batches.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.flight as flight


def sensor_table(
    rows: int, batch_rows: int = 1000, start_ns: int = 1_700_000_000 * 10**9
) -> pa.Table:
    """A deterministic sensor-shaped table (time without tz, like InfluxDB 3)."""
    import numpy as np

    idx = np.arange(rows, dtype=np.int64)
    table = pa.table(
        {
            "room": pa.array(np.where(idx % 2 == 0, "Kitchen", "Living Room")),
            "temp": pa.array(20.0 + (idx % 100) / 10.0),
            "time": pa.array(start_ns + idx * 1_000_000_000, pa.timestamp("ns")),
        }
    )
    return pa.Table.from_batches(table.to_batches(max_chunksize=batch_rows))


class _HeaderMiddleware(flight.ServerMiddleware):
    def __init__(self, headers: dict) -> None:
        self.headers = headers


class HeaderRecorder(flight.ServerMiddlewareFactory):
    def start_call(self, info: flight.CallInfo, headers: dict) -> _HeaderMiddleware:
        return _HeaderMiddleware({k: v for k, v in headers.items()})


@dataclass
class Behaviour:
    fail_first: int = 0  # the first N DoGet calls fail with UNAVAILABLE before streaming
    break_first: int = 0  # the next N calls stream half the batches, then fail UNAVAILABLE
    break_error: type[Exception] = flight.FlightUnavailableError
    delay: float = 0.0  # seconds between batches
    keepalive: bool = False  # interleave 0-row batches
    calls: int = 0
    tickets: list[dict] = field(default_factory=list)
    headers: list[dict] = field(default_factory=list)


class FlakyFlightServer(flight.FlightServerBase):
    def __init__(self, table: pa.Table, behaviour: Behaviour | None = None) -> None:
        super().__init__("grpc+tcp://127.0.0.1:0", middleware={"h": HeaderRecorder()})
        self.table = table
        self.behaviour = behaviour or Behaviour()
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return f"grpc+tcp://127.0.0.1:{self.port}"

    def do_get(
        self, context: flight.ServerCallContext, ticket: flight.Ticket
    ) -> flight.FlightDataStream:
        b = self.behaviour
        with self._lock:
            b.calls += 1
            call = b.calls
            b.tickets.append(json.loads(ticket.ticket))
            b.headers.append(context.get_middleware("h").headers)
        if call <= b.fail_first:
            raise flight.FlightUnavailableError(f"warming up (call {call})")
        breaking = call <= b.fail_first + b.break_first
        if not (breaking or b.keepalive or b.delay):
            # a plain stream: unlike GeneratorStream, it carries dictionary columns (tags)
            return flight.RecordBatchStream(self.table)
        batches = self.table.to_batches()

        def gen() -> Iterator[pa.RecordBatch]:
            for i, batch in enumerate(batches):
                if breaking and i == len(batches) // 2:
                    raise b.break_error(f"connection reset mid-stream (call {call})")
                if b.keepalive:
                    yield batch.slice(0, 0)
                if b.delay:
                    time.sleep(b.delay)
                    if context.is_cancelled():
                        return
                yield batch

        return flight.GeneratorStream(self.table.schema, gen())
