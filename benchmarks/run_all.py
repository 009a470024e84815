"""`make bench`: every benchmark in this folder, one after another, each in its own process.

Each script measures its own baseline in the same run and prints a table of ratios; results are
saved as JSON under benchmarks/results/. Run one alone with `python benchmarks/<name>.py --help`.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: (script, what it compares)
BENCHMARKS = [
    ("bench_server_doget.py", "stand-in DoGet SELECT * vs a bare pyarrow Flight server"),
    ("bench_server_ingest.py", "line-protocol parse and HTTP ingest, lines/s"),
    ("bench_core_parquet.py", "client Parquet export vs read_all + write_table"),
    ("bench_core_write.py", "line-protocol encoding vs influxdb3-python; write-back points/s"),
]


def main() -> int:
    failed = []
    for script, what in BENCHMARKS:
        print(f"\n=== {script}: {what}", flush=True)
        started = time.monotonic()
        code = subprocess.call([sys.executable, str(HERE / script)], cwd=HERE.parent)
        print(f"=== {script}: exit {code} after {time.monotonic() - started:.0f} s", flush=True)
        if code:
            failed.append(script)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
