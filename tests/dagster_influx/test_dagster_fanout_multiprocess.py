"""Fan-out on Dagster's own executors: 6 hourly partitions backfilled as multi-run chunks of 3
(``BackfillPolicy.multi_run(max_partitions_per_run=3)``), the chunks' runs at the same time,
each run on the multiprocess executor; the stored data equals a serial run, partition by
partition, with the in-process executor.

The runs are launched as a backfill daemon would launch them for that policy (one run per chunk
of consecutive partitions, tagged with the partition range), each in its own process sharing one
persistent DagsterInstance.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.dataset as pads
import pytest

HERE = Path(__file__).resolve().parent
T0 = datetime(2022, 1, 1, tzinfo=UTC)

_RUN_CHUNK = textwrap.dedent(
    """
    import sys, warnings
    warnings.simplefilter("ignore")
    from dagster import DagsterInstance, execute_job, reconstructable
    from dagster_fanout_defs import get_fanout_job
    first, last = sys.argv[1], sys.argv[2]
    with DagsterInstance.get() as instance:
        result = execute_job(
            reconstructable(get_fanout_job),
            instance=instance,
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
        )
        print(result.run_id)
        sys.exit(0 if result.success else 1)
    """
)


def _home_lines() -> str:
    """Two rooms, a reading every 2 minutes for 6 hours (an odd room name with a space)."""
    lines = []
    for step in range(6 * 30):
        ts = int((T0 + timedelta(minutes=2 * step)).timestamp())
        for r, room in enumerate(("Kitchen", "Living\\ Room")):
            lines.append(f"home,room={room} temp={20 + r + (step % 17) * 0.1},co={step % 5}i {ts}")
    return "\n".join(lines)


def _env(standin: Any, database: str, dataset: Path, home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
        "DAGSTER_HOME": str(home),
        "FANOUT_HOST": standin.flight_uri,
        "FANOUT_WRITE_URL": standin.http_url,
        "FANOUT_DATABASE": database,
        "FANOUT_TOKEN": standin.token,
        "FANOUT_DATASET": str(dataset),
    }


def _stored(standin: Any, database: str) -> pa.Table:
    from influx_flight import InfluxDB3Client

    with InfluxDB3Client(
        {"host": standin.flight_uri, "database": database, "token": standin.token}
    ) as client:
        return client.query(
            "SELECT time, room, temp_mean, temp_min, temp_max, co_max FROM home_10m "
            "ORDER BY time, room"
        ).to_table()


def _dataset(path: Path) -> pa.Table:
    table = pads.dataset(path, format="parquet", partitioning="hive").to_table()
    return table.sort_by([("time", "ascending"), ("room", "ascending")])


@pytest.mark.timeout(900)  # the suite's 300 s default is for one process, this is ~10
def test_multi_run_backfill_on_multiprocess_executor_equals_serial(
    standin: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sys.path.insert(0, str(HERE))
    import dagster_fanout_defs as defs

    keys = defs.PARTITIONS.get_partition_keys()
    assert len(keys) == 6
    k = defs.POLICY.max_partitions_per_run
    assert k == 3
    chunks = [keys[i : i + k] for i in range(0, len(keys), k)]

    parallel_db, serial_db = "dg_fanout_parallel", "dg_fanout_serial"
    for db in (parallel_db, serial_db):
        standin.write_lp(db, _home_lines(), precision="s")

    # Parallel: one process per chunk, all at once, each run on the multiprocess executor.
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    with dg.DagsterInstance.from_config(str(home)):
        pass  # create and migrate the shared storage once, before the runs race for it
    env = _env(standin, parallel_db, tmp_path / "parallel", home)
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RUN_CHUNK, chunk[0], chunk[-1]],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for chunk in chunks
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    for p, (_out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err[-4000:]

    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records()
        assert len(records) == len(chunks)
        assert {r.dagster_run.status for r in records} == {dg.DagsterRunStatus.SUCCESS}
        ranges = sorted(
            (
                r.dagster_run.tags["dagster/asset_partition_range_start"],
                r.dagster_run.tags["dagster/asset_partition_range_end"],
            )
            for r in records
        )
        assert ranges == [(c[0], c[-1]) for c in chunks]
        spans = sorted((r.start_time, r.end_time) for r in records)
        assert any(b[0] < a[1] for a, b in itertools.pairwise(spans)), spans  # runs overlapped
        for r in records:
            messages = [
                e.message
                for e in instance.all_logs(r.dagster_run.run_id)
                if e.message and "multiprocess executor" in e.message
            ]
            assert messages, "the run did not use the multiprocess executor"
            step_pids = {
                e.dagster_event.pid
                for e in instance.all_logs(r.dagster_run.run_id)
                if e.dagster_event is not None and e.dagster_event.event_type_value == "STEP_START"
            }
            assert len(step_pids) == 2  # downsample and export in their own processes

    # Serial: partition by partition, in-process.
    serial_env = _env(standin, serial_db, tmp_path / "serial", home)
    for name in ("FANOUT_HOST", "FANOUT_WRITE_URL", "FANOUT_DATABASE", "FANOUT_TOKEN"):
        monkeypatch.setenv(name, serial_env[name])
    monkeypatch.setenv("FANOUT_DATASET", serial_env["FANOUT_DATASET"])
    for key in keys:
        result = dg.materialize(
            [defs.home_10m, defs.home_export],
            partition_key=key,
            resources=defs.resources,
            instance=dg.DagsterInstance.ephemeral(),
        )
        assert result.success

    parallel, serial = _stored(standin, parallel_db), _stored(standin, serial_db)
    assert parallel.num_rows == 6 * 6 * 2  # 6 hours x six 10-minute buckets x 2 rooms
    assert parallel.equals(serial)

    par_files = sorted(
        p.relative_to(tmp_path / "parallel") for p in (tmp_path / "parallel").rglob("*.parquet")
    )
    ser_files = sorted(
        p.relative_to(tmp_path / "serial") for p in (tmp_path / "serial").rglob("*.parquet")
    )
    assert par_files == ser_files and len(par_files) == 6
    exported = _dataset(tmp_path / "parallel")
    assert exported.num_rows == 6 * 30 * 2
    assert exported.equals(_dataset(tmp_path / "serial"))
