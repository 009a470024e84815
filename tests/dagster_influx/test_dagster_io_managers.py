"""InfluxDB3IOManager and ParquetIOManager: query text, writes, loads, partitions, refusals."""

from datetime import timedelta
from pathlib import Path

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._core.definitions.partitions.utils import TimeWindow
from dagster._core.storage.db_io_manager import TablePartitionDimension, TableSlice
from dagster_support import hour

from dagster_influx import (
    InfluxDB3DbClient,
    InfluxDB3IOManager,
    InfluxDB3Resource,
    ParquetIOManager,
)
from influx_flight import read_parquet

HOURLY = dg.HourlyPartitionsDefinition(start_date="2026-01-01-00:00", end_date="2026-01-02-00:00")


# -- query text (no server) ----------------------------------------------------------------------


def test_select_statement_for_a_time_window() -> None:
    table_slice = TableSlice(
        table="cpu_1m",
        schema="telegraf",
        database="db",
        columns=["time", "host", "usage"],
        partition_dimensions=[
            TablePartitionDimension("time", TimeWindow(hour(5), hour(6))),
        ],
    )
    assert InfluxDB3DbClient.get_select_statement(table_slice) == (
        'SELECT "time", "host", "usage" FROM "cpu_1m" WHERE "time" >= '
        "'2026-01-01T05:00:00Z' AND \"time\" < '2026-01-01T06:00:00Z'"
    )
    assert InfluxDB3DbClient.get_table_name(table_slice) == "db.cpu_1m"


def test_select_statement_for_static_keys_escapes_values() -> None:
    table_slice = TableSlice(
        table='we"ird',
        schema="public",
        partition_dimensions=[TablePartitionDimension("room", ["Kitchen", "O'Neil's"])],
    )
    assert InfluxDB3DbClient.get_select_statement(table_slice) == (
        "SELECT * FROM \"we\"\"ird\" WHERE \"room\" IN ('Kitchen', 'O''Neil''s')"
    )


# -- InfluxDB3IOManager against the stand-in -----------------------------------------------------


def scores_asset(rows_per_partition: int = 3, *, offset_minutes: int = 0) -> dg.AssetsDefinition:
    @dg.asset(
        partitions_def=HOURLY,
        io_manager_key="influx_io",
        metadata={"partition_expr": "time", "tags": ["room"]},
    )
    def room_scores(context: dg.AssetExecutionContext) -> pa.Table:
        start = context.partition_time_window.start
        times = [
            start + timedelta(minutes=offset_minutes + 10 * i) for i in range(rows_per_partition)
        ]
        return pa.table(
            {
                "time": pa.array(times, pa.timestamp("ns", tz="UTC")),
                "room": ["Kitchen" if i % 2 == 0 else "Office" for i in range(rows_per_partition)],
                "score": [float(start.hour * 100 + i) for i in range(rows_per_partition)],
            }
        )

    return room_scores


def test_partitioned_output_is_stored_and_loaded_back_by_window(influx: InfluxDB3Resource) -> None:
    room_scores = scores_asset()
    loaded: dict[str, object] = {}

    @dg.asset(partitions_def=HOURLY, ins={"room_scores": dg.AssetIn(input_manager_key="influx_io")})
    def arrow_reader(room_scores: pa.Table) -> None:
        loaded["arrow"] = room_scores

    @dg.asset(partitions_def=HOURLY, ins={"room_scores": dg.AssetIn(input_manager_key="influx_io")})
    def pandas_reader(room_scores: pd.DataFrame) -> None:
        loaded["pandas"] = room_scores

    resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
    for key in ("2026-01-01-01:00", "2026-01-01-02:00"):
        result = dg.materialize([room_scores], resources=resources, partition_key=key)
        assert result.success
    (mat,) = result.asset_materializations_for_node("room_scores")
    assert mat.metadata["dagster/partition_row_count"].value == 3
    assert mat.metadata["lines_written"].value == 3
    assert mat.metadata["dagster/table_name"].value == f"{influx.database}.room_scores"
    assert mat.metadata["write_mode"].value == "upsert"
    assert "'2026-01-01T02:00:00Z'" in mat.metadata["Query"].value

    result = dg.materialize(
        [room_scores, arrow_reader, pandas_reader],
        resources=resources,
        partition_key="2026-01-01-02:00",
        selection=[arrow_reader, pandas_reader],
    )
    assert result.success
    table = loaded["arrow"]
    assert isinstance(table, pa.Table)
    assert sorted(table.column("score").to_pylist()) == [200.0, 201.0, 202.0]
    frame = loaded["pandas"]
    assert isinstance(frame, pd.DataFrame)
    assert sorted(frame["score"]) == [200.0, 201.0, 202.0]
    assert str(frame["time"].dtype).endswith("UTC]")


