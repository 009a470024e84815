"""Suite-wide setup: isolated homes for Airflow and Dagster, and the stand-in server fixtures."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Airflow reads its configuration at first import, so its home must be private before any test
# module imports it. Dagster likewise gets a throwaway DAGSTER_HOME.
_HOMES = Path(tempfile.mkdtemp(prefix="influx-orch-tests-"))
os.environ["AIRFLOW_HOME"] = str(_HOMES / "airflow")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__UNIT_TEST_MODE", "True")
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOMES / 'airflow' / 'airflow.db'}"
os.environ["DAGSTER_HOME"] = str(_HOMES / "dagster")
(_HOMES / "airflow").mkdir(parents=True, exist_ok=True)
(_HOMES / "dagster").mkdir(parents=True, exist_ok=True)

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
