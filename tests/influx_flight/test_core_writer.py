"""The HTTP writer against real HTTP peers on 127.0.0.1.

A small aiohttp server in this module records what the writer sends (path, query, headers,
decompressed body) and answers as each test scripts it (204, 503 + Retry-After, partial-write
400s, 401); the stand-in server then checks the real write path end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from aiohttp import web
from core_write_helpers import write_arrow, write_line_protocol

from influx_flight import (
    NO_RETRY,
    USE_CLIENT_DEFAULT,
    AuthenticationError,
    ConfigurationError,
    EncodingError,
    InfluxDB3Client,
    InfluxDB3Config,
    OperationCancelledError,
    RetryPolicy,
    ServerUnavailableError,
    TransportError,
    WriteError,
    WriteOptions,
)
from influx_flight.lineprotocol import encode_table

TOKEN = "apiv3_secret-token-never-shown"
FAST_RETRY = RetryPolicy(max_attempts=3, initial_backoff=0.01, jitter=False, max_elapsed=30)


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    wire_bytes: int
    peer: Any = None


@dataclass
class Recorder:
    """Scriptable HTTP peer: ``respond(seen, attempt_no) -> (status, body, headers)``."""

    url: str = ""
    seen: list[Seen] = field(default_factory=list)
    respond: Callable[[Seen, int], tuple[int, str, dict[str, str]]] | None = None
    delay: float = 0.0
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle(self, request: web.Request) -> web.Response:
        # aiohttp undoes Content-Encoding: gzip itself (and fails on an invalid gzip stream);
        # Content-Length is what travelled on the wire.
        body = await request.read()
        wire = int(request.headers["Content-Length"])
        peer = request.transport.get_extra_info("peername") if request.transport else None
        seen = Seen(request.path, dict(request.query), dict(request.headers), body, wire, peer)
        with self.lock:
            self.seen.append(seen)
            n = len(self.seen)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            status, text, headers = self.respond(seen, n) if self.respond else (204, "", {})
            return web.Response(status=status, text=text or None, headers=headers)
        finally:
            with self.lock:
                self.in_flight -= 1

    def lines(self) -> list[str]:
        return [ln for s in self.seen for ln in s.body.decode().splitlines()]


@contextlib.contextmanager
def serving(rec: Recorder, ssl_context: Any = None) -> Iterator[Recorder]:
    """Serve ``rec`` on an ephemeral loopback port (HTTPS with ``ssl_context``) in a thread."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    runner_box: list[web.AppRunner] = []

    async def start() -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/{tail:.*}", rec.handle)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
        await site.start()
        scheme = "https" if ssl_context is not None else "http"
        rec.url = f"{scheme}://127.0.0.1:{runner.addresses[0][1]}"
        runner_box.append(runner)

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield rec
    finally:
        asyncio.run_coroutine_threadsafe(runner_box[0].cleanup(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with serving(Recorder()) as rec:
        yield rec


def _config(url: str, **kw: Any) -> InfluxDB3Config:
    return InfluxDB3Config(host=url, database="db1", token=TOKEN, **kw)


def _table(n: int, start: int = 1_700_000_000_000_000_000) -> pa.Table:
    rng = np.random.default_rng(1)
    return pa.table(
        {
            "time": pa.array(
                start + np.arange(n, dtype=np.int64) * 1_000_000_000, pa.timestamp("ns")
            ),
            "room": pa.array(rng.choice(["kitchen", "living room"], n)),
            "temp": rng.random(n) * 30,
            "count": pa.array(np.arange(n), pa.int64()),
        }
    )


# --- request shape --------------------------------------------------------------------------------


def test_v3_request_shape_gzip_and_result(recorder: Recorder) -> None:
    t = _table(100)
    res = write_arrow(_config(recorder.url), t, measurement="home", tags=["room"], retry=FAST_RETRY)
    (seen,) = recorder.seen
    assert seen.path == "/api/v3/write_lp"
    assert seen.query == {"db": "db1", "precision": "nanosecond", "accept_partial": "true"}
    assert seen.headers["Authorization"] == f"Bearer {TOKEN}"
    assert seen.headers["Content-Encoding"] == "gzip"
    assert seen.headers["Content-Type"].startswith("text/plain")
    assert seen.headers["User-Agent"].startswith("influx-flight/")
    assert seen.body.decode() == encode_table(t, measurement="home", tags=["room"]).text()
    assert res.rows == 100 and res.lines_written == 100 and res.requests == 1
    assert res.bytes_sent == seen.wire_bytes < res.bytes_encoded == len(seen.body)
    assert res.rejected == [] and res.ok


def test_v2_endpoint_plain_body_token_scheme_and_options(recorder: Recorder) -> None:
    cfg = _config(recorder.url, auth_scheme="Token")
    res = write_arrow(
        cfg,
        _table(3),
        measurement="home",
        tags=["room"],
        precision="ms",
        endpoint="v2",
        gzip=False,
        database="other",
    )
    (seen,) = recorder.seen
    assert seen.path == "/api/v2/write"
    assert seen.query == {"bucket": "other", "precision": "ms"}
    assert "Content-Encoding" not in seen.headers
    assert seen.headers["Authorization"] == f"Token {TOKEN}"
    assert seen.body.decode().splitlines()[0].endswith(" 1700000000000")
    assert res.lines_written == 3

    write_arrow(cfg, _table(1), measurement="m", no_sync=True, accept_partial=False)
    assert recorder.seen[-1].query == {
        "db": "db1",
        "precision": "nanosecond",
        "accept_partial": "false",
        "no_sync": "true",
    }


def test_bodies_are_batched_under_the_limit(recorder: Recorder) -> None:
    t = _table(20_000)
    limit = 64 * 1024
    res = write_arrow(
        _config(recorder.url), t, measurement="home", tags=["room"], max_body_bytes=limit
    )
    assert res.requests == len(recorder.seen) > 10
    assert all(len(s.body) <= limit for s in recorder.seen)
    expected = encode_table(t, measurement="home", tags=["room"]).lines()
    assert sorted(recorder.lines()) == sorted(expected)
    assert res.lines_written == 20_000 and res.bytes_encoded == sum(
        len(s.body) for s in recorder.seen
    )


@pytest.mark.parametrize("concurrency", [1, 4])
def test_concurrency_bounds_requests_in_flight(recorder: Recorder, concurrency: int) -> None:
    recorder.delay = 0.15
    t = _table(4000)
    res = write_arrow(
        _config(recorder.url),
        t,
        measurement="home",
        max_body_bytes=16 * 1024,
        concurrency=concurrency,
    )
    assert res.requests >= 8
    if concurrency == 1:
        assert recorder.max_in_flight == 1
    else:
        assert 2 <= recorder.max_in_flight <= concurrency


# --- retries and errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 429])
def test_503_with_retry_after_is_retried_then_succeeds(recorder: Recorder, status: int) -> None:
    recorder.respond = lambda seen, n: (
        (status, '{"error":"busy"}', {"Retry-After": "1"}) if n == 1 else (204, "", {})
    )
    started = time.monotonic()
    res = write_arrow(_config(recorder.url), _table(10), measurement="m", retry=FAST_RETRY)
    elapsed = time.monotonic() - started
    assert len(recorder.seen) == 2 and recorder.seen[0].body == recorder.seen[1].body
    assert elapsed >= 0.95  # honoured Retry-After: 1 (backoff alone would be 0.01 s)
    assert res.requests == 1 and res.lines_written == 10


def test_503_exhausted_raises_server_unavailable(recorder: Recorder) -> None:
    recorder.respond = lambda seen, n: (503, "overloaded", {})
    with pytest.raises(ServerUnavailableError, match="HTTP 503") as exc:
        write_arrow(_config(recorder.url), _table(5), measurement="m", retry=FAST_RETRY)
    assert len(recorder.seen) == 3
    assert TOKEN not in str(exc.value)


def test_4xx_is_never_retried_and_token_not_shown(recorder: Recorder) -> None:
    recorder.respond = lambda seen, n: (401, '{"error": "the request was not authenticated"}', {})
    with pytest.raises(AuthenticationError) as exc:
        write_arrow(_config(recorder.url), _table(5), measurement="m", retry=FAST_RETRY)
    assert len(recorder.seen) == 1
    assert TOKEN not in str(exc.value) and TOKEN not in repr(exc.value)


def test_connection_refused_is_unavailable() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ServerUnavailableError, match=r"cannot write to http://127\.0\.0\.1"):
        write_arrow(
            _config(f"http://127.0.0.1:{port}"),
            _table(2),
            measurement="m",
            retry=RetryPolicy(max_attempts=2, initial_backoff=0.01),
        )


def test_partial_write_maps_lines_back_to_input_rows(recorder: Recorder) -> None:
    def respond(seen: Seen, n: int) -> tuple[int, str, dict[str, str]]:
        lines = seen.body.decode().splitlines()
        bad = [i for i, ln in enumerate(lines, 1) if ",count=13i " in ln or ",count=3007i " in ln]
        if not bad:
            return 204, "", {}
        data = [
            {
                "error_message": "invalid column type",
                "line_number": i,
                "original_line": lines[i - 1][:20],
            }
            for i in bad
        ]
        return (
            400,
            json.dumps({"error": "partial write of line protocol occurred", "data": data}),
            {},
        )

    recorder.respond = respond
    t = _table(5000)
    # Row 1 has no field at all: skipped, so lines and rows differ by one from there on.
    t = t.set_column(
        2, "temp", pa.array([None if i == 1 else v for i, v in enumerate(t["temp"].to_pylist())])
    )
    t = t.set_column(3, "count", pa.array([None if i == 1 else i for i in range(5000)], pa.int64()))
    with pytest.raises(WriteError) as exc:
        write_arrow(
            _config(recorder.url), t, measurement="m", tags=["room"], max_body_bytes=32 * 1024
        )
    err = exc.value
    assert len(recorder.seen) > 3
    assert sorted(r.row for r in err.rejected_lines) == [13, 3007]
    assert all(r.message == "invalid column type" for r in err.rejected_lines)
    assert "row 13" in str(err) and "row 3007" in str(err)
    assert "4997 of 4999 line(s) were written" in str(err)
    result = err.write_result
    assert result.lines_written == 4997 and result.rows_skipped == 1 and result.rows == 5000


def test_strict_rejection_says_nothing_of_the_request_was_written(recorder: Recorder) -> None:
    recorder.respond = lambda seen, n: (
        400,
        json.dumps(
            {
                "error": "line protocol parsing error",
                "data": {"error_message": "bad", "line_number": 2, "original_line": "m x"},
            }
        ),
        {},
    )
    with pytest.raises(WriteError, match="refused as a whole") as exc:
        write_arrow(_config(recorder.url), _table(4), measurement="m", accept_partial=False)
    assert [r.row for r in exc.value.rejected_lines] == [1]
    assert exc.value.write_result.lines_written == 0
    assert exc.value.write_result.unwritten_rows == 4


def test_write_line_protocol_skips_blank_and_comment_lines(recorder: Recorder) -> None:
    recorder.respond = lambda seen, n: (
        400,
        json.dumps(
            {
                "error": "partial write of line protocol occurred",
                "data": [{"error_message": "no fields", "line_number": 2, "original_line": "cpu"}],
            }
        ),
        {},
    )
    text = "# header\ncpu v=1 1\n\ncpu\ncpu v=3 3\n"
    with pytest.raises(WriteError) as exc:
        write_line_protocol(_config(recorder.url), text, precision="s", gzip=False)
    assert recorder.seen[0].body == b"cpu v=1 1\ncpu\ncpu v=3 3\n"
    assert recorder.seen[0].query["precision"] == "second"
    (rej,) = exc.value.rejected_lines
    assert rej.row == 3 and rej.line_number == 2  # 0-based input line 3 is "cpu"
    assert exc.value.write_result.rows_skipped == 2


@pytest.mark.parametrize(
    ("kwargs", "fieldname"),
    [
        ({"concurrency": 0}, "concurrency"),
        ({"max_body_bytes": 11 * 1024 * 1024}, "max_body_bytes"),
        ({"endpoint": "v2", "no_sync": True}, "no_sync"),
        ({"endpoint": "v1"}, "endpoint"),
        ({"precision": "h"}, "precision"),
    ],
)
def test_bad_options_are_refused_before_sending(
    recorder: Recorder, kwargs: dict, fieldname: str
) -> None:
    with pytest.raises(ConfigurationError) as exc:
        write_arrow(_config(recorder.url), _table(1), measurement="m", **kwargs)
    assert exc.value.field == fieldname
    assert recorder.seen == []


def test_bad_rows_later_in_a_stream_stop_it_and_say_what_was_written(recorder: Recorder) -> None:

    n = 3000
    good = pa.record_batch(
        {
            "time": pa.array(range(n), pa.timestamp("s")),
            "t": ["a"] * n,
            "v": pa.array(range(n), pa.int64()),
        }
    )
    bad = pa.record_batch(
        {"time": pa.array([n, n + 1], pa.timestamp("s")), "t": ["c", "d\n"], "v": [1, 2]}
    )
    reader = pa.RecordBatchReader.from_batches(good.schema, [good, bad])
    with pytest.raises(EncodingError, match=rf"rows \[{n + 1}\]") as exc:
        write_arrow(
            _config(recorder.url), reader, measurement="m", tags=["t"], max_body_bytes=16 * 1024
        )
    sent = recorder.lines()
    assert 0 < len(sent) < n
    assert exc.value.write_result.lines_written == len(sent)
    assert any(f"{len(sent)} line(s) from earlier rows" in note for note in exc.value.__notes__)
    # whole bodies from the start of the stream (in any order: they travel concurrently)
    assert sorted(sent, key=lambda ln: int(ln.split()[-1])) == [
        f"m,t=a v={i}i {i * 10**9}" for i in range(len(sent))
    ]


# --- TLS ------------------------------------------------------------------------------------------


def _self_signed(tmp_path: Any) -> tuple[str, str, str]:
    """A CA and a server certificate for 127.0.0.1 signed by it: (ca_pem, cert_file, key_file)."""
    import datetime as dt
    import ipaddress

    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "influx-flight test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "server.pem", tmp_path / "server.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return ca.public_bytes(serialization.Encoding.PEM).decode(), str(cert_file), str(key_file)


@pytest.fixture
def tls_recorder(tmp_path: Any) -> Iterator[tuple[Recorder, str]]:
    import ssl

    ca_pem, cert_file, key_file = _self_signed(tmp_path)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert_file, key_file)
    with serving(Recorder(), ctx) as rec:
        yield rec, ca_pem


