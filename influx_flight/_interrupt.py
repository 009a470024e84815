"""Blocking Flight work that signals can still stop (Ctrl-C, Airflow's timeout and kill).

Python runs signal handlers in the main thread, between bytecodes only, so a main thread blocked
inside a gRPC read would notice SIGINT (the CLI's Ctrl-C), SIGALRM (Airflow's
``execution_timeout``) or SIGTERM (a kill) only when the server's next message arrives (tens of
seconds for a long query). :func:`run_interruptibly` runs the work in a helper thread and keeps the main thread
waiting in short, interruptible slices: the signal's exception (``AirflowTaskTimeout``, the kill)
surfaces at once, the query is cancelled on the server through the client, and the exception
propagates as Airflow expects.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

__all__ = ["CANCEL_GRACE_SECONDS", "run_interruptibly"]

#: How long an interrupted caller waits, by default, for the cancelled work's thread to finish.
CANCEL_GRACE_SECONDS = 3.0


def run_interruptibly(
    work: Callable[[], T],
    *,
    cancel: Callable[[], None],
    grace: float = CANCEL_GRACE_SECONDS,
) -> T:
    """Run ``work()`` in a helper thread; on any interruption of the caller, ``cancel()`` it,
    wait up to ``grace`` seconds for the work to unwind, and re-raise the interruption."""
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
        finished.wait(grace)
        raise
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["value"]  # type: ignore[return-value]
