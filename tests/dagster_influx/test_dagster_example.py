"""example_dags/dagster_example.py: validates, materialises against the stand-in (twice, with
identical results), and shows its assets through `dagster dev`'s GraphQL endpoint."""

import contextlib
import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from types import ModuleType
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from dagster._core.definitions.observe import observe as observe_sources
from dagster_support import TOKEN_ENV

from influx_flight.server.demo_data import DemoSpec, generate_batches, load_demo_data

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
DEMO = DemoSpec(rooms=2, sensors=2, days=4 / 24, interval_s=30)  # 00:00-04:00 on 2024-01-01


@pytest.fixture
def example(
    standin: Any, db_name: str, token_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> ModuleType:
    """The example module configured for the stand-in, with four hours of demo data."""
    load_demo_data(standin.engine, db_name, DEMO)
    monkeypatch.setenv("INFLUXDB3_HOST_URL", standin.flight_uri)
    monkeypatch.setenv("INFLUXDB3_DATABASE_NAME", db_name)
    monkeypatch.setenv("INFLUXDB3_WRITE_URL", standin.http_url)
    monkeypatch.setenv("DAGSTER_EXAMPLE_EXPORT_DIR", str(tmp_path / "exports"))
    import example_dags.dagster_example as module

    return importlib.reload(module)  # re-read INFLUXDB3_WRITE_URL and the export dir


def run(example: ModuleType, selection: list[Any], **kwargs: Any) -> dg.ExecuteInProcessResult:
    everything = [example.raw_sensors, example.sensors_5m, example.sensors_5m_daily_parquet]
    result = dg.materialize(
        [*everything, *example.checks],
        resources=example.defs.resources,
        selection=selection,
        **kwargs,
    )
    assert result.success
    return result


def expected_rollups() -> dict[tuple[int, str], tuple[float, float]]:
    """Mean temperature and co2 count per (bucket start ns, room), computed with pyarrow."""
    raw = pa.Table.from_batches(list(generate_batches(DEMO)))
    five_min = 300 * 10**9
    bucket = pc.multiply(pc.divide(raw.column("time").cast(pa.int64()), five_min), five_min)
    grouped = (
        pa.table(
            {
                "bucket": bucket,
                "room": raw.column("room").cast(pa.string()),
                "t": raw.column("temperature"),
                "c": raw.column("co2"),
            }
        )
        .group_by(["bucket", "room"])
        .aggregate([("t", "mean"), ("c", "count")])
    )
    return {
        (b, r): (round(t, 9), float(c))
        for b, r, t, c in zip(
            grouped.column("bucket").to_pylist(),
            grouped.column("room").to_pylist(),
            grouped.column("t_mean").to_pylist(),
            grouped.column("c_count").to_pylist(),
            strict=True,
        )
    }


def stored(example: ModuleType) -> pa.Table:
    with dg.build_resources({"influxdb": example.defs.resources["influxdb"]}) as res:
        return res.influxdb.query("SELECT * FROM sensors_5m ORDER BY time, room")


def test_example_validates_with_the_cli() -> None:
    proc = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-m", "example_dags.dagster_example"],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB3_")},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Validation successful" in proc.stdout + proc.stderr


def test_example_partition_and_backfill_twice_give_identical_data(
    example: ModuleType, token_env: str
) -> None:
    hourly_selection = [example.sensors_5m, *example.checks]
    snapshots = []
    for _ in range(2):
        one = run(example, hourly_selection, partition_key="2024-01-01-00:00")
        evaluations = one.get_asset_check_evaluations()
        assert len(evaluations) == 3 and all(e.passed for e in evaluations)
        backfill = run(
            example,
            hourly_selection,
            tags={
                "dagster/asset_partition_range_start": "2024-01-01-01:00",
                "dagster/asset_partition_range_end": "2024-01-01-03:00",
            },
        )
        mats = backfill.asset_materializations_for_node("sensors_5m")
        assert sorted(m.partition for m in mats) == [f"2024-01-01-0{h}:00" for h in (1, 2, 3)]
        for mat in mats:  # one run, one materialisation per partition, same run metadata
            assert mat.metadata["query_windows"].value == 3  # chunk="1h": a query per hour
            assert mat.metadata["points_written"].value == 3 * 12 * DEMO.rooms
        export = run(example, [example.sensors_5m_daily_parquet], partition_key="2024-01-01")
        (emat,) = export.asset_materializations_for_node("sensors_5m_daily_parquet")
        path = Path(emat.metadata["path"].value)
        assert path.name == "2024-01-01.parquet"
        for result in (one, backfill, export):
            for event in result.all_events:
                assert token_env not in str(event.message) + str(event.event_specific_data)
        snapshots.append((stored(example), pq.read_table(path)))

    (table, exported), (table_again, exported_again) = snapshots
    assert table.num_rows == 4 * 12 * DEMO.rooms
    assert exported.num_rows == table.num_rows
    got = {
        (t, r): (round(m, 9), float(c))
        for t, r, m, c in zip(
            table.column("time").cast(pa.timestamp("ns", tz="UTC")).cast(pa.int64()).to_pylist(),
            table.column("room").to_pylist(),
            table.column("temperature_mean").to_pylist(),
            table.column("co2_count").to_pylist(),
            strict=True,
        )
    }
    assert got == expected_rollups()
    assert table_again.equals(table)
    assert exported_again.equals(exported)


