"""Cancellation of one operation (a query or a write) and interruptible waiting.

Why: a thread blocked inside gRPC or a socket read does not see ``client.cancel()``, Airflow's
``execution_timeout`` (a signal) or a deadline until the server sends something. So blocking
calls run on a helper thread and the calling thread waits in short, interruptible steps that
check the operation's cancel flag and deadline; cancelling also fires the hooks that stop the
work underneath (the Flight call's ``cancel()``, the HTTP sockets' shutdown).
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Final

__all__ = ["POLL_SECONDS", "Operation", "Pump"]

#: How often a waiting thread re-checks cancel flag and deadline (and lets signals in).
POLL_SECONDS: Final = 0.05


class Operation:
    """One operation's cancel flag, deadline and cancel hooks; shared by its retries."""

    def __init__(self, timeout: float | None = None) -> None:
        self.cancelled = threading.Event()
        self.deadline = None if timeout is None else time.monotonic() + timeout
        self.timeout = timeout
        self._lock = threading.Lock()
        self._hooks: list[Callable[[], Any]] = []

    def on_cancel(self, hook: Callable[[], Any]) -> None:
        """Call ``hook`` on cancel (at once if already cancelled)."""
        with self._lock:
            if not self.cancelled.is_set():
                self._hooks.append(hook)
                return
        with contextlib.suppress(Exception):
            hook()

    def cancel(self) -> None:
        """Set the flag and fire the hooks (safe from any thread, idempotent)."""
        with self._lock:
            self.cancelled.set()
            hooks, self._hooks = self._hooks, []
        for hook in hooks:
            with contextlib.suppress(Exception):
                hook()

    def remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def sleep(self, seconds: float) -> bool:
        """Wait ``seconds``; True if cancelled meanwhile."""
        return self.cancelled.wait(seconds)


_END = object()


class Pump:
    """Runs ``open_stream()`` and then ``read()`` in a daemon thread, handing results to the
    consumer through a small queue, so that the consumer's waits can be interrupted.

    ``open_stream`` returns an object with ``schema``, ``read_next()`` (raising StopIteration
    at the end) and ``cancel()``. The queue holds at most ``depth`` batches: memory stays
    bounded and the next batch is fetched while the consumer works on the current one.
    """

    def __init__(self, open_stream: Callable[[], Any], depth: int = 1) -> None:
        self._queue: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth + 1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.stream: Any = None
        self._thread = threading.Thread(
            target=self._work, args=(open_stream,), name="influx-flight-read", daemon=True
        )
        self._thread.start()

    def _put(self, item: tuple[str, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, open_stream: Callable[[], Any]) -> None:
        stream = None
        try:
            stream = open_stream()
            with self._lock:
                self.stream = stream
                stopped = self._stop.is_set()
            if stopped:
                with contextlib.suppress(Exception):
                    stream.cancel()
                return
            if not self._put(("schema", stream.schema)):
                return
            while not self._stop.is_set():
                try:
                    batch = stream.read_next()
                except StopIteration:
                    self._put(("end", None))
                    return
                if not self._put(("batch", batch)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            self._put(("error", exc))
        finally:
            if stream is not None:  # the reading thread owns the stream: it closes it
                with contextlib.suppress(Exception):
                    stream.close()

    def get(self, op: Operation, on_cancel: Callable[[], BaseException]) -> tuple[str, Any]:
        """The next item: ``("schema", s)``, ``("batch", b)`` or ``("end", None)``; a pumped
        exception is raised. Raises ``on_cancel()`` when the operation is cancelled and
        ``TimeoutError`` when its deadline passes."""
        while True:
            if op.cancelled.is_set():
                self.stop()
                raise on_cancel()
            remaining = op.remaining()
            if remaining is not None and remaining <= 0:
                self.stop()
                raise TimeoutError
            wait = POLL_SECONDS if remaining is None else min(POLL_SECONDS, remaining)
            try:
                kind, value = self._queue.get(timeout=wait)
            except queue.Empty:
                continue
            if kind == "error":
                raise value
            return kind, value

    def stop(self) -> None:
        """Stop pumping and cancel the underlying call (the thread ends when it returns)."""
        with self._lock:
            self._stop.set()
            stream = self.stream
        if stream is not None:
            with contextlib.suppress(Exception):
                stream.cancel()
