"""HTTP writes against the stand-in over real HTTP: /api/v3/write_lp, /api/v2/write, /write.

Status codes and bodies follow influxdb3-protocol.md §6.1/§6.2 and the auth rules of §3.1.
"""

from __future__ import annotations

import base64
import gzip
import json
import threading
import urllib.error
import urllib.request
from typing import Any

import pytest

MAX = 10 * 1024 * 1024
UNAUTH = b'{"error": "the request was not authenticated"}'
MALFORMED = (
    b'{"error": "Authorization header was malformed, the request was not in the form of '
    b"'Authorization: <auth-scheme> <token>', supported auth-schemes are Bearer, Token and Basic\"}"
)


def http(
    method: str,
    url: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def auth(server: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}"}


def rows(server: Any, db: str, sql: str) -> list[dict[str, Any]]:
    return server.engine.query_sql(db, sql, hydrate=True).read_all().to_pylist()


def write(server: Any, path: str, body: bytes, **headers: str) -> tuple[int, dict[str, str], bytes]:
    return http("POST", server.http_url + path, body, {**auth(server), **headers})


# -- /api/v3/write_lp ----------------------------------------------------------------------


def test_write_lp_success_is_204_and_visible(standin: Any) -> None:
    status, headers, body = write(
        standin,
        "/api/v3/write_lp?db=wh_ok",
        b"home,room=Kitchen temp=21.1,hum=35.9,co=0i 1641024000\n"
        b"home,room=Living\\ Room temp=21.4,hum=35.9,co=0i 1641024000\n",
    )
    assert (status, body) == (204, b"")
    assert headers["Access-Control-Allow-Origin"] == "*"
    assert "cluster-uuid" in headers
    got = rows(standin, "wh_ok", "SELECT room, temp, co, time FROM home ORDER BY room")
    assert [(r["room"], r["temp"], r["co"]) for r in got] == [
        ("Kitchen", 21.1, 0),
        ("Living Room", 21.4, 0),
    ]
    # precision=auto by default: 1641024000 is seconds
    assert str(got[0]["time"]) == "2022-01-01 08:00:00"


def test_partial_write_body_lists_every_bad_line(standin: Any) -> None:
    body = (
        "m,t=a f=1 1\nbad\nm,t=b f=2i 2\nm,t=c f=3 3\nm,t=ünïcødé_long_value f=oops 4\n"
    ).encode()
    status, headers, raw = write(standin, "/api/v3/write_lp?db=wh_partial&precision=ns", body)
    assert status == 400
    assert headers["Content-Type"].startswith("application/json")
    doc = json.loads(raw)
    assert doc["error"] == "partial write of line protocol occurred"
    assert [d["line_number"] for d in doc["data"]] == [2, 3, 5]
    assert doc["data"][0] == {
        "error_message": "Expected at least one space character, got end of input",
        "line_number": 2,
        "original_line": "bad",
    }
    assert doc["data"][1]["error_message"] == (
        "invalid field value in line protocol for field 'f' on line 2: expected type "
        "iox::column_type::field::float, but got iox::column_type::field::integer"
    )
    # original_line is cut to 20 bytes (on a character boundary)
    assert doc["data"][2]["original_line"] == "m,t=ünïcødé_long"
    assert len(doc["data"][2]["original_line"].encode()) <= 20
    # the valid lines were written
    assert [r["t"] for r in rows(standin, "wh_partial", "SELECT t FROM m ORDER BY t")] == ["a", "c"]


def test_strict_write_rejects_the_whole_request(standin: Any) -> None:
    status, _, raw = write(
        standin,
        "/api/v3/write_lp?db=wh_strict&accept_partial=false",
        b"m f=1 1\nm f=x 2\nm f=bad\n",
    )
    assert status == 400
    assert json.loads(raw) == {
        "error": "line protocol parsing error",
        "data": {
            "error_message": "No fields were provided",
            "line_number": 2,
            "original_line": "m f=x 2",
        },
    }
    assert not standin.engine.has_database("wh_strict") or not standin.engine.tables("wh_strict")


def test_field_type_conflict_with_an_earlier_request(standin: Any) -> None:
    assert write(standin, "/api/v3/write_lp?db=wh_conflict", b"m v=1i 1")[0] == 204
    status, _, raw = write(standin, "/api/v3/write_lp?db=wh_conflict", b"m v=1.5 2\nm v=2i 3")
    assert status == 400
    doc = json.loads(raw)
    assert [d["line_number"] for d in doc["data"]] == [1]
    assert "expected type iox::column_type::field::integer" in doc["data"][0]["error_message"]
    assert [r["v"] for r in rows(standin, "wh_conflict", "SELECT v FROM m ORDER BY time")] == [1, 2]


def test_writes_extend_the_schema(standin: Any) -> None:
    assert write(standin, "/api/v3/write_lp?db=wh_extend", b"m,a=1 f=1 1")[0] == 204
    assert write(standin, "/api/v3/write_lp?db=wh_extend", b'm,b=2 g="s",h=t 2')[0] == 204
    schema = standin.engine.tables("wh_extend")["m"]
    assert schema.tags == ["a", "b"]
    assert set(schema.fields) == {"f", "g", "h"}


def test_no_sync_write_is_visible_on_return(standin_factory: Any) -> None:
    server = standin_factory(wal_flush_interval=30.0)
    status, _, _ = write(server, "/api/v3/write_lp?db=wh_nosync&no_sync=true", b"m f=1 1")
    assert status == 204
    assert rows(server, "wh_nosync", "SELECT f FROM m") == [{"f": 1.0}]


@pytest.mark.parametrize(
    ("precision", "ts", "expected"),
    [
        ("second", "1", "1970-01-01 00:00:01"),
        ("ms", "1500", "1970-01-01 00:00:01.500000"),
        ("microsecond", "2", "1970-01-01 00:00:00.000002"),
        ("n", "3", "1970-01-01 00:00:00.000000003"),
    ],
)
def test_write_lp_precisions(standin: Any, precision: str, ts: str, expected: str) -> None:
    db = f"wh_prec_{precision}"
    assert (
        write(standin, f"/api/v3/write_lp?db={db}&precision={precision}", f"m f=1 {ts}".encode())[0]
        == 204
    )
    assert str(rows(standin, db, "SELECT time FROM m")[0]["time"]) == expected


def test_bad_parameters(standin: Any) -> None:
    status, _, body = write(standin, "/api/v3/write_lp", b"m f=1")
    assert (status, body) == (400, b"missing query parameter 'db'")
    status, _, body = write(standin, "/api/v3/write_lp?db=x&precision=hours", b"m f=1")
    assert status == 400 and b"invalid precision 'hours'" in body
    status, _, body = write(standin, "/api/v3/write_lp?db=x&accept_partial=maybe", b"m f=1")
    assert status == 400 and b"accept_partial" in body
    status, _, body = write(standin, "/api/v3/write_lp?db=wh_empty", b"")
    assert (status, body) == (400, b"incoming write was empty")
    status, _, body = write(standin, "/api/v3/write_lp?db=wh_utf8", b"m f=1 \xff")
    assert status == 400 and b"UTF-8" in body


@pytest.mark.parametrize(
    ("db", "message"),
    [
        ("_bad", "db name did not start with a number or letter"),
        ("bad$name", "invalid character in database or rp name: $"),
        ("a/b/c", "invalid character in database or rp name: /"),
    ],
)
def test_bad_database_names(standin: Any, db: str, message: str) -> None:
    status, _, body = write(standin, f"/api/v3/write_lp?db={urllib.request.quote(db)}", b"m f=1")
    assert status == 400
    assert json.loads(body) == {"error": message}


# -- request bodies: gzip and size ------------------------------------------------------------


def test_gzip_and_identity_bodies(standin: Any) -> None:
    body = b"\n".join(f"m,i={i} f={i} {i}".encode() for i in range(1000))
    assert (
        write(
            standin,
            "/api/v3/write_lp?db=wh_gzip",
            gzip.compress(body),
            **{"Content-Encoding": "gzip"},
        )[0]
        == 204
    )
    assert (
        write(
            standin,
            "/api/v3/write_lp?db=wh_gzip",
            b"m,i=x f=1 1",
            **{"Content-Encoding": "identity"},
        )[0]
        == 204
    )
    assert rows(standin, "wh_gzip", "SELECT count(*) AS n FROM m") == [{"n": 1001}]


def test_bad_encodings(standin: Any) -> None:
    status, _, body = write(
        standin, "/api/v3/write_lp?db=wh_enc", b"m f=1", **{"Content-Encoding": "br"}
    )
    assert status == 400 and b"content encoding" in body
    status, _, body = write(
        standin, "/api/v3/write_lp?db=wh_enc", b"not gzip", **{"Content-Encoding": "gzip"}
    )
    assert status == 400 and b"gzip" in body


def test_size_limit_raw_and_after_decompression(standin: Any) -> None:
    line = b"m" + b"x" * 1000 + b" f=1 1\n"  # long lines keep the parse cheap
    over = line * (MAX // len(line) + 1)
    status, _, body = write(standin, "/api/v3/write_lp?db=wh_size", over)
    assert (status, body) == (413, b"max request size (10485760 bytes) exceeded")
    # small on the wire, too big once inflated
    status, _, body = write(
        standin, "/api/v3/write_lp?db=wh_size", gzip.compress(over), **{"Content-Encoding": "gzip"}
    )
    assert (status, body) == (413, b"max request size (10485760 bytes) exceeded")
    # just under the limit is fine
    under = line * (MAX // len(line))
    assert len(under) <= MAX
    assert (
        write(
            standin,
            "/api/v3/write_lp?db=wh_size",
            gzip.compress(under),
            **{"Content-Encoding": "gzip"},
        )[0]
        == 204
    )


# -- /api/v2/write and /write ----------------------------------------------------------------


def test_v2_write_uses_bucket_and_nanoseconds(standin: Any) -> None:
    status, _, _ = write(
        standin, "/api/v2/write?bucket=wh_v2&org=ignored", b"m f=1 1641024000000000000"
    )
    assert status == 204
    assert str(rows(standin, "wh_v2", "SELECT time FROM m")[0]["time"]) == "2022-01-01 08:00:00"


def test_v2_write_is_strict_with_v2_errors(standin: Any) -> None:
    status, _, raw = write(standin, "/api/v2/write?bucket=wh_v2s", b"m f=1 1\nm f=oops 2")
    assert status == 400
    doc = json.loads(raw)
    assert doc["code"] == "invalid"
    assert doc["message"].startswith("write buffer error: line protocol parse failed: ")
    assert "No fields were provided" in doc["message"]
    assert not standin.engine.has_database("wh_v2s") or not standin.engine.tables("wh_v2s")
    status, _, raw = write(standin, "/api/v2/write?org=o", b"m f=1")
    assert (status, json.loads(raw)) == (
        400,
        {"code": "invalid", "message": "missing bucket value"},
    )
    status, _, raw = write(standin, "/api/v2/write?bucket=wh_v2e", b"")
    assert (status, json.loads(raw)) == (
        400,
        {"code": "invalid", "message": "incoming write was empty"},
    )


def test_v1_write_db_rp_precision_and_p_token(standin: Any) -> None:
    url = f"{standin.http_url}/write?db=wh_v1&rp=autogen&precision=s&p={standin.token}"
    assert http("POST", url, b"m f=1 1")[0] == 204
    assert str(rows(standin, "wh_v1", "SELECT time FROM m")[0]["time"]) == "1970-01-01 00:00:01"
    url = f"{standin.http_url}/write?db=wh_v1&rp=short&p={standin.token}"
    assert http("POST", url, b"m f=2 2")[0] == 204
    assert standin.engine.has_database("wh_v1/short")
    # p is not accepted on other endpoints
    url = f"{standin.http_url}/api/v3/write_lp?db=wh_v1&p={standin.token}"
    assert http("POST", url, b"m f=3 3")[:3:2] == (401, UNAUTH)
    # v1 is strict
    status, _, raw = http(
        "POST", f"{standin.http_url}/write?db=wh_v1&p={standin.token}", b"m f=1\nbad"
    )
    assert status == 400 and json.loads(raw)["error"] == "line protocol parsing error"


# -- authentication ---------------------------------------------------------------------------


def test_auth_failures_have_cores_bodies(standin: Any) -> None:
    url = standin.http_url + "/api/v3/write_lp?db=wh_auth"
    assert http("POST", url, b"m f=1")[::2] == (401, UNAUTH)
    assert http("POST", url, b"m f=1", {"Authorization": "Bearer wrong"})[::2] == (401, UNAUTH)
    for bad in ("Bearer", "bearer " + standin.token, "Bearer a b", "Magic xyz"):
        assert http("POST", url, b"m f=1", {"Authorization": bad})[::2] == (400, MALFORMED)
    assert http("POST", url, b"m f=1", {"Authorization": f"Token {standin.token}"})[0] == 204
    basic = base64.b64encode(f"user:{standin.token}".encode()).decode()
    assert http("POST", url, b"m f=2", {"Authorization": f"Basic {basic}"})[0] == 204
    assert http("GET", standin.http_url + "/health")[::2] == (401, UNAUTH)


def test_without_auth_still_checks_the_header_form(standin_factory: Any) -> None:
    server = standin_factory(without_auth=True)
    url = server.http_url + "/api/v3/write_lp?db=wh_noauth"
    assert http("POST", url, b"m f=1")[0] == 204
    assert http("POST", url, b"m f=1", {"Authorization": "Bearer anything"})[0] == 204
    assert http("POST", url, b"m f=1", {"Authorization": "Bearer"})[::2] == (400, MALFORMED)


# -- concurrency ----------------------------------------------------------------------------


def test_concurrent_writers_all_land(standin: Any) -> None:
    results: list[int] = []

    def writer(w: int) -> None:
        for b in range(5):
            body = "\n".join(f"m,w={w} v={b * 100 + i}i {b * 100 + i}" for i in range(100)).encode()
            results.append(write(standin, "/api/v3/write_lp?db=wh_conc&precision=ns", body)[0])

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [204] * 30
    got = rows(standin, "wh_conc", "SELECT w, count(*) AS n FROM m GROUP BY w ORDER BY w")
    assert got == [{"w": str(w), "n": 500} for w in range(6)]
