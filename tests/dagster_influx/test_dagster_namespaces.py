"""Asset key prefix -> database, metadata overrides, and refusing assets that share a table.

The user's scenario: `["site_a", "readings"]` and `["site_b", "readings"]` both wrote one table
and site_a's consumer read site_b's rows, without any error. Now each prefix is a database,
and two assets that would still share a table are refused at load time (`validate_tables`)
and again before anything is written.
"""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pytest

from dagster_influx import (
    InfluxDB3IOManager,
    InfluxDB3Resource,
    build_downsample_asset,
    validate_tables,
)
from influx_flight import DownsampleSpec, InfluxDB3Error

T = pa.array([1_700_000_000_000_000_000, 1_700_000_060_000_000_000], pa.timestamp("ns", "UTC"))


def readings(
    prefix: str, value: float, metadata: dict[str, Any] | None = None
) -> dg.AssetsDefinition:
    @dg.asset(
        key=[prefix, "readings"],
        io_manager_key="influx_io",
        metadata={"tags": ["sensor"], **(metadata or {})},
    )
    def _readings() -> pa.Table:
        return pa.table({"time": T, "sensor": ["s1", "s2"], "value": [value, value]})

    return _readings


def consumer(prefix: str) -> dg.AssetsDefinition:
    @dg.asset(key=[prefix, "summary"], ins={"rows": dg.AssetIn(key=[prefix, "readings"])})
    def _summary(rows: pa.Table) -> dict[str, Any]:
        return {"n": rows.num_rows, "values": sorted(set(rows.column("value").to_pylist()))}

    return _summary


def test_two_prefixes_are_two_databases(
    influx: InfluxDB3Resource, db_name: str, make_resource: Callable[..., InfluxDB3Resource]
) -> None:
    site_a, site_b = f"{db_name}_a", f"{db_name}_b"
    assets = [readings(site_a, 1.0), readings(site_b, 2.0), consumer(site_a), consumer(site_b)]
    defs = validate_tables(
        dg.Definitions(assets=assets, resources={"influx_io": InfluxDB3IOManager(influxdb=influx)})
    )
    result = defs.resolve_implicit_global_asset_job_def().execute_in_process()
    assert result.success
    assert result.output_for_node(f"{site_a}__summary") == {"n": 2, "values": [1.0]}
    assert result.output_for_node(f"{site_b}__summary") == {"n": 2, "values": [2.0]}
    (mat,) = result.asset_materializations_for_node(f"{site_a}__readings")
    assert mat.metadata["dagster/table_name"].value == f"{site_a}.readings"
    for site, value in ((site_a, 1.0), (site_b, 2.0)):
        with dg.build_resources({"db": make_resource(site)}) as res:
            stored = res.db.query("SELECT value FROM readings")
        assert stored.column("value").to_pylist() == [value, value]


def test_metadata_names_database_and_table(
    influx: InfluxDB3Resource, db_name: str, make_resource: Callable[..., InfluxDB3Resource]
) -> None:
    target = f"{db_name}_x"
    asset = readings("ignored", 5.0, metadata={"database": target, "table": "r2"})
    result = dg.materialize([asset], resources={"influx_io": InfluxDB3IOManager(influxdb=influx)})
    assert result.success
    with dg.build_resources({"db": make_resource(target)}) as res:
        assert res.db.query("SELECT count(*) AS n FROM r2").column("n").to_pylist() == [2]


def test_io_manager_database_setting_beats_the_prefix(
    influx: InfluxDB3Resource, db_name: str, make_resource: Callable[..., InfluxDB3Resource]
) -> None:
    manager = InfluxDB3IOManager(influxdb=influx, database=f"{db_name}_all")
    result = dg.materialize([readings("site_a", 3.0)], resources={"influx_io": manager})
    assert result.success
    with dg.build_resources({"db": make_resource(f"{db_name}_all")}) as res:
        assert res.db.query("SELECT count(*) AS n FROM readings").column("n").to_pylist() == [2]


def test_two_assets_on_one_table_are_refused_at_load_and_before_writing(
    influx: InfluxDB3Resource, db_name: str, make_resource: Callable[..., InfluxDB3Resource]
) -> None:
    shared = {"database": f"{db_name}_shared", "table": "readings", "tags": ["sensor"]}
    first = readings("a", 1.0, metadata=shared)
    second = readings("b", 2.0, metadata=shared)
    resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
    with pytest.raises(dg.DagsterInvalidDefinitionError) as err:
        validate_tables(dg.Definitions(assets=[first, second], resources=resources))
    message = str(err.value)
    assert f"{db_name}_shared.readings: " in message
    assert "a/readings" in message and "b/readings" in message

    # without validate_tables, the IO manager refuses before the first write
    result = dg.materialize([first, second], resources=resources, raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].event_specific_data.error
    assert "store into the same InfluxDB 3 table" in str(failure)
    with (
        dg.build_resources({"db": make_resource(f"{db_name}_shared")}) as res,
        pytest.raises(InfluxDB3Error),  # nothing was written: no database, no table
    ):
        res.db.query("SELECT * FROM readings")


