"""Parse-time cost: provider modules and example DAG files import no pyarrow.flight/pandas/datafusion.

The scheduler's DAG processor imports DAG files over and over; heavy imports belong in execute().
Each check runs in a fresh interpreter so nothing imported by the test session can hide a leak.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("airflow")

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pyarrow.flight", "pandas", "datafusion", "grpc", "adbc_driver_flightsql")
MODULES = [
    "airflow_influx",
    "airflow_influx.operators.influxdb3",
    "airflow_influx.sensors.influxdb3",
    "airflow_influx.triggers.influxdb3",
    "airflow_influx.hooks.influxdb3",
    "airflow_influx.hooks.flightsql",
]
DAG_FILES = sorted((REPO / "example_dags").glob("example_influxdb3_*.py"))

# Imports every target in one fresh interpreter and reports the heavy modules loaded after each:
# if none is loaded after the last, none of the targets loads one (one process keeps it fast).
_PROBE = """
import importlib.util, json, sys
heavy = json.loads(sys.argv[1])
report = {}
for i, target in enumerate(json.loads(sys.argv[2])):
    if target.endswith(".py"):
        spec = importlib.util.spec_from_file_location(f"dag_under_test_{i}", target)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        importlib.import_module(target)
    report[target] = sorted(m for m in heavy if m in sys.modules)
print("REPORT=" + json.dumps(report))
"""


@pytest.fixture(scope="module")
def import_report() -> dict[str, list[str]]:
    targets = [*MODULES, *(str(p) for p in DAG_FILES)]
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps(HEAVY), json.dumps(targets)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT="))
    return json.loads(line.removeprefix("REPORT="))


@pytest.mark.parametrize("module", MODULES)
def test_provider_module_imports_nothing_heavy(import_report: dict, module: str) -> None:
    assert import_report[module] == []


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_example_dag_file_imports_nothing_heavy(import_report: dict, dag_file: Path) -> None:
    assert import_report[str(dag_file)] == []


def test_every_example_dag_is_checked() -> None:
    assert [p.name for p in DAG_FILES] == [
        "example_influxdb3_downsample.py",
        "example_influxdb3_fanout_backfill.py",
        "example_influxdb3_sql_checks.py",
    ]
