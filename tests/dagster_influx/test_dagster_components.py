"""Components: YAML declaration through Dagster's sandbox, EnvVar token, registry entry point."""

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml
from dagster.components.core.package_entry import discover_entry_point_package_objects
from dagster.components.testing import create_defs_folder_sandbox
from dagster_support import TOKEN_ENV

from dagster_influx import (
    InfluxDB3DownsampleComponent,
    InfluxDB3Resource,
    InfluxDB3ResourceComponent,
)

REPO = Path(__file__).resolve().parents[2]


def resource_yaml(standin: Any, database: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "dagster_influx.InfluxDB3ResourceComponent",
        "attributes": {
            "host": standin.flight_uri,
            "write_url": standin.http_url,
            "database": database,
            "token_env_var": TOKEN_ENV,
            **extra,
        },
    }


DOWNSAMPLE_YAML: dict[str, Any] = {
    "type": "dagster_influx.InfluxDB3DownsampleComponent",
    "attributes": {
        "source": "cpu",
        "window": "15m",
        "aggregates": {"usage": ["mean", "count"]},
        "group_by": ["host"],
        "target_measurement": "cpu_15m",
        "asset_key": "telegraf/cpu_15m",
        "source_key": "telegraf/cpu",
        "partitions_def": {"type": "hourly", "start_date": "2026-01-01-00:00"},
        "backfill_policy": {"type": "single_run"},
    },
}


def test_resource_component_keeps_the_token_as_an_env_var_name(
    standin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(TOKEN_ENV, raising=False)  # loading must not need the value
    with create_defs_folder_sandbox() as sandbox:
        path = sandbox.scaffold_component(
            component_cls=InfluxDB3ResourceComponent,
            defs_yaml_contents=resource_yaml(standin, "db", resource_key="tsdb"),
        )
        with sandbox.load_component_and_build_defs(defs_path=path) as (component, defs):
            assert isinstance(component, InfluxDB3ResourceComponent)
            resource = defs.resources["tsdb"]
            assert isinstance(resource, InfluxDB3Resource)
            assert resource.token == dg.EnvVar(TOKEN_ENV)
            assert resource.host == standin.flight_uri


def test_yaml_components_materialise_a_partition(standin: Any, seeded: str, token_env: str) -> None:
    with create_defs_folder_sandbox() as sandbox:
        sandbox.scaffold_component(
            component_cls=InfluxDB3ResourceComponent,
            defs_path="influxdb",
            defs_yaml_contents=resource_yaml(standin, seeded),
        )
        # the key prefix names the database the buckets go to (the test's own)
        attributes = {**DOWNSAMPLE_YAML["attributes"], "asset_key": f"{seeded}/cpu_15m"}
        sandbox.scaffold_component(
            component_cls=InfluxDB3DownsampleComponent,
            defs_path="cpu_15m",
            defs_yaml_contents={**DOWNSAMPLE_YAML, "attributes": attributes},
        )
        with sandbox.build_all_defs() as defs:
            dg.Definitions.validate_loadable(defs)
            asset = defs.get_assets_def(dg.AssetKey([seeded, "cpu_15m"]))
            assert asset.backfill_policy == dg.BackfillPolicy.single_run()
            assert dg.AssetKey(["telegraf", "cpu"]) in asset.asset_deps[asset.key]
            job = defs.resolve_implicit_global_asset_job_def()
            result = job.execute_in_process(partition_key="2026-01-01-02:00")
    assert result.success
    (mat,) = result.asset_materializations_for_node(f"{seeded}__cpu_15m")
    assert mat.metadata["points_written"].value == 8  # 4 buckets x 2 hosts
    assert token_env not in repr(dict(mat.metadata))
    with dg.build_resources(
        {
            "influxdb": InfluxDB3Resource(
                host=standin.flight_uri, database=seeded, token=dg.EnvVar(TOKEN_ENV)
            )
        }
    ) as res:
        table = res.influxdb.query("SELECT * FROM cpu_15m ORDER BY time, host")
    assert table.column("usage_count").to_pylist() == [15] * 8


def test_component_attributes_are_checked_by_the_core() -> None:
    attributes = dict(DOWNSAMPLE_YAML["attributes"], aggregates={"usage": ["avgg"]})
    component = InfluxDB3DownsampleComponent.from_attributes_dict(attributes=attributes)
    with pytest.raises(ValueError, match="unknown aggregate 'avgg' for field 'usage'"):
        component.build_spec()


def test_resource_component_mirrors_the_resource_fields() -> None:
    resource_fields = set(InfluxDB3Resource.model_fields) - {"token"}
    component_fields = set(InfluxDB3ResourceComponent.model_fields)
    assert component_fields == resource_fields | {"token_env_var", "resource_key"}


def test_components_are_registered_for_dg() -> None:
    names = {
        key.name
        for key in discover_entry_point_package_objects()
        if key.namespace == "dagster_influx.components"
    }
    assert set(SCAFFOLDED.values()) <= names


def test_example_defs_folder_validates() -> None:
    env = {
        **os.environ,
        "INFLUXDB3_HOST_URL": "http://127.0.0.1:8181",
        "INFLUXDB3_DATABASE_NAME": "demo",
    }
    proc = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "definitions",
            "validate",
            "-m",
            "example_dags.dagster_components.definitions",
        ],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Validation successful" in proc.stderr + proc.stdout


