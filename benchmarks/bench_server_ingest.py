"""Line-protocol ingest of the stand-in server, baselines measured in the same run.

(a) Parse-only lines/s of typical sensor lines
    (``home,room=Kitchen temp=21.1,hum=35.9,co=0i 1641024000``) into per-table Arrow record
    batches: ``influx_flight.server.line_protocol`` (``parse`` + ``resolve``) vs. the PyPI
    package ``line-protocol-parser`` (a C extension, one ``parse_line`` call per line) followed by
    building the same Arrow columns from its dicts. Floor: 300k lines/s. The full-grammar slow
    path (escapes and quoted strings) is measured too.
(b) Grammar coverage of ``line-protocol-parser`` against InfluxDB 3's rules (the reason the
    server has its own parser): integer vs unsigned vs float typing, error reporting, escapes.
(c) End-to-end HTTP lines/s: 10 MiB ``/api/v3/write_lp`` bodies posted to a stand-in (Core's 1 s
    WAL flush by default; in memory and with a data dir) with 1 and 4 concurrent writers,
    plain and gzip.

Prints a table and saves ``benchmarks/results/bench_server_ingest.json``.

Usage: ``python benchmarks/bench_server_ingest.py [--lines 1000000] [--repeats 3]
[--wal-flush 1.0] [--http-lines 2000000]``
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from influx_flight.server.line_protocol import parse, resolve

RESULTS = Path(__file__).resolve().parent / "results"
MAX_BODY = 10 * 1024 * 1024
ROOMS = ["Kitchen", "Living\\ Room", "Bedroom", "Office", "Garage", "Attic", "Hall", "Bath"]


def sensor_lines(n: int, seed: int = 1, escaped: bool = False) -> list[str]:
    rng = np.random.default_rng(seed)
    temp = np.round(rng.normal(21, 2, n), 1)
    hum = np.round(rng.normal(36, 3, n), 1)
    co = rng.integers(0, 30, n)
    # the typical line has no escapes; `escaped` uses home.lp's `Living\ Room` style tags
    rooms = ROOMS if escaped else [r.replace("\\ ", "") for r in ROOMS]
    return [
        f"home,room={rooms[i % len(rooms)]} temp={temp[i]},hum={hum[i]},co={co[i]}i {1641024000 + i}"
        for i in range(n)
    ]


def nasty_lines(n: int) -> list[str]:
    return [
        f'home_actions,room={ROOMS[i % len(ROOMS)]},level=ok description="Temp at {i % 40}\\"C, '
        f'cooling",code={i}i {1641024000 + i}'
        for i in range(n)
    ]


def bodies(lines: list[str]) -> list[bytes]:
    """Split lines into bodies just under 10 MiB."""
    out: list[bytes] = []
    chunk: list[str] = []
    size = 0
    for line in lines:
        if size + len(line) + 1 > MAX_BODY - 1024 and chunk:
            out.append("\n".join(chunk).encode())
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        out.append("\n".join(chunk).encode())
    return out


def ours(body: bytes) -> int:
    batches, errors = resolve(parse(body, "s", 0))
    assert not errors, errors[:3]
    return sum(b.num_rows for b in batches.values())


def baseline(body: bytes) -> int:
    """line-protocol-parser per line, then the same Arrow columns (grouped per measurement)."""
    from line_protocol_parser import parse_line

    tables: dict[str, dict[str, list[Any]]] = {}
    for line in body.decode().split("\n"):
        if not line or line.startswith("#"):
            continue
        p = parse_line(line)
        cols = tables.setdefault(p["measurement"], {})
        n = len(cols.get("time", []))
        for k, v in {**p["tags"], **p["fields"], "time": p["time"]}.items():
            if k not in cols:
                cols[k] = [None] * n
            cols[k].append(v)
        for col in cols.values():
            if len(col) < n + 1:
                col.append(None)
    rows = 0
    for cols in tables.values():
        time_ns = np.asarray(cols.pop("time"), dtype=np.int64) * 1_000_000_000
        arrays = {k: pa.array(v) for k, v in cols.items()}
        arrays["time"] = pa.array(time_ns, pa.timestamp("ns"))
        rows += pa.table(arrays).num_rows
    return rows


def rate(fn: Any, items: list[bytes], repeats: int) -> dict[str, float]:
    """Wall and CPU time: the machine may be shared, and CPU time shows the parser's own cost."""
    times = []
    cpu = []
    total = 0
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        total = sum(fn(b) for b in items)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return {
        "lines": total,
        "median_s": statistics.median(times),
        "best_s": min(times),
        "lines_per_s": total / statistics.median(times),
        "best_lines_per_s": total / min(times),
        "lines_per_cpu_s": total / statistics.median(cpu),
    }


