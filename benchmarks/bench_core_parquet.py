"""Query -> Parquet through the core client vs. raw pyarrow.flight and influxdb3-python.

For each size (1M and 10M rows by default), the demo sensor table (2 tags, 3 fields, time) is
loaded into a stand-in (straight into the engine, no WAL) and exported to Parquet (zstd, same
row group size) these ways, each in a fresh subprocess so that memory is measured fairly:

* ``raw`` (the baseline): ``pyarrow.flight`` ``do_get(...).read_all()`` +
  ``pyarrow.parquet.write_table``
* ``encode-only`` (the floor): the same ``write_table`` of a table already in memory; a
  single-file export cannot beat the encoder
* ``client``: ``InfluxDB3Client.query("SELECT * ...").to_parquet(path)`` (streamed, atomic,
  receiving overlapped with encoding on a background thread)
* ``client-serial``: the same stream encoded in the receiving thread (``encode_queue=0``), i.e.
  the export before pipelining
* ``influxdb3-python``: ``InfluxDBClient3.query(mode="pandas")`` + ``DataFrame.to_parquet``

Every variant opens its connection and runs one one-row query before it is measured, so one-off
costs (lazy imports, the gRPC channel) count for none of them. Reported: median wall time and
peak RSS growth above that baseline (sampled every 2 ms by a psutil thread), both as ratios to
raw's in the same run. Targets (issue 14, at the
largest size): client wall <= 0.85x raw, RSS growth <= 0.2x raw. Results go to
``benchmarks/results/bench_core_parquet.json``.

Usage: ``python benchmarks/bench_core_parquet.py [--rows 1000000,10000000] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import sensor_bench as bench

from influx_flight import DEFAULT_ROW_GROUP_SIZE

QUERY = "SELECT * FROM sensors"
VARIANTS = ("raw", "encode-only", "client", "client-serial", "influxdb3-python")
TIME_TARGET = 0.85
MEMORY_TARGET = 0.2
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
    """Run one variant; imports, connection set-up and one warm-up query (``WARM_UP``) happen
    before the baseline is taken, alike for every variant."""
    import pyarrow.parquet as pq

    if variant == "client":
        client = bench.warm_client(flight_uri)

        def run() -> int:
            res = client.query(QUERY).to_parquet(
                out, compression=COMPRESSION, row_group_size=ROW_GROUP
            )
            return res.rows

    elif variant == "client-serial":
        from influx_flight import write_parquet

        client = bench.warm_client(flight_uri)

        def run() -> int:
            result = client.query(QUERY)
            res = result.consume(
                lambda batches, schema: write_parquet(
                    batches,
                    schema,
                    out,
                    compression=COMPRESSION,
                    row_group_size=ROW_GROUP,
                    encode_queue=0,
                )
            )
            return res.rows

    elif variant in ("raw", "encode-only"):
        read_all = bench.raw_read_all(flight_uri, QUERY)
        in_memory = read_all() if variant == "encode-only" else None

        def run() -> int:
            table = in_memory if in_memory is not None else read_all()
            pq.write_table(table, out, compression=COMPRESSION, row_group_size=ROW_GROUP)
            return table.num_rows

    elif variant == "influxdb3-python":
        import pandas  # noqa: F401 - imported before the baseline, like the others' modules
        from influxdb_client_3 import InfluxDBClient3

        port = flight_uri.rsplit(":", 1)[1]
        ic = InfluxDBClient3(
            host=f"http://127.0.0.1:{port}", database=bench.DATABASE, token=bench.TOKEN
        )
        ic.query(bench.WARM_UP)

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


def measure(rows: int, repeats: int, tmp: Path) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """Load ``rows`` into a fresh stand-in and run every variant ``repeats`` times."""
    with bench.sensor_standin(rows) as (srv, _spec, loaded):
        print(f"loaded {loaded:,} rows into the stand-in; {repeats} repeat(s) per variant")
        runs = bench.interleaved(
            VARIANTS,
            repeats,
            lambda variant, repeat: run_child(variant, srv.flight_uri, tmp, repeat),
            lambda r: f"{r['seconds']:6.2f} s, RSS +{r['rss_growth'] / 2**20:8.1f} MiB",
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
        s["memory_ratio_vs_raw"] = s["rss_growth_mib"] / max(raw["rss_growth_mib"], 1e-9)

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
        "rows": loaded,
        "time_ratio": round(client["time_ratio_vs_raw"], 3),
        "time_target": TIME_TARGET,
        "time_ok": client["time_ratio_vs_raw"] <= TIME_TARGET,
        "memory_ratio": round(client["memory_ratio_vs_raw"], 3),
        "memory_target": MEMORY_TARGET,
        "memory_ok": client["memory_ratio_vs_raw"] <= MEMORY_TARGET,
        "encode_floor_ratio": round(summary["encode-only"]["time_ratio_vs_raw"], 3),
        "serial_ratio": round(summary["client-serial"]["time_ratio_vs_raw"], 3),
        "speedup_vs_influxdb3_python": round(
            summary["influxdb3-python"]["seconds"] / client["seconds"], 2
        ),
    }
    print(
        f"{loaded:,} rows, client vs raw (same run): wall x{verdict['time_ratio']} (target <= "
        f"{TIME_TARGET}: {'ok' if verdict['time_ok'] else 'MISSED'}; encode-only floor "
        f"x{verdict['encode_floor_ratio']}, unpipelined x{verdict['serial_ratio']}), RSS growth "
        f"x{verdict['memory_ratio']} (target <= {MEMORY_TARGET}: "
        f"{'ok' if verdict['memory_ok'] else 'MISSED'}); "
        f"{verdict['speedup_vs_influxdb3_python']}x faster than influxdb3-python pandas",
        flush=True,
    )
    return loaded, {"summary": summary, "verdict": verdict}, runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000000,10000000", help="comma-separated sizes")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--uri")
    parser.add_argument("--out")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.uri, args.out)))
        return

    sizes = [int(x) for x in str(args.rows).replace("_", "").split(",") if x.strip()]
    results: dict[str, Any] = {}
    all_runs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmpdir:
        for rows in sizes:
            print(f"\n--- {rows:,} rows", flush=True)
            loaded, result, runs = measure(rows, args.repeats, Path(tmpdir))
            results[str(loaded)] = result
            all_runs[str(loaded)] = runs
    print()
    for key, result in results.items():
        v = result["verdict"]
        print(
            f"TARGET parquet export {int(key):>12,} rows: wall {v['time_ratio']:.2f}x raw "
            f"(<= {TIME_TARGET}: {'ok' if v['time_ok'] else 'MISSED'}), RSS growth "
            f"{v['memory_ratio']:.2f}x raw (<= {MEMORY_TARGET}: "
            f"{'ok' if v['memory_ok'] else 'MISSED'}), encode-only floor "
            f"{v['encode_floor_ratio']:.2f}x"
        )
    bench.save_results(
        "bench_core_parquet",
        sizes=sizes,
        repeats=args.repeats,
        query=QUERY,
        compression=COMPRESSION,
        row_group_size=ROW_GROUP,
        results=results,
        runs=all_runs,
    )


if __name__ == "__main__":
    main()
