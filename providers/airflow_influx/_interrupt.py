"""Blocking Flight work that Airflow's ``execution_timeout`` and SIGTERM can still stop.

Airflow enforces ``execution_timeout`` with SIGALRM and kills with SIGTERM; Python runs signal
handlers in the main thread, between bytecodes only, so a main thread blocked inside a gRPC read
would notice them only when the server's next message arrives (tens of seconds for a long
query). :func:`run_interruptibly` runs the work in a helper thread and keeps the main thread
waiting in short, interruptible slices: the signal's exception (``AirflowTaskTimeout``, the kill)
surfaces at once, the query is cancelled on the server through the client, and the exception
propagates as Airflow expects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: How long an interrupted task waits for the cancelled query's thread to finish.
CANCEL_GRACE_SECONDS = 3.0


def run_interruptibly(work: Callable[[], T], *, cancel: Callable[[], None]) -> T:
    """Run ``work()`` in a helper thread; on any interruption of the caller, ``cancel()`` it."""
    if threading.current_thread() is not threading.main_thread():
        return work()  # signals only reach the main thread: nothing to gain
    outcome: dict[str, object] = {}
    finished = threading.Event()

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the caller below
            outcome["error"] = exc
        finally:
            finished.set()

    thread = threading.Thread(target=target, name="influxdb3-query", daemon=True)
    thread.start()
    try:
        while not finished.wait(0.1):
            pass
    except BaseException:
        cancel()
        finished.wait(CANCEL_GRACE_SECONDS)
        raise
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
