"""The client as one object: table management, query -> write back, shared transports."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pytest
import urllib3

from influx_flight import (
    DatabaseNotFoundError,
    DownsampleSpec,
    InfluxDB3Client,
    InfluxDB3Config,
    QueryError,
    TableNotFoundError,
)


def _client(srv: Any, database: str, **kwargs: Any) -> InfluxDB3Client:
    config = InfluxDB3Config(
        host=srv.flight_uri, database=database, token=srv.token, write_url=srv.http_url
    )
    return InfluxDB3Client(config, **kwargs)


def test_create_and_delete_table(standin: Any) -> None:
    with _client(standin, "cl_tables") as client:
        client.write_lp("seed v=1 1\n")  # creates the database
        client.create_table("cpu", tags=["host"], fields={"usage": "float64", "n": "int64"})
        table = client.query("SELECT * FROM cpu").to_table()
        assert table.num_rows == 0 and {"host", "usage", "n", "time"} <= set(table.schema.names)
        with pytest.raises(QueryError, match="409"):
            client.create_table("cpu", tags=["host"])
        client.delete_table("cpu")
        with pytest.raises(TableNotFoundError) as info:
            client.query("SELECT * FROM cpu").to_table()
        assert info.value.table == "cpu"
        with pytest.raises(TableNotFoundError, match="'cpu'"):
            client.delete_table("cpu")
        with pytest.raises(DatabaseNotFoundError):
            client.delete_table("cpu", database="cl_no_such_db")


def test_create_table_refuses_unknown_field_types(standin: Any) -> None:
    with _client(standin, "cl_tables2") as client, pytest.raises(ValueError, match="float64"):
        client.create_table("t", fields={"v": "double"})


def test_write_back_drops_influxql_measurement_column(standin: Any) -> None:
    with _client(standin, "cl_wb") as client:
        client.write_lp("\n".join(f"src,room=a temp={i}.5 {i}000000000" for i in range(1, 6)))
        res = client.write_back(
            "SELECT temp FROM src WHERE room = 'a'",
            language="influxql",
            measurement="dst",
        )
        assert res.rows == 5 and res.lines_written == 5
        back = client.query("SELECT * FROM dst ORDER BY time").to_table()
        assert back.column("temp").to_pylist() == [1.5, 2.5, 3.5, 4.5, 5.5]
        assert "iox::measurement" not in back.schema.names
        empty = client.write_back("SELECT * FROM src WHERE temp > 100", measurement="dst")
        assert (empty.rows, empty.lines_written, empty.requests) == (0, 0, 0)


def test_one_http_pool_serves_every_downsample_window(standin: Any) -> None:
    class CountingPool(urllib3.PoolManager):
        requests = 0

        def urlopen(self, *args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return super().urlopen(*args, **kwargs)

    pool = CountingPool()
    with _client(standin, "cl_pool", http_pool=pool) as client:
        hours = [f"h v={i} {i * 3600}000000000" for i in range(6)]
        client.write_lp("\n".join(hours))
        spec = DownsampleSpec(
            source="h", window="1h", aggregates={"v": ["mean"]}, target_measurement="h_1h"
        )
        res = client.downsample(spec, "1970-01-01T00:00:00Z", "1970-01-01T06:00:00Z", chunk="2h")
    assert len(res.windows) == 3 and res.points_written == 6
    assert pool.requests == 1 + 3  # the seed write and one write per window, one pool


def test_transports_are_created_on_first_use(standin: Any) -> None:
    client = _client(standin, "cl_lazy")
    assert "unopened" in repr(client)
    client.close()  # never connected: nothing to close, no error
    table = pa.table({"time": pa.array([1], pa.timestamp("ns")), "v": [1.0]})
    with pytest.raises(Exception, match="closed"):
        client.write(table, measurement="m")
