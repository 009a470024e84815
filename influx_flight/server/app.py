"""StandInServer: the engine, the write pipeline, the Flight service and the HTTP API in one object.

Every module a request may need is imported here, in the thread that builds the server, never
lazily in a request thread: under pytest our modules are assertion-rewritten on import, and
CPython 3.11 can fail ("AST constructor recursion depth mismatch") when two threads do that at
once.
"""

from __future__ import annotations

import errno
import logging
import threading
from collections.abc import Iterable
from types import TracebackType
from typing import Any

from influx_flight.server.auth import Authenticator, generate_token
from influx_flight.server.engine import Engine
from influx_flight.server.errors import WriteRejected
from influx_flight.server.flight import InfluxFlightServer
from influx_flight.server.http_api import HttpServer
from influx_flight.server.limits import Limits
from influx_flight.server.shared_port import SharedPort
from influx_flight.server.writes import WritePipeline

log = logging.getLogger(__name__)


class StandInServer:
    """A local InfluxDB 3 stand-in: Flight (gRPC) and HTTP on one port, as Core serves them.

    ``port`` (0 picks a free one) answers both protocols (see ``shared_port.py``); passing
    ``http_port`` splits them, HTTP then listening on its own port. Use as a context manager or
    call :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        tokens: Iterable[str] | None = None,
        without_auth: bool = False,
        data_dir: str | None = None,
        wal_flush_interval: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        http_port: int | None = None,
        limits: Limits | None = None,
        query_file_limit: int | None = None,
    ) -> None:
        token_list = [t for t in (tokens or ()) if t]
        if tokens is not None and not token_list and not without_auth:
            raise ValueError("tokens must hold at least one non-empty token (or pass None)")
        self._tokens = token_list or [generate_token()]
        self.without_auth = without_auth
        self.data_dir = data_dir
        self.wal_flush_interval = wal_flush_interval
        self.host = host
        self._port = port
        self._http_port = http_port
        self.authenticator = Authenticator(self._tokens, without_auth=without_auth)
        self.limits = limits or Limits()
        # Core's --query-file-limit (432 files per table scan; 0 turns it off)
        file_limit = {} if query_file_limit is None else {"query_file_limit": query_file_limit}
        self.engine = Engine(self.limits, **file_limit)
        self._flight: InfluxFlightServer | None = None
        self._pipeline: Any = None
        self._http: Any = None
        self._bound_http_port: int | None = None
        self._shared: Any = None  # the SharedPort when Flight and HTTP share ``port``
        self._lock = threading.Lock()
        #: True when a stop() left Flight calls running (a slow client): exit the process.
        self.abandoned_calls = False

    def __repr__(self) -> str:
        state = "running" if self._flight is not None else "stopped"
        return f"StandInServer({state}, flight_uri={self.flight_uri!r}, http_url={self.http_url!r})"

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> StandInServer:
        """Start the write pipeline, the Flight server and the HTTP server (idempotent)."""
        with self._lock:
            if self._flight is not None:
                return self
            self.engine.stopping.clear()
            try:
                self._pipeline = WritePipeline(
                    self.engine, data_dir=self.data_dir, wal_flush_interval=self.wal_flush_interval
                )
                shared = self._http_port is None
                # shared: Flight listens on a private loopback port behind the shared one
                self._flight = self._start_flight(
                    "127.0.0.1" if shared else self.host, 0 if shared else self._port
                )
                self._http = HttpServer(
                    self.engine,
                    self._pipeline,
                    self.authenticator,
                    self.host,
                    None if shared else self._http_port,
                )
                bound = self._http.start()
                self._bound_http_port = None if bound is None else int(bound)
                if shared:
                    try:
                        self._shared = SharedPort(
                            self.host,
                            self._port,
                            ("127.0.0.1", self._flight.port),
                            self._http.adopt,
                        )
                    except OSError as exc:
                        raise OSError(
                            exc.errno,
                            f"the stand-in could not listen on {self.host}:{self._port}"
                            f" ({exc.strerror}); is the port in use? Pass port=0 to pick a free"
                            " one",
                        ) from None
                    self._bound_http_port = self._shared.port
            except BaseException:
                self._stop_locked()
                raise
        return self

    def _start_flight(self, host: str, port: int) -> InfluxFlightServer:
        import pyarrow as pa

        try:
            return InfluxFlightServer(self.engine, self.authenticator, f"grpc+tcp://{host}:{port}")
        except pa.ArrowException as exc:
            # gRPC only says "Server did not start properly"; almost always a busy port.
            raise OSError(
                errno.EADDRINUSE,
                f"the Flight server could not listen on {host}:{port} ({exc}); is the"
                " port in use? Pass port=0 to pick a free one",
            ) from None

    def stop(self) -> None:
        """Stop HTTP, then Flight, then flush and close the write pipeline."""
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if self._shared is not None:
            try:
                self._shared.close()
            except Exception:
                log.exception("closing the shared port failed")
            self._shared = None
        # Running queries stop at their next cancellation check (~0.1 s), so neither server
        # waits for a long query to finish.
        self.engine.stopping.set()
        if self._http is not None:
            try:
                self._http.stop()
            except Exception:
                log.exception("stopping the HTTP server failed")
            self._http = None
            self._bound_http_port = None
        if self._flight is not None:
            # gRPC's shutdown waits for every running call, and a client that reads slowly
            # keeps one blocked in a write forever: wait a grace period, then go on.
            flight = self._flight
            stopper = threading.Thread(
                target=_shutdown_flight, args=(flight,), name="flight-shutdown", daemon=True
            )
            stopper.start()
            stopper.join(_SHUTDOWN_GRACE)
            if stopper.is_alive():
                log.warning(
                    "Flight calls still running %.0f s after shutdown began: not waiting for them",
                    _SHUTDOWN_GRACE,
                )
                self.abandoned_calls = True
            self._flight = None
        if self._pipeline is not None:
            try:
                self._pipeline.close()
            except Exception:
                log.exception("closing the write pipeline failed")
            self._pipeline = None

    def __enter__(self) -> StandInServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses ------------------------------------------------------------------------

    @property
    def flight_port(self) -> int | None:
        """The port gRPC clients use (the shared port unless HTTP was split off)."""
        if self._shared is not None:
            return int(self._shared.port)
        return self._flight.port if self._flight is not None else None

    @property
    def shared_port(self) -> bool:
        """True when Flight and HTTP answer on the same port (the default, as Core)."""
        return self._http_port is None

    @property
    def flight_uri(self) -> str | None:
        """``grpc+tcp://host:port`` of the Flight service (None when stopped)."""
        port = self.flight_port
        return f"grpc+tcp://{self.host}:{port}" if port is not None else None

    @property
    def http_port(self) -> int | None:
        return self._bound_http_port

    @property
    def http_url(self) -> str | None:
        """``http://host:port`` of the HTTP API (None when stopped or not available)."""
        port = self._bound_http_port
        return f"http://{self.host}:{port}" if port is not None else None

    @property
    def token(self) -> str:
        """The first accepted token (generated ``apiv3_...`` when none was given)."""
        return self._tokens[0]

    @property
    def pipeline(self) -> Any:
        """The write pipeline, or None while the server is stopped."""
        return self._pipeline

    # -- writes ---------------------------------------------------------------------------

    def write_lp(self, database: str, text: str | bytes, precision: str = "ns") -> int:
        """Write line protocol through the same pipeline as HTTP writes; returns lines written.

        Waits for the write to be acknowledged (WAL flush). Any rejected line raises
        :class:`WriteRejected` naming the line (the valid lines are still written, as a
        partial write on the real server).
        """
        if self._pipeline is None:
            raise RuntimeError(
                "write_lp needs a started server: start() it first (or append Arrow batches"
                " with engine.append())"
            )
        body = text.encode("utf-8") if isinstance(text, str) else text
        outcome = self._pipeline.submit(
            database, body, precision=precision, accept_partial=True
        ).result()
        errors = list(outcome.errors)
        if errors:
            first = errors[0]
            raise WriteRejected(
                f"{len(errors)} line(s) rejected, {outcome.lines_written} written; first at line"
                f" {first.line_number}: {first.error_message}"
            )
        return int(outcome.lines_written)


_SHUTDOWN_GRACE = 3.0


def _shutdown_flight(flight: InfluxFlightServer) -> None:
    try:
        flight.shutdown()
    except Exception:
        log.exception("stopping the Flight server failed")


__all__ = ["StandInServer"]