def _table_asset(key: list[str], io_manager_key: str, **metadata: Any) -> dg.AssetsDefinition:
    @dg.asset(key=key, io_manager_key=io_manager_key, metadata=metadata)
    def _rows() -> pa.Table:
        return pa.table({"time": T[:1], "value": [1.0]})

    return _rows


@pytest.mark.parametrize("form", ["two IO manager keys", "factory asset and IO manager asset"])
def test_materialize_checks_every_asset_it_is_given_before_writing(
    form: str, influx: InfluxDB3Resource, db_name: str
) -> None:
    """`dg.materialize` has no code location: the check covers its whole selection (with the
    run's resources), whichever IO manager or resource writes each asset; it used to compare
    only assets writing through the same IO manager key."""
    resources: dict[str, Any] = {
        "io_one": InfluxDB3IOManager(influxdb=influx),
        "io_two": InfluxDB3IOManager(influxdb=influx),
        "influxdb": influx,
    }
    if form == "two IO manager keys":
        assets = [
            _table_asset(["readings"], "io_one"),
            _table_asset(["other"], "io_two", table="readings"),
        ]
        table, names = "readings", ["readings", "other"]
        run: dict[str, Any] = {}
    else:
        spec = DownsampleSpec(
            source="cpu", window="1h", aggregates={"usage": ["mean"]}, target_measurement="cpu_1h"
        )
        daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")
        assets = [
            build_downsample_asset(spec, partitions_def=daily),
            _table_asset(["copy"], "io_one", table="cpu_1h"),
        ]
        table, names = "cpu_1h", ["cpu_1h", "copy"]
        run = {"partition_key": "2026-01-01"}
    result = dg.materialize(assets, resources=resources, raise_on_error=False, **run)
    assert not result.success
    failure = str(result.get_step_failure_events()[0].event_specific_data.error)
    assert "store into the same InfluxDB 3 table" in failure
    assert f"{db_name}.{table}: " in failure
    for name in names:
        assert name in failure
    _no_table(influx, table)


def test_two_downsampling_assets_writing_one_target_are_refused(influx: InfluxDB3Resource) -> None:
    spec = DownsampleSpec(
        source="cpu", window="1h", aggregates={"usage": ["mean"]}, target_measurement="cpu_1h"
    )
    daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")
    one = build_downsample_asset(spec, key="cpu_1h", partitions_def=daily)
    two = build_downsample_asset(spec, key="cpu_hourly", partitions_def=daily)
    with pytest.raises(
        dg.DagsterInvalidDefinitionError, match=r"cpu_1h: cpu_(1h|hourly), cpu_(1h|hourly)"
    ):
        validate_tables(dg.Definitions(assets=[one, two], resources={"influxdb": influx}))


_PRELUDE = """
import dagster as dg
import pyarrow as pa

from dagster_influx import InfluxDB3IOManager, InfluxDB3Resource, build_downsample_asset
from influx_flight import DownsampleSpec

T = pa.array([1_767_225_600_000_000_000], pa.timestamp("ns", "UTC"))
influx = InfluxDB3Resource(
    host=dg.EnvVar("INFLUXDB3_HOST_URL"),
    database=dg.EnvVar("INFLUXDB3_DATABASE_NAME"),
    token=dg.EnvVar("INFLUXDB3_AUTH_TOKEN"),
)
daily = dg.DailyPartitionsDefinition(start_date="2026-01-01")
spec = DownsampleSpec(
    source="cpu", window="1h", aggregates={"usage": ["mean"]}, target_measurement="cpu_1h"
)


def rows(key, io_manager_key="influx_io", **metadata):
    @dg.asset(key=key, io_manager_key=io_manager_key, metadata=metadata)
    def _rows() -> pa.Table:
        return pa.table({"time": T, "value": [1.0]})

    return _rows
"""

