"""Every Python block of docs/dagster.md runs, and every `defs` it builds is loadable."""

import re
from pathlib import Path
from typing import Any

import dagster as dg
import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "dagster.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)


def test_the_page_has_examples() -> None:
    assert len(BLOCKS) >= 5


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_block_runs(index: int) -> None:
    namespace: dict[str, object] = {"__name__": f"docs_dagster_block_{index}"}
    exec(compile(BLOCKS[index], f"{DOC.name}[python block {index}]", "exec"), namespace)
    defs = namespace.get("defs")
    if defs is not None:
        assert isinstance(defs, dg.Definitions)
        dg.Definitions.validate_loadable(defs)


def test_doc_io_manager_block_writes_and_loads_against_the_standin(
    standin: Any, db_name: str, token_env: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The IO manager snippet, as written: host, database and token from the environment, and
    the stand-in's separate HTTP port from INFLUXDB3_WRITE_URL (the snippet has no write_url)."""
    (block,) = [b for b in BLOCKS if "def room_scores" in b]
    monkeypatch.setenv("INFLUXDB3_HOST_URL", standin.flight_uri)
    monkeypatch.setenv("INFLUXDB3_DATABASE_NAME", db_name)
    monkeypatch.setenv("INFLUXDB3_WRITE_URL", standin.http_url)
    namespace: dict[str, Any] = {"__name__": "docs_dagster_io_block"}
    exec(compile(block, "docs/dagster.md[room_scores]", "exec"), namespace)
    defs = namespace["defs"]
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(partition_key="2024-01-01-05:00")
    assert result.success
    (mat,) = result.asset_materializations_for_node("room_scores")
    assert mat.metadata["dagster/table_name"].value == f"{db_name}.room_scores"
    assert mat.metadata["dagster/partition_row_count"].value == 1
