"""InfluxDB3Resource against the stand-in: config mapping, EnvVar token, client lifecycle."""

from typing import Any

import dagster as dg
import pyarrow as pa
import pytest
from dagster_shared.libraries import DagsterLibraryRegistry
from dagster_support import TOKEN_ENV

import dagster_influx
from dagster_influx import InfluxDB3Resource
from influx_flight import AuthenticationError, InfluxDB3Config


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("auth_scheme", "Token", "Token"),
        ("verify_tls", False, False),
        ("query_timeout", 12.5, 12.5),
        ("write_timeout", None, None),
        ("write_url", "http://127.0.0.1:9999", "http://127.0.0.1:9999"),
        ("database", "other", "other"),
        ("receive_window", 16 * 1024 * 1024, 16 * 1024 * 1024),
        ("receive_window", None, None),
    ],
)
def test_settings_reach_the_core_config(field: str, value: Any, expected: Any) -> None:
    settings: dict[str, Any] = {"host": "http://127.0.0.1:8181", "database": "db", field: value}
    cfg = InfluxDB3Resource(**settings).to_config()
    assert isinstance(cfg, InfluxDB3Config)
    assert getattr(cfg, field) == expected


def test_every_config_field_is_a_resource_field_with_a_description() -> None:
    fields = InfluxDB3Resource.model_fields
    core = set(InfluxDB3Config.field_names()) - {"headers"}
    assert core <= set(fields), core - set(fields)
    assert all(f.description for f in fields.values())


def test_invalid_settings_fail_with_the_core_message() -> None:
    resource = InfluxDB3Resource(host="http://127.0.0.1:8181", database="db", auth_scheme="Basic")
    with pytest.raises(ValueError, match="auth_scheme: 'Basic' is not supported"):
        resource.to_config()


def test_repr_hides_the_token() -> None:
    resource = InfluxDB3Resource(host="http://h:8181", database="db", token="apiv3_secret_value")
    assert "apiv3_secret_value" not in repr(resource)
    assert "apiv3_secret_value" not in str(resource)
    assert "apiv3_secret_value" not in repr(resource.to_config())


def test_library_registers_itself() -> None:
    assert DagsterLibraryRegistry.get()["influxdb3-orchestration"] == dagster_influx.__version__


def test_query_and_write_in_a_run_with_envvar_token(
    influx: InfluxDB3Resource, token_env: str, db_name: str, capfd: pytest.CaptureFixture[str]
) -> None:
    seen: dict[str, Any] = {}

    @dg.asset
    def roundtrip(context: dg.AssetExecutionContext, influxdb: InfluxDB3Resource) -> None:
        table = pa.table(
            {
                "time": pa.array([1_000, 2_000, 3_000], pa.timestamp("ns")),
                "room": ["Kitchen", "Kitchen", "Office"],
                "temp": [21.5, 22.0, 19.25],
            }
        )
        written = influxdb.write(table, measurement="home", tags=["room"])
        seen["lines"] = written.lines_written
        seen["table"] = influxdb.query(
            "SELECT room, temp FROM home WHERE room = $room ORDER BY time",
            params={"room": "Kitchen"},
        )
        seen["frame"] = influxdb.query_pandas("SELECT count(*) AS n FROM home")
        context.log.info(f"resource in use: {influxdb!r}")

    result = dg.materialize([roundtrip], resources={"influxdb": influx})
    assert result.success
    assert seen["lines"] == 3
    assert seen["table"].to_pydict() == {"room": ["Kitchen", "Kitchen"], "temp": [21.5, 22.0]}
    assert int(seen["frame"]["n"].iloc[0]) == 3
    # The resolved token never reaches the event log (including the logged repr).
    assert token_env not in str([e.event_specific_data for e in result.all_events])
    assert token_env not in str([e.message for e in result.all_events])
    out, err = capfd.readouterr()
    assert "resource in use: InfluxDB3Resource(" in err  # the console log was captured
    assert token_env not in out + err


def test_one_client_per_run_closed_at_teardown(influx: InfluxDB3Resource, seeded: str) -> None:
    clients: list[Any] = []

    @dg.asset
    def first(influxdb: InfluxDB3Resource) -> None:
        with influxdb.get_client() as a, influxdb.get_client() as b:
            assert a is b
        assert not a.closed  # the block does not close the run's client
        a.check_connection()
        clients.append(a)

    @dg.asset(deps=[first])
    def second(influxdb: InfluxDB3Resource) -> None:
        with influxdb.get_client() as c:
            clients.append(c)

    assert dg.materialize([first, second], resources={"influxdb": influx}).success
    assert clients[0] is clients[1]
    assert clients[0].closed


def test_outside_a_run_each_block_gets_its_own_client(
    make_resource: Any, token_env: str, seeded: str
) -> None:
    resource = make_resource(seeded, token=token_env)
    with resource.get_client() as a:
        a.check_connection()
    assert a.closed
    with resource.get_client() as b:
        assert b is not a


def test_envvar_token_resolves_through_build_resources(
    influx: InfluxDB3Resource, seeded: str
) -> None:
    with dg.build_resources({"influxdb": influx}) as resources:
        table = resources.influxdb.query("SELECT 1 AS one")
    assert table.column("one").to_pylist() == [1]


def test_wrong_token_fails_the_step_with_an_authentication_error(
    make_resource: Any, monkeypatch: pytest.MonkeyPatch, db_name: str
) -> None:
    monkeypatch.setenv(TOKEN_ENV, "apiv3_wrong-token")

    @dg.asset
    def denied(influxdb: InfluxDB3Resource) -> None:
        influxdb.query("SELECT 1")

    with pytest.raises(AuthenticationError) as info:
        dg.materialize([denied], resources={"influxdb": make_resource(db_name)})
    assert "apiv3_wrong-token" not in str(info.value)
