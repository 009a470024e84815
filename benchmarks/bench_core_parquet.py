"""Query -> Parquet through the core client vs. raw pyarrow.flight and influxdb3-python.

N rows of the demo sensor table (2 tags, 3 fields, time) are loaded into a stand-in (straight
into the engine, no WAL) and exported to Parquet (zstd, same row group size) three ways, each in
a fresh subprocess so that memory is measured fairly:

* ``client``: ``InfluxDB3Client.query("SELECT * ...").to_parquet(path)`` (streamed, atomic)
* ``raw``: ``pyarrow.flight`` ``do_get(...).read_all()`` + ``pyarrow.parquet.write_table`` (the
  baseline)
* ``influxdb3-python``: ``InfluxDBClient3.query(mode="pandas")`` + ``DataFrame.to_parquet``

Reported: median wall time, time ratio vs. raw (target <= 1.2) and peak RSS growth above the
post-import baseline, sampled every 2 ms by a psutil thread (target: the client's growth at most
a quarter of raw's). Results go to ``benchmarks/results/bench_core_parquet.json``.

Usage: ``python benchmarks/bench_core_parquet.py [--rows 10000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from influx_flight._sinks import DEFAULT_ROW_GROUP_SIZE

RESULTS = Path(__file__).resolve().parent / "results"
TOKEN = "apiv3_bench-token"
DATABASE = "bench"
QUERY = "SELECT * FROM sensors"
VARIANTS = ("raw", "client", "influxdb3-python")
COMPRESSION = "zstd"
ROW_GROUP = DEFAULT_ROW_GROUP_SIZE  # every variant writes row groups of the core's default size


# --- child: one export, measured ------------------------------------------------------------------


class PeakRss:
    """Samples this process's RSS in a thread; ``peak`` is the maximum seen."""

    def __init__(self, interval: float = 0.002) -> None:
        import psutil

        self._proc = psutil.Process()
        self.interval = interval
        self.baseline = self._proc.memory_info().rss
        self.peak = self.baseline
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._proc.memory_info().rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)


def child(variant: str, flight_uri: str, out: str) -> dict[str, Any]:
    """Run one variant; imports and connection setup happen before the baseline is taken."""
    import pyarrow.parquet as pq

    if variant == "client":
        from influx_flight import InfluxDB3Client, InfluxDB3Config

        client = InfluxDB3Client(
            InfluxDB3Config(host=flight_uri, database=DATABASE, token=TOKEN, query_timeout=None)
        )

        def run() -> int:
            res = client.query(QUERY).to_parquet(
                out, compression=COMPRESSION, row_group_size=ROW_GROUP
            )
            return res.rows

    elif variant == "raw":
        import pyarrow.flight as flight

        fc = flight.FlightClient(flight_uri)
        ticket = flight.Ticket(
            json.dumps({"database": DATABASE, "sql_query": QUERY, "query_type": "sql"}).encode()
        )
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])

        def run() -> int:
            table = fc.do_get(ticket, options).read_all()
            pq.write_table(table, out, compression=COMPRESSION, row_group_size=ROW_GROUP)
            return table.num_rows

    elif variant == "influxdb3-python":
        import pandas  # noqa: F401 - imported before the baseline, like the others' modules
        from influxdb_client_3 import InfluxDBClient3

        port = flight_uri.rsplit(":", 1)[1]
        ic = InfluxDBClient3(host=f"http://127.0.0.1:{port}", database=DATABASE, token=TOKEN)

        def run() -> int:
            df = ic.query(QUERY, mode="pandas")
            df.to_parquet(out, compression=COMPRESSION, row_group_size=ROW_GROUP)
            return len(df)

    else:
        raise SystemExit(f"unknown variant {variant!r}")

    with PeakRss() as rss:
        started = time.perf_counter()
        rows = run()
        seconds = time.perf_counter() - started
    written = pq.ParquetFile(out).metadata.num_rows
    if written != rows:
        raise SystemExit(f"{variant}: wrote {written} rows, expected {rows}")
    return {
        "variant": variant,
        "rows": rows,
        "seconds": seconds,
        "rss_baseline": rss.baseline,
        "rss_peak": rss.peak,
        "rss_growth": rss.peak - rss.baseline,
        "file_bytes": os.path.getsize(out),
    }


# --- parent: server, loop, report -----------------------------------------------------------------


