"""Write-back into the stand-in server over real HTTP, read back through its engine."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from core_write_helpers import write_arrow, write_line_protocol
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from influx_flight import (
    AuthenticationError,
    InfluxDB3Config,
    WriteError,
)
from influx_flight.time import quote_ident

TOKEN = "apiv3_test-token-for-the-stand-in"  # tests/conftest.py STANDIN_TOKEN


def _cfg(srv: Any, database: str) -> InfluxDB3Config:
    return InfluxDB3Config(
        host=srv.flight_uri, database=database, token=srv.token, write_url=srv.http_url
    )


def _read(srv: Any, db: str, table: str, order: str = "time") -> pa.Table:
    return srv.engine.query_sql(
        db, f"SELECT * FROM {quote_ident(table)} ORDER BY {order}"
    ).read_all()


def test_round_trip_all_types_escapes_and_newlines(standin: Any) -> None:
    n = 6
    t = pa.table(
        {
            "time": pa.array(
                1_700_000_000_000_000_000 + np.arange(n, dtype=np.int64) * 1_000,
                pa.timestamp("ns", tz="UTC"),
            ),
            "room, name=x": ["living room", "a,b=c", "back\\slash", None, "", "z"],
            "f": [1.5, float("nan"), -0.0, 1e300, 0.1, None],
            "i": pa.array([1, 2, None, -(2**63), 2**63 - 1, 0], pa.int64()),
            "u": pa.array([0, 2**64 - 1, 3, None, 5, 6], pa.uint64()),
            "b": [True, False, None, True, False, True],
            "s": ['q"uote', "multi\nline", "tab\there", "back\\slash", "", "ünï ✓"],
        }
    )
    res = write_arrow(_cfg(standin, "wr_types"), t, measurement="my m,1", tags=["room, name=x"])
    assert res.lines_written == n
    got = _read(standin, "wr_types", "my m,1").to_pylist()
    rows = t.to_pylist()
    assert len(got) == n
    for g, r in zip(got, rows, strict=True):
        assert g["time"].timestamp() * 1e9 == pytest.approx(r["time"].timestamp() * 1e9)
        assert g["room, name=x"] == (r["room, name=x"] or None)
        for k in ("i", "u", "b", "s"):
            assert g[k] == r[k], k
        if r["f"] is None or math.isnan(r["f"]):
            assert g["f"] is None
        else:
            assert g["f"] == r["f"] and math.copysign(1, g["f"]) == math.copysign(1, r["f"])


def test_partial_write_field_type_conflict_maps_rows(standin: Any) -> None:
    cfg = _cfg(standin, "wr_partial")
    base = pa.table(
        {"time": pa.array([0], pa.timestamp("s")), "host": ["a"], "load": pa.array([1], pa.int64())}
    )
    write_arrow(cfg, base, measurement="cpu", tags=["host"])
    n = 2000
    # Rows 7 and 1500 put a string into the integer field "load"; the others are fine.
    bad = pa.table(
        {
            "time": pa.array(np.arange(1, n + 1), pa.timestamp("s")),
            "host": ["a"] * n,
            "load": pa.array([f"x{i}" if i in (7, 1500) else None for i in range(n)], pa.string()),
            "ok": pa.array(range(n), pa.int64()),
        }
    )
    with pytest.raises(WriteError) as exc:
        write_arrow(cfg, bad, measurement="cpu", tags=["host"], max_body_bytes=16 * 1024)
    err = exc.value
    assert sorted(r.row for r in err.rejected_lines) == [7, 1500]
    assert all("load" in r.message for r in err.rejected_lines)
    assert err.write_result.requests > 1
    assert err.write_result.lines_written == n - 2
    stored = standin.engine.query_sql("wr_partial", "SELECT count(*) AS c FROM cpu").read_all()
    assert stored["c"][0].as_py() == 1 + n - 2


def test_v2_endpoint_refuses_whole_request(standin: Any) -> None:
    cfg = _cfg(standin, "wr_v2")
    write_line_protocol(cfg, "m v=1i 1\n", endpoint="v2")
    with pytest.raises(WriteError, match="refused as a whole"):
        write_line_protocol(cfg, 'm v=2i 2\nm v="s" 3\nm v=4i 4\n', endpoint="v2")
    got = _read(standin, "wr_v2", "m")["v"].to_pylist()
    assert got == [1]


def test_many_requests_concurrently_all_arrive(standin: Any) -> None:
    n = 30_000
    t = pa.table(
        {
            "time": pa.array(np.arange(n, dtype=np.int64) * 1_000_000, pa.timestamp("ns")),
            "sensor": pa.array(np.arange(n) % 7).cast(pa.string()),
            "v": np.arange(n, dtype=np.float64),
        }
    )
    res = write_arrow(
        _cfg(standin, "wr_many"),
        t,
        measurement="s",
        tags=["sensor"],
        max_body_bytes=64 * 1024,
        concurrency=4,
    )
    assert res.requests >= 10 and res.lines_written == n
    c = standin.engine.query_sql("wr_many", "SELECT count(*) AS c, sum(v) AS s FROM s").read_all()
    assert c["c"][0].as_py() == n and c["s"][0].as_py() == float(np.arange(n).sum())


def test_wrong_token_is_authentication_error(standin: Any) -> None:
    cfg = InfluxDB3Config(
        host=standin.flight_uri, database="wr_auth", token="apiv3_wrong", write_url=standin.http_url
    )
    with pytest.raises(AuthenticationError) as exc:
        write_line_protocol(cfg, "m v=1 1")
    assert "apiv3_wrong" not in str(exc.value)


_idents = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters='\\"')
    | st.sampled_from([" ", ",", "=", "\\", '"']),
    min_size=1,
    max_size=6,
).filter(lambda s: not s.endswith("\\") and s.strip() == s and s.lower() != "time")

_counter = iter(range(10**9))


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    tag=_idents,
    fld=_idents,
    rows=st.lists(
        st.tuples(
            st.none() | _idents,
            st.none() | st.floats(allow_nan=False, allow_infinity=False),
            st.none() | st.text(max_size=8),
            st.none() | st.integers(-(2**63), 2**63 - 1),
            st.none() | st.booleans(),
        ),
        min_size=1,
        max_size=10,
    ),
)
def test_property_round_trip_through_standin(
    standin: Any, tag: str, fld: str, rows: list[tuple[Any, Any, Any, Any, Any]]
) -> None:
    if tag == fld or tag.startswith(fld + "_"):
        return
    table_name = f"prop_{next(_counter)}"
    n = len(rows)
    t = pa.table(
        {
            "time": pa.array(np.arange(n, dtype=np.int64), pa.timestamp("ns")),
            tag: pa.array([r[0] for r in rows], pa.string()),
            fld: pa.array([r[1] for r in rows], pa.float64()),
            fld + "_s": pa.array([r[2] for r in rows], pa.string()),
            fld + "_i": pa.array([r[3] for r in rows], pa.int64()),
            fld + "_b": pa.array([r[4] for r in rows], pa.bool_()),
        }
    )
    res = write_arrow(_cfg(standin, "wr_prop"), t, measurement=table_name, tags=[tag])
    expected = [(i, r) for i, r in enumerate(rows) if any(v is not None for v in r[1:])]
    assert res.lines_written == len(expected) and res.rows_skipped == n - len(expected)
    if not expected:
        return
    got = _read(standin, "wr_prop", table_name).to_pylist()
    assert len(got) == len(expected)
    times = _read(standin, "wr_prop", table_name)["time"].cast(pa.int64()).to_pylist()
    assert times == [i for i, _ in expected]
    for g, (_, r) in zip(got, expected, strict=True):
        assert g.get(tag) == (r[0] or None)
        assert g.get(fld) == r[1]
        assert g.get(fld + "_s") == r[2]
        assert g.get(fld + "_i") == r[3]
        assert g.get(fld + "_b") == r[4]


def test_a_request_refused_whole_says_what_the_server_said(standin: Any) -> None:
    """A bad database name is refused by the server: the error carries its reason."""
    import pyarrow as pa

    from influx_flight import InfluxDB3Config, WriteError

    config = InfluxDB3Config(
        host=standin.flight_uri.replace("grpc+tcp://", "http://"),
        database="bad db!",
        token=standin.token,
        write_url=standin.http_url,
    )
    table = pa.table({"time": pa.array([1], pa.timestamp("s")), "v": [1.0]})
    with pytest.raises(WriteError, match="invalid character in database") as info:
        write_arrow(config, table, measurement="x")
    assert standin.token not in str(info.value)