def test_rematerialising_overwrites_points_of_the_same_series_and_time(
    influx: InfluxDB3Resource,
) -> None:
    resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
    for _ in range(2):
        assert dg.materialize(
            [scores_asset()], resources=resources, partition_key="2026-01-01-04:00"
        ).success
    count = influx_count(influx, "room_scores")
    assert count == 3


def influx_count(influx: InfluxDB3Resource, table: str) -> int:
    with dg.build_resources({"influxdb": influx}) as res:
        return res.influxdb.query(f'SELECT count(*) AS n FROM "{table}"').column("n")[0].as_py()


def test_rows_outside_the_partition_are_refused(influx: InfluxDB3Resource) -> None:
    resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
    spill = scores_asset(rows_per_partition=7, offset_minutes=5)  # last row at +65 min
    with pytest.raises(ValueError, match=r"1 of 7 rows .* fall outside the partition"):
        dg.materialize([spill], resources=resources, partition_key="2026-01-01-05:00")


def test_fail_if_exists_refuses_a_second_write(influx: InfluxDB3Resource) -> None:
    @dg.asset(
        partitions_def=HOURLY,
        io_manager_key="influx_io",
        metadata={"partition_expr": "time", "write_mode": "fail_if_exists"},
    )
    def strict(context: dg.AssetExecutionContext) -> pa.Table:
        start = context.partition_time_window.start
        return pa.table({"time": pa.array([start], pa.timestamp("ns", tz="UTC")), "v": [1.0]})

    resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
    assert dg.materialize([strict], resources=resources, partition_key="2026-01-01-06:00").success
    with pytest.raises(ValueError, match="fail_if_exists': 1 rows already stored"):
        dg.materialize([strict], resources=resources, partition_key="2026-01-01-06:00")
    # another partition is still free
    assert dg.materialize([strict], resources=resources, partition_key="2026-01-01-07:00").success


def test_missing_tag_column_is_named(influx: InfluxDB3Resource) -> None:
    @dg.asset(io_manager_key="influx_io", metadata={"tags": ["site"]})
    def untagged() -> pa.Table:
        return pa.table({"time": pa.array([hour(1)], pa.timestamp("ns", tz="UTC")), "v": [1.0]})

    resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
    with pytest.raises(ValueError, match=r"Tag columns \['site'\]"):
        dg.materialize([untagged], resources=resources)


# -- ParquetIOManager ----------------------------------------------------------------------------


def test_parquet_partitions_round_trip_and_load_as_a_dict(tmp_path: Path) -> None:
    @dg.asset(partitions_def=HOURLY, io_manager_key="parquet_io")
    def frames(context: dg.AssetExecutionContext) -> pd.DataFrame:
        start = context.partition_time_window.start
        return pd.DataFrame({"time": [start], "value": [start.hour]})

    daily = dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-02")
    seen: dict[str, pa.Table] = {}

    resources = {"parquet_io": ParquetIOManager(base_dir=str(tmp_path))}
    for key in ("2026-01-01-00:00", "2026-01-01-01:00"):
        result = dg.materialize([frames], resources=resources, partition_key=key)
        assert result.success
    assert sorted(p.name for p in (tmp_path / "frames").iterdir()) == [
        "2026-01-01-0000.parquet",
        "2026-01-01-0100.parquet",
    ]
    (mat,) = result.asset_materializations_for_node("frames")
    assert mat.metadata["dagster/partition_row_count"].value == 1
    assert mat.metadata["dagster/storage_kind"].value == "parquet"
    assert (
        mat.metadata["size_bytes"].value
        == (tmp_path / "frames" / "2026-01-01-0100.parquet").stat().st_size
    )

    day_input = dg.AssetIn(
        input_manager_key="parquet_io", metadata={"allow_missing_partitions": True}
    )

    @dg.asset(partitions_def=daily, ins={"frames": day_input})
    def day_tolerant(frames: dict[str, pa.Table]) -> None:
        seen.update(frames)

    result = dg.materialize(
        [frames, day_tolerant],
        resources=resources,
        partition_key="2026-01-01",
        selection=[day_tolerant],
    )
    assert result.success
    assert sorted(seen) == ["2026-01-01-00:00", "2026-01-01-01:00"]
    assert seen["2026-01-01-01:00"].column("value").to_pylist() == [1]


