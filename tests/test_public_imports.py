"""Tests use what users can use: no test imports a private module or a private name.

A test that reaches into ``influx_flight._sinks`` keeps passing while the public API it should
pin drifts; this scan fails as soon as one does. Private names are any dotted part starting with
one underscore (``__version__`` and ``__future__`` are public).
"""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent
OURS = ("influx_flight", "airflow_influx", "dagster_influx")

# (path relative to tests/, imported name) -> why no public route is used. Only white-box tests
# of stand-in internals are here: influx_flight.server is the test peer, not a user API, and
# renaming its helpers was out of scope for the session that wrote this list.
_STANDIN = "white-box unit test of a stand-in helper (influx_flight.server is not user API)"
ALLOWED: dict[tuple[str, str], str] = {
    (
        "server/influxql/test_server_influxql_regex.py",
        "influx_flight.server.flightsql._like_to_regex",
    ): _STANDIN,
    (
        "server/test_server_flightsql_params.py",
        "influx_flight.server.flightsql._like_to_regex",
    ): _STANDIN,
    ("server/test_server_cli.py", "influx_flight.server.cli._demo_spec"): _STANDIN,
    (
        "server/test_server_lineprotocol.py",
        "influx_flight.server.line_protocol._parse_line_quick",
    ): _STANDIN,
}


def _private(dotted: str) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in dotted.split("."))


def _ours(module: str) -> bool:
    return module.split(".")[0] in OURS


def private_imports(source: str) -> list[tuple[int, str]]:
    """(line, what) for every private module or name of our packages that ``source`` imports,
    including dotted strings handed to ``monkeypatch.setattr`` / ``importlib``."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, a.name) for a in node.names if _ours(a.name) and _private(a.name)
            ]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if not _ours(node.module):
                continue
            if _private(node.module):
                found.append((node.lineno, node.module))
            found += [
                (node.lineno, f"{node.module}.{a.name}") for a in node.names if _private(a.name)
            ]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if node.value.id in OURS and _private(node.attr):
                found.append((node.lineno, f"{node.value.id}.{node.attr}"))
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            for word in node.value.replace(",", " ").replace(";", " ").split():
                word = word.split(":")[0]
                if _ours(word) and "." in word and _private(word):
                    found.append((node.lineno, word))
    return found


def test_the_scan_sees_every_form() -> None:
    src = (
        "import influx_flight._sinks\n"
        "from influx_flight._errors import x\n"
        "from influx_flight.server.cli import _demo_spec\n"
        "import influx_flight\n"
        "influx_flight._exceptions.__doc__\n"
        "m.setattr('dagster_influx._io.f', 1)\n"
        "from influx_flight import InfluxDB3Client, __version__\n"
        "from influx_flight.time import parse_duration\n"
        "from . import helpers\n"
    )
    assert [what for _, what in private_imports(src)] == [
        "influx_flight._sinks",
        "influx_flight._errors",
        "influx_flight.server.cli._demo_spec",
        "influx_flight._exceptions",
        "dagster_influx._io.f",
    ]


def test_allowed_entries_are_still_needed() -> None:
    """An allow-list entry whose import is gone must go too (the list only shrinks)."""
    for rel, what in ALLOWED:
        source = (TESTS / rel).read_text(encoding="utf-8")
        assert what in [w for _, w in private_imports(source)], (rel, what)


def test_tests_import_public_names_only() -> None:
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        if path == Path(__file__).resolve():
            continue  # its examples above are private on purpose
        rel = path.relative_to(TESTS).as_posix()
        for line, what in private_imports(path.read_text(encoding="utf-8")):
            if (rel, what) not in ALLOWED:
                offenders.append(f"tests/{rel}:{line}: {what}")
    assert offenders == [], (
        "tests import private names; test through the public API or make the name public "
        "(export it, pin it in test_core_public_api.py, document it):\n" + "\n".join(offenders)
    )