@pytest.mark.filterwarnings("ignore:Unverified HTTPS request")
def test_tls_with_ca_bundle_and_without(tls_recorder: tuple[Recorder, str], tmp_path: Any) -> None:
    rec, ca_pem = tls_recorder
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text(ca_pem)
    res = write_arrow(_config(rec.url, ca_cert=str(ca_file)), _table(3), measurement="m")
    assert res.lines_written == 3 and len(rec.seen) == 1

    write_arrow(_config(rec.url, verify_tls=False), _table(2), measurement="m")
    assert len(rec.seen) == 2

    with pytest.raises(TransportError, match="TLS handshake") as exc:
        write_arrow(_config(rec.url), _table(2), measurement="m", retry=FAST_RETRY)
    assert not isinstance(exc.value, ServerUnavailableError)  # not retried
    assert "ca_cert" in str(exc.value) and len(rec.seen) == 2


# --- the client's settings apply to writes --------------------------------------------------------


def _fail_once(seen: Seen, n: int) -> tuple[int, str, dict[str, str]]:
    return (503, '{"error":"busy"}', {}) if n == 1 else (204, "", {})


def test_no_retry_policy_means_one_write_attempt(recorder: Recorder) -> None:
    recorder.respond = _fail_once
    client = InfluxDB3Client(_config(recorder.url), retry_policy=NO_RETRY)
    with client, pytest.raises(ServerUnavailableError, match="HTTP 503"):
        client.write(_table(3), measurement="m")
    assert len(recorder.seen) == 1


