"""Plaintext HTTP/2 (h2c, prior knowledge) on the shared port: gRPC or the HTTP API, per Core.

Core routes each request: HTTP/2 with a ``content-type`` starting ``application/grpc`` goes to
Flight, every other request to the HTTP router, which hyper serves over HTTP/1.1 and h2c alike
(``unified_service/service.rs``). The stand-in routes per connection, so it reads the first
request's headers without consuming them (``is_grpc``): gRPC connections are relayed to the
Flight server untouched; any other h2c connection is served here by translating each HTTP/2
request into an HTTP/1.1 request to the stand-in's own HTTP API (``serve_h2c``), with the
answer sent back as HTTP/2. The HTTP API is the same code either way.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Callable

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import hpack

__all__ = ["is_grpc", "serve_h2c"]

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEADERS, _SETTINGS, _CONTINUATION = 0x1, 0x4, 0x9
#: GRPC_ALLOW_TRUE_BINARY_METADATA, a SETTINGS id only gRPC's C core sends.
_GRPC_SETTING = 0xFE03
_END_HEADERS, _PADDED, _PRIORITY = 0x4, 0x8, 0x20
#: Headers that belong to one HTTP/1.1 hop, never forwarded between the two protocols.
_HOP = {b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade"}
_PEEK_LIMIT = 256 * 1024
#: How long a connection that has sent its preface may stay without a request (see is_grpc).
_HEADERS_WAIT = 0.1


def is_grpc(
    conn: socket.socket, timeout: float = 10.0, headers_wait: float = _HEADERS_WAIT
) -> bool:
    """Whether the first request of an h2c connection is gRPC (``content-type: application/grpc``).

    Reads ahead with ``MSG_PEEK`` (nothing is consumed) until the first HEADERS block is
    complete, then decodes it with a fresh HPACK decoder (the first block cannot refer to an
    earlier one). gRPC's C core (pyarrow, influxdb3-python) sends its first request only after
    the server's SETTINGS, which only the Flight server may send: it is recognised by its own
    SETTINGS id (``_GRPC_SETTING``), and any other connection that has sent its preface and
    SETTINGS but no request within ``headers_wait`` seconds counts as gRPC too. HTTP/2 clients
    of the HTTP API (curl, httpx, h2) send their request right behind the preface.
    """
    conn.settimeout(timeout)
    deadline = time.monotonic() + timeout
    want = len(_PREFACE) + 9
    settled: float | None = None
    seen = 0
    try:
        while True:
            data = conn.recv(want, socket.MSG_PEEK)  # blocks only while nothing has come
            if not data:
                return True  # closed: let the gRPC server answer it
            if len(data) < want:  # a peek may return what has arrived so far
                now = time.monotonic()
                if now > deadline:
                    return True
                if len(data) > len(_PREFACE) + 9:  # preface and a frame: a request is due
                    if settled is None or len(data) != seen:
                        settled, seen = now, len(data)
                    elif now - settled > headers_wait:
                        return True
                time.sleep(0.001)
                continue
            block = _first_header_block(data)
            if block is True:
                return True
            if isinstance(block, bytes):
                headers = hpack.Decoder().decode(block, raw=True)
                content_type = next((v for k, v in headers if k == b"content-type"), b"")
                return content_type.startswith(b"application/grpc")
            if block > _PEEK_LIMIT:
                return True
            want = block
    except (TimeoutError, OSError, hpack.HPACKError):
        return True


def _first_header_block(data: bytes) -> bytes | int | bool:
    """The first complete header block after the preface, or how many bytes are needed.

    True when the client's SETTINGS carry gRPC's own setting: a gRPC C-core client, which
    waits for the server's SETTINGS before it sends a request.
    """
    pos = len(_PREFACE)
    block = b""
    started = False
    while True:
        if len(data) < pos + 9:
            return pos + 9
        length = int.from_bytes(data[pos : pos + 3], "big")
        kind, flags = data[pos + 3], data[pos + 4]
        end = pos + 9 + length
        if len(data) < end:
            return end
        payload = data[pos + 9 : end]
        if kind == _SETTINGS and not flags & 0x1:
            ids = {int.from_bytes(payload[i : i + 2], "big") for i in range(0, len(payload), 6)}
            if _GRPC_SETTING in ids:
                return True
        if kind == _HEADERS and not started:
            started = True
            pad = payload[0] if flags & _PADDED else 0
            payload = payload[1:] if flags & _PADDED else payload
            payload = payload[5:] if flags & _PRIORITY else payload
            block += payload[: len(payload) - pad] if pad else payload
            if flags & _END_HEADERS:
                return block
        elif kind == _CONTINUATION and started:
            block += payload
            if flags & _END_HEADERS:
                return block
        pos = end


def serve_h2c(conn: socket.socket, adopt_http: Callable[[socket.socket], None]) -> None:
    """Serve an h2c connection's requests through the HTTP API (one at a time, in order)."""
    conn.settimeout(None)
    h2conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=False, header_encoding=None)
    )
    h2conn.initiate_connection()
    conn.sendall(h2conn.data_to_send())
    pending: dict[int, tuple[list[tuple[bytes, bytes]], bytearray]] = {}
    with contextlib.closing(conn):
        while True:
            data = conn.recv(65536)
            if not data:
                return
            try:
                events = h2conn.receive_data(data)
            except h2.exceptions.ProtocolError:
                conn.sendall(h2conn.data_to_send())
                return
            for event in events:
                if isinstance(event, h2.events.RequestReceived):
                    pending[event.stream_id] = (list(event.headers), bytearray())
                elif isinstance(event, h2.events.DataReceived):
                    if event.stream_id in pending:
                        pending[event.stream_id][1].extend(event.data)
                    h2conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded) and event.stream_id in pending:
                    headers, body = pending.pop(event.stream_id)
                    _answer(conn, h2conn, event.stream_id, headers, bytes(body), adopt_http)
                elif isinstance(event, h2.events.ConnectionTerminated):
                    conn.sendall(h2conn.data_to_send())
                    return
            conn.sendall(h2conn.data_to_send())


