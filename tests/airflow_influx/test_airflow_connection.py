"""The connection -> InfluxDB3Config mapping: UI fields, AIRFLOW_CONN_* URIs and JSON."""

from __future__ import annotations

import json
from typing import Any

import pytest

pytest.importorskip("airflow")

from airflow.sdk import Connection
from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

from influx_flight import ConfigurationError


def test_uri_connection_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_INFLUX_URI",
        "influxdb3-flight://:apiv3_uri_token@http%3A%2F%2F127.0.0.1:8181/metrics"
        "?query_language=influxql&verify_tls=false&timeout=12&protocol=flightsql",
    )
    hook = InfluxDB3FlightHook("influx_uri")
    settings = hook.get_settings()
    cfg = settings.config
    assert (cfg.host, cfg.database, cfg.token) == (
        "http://127.0.0.1:8181",
        "metrics",
        "apiv3_uri_token",
    )
    assert cfg.verify_tls is False
    assert cfg.query_timeout == 12.0
    assert cfg.flight_location == "grpc+tcp://127.0.0.1:8181"
    assert (settings.query_language, settings.protocol) == ("influxql", "flightsql")


def test_bare_uri_host_is_https_like_influxdb3_python(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_INFLUX_BARE", "influxdb3-flight://:tok_abcdef@influx.example:8181/db"
    )
    cfg = InfluxDB3FlightHook("influx_bare").get_config()
    assert cfg.flight_location == "grpc+tls://influx.example:8181"
    assert cfg.write_base_url == "https://influx.example:8181"


def test_json_connection_from_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_INFLUX_JSON",
        json.dumps(
            {
                "conn_type": "influxdb3_flight",
                "host": "https://h.example",
                "port": 8443,
                "schema": "db2",
                "password": "apiv3_json_token",
                "extra": {
                    "auth_scheme": "token",
                    "write_url": "http://h.example:9000",
                    "verify_tls": True,
                    "headers": {"x-trace": "1"},
                },
            }
        ),
    )
    settings = InfluxDB3FlightHook("influx_json").get_settings()
    cfg = settings.config
    assert cfg.host == "https://h.example:8443"
    assert cfg.flight_location == "grpc+tls://h.example:8443"
    assert (cfg.database, cfg.token, cfg.auth_scheme) == ("db2", "apiv3_json_token", "Token")
    assert cfg.write_base_url == "http://h.example:9000"
    assert cfg.headers == {"x-trace": "1"}
    assert (settings.query_language, settings.protocol) == ("sql", "ticket")


def _conn(**kwargs: object) -> Connection:
    return Connection(conn_id="c1", conn_type="influxdb3_flight", **kwargs)


