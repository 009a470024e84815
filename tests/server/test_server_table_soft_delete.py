"""Core's soft delete of tables: renamed to ``<name>-<YYYYMMDDTHHMMSS>``, purged at ``hard_delete_at``.

Over real HTTP against a running stand-in. The renamed table is seen through the server's public
``engine.deleted_tables`` (Core lists it in ``_internal``'s ``system.tables``, which the stand-in
does not have); its data cannot be queried under either name.
"""

from __future__ import annotations

import re
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pyarrow as pa
import pytest

from tests.server.test_server_tables import TOKEN, call, sql, write

DAY_NS = 24 * 3600 * 10**9


def delete(server: Any, table: str, hard_delete_at: str | None = None) -> tuple[int, str]:
    path = f"/api/v3/configure/table?db=tables&table={quote(table)}"
    if hard_delete_at is not None:
        path += f"&hard_delete_at={quote(hard_delete_at)}"
    return call(server, "DELETE", path)


def rfc3339(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


def only_deleted(server: Any) -> tuple[str, int | None]:
    deleted = server.engine.deleted_tables("tables")
    assert len(deleted) == 1, deleted
    return next(iter(deleted.items()))


def wait_until_purged(server: Any, deadline_s: float = 15.0) -> None:
    deadline = time.monotonic() + deadline_s
    while server.engine.deleted_tables("tables"):
        assert time.monotonic() < deadline, server.engine.deleted_tables("tables")
        time.sleep(0.1)


def test_delete_renames_keeps_and_re_delete_changes_the_purge_time(standin_factory: Any) -> None:
    server = standin_factory(tokens=[TOKEN])
    assert write(server, "tables", "home,room=A temp=1.0 1\nhome,room=B temp=2.0 2")[0] == 204
    before = datetime.now(UTC).replace(microsecond=0)
    assert delete(server, "home") == (200, "")
    after = datetime.now(UTC)
    name, due = only_deleted(server)
    match = re.fullmatch(r"home-(\d{8}T\d{6})", name)
    assert match, name
    deleted_at = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    assert before <= deleted_at <= after
    # default: purged 72 hours after the deletion
    assert due is not None
    assert abs(due - (deleted_at + timedelta(hours=72)).timestamp() * 1e9) < 2e9
    # out of every query, under both names; the old name is free for a new table at once
    with pytest.raises(pa.ArrowInvalid, match="not found"):
        sql(server, "tables", "SELECT * FROM home")
    with pytest.raises(pa.ArrowInvalid, match="not found"):
        sql(server, "tables", f'SELECT * FROM "{name}"')
    assert name not in {r["table_name"] for r in sql(server, "tables", "SHOW TABLES")}
    assert write(server, "tables", "home,site=x level=7i 3")[0] == 204
    assert sql(server, "tables", "SELECT site, level FROM home") == [{"site": "x", "level": 7}]
    # deleting the renamed table again sets its purge time; `default` keeps the one it has
    assert delete(server, name, "2099-01-01T00:00:00Z") == (200, "")
    assert only_deleted(server) == (name, 4070908800 * 10**9)
    assert delete(server, name, "default") == (200, "")
    assert only_deleted(server) == (name, 4070908800 * 10**9)
    assert delete(server, name, "never") == (200, "")
    assert only_deleted(server) == (name, None)
    # a time in the past means now: purged, and then the name is unknown
    assert delete(server, name, "2001-01-01T00:00:00+02:00") == (200, "")
    assert server.engine.deleted_tables("tables") == {}
    status, body = delete(server, name)
    assert status == 404 and name in body
    # the new `home` was never touched
    assert sql(server, "tables", "SELECT site, level FROM home") == [{"site": "x", "level": 7}]


def test_hard_delete_now_and_at_a_time_purge_on_their_own(standin_factory: Any) -> None:
    server = standin_factory(tokens=[TOKEN], wal_flush_interval=0.05)
    assert write(server, "tables", "a v=1i 1\nb v=2i 1")[0] == 204
    assert delete(server, "a", "now") == (200, "")
    assert server.engine.deleted_tables("tables") == {}
    soon = datetime.now(UTC) + timedelta(seconds=2)
    assert delete(server, "b", rfc3339(soon)) == (200, "")
    name, due = only_deleted(server)
    assert name.startswith("b-") and due == int(soon.replace(microsecond=0).timestamp()) * 10**9
    wait_until_purged(server)  # by the server's own timer: nothing asked for it
    assert time.time_ns() >= due


@pytest.mark.parametrize("restart", ["clean", "crash"])
def test_soft_deleted_table_survives_a_restart_and_is_purged_after_it(
    standin_factory: Any, tmp_path: Path, restart: str
) -> None:
    """Deleted before a restart, due after it: kept through the snapshot or the WAL, then purged.

    "clean" restores it from the Parquet snapshot written at shutdown, "crash" replays the
    delete record from the log over the snapshot that still holds the live table.
    """
    data = tmp_path / "data"
    first = standin_factory(tokens=[TOKEN], data_dir=str(data), wal_flush_interval=0.05)
    assert write(first, "tables", "home,room=A temp=1.0 1\nkeep v=1i 1\nforever v=2i 1")[0] == 204
    first.stop()  # a snapshot holds every table live
    second = standin_factory(tokens=[TOKEN], data_dir=str(data), wal_flush_interval=0.05)
    due_at = datetime.now(UTC) + timedelta(seconds=6)
    assert delete(second, "home", rfc3339(due_at)) == (200, "")
    assert delete(second, "forever", "never") == (200, "")
    before = second.engine.deleted_tables("tables")
    assert len(before) == 2
    if restart == "crash":
        crashed = tmp_path / "crashed"
        shutil.copytree(data, crashed)  # what kill -9 leaves: the old snapshot plus the WAL
        data = crashed
    second.stop()
    third = standin_factory(tokens=[TOKEN], data_dir=str(data), wal_flush_interval=0.05)
    assert third.engine.deleted_tables("tables") == before  # same names, same purge times
    assert sorted(third.engine.tables("tables")) == ["keep"]
    # the renamed table can still be deleted again after the restart
    home = next(n for n in before if n.startswith("home-"))
    assert delete(third, home, rfc3339(datetime.now(UTC) + timedelta(seconds=1))) == (200, "")
    deadline = time.monotonic() + 20
    while home in third.engine.deleted_tables("tables"):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    forever = next(n for n in before if n.startswith("forever-"))
    assert third.engine.deleted_tables("tables") == {forever: None}
    third.stop()  # the purge holds through the next snapshot, `never` too
    fourth = standin_factory(tokens=[TOKEN], data_dir=str(data))
    assert fourth.engine.deleted_tables("tables") == {forever: None}
    assert sql(fourth, "tables", "SELECT v FROM keep") == [{"v": 1}]


def test_a_purge_time_that_passed_while_stopped_purges_at_start(
    standin_factory: Any, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    first = standin_factory(tokens=[TOKEN], data_dir=str(data))
    assert write(first, "tables", "home,room=A temp=1.0 1")[0] == 204
    due_at = datetime.now(UTC) + timedelta(seconds=2)
    assert delete(first, "home", rfc3339(due_at)) == (200, "")
    crashed = tmp_path / "crashed"
    shutil.copytree(data, crashed)  # the delete only in the WAL
    first.stop()  # the deleted table in the snapshot
    time.sleep(max(0.0, (due_at - datetime.now(UTC)).total_seconds()) + 1.1)
    for directory in (data, crashed):
        again = standin_factory(tokens=[TOKEN], data_dir=str(directory), wal_flush_interval=60)
        assert again.engine.deleted_tables("tables") == {}, directory
        assert again.engine.tables("tables") == {}
        again.stop()
