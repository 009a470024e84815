"""`make demo` stops cleanly on Ctrl-C: no server, Airflow or Dagster process is left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            environ = (proc / "environ").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if text in cmdline or text in environ:
            found.append(f"{proc.name}: {cmdline[:120]}")
    return found


def test_ctrl_c_leaves_no_stray_processes(tmp_path: Path) -> None:
    out = tmp_path / "demo-output"
    env = dict(os.environ, INFLUX_DEMO_OUTPUT=str(out))
    demo = subprocess.Popen(
        [sys.executable, "-m", "example_dags.demo"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        deadline = time.monotonic() + 240
        for line in demo.stdout:  # wait until the server runs and Airflow work has started
            lines.append(line)
            if "[2/5]" in line or time.monotonic() > deadline:
                break
        assert any("[2/5]" in line for line in lines), "".join(lines)
        time.sleep(3)
        os.killpg(demo.pid, signal.SIGINT)  # what Ctrl-C sends to the foreground job
        rest, _ = demo.communicate(timeout=60)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
    assert demo.returncode == 130, "".join(lines) + rest
    assert "every process the demo started has been stopped" in rest
    time.sleep(1)
    assert _processes_mentioning(str(out)) == []