SCAFFOLDED = {
    "influxdb": "InfluxDB3ResourceComponent",
    "influx_io": "InfluxDB3IOManagerComponent",
    "parquet_io": "ParquetIOManagerComponent",
    "cpu_1h": "InfluxDB3DownsampleComponent",
    "cpu_1h_checks": "InfluxDB3ChecksComponent",
    "cpu": "InfluxDB3ObservationComponent",
}


def test_dg_scaffold_templates_pass_dg_check_defs(tmp_path: Path) -> None:
    """`dg scaffold defs` of every component writes a defs.yaml that `dg check defs` accepts.

    The user's scenario: the scaffold wrote `attributes: {}`, which `dg check yaml` accepted
    and `dg check defs` rejected. One component goes through the `dg scaffold defs` CLI, the
    others through the function it calls (the CLI takes ~25 s per call); then the real
    `dg check defs` loads them all, with no token in the environment.
    """
    from dagster.components.component_scaffolding import scaffold_object

    project = _dg_project(tmp_path / "proj")
    cli = _dg(project, "scaffold", "defs", "dagster_influx.InfluxDB3ResourceComponent", "influxdb")
    assert cli.returncode == 0, cli.stderr[-2000:]
    for path, name in SCAFFOLDED.items():
        if path == "influxdb":
            continue
        target = project / "myproj" / "defs" / path
        target.mkdir()
        scaffold_object(target, f"dagster_influx.{name}", None, "yaml", project)
    for path, name in SCAFFOLDED.items():
        text = (project / "myproj" / "defs" / path / "defs.yaml").read_text()
        assert text.startswith(f"type: dagster_influx.{name}\n")
        assert "attributes: {}" not in text and "#" in text  # filled and commented
    check = _dg(project, "check", "defs")
    assert check.returncode == 0, (check.stdout + check.stderr)[-3000:]
    assert "All definitions loaded successfully" in check.stdout + check.stderr


def _dg_project(project: Path) -> Path:
    """A `dg` project as `create-dagster project` lays it out, using our registry module."""
    (project / "myproj" / "defs").mkdir(parents=True)
    (project / "myproj" / "__init__.py").touch()
    (project / "myproj" / "defs" / "__init__.py").touch()
    (project / "myproj" / "definitions.py").write_text(
        "from pathlib import Path\n\nimport dagster as dg\n\n"
        "defs = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)\n"
    )
    (project / "dg.toml").write_text(
        'directory_type = "project"\n\n[project]\nroot_module = "myproj"\n'
        'registry_modules = ["dagster_influx.components"]\n'
    )
    return project


