"""The worked example of docs/standin.md ("Testing your DAGs and assets") runs under pytest.

The test module from the page is written to an empty directory (no conftest, no ini file) and
run by pytest in a fresh interpreter, so its fixtures can only come from the plugin the package
installs (the ``pytest11`` entry point ``influx_flight.testing``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "standin.md"


def test_worked_example_passes_with_only_the_installed_plugin(tmp_path: Path) -> None:
    text = PAGE.read_text(encoding="utf-8")
    match = re.search(r"```python\n(# (test_\w+\.py)\n.*?)^```", text, re.DOTALL | re.MULTILINE)
    assert match, "docs/standin.md lost its worked pytest example"
    (tmp_path / match.group(2)).write_text(match.group(1), encoding="utf-8")
    env = dict(os.environ)
    env.pop("PYTEST_ADDOPTS", None)
    env["AIRFLOW_HOME"] = str(tmp_path / "airflow")
    env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{tmp_path / 'airflow.db'}"
    env["DAGSTER_HOME"] = str(tmp_path / "dagster")
    (tmp_path / "dagster").mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", match.group(2)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"\b4 passed\b", result.stdout), result.stdout


def test_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    from importlib.metadata import entry_points

    names = {ep.value for ep in entry_points(group="pytest11")}
    assert "influx_flight.testing" in names
