"""Flight errors that carry only their message across the wire.

pyarrow turns an exception raised by a Flight handler into an Arrow status whose detail is the
exception formatted by :func:`traceback.format_exception`: the server's file paths, source
lines and class names, sent to any client in the ``x-arrow-status-detail-bin`` trailer. Only
the Flight* exceptions escape that, and none of them maps to INVALID_ARGUMENT, NOT_FOUND,
UNIMPLEMENTED or RESOURCE_EXHAUSTED. So the stand-in raises the classes below for those codes,
and :func:`install` wraps ``traceback.format_exception`` so that an instance of them formats as
its gRPC code name only. Every other exception formats exactly as before.
"""

from __future__ import annotations

import threading
import traceback
from typing import Any

import pyarrow as pa

__all__ = [
    "WireError",
    "WireExhausted",
    "WireInvalid",
    "WireNotFound",
    "WireUnimplemented",
    "WireUnknown",
]


class WireError(Exception):
    """Marker: format as ``grpc_code`` only (see the module docstring)."""

    grpc_code = "UNKNOWN"


class WireInvalid(pa.ArrowInvalid, WireError):
    grpc_code = "INVALID_ARGUMENT"


class WireNotFound(pa.ArrowKeyError, WireError):
    grpc_code = "NOT_FOUND"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class WireUnimplemented(pa.ArrowNotImplementedError, WireError):
    grpc_code = "UNIMPLEMENTED"


class WireExhausted(pa.ArrowCapacityError, WireError):
    grpc_code = "RESOURCE_EXHAUSTED"


class WireUnknown(pa.ArrowException, WireError):
    """Where pyarrow ignores Flight* exceptions (GetSchema): code UNKNOWN, the message kept."""

    grpc_code = "UNKNOWN"


_original_format_exception = traceback.format_exception
_install_lock = threading.Lock()


def _format_exception(exc: Any, /, *args: Any, **kwargs: Any) -> list[str]:
    value = args[0] if args else kwargs.get("value", exc)
    if isinstance(value, WireError):
        return [value.grpc_code]
    return _original_format_exception(exc, *args, **kwargs)


def install() -> None:
    """Make WireError instances format without traceback (idempotent)."""
    with _install_lock:
        if traceback.format_exception is not _format_exception:
            traceback.format_exception = _format_exception  # type: ignore[assignment]


install()
