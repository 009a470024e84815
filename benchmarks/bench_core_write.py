"""Write-side benchmarks of influx_flight, baselines measured in the same run.

(b) Line-protocol encoding of an N-row frame (time, 2 tags, 3 fields: float, int, string):
    ``influx_flight._lineprotocol.encode_table`` (pyarrow.compute, vectorised) vs.
    influxdb3-python's ``DataframeSerializer`` (what ``InfluxDBClient3.write(record=df,
    data_frame_measurement_name=..., data_frame_tag_columns=[...])`` runs). Target: >= 5x the
    serializer's rows/s. Both outputs are checked to describe the same points.
(c) End-to-end write-back points/s (median of ``--repeats`` runs) into a stand-in server (started here, Core's 1 s WAL flush by
    default) with ``client.write`` at concurrency 1 (the baseline), 4 and 8 (8 MiB and 1 MiB bodies, gzip;
    target >= 300k points/s; the stand-in runs in its own process), of rows shaped
    like a downsampling job's output (bucket time, 2 tags, 3 numeric fields).

Prints a table and saves ``benchmarks/results/bench_core_write.json``.

Usage: ``python benchmarks/bench_core_write.py [--rows 1000000] [--write-rows 500000]
[--repeats 3] [--wal-flush 1.0]``
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from influx_flight import DEFAULT_MAX_BODY_BYTES, NO_RETRY, InfluxDB3Client, InfluxDB3Config
from influx_flight._lineprotocol import encode_table

RESULTS = Path(__file__).resolve().parent / "results"
MEASUREMENT = "cpu"
TAGS = ["host", "region"]


def make_table(rows: int, seed: int = 3, start_s: int = 1_700_000_000) -> pa.Table:
    """time (1 s steps), host and region tags, usage (float), procs (int), state (string)."""
    rng = np.random.default_rng(seed)
    hosts = np.array([f"server-{i:02d}" for i in range(50)])
    regions = np.array(["us-east", "eu-west", "ap south"])  # one value needs escaping
    return pa.table(
        {
            "time": pa.array(
                (start_s + np.arange(rows, dtype=np.int64)) * 10**9, pa.timestamp("ns", tz="UTC")
            ),
            "host": pa.array(hosts[rng.integers(0, len(hosts), rows)]),
            "region": pa.array(regions[rng.integers(0, len(regions), rows)]),
            "usage": rng.random(rows) * 100,
            "procs": rng.integers(0, 500, rows),
            "state": pa.array(np.array(["ok", "warn", "crit"])[rng.integers(0, 3, rows)]),
        }
    )


def make_downsampled(rows: int, seed: int = 5, start_s: int = 1_700_000_000) -> pa.Table:
    """What write-back of a downsampling job sends: bucket time, 2 tags, 3 numeric fields."""
    rng = np.random.default_rng(seed)
    hosts = np.array([f"server-{i:02d}" for i in range(50)])
    regions = np.array(["us-east", "eu-west", "ap-south"])
    return pa.table(
        {
            "time": pa.array(
                (start_s + np.arange(rows, dtype=np.int64) * 60) * 10**9, pa.timestamp("ns")
            ),
            "host": pa.array(hosts[rng.integers(0, len(hosts), rows)]),
            "region": pa.array(regions[rng.integers(0, len(regions), rows)]),
            "usage_mean": rng.random(rows) * 100,
            "usage_max": rng.random(rows) * 100,
            "usage_count": rng.integers(1, 60, rows),
        }
    )


def _best(fn: Any, repeats: int) -> tuple[float, Any]:
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def bench_encoding(rows: int, repeats: int) -> dict[str, Any]:
    from influxdb_client_3.write_client.client.write.dataframe_serializer import (
        DataframeSerializer,
    )
    from influxdb_client_3.write_client.client.write_api import PointSettings

    table = make_table(rows)
    df = table.to_pandas()

    def ours_from_frame() -> Any:
        # the same input as the baseline: a pandas DataFrame (converted with from_pandas)
        enc = encode_table(df, measurement=MEASUREMENT, tags=TAGS)
        return enc, [bytes(b.data) for b in enc.split(8 * 1024 * 1024)]

    def ours_from_arrow() -> Any:
        return encode_table(table, measurement=MEASUREMENT, tags=TAGS)

    def theirs() -> list[str]:
        ser = DataframeSerializer(
            df,
            PointSettings(),
            "ns",
            data_frame_measurement_name=MEASUREMENT,
            data_frame_tag_columns=TAGS,
            data_frame_timestamp_column="time",
        )
        return ser.serialize()

    # Interleaved, so that both see the same machine load; best of each.
    times: dict[str, list[float]] = {"frame": [], "arrow": [], "theirs": []}
    enc = bodies = lines = None
    for _ in range(repeats):
        t, (enc, bodies) = _best(ours_from_frame, 1)
        times["frame"].append(t)
        times["arrow"].append(_best(ours_from_arrow, 1)[0])
        t, lines = _best(theirs, 1)
        times["theirs"].append(t)
    t_ours, t_arrow, t_theirs = (min(times[k]) for k in ("frame", "arrow", "theirs"))
    # Same points: compare a sample of lines after parsing (field order may differ).
    from line_protocol_parser import parse_line

    ours_lines = enc.lines()
    assert len(ours_lines) == len(lines) == rows
    for i in np.linspace(0, rows - 1, 200).astype(int):
        a, b = parse_line(ours_lines[i]), parse_line(lines[i])
        assert a["tags"] == b["tags"] and a["time"] == b["time"], (ours_lines[i], lines[i])
        assert a["fields"] == b["fields"], (ours_lines[i], lines[i])
    return {
        "rows": rows,
        "influx_flight_s": t_ours,
        "influx_flight_rows_per_s": rows / t_ours,
        "influxdb3_python_s": t_theirs,
        "influxdb3_python_rows_per_s": rows / t_theirs,
        "speedup": t_theirs / t_ours,
        "influx_flight_from_arrow_s": t_arrow,
        "influx_flight_from_arrow_rows_per_s": rows / t_arrow,
        "speedup_from_arrow": t_theirs / t_arrow,
        "all_times_s": times,
        "bytes_per_row": enc.nbytes / rows,
        "bodies_8mib": len(bodies),
    }


CONCURRENCIES = (1, 4, 8)
TARGET_POINTS_PER_S = 300_000


@contextlib.contextmanager
def standin_process(wal_flush: float) -> Iterator[dict[str, str]]:
    """A stand-in in its own process (`influx-flight serve`), so that the server's parsing does
    not share this process's GIL with the client's encoding; yields its settings."""
    with tempfile.TemporaryDirectory() as tmp:
        ready = Path(tmp) / "ready.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "influx_flight.cli", "serve", "--port", "0", "--http-port",
             "0", "--token", "apiv3_bench", "--wal-flush-interval", str(wal_flush),
             "--ready-file", str(ready)],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 120
            while not ready.exists():
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the stand-in did not start")
                time.sleep(0.1)
            yield json.loads(ready.read_text())
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def bench_write(
    rows: int, wal_flush: float, repeats: int, body_bytes: int, data: str = "downsampled"
) -> list[dict[str, Any]]:
    out = []
    with standin_process(wal_flush) as srv:
        # A generous timeout: the stand-in parses in Python, so 8 MiB bodies sent four at a time
        # on a small machine can take longer than the default 30 s to be acknowledged.
        cfg = InfluxDB3Config(
            host=srv["flight_uri"],
            database="bench",
            token="apiv3_bench",
            write_url=srv["http_url"],
            write_timeout=600.0,
        )
        client = InfluxDB3Client(cfg, retry_policy=NO_RETRY)  # one pool for every run
        for concurrency in CONCURRENCIES:
            times = []
            result = None
            for rep in range(repeats):
                # a fresh time range per run so every run stores new points
                make = make_downsampled if data == "downsampled" else make_table
                table = make(rows, seed=rep, start_s=1_700_000_000 + rep * rows * 120)
                t0 = time.perf_counter()
                result = client.write(
                    table,
                    measurement=f"cpu_c{concurrency}",
                    tags=TAGS,
                    concurrency=concurrency,
                    max_body_bytes=body_bytes,
                )
                times.append(time.perf_counter() - t0)
                assert result.lines_written == rows
            median = statistics.median(times)
            out.append(
                {
                    "concurrency": concurrency,
                    "rows": rows,
                    "best_s": min(times),
                    "median_s": median,
                    "all_s": times,
                    "points_per_s": rows / median,  # the median run: the shared machine varies
                    "best_points_per_s": rows / min(times),
                    "requests": result.requests if result else 0,
                    "bytes_sent": result.bytes_sent if result else 0,
                    "bytes_encoded": result.bytes_encoded if result else 0,
                    "wal_flush_interval_s": wal_flush,
                    "max_body_bytes": body_bytes,
                    "data": data,
                }
            )
        client.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--write-rows", type=int, default=500_000)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--wal-flush", type=float, default=1.0)
    ap.add_argument(
        "--body-bytes",
        type=int,
        nargs="+",
        default=[DEFAULT_MAX_BODY_BYTES, 1024 * 1024],
        help="request body limits to measure (default: 8 MiB, the default, and 1 MiB)",
    )
    ap.add_argument(
        "--write-data",
        choices=["downsampled", "mixed"],
        default="downsampled",
        help="(c) data: numeric bucket rows (default) or the (b) table with a string field, "
        "which the stand-in parses on its slower per-line path",
    )
    args = ap.parse_args()

    enc = bench_encoding(args.rows, args.repeats)
    print(
        f"(b) {enc['rows']:,} rows: influx_flight {enc['influx_flight_rows_per_s']:,.0f} rows/s, "
        f"influxdb3-python {enc['influxdb3_python_rows_per_s']:,.0f} rows/s",
        flush=True,
    )
    writes = [
        w
        for body_bytes in args.body_bytes
        for w in bench_write(
            args.write_rows, args.wal_flush, args.repeats, body_bytes, args.write_data
        )
    ]
    print(f"\n(b) line-protocol encoding, {enc['rows']:,} rows (time, 2 tags, 3 fields)")
    print(f"{'encoder':<34}{'seconds':>10}{'rows/s':>14}")
    print(
        f"{'influx_flight encode_table(df)':<34}{enc['influx_flight_s']:>10.3f}"
        f"{enc['influx_flight_rows_per_s']:>14,.0f}"
    )
    print(
        f"{'influxdb3-python DataframeSerializer':<34}{enc['influxdb3_python_s']:>10.3f}"
        f"{enc['influxdb3_python_rows_per_s']:>14,.0f}"
    )
    print(
        f"{'influx_flight from an Arrow table':<34}{enc['influx_flight_from_arrow_s']:>10.3f}"
        f"{enc['influx_flight_from_arrow_rows_per_s']:>14,.0f}"
    )
    print(
        f"speedup: {enc['speedup']:.1f}x from the same DataFrame (target >= 5x), "
        f"{enc['speedup_from_arrow']:.1f}x from Arrow; {enc['bytes_per_row']:.0f} B/row"
    )
    print(
        f"\n(c) write-back into the stand-in, {args.write_rows:,} points, "
        f"{args.write_data} rows, WAL flush {args.wal_flush}s"
    )
    print(
        f"{'body limit':>12}{'concurrency':>13}{'median s':>10}{'points/s':>14}"
        f"{'best pts/s':>14}{'requests':>10}"
    )
    for w in writes:
        print(
            f"{w['max_body_bytes']:>12,}{w['concurrency']:>13}{w['median_s']:>10.3f}"
            f"{w['points_per_s']:>14,.0f}{w['best_points_per_s']:>14,.0f}{w['requests']:>10}"
        )
    n = len(CONCURRENCIES)
    verdicts = []
    for i in range(0, len(writes), n):
        group = writes[i : i + n]
        one = group[0]
        best = max(group, key=lambda w: w["points_per_s"])
        verdicts.append(
            {
                "max_body_bytes": one["max_body_bytes"],
                "baseline_points_per_s": one["points_per_s"],
                "best_points_per_s": best["points_per_s"],
                "best_concurrency": best["concurrency"],
                "ok": best["points_per_s"] >= TARGET_POINTS_PER_S,
            }
        )
        print(
            f"TARGET write-back, bodies <= {one['max_body_bytes']:,} B: "
            f"{best['points_per_s']:,.0f} points/s (median of {args.repeats}) at concurrency "
            f"{best['concurrency']} "
            f"(>= {TARGET_POINTS_PER_S:,}: {'ok' if verdicts[-1]['ok'] else 'MISSED'}); "
            f"same-run baseline concurrency 1: {one['points_per_s']:,.0f} points/s "
            f"({best['points_per_s'] / one['points_per_s']:.2f}x); load average "
            f"{os.getloadavg()[0]:.1f}"
        )
    RESULTS.mkdir(parents=True, exist_ok=True)
    doc = {
        "benchmark": "bench_core_write",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count()},
        "load_average_at_end": os.getloadavg(),
        "versions": {"pyarrow": pa.__version__, "pandas": pd.__version__},
        "encoding": enc,
        "write_back": writes,
        "write_back_target_points_per_s": TARGET_POINTS_PER_S,
        "write_back_verdicts": verdicts,
    }
    path = RESULTS / "bench_core_write.json"
    path.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nsaved {path}")


if __name__ == "__main__":
    main()
