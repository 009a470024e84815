"""Retries for transient failures: exponential backoff with full jitter, bounded twice.

One policy object for queries and writes. A call is retried only when ``is_retryable`` says so
(by default: ``ServerUnavailableError``); authentication, query and write-content errors are
never retried. The wait honours the server's ``Retry-After`` and the whole loop is bounded by
``max_attempts`` *and* ``max_elapsed`` seconds.

Examples:
    policy = RetryPolicy(max_attempts=5, initial_backoff=0.5)
    table = call_with_retry(lambda: run_query(), policy, is_retryable=is_transient)
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from ._exceptions import ConfigurationError, InfluxDB3Error

__all__ = ["DEFAULT_RETRY_POLICY", "NO_RETRY", "RetryPolicy", "call_with_retry", "is_transient"]

T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class RetryPolicy:
    """How often and how long to retry a transient failure.

    Args:
        max_attempts: Total attempts including the first (1 = no retry).
        initial_backoff: Upper bound of the first wait in seconds; doubles each attempt.
        max_backoff: Cap of a single computed wait in seconds.
        max_elapsed: Give up when the next wait would end later than this many seconds after
            the first attempt started (None = bounded by attempts only).
        jitter: Full jitter (a uniform wait in [0, backoff]) so that many workers retrying at
            once spread out; False waits exactly the backoff.
    """

    max_attempts: int = 4
    initial_backoff: float = 0.2
    max_backoff: float = 10.0
    max_elapsed: float | None = 60.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise ConfigurationError(
                f"max_attempts: expected an integer >= 1 (1 disables retries), got "
                f"{self.max_attempts!r}",
                field="max_attempts",
            )
        for name in ("initial_backoff", "max_backoff"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
                or value < 0
            ):
                raise ConfigurationError(
                    f"{name}: expected a number of seconds >= 0, got {value!r}", field=name
                )
        if self.max_elapsed is not None and (
            isinstance(self.max_elapsed, bool)
            or not isinstance(self.max_elapsed, int | float)
            or not self.max_elapsed > 0
        ):
            raise ConfigurationError(
                f"max_elapsed: expected a positive number of seconds or None, got "
                f"{self.max_elapsed!r}",
                field="max_elapsed",
            )

    def backoff(self, retry_number: int, rng: Callable[[], float] = random.random) -> float:
        """The wait before retry ``retry_number`` (1-based), before Retry-After is applied."""
        ceiling = min(self.max_backoff, self.initial_backoff * (2 ** (retry_number - 1)))
        return ceiling * rng() if self.jitter else ceiling


#: The default for queries and writes.
DEFAULT_RETRY_POLICY = RetryPolicy()
#: A policy that never retries.
NO_RETRY = RetryPolicy(max_attempts=1)


def is_transient(exc: BaseException) -> bool:
    """Default retry predicate: only errors marked retryable (ServerUnavailableError)."""
    return isinstance(exc, InfluxDB3Error) and exc.retryable


def _retry_after_attr(exc: BaseException) -> float | None:
    value = getattr(exc, "retry_after", None)
    return float(value) if isinstance(value, int | float) and value >= 0 else None


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy = DEFAULT_RETRY_POLICY,
    *,
    is_retryable: Callable[[BaseException], bool] = is_transient,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    retry_after: Callable[[BaseException], float | None] | None = _retry_after_attr,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> T:
    """Call ``fn()`` until it succeeds, a failure is not retryable, or the policy is exhausted.

    Args:
        fn: The operation; it must be safe to repeat (callers restart streams from scratch).
        policy: Attempts and waits.
        is_retryable: Decides per exception; non-retryable ones propagate at once.
        on_retry: Called as ``on_retry(attempt_that_failed, exc, delay)`` before each wait
            (logging, metrics, resetting a sink).
        retry_after: Extracts a server-requested wait (seconds) from an exception; the wait is
            at least that long. Default: the exception's ``retry_after`` attribute.
        sleep: Waits; a caller may pass an interruptible wait (cancellation raises from it).
        clock: Monotonic clock, for ``max_elapsed``.

    Returns:
        ``fn()``'s result. On exhaustion the last exception propagates unchanged.
    """
    started = clock()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except BaseException as exc:
            if not isinstance(exc, Exception) or not is_retryable(exc):
                raise
            if attempt >= policy.max_attempts:
                raise
            delay = policy.backoff(attempt)
            requested = retry_after(exc) if retry_after is not None else None
            if requested is not None:
                delay = max(delay, requested)
            if policy.max_elapsed is not None and clock() - started + delay > policy.max_elapsed:
                raise
            if on_retry is not None:
                on_retry(attempt, exc, delay)
            if delay > 0:
                sleep(delay)


RetryPolicy.__module__ = "influx_flight"
