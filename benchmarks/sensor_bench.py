"""What the core export benchmarks share (not a benchmark itself).

The demo sensor table (2 tags, 3 fields, time) loaded into an in-process stand-in, the raw
``pyarrow.flight`` baseline that every export is compared with, and the loop that runs each
variant in a fresh subprocess, interleaved across repeats so that drift in the machine's load
hits every variant alike.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa

    from influx_flight import InfluxDB3Client
    from influx_flight.server import StandInServer

TOKEN = "apiv3_bench-token"
DATABASE = "bench"
#: Run once by every variant before its timing and memory baseline: lazy imports, the gRPC
#: channel and the server's first-query caches are one-off costs, counted for none of them.
WARM_UP = "SELECT * FROM sensors LIMIT 1"


@contextmanager
def sensor_standin(rows: int) -> Iterator[tuple[StandInServer, Any, int]]:
    """A stand-in holding ``rows`` demo sensor rows: yields (server, DemoSpec, rows loaded).

    Rows go straight into the engine (no WAL). ``query_file_limit=0``: the raw baseline reads
    the whole table in one query, which Core refuses beyond 72 h (432 files) unless started with
    a higher ``--query-file-limit``; the benchmarks measure export paths, not the limit.
    """
    from influx_flight.server import StandInServer
    from influx_flight.server.demo_data import DemoSpec, generate_batches

    spec = DemoSpec.for_points(rows, rooms=10, sensors=10)
    with StandInServer(tokens=[TOKEN], query_file_limit=0) as srv:
        loaded = 0
        for batch in generate_batches(spec):
            srv.engine.append(DATABASE, spec.table, batch, tags=["room", "sensor"])
            loaded += batch.num_rows
        yield srv, spec, loaded


def raw_read_all(uri: str, query: str) -> Callable[[], pa.Table]:
    """The baseline's read: plain ``pyarrow.flight`` ``do_get(ticket).read_all()`` (connection
    set up and warmed with ``WARM_UP`` now, outside any timing)."""
    import pyarrow.flight as flight

    client = flight.FlightClient(uri)
    options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])

    def ticket(sql: str) -> flight.Ticket:
        doc = {"database": DATABASE, "sql_query": sql, "query_type": "sql"}
        return flight.Ticket(json.dumps(doc).encode())

    client.do_get(ticket(WARM_UP), options).read_all()
    the_query = ticket(query)
    return lambda: client.do_get(the_query, options).read_all()


def warm_client(uri: str) -> InfluxDB3Client:
    """An ``InfluxDB3Client`` of the bench database (no deadline), warmed with ``WARM_UP``."""
    from influx_flight import InfluxDB3Client, InfluxDB3Config

    config = InfluxDB3Config(host=uri, database=DATABASE, token=TOKEN, query_timeout=None)
    client = InfluxDB3Client(config)
    client.query(WARM_UP).to_table()
    return client


def interleaved(
    variants: Sequence[str],
    repeats: int,
    run: Callable[[str, int], dict[str, Any]],
    describe: Callable[[dict[str, Any]], str],
) -> dict[str, list[dict[str, Any]]]:
    """``run(variant, repeat)`` for every variant in every repeat, printing ``describe(result)``."""
    runs: dict[str, list[dict[str, Any]]] = {v: [] for v in variants}
    for repeat in range(repeats):
        for variant in variants:
            result = run(variant, repeat)
            runs[variant].append(result)
            print(f"  {variant:<17} run {repeat + 1}: {describe(result)}", flush=True)
    return runs


def save_results(name: str, **fields: Any) -> None:
    """Write ``fields`` plus the machine's facts (versions, cores, load) to results/<name>.json."""
    import os
    import platform
    from datetime import UTC, datetime
    from pathlib import Path

    import pyarrow as pa

    doc = {
        "benchmark": name,
        **fields,
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    path = results / f"{name}.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"saved {path}")
