"""Reading a connection with its token masked before anything can log it.

Airflow 3.0's ``mask_secret`` reports a secret to the supervisor *before* adding it to the
process's own masker, and the in-process supervisor of ``airflow tasks test`` / ``dag.test()``
logs that report (``Sending request msg=MaskSecret(value=...)``) in clear. Later releases mask
locally first. :func:`load_settings` gives every Airflow that order while it reads a connection
(where this provider's token enters a process), so the token never reaches a log line.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow_influx.hooks._connection import ConnectionSettings

_LOCK = threading.RLock()
_AIRFLOW_30_MASKER = "airflow.sdk.execution_time.secrets_masker"
#: Airflow 3.0 modules that call ``mask_secret`` while a connection is read.
_CALLERS = (
    _AIRFLOW_30_MASKER,
    "airflow.sdk.execution_time.context",
    "airflow.sdk.definitions.connection",
    "airflow.models.connection",
    "airflow.sdk.log",
)


def _is_airflow_30() -> bool:
    from airflow import __version__
    from packaging.version import Version

    return Version(__version__) < Version("3.1")


_AIRFLOW_30 = _is_airflow_30()


@contextmanager
def _mask_locally_first() -> Iterator[None]:
    """On Airflow 3.0, make ``mask_secret`` add the mask here before reporting it."""
    if not _AIRFLOW_30:
        yield
        return
    from airflow.sdk.execution_time import secrets_masker

    original = getattr(secrets_masker, "mask_secret", None)
    local = getattr(secrets_masker, "_secrets_masker", None)
    if original is None or local is None or original.__module__ != _AIRFLOW_30_MASKER:
        yield  # a release that masks locally first
        return

    def mask_secret(secret: Any, name: str | None = None) -> None:
        if secret:
            local().add_mask(secret, name)
        original(secret, name)

    modules = [
        module
        for name in _CALLERS
        if getattr(module := sys.modules.get(name), "mask_secret", None) is original
    ]
    with _LOCK:
        for module in modules:
            module.mask_secret = mask_secret
        try:
            yield
        finally:
            for module in modules:
                module.mask_secret = original


def load_settings(conn_id: str, database: str | None = None) -> ConnectionSettings:
    """The connection's settings, its token (and ``Authorization`` value) masked in every log."""
    from airflow_influx._compat import BaseHook
    from airflow_influx.hooks._connection import settings_from_connection

    with _mask_locally_first():
        conn = BaseHook.get_connection(conn_id)
        settings = settings_from_connection(conn, database=database)
        if settings.config.token:
            if _AIRFLOW_30:  # through the module, so that the local-first wrapper applies
                from airflow.sdk.execution_time import secrets_masker

                mask_secret = secrets_masker.mask_secret
            else:
                from airflow.providers.common.compat.sdk import mask_secret
            for secret in (settings.config.token, settings.config.auth_header()):
                if secret:
                    mask_secret(secret)
    return settings
