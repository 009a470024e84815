"""`make bench`: every benchmark in this folder, one after another, each in its own process.

Each script measures its own baseline in the same run and prints a table of ratios; results are
saved as JSON under benchmarks/results/. Run one alone with `python benchmarks/<name>.py --help`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, what it compares)
BENCHMARKS = [
    ("bench_server_doget.py", "stand-in DoGet SELECT * vs a bare pyarrow Flight server"),
    ("bench_server_ingest.py", "line-protocol parse and HTTP ingest, lines/s"),
    ("bench_core_parquet.py", "client Parquet export vs read_all + write_table (1M, 10M rows)"),
    ("bench_core_dataset.py", "windowed dataset export, 1/2/4 streams vs read_all + write_table"),
    ("bench_core_write.py", "line-protocol encoding vs influxdb3-python; write-back points/s"),
]

#: Lines every script prints for the targets of the issues, repeated at the end of `make bench`.
TARGET_PREFIX = "TARGET"


def main() -> int:
    failed = []
    targets: list[str] = []
    for script, what in BENCHMARKS:
        print(f"\n=== {script}: {what}", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, str(HERE / script)],
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            print(line, end="", flush=True)
            if line.startswith(TARGET_PREFIX):
                targets.append(line.rstrip())
        code = proc.wait()
        print(f"=== {script}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(script)
    print(f"\n=== targets (load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for line in targets:
        print(line)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
