"""Helpers for the InfluxQL tests: a real InfluxDB 1.x (``influxd``) as the oracle, and the
one function that maps 1.x's JSON series onto InfluxDB 3's table shape.

``influxd`` comes from Debian's ``influxdb`` package (1.6.x). It is started on free 127.0.0.1
ports with a temporary directory and only the HTTP listener; tests marked ``influxd`` skip
with installation instructions when the binary is missing.
"""

from __future__ import annotations

import json
import math
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
INSTALL_HINT = (
    "influxd (InfluxDB 1.x, the InfluxQL oracle) is not on PATH: install it with "
    "`apt-get install influxdb` (then `service influxdb stop`) to run the differential tests"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


_CONFIG = """\
reporting-disabled = true
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root}/meta"
  logging-enabled = false
[data]
  dir = "{root}/data"
  wal-dir = "{root}/wal"
  query-log-enabled = false
  trace-logging-enabled = false
[coordinator]
  log-queries-after = "0s"
[retention]
  enabled = false
[shard-precreation]
  enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http_port}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
  flux-enabled = false
[logging]
  level = "error"
[continuous_queries]
  enabled = false
"""


@dataclass
class Influxd:
    """A running influxd: HTTP writes and queries (epoch=ns JSON)."""

    url: str
    process: subprocess.Popen[bytes]

    def _post(self, path: str, params: dict[str, str], body: bytes | None) -> bytes:
        url = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        req = urllib.request.Request(url, data=body if body is not None else b"", method="POST")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return bytes(resp.read())

    def create_database(self, db: str) -> None:
        self._post("/query", {"q": f'CREATE DATABASE "{db}"'}, None)

    def write(self, db: str, lp: str, precision: str = "ns") -> None:
        self._post("/write", {"db": db, "precision": precision}, lp.encode())

    def query(self, db: str, q: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        args = {"db": db, "q": q, "epoch": "ns"}
        if params:
            args["params"] = json.dumps(params)
        url = f"{self.url}/query?{urllib.parse.urlencode(args)}"
        with urllib.request.urlopen(url, timeout=60) as resp:
            out = json.loads(resp.read())
        result = out["results"][0]
        if "error" in result:
            raise RuntimeError(f"influxd error for {q!r}: {result['error']}")
        return result


def start_influxd(root: Path) -> Iterator[Influxd]:
    """Run a private influxd on free ports under ``root``; skips when it is not installed."""
    binary = shutil.which("influxd")
    if binary is None:
        pytest.skip(INSTALL_HINT)
    http_port, rpc_port = _free_port(), _free_port()
    conf = root / "influxdb.conf"
    conf.write_text(_CONFIG.format(root=root, http_port=http_port, rpc_port=rpc_port))
    log = open(root / "influxd.log", "wb")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen([binary, "-config", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    server = Influxd(url=f"http://127.0.0.1:{http_port}", process=proc)
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/ping", timeout=1) as resp:
                if resp.status == 204:
                    break
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            tail = (root / "influxd.log").read_text(errors="replace")[-2000:]
            pytest.fail(f"influxd did not start on 127.0.0.1:{http_port}: {tail}")
        time.sleep(0.1)
    try:
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


# ------------------------------------------------------------------------------------------
# Normalisation: the ONE place where the known shape differences are bridged.
# ------------------------------------------------------------------------------------------
Row = tuple[Any, ...]


def v1_to_v3(
    result: dict[str, Any],
    group_tags: list[str],
    order_desc: bool = False,
    split_rows: bool = False,
) -> tuple[list[str], list[Row]]:
    """Turn a 1.x ``/query`` result (``epoch=ns``) into InfluxDB 3's InfluxQL table shape.

    The known, documented differences between the two products' *shapes* (not values):

    1. 1.x returns one JSON series per (measurement, GROUP BY tag set) with ``name`` and
       ``tags``; 3.x returns one table whose first column ``iox::measurement`` holds the name
       and whose GROUP BY tags (those not in the SELECT list) follow ``time``, sorted by name.
    2. 1.x reports a GROUP BY tag the series lacks as ``""``; 3.x as NULL.
    3. 1.x JSON has no integer/float distinction for whole floats; values are compared as
       numbers (``compare_tables``), so ``21`` and ``21.0`` are equal.
    4. With ``ORDER BY time DESC`` 1.x also lists the series in descending tag order; 3.x
       keeps measurements and GROUP BY tags ascending and only reverses time. The series are
       put back in ascending order here (the rows inside each series keep 1.x's order).
    5. Rows of different series that share a time (same measurement, time and GROUP BY tags)
       come in storage order in 1.x and in projected-tag order in 3.x; ``compare_tables``
       compares such ties as sorted groups. Everything else (values, types as numbers,
       columns, row count, the order of keys) must be equal.
    6. SHOW statements: 1.x names the series ``measurements`` (SHOW MEASUREMENTS) or by the
       measurement; the same mapping to ``iox::measurement`` applies. 1.x omits ``time``
       for SHOW, as 3.x does.

    ``group_tags`` are the GROUP BY tags the 3.x result carries as columns after ``time``
    (unprojected, sorted); they come from the 3.x schema, so they are not an assumption.
    """
    columns: list[str] | None = None
    rows: list[Row] = []
    all_series: list[dict[str, Any]] = []
    for series in result.get("series", []):
        # 7. 1.x's streaming reducers (integral) can emit one series in several chunks (the
        #    last window comes after the other series); 3.x has one run of rows per series.
        key = (series["name"], sorted((series.get("tags") or {}).items()))
        same = [s for s in all_series if (s["name"], sorted((s.get("tags") or {}).items())) == key]
        if same and same[0]["columns"] == series["columns"]:
            same[0]["values"] = same[0].get("values", []) + series.get("values", [])
            continue
        all_series.append(dict(series))
    # 4. (and integral(), whose 1.x reducer lists series in descending tag order)
    all_series.sort(key=lambda s: (s["name"], sorted((s.get("tags") or {}).items())))
    for series in all_series:
        cols = list(series["columns"])
        tags = series.get("tags") or {}
        has_time = bool(cols) and cols[0] == "time"
        rest = cols[1:] if has_time else cols
        out_cols = ["iox::measurement", *(["time"] if has_time else []), *group_tags, *rest]
        if columns is None:
            columns = out_cols
        for values in series.get("values", []):
            tag_vals = [tags.get(t) or None for t in group_tags]
            row = [series["name"]]
            if has_time:
                row.append(values[0])
            rows.append((*row, *tag_vals, *(values[1:] if has_time else values)))
    if split_rows:
        # 8. (integral() only) 1.x's streaming reducer emits a window's integral as its own
        #    row beside the other aggregates of that window (NULL where the other has values);
        #    3.x has one row per window. Complementary rows of one key are joined back.
        key_width = 1 + (1 if "time" in (columns or [])[:2] else 0) + len(group_tags)
        joined: list[Row] = []
        for row in rows:
            prev = joined[-1] if joined else None
            if (
                prev is not None
                and prev[:key_width] == row[:key_width]
                and all(
                    a is None or b is None
                    for a, b in zip(prev[key_width:], row[key_width:], strict=True)
                )
            ):
                joined[-1] = tuple(
                    a if a is not None else b for a, b in zip(prev, row, strict=True)
                )
            else:
                joined.append(row)
        rows = joined
    return columns or [], rows


def v3_rows(table: pa.Table) -> tuple[list[str], list[Row]]:
    """Rows of a stand-in result, with timestamps as epoch nanoseconds."""
    cols = []
    for f in table.schema:
        if pa.types.is_timestamp(f.type):
            cols.append(table.column(f.name).cast(pa.int64()))
        else:
            cols.append(table.column(f.name))
    names = table.schema.names
    data = [c.to_pylist() for c in cols]
    return names, [tuple(r) for r in zip(*data, strict=True)] if data else []


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        if math.isnan(float(a)) or math.isnan(float(b)):
            return math.isnan(float(a)) and math.isnan(float(b))
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def _sort_key(row: Row) -> tuple[Any, ...]:
    def one(v: Any) -> tuple[Any, ...]:
        if v is None:
            return (2, 0)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return (0, float(v))
        return (1, str(v))

    return tuple(one(v) for v in row)


def compare_tables(
    query: str,
    expected: tuple[list[str], list[Row]],
    actual: tuple[list[str], list[Row]],
    key_width: int,
) -> None:
    """Assert same columns and same rows.

    Rows must come in the same order of their key (measurement, time, GROUP BY tags: the first
    ``key_width`` columns); rows sharing one key may come in any order (1.x and 3.x order ties
    between series differently), so they are compared as sorted groups.
    """
    exp_cols, exp_rows = expected
    act_cols, act_rows = actual
    if exp_rows or exp_cols:
        assert act_cols == exp_cols, f"{query}\ncolumns differ: 1.x {exp_cols} vs 3.x {act_cols}"
    assert len(act_rows) == len(exp_rows), (
        f"{query}\nrow count differs: 1.x {len(exp_rows)} vs 3.x {len(act_rows)}\n"
        f"1.x: {exp_rows[:20]}\n3.x: {act_rows[:20]}"
    )

    def groups(rows: list[Row]) -> list[tuple[Row, list[Row]]]:
        out: list[tuple[Row, list[Row]]] = []
        for r in rows:
            k = r[:key_width]
            if out and out[-1][0] == k:
                out[-1][1].append(r)
            else:
                out.append((k, [r]))
        return [(k, sorted(v, key=_sort_key)) for k, v in out]

    for (ek, erows), (ak, arows) in zip(groups(exp_rows), groups(act_rows), strict=False):
        ok = ek == ak and len(erows) == len(arows)
        ok = ok and all(
            len(e) == len(a) and all(_same(x, y) for x, y in zip(e, a, strict=True))
            for e, a in zip(erows, arows, strict=True)
        )
        assert ok, f"{query}\nrows differ at key {ek}:\n1.x: {erows}\n3.x: {arows}"
