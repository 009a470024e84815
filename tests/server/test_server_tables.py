"""Table management as in Core: ``POST`` and ``DELETE /api/v3/configure/table``.

Over real HTTP against a running stand-in, including restarts from a data directory: after a
clean shutdown (Parquet snapshot) and after a crash (the WAL as ``kill -9`` leaves it).
"""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.flight as flight
import pytest

TOKEN = "apiv3_tables-test-token"


def call(
    server: Any,
    method: str,
    path: str,
    body: Any = None,
    content_type: str = "application/json",
) -> tuple[int, str]:
    data = None
    headers = {"Authorization": f"Bearer {TOKEN}"}
    if body is not None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        headers["Content-Type"] = content_type
    request = urllib.request.Request(
        server.http_url + path, data=data, method=method, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def write(server: Any, db: str, lines: str) -> tuple[int, str]:
    return call(server, "POST", f"/api/v3/write_lp?db={db}", lines.encode(), "text/plain")


def sql(server: Any, db: str, query: str) -> list[dict[str, Any]]:
    client = flight.FlightClient(server.flight_uri)
    try:
        ticket = flight.Ticket(json.dumps({"database": db, "sql_query": query}).encode())
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
        return client.do_get(ticket, options).read_all().to_pylist()
    finally:
        client.close()


def columns(server: Any, db: str, table: str) -> dict[str, str]:
    rows = sql(
        server,
        db,
        "SELECT column_name, data_type FROM information_schema.columns"
        f" WHERE table_name = '{table}' ORDER BY column_name",
    )
    return {r["column_name"]: r["data_type"] for r in rows}


HOME = {
    "db": "tables",
    "table": "home",
    "tags": ["room"],
    "fields": [{"name": "temp", "type": "float64"}, {"name": "co", "type": "int64"}],
}


def test_create_table_defines_an_empty_table_that_writes_must_respect(
    standin_factory: Any,
) -> None:
    server = standin_factory(tokens=[TOKEN])
    assert call(server, "POST", "/api/v3/configure/database", {"db": "tables"})[0] == 200
    assert call(server, "POST", "/api/v3/configure/table", HOME) == (200, "")
    assert sql(server, "tables", "SELECT * FROM home") == []
    assert columns(server, "tables", "home") == {
        "co": "Int64",
        "room": "Dictionary(Int32, Utf8)",
        "temp": "Float64",
        "time": "Timestamp(ns)",
    }
    # the declared types hold: an integer where a float is declared is rejected
    status, body = write(server, "tables", "home,room=Kitchen temp=21i 1")
    assert status == 400 and "temp" in body
    assert write(server, "tables", "home,room=Kitchen temp=21.5,co=3i 1")[0] == 204
    assert sql(server, "tables", "SELECT room, temp, co FROM home") == [
        {"room": "Kitchen", "temp": 21.5, "co": 3}
    ]


def test_create_table_errors_are_core_s(standin_factory: Any) -> None:
    server = standin_factory(tokens=[TOKEN])
    assert call(server, "POST", "/api/v3/configure/table", dict(HOME, db="nope"))[0] == 404
    call(server, "POST", "/api/v3/configure/database", {"db": "tables"})
    assert call(server, "POST", "/api/v3/configure/table", HOME)[0] == 200
    status, body = call(server, "POST", "/api/v3/configure/table", HOME)
    assert status == 409 and "already exists" in body
    status, body = call(server, "POST", "/api/v3/configure/table", HOME, content_type="text/plain")
    assert status == 415 and "application/json" in body
    bad_type = dict(HOME, table="t2", fields=[{"name": "x", "type": "decimal"}])
    status, body = call(server, "POST", "/api/v3/configure/table", bad_type)
    assert status == 400 and "decimal" in body
    status, body = call(server, "POST", "/api/v3/configure/table", {"db": "tables"})
    assert status == 400 and '"table"' in body
    clash = dict(HOME, table="t3", tags=["x"], fields=[{"name": "x", "type": "bool"}])
    assert call(server, "POST", "/api/v3/configure/table", clash)[0] == 400
    no_auth = urllib.request.Request(
        server.http_url + "/api/v3/configure/table?db=tables&table=home", method="DELETE"
    )
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(no_auth, timeout=30)
    assert info.value.code == 401


def test_delete_table_drops_its_data_and_frees_the_name(standin_factory: Any) -> None:
    server = standin_factory(tokens=[TOKEN])
    assert write(server, "tables", "home,room=A temp=1.0 1\nother v=1i 1")[0] == 204
    assert call(server, "DELETE", "/api/v3/configure/table?db=tables&table=home") == (200, "")
    with pytest.raises(pa.ArrowInvalid, match=r"home.* not found"):
        sql(server, "tables", "SELECT * FROM home")
    assert sql(server, "tables", "SELECT v FROM other") == [{"v": 1}]
    # the name is free again, with new types (a replaced unpartitioned asset)
    assert write(server, "tables", 'home,site=x temp="warm" 2')[0] == 204
    assert sql(server, "tables", "SELECT site, temp FROM home") == [{"site": "x", "temp": "warm"}]
    status, body = call(server, "DELETE", "/api/v3/configure/table?db=tables&table=nope")
    assert status == 404 and "nope" in body
    assert call(server, "DELETE", "/api/v3/configure/table?db=nodb&table=home")[0] == 404
    assert call(server, "DELETE", "/api/v3/configure/table?db=tables")[0] == 400
    path = "/api/v3/configure/table?db=tables&table=other&hard_delete_at=2030-01-01T00:00:00Z"
    assert call(server, "DELETE", path)[0] == 200
    for bad in ("x", "2030-01-01", "2030-01-01T00:00:00"):  # RFC 3339 needs time and offset
        path = f"/api/v3/configure/table?db=tables&table=home&hard_delete_at={bad}"
        assert call(server, "DELETE", path)[0] == 400, bad
    # a time already past means "now" in Core: accepted
    path = "/api/v3/configure/table?db=tables&table=home&hard_delete_at=2001-01-01T00:00:00%2B02:00"
    assert call(server, "DELETE", path)[0] == 200


@pytest.mark.parametrize("restart", ["clean", "crash"])
def test_table_create_and_delete_survive_a_restart(
    standin_factory: Any, tmp_path: Path, restart: str
) -> None:
    data = tmp_path / "data"
    server = standin_factory(tokens=[TOKEN], data_dir=str(data))
    assert write(server, "tables", "gone,t=a v=1i 1\nkept,t=a v=2i 1")[0] == 204
    assert call(server, "POST", "/api/v3/configure/table", HOME)[0] == 200
    assert call(server, "DELETE", "/api/v3/configure/table?db=tables&table=gone")[0] == 200
    if restart == "crash":
        crashed = tmp_path / "crashed"
        shutil.copytree(data, crashed)  # what kill -9 would leave: the WAL, no snapshot
        data = crashed
    server.stop()
    again = standin_factory(tokens=[TOKEN], data_dir=str(data))
    tables = sql(
        again,
        "tables",
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'iox'"
        " ORDER BY table_name",
    )
    assert [t["table_name"] for t in tables] == ["home", "kept"]
    assert columns(again, "tables", "home")["co"] == "Int64"
    assert sql(again, "tables", "SELECT v FROM kept") == [{"v": 2}]
    # and once more, so the state also round-trips through the snapshot written at shutdown
    again.stop()
    third = standin_factory(tokens=[TOKEN], data_dir=str(data))
    assert sorted(third.engine.tables("tables")) == ["home", "kept"]


def test_deletion_after_a_snapshot_holds_through_wal_replay(
    standin_factory: Any, tmp_path: Path
) -> None:
    """Snapshot holds the table, the WAL after it holds the delete and a new table of that name.

    Replay must apply them in order over the snapshot: the old rows stay gone, the new table
    (another schema) is what the name means, in InfluxQL as in SQL.
    """
    data = tmp_path / "data"
    first = standin_factory(tokens=[TOKEN], data_dir=str(data))
    assert write(first, "tables", "home,room=a temp=1.5 1\nhome,room=b temp=2.5 2")[0] == 204
    first.stop()  # clean: a Parquet snapshot now holds "home"
    second = standin_factory(tokens=[TOKEN], data_dir=str(data))
    assert sql(second, "tables", "SELECT count(*) AS n FROM home") == [{"n": 2}]
    assert call(second, "DELETE", "/api/v3/configure/table?db=tables&table=home")[0] == 200
    assert write(second, "tables", "home,site=x level=7i 3")[0] == 204
    crashed = tmp_path / "crashed"
    shutil.copytree(data, crashed)  # kill -9: the snapshot plus the WAL written since
    second.stop()
    third = standin_factory(tokens=[TOKEN], data_dir=str(crashed))
    assert sql(third, "tables", "SELECT level, site FROM home") == [{"level": 7, "site": "x"}]
    assert set(columns(third, "tables", "home")) == {"level", "site", "time"}
    # once more through the snapshot the third run writes at shutdown
    third.stop()
    fourth = standin_factory(tokens=[TOKEN], data_dir=str(crashed))
    assert sorted(fourth.engine.tables("tables")) == ["home"]
    assert set(columns(fourth, "tables", "home")) == {"level", "site", "time"}


def test_deleted_table_is_gone_from_every_listing(standin_factory: Any) -> None:
    server = standin_factory(tokens=[TOKEN])
    assert write(server, "tables", "gone,t=a v=1i 1\nkept,t=a v=2i 1")[0] == 204
    assert call(server, "DELETE", "/api/v3/configure/table?db=tables&table=gone")[0] == 200
    listed = sql(server, "tables", "SHOW TABLES")
    assert "gone" not in {r["table_name"] for r in listed}
    assert "kept" in {r["table_name"] for r in listed}
    client = flight.FlightClient(server.flight_uri)
    try:
        ticket = flight.Ticket(
            json.dumps(
                {"database": "tables", "sql_query": "SHOW MEASUREMENTS", "query_type": "influxql"}
            ).encode()
        )
        options = flight.FlightCallOptions(headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
        measurements = client.do_get(ticket, options).read_all().to_pylist()
    finally:
        client.close()
    assert [m["name"] for m in measurements] == ["kept"]
    with pytest.raises(pa.ArrowInvalid, match=r"table 'public\.iox\.gone' not found"):
        sql(server, "tables", "SELECT * FROM gone")
    # deleting it again: Core answers 404 (the name no longer refers to a table)
    status, body = call(server, "DELETE", "/api/v3/configure/table?db=tables&table=gone")
    assert status == 404, body