def _answer(
    conn: socket.socket,
    h2conn: h2.connection.H2Connection,
    stream_id: int,
    headers: list[tuple[bytes, bytes]],
    body: bytes,
    adopt_http: Callable[[socket.socket], None],
) -> None:
    """Forward one request to the HTTP API over a socket pair and stream the answer back."""
    pseudo = {k: v for k, v in headers if k.startswith(b":")}
    method = pseudo.get(b":method", b"GET").decode("latin-1")
    path = pseudo.get(b":path", b"/").decode("latin-1")
    outbound = {"Host": pseudo.get(b":authority", b"localhost").decode("latin-1")}
    for key, value in headers:
        if key.startswith(b":") or key in _HOP or key in (b"te", b"content-length", b"host"):
            continue
        name = key.decode("latin-1")
        text = value.decode("latin-1")
        outbound[name] = f"{outbound[name]}, {text}" if name in outbound else text
    outbound["Content-Length"] = str(len(body))
    outbound["Connection"] = "close"
    ours, theirs = socket.socketpair()
    adopt_http(theirs)
    client = http.client.HTTPConnection("localhost")
    client.sock = ours
    try:
        client.request(method, path, body=body, headers=outbound)
        response = client.getresponse()
        reply = [(b":status", str(response.status).encode())]
        reply += [
            (k.lower().encode("latin-1"), v.encode("latin-1"))
            for k, v in response.getheaders()
            if k.lower().encode("latin-1") not in _HOP and k.lower() != "content-length"
        ]
        h2conn.send_headers(stream_id, reply)
        conn.sendall(h2conn.data_to_send())
        while chunk := response.read(16384):
            _send_data(conn, h2conn, stream_id, chunk)
        h2conn.end_stream(stream_id)
    except (OSError, http.client.HTTPException):
        h2conn.reset_stream(stream_id, error_code=h2.errors.ErrorCodes.INTERNAL_ERROR)
    finally:
        client.close()
    conn.sendall(h2conn.data_to_send())


def _send_data(
    conn: socket.socket, h2conn: h2.connection.H2Connection, stream_id: int, chunk: bytes
) -> None:
    """Send ``chunk`` within the peer's flow-control windows, reading WINDOW_UPDATEs as needed."""
    view = memoryview(chunk)
    while view:
        window = min(h2conn.local_flow_control_window(stream_id), h2conn.max_outbound_frame_size)
        if window <= 0:
            data = conn.recv(65536)
            if not data:
                raise OSError("h2c client went away")
            h2conn.receive_data(data)  # WINDOW_UPDATE, SETTINGS, PING...
            conn.sendall(h2conn.data_to_send())
            continue
        h2conn.send_data(stream_id, bytes(view[:window]))
        conn.sendall(h2conn.data_to_send())
        view = view[window:]
