"""DoGet throughput of the stand-in vs. a bare pyarrow Flight server, measured in the same run.

``SELECT *`` of N rows (time, 2 tags, 3 float fields; synthetic, vectorised) is fetched
through the stand-in's JSON-ticket DoGet (auth on, DataFusion planning, tag hydration) on its
shared Flight + HTTP port (as a client of Core's port 8181 would; ``--split-port`` measures
the Flight server's own port instead) and
from a bare ``pyarrow.flight`` server streaming the same rows as an in-memory, already hydrated
table. Both are read by the same pyarrow client, batch by batch. The target is a ratio of at
least 0.8. Results go to ``benchmarks/results/bench_server_doget.json``.

Usage: ``python benchmarks/bench_server_doget.py [--rows 10000000] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.flight as flight

from influx_flight.server import StandInServer

RESULTS = Path(__file__).resolve().parent / "results"


def make_table(rows: int, seed: int = 7) -> pa.Table:
    """time (10 s steps), room and sensor tags (dictionary), three float fields."""
    rng = np.random.default_rng(seed)
    rooms = pa.array([f"room-{i:02d}" for i in range(20)])
    sensors = pa.array([f"sensor-{i:03d}" for i in range(100)])
    start = 1_700_000_000 * 10**9
    return pa.table(
        {
            "co": rng.random(rows) * 10,
            "hum": rng.random(rows) * 100,
            "room": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, len(rooms), rows, dtype=np.int32)), rooms
            ),
            "sensor": pa.DictionaryArray.from_arrays(
                pa.array(rng.integers(0, len(sensors), rows, dtype=np.int32)), sensors
            ),
            "temp": rng.normal(21.0, 2.0, rows),
            "time": pa.array(start + np.arange(rows, dtype=np.int64) * 10**10, pa.timestamp("ns")),
        }
    )


class BareServer(flight.FlightServerBase):
    """The baseline: streams one in-memory table for any ticket."""

    def __init__(self, table: pa.Table) -> None:
        super().__init__("grpc+tcp://127.0.0.1:0")
        self.table = table

    def do_get(self, context: flight.ServerCallContext, ticket: flight.Ticket) -> Any:
        return flight.RecordBatchStream(self.table)


def drain(
    client: flight.FlightClient, ticket: flight.Ticket, options: Any
) -> tuple[int, float, float]:
    """Rows received, wall seconds and process CPU seconds, reading chunk by chunk.

    Server and client share this process, so CPU seconds are the whole cost of one transfer
    and are less disturbed than wall time by other work on a busy machine.
    """
    started, cpu_started = time.perf_counter(), time.process_time()
    reader = client.do_get(ticket, options)
    rows = 0
    for chunk in reader:
        rows += chunk.data.num_rows
    return rows, time.perf_counter() - started, time.process_time() - cpu_started


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the benchmark; returns the saved result (``argv`` as for the command line)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--append-batch", type=int, default=1_000_000)
    parser.add_argument("--bare-batch", type=int, default=32_768)
    parser.add_argument(
        "--split-port", action="store_true", help="HTTP on its own port, Flight on --port"
    )
    args = parser.parse_args(argv)

    t0 = time.perf_counter()
    table = make_table(args.rows)
    hydrated = table.cast(
        pa.schema(
            [f.with_type(pa.utf8()) if pa.types.is_dictionary(f.type) else f for f in table.schema]
        )
    )
    # The baseline streams the batch size the stand-in sends for pure scans (32768 rows, about
    # 2 MiB); a single 10M-row batch is far slower for pyarrow Flight, 8192 rows about the same.
    hydrated = pa.Table.from_batches(hydrated.to_batches(max_chunksize=args.bare_batch))
    print(f"generated {args.rows:,} rows in {time.perf_counter() - t0:.1f}s")

    # 10M rows at 10 s steps span three years: far over Core's file limit, which this
    # throughput measurement turns off (a production query would carry a time bound).
    split = {"http_port": 0} if args.split_port else {}
    with StandInServer(tokens=["bench-token"], query_file_limit=0, **split) as server:
        print(f"stand-in Flight at {server.flight_uri} (shared port: {server.shared_port})")
        t0 = time.perf_counter()
        for batch in table.to_batches(max_chunksize=args.append_batch):
            server.engine.append("bench", "sensors", batch)
        print(f"appended to the stand-in in {time.perf_counter() - t0:.1f}s")
        bare = BareServer(hydrated)
        try:
            standin_client = flight.FlightClient(server.flight_uri)
            bare_client = flight.FlightClient(f"grpc+tcp://127.0.0.1:{bare.port}")
            options = flight.FlightCallOptions(headers=[(b"authorization", b"Bearer bench-token")])
            ticket = flight.Ticket(
                json.dumps({"database": "bench", "sql_query": "SELECT * FROM sensors"})
            )
            schema = standin_client.do_get(ticket, options).schema
            assert (
                schema == hydrated.schema.remove_metadata() or schema.names == hydrated.schema.names
            )
            standin_times: list[float] = []
            bare_times: list[float] = []
            standin_cpu: list[float] = []
            bare_cpu: list[float] = []
            # warm-up (the stand-in's first SELECT * also fills its hydrated-batch cache)
            drain(bare_client, flight.Ticket(b"x"), flight.FlightCallOptions())
            drain(standin_client, ticket, options)
            # For information: the general DataFusion path (a filter keeping every row, so the
            # cached pure-scan shortcut does not apply and tags are cast per query).
            filtered = flight.Ticket(
                json.dumps(
                    {
                        "database": "bench",
                        "sql_query": "SELECT * FROM sensors WHERE time >= '2000-01-01T00:00:00Z'",
                    }
                )
            )
            filtered_times: list[float] = []
            for _ in range(args.repeats):
                rows, seconds, cpu = drain(
                    bare_client, flight.Ticket(b"x"), flight.FlightCallOptions()
                )
                assert rows == args.rows
                bare_times.append(seconds)
                bare_cpu.append(cpu)
                rows, seconds, cpu = drain(standin_client, ticket, options)
                assert rows == args.rows, rows
                standin_times.append(seconds)
                standin_cpu.append(cpu)
                rows, seconds, _cpu = drain(standin_client, filtered, options)
                assert rows == args.rows, rows
                filtered_times.append(seconds)
        finally:
            bare.shutdown()

    # Runs are interleaved. Other processes share this 2-core machine, so the headline ratio
    # uses medians (one lucky run of either side does not decide it); best-of-N and the CPU
    # seconds per transfer (server and client both live in this process) are shown too.
    bare_rps = args.rows / statistics.median(bare_times)
    standin_rps = args.rows / statistics.median(standin_times)
    ratio = standin_rps / bare_rps
    best_ratio = min(bare_times) / min(standin_times)
    cpu_ratio = statistics.median(bare_cpu) / statistics.median(standin_cpu)
    print(
        f"bare pyarrow Flight: {bare_rps:,.0f} rows/s  (runs: {[round(t, 2) for t in bare_times]} s)"
    )
    print(
        f"stand-in DoGet:      {standin_rps:,.0f} rows/s  (runs: {[round(t, 2) for t in standin_times]} s)"
    )
    print(f"ratio stand-in / bare: {ratio:.2f} (medians), {best_ratio:.2f} best-of-{args.repeats}")
    print(
        f"CPU seconds per transfer: bare {statistics.median(bare_cpu):.2f},"
        f" stand-in {statistics.median(standin_cpu):.2f} (ratio {cpu_ratio:.2f})"
    )
    filtered_rps = args.rows / statistics.median(filtered_times)
    print(
        f"stand-in DoGet through DataFusion (WHERE keeping all rows): {filtered_rps:,.0f} rows/s"
        f" ({filtered_rps / bare_rps:.2f} of bare)"
    )
    print("target >= 0.80")
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_server_doget.json"
    result = {
        "benchmark": "bench_server_doget",
        "rows": args.rows,
        "repeats": args.repeats,
        "bare_rows_per_s": round(bare_rps),
        "standin_rows_per_s": round(standin_rps),
        "ratio": round(ratio, 3),
        "shared_port": not args.split_port,
        "best_of_ratio": round(best_ratio, 3),
        "cpu_ratio": round(cpu_ratio, 3),
        "datafusion_path_rows_per_s": round(filtered_rps),
        "datafusion_path_seconds": filtered_times,
        "bare_cpu_seconds": bare_cpu,
        "standin_cpu_seconds": standin_cpu,
        "target_ratio": 0.8,
        "bare_seconds": bare_times,
        "standin_seconds": standin_times,
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "machine": platform.machine(),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {out}")
    return result


if __name__ == "__main__":
    main()
