"""Registration: provider info, the connection form metadata and the Airflow CLI listing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

pytest.importorskip("airflow")

AIRFLOW_BIN = Path(sys.executable).with_name("airflow")


def _airflow(*args: str) -> str:
    proc = subprocess.run(
        [str(AIRFLOW_BIN), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "400"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def _json_output(*args: str) -> list[dict]:
    """The JSON document of ``--output json`` (Airflow may log a line before it)."""
    out = _airflow(*args, "--output", "json")
    return json.loads(out[out.index("[{") :])


def test_provider_info_is_valid_for_discovery_and_the_form_schema() -> None:
    import jsonschema
    from airflow_influx import get_provider_info

    info = get_provider_info()
    runtime_schema = json.loads(
        resources.files("airflow").joinpath("provider_info.schema.json").read_text()
    )
    jsonschema.validate(info, runtime_schema)
    strict = json.loads(
        resources.files("airflow").joinpath("provider.yaml.schema.json").read_text()
    )
    conn_schema = strict["properties"]["connection-types"]
    jsonschema.validate(info["connection-types"], conn_schema)
    assert info["package-name"] == "influxdb3-orchestration"


def test_entry_point_points_at_get_provider_info() -> None:
    from importlib.metadata import entry_points

    eps = [
        ep
        for ep in entry_points(group="apache_airflow_provider")
        if ep.value.startswith("airflow_influx")
    ]
    assert [ep.value for ep in eps] == ["airflow_influx:get_provider_info"]
    assert eps[0].load()()["name"] == "InfluxDB 3 (Arrow Flight)"


def test_connection_form_metadata_served_to_the_ui() -> None:
    # The declarative form (conn-fields / ui-field-behaviour in provider info) came in 3.2;
    # older releases read get_ui_field_behaviour() from the hook (see test_legacy_form...).
    from af_compat import AIRFLOW_VERSION

    if AIRFLOW_VERSION < (3, 2):
        pytest.skip("declarative connection forms need Airflow >= 3.2")
    from airflow.api_fastapi.core_api.services.ui.connections import HookMetaService

    meta = {m.connection_type: m for m in HookMetaService.hook_meta_data()}["influxdb3_flight"]
    assert meta.hook_name == "InfluxDB 3 (Arrow Flight)"
    std = meta.standard_fields
    assert (std.host.title, std.url_schema.title, std.password.title) == (
        "Host URL",
        "Database",
        "Token",
    )
    assert std.login.hidden is True
    assert not std.host.hidden and not std.port.hidden
    extra = meta.extra_fields
    assert set(extra) == {
        "query_language",
        "protocol",
        "verify_tls",
        "ca_cert",
        "timeout",
        "auth_scheme",
        "write_url",
        "retries",
        "retry_max_seconds",
    }
    assert extra["query_language"]["schema"]["enum"] == ["sql", "influxql"]
    assert extra["protocol"]["schema"]["enum"] == ["ticket", "flightsql"]
    assert extra["verify_tls"]["value"] is True


def test_cli_lists_provider_and_hook() -> None:
    providers = {p["package_name"]: p for p in _json_output("providers", "list")}
    assert providers["influxdb3-orchestration"]["version"] == "0.1.0"
    hooks = _json_output("providers", "hooks")
    ours = [h for h in hooks if h["connection_type"] == "influxdb3_flight"]
    assert len(ours) == 1, hooks
    assert ours[0]["class"] == "airflow_influx.hooks.influxdb3.InfluxDB3FlightHook"
    assert ours[0]["conn_id_attribute_name"] == "influxdb3_conn_id"