COVERAGE_CASES: list[tuple[str, str, Any]] = [
    ("integer suffix i keeps int64", "m v=1i", ("int", 1)),
    ("unsigned suffix u keeps uint64", "m v=1u", ("uint", 1)),
    ("plain number is float64", "m v=1", ("float", 1.0)),
    ("boolean spellings", "m v=TRUE", ("bool", True)),
    ("escaped measurement", r"m\ x\,y v=1", ("name", "m x,y")),
    ("escaped tag value with =", r"m,t=a\=b v=1", ("tag", "a=b")),
    ("quoted string with escapes", 'm v="a\\"b"', ("string", 'a"b')),
    ("trailing '.' float rejected", "m v=1.", "error"),
    ("leading '+' rejected", "m v=+1", "error"),
    ("int64 overflow rejected", "m v=9223372036854775808i", "error"),
    ("uint64 overflow rejected", "m v=18446744073709551616u", "error"),
    ("duplicate tag rejected", "m,a=1,a=2 v=1", "error"),
    ("unterminated string rejected", 'm v="open', "error"),
]


def coverage() -> list[dict[str, Any]]:
    """What line-protocol-parser gets right per InfluxDB 3's grammar (and what ours does)."""
    from line_protocol_parser import parse_line

    report = []
    for name, line, expected in COVERAGE_CASES:
        try:
            p = parse_line(line)
            if expected == "error":
                theirs = False
            elif expected[0] == "name":
                theirs = p["measurement"] == expected[1]
            elif expected[0] == "tag":
                theirs = p["tags"].get("t") == expected[1]
            else:
                value = p["fields"]["v"]
                kind = {bool: "bool", str: "string", float: "float"}.get(type(value), "int")
                # it returns Python ints for both i and u: the type is lost either way
                theirs = (
                    value == expected[1]
                    and kind == expected[0]
                    and expected[0]
                    not in (
                        "int",
                        "uint",
                    )
                )
        except Exception:
            theirs = expected == "error"
        result = parse(line, "ns", 0)
        if expected == "error":
            mine = bool(result.errors)
        elif expected[0] == "name":
            mine = [c.table for c in result.chunks] == [expected[1]]
        elif expected[0] == "tag":
            mine = result.chunks[0].tags["t"].to_pylist() == [expected[1]]
        else:
            kind, arr = result.chunks[0].fields["v"]
            mine = kind == expected[0] and arr.to_pylist() == [expected[1]]
        report.append(
            {"case": name, "line": line, "line_protocol_parser": theirs, "stand_in": mine}
        )
    return report


