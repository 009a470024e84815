"""Provider metadata read by Airflow's provider discovery.

Airflow 3.2+ builds the connection form from ``conn-fields`` / ``ui-field-behaviour`` without
importing the hook class, so this module must stay import-free (plain data only).
"""

from __future__ import annotations

CONN_TYPE = "influxdb3_flight"
#: The Airflow releases this provider is tested on (CI runs the oldest and the newest).
SUPPORTED_AIRFLOW = ">=3.0.6,<4"
HOOK_NAME = "InfluxDB 3 (Arrow Flight)"

#: The form's standard fields (also returned by the hook's get_ui_field_behaviour for 3.0/3.1).
UI_FIELD_BEHAVIOUR: dict = {
    # login is meaningless for token auth; everything else is used.
    "hidden-fields": ["login"],
    "relabeling": {"host": "Host URL", "schema": "Database", "password": "Token"},
    "placeholders": {
        "host": "https://us-east-1-1.aws.cloud2.influxdata.com or http://localhost:8181",
        "port": "8181 (optional when the Host URL carries the port)",
        "schema": "my_database",
        "password": "apiv3_...",
    },
}

#: Extra fields, stored as plain keys in Connection.extra (the hook's form widgets on 3.0/3.1).
CONN_FIELDS: dict = {
    "query_language": {
        "label": "Query language",
        "description": "Default language for queries on this connection.",
        "schema": {"type": "string", "enum": ["sql", "influxql"], "default": "sql"},
    },
    "protocol": {
        "label": "Query protocol",
        "description": "ticket: InfluxDB 3 Flight DoGet (SQL and InfluxQL, the fast path); "
        "flightsql: standard Flight SQL (SQL only).",
        "schema": {"type": "string", "enum": ["ticket", "flightsql"], "default": "ticket"},
    },
    "verify_tls": {
        "label": "Verify TLS",
        "description": "Check the server certificate on https/grpc+tls hosts.",
        "schema": {"type": "boolean", "default": True},
    },
    "ca_cert": {
        "label": "CA certificate",
        "description": "Path to a PEM CA bundle (or the PEM text) for servers with a private CA.",
        "schema": {"type": ["string", "null"]},
    },
    "timeout": {
        "label": "Query timeout (seconds)",
        "description": "Deadline for a whole query stream; empty for the client default (300).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "auth_scheme": {
        "label": "Authorization scheme",
        "description": "Bearer for InfluxDB 3 Core/Enterprise/Cloud; Token for v2-style tokens.",
        "schema": {"type": "string", "enum": ["Bearer", "Token"], "default": "Bearer"},
    },
    "retries": {
        "label": "Retries per call",
        "description": "Attempts per query or write for transient failures (1 = none; "
        "default 4 within 60 s). These stack under the task's own Airflow retries.",
        "schema": {"type": ["integer", "null"], "minimum": 1},
    },
    "retry_max_seconds": {
        "label": "Retry budget (seconds)",
        "description": "Stop retrying a call after this long (default 60).",
        "schema": {"type": ["number", "null"], "minimum": 0},
    },
    "write_url": {
        "label": "Write URL",
        "description": "HTTP base URL for writes when it differs from the Host URL.",
        "schema": {"type": ["string", "null"]},
    },
}

_CONNECTION_TYPE: dict = {
    "connection-type": CONN_TYPE,
    "hook-class-name": "airflow_influx.hooks.influxdb3.InfluxDB3FlightHook",
    "hook-name": HOOK_NAME,
    "ui-field-behaviour": UI_FIELD_BEHAVIOUR,
    "conn-fields": CONN_FIELDS,
}

PROVIDER_INFO: dict = {
    "package-name": "influxdb3-orchestration",
    "name": "InfluxDB 3 (Arrow Flight)",
    "description": "InfluxDB 3 over Arrow Flight: SQL and InfluxQL queries, Parquet exports, "
    "downsampling write-back, sensors and common.sql support. Requires apache-airflow"
    + SUPPORTED_AIRFLOW
    + ".",
    "versions": ["0.1.0"],
    "integrations": [
        {
            "integration-name": HOOK_NAME,
            "external-doc-url": "https://docs.influxdata.com/influxdb3/core/",
            "tags": ["software"],
        }
    ],
    "hooks": [
        {
            "integration-name": HOOK_NAME,
            "python-modules": ["airflow_influx.hooks.influxdb3", "airflow_influx.hooks.flightsql"],
        }
    ],
    "operators": [
        {"integration-name": HOOK_NAME, "python-modules": ["airflow_influx.operators.influxdb3"]}
    ],
    "sensors": [
        {"integration-name": HOOK_NAME, "python-modules": ["airflow_influx.sensors.influxdb3"]}
    ],
    "triggers": [
        {"integration-name": HOOK_NAME, "python-modules": ["airflow_influx.triggers.influxdb3"]}
    ],
    "connection-types": [_CONNECTION_TYPE],
    "asset-uris": [
        {
            "schemes": ["influxdb3"],
            "handler": "airflow_influx.assets.sanitize_uri",
            "factory": "airflow_influx.assets.create_asset",
            "to_openlineage_converter": "airflow_influx.assets.convert_asset_to_openlineage",
        }
    ],
}
