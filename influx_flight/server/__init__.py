"""The local InfluxDB 3 stand-in server: pyarrow Flight + DataFusion + aiohttp.

Importing this package is cheap: ``StandInServer`` (and ``Engine``) load pyarrow and DataFusion
only when first used (PEP 562).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from influx_flight.server.app import StandInServer
    from influx_flight.server.engine import Engine

_LAZY = {
    "StandInServer": "influx_flight.server.app",
    "Engine": "influx_flight.server.engine",
}

__all__ = ["Engine", "StandInServer"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'influx_flight.server' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
