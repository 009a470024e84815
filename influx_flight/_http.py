"""The client's HTTP transport: one urllib3 pool for writes and table management, abortable.

Why: a pool per call pays a TCP (and TLS) handshake per write and per downsample window, and a
request blocked on a slow server cannot be stopped by ``cancel()``. This transport is created
once per client (lazily), shared by every call, and remembers its sockets so that ``abort()``
(``client.cancel()`` / ``close()``) can shut them down: a thread blocked sending or waiting for
an answer wakes at once with an error instead of sitting out the write timeout.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._exceptions import ServerUnavailableError, TransportError

if TYPE_CHECKING:
    import urllib3

    from ._config import InfluxDB3Config

__all__ = ["HttpResponse", "HttpTransport"]

#: Connections kept per host; more concurrent requests wait for a free one.
DEFAULT_POOL_SIZE = 16


@dataclass(frozen=True)
class HttpResponse:
    """A complete answer (status, body, headers)."""

    status: int
    data: bytes
    headers: dict[str, str]


class HttpTransport:
    """One urllib3 ``PoolManager`` (built on first use, or injected) plus socket tracking.

    Args:
        config: TLS settings (verify_tls, ca_cert) come from here.
        pool: An existing ``urllib3.PoolManager`` to use instead (tests, proxies). Its sockets
            are not tracked, so ``abort()`` cannot interrupt its requests; callers still stop
            waiting for them.
        maxsize: Connections kept per host.
    """

    def __init__(
        self,
        config: InfluxDB3Config,
        *,
        pool: urllib3.PoolManager | None = None,
        maxsize: int = DEFAULT_POOL_SIZE,
    ) -> None:
        self.config = config
        self._pool = pool
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._sockets: weakref.WeakSet[Any] = weakref.WeakSet()
        self._closed = False

    def _manager(self) -> urllib3.PoolManager:
        with self._lock:
            if self._closed:
                raise TransportError(
                    "This client's HTTP transport is closed; create a new client.",
                    host=self.config.host,
                )
            if self._pool is None:
                self._pool = self._build()
            return self._pool

    def _build(self) -> urllib3.PoolManager:
        import urllib3
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        tracked = self._sockets

        class TrackedHTTPConnection(HTTPConnection):
            def connect(self) -> None:
                super().connect()
                tracked.add(self)

        class TrackedHTTPSConnection(HTTPSConnection):
            def connect(self) -> None:
                super().connect()
                tracked.add(self)

        class _Pool(HTTPConnectionPool):
            ConnectionCls = TrackedHTTPConnection

        class _TlsPool(HTTPSConnectionPool):
            ConnectionCls = TrackedHTTPSConnection

        cfg = self.config
        kwargs: dict[str, Any] = {
            "num_pools": 4,
            "maxsize": self._maxsize,
            "block": True,
            "retries": False,
        }
        if cfg.write_base_url.startswith("https"):
            kwargs["cert_reqs"] = "CERT_REQUIRED" if cfg.verify_tls else "CERT_NONE"
            pem = cfg.ca_cert_pem()
            if pem is not None:
                kwargs["ca_cert_data"] = pem.decode("ascii")
        manager = urllib3.PoolManager(**kwargs)
        manager.pool_classes_by_scheme = {"http": _Pool, "https": _TlsPool}
        return manager

    @property
    def created(self) -> bool:
        """Whether a pool exists (it is created on the first request)."""
        return self._pool is not None

    def request(
        self,
        method: str,
        url: str,
        *,
        body: bytes | memoryview | None = None,
        headers: dict[str, str] | None = None,
        timeout: float | None = None,
        database: str | None = None,
        action: str = "reach",
    ) -> HttpResponse:
        """Send one request (no retries here) and read the whole answer; ``action`` words the
        error ("cannot write to <url>").

        Raises ServerUnavailableError when the server cannot be reached (retryable),
        TransportError for TLS failures.
        """
        import urllib3

        cfg = self.config
        t = urllib3.Timeout(connect=min(timeout, 10.0), read=timeout) if timeout else None
        try:
            resp = self._manager().request(
                method,
                url,
                body=body,
                headers=headers,
                retries=False,
                timeout=t if t is not None else urllib3.Timeout(),
            )
        except urllib3.exceptions.SSLError as exc:
            raise TransportError(
                f"TLS handshake with {cfg.scrub(url)} failed: {cfg.scrub(str(exc))}. Check "
                "verify_tls and ca_cert (a CA bundle that signed the server certificate).",
                host=cfg.host,
                database=database,
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ServerUnavailableError(
                f"cannot {action} {cfg.scrub(url)}: {cfg.scrub(str(reason))}. Check that the "
                "server is running and the write URL (write_url / INFLUXDB3_WRITE_URL) is right; "
                "transient failures are retried.",
                host=cfg.host,
                database=database,
            ) from None
        return HttpResponse(resp.status, resp.data, dict(resp.headers))

    def abort(self) -> None:
        """Shut down every socket of the pool: blocked requests fail at once (idle
        connections are re-opened on the next request)."""
        for conn in list(self._sockets):
            sock = getattr(conn, "sock", None)
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        """Abort in-flight requests and release the pool. Idempotent."""
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        self.abort()
        if pool is not None:
            with contextlib.suppress(Exception):
                pool.clear()
