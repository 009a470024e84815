"""Fixtures for the InfluxQL tests (helpers live in ``influxql_oracle.py``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from influxql_oracle import Influxd, start_influxd


@pytest.fixture(scope="session")
def influxd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Influxd]:
    """A private influxd (InfluxDB 1.x) on free 127.0.0.1 ports; skips when not installed."""
    yield from start_influxd(tmp_path_factory.mktemp("influxd"))
