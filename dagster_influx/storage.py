"""Typed storage settings for `ParquetIOManager` (local, S3, GCS, Azure), EnvVar-capable.

Each field may be a `dagster.EnvVar`: Dagster resolves it when a run starts, shows only the
variable's name in the UI, and the IO manager turns the settings into fsspec storage options
then (never at load time, never into logs or metadata). Modelled on dagster-deltalake's
`S3Config` / `GcsConfig` / `AzureConfig`.
"""

from __future__ import annotations

import os
from typing import Any, Literal

from dagster import Config
from pydantic import Field

__all__ = ["AzureConfig", "GcsConfig", "LocalConfig", "S3Config", "resolve_env_options"]


def _secret(description: str) -> Any:
    return Field(default=None, repr=False, description=description)


class LocalConfig(Config):
    """Local files (or any fsspec URL that needs no options)."""

    provider: Literal["local"] = "local"

    def storage_options(self) -> dict[str, Any]:
        return {}


class S3Config(Config):
    """S3 or an S3-compatible store (MinIO, R2) through `s3fs`."""

    provider: Literal["s3"] = "s3"
    access_key_id: str | None = _secret("AWS access key id (EnvVar).")
    secret_access_key: str | None = _secret("AWS secret access key (EnvVar).")
    session_token: str | None = _secret("Temporary session token (EnvVar).")
    region: str | None = Field(default=None, description="Region, e.g. eu-west-1.")
    endpoint_url: str | None = Field(default=None, description="S3-compatible endpoint URL.")
    profile: str | None = Field(default=None, description="Profile in ~/.aws/credentials.")
    anon: bool = Field(default=False, description="Anonymous access (public buckets).")

    def storage_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        for name, option in (
            ("access_key_id", "key"),
            ("secret_access_key", "secret"),
            ("session_token", "token"),
            ("profile", "profile"),
        ):
            value = getattr(self, name)
            if value:
                options[option] = value
        client_kwargs = {
            k: v
            for k, v in (("region_name", self.region), ("endpoint_url", self.endpoint_url))
            if v
        }
        if client_kwargs:
            options["client_kwargs"] = client_kwargs
        if self.anon:
            options["anon"] = True
        return options


class GcsConfig(Config):
    """Google Cloud Storage through `gcsfs`."""

    provider: Literal["gcs"] = "gcs"
    service_account_key: str | None = _secret(
        "Service-account key: a path to its JSON file or the JSON text (EnvVar)."
    )
    project: str | None = Field(default=None, description="Project that owns the bucket.")

    def storage_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {}
        key = self.service_account_key
        if key:
            import json

            options["token"] = json.loads(key) if key.lstrip().startswith("{") else key
        if self.project:
            options["project"] = self.project
        return options


class AzureConfig(Config):
    """Azure Blob Storage / ADLS Gen2 through `adlfs`."""

    provider: Literal["azure"] = "azure"
    account_name: str | None = Field(default=None, description="Storage account name.")
    account_key: str | None = _secret("Storage account key (EnvVar).")
    sas_token: str | None = _secret("Shared access signature (EnvVar).")
    connection_string: str | None = _secret("Connection string (EnvVar).")
    tenant_id: str | None = Field(default=None, description="Service principal tenant.")
    client_id: str | None = Field(default=None, description="Service principal client id.")
    client_secret: str | None = _secret("Service principal secret (EnvVar).")

    def storage_options(self) -> dict[str, Any]:
        names = (
            "account_name",
            "account_key",
            "sas_token",
            "connection_string",
            "tenant_id",
            "client_id",
            "client_secret",
        )
        return {name: getattr(self, name) for name in names if getattr(self, name)}


StorageConfig = LocalConfig | S3Config | GcsConfig | AzureConfig


def resolve_env_options(options: dict[str, Any]) -> dict[str, Any]:
    """Storage options with Dagster's serialised `EnvVar`s (`{"env": NAME}`) read now.

    A free-form dict field keeps an `EnvVar` as `{"env": NAME}` instead of its value; fsspec
    would receive that dict as the credential. Reading it here, at run time, gives the value.
    """
    out: dict[str, Any] = {}
    for key, value in options.items():
        if isinstance(value, dict) and set(value) == {"env"}:
            name = value["env"]
            if name not in os.environ:
                raise ValueError(
                    f"Storage option {key!r} names the environment variable {name!r}, which is"
                    " not set in the run's environment."
                )
            out[key] = os.environ[name]
        elif isinstance(value, dict):
            out[key] = resolve_env_options(value)
        else:
            out[key] = value
    return out
