"""Every ```python block of docs/dagster.md runs as written AND does what the page says.

tests/docs/test_docs_examples.py only runs each docs block; a Dagster block that merely
defines assets proves little. Here each block is executed as written, in the environment a
reader exports (INFLUXDB3_HOST_URL, INFLUXDB3_DATABASE_NAME, INFLUXDB3_AUTH_TOKEN) against the
stand-in, then what it defines is materialised (``dg.materialize``, the ``Definitions``' own
job, the observation job or the ``dagster`` CLI) and the outcome is asserted: rows stored,
bucket starts, files written, check verdicts.

Each block is matched to its scenario by a name it defines; a block without a scenario fails
``test_every_block_has_a_scenario``, so a new snippet cannot go untested.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dagster_influx import InfluxDB3Resource
from influx_flight import InfluxDB3Client, InfluxDB3Config

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "dagster.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
DATABASE = "dagster_docs"
ROOMS = ("Kitchen", "Living Room")


def _sensor_lines(start: datetime, minutes: int) -> list[str]:
    """One point per room per minute: temperature, humidity (float) and co2 (integer)."""
    lines = []
    t0 = int(start.timestamp())
    for minute in range(minutes):
        for r, room in enumerate(ROOMS):
            temp = 20.0 + r + (minute % 30) / 10
            room_key = room.replace(" ", "\\ ")
            lines.append(
                f"sensors,room={room_key} temperature={temp:.1f},humidity={40 + minute % 7}.0,"
                f"co2={400 + minute % 50}i {t0 + minute * 60}"
            )
    return lines


def _meter_lines() -> list[str]:
    """1 kWh every hour (UTC) from 2024-03-29 to 2024-04-02: London days of 23/24 hours."""
    t0 = int(datetime(2024, 3, 29, tzinfo=UTC).timestamp())
    return [f"meter kwh=1.0 {t0 + h * 3600}" for h in range(24 * 4)]


@pytest.fixture(scope="module")
def docs_standin(standin: Any) -> Any:
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    lines = _sensor_lines(datetime(2024, 1, 1, tzinfo=UTC), 6 * 60)
    lines += _sensor_lines(now - timedelta(hours=2), 60)  # recent data for "the last day"
    standin.write_lp(DATABASE, "\n".join(lines), precision="s")
    standin.write_lp(DATABASE, "\n".join(_meter_lines()), precision="s")
    return standin


@pytest.fixture
def reader_env(docs_standin: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """What a reader exports (the stand-in prints these), cwd in a scratch directory."""
    monkeypatch.setenv("INFLUXDB3_HOST_URL", docs_standin.flight_uri.replace("grpc+tcp", "http"))
    monkeypatch.setenv("INFLUXDB3_DATABASE_NAME", DATABASE)
    monkeypatch.setenv("INFLUXDB3_AUTH_TOKEN", docs_standin.token)
    monkeypatch.delenv("INFLUXDB3_WRITE_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    return docs_standin


def _resource() -> InfluxDB3Resource:
    return InfluxDB3Resource(
        host=dg.EnvVar("INFLUXDB3_HOST_URL"),
        database=dg.EnvVar("INFLUXDB3_DATABASE_NAME"),
        token=dg.EnvVar("INFLUXDB3_AUTH_TOKEN"),
    )


def _sql(standin: Any, query: str, database: str = DATABASE) -> list[dict[str, Any]]:
    config = InfluxDB3Config(host=standin.flight_uri, database=database, token=standin.token)
    with InfluxDB3Client(config) as client:
        return client.query(query).to_table().to_pylist()


def _run_block(code: str, index: int) -> dict[str, Any]:
    namespace: dict[str, Any] = {"__name__": f"docs_dagster_block_{index}"}
    exec(
        compile(code, f"docs/dagster.md[python block {index}]", "exec", dont_inherit=True),
        namespace,
    )
    return namespace


def _block(marker: str) -> tuple[int, str]:
    (found,) = [(i, b) for i, b in enumerate(BLOCKS) if marker in b]
    return found


def _run_defs(defs: dg.Definitions, **kwargs: Any) -> dg.ExecuteInProcessResult:
    """Materialise everything the block's Definitions hold, with its own resources."""
    return defs.resolve_implicit_global_asset_job_def().execute_in_process(**kwargs)


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


# --- one scenario per block, keyed by a name the block defines ------------------------------


def resource_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """The resource from env vars; the asset counts the last day's rows per room."""
    result = _run_defs(ns["defs"])
    assert result.success
    (mat,) = result.asset_materializations_for_node("busiest_rooms")
    assert mat.metadata["rooms"].value == 2  # both rooms reported in the last day