def http_ingest(
    payloads: list[bytes], writers: int, wal_flush: float, data_dir: str | None, gz: bool
) -> dict[str, float]:
    from influx_flight.server import StandInServer

    token = "apiv3_bench"
    lines = sum(p.count(b"\n") + 1 for p in payloads)
    sent = [gzip.compress(p, compresslevel=1) if gz else p for p in payloads]
    # query_file_limit=0: the final count(*) checks every ingested line, over more than 72 h.
    with StandInServer(
        tokens=[token], wal_flush_interval=wal_flush, data_dir=data_dir, query_file_limit=0
    ) as srv:
        port = int(srv.http_port)
        queue = list(range(len(sent)))
        lock = threading.Lock()
        failures: list[str] = []

        def work() -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            headers = {"Authorization": f"Bearer {token}"}
            if gz:
                headers["Content-Encoding"] = "gzip"
            while True:
                with lock:
                    if not queue:
                        break
                    i = queue.pop()
                conn.request("POST", "/api/v3/write_lp?db=bench&precision=s", sent[i], headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 204:
                    failures.append(f"{resp.status}")
            conn.close()

        start = time.perf_counter()
        threads = [threading.Thread(target=work) for _ in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - start
        assert not failures, failures[:3]
        n = srv.engine.query_sql("bench", "SELECT count(*) AS n FROM home").read_all()
        assert n.column("n")[0].as_py() == lines
    return {"lines": lines, "seconds": elapsed, "lines_per_s": lines / elapsed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--wal-flush", type=float, default=1.0)
    parser.add_argument("--http-lines", type=int, default=2_000_000)
    args = parser.parse_args()

    results: dict[str, Any] = {
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_at_start": os.getloadavg(),
        },
        "lines": args.lines,
    }
    typical = bodies(sensor_lines(args.lines))
    ours(typical[0])  # warm-up
    print(
        f"(a) parse-only, {args.lines} typical sensor lines in {len(typical)} bodies of <= 10 MiB"
    )
    results["parse_ours"] = rate(ours, typical, args.repeats)
    results["parse_baseline_line_protocol_parser"] = rate(baseline, typical, 2)
    escaped = bodies(sensor_lines(args.lines // 2, escaped=True))
    results["parse_ours_escaped_tags"] = rate(ours, escaped, args.repeats)
    nasty = bodies(nasty_lines(max(1, args.lines // 10)))
    results["parse_ours_slow_path"] = rate(ours, nasty, 1)
    ratio = (
        results["parse_ours"]["best_lines_per_s"]
        / results["parse_baseline_line_protocol_parser"]["best_lines_per_s"]
    )
    results["parse_ratio_vs_baseline"] = ratio
    floor = 300_000
    results["parse_floor_lines_per_s"] = floor
    # The machine may be shared with other work: the floor is judged on the best repeat, and the
    # CPU-time rate (this process's own cost) is reported next to it.
    results["parse_meets_floor"] = results["parse_ours"]["best_lines_per_s"] >= floor
    print(
        f"  stand-in parser (fast path):   {results['parse_ours']['lines_per_s']:>12,.0f} lines/s "
        f"(best {results['parse_ours']['best_lines_per_s']:,.0f}; "
        f"{results['parse_ours']['lines_per_cpu_s']:,.0f} per CPU second)"
    )
    print(
        f"  line-protocol-parser + Arrow:  {results['parse_baseline_line_protocol_parser']['lines_per_s']:>12,.0f} lines/s"
    )
    print(
        f"  ratio stand-in / baseline:     {ratio:>12.2f}x   floor {floor:,} lines/s: "
        f"{'met' if results['parse_meets_floor'] else 'NOT met'}"
    )
    print(
        f"  stand-in, escaped tag values (Living\\ Room): "
        f"{results['parse_ours_escaped_tags']['lines_per_s']:,.0f} lines/s"
    )
    print(
        f"  stand-in slow path (escapes, quoted strings): "
        f"{results['parse_ours_slow_path']['lines_per_s']:,.0f} lines/s"
    )

    print("(b) grammar coverage (InfluxDB 3 rules)")
    cov = coverage()
    results["coverage"] = cov
    for row in cov:
        print(
            f"  {row['case']:<34} line-protocol-parser: {'ok ' if row['line_protocol_parser'] else 'NO '}"
            f"  stand-in: {'ok' if row['stand_in'] else 'NO'}"
        )

    print(
        f"(c) end-to-end HTTP /api/v3/write_lp, WAL flush {args.wal_flush}s, {args.http_lines} lines"
    )
    payloads = bodies(sensor_lines(args.http_lines, seed=2))
    e2e = []
    for storage in ("memory", "data_dir"):
        for writers in (1, 4):
            for gz in (False, True):
                with tempfile.TemporaryDirectory() as tmp:
                    r = http_ingest(
                        payloads,
                        writers,
                        args.wal_flush,
                        tmp if storage == "data_dir" else None,
                        gz,
                    )
                r.update({"storage": storage, "writers": writers, "gzip": gz})
                e2e.append(r)
                print(
                    f"  {storage:<8} writers={writers} gzip={gz!s:<5} {r['lines_per_s']:>12,.0f} lines/s "
                    f"({r['seconds']:.2f}s)"
                )
    results["http"] = e2e

    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / "bench_server_ingest.json"
    out.write_text(json.dumps(results, indent=2))
    print(f"saved {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