def test_client_retry_policy_retries_writes(recorder: Recorder) -> None:
    recorder.respond = _fail_once
    with InfluxDB3Client(_config(recorder.url), retry_policy=FAST_RETRY) as client:
        res = client.write(_table(3), measurement="m")
    assert res.lines_written == 3 and len(recorder.seen) == 2


def test_write_options_on_the_client_and_per_call_overrides(recorder: Recorder) -> None:
    opts = WriteOptions(precision="ms", gzip=False, no_sync=True)
    with InfluxDB3Client(_config(recorder.url), write_options=opts) as client:
        client.write_lp("m v=1 1\n")
        client.write_lp("m v=1 1\n", precision="s", no_sync=USE_CLIENT_DEFAULT)
        with pytest.raises(ConfigurationError, match="unknown write option"):
            client.write_lp("m v=1 1\n", gzipped=True)  # type: ignore[call-arg]
    first, second = recorder.seen
    assert first.query["precision"] == "millisecond" and first.query["no_sync"] == "true"
    assert "Content-Encoding" not in first.headers
    assert second.query["precision"] == "second" and second.query["no_sync"] == "true"
    assert client.write_options == opts  # frozen: calls never change it
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.gzip = True  # type: ignore[misc]


def test_one_connection_pool_serves_every_write_of_a_client(recorder: Recorder) -> None:
    with InfluxDB3Client(_config(recorder.url), write_options=WriteOptions(concurrency=1)) as c:
        for i in range(5):
            c.write_lp(f"m v={i} {i}\n")
    ports = {s.peer[1] for s in recorder.seen}
    assert len(recorder.seen) == 5 and len(ports) == 1, ports  # one keep-alive connection


