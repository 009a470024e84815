"""Real clients against the stand-in's write path.

The official influxdb3-python client writes (its default /api/v2/write path, plain and gzip;
and /api/v3/write_lp with use_v2_api=False) and reads back over Flight, configured with nothing
but host, token, database and the two port overrides (the real server shares one port). The
documented sample data in ../shared/data loads over HTTP and answers simple queries.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("influxdb_client_3")

from influxdb_client_3 import (
    InfluxDBClient3,
    Point,
    WriteOptions,
    WritePrecision,
    write_client_options,
)
from influxdb_client_3.exceptions import InfluxDBError
from influxdb_client_3.write_client.client.write_api import WriteType

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"


@pytest.fixture
def client_factory(standin: Any) -> Iterator[Any]:
    clients: list[InfluxDBClient3] = []

    def make(database: str, **kwargs: Any) -> InfluxDBClient3:
        client = InfluxDBClient3(
            host="http://127.0.0.1",
            token=standin.token,
            database=database,
            write_port_overwrite=standin.http_port,
            query_port_overwrite=standin.flight_port,
            **kwargs,
        )
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.mark.parametrize("gzip", [False, True])
def test_influxdb3_python_writes_v2_and_reads_back(client_factory: Any, gzip: bool) -> None:
    db = f"wc_py_{'gzip' if gzip else 'plain'}"
    client = client_factory(db, enable_gzip=gzip)
    client.write(
        record=[
            "home,room=Kitchen temp=21.0,hum=35.9,co=0i 1641024000000000000",
            "home,room=Living\\ Room temp=21.4,hum=35.9,co=0i 1641024000000000000",
        ]
    )
    client.write(
        record=Point("home")
        .tag("room", "Office")
        .field("temp", 19.5)
        .field("co", 2)
        .time(1641027600, WritePrecision.S),
        write_precision=WritePrecision.S,
    )
    table = client.query("SELECT room, temp, co, time FROM home ORDER BY room")
    assert table.column("room").to_pylist() == ["Kitchen", "Living Room", "Office"]
    assert table.column("temp").to_pylist() == [21.0, 21.4, 19.5]
    assert table.column("co").to_pylist() == [0, 0, 2]
    assert str(table.column("time")[2]) == "2022-01-01 09:00:00"


def test_influxdb3_python_queries_influxql_with_default_compression(client_factory: Any) -> None:
    """InfluxQL through the official client, nothing changed but host, token and database."""
    client = client_factory("wc_py_influxql")
    client.write(
        record=[
            "home,room=Kitchen temp=21.0 1641024000000000000",
            "home,room=Kitchen temp=23.0 1641027600000000000",
            "home,room=Office temp=19.0 1641024000000000000",
        ]
    )
    table = client.query(
        "SELECT mean(temp) FROM home WHERE time >= '2022-01-01T08:00:00Z' "
        "AND time < '2022-01-01T10:00:00Z' GROUP BY room",
        language="influxql",
    )
    assert table.column_names[:2] == ["iox::measurement", "time"]
    got = dict(zip(table.column("room").to_pylist(), table.column("mean").to_pylist(), strict=True))
    assert got == {"Kitchen": 22.0, "Office": 19.0}


def test_influxdb3_python_v2_errors_surface(client_factory: Any) -> None:
    client = client_factory("wc_py_err")
    client.write(record="m v=1i 1")
    with pytest.raises(InfluxDBError) as info:
        client.write(record="m v=1.5 2\nm v=3i 3")
    assert "expected type iox::column_type::field::integer" in str(info.value)
    # v2 is strict: nothing of the failed request was written
    assert client.query("SELECT count(*) AS n FROM m").column("n").to_pylist() == [1]


def test_influxdb3_python_write_lp_partial_write(client_factory: Any) -> None:
    options = write_client_options(
        write_options=WriteOptions(write_type=WriteType.synchronous, use_v2_api=False)
    )
    client = client_factory("wc_py_v3", write_client_options=options)
    with pytest.raises(InfluxDBError) as info:
        client.write(record="m,t=a v=1 1\nm,t=b v=oops 2\nm,t=c v=3 3", write_precision="ns")
    errors = getattr(info.value, "line_errors", None)
    assert errors is not None and [e.line_number for e in errors] == [2]
    assert errors[0].original_line == "m,t=b v=oops 2"
    got = client.query("SELECT t FROM m ORDER BY t")
    assert got.column("t").to_pylist() == ["a", "c"]


def test_influxdb3_python_ping_reads_the_version(client_factory: Any) -> None:
    client = client_factory("wc_py_ping")
    assert client.get_server_version() == "3.10.0"


# -- the documented sample data ------------------------------------------------------------------

_SECONDS = {"home.lp", "example_group_by_time.lp", "home_actions.lp"}


def _sample(name: str) -> Path:
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"sample data {path} is not available")
    return path


def _write_file(server: Any, db: str, path: Path) -> None:
    precision = "s" if path.name in _SECONDS else "ns"
    req = urllib.request.Request(
        f"{server.http_url}/api/v3/write_lp?db={db}&precision={precision}&accept_partial=false",
        data=path.read_bytes(),
        method="POST",
        headers={"Authorization": f"Token {server.token}"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        assert resp.status == 204


def _sql(server: Any, db: str, sql: str) -> list[dict[str, Any]]:
    query = urllib.parse.urlencode({"db": db, "q": sql})
    req = urllib.request.Request(
        f"{server.http_url}/api/v3/query_sql?{query}",
        headers={"Authorization": f"Bearer {server.token}"},
    )
    with urllib.request.urlopen(req, timeout=60) as resp:
        return json.loads(resp.read())


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("home.lp", "home"),
        ("home_actions.lp", "home_actions"),
        ("example_group_by_time.lp", "example"),
        ("bay-area-weather.lp", "weather"),
        ("bitcoin.lp", "bitcoin"),
        ("random-numbers.lp", "numbers"),
    ],
)
def test_sample_files_load_completely(standin: Any, name: str, table: str) -> None:
    path = _sample(name)
    db = "wc_sample_" + name.split(".")[0].replace("-", "_")
    _write_file(standin, db, path)
    data_lines = [
        line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    # Some samples span years: as on Core (query file limit), count them 3 days at a time.
    scale = 10**9 if path.name in _SECONDS else 1
    times = [int(line.rsplit(" ", 1)[1]) * scale for line in data_lines]
    day = 86_400 * 10**9
    total = 0
    start = min(times) // day * day
    while start <= max(times):
        window = (
            f'SELECT count(*) AS n FROM "{table}" WHERE time >= to_timestamp_nanos({start})'
            f" AND time < to_timestamp_nanos({start + 3 * day})"
        )
        total += _sql(standin, db, window)[0]["n"]
        start = max(
            start + 3 * day,
            min((t for t in times if t >= start + 3 * day), default=start + 3 * day) // day * day,
        )
    assert total == len(data_lines)


def _home_maxima(path: Path) -> list[dict[str, Any]]:
    """Per-room maxima computed from the file with plain string handling (independent oracle)."""
    best: dict[str, dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        series, fields, _ = line.replace("\\ ", "\x00").split(" ")
        room = series.split("room=")[1].replace("\x00", " ")
        values = dict(kv.split("=") for kv in fields.split(","))
        temp, co = float(values["temp"]), int(values["co"].rstrip("i"))
        cur = best.setdefault(room, {"room": room, "t": temp, "co": co})
        cur["t"], cur["co"] = max(cur["t"], temp), max(cur["co"], co)
    return [best[k] for k in sorted(best)]


def test_sample_home_answers_simple_queries(standin: Any) -> None:
    home = _sample("home.lp")
    _write_file(standin, "wc_home", home)
    got = _sql(
        standin,
        "wc_home",
        "SELECT room, max(temp) AS t, max(co) AS co FROM home GROUP BY room ORDER BY room",
    )
    assert got == _home_maxima(home)
    first_ts = min(
        int(line.split(" ")[-1]) for line in home.read_text().splitlines() if line.strip()
    )
    first = _sql(standin, "wc_home", "SELECT CAST(min(time) AS BIGINT) AS t FROM home")
    assert first == [{"t": first_ts * 1_000_000_000}]
    actions = _sample("home_actions.lp")
    _write_file(standin, "wc_home", actions)
    levels: dict[str, int] = {}
    for line in actions.read_text().splitlines():
        if line.strip():
            level = line.split("level=")[1].split(" ")[0]
            levels[level] = levels.get(level, 0) + 1
    got = _sql(
        standin,
        "wc_home",
        "SELECT level, count(*) AS n FROM home_actions GROUP BY level ORDER BY level",
    )
    assert got == [{"level": k, "n": v} for k, v in sorted(levels.items())]