def _dg(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != TOKEN_ENV}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        [str(Path(sys.executable).parent / "dg"), *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _yaml_file(path: Path, component: str, **attributes: Any) -> None:
    path.mkdir(parents=True)
    document = {"type": f"dagster_influx.{component}", "attributes": attributes}
    (path / "defs.yaml").write_text(yaml.safe_dump(document, sort_keys=False))


def test_python_assets_sharing_a_table_fail_dg_check_defs_with_the_connection_component(
    tmp_path: Path,
) -> None:
    """A `dg` project whose only component of ours is the connection (`InfluxDB3ResourceComponent`),
    with Python assets and a Python IO manager in its defs folder: two key prefixes mapped to
    one database by the IO manager fail the load, naming both assets and the table."""
    project = _dg_project(tmp_path / "proj")
    defs = project / "myproj" / "defs"
    connection = {"host": "http://127.0.0.1:8181", "database": "mydb", "token_env_var": TOKEN_ENV}
    _yaml_file(defs / "influxdb", "InfluxDB3ResourceComponent", **connection)
    (defs / "readings.py").write_text(
        "import dagster as dg\nimport pyarrow as pa\n\n"
        "from dagster_influx import InfluxDB3IOManager, InfluxDB3Resource\n\n\n"
        "def readings(site):\n"
        '    @dg.asset(key=[site, "readings"], io_manager_key="influx_io")\n'
        "    def _readings() -> pa.Table:\n"
        '        return pa.table({"time": pa.array([0], pa.timestamp("s", "UTC")), "v": [1.0]})\n\n'
        "    return _readings\n\n\n"
        "@dg.definitions\n"
        "def defs() -> dg.Definitions:\n"
        '    influx = InfluxDB3Resource(host="http://127.0.0.1:8181", database="mydb")\n'
        "    return dg.Definitions(\n"
        '        assets=[readings("site_a"), readings("site_b")],\n'
        '        resources={"influx_io": InfluxDB3IOManager(influxdb=influx, database="all")},\n'
        "    )\n"
    )
    check = _dg(project, "check", "defs")
    output = check.stdout + check.stderr
    assert check.returncode != 0, output[-3000:]
    assert re.search(
        r"all\.readings: (site_a/readings, site_b|site_b/readings, site_a)/readings", output
    )


def test_components_sharing_a_table_fail_dg_check_defs(tmp_path: Path) -> None:
    """Two assets that would share a table fail the project's load (`dg check defs`, the UI's
    code location load), with nothing called by the user: two YAML downsampling assets (two
    prefixes, one `target_database`), and a YAML one with a Python asset stored through a
    YAML IO manager whose metadata names the same table. The message names each table and
    both of its assets."""
    project = _dg_project(tmp_path / "proj")
    defs = project / "myproj" / "defs"
    connection = {"host": "http://127.0.0.1:8181", "database": "mydb", "token_env_var": TOKEN_ENV}
    _yaml_file(defs / "influxdb", "InfluxDB3ResourceComponent", **connection)
    _yaml_file(defs / "io", "InfluxDB3IOManagerComponent", **connection, io_manager_key="io")
    daily = {"type": "daily", "start_date": "2026-01-01"}
    for site in ("site_a", "site_b"):
        _yaml_file(
            defs / site,
            "InfluxDB3DownsampleComponent",
            source="cpu",
            window="1h",
            aggregates={"usage": ["mean"]},
            target_measurement="cpu_1h",
            target_database="rollups",
            asset_key=f"{site}/cpu_1h",
            partitions_def=daily,
        )
    _yaml_file(
        defs / "cpu_5m",
        "InfluxDB3DownsampleComponent",
        source="cpu",
        window="5m",
        aggregates={"usage": ["mean"]},
        target_measurement="cpu_5m",
        partitions_def=daily,
    )
    (defs / "copies.py").write_text(
        "import dagster as dg\nimport pyarrow as pa\n\n\n"
        '@dg.asset(key="copy", io_manager_key="io", metadata={"table": "cpu_5m"})\n'
        "def copy() -> pa.Table:\n"
        '    return pa.table({"time": pa.array([0], pa.timestamp("s", "UTC")), "usage": [1.0]})\n'
    )
    check = _dg(project, "check", "defs")
    output = check.stdout + check.stderr
    assert check.returncode != 0, output[-3000:]
    assert "store into the same InfluxDB 3 table" in output
    assert re.search(
        r"rollups\.cpu_1h: (site_a/cpu_1h, site_b|site_b/cpu_1h, site_a)/cpu_1h", output
    )
    assert re.search(r"mydb\.cpu_5m: (cpu_5m, copy|copy, cpu_5m)[;.]", output)


def test_scaffolded_components_build_what_they_say(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-used-at-load")
    with create_defs_folder_sandbox() as sandbox:
        for path, name in SCAFFOLDED.items():
            sandbox.scaffold_component(
                component_cls=getattr(__import__("dagster_influx"), name), defs_path=path
            )
        parquet = sandbox.defs_folder_path / "parquet_io" / "defs.yaml"
        parquet.write_text(
            parquet.read_text()
            .replace("provider: local", "provider: s3")
            .replace("storage: {}", "storage: {region: eu-west-1}")
            .replace(
                "secret_env_vars: {}", "secret_env_vars: {secret_access_key: AWS_SECRET_ACCESS_KEY}"
            )
        )
        with sandbox.build_all_defs() as defs:
            dg.Definitions.validate_loadable(defs)
            resources = defs.resources or {}
            assert isinstance(resources["influxdb"], InfluxDB3Resource)
            assert resources["influx_io"].influxdb.token == dg.EnvVar(TOKEN_ENV)
            storage = resources["parquet_io"].storage
            assert storage.provider == "s3" and storage.region == "eu-west-1"
            assert storage.secret_access_key == dg.EnvVar("AWS_SECRET_ACCESS_KEY")
            assert defs.get_assets_def(dg.AssetKey("cpu_1h")).partitions_def is not None
            assert defs.get_assets_def(dg.AssetKey("cpu")).is_observable
            check_names = {
                key.name for checks in defs.asset_checks or () for key in checks.check_keys
            }
            assert check_names == {
                "partition_has_data",
                "no_nulls_usage_mean",
                "usage_mean_in_range",
            }