@pytest.fixture
def settings_from_connection(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Read a Connection the way a task does: from AIRFLOW_CONN_C1, through the hook."""

    def read(conn: Connection, *, database: str | None = None) -> Any:
        fields = ("conn_type", "host", "port", "schema", "login", "password", "extra")
        as_json = {f: getattr(conn, f) for f in fields if getattr(conn, f) is not None}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn.conn_id.upper()}", json.dumps(as_json))
        return InfluxDB3FlightHook(conn.conn_id, database=database).get_settings()

    return read


def test_port_is_not_added_twice(settings_from_connection: Any) -> None:
    conn = _conn(host="http://localhost:9999", port=8181, schema="db")
    assert settings_from_connection(conn).config.host == "http://localhost:9999"


def test_official_provider_extras_are_fallbacks(settings_from_connection: Any) -> None:
    conn = _conn(
        host="http://localhost:8181", extra=json.dumps({"database": "d", "token": "tok_xyz"})
    )
    cfg = settings_from_connection(conn).config
    assert (cfg.database, cfg.token) == ("d", "tok_xyz")


def test_task_database_overrides_connection(settings_from_connection: Any) -> None:
    conn = _conn(host="http://localhost:8181", schema="conn_db")
    assert settings_from_connection(conn, database="task_db").config.database == "task_db"


def test_missing_database_says_which_field(settings_from_connection: Any) -> None:
    with pytest.raises(
        ConfigurationError, match=r"connection 'c1': no database; fill in the Database field"
    ):
        settings_from_connection(_conn(host="http://localhost:8181"))


def test_empty_host_says_what_to_set(settings_from_connection: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"connection 'c1': Host URL is empty"):
        settings_from_connection(_conn(schema="db"))


def test_bad_query_language_lists_choices(settings_from_connection: Any) -> None:
    conn = _conn(host="http://h:1", schema="db", extra=json.dumps({"query_language": "flux"}))
    with pytest.raises(
        ConfigurationError,
        match=r"query_language='flux' is not supported; use one of sql, influxql",
    ):
        settings_from_connection(conn)


def test_bad_extra_is_reported_with_the_connection_and_field(settings_from_connection: Any) -> None:
    conn = _conn(host="http://h:1", schema="db", extra=json.dumps({"verify_tls": "maybe"}))
    with pytest.raises(
        ConfigurationError, match=r"connection 'c1': verify_tls: expected true or false"
    ) as err:
        settings_from_connection(conn)
    assert err.value.field == "verify_tls"


def test_token_never_in_config_repr(settings_from_connection: Any) -> None:
    conn = _conn(host="http://h:1", schema="db", password="apiv3_do_not_show")
    cfg = settings_from_connection(conn).config
    assert "apiv3_do_not_show" not in repr(cfg)


def test_hook_class_attributes_match_provider_info() -> None:
    from airflow_influx.provider_info import PROVIDER_INFO

    entry = PROVIDER_INFO["connection-types"][0]
    assert InfluxDB3FlightHook.conn_type == entry["connection-type"] == "influxdb3_flight"
    assert InfluxDB3FlightHook.hook_name == entry["hook-name"] == "InfluxDB 3 (Arrow Flight)"
    assert InfluxDB3FlightHook.default_conn_name == "influxdb3_flight_default"
    assert (
        entry["hook-class-name"]
        == f"{InfluxDB3FlightHook.__module__}.{InfluxDB3FlightHook.__name__}"
    )


def test_uri_with_the_host_scheme_before_the_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """The form ``Connection.get_uri()`` produces for a Host URL with a scheme."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_INFLUX_SCHEMED",
        "influxdb3-flight://http://:apiv3_tok@127.0.0.1:8181/docs"
        "?write_url=http%3A%2F%2F127.0.0.1%3A8182",
    )
    cfg = InfluxDB3FlightHook("influx_schemed").get_config()
    assert (cfg.host, cfg.database, cfg.write_url) == (
        "http://127.0.0.1:8181",
        "docs",
        "http://127.0.0.1:8182",
    )


def test_airflow_3_0_hook_meta_lists_the_connection_form() -> None:
    """Airflow 3.0/3.1 build the form from the hook's classmethods (through the UI's hook-meta
    API, which needs wtforms, as shipped with the FAB provider); 3.2+ read ``conn-fields``."""
    pytest.importorskip("wtforms")
    services = pytest.importorskip("airflow.api_fastapi.core_api.services.ui.connections")
    from airflow_influx.provider_info import CONN_FIELDS, CONN_TYPE

    service = services.HookMetaService
    getattr(service.hook_meta_data, "cache_clear", lambda: None)()
    (meta,) = [m for m in service.hook_meta_data() if m.connection_type == CONN_TYPE]
    extra = meta.extra_fields
    assert extra is not None, "no extra fields: the hook's get_connection_form_widgets failed"
    assert list(extra) == list(CONN_FIELDS)
    for name, field in CONN_FIELDS.items():
        schema = extra[name]["schema"]
        assert schema["title"] == field["label"]
        assert extra[name]["description"].startswith(field["description"])
        assert extra[name]["value"] == field["schema"].get("default", extra[name]["value"])
        if "enum" in field["schema"]:
            assert schema["enum"] == field["schema"]["enum"]
    assert "boolean" in extra["verify_tls"]["schema"]["type"]
    assert "integer" in extra["retries"]["schema"]["type"]
    standard = meta.standard_fields
    assert standard.login.hidden
    assert (standard.host.title, standard.url_schema.title, standard.password.title) == (
        "Host URL",
        "Database",
        "Token",
    )
    assert standard.password.placeholder == "apiv3_..."


def test_form_classmethods_keep_the_hook_module_import_light() -> None:
    import subprocess
    import sys

    # The form libraries are blocked: importing the hook and reading its field behaviour must
    # not need them (common.sql's provider discovery may import wtforms for other hooks).
    code = (
        "import sys; sys.modules.update(wtforms=None, flask_babel=None, flask_appbuilder=None); "
        "import airflow_influx.hooks.influxdb3 as h; "
        "b = h.InfluxDB3FlightHook.get_ui_field_behaviour(); "
        "assert b['hidden_fields'] == ['login'], b; "
        "assert b['relabeling']['password'] == 'Token', b"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