def test_injected_http_pool_is_used(recorder: Recorder) -> None:
    import urllib3

    class CountingPool(urllib3.PoolManager):
        requests = 0

        def urlopen(self, *args: Any, **kwargs: Any) -> Any:
            self.requests += 1
            return super().urlopen(*args, **kwargs)

    pool = CountingPool()
    with InfluxDB3Client(_config(recorder.url), http_pool=pool) as client:
        client.write_lp("m v=1 1\n")
        client.write_lp("m v=2 2\n")
    assert pool.requests == 2 and len(recorder.seen) == 2


@pytest.mark.parametrize("how", ["cancel", "close"])
def test_cancel_and_close_interrupt_a_write_in_flight(recorder: Recorder, how: str) -> None:
    recorder.delay = 4.0  # the server sits on the request
    client = InfluxDB3Client(_config(recorder.url), retry_policy=FAST_RETRY)
    box: dict[str, float] = {}

    def stop() -> None:
        time.sleep(0.5)
        box["at"] = time.monotonic()
        getattr(client, how)()
        box["returned"] = time.monotonic() - box["at"]

    thread = threading.Thread(target=stop)
    thread.start()
    with pytest.raises(OperationCancelledError, match="cancelled"):
        client.write(_table(10), measurement="m")
    ended = time.monotonic() - box["at"]
    thread.join(5)
    assert ended < 1.0, f"the write ended {ended:.2f}s after {how}()"
    assert box["returned"] < 1.0
    assert len(recorder.seen) == 1  # not retried after the cancel
    if how == "cancel":
        recorder.delay = 0
        assert client.write(_table(2), measurement="m").lines_written == 2  # still usable
    client.close()