def run_child(variant: str, flight_uri: str, tmp: Path, repeat: int) -> dict[str, Any]:
    out = tmp / f"{variant}-{repeat}.parquet"
    proc = subprocess.run(
        [sys.executable, __file__, "--child", variant, "--uri", flight_uri, "--out", str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed:\n{proc.stderr}")
    out.unlink(missing_ok=True)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--uri")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.uri, args.out)))
        return

    import pyarrow as pa

    from influx_flight.server import StandInServer
    from influx_flight.server.demo_data import DemoSpec, generate_batches

    spec = DemoSpec.for_points(args.rows, rooms=10, sensors=10)
    with StandInServer(tokens=[TOKEN]) as srv, tempfile.TemporaryDirectory() as tmpdir:
        loaded = 0
        for batch in generate_batches(spec):
            srv.engine.append(DATABASE, spec.table, batch, tags=["room", "sensor"])
            loaded += batch.num_rows
        print(f"loaded {loaded:,} rows into the stand-in; {args.repeats} repeat(s) per variant")
        runs: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
        for repeat in range(args.repeats):  # interleaved, so drift hits every variant alike
            for variant in VARIANTS:
                r = run_child(variant, srv.flight_uri, Path(tmpdir), repeat)
                runs[variant].append(r)
                print(
                    f"  {variant:<17} run {repeat + 1}: {r['seconds']:6.2f} s, "
                    f"RSS +{r['rss_growth'] / 2**20:8.1f} MiB",
                    flush=True,
                )

    summary: dict[str, dict[str, float]] = {}
    for variant, items in runs.items():
        summary[variant] = {
            "seconds": statistics.median(r["seconds"] for r in items),
            "rss_growth_mib": statistics.median(r["rss_growth"] for r in items) / 2**20,
            "rows_per_s": statistics.median(r["rows"] / r["seconds"] for r in items),
            "file_mib": statistics.median(r["file_bytes"] for r in items) / 2**20,
        }
    raw = summary["raw"]
    for s in summary.values():
        s["time_ratio_vs_raw"] = s["seconds"] / raw["seconds"]
        s["memory_ratio_vs_raw"] = s["rss_growth_mib"] / raw["rss_growth_mib"]

    print()
    print(
        f"{'variant':<18}{'median s':>10}{'M rows/s':>10}{'time/raw':>10}"
        f"{'RSS growth MiB':>16}{'mem/raw':>9}{'file MiB':>10}"
    )
    for variant, s in summary.items():
        print(
            f"{variant:<18}{s['seconds']:>10.2f}{s['rows_per_s'] / 1e6:>10.2f}"
            f"{s['time_ratio_vs_raw']:>10.2f}{s['rss_growth_mib']:>16.1f}"
            f"{s['memory_ratio_vs_raw']:>9.2f}{s['file_mib']:>10.1f}"
        )
    client = summary["client"]
    verdict = {
        "time_ratio": round(client["time_ratio_vs_raw"], 3),
        "time_target": 1.2,
        "time_ok": client["time_ratio_vs_raw"] <= 1.2,
        "memory_ratio": round(client["memory_ratio_vs_raw"], 3),
        "memory_target": 0.25,
        "memory_ok": client["memory_ratio_vs_raw"] <= 0.25,
        "speedup_vs_influxdb3_python": round(
            summary["influxdb3-python"]["seconds"] / client["seconds"], 2
        ),
        "memory_vs_influxdb3_python": round(
            client["rss_growth_mib"] / summary["influxdb3-python"]["rss_growth_mib"], 3
        ),
    }
    print()
    print(
        f"client vs raw: time x{verdict['time_ratio']} (target <= 1.2: "
        f"{'ok' if verdict['time_ok'] else 'MISSED'}), memory growth x{verdict['memory_ratio']} "
        f"(target <= 0.25: {'ok' if verdict['memory_ok'] else 'MISSED'}); "
        f"{verdict['speedup_vs_influxdb3_python']}x faster than influxdb3-python pandas"
    )
    RESULTS.mkdir(exist_ok=True)
    doc = {
        "benchmark": "bench_core_parquet",
        "rows": loaded,
        "repeats": args.repeats,
        "query": QUERY,
        "compression": COMPRESSION,
        "row_group_size": ROW_GROUP,
        "summary": summary,
        "verdict": verdict,
        "runs": runs,
        "python": platform.python_version(),
        "pyarrow": pa.__version__,
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "when": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    path = RESULTS / "bench_core_parquet.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"saved {path}")


if __name__ == "__main__":
    main()
