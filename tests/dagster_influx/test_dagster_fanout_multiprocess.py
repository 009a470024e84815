"""Fan-out on Dagster's own machinery: a real asset backfill of 6 hourly partitions.

A persistent DagsterInstance in a temporary DAGSTER_HOME; the definitions load as a code
location (a ``dagster api grpc`` server process, as ``dagster dev`` or the daemon loads them);
the backfill is launched through the webserver's GraphQL mutation (``launchPartitionBackfill``,
what the UI's "Materialize selected" sends) and carried out by the backfill daemon's own
iteration (``execute_backfill_iteration``). ``BackfillPolicy.multi_run(max_partitions_per_run=3)``
makes it two runs, which the run launcher starts side by side, each in its own process on the
multiprocess executor (a process per step). Both assets are backfilled: the downsample asset
(written back to InfluxDB) and the export asset (a Hive-partitioned Parquet dataset).

Checked: two runs of 3 partitions each, tagged with the backfill, overlapping in time; every step
in its own process; the stored ``home_10m`` points and the Parquet dataset equal a serial,
partition-by-partition, in-process run; each partition committed by its own marker.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

pytest.importorskip("dagster_graphql")

HERE = Path(__file__).resolve().parent
T0 = datetime(2022, 1, 1, tzinfo=UTC)
ASSETS = ("home_10m", "home_export")


def _home_lines() -> str:
    """Two rooms, a reading every 2 minutes for 6 hours (an odd room name with a space)."""
    lines = []
    for step in range(6 * 30):
        ts = int((T0 + timedelta(minutes=2 * step)).timestamp())
        for r, room in enumerate(("Kitchen", "Living\\ Room")):
            lines.append(f"home,room={room} temp={20 + r + (step % 17) * 0.1},co={step % 5}i {ts}")
    return "\n".join(lines)


def _use(monkeypatch: pytest.MonkeyPatch, standin: Any, database: str, dataset: Path) -> None:
    for name, value in {
        "FANOUT_HOST": standin.flight_uri,
        "FANOUT_DATABASE": database,
        "FANOUT_TOKEN": standin.token,
        "FANOUT_DATASET": str(dataset),
    }.items():
        monkeypatch.setenv(name, value)


def _stored(standin: Any, database: str) -> pa.Table:
    from influx_flight import InfluxDB3Client

    with InfluxDB3Client(
        {"host": standin.flight_uri, "database": database, "token": standin.token}
    ) as client:
        return client.query(
            "SELECT time, room, temp_mean, temp_min, temp_max, co_max FROM home_10m "
            "WHERE time >= '2022-01-01T00:00:00Z' AND time < '2022-01-02T00:00:00Z' "
            "ORDER BY time, room"
        ).to_table()


def _dataset(path: Path) -> pa.Table:
    table = pads.dataset(path, format="parquet", partitioning="hive").to_table()
    return table.sort_by([("time", "ascending"), ("room", "ascending")])


def _launch_backfill(context: Any, partitions: list[str]) -> str:
    """Launch the backfill exactly as the UI does: the webserver's GraphQL mutation."""
    from dagster_graphql.client.query import LAUNCH_PARTITION_BACKFILL_MUTATION
    from dagster_graphql.test.utils import execute_dagster_graphql

    result = execute_dagster_graphql(
        context.create_request_context(),
        LAUNCH_PARTITION_BACKFILL_MUTATION,
        variables={
            "backfillParams": {
                "partitionNames": partitions,
                "assetSelection": [{"path": [name]} for name in ASSETS],
            }
        },
    )
    assert not result.errors, result.errors
    launched = result.data["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched
    return str(launched["backfillId"])


def _run_daemon_until_done(context: Any, instance: Any, backfill_id: str, timeout: float) -> Any:
    """The backfill daemon's loop, in this process: iterate until the backfill completes."""
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._daemon.backfill import execute_backfill_iteration

    logger = logging.getLogger("dagster.daemon.BackfillDaemon")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for error in execute_backfill_iteration(context, logger):
            assert error is None, error
        backfill = instance.get_backfill(backfill_id)
        if backfill.status not in (BulkActionStatus.REQUESTED,):
            return backfill
        time.sleep(0.5)
    raise AssertionError(f"backfill {backfill_id} did not finish within {timeout} s")


@pytest.mark.timeout(600)  # a code server, two runs and their step processes on 2 cores
def test_asset_backfill_daemon_multi_run_on_multiprocess_executor_equals_serial(
    standin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dagster._core.execution.backfill import BulkActionStatus
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget

    monkeypatch.syspath_prepend(str(HERE))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    import dagster_fanout_defs as fanout

    keys = fanout.PARTITIONS.get_partition_keys()
    assert len(keys) == 6 and fanout.POLICY.max_partitions_per_run == 3

    parallel_db, serial_db = "dg_fanout_parallel", "dg_fanout_serial"
    for db in (parallel_db, serial_db):
        standin.write_lp(db, _home_lines(), precision="s")

    # --- the backfill: persistent instance, code location process, GraphQL launch, daemon ---
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(
        "telemetry:\n  enabled: false\n"
        "run_coordinator:\n"
        "  module: dagster._core.run_coordinator\n"
        "  class: DefaultRunCoordinator\n"
    )
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    _use(monkeypatch, standin, parallel_db, tmp_path / "parallel")
    started = time.monotonic()
    with (
        dg.DagsterInstance.get() as instance,
        create_test_daemon_workspace_context(
            ModuleTarget(
                module_name="dagster_fanout_defs",
                attribute=None,
                working_directory=str(HERE),
                location_name="fanout",
            ),
            instance,
        ) as context,
    ):
        backfill_id = _launch_backfill(context, keys)
        backfill = _run_daemon_until_done(context, instance, backfill_id, timeout=420)
        assert backfill.status == BulkActionStatus.COMPLETED_SUCCESS, backfill
        records = instance.get_run_records(
            filters=dg.RunsFilter(tags={"dagster/backfill": backfill_id})
        )
        assert len(records) == 2  # 6 partitions, 3 per run
        assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
        ranges = sorted(
            (
                r.dagster_run.tags["dagster/asset_partition_range_start"],
                r.dagster_run.tags["dagster/asset_partition_range_end"],
            )
            for r in records
        )
        assert ranges == [(keys[0], keys[2]), (keys[3], keys[5])]
        spans = sorted((r.start_time, r.end_time) for r in records)
        assert all(b[0] < a[1] for a, b in itertools.pairwise(spans)), spans  # side by side
        pids: set[int] = set()
        for r in records:
            assert r.dagster_run.asset_selection == {dg.AssetKey(a) for a in ASSETS}
            logs = instance.all_logs(r.dagster_run.run_id)
            assert any("multiprocess executor" in (e.message or "") for e in logs)
            steps = {
                e.step_key: e.dagster_event.pid
                for e in logs
                if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_START"
            }
            assert set(steps) == set(ASSETS)
            pids |= set(steps.values())
        assert len(pids) == 4  # every step of every run in its own process
        materialized = {
            name: instance.get_materialized_partitions(dg.AssetKey(name)) for name in ASSETS
        }
        assert materialized == {name: set(keys) for name in ASSETS}
    backfill_seconds = time.monotonic() - started

    # --- serial: partition by partition, in this process ---
    _use(monkeypatch, standin, serial_db, tmp_path / "serial")
    serial_assets = fanout.build_assets(str(tmp_path / "serial"))
    for key in keys:
        result = dg.materialize(
            serial_assets,
            partition_key=key,
            resources=fanout.resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success

    parallel, serial = _stored(standin, parallel_db), _stored(standin, serial_db)
    assert parallel.num_rows == 6 * 6 * 2  # 6 hours x six 10-minute buckets x 2 rooms
    assert parallel.equals(serial)

    def files(root: Path) -> list[str]:
        return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())

    assert files(tmp_path / "parallel") == files(tmp_path / "serial")
    assert len([f for f in files(tmp_path / "parallel") if f.endswith(".parquet")]) == 12
    for h in range(6):
        marker = tmp_path / "parallel" / "date=2022-01-01" / f"hour={h:02d}" / "_SUCCESS"
        assert json.loads(marker.read_text())["rows"] == 30 * 2
    exported = _dataset(tmp_path / "parallel")
    assert exported.num_rows == 6 * 30 * 2
    assert exported.equals(_dataset(tmp_path / "serial"))
    print(f"backfill of {len(keys)} partitions: {backfill_seconds:.1f} s", file=sys.stderr)
