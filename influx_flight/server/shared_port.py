"""One port for Flight (gRPC) and HTTP, as InfluxDB 3 Core serves both on 8181.

Core looks at each request: HTTP/2 with a gRPC content type goes to the Flight service, the
rest to the HTTP router (``unified_service/service.rs``). A pyarrow Flight server owns its
listening socket, so the stand-in decides per connection instead, from the first bytes the
client sends: gRPC clients open plaintext HTTP/2 with the prior-knowledge preface
``PRI * HTTP/2.0``; HTTP/1.1 clients send a request line. HTTP connections are handed to the
aiohttp server's event loop as they are; gRPC connections are relayed to the Flight server on a
private loopback port by two kernel-side copy loops (``os.splice`` through a pipe, no Python
bytes on the path), so a DoGet stream keeps its speed.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
import threading
from collections.abc import Callable

from influx_flight.server.h2c import is_grpc, serve_h2c

__all__ = ["SharedPort"]

log = logging.getLogger(__name__)

_H2_PREFACE = b"PRI * HTTP/2.0"
#: How long a new connection may stay silent before it is treated as HTTP/1.1 and handed on.
_SNIFF_TIMEOUT = 10.0
_CHUNK = 1 << 20
_HAS_SPLICE = hasattr(os, "splice")
_F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


class SharedPort:
    """Accepts on ``host:port`` and routes each connection to gRPC or HTTP by its preface.

    ``grpc_address`` is where the Flight server listens (loopback); ``adopt_http(sock)`` takes
    an accepted HTTP connection (the aiohttp loop serves it).
    """

    def __init__(
        self,
        host: str,
        port: int,
        grpc_address: tuple[str, int],
        adopt_http: Callable[[socket.socket], None],
    ) -> None:
        self.host = host
        self.grpc_address = grpc_address
        self._adopt_http = adopt_http
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._listener = socket.socket(family, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._listener.bind((host, port))
        except OSError:
            self._listener.close()
            raise
        self._listener.listen(128)
        self.port: int = self._listener.getsockname()[1]
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._relayed: set[socket.socket] = set()
        self._thread = threading.Thread(target=self._accept_loop, name="shared-port", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"SharedPort({self.host}:{self.port} -> gRPC {self.grpc_address[1]} | HTTP)"

    # -- accepting ------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                conn, _addr = self._listener.accept()
            except OSError:
                if self._closed.is_set():
                    return
                continue
            threading.Thread(
                target=self._route, args=(conn,), name="shared-port-route", daemon=True
            ).start()

    def _route(self, conn: socket.socket) -> None:
        try:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            head = self._sniff(conn)
            if head.startswith(_H2_PREFACE):
                # Core routes HTTP/2 by content type: only gRPC goes to Flight (see h2c.py)
                if is_grpc(conn, _SNIFF_TIMEOUT):
                    self._relay(conn)
                else:
                    serve_h2c(conn, self._adopt_http)
            else:
                conn.settimeout(None)
                self._adopt_http(conn)
        except Exception:
            log.debug("shared port: dropping a connection", exc_info=True)
            with contextlib.suppress(OSError):
                conn.close()

    @staticmethod
    def _sniff(conn: socket.socket) -> bytes:
        """The first bytes the client sent (up to the HTTP/2 preface's length), not consumed."""
        conn.settimeout(_SNIFF_TIMEOUT)
        head = b""
        try:
            while len(head) < len(_H2_PREFACE):
                head = conn.recv(len(_H2_PREFACE), socket.MSG_PEEK)
                if not head:
                    break  # closed before saying anything
                if not _H2_PREFACE.startswith(head):
                    break  # not HTTP/2: HTTP/1.x
                if len(head) < len(_H2_PREFACE):
                    conn.settimeout(_SNIFF_TIMEOUT)
                    # wait for more without busy-looping: a blocking peek of the rest
                    more = conn.recv(len(_H2_PREFACE), socket.MSG_PEEK | socket.MSG_WAITALL)
                    head = more
        except TimeoutError:
            pass
        return head

    # -- relaying gRPC ----------------------------------------------------------------------

    def _relay(self, conn: socket.socket) -> None:
        conn.settimeout(None)
        upstream = socket.create_connection(self.grpc_address)
        upstream.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._lock:
            if self._closed.is_set():
                conn.close()
                upstream.close()
                return
            self._relayed.update((conn, upstream))
        done = threading.Event()
        pumps = [
            threading.Thread(
                target=self._pump, args=(a, b, done), name="shared-port-relay", daemon=True
            )
            for a, b in ((conn, upstream), (upstream, conn))
        ]
        for pump in pumps:
            pump.start()
        for pump in pumps:
            pump.join()
        with self._lock:
            self._relayed.discard(conn)
            self._relayed.discard(upstream)
        for sock in (conn, upstream):
            with contextlib.suppress(OSError):
                sock.close()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket, done: threading.Event) -> None:
        """Copy ``src`` to ``dst`` until EOF, then half-close ``dst``."""
        try:
            if _HAS_SPLICE:
                read_fd, write_fd = os.pipe()
                with contextlib.suppress(OSError):  # a bigger pipe moves more per call
                    fcntl.fcntl(write_fd, _F_SETPIPE_SZ, _CHUNK)
                try:
                    while True:
                        n = os.splice(src.fileno(), write_fd, _CHUNK)
                        if n == 0:
                            break
                        while n:
                            n -= os.splice(read_fd, dst.fileno(), n)
                finally:
                    os.close(read_fd)
                    os.close(write_fd)
            else:  # pragma: no cover - platforms without splice(2)
                while True:
                    data = src.recv(_CHUNK)
                    if not data:
                        break
                    dst.sendall(data)
        except OSError as exc:
            if exc.errno not in (errno.EBADF, errno.ECONNRESET, errno.EPIPE, errno.ENOTCONN):
                log.debug("shared port relay ended: %s", exc)
        finally:
            with contextlib.suppress(OSError):
                dst.shutdown(socket.SHUT_WR)
            if done.is_set():
                with contextlib.suppress(OSError):
                    src.shutdown(socket.SHUT_RDWR)
            done.set()

    # -- stopping ---------------------------------------------------------------------------

    def close(self) -> None:
        """Stop accepting and cut relayed connections (their servers stop on their own)."""
        self._closed.set()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self._listener.close()
        self._thread.join(timeout=5)
        with self._lock:
            relayed = list(self._relayed)
        for sock in relayed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