def downsample_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """One hourly partition of sensors_5m: 12 five-minute buckets per room, written back."""
    result = dg.materialize(
        [ns["sensors_5m"]], resources={"influxdb": _resource()}, partition_key="2024-01-01-00:00"
    )
    assert result.success
    (mat,) = result.asset_materializations_for_node("sensors_5m")
    assert mat.metadata["points_written"].value == 24
    rows = _sql(
        standin,
        "SELECT room, count(*) AS n, min(temperature_spread) AS s FROM sensors_5m "
        "WHERE time >= '2024-01-01T00:00:00Z' AND time < '2024-01-01T01:00:00Z' "
        "GROUP BY room ORDER BY room",
    )
    assert [(r["room"], r["n"]) for r in rows] == [("Kitchen", 12), ("Living Room", 12)]
    assert all(r["s"] == pytest.approx(0.4) for r in rows)  # 5 minutes of +0.1 steps


def london_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """A single-run range over the spring DST change: one bucket per London day."""
    result = dg.materialize(
        [ns["meter_daily"]],
        resources={"influxdb": _resource()},
        tags={
            "dagster/asset_partition_range_start": "2024-03-30",
            "dagster/asset_partition_range_end": "2024-04-01",
        },
    )
    assert result.success
    mats = result.asset_materializations_for_node("meter_daily")
    assert {m.partition: m.metadata["dagster/partition_row_count"].value for m in mats} == {
        "2024-03-30": 1,
        "2024-03-31": 1,
        "2024-04-01": 1,
    }
    rows = _sql(
        standin,
        "SELECT time, kwh_sum FROM meter_daily WHERE time >= '2024-03-29T00:00:00Z' "
        "AND time < '2024-04-03T00:00:00Z' ORDER BY time",
    )
    starts = [r["time"].astimezone(UTC).isoformat() for r in rows]
    assert starts == [
        "2024-03-30T00:00:00+00:00",  # London midnight in GMT
        "2024-03-31T00:00:00+00:00",  # the 23-hour day
        "2024-03-31T23:00:00+00:00",  # London midnight in BST
    ]
    assert [r["kwh_sum"] for r in rows] == [24.0, 23.0, 24.0]


def prefix_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """Two prefixes, two databases: each table holds only its own asset's row."""
    result = _run_defs(ns["defs"])
    assert result.success
    assert _sql(standin, "SELECT value FROM readings", "site_a") == [{"value": 1.0}]
    assert _sql(standin, "SELECT value FROM readings", "site_b") == [{"value": 2.0}]


def io_manager_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """Store one hour's row, then load exactly that window into the consumer."""
    result = _run_defs(ns["defs"], partition_key="2024-01-01-05:00")
    assert result.success
    (mat,) = result.asset_materializations_for_node("room_scores")
    assert mat.metadata["dagster/table_name"].value == f"{DATABASE}.room_scores"
    assert mat.metadata["dagster/partition_row_count"].value == 1
    loaded = [
        e for e in result.all_events if e.event_type_value == "LOADED_INPUT"
    ]  # score_report's input came from InfluxDB
    assert len(loaded) == 1
    rows = _sql(standin, "SELECT room, score FROM room_scores")
    assert rows == [{"room": "Kitchen", "score": 0.9}]


