"""HTTP queries and management against the stand-in: /api/v3/query_sql (json, jsonl, csv,
pretty, parquet), /api/v3/query_influxql, /api/v3/configure/database, /health, /ping.

Expected shapes follow influxdb3-protocol.md §6.3-§6.5.
"""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

import pyarrow.parquet as pq
import pytest

UNAUTH = b'{"error": "the request was not authenticated"}'


def http(
    method: str, url: str, body: bytes | None = None, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def auth(server: Any, **extra: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {server.token}", **extra}


def get(server: Any, path: str, **params: str) -> tuple[int, dict[str, str], bytes]:
    return http(
        "GET", f"{server.http_url}{path}?{urllib.parse.urlencode(params)}", None, auth(server)
    )


@pytest.fixture(scope="module")
def loaded(standin: Any) -> Any:
    standin.write_lp(
        "hq",
        "home,room=Kitchen temp=21.0,hum=35.9,co=0i 1641024000000000000\n"
        "home,room=Living\\ Room temp=21.1,hum=35.9 1641024000500000000\n"
        'notes,room=Kitchen text="a, \\"quoted\\" note" 1641024000000001000\n',
    )
    return standin


SQL = "SELECT room, temp, co, time FROM home ORDER BY room"


def test_query_sql_json_default(loaded: Any) -> None:
    status, headers, body = get(loaded, "/api/v3/query_sql", db="hq", q=SQL)
    assert status == 200
    assert headers["Content-Type"].startswith("application/json")
    # nulls are left out, timestamps are naive ISO with fractions only when needed
    assert json.loads(body) == [
        {"room": "Kitchen", "temp": 21.0, "co": 0, "time": "2022-01-01T08:00:00"},
        {"room": "Living Room", "temp": 21.1, "time": "2022-01-01T08:00:00.500"},
    ]


def test_query_sql_jsonl_csv_pretty_parquet(loaded: Any) -> None:
    status, headers, body = get(loaded, "/api/v3/query_sql", db="hq", q=SQL, format="jsonl")
    assert (status, headers["Content-Type"]) == (200, "application/jsonl")
    assert [json.loads(line) for line in body.decode().splitlines()][1]["room"] == "Living Room"

    status, headers, body = get(loaded, "/api/v3/query_sql", db="hq", q=SQL, format="csv")
    assert (status, headers["Content-Type"]) == (200, "text/csv")
    assert body.decode().splitlines() == [
        "room,temp,co,time",
        "Kitchen,21.0,0,2022-01-01T08:00:00",
        "Living Room,21.1,,2022-01-01T08:00:00.500",
    ]

    status, headers, body = get(loaded, "/api/v3/query_sql", db="hq", q=SQL, format="pretty")
    assert headers["Content-Type"] == "text/plain; charset=utf-8"
    assert body.decode().splitlines()[:4] == [
        "+-------------+------+----+-------------------------+",
        "| room        | temp | co | time                    |",
        "+-------------+------+----+-------------------------+",
        "| Kitchen     | 21.0 | 0  | 2022-01-01T08:00:00     |",
    ]

    status, headers, body = get(loaded, "/api/v3/query_sql", db="hq", q=SQL, format="parquet")
    assert headers["Content-Type"] == "application/vnd.apache.parquet"
    table = pq.read_table(io.BytesIO(body))
    assert table.column("room").to_pylist() == ["Kitchen", "Living Room"]


def test_csv_quotes_strings(loaded: Any) -> None:
    _, _, body = get(loaded, "/api/v3/query_sql", db="hq", q="SELECT text FROM notes", format="csv")
    assert body.decode().splitlines() == ["text", '"a, ""quoted"" note"']


def test_query_sql_post_with_params(loaded: Any) -> None:
    payload = {
        "db": "hq",
        "q": "SELECT temp FROM home WHERE room = $room",
        "params": {"room": "Living Room"},
        "format": "json",
    }
    status, _, body = http(
        "POST", loaded.http_url + "/api/v3/query_sql", json.dumps(payload).encode(), auth(loaded)
    )
    assert (status, json.loads(body)) == (200, [{"temp": 21.1}])
    # GET takes params as a JSON string
    status, _, body = get(
        loaded,
        "/api/v3/query_sql",
        db="hq",
        q="SELECT temp FROM home WHERE room = $room",
        params=json.dumps({"room": "Kitchen"}),
    )
    assert json.loads(body) == [{"temp": 21.0}]


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("text/csv", "text/csv"),
        ("text/plain", "text/plain; charset=utf-8"),
        ("application/vnd.apache.parquet", "application/vnd.apache.parquet"),
        ("*/*", "application/json"),
        ("text/html,application/xhtml+xml", "application/json"),
    ],
)
def test_accept_header_picks_the_format(loaded: Any, accept: str, content_type: str) -> None:
    url = f"{loaded.http_url}/api/v3/query_sql?db=hq&q=SELECT+1"
    status, headers, _ = http("GET", url, None, auth(loaded, Accept=accept))
    assert (status, headers["Content-Type"]) == (200, content_type)


