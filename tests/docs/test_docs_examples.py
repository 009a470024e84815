"""Every ```python block in docs/*.md runs, so the documentation cannot rot.

Each block runs on its own in a fresh interpreter (cwd: a temporary directory) against a
stand-in server that holds the documentation's sample table: `home` in database `docs`
(tag `room`; fields `temp`, `hum` float and `co` integer; one point per room every 10 minutes
on 2022-01-01), generated here by the project's own writer. The environment carries the
settings a reader would export: INFLUXDB3_HOST_URL, INFLUXDB3_DATABASE_NAME,
INFLUXDB3_AUTH_TOKEN and AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT: host, database and token, as
for InfluxDB 3 (the stand-in answers Flight and HTTP on one port).

A block that is not meant to run is written with another info string (```text, ```bash ...).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
#: Design notes for contributors, written as API sketches rather than runnable examples; and
#: dagster.md, whose blocks test_docs_dagster.py runs AND materialises against the stand-in.
_NOT_EXAMPLES = {"architecture.md", "dagster.md"}
_FENCE = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def _examples() -> list[Any]:
    params = []
    for page in sorted(DOCS.rglob("*.md")):
        if page.name in _NOT_EXAMPLES:
            continue
        text = page.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            ident = f"{page.relative_to(DOCS)}:{line}"
            params.append(pytest.param(page, line, match.group(1), id=ident))
    return params


def _home_points() -> str:
    """The docs' `home` table: 2 rooms, every 10 minutes on 2022-01-01 (seconds precision)."""
    lines = []
    start = 1_640_995_200  # 2022-01-01T00:00:00Z
    for step in range(24 * 6):
        ts = start + step * 600
        for room, base in (("Kitchen", 21.0), ("Living Room", 20.0)):
            temp = base + (step % 36) / 10
            hum = 35.0 + (step % 12) / 4
            co = step // 18
            room_key = room.replace(" ", "\\ ")
            lines.append(f"home,room={room_key} temp={temp:.1f},hum={hum:.2f},co={co}i {ts}")
    return "\n".join(lines)


@pytest.fixture(scope="module")
def docs_env(standin: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    standin.write_lp("docs", _home_points(), precision="s")
    host = standin.flight_uri.replace("grpc+tcp://", "http://")
    airflow_home = tmp_path_factory.mktemp("docs-airflow")
    env = dict(os.environ)
    env.update(
        {
            "INFLUXDB3_HOST_URL": host,
            "INFLUXDB3_DATABASE_NAME": "docs",
            "INFLUXDB3_AUTH_TOKEN": standin.token,
            "AIRFLOW_CONN_INFLUXDB3_FLIGHT_DEFAULT": json.dumps(
                {
                    "conn_type": "influxdb3_flight",
                    "host": host,
                    "schema": "docs",
                    "password": standin.token,
                }
            ),
            "AIRFLOW_HOME": str(airflow_home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
            "DAGSTER_HOME": str(tmp_path_factory.mktemp("docs-dagster")),
            "PYTHONPATH": str(REPO),
        }
    )
    yield env


@pytest.mark.parametrize(("page", "line", "code"), _examples())
def test_docs_example_runs(
    page: Path, line: int, code: str, docs_env: dict[str, str], tmp_path: Path
) -> None:
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=docs_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    where = f"{page.relative_to(REPO)} line {line}"
    assert result.returncode == 0, f"{where} failed:\n{result.stdout}\n{result.stderr}"
    assert docs_env["INFLUXDB3_AUTH_TOKEN"] not in result.stdout + result.stderr, (
        f"{where} printed the token"
    )