def s3_block(
    ns: dict[str, Any], standin: Any, tmp_path: Path, *, monkeypatch: Any, s3_server: Any
) -> None:
    """The block as written, against moto's S3 server (signatures checked): the EnvVars hold
    the only valid key, the endpoint comes from AWS_ENDPOINT_URL_S3 (botocore's own setting,
    so the block needs no change); a partition is written to and read back from my-bucket."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret)
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_server.endpoint)
    s3_server.client("eu-west-1").create_bucket(
        Bucket="my-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
    )
    manager = ns["parquet_io"]
    assert s3_server.secret not in repr(manager)
    daily = dg.DailyPartitionsDefinition(start_date="2024-01-01")

    @dg.asset(partitions_def=daily, io_manager_key="parquet_io")
    def rooms() -> pa.Table:
        return pa.table({"room": ["Kitchen", "Hall"]})

    @dg.asset(partitions_def=daily, ins={"rooms": dg.AssetIn(input_manager_key="parquet_io")})
    def room_count(rooms: pa.Table) -> int:
        return rooms.num_rows

    result = dg.materialize(
        [rooms, room_count], resources={"parquet_io": manager}, partition_key="2024-01-01"
    )
    assert result.success and result.output_for_node("room_count") == 2
    listing = s3_server.client("eu-west-1").list_objects_v2(Bucket="my-bucket")
    assert [o["Key"] for o in listing["Contents"]] == ["exports/rooms/2024-01-01.parquet"]
    for event in result.all_events:
        assert s3_server.secret not in str(event)


def parquet_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """A day of sensors streamed into one Parquet file under ./exports."""
    result = _run_defs(ns["defs"], partition_key="2024-01-01")
    assert result.success
    table = pq.read_table(tmp_path / "exports" / "sensors_daily_parquet" / "2024-01-01.parquet")
    assert table.num_rows == 6 * 60 * 2


def observation_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """Observe the raw table (one data version per recent hour), then roll up an hour."""
    from dagster._core.definitions.observe import observe

    resources = {"influxdb": _resource()}
    with dg.instance_for_test() as instance:
        observed = observe([ns["sensors"]], instance=instance, resources=resources)
        assert observed.success
        versions = [
            e.event_specific_data.asset_observation
            for e in observed.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        rows = sum(o.metadata["rows"].value for o in versions)
        assert rows == 60 * 2  # the recent hour of both rooms, inside the 48h lookback
        result = dg.materialize(
            [ns["sensors_1h"]],
            resources=resources,
            partition_key="2024-01-01-00:00",
            instance=instance,
        )
        assert result.success
    (mat,) = result.asset_materializations_for_node("sensors_1h")
    assert mat.metadata["points_written"].value == 1


def checks_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """The checks against the sensors_5m asset defined earlier on the page."""
    index, code = _block("sensors_5m = build_downsample_asset(")
    sensors_5m = _run_block(code, index)["sensors_5m"]
    result = dg.materialize(
        [sensors_5m, *ns["checks"]],
        resources={"influxdb": _resource()},
        partition_key="2024-01-01-02:00",
    )
    assert result.success
    verdicts = _checks(result)
    assert {name: v.passed for name, v in verdicts.items()} == {
        "partition_has_data": True,
        "no_nulls_temperature_mean": True,
        "temperature_mean_in_range": True,
    }
    assert verdicts["partition_has_data"].metadata["rows"].value == 24


def export_block(ns: dict[str, Any], standin: Any, tmp_path: Path) -> None:
    """A range run of two hours (one run, as a multi_run backfill launches it): the export's
    15-minute files and per-hour markers, and the 10-minute buckets written back."""
    import json

    result = dg.materialize(
        [ns["sensors_parquet"], ns["sensors_10m"]],
        resources={"influxdb": _resource()},
        tags={
            "dagster/asset_partition_range_start": "2024-01-01-00:00",
            "dagster/asset_partition_range_end": "2024-01-01-01:00",
        },
    )
    assert result.success
    root = tmp_path / "exports" / "sensors"
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.parquet"))
    assert files == [
        f"date=2024-01-01/hour={h:02d}/minute={m:02d}/part-0.parquet"
        for h in (0, 1)
        for m in (0, 15, 30, 45)
    ]
    for h in (0, 1):
        marker = json.loads((root / f"date=2024-01-01/hour={h:02d}/_SUCCESS").read_text())
        assert marker["rows"] == 60 * 2 and marker["windows"] == 4
    counts = {
        m.partition: m.metadata["dagster/partition_row_count"].value
        for m in result.asset_materializations_for_node("sensors_parquet")
    }
    assert counts == {"2024-01-01-00:00": 120, "2024-01-01-01:00": 120}
    rows = _sql(
        standin,
        "SELECT count(*) AS n FROM sensors_10m "
        "WHERE time >= '2024-01-01T00:00:00Z' AND time < '2024-01-01T02:00:00Z'",
    )
    assert rows == [{"n": 12 * 2}]


SCENARIOS: dict[str, Callable[..., None]] = {
    "def busiest_rooms": resource_block,
    "sensors_5m = build_downsample_asset(": downsample_block,
    "meter_daily = build_downsample_asset(": london_block,
    "def site_b_readings": prefix_block,
    "def room_scores": io_manager_block,
    "storage=S3Config(": s3_block,
    "def sensors_daily_parquet": parquet_block,
    "sensors_1h = build_downsample_asset(": observation_block,
    "build_value_range_check(": checks_block,
    "sensors_parquet = build_export_asset(": export_block,
}


def _scenario(code: str) -> Callable[..., None]:
    (scenario,) = [s for marker, s in SCENARIOS.items() if marker in code]
    return scenario


def test_every_block_has_a_scenario() -> None:
    assert len(BLOCKS) == len(SCENARIOS)
    for code in BLOCKS:
        _scenario(code)


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_doc_block_materialises_against_the_standin(
    index: int,
    reader_env: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    code = BLOCKS[index]
    scenario = _scenario(code)
    namespace = _run_block(code, index)
    if "defs" in namespace:
        dg.Definitions.validate_loadable(namespace["defs"])
    kwargs: dict[str, Any] = {}
    if scenario is s3_block:
        kwargs = {"monkeypatch": monkeypatch, "s3_server": request.getfixturevalue("s3_server")}
    scenario(namespace, reader_env, tmp_path, **kwargs)


def test_parquet_block_through_the_dagster_cli(reader_env: Any, tmp_path: Path) -> None:
    """`dagster asset materialize -f <the block>`, as a reader would run it."""
    _, code = _block("def sensors_daily_parquet")
    script = tmp_path / "exports_defs.py"
    script.write_text(code, encoding="utf-8")
    home = tmp_path / "dagster_home"
    home.mkdir()
    import os

    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run(
        [
            str(Path(sys.executable).with_name("dagster")),
            "asset",
            "materialize",
            "-f",
            str(script),
            "--select",
            "sensors_daily_parquet",
            "--partition",
            "2024-01-02",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert reader_env.token not in done.stdout + done.stderr
    written = tmp_path / "exports" / "sensors_daily_parquet" / "2024-01-02.parquet"
    assert pq.read_table(written).num_rows == 0  # no sensors that day: an empty file