def test_query_errors(loaded: Any) -> None:
    status, _, body = get(loaded, "/api/v3/query_sql", db="hq_nope", q="SELECT 1")
    assert (status, body) == (404, b'{"error":"query error: database not found: hq_nope"}')
    status, headers, body = get(loaded, "/api/v3/query_sql", db="hq", q="SELECT * FROM missing")
    assert status == 400 and headers["Content-Type"].startswith("text/plain")
    assert b"missing" in body
    status, _, body = get(loaded, "/api/v3/query_sql", db="hq", q="SELEC 1")
    assert status == 400
    assert get(loaded, "/api/v3/query_sql", db="hq", q="SELECT 1", format="xml")[0] == 400
    assert get(loaded, "/api/v3/query_sql", q="SELECT 1")[0] == 400
    assert get(loaded, "/api/v3/query_sql", db="hq")[0] == 400
    url = f"{loaded.http_url}/api/v3/query_sql?db=hq&q=SELECT+1"
    assert http("GET", url, None, auth(loaded, Accept="image/png"))[::2] == (
        400,
        b"invalid mime type",
    )
    assert http("GET", url)[::2] == (401, UNAUTH)


def test_large_result_streams_as_valid_json(standin: Any) -> None:
    lines = "\n".join(f"big,k=k{i % 10} v={i}i {i}" for i in range(50_000))
    standin.write_lp("hq_big", lines)
    status, headers, body = get(
        standin, "/api/v3/query_sql", db="hq_big", q="SELECT k, v FROM big ORDER BY v"
    )
    assert status == 200 and headers.get("Transfer-Encoding") == "chunked"
    doc = json.loads(body)
    assert len(doc) == 50_000 and doc[-1] == {"k": "k9", "v": 49_999}
    status, _, body = get(
        standin, "/api/v3/query_sql", db="hq_big", q="SELECT v FROM big ORDER BY v", format="csv"
    )
    assert body.decode().count("\n") == 50_001


def test_query_influxql_endpoint(loaded: Any) -> None:
    status, _, body = get(loaded, "/api/v3/query_influxql", db="hq", q="SELECT temp FROM home")
    assert status == 200, body
    rows = json.loads(body)
    assert [(r["iox::measurement"], r["temp"]) for r in rows] == [("home", 21.0), ("home", 21.1)]
    assert [r["time"] for r in rows] == ["2022-01-01T08:00:00", "2022-01-01T08:00:00.500"]


# -- databases ----------------------------------------------------------------------------------


def test_database_lifecycle(standin: Any) -> None:
    url = standin.http_url + "/api/v3/configure/database"
    json_headers = auth(standin, **{"Content-Type": "application/json"})
    assert http("POST", url, b'{"db":"hq_life"}', json_headers)[::2] == (200, b"")
    status, _, body = http("POST", url, b'{"db":"hq_life"}', json_headers)
    assert status == 409 and b"already exists" in body
    status, _, body = http("POST", url, b'{"db":"hq_other"}', auth(standin))
    assert (status, body) == (415, b"unacceptable content-type, expected: application/json")
    status, _, body = http("POST", url, b'{"db":"_bad"}', json_headers)
    assert (status, json.loads(body)) == (
        400,
        {"error": "db name did not start with a number or letter"},
    )

    status, _, body = get(standin, "/api/v3/configure/database", format="json")
    assert status == 200 and {"iox::database": "hq_life"} in json.loads(body)
    status, headers, body = get(standin, "/api/v3/configure/database", format="csv")
    assert (
        headers["Content-Type"] == "text/csv" and body.decode().splitlines()[0] == "iox::database"
    )
    status, _, body = get(
        standin, "/api/v3/configure/database", format="jsonl", show_deleted="true"
    )
    assert {"iox::database": "hq_life", "deleted": False} in [
        json.loads(x) for x in body.decode().splitlines()
    ]
    assert get(standin, "/api/v3/configure/database")[0] == 400  # format is required

    # an empty database answers queries (no tables yet)
    status, _, body = get(standin, "/api/v3/query_sql", db="hq_life", q="SELECT 1 AS one")
    assert (status, json.loads(body)) == (200, [{"one": 1}])

    assert http("DELETE", url + "?db=hq_life", None, auth(standin))[::2] == (200, b"")
    assert http("DELETE", url + "?db=hq_life", None, auth(standin))[0] == 404
    assert get(standin, "/api/v3/query_sql", db="hq_life", q="SELECT 1")[0] == 404


# -- health, ping, routing ---------------------------------------------------------------------


def test_health_ping_and_routing(standin: Any) -> None:
    for path in ("/health", "/api/v1/health"):
        status, headers, body = get(standin, path)
        assert (status, body, headers["Content-Type"]) == (200, b"OK", "text/plain; charset=utf-8")
    for method in ("GET", "POST"):
        status, headers, body = http(method, standin.http_url + "/ping", None, auth(standin))
        doc = json.loads(body)
        assert status == 200 and doc["product_name"] == "InfluxDB 3 Core"
        assert headers["X-Influxdb-Version"] == doc["version"]
        assert headers["X-Influxdb-Build"] == "Core"
        assert headers["Request-Id"] == headers["X-Request-Id"]
        assert "process_id" in doc and "revision" in doc
    status, headers, body = get(standin, "/no/such/route")
    assert (status, body) == (404, b"Not found") and "cluster-uuid" in headers
    assert get(standin, "/ready")[0] == 404
    status, headers, _ = http("OPTIONS", standin.http_url + "/api/v3/write_lp")
    assert status == 204 and headers["Access-Control-Allow-Origin"] == "*"


def test_json_leaves_out_non_finite_floats(standin: Any) -> None:
    standin.write_lp("hq_nan", "m,k=a v=1 1\nm,k=b v=2 2")
    sql = "SELECT k, CASE WHEN k = 'a' THEN v / 0.0 ELSE v END AS v FROM m ORDER BY k"
    status, _, body = get(standin, "/api/v3/query_sql", db="hq_nan", q=sql)
    assert (status, json.loads(body)) == (200, [{"k": "a"}, {"k": "b", "v": 2.0}])