#: The forms two assets can share a table in, each run alone (one asset selected) by the
#: dagster CLI as the UI, a schedule or a sensor would: (code, selection, partition, names
#: the failure must give, the table that must stay unwritten).
FORMS = {
    "two prefixes, IO manager database setting": (
        """
defs = dg.Definitions(
    assets=[rows(["site_a", "readings"]), rows(["site_b", "readings"])],
    resources={"influx_io": InfluxDB3IOManager(influxdb=influx, database="{db}_one")},
)
""",
        "site_a/readings",
        None,
        ["{db}_one.readings", "site_a/readings", "site_b/readings"],
        ("{db}_one", "readings"),
    ),
    "two IO manager keys, metadata table": (
        """
defs = dg.Definitions(
    assets=[rows(["readings"], "io_one"), rows(["other"], "io_two", table="readings")],
    resources={
        "io_one": InfluxDB3IOManager(influxdb=influx),
        "io_two": InfluxDB3IOManager(influxdb=influx),
    },
)
""",
        "readings",
        None,
        ["${INFLUXDB3_DATABASE_NAME}.readings", "readings", "other"],
        ("{db}", "readings"),
    ),
    "factory asset and IO manager asset": (
        """
defs = dg.Definitions(
    assets=[build_downsample_asset(spec, partitions_def=daily), rows(["copy"], table="cpu_1h")],
    resources={"influxdb": influx, "influx_io": InfluxDB3IOManager(influxdb=influx)},
)
""",
        "cpu_1h",
        "2026-01-01",
        ["${INFLUXDB3_DATABASE_NAME}.cpu_1h", "cpu_1h", "copy"],
        ("{db}", "cpu_1h"),
    ),
    "two factory assets, two prefixes, one target_database": (
        """
import dataclasses

shared = dataclasses.replace(spec, target_database="{db}_rollups")
defs = dg.Definitions(
    assets=[
        build_downsample_asset(shared, key=["site_a", "cpu_1h"], partitions_def=daily),
        build_downsample_asset(shared, key=["site_b", "cpu_1h"], partitions_def=daily),
    ],
    resources={"influxdb": influx},
)
""",
        "site_b/cpu_1h",
        "2026-01-01",
        ["{db}_rollups.cpu_1h", "site_a/cpu_1h", "site_b/cpu_1h"],
        ("{db}_rollups", "cpu_1h"),
    ),
}


def test_definitions_built_as_the_docs_show_fail_to_load_in_every_form(
    seeded: str, tmp_path: Path
) -> None:
    """`defs = validate_tables(dg.Definitions(...))`, as every example in docs/dagster.md and
    example_dags/dagster_example.py builds them: `dagster definitions validate` (the code
    location load the UI and `dg check defs` do) fails for each form, naming the table and
    both assets, before any run."""
    command = [str(Path(sys.executable).with_name("dagster")), "definitions", "validate"]
    for number, (code, _select, _partition, _names, _table) in enumerate(FORMS.values()):
        module = tmp_path / f"shared_defs_{number}.py"
        text = _PRELUDE + code + "\nfrom dagster_influx import validate_tables\n\n"
        module.write_text(text.replace("{db}", seeded) + "defs = validate_tables(defs)\n")
        command += ["-f", str(module)]
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert output.count("store into the same InfluxDB 3 table") >= len(FORMS), output
    for _code, _select, _partition, names, _table in FORMS.values():
        for name in names:
            assert name.replace("{db}", seeded) in output


@pytest.mark.parametrize("form", list(FORMS))
def test_a_shared_table_fails_a_run_of_one_asset_before_writing(
    form: str,
    standin: Any,
    seeded: str,
    tmp_path: Path,
    make_resource: Callable[..., InfluxDB3Resource],
) -> None:
    """Without validate_tables: the run of ONE of the two assets (its own job) fails before it
    writes, naming both assets; the check sees the whole code location, not just the job."""
    code, select, partition, names, (database, table) = FORMS[form]
    module = tmp_path / "shared_defs.py"
    module.write_text(_PRELUDE + code.replace("{db}", seeded), encoding="utf-8")
    (tmp_path / "home").mkdir()
    env = {
        **os.environ,
        "DAGSTER_HOME": str(tmp_path / "home"),
        "INFLUXDB3_HOST_URL": standin.flight_uri,
        "INFLUXDB3_DATABASE_NAME": seeded,
        "INFLUXDB3_AUTH_TOKEN": standin.token,
    }
    command = [str(Path(sys.executable).with_name("dagster")), "asset", "materialize"]
    command += ["-f", str(module), "--select", select]
    command += ["--partition", partition] if partition else []
    done = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "store into the same InfluxDB 3 table" in output
    for name in names:
        assert name.replace("{db}", seeded) in output
    _no_table(make_resource(database.replace("{db}", seeded)), table)


def _no_table(resource: InfluxDB3Resource, table: str) -> None:
    with dg.build_resources({"db": resource}) as res, pytest.raises(InfluxDB3Error):
        res.db.query(f"SELECT * FROM {table}")  # nothing was written
