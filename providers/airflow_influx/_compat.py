"""Where each Airflow name lives, for every supported Airflow (3.0 to 3.3).

``airflow.sdk`` gained ``BaseHook``, ``conf`` and the exceptions only in later 3.x releases;
common.compat's ``sdk`` module resolves each name from wherever the running Airflow keeps it (and
imports nothing heavy). Everything in this provider imports Airflow names from here.
"""

from __future__ import annotations

from airflow.providers.common.compat.sdk import (
    Asset,
    AssetAlias,
    BaseHook,
    BaseOperator,
    BaseSensorOperator,
    ObjectStoragePath,
    PokeReturnValue,
    conf,
)

__all__ = [
    "Asset",
    "AssetAlias",
    "BaseHook",
    "BaseOperator",
    "BaseSensorOperator",
    "ObjectStoragePath",
    "PokeReturnValue",
    "conf",
]
