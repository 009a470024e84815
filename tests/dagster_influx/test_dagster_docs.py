"""Every Python block of docs/dagster.md runs, and every `defs` it builds is loadable."""

import re
from pathlib import Path

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
