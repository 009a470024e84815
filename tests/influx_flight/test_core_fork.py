"""fork() safety: a client built before fork works in the child if the parent never opened
its channel; otherwise the child gets a clear TransportError instead of a gRPC hang.

The scenario runs in a fresh interpreter (the pytest process has gRPC threads of its own) with
the Flight server in yet another process, so no gRPC state is shared by accident.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent

SCRIPT = r"""
import os, subprocess, sys
server = subprocess.Popen(
    [sys.executable, "-c",
     "import sys; sys.path.insert(0, sys.argv[1]);"
     "from core_flaky_server import FlakyFlightServer, sensor_table;"
     "s = FlakyFlightServer(sensor_table(100)); print(s.port, flush=True); s.serve()",
     sys.argv[1]],
    stdout=subprocess.PIPE, text=True,
)
try:
    port = int(server.stdout.readline())
    from influx_flight import InfluxDB3Client, InfluxDB3Config, TransportError
    client = InfluxDB3Client(InfluxDB3Config(host=f"grpc+tcp://127.0.0.1:{port}", database="db"))

    def in_child(expect_error):
        pid = os.fork()
        if pid == 0:
            try:
                rows = client.query("SELECT 1", timeout=10).to_table().num_rows
                os._exit(0 if (not expect_error and rows == 100) else 5)
            except TransportError as exc:
                os._exit(3 if expect_error and "cannot cross fork()" in str(exc) else 6)
            except BaseException:
                os._exit(7)
        return os.waitpid(pid, 0)[1] >> 8

    print("lazy", in_child(expect_error=False), flush=True)
    print("parent", client.query("SELECT 1").to_table().num_rows, flush=True)
    print("opened", in_child(expect_error=True), flush=True)
    print("parent-again", client.query("SELECT 1").to_table().num_rows, flush=True)
    client.close()
finally:
    server.kill()
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_fork_behaviour() -> None:
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(HERE)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [
        "lazy",
        "0",
        "parent",
        "100",
        "opened",
        "3",
        "parent-again",
        "100",
    ]