def test_parquet_streams_a_query_result(
    influx: InfluxDB3Resource, seeded: str, tmp_path: Path
) -> None:
    @dg.asset(io_manager_key="parquet_io")
    def cpu_export(influxdb: InfluxDB3Resource):  # -> QueryResult, streamed by the IO manager
        with influxdb.get_client() as client:
            return client.query("SELECT * FROM cpu WHERE host = 'alpha' ORDER BY time")

    resources = {"influxdb": influx, "parquet_io": ParquetIOManager(base_dir=str(tmp_path))}
    result = dg.materialize([cpu_export], resources=resources)
    assert result.success
    table = pq.read_table(tmp_path / "cpu_export.parquet")
    assert table.num_rows == 240
    assert set(table.column("host").to_pylist()) == {"alpha"}
    (mat,) = result.asset_materializations_for_node("cpu_export")
    assert mat.metadata["dagster/row_count"].value == 240
    assert {c.name for c in mat.metadata["dagster/column_schema"].value.columns} >= {
        "time",
        "usage",
    }


def test_parquet_in_memory_filesystem() -> None:
    @dg.asset(io_manager_key="parquet_io")
    def tiny() -> pa.Table:
        return pa.table({"x": [1, 2, 3]})

    @dg.asset(io_manager_key="parquet_io")
    def doubled(tiny: pa.Table) -> pa.Table:
        return tiny.set_column(0, "x", pa.array([v * 2 for v in tiny.column("x").to_pylist()]))

    resources = {"parquet_io": ParquetIOManager(base_dir="memory://dagster-influx-test")}
    result = dg.materialize([tiny, doubled], resources=resources)
    assert result.success
    doubled_file = read_parquet("memory://dagster-influx-test/doubled.parquet")
    assert doubled_file.column("x").to_pylist() == [2, 4, 6]


def test_parquet_refuses_unknown_objects(tmp_path: Path) -> None:
    @dg.asset(io_manager_key="parquet_io")
    def strange() -> dict:
        return {"a": 1}

    with pytest.raises(TypeError, match=r"ParquetIOManager stores pyarrow\.Table"):
        dg.materialize(
            [strange], resources={"parquet_io": ParquetIOManager(base_dir=str(tmp_path))}
        )


def test_unpartitioned_round_trip_with_a_custom_time_column(influx: InfluxDB3Resource) -> None:
    @dg.asset(io_manager_key="influx_io", metadata={"tags": ["site"], "time_column": "ts"})
    def readings() -> pd.DataFrame:
        return pd.DataFrame(
            {
                "ts": pd.to_datetime(["2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z"], utc=True),
                "site": ["north", "south"],
                "level": [1.5, 2.5],
            }
        )

    got: dict[str, pa.Table] = {}

    @dg.asset(ins={"readings": dg.AssetIn(input_manager_key="influx_io")})
    def summary(readings: pa.Table) -> None:
        got["t"] = readings

    assert dg.materialize(
        [readings, summary], resources={"influx_io": InfluxDB3IOManager(influxdb=influx)}
    ).success
    table = got["t"].sort_by("site")
    assert table.column("site").to_pylist() == ["north", "south"]
    assert table.column("level").to_pylist() == [1.5, 2.5]
    assert "ts" not in table.column_names  # InfluxDB stores the timestamp as `time`
    assert table.column("time").type == pa.timestamp("ns", tz="UTC")


def test_time_by_room_multi_partitions(influx: InfluxDB3Resource) -> None:
    parts = dg.MultiPartitionsDefinition(
        {
            "date": dg.DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-03"),
            "room": dg.StaticPartitionsDefinition(["Kitchen", "Office"]),
        }
    )

    @dg.asset(
        partitions_def=parts,
        io_manager_key="influx_io",
        metadata={"partition_expr": {"date": "time", "room": "room"}, "tags": ["room"]},
    )
    def room_days(context: dg.AssetExecutionContext) -> pa.Table:
        key = context.partition_key.keys_by_dimension
        start = context.partition_time_window.start
        return pa.table(
            {
                "time": pa.array(
                    [start, start + timedelta(hours=12)], pa.timestamp("ns", tz="UTC")
                ),
                "room": [key["room"]] * 2,
                "v": [1.0, 2.0] if key["room"] == "Kitchen" else [10.0, 20.0],
            }
        )

    got: dict[str, pa.Table] = {}

    @dg.asset(partitions_def=parts, ins={"room_days": dg.AssetIn(input_manager_key="influx_io")})
    def reader(room_days: pa.Table) -> None:
        got["t"] = room_days

    resources = {"influx_io": InfluxDB3IOManager(influxdb=influx)}
    for room in ("Kitchen", "Office"):
        key = dg.MultiPartitionKey({"date": "2026-01-02", "room": room})
        assert dg.materialize([room_days], resources=resources, partition_key=key).success
    key = dg.MultiPartitionKey({"date": "2026-01-02", "room": "Office"})
    result = dg.materialize(
        [room_days, reader], resources=resources, partition_key=key, selection=[reader]
    )
    assert result.success
    assert got["t"].column("room").to_pylist() == ["Office", "Office"]
    assert sorted(got["t"].column("v").to_pylist()) == [10.0, 20.0]