def test_example_observes_the_raw_table_per_hour(example: ModuleType) -> None:
    result = observe_sources([example.raw_sensors], resources=example.defs.resources)
    versions = {
        e.event_specific_data.asset_observation.partition: e.event_specific_data.asset_observation
        for e in result.all_events
        if e.event_type_value == "ASSET_OBSERVATION"
    }
    assert len(versions) == 24  # every hour of the example's day lies in the 48-hour lookback
    # 2 rooms x 2 sensors, one reading every 30 s: 480 rows an hour
    assert versions["2024-01-01-03:00"].tags["dagster/data_version"] == (
        "480 rows, latest 2024-01-01T03:59:30Z"
    )
    assert versions["2024-01-01-05:00"].tags["dagster/data_version"] == "no rows"


# -- `dagster dev` smoke test ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def graphql(port: int, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.mark.slow
def test_dagster_dev_serves_the_example_assets(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB3_")},
        "DAGSTER_HOME": str(tmp_path / "home"),
        TOKEN_ENV: "apiv3_never-shown-in-the-ui",
    }
    (tmp_path / "home").mkdir()
    log = (tmp_path / "dev.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "dagster"),
            "dev",
            "-m",
            "example_dags.dagster_example",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so the whole tree can be stopped
    )
    try:
        deadline = time.monotonic() + 150
        keys: set[str] = set()
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                data = graphql(port, "{ assetNodes { assetKey { path } } }")
            except OSError:
                time.sleep(1)
                continue
            nodes = (data.get("data") or {}).get("assetNodes") or []
            keys = {"/".join(n["assetKey"]["path"]) for n in nodes}
            if keys:
                break
            time.sleep(1)
        assert keys >= {"sensors", "sensors_5m", "sensors_5m_daily_parquet"}, (
            tmp_path / "dev.log"
        ).read_text()[-3000:]
        checks = graphql(
            port,
            '{ assetNodeOrError(assetKey: {path: ["sensors_5m"]}) {'
            " ... on AssetNode { assetChecksOrError { ... on AssetChecks { checks { name } } } } } }",
        )
        names = {
            c["name"] for c in checks["data"]["assetNodeOrError"]["assetChecksOrError"]["checks"]
        }
        assert names == {
            "partition_has_data",
            "no_nulls_temperature_mean",
            "temperature_mean_in_range",
        }
        resource = graphql(
            port,
            "{ topLevelResourceDetailsOrError(resourceSelector: {repositoryLocationName:"
            ' "example_dags.dagster_example", repositoryName: "__repository__",'
            ' resourceName: "influxdb"}) { ... on ResourceDetails {'
            " configuredValues { key value type } } } }",
        )
        values = {
            v["key"]: v
            for v in resource["data"]["topLevelResourceDetailsOrError"]["configuredValues"]
        }
        assert values["token"]["type"] == "ENV_VAR"
        assert values["token"]["value"] == TOKEN_ENV  # the variable's name, not its value
        everything = json.dumps(resource) + json.dumps(
            graphql(
                port, "{ assetNodes { assetKey { path } description metadataEntries { label } } }"
            )
        )
        assert "apiv3_never-shown-in-the-ui" not in everything
    finally:
        stop_group(proc)
        log.close()


def stop_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, then SIGKILL whatever is left of it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
