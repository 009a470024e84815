"""RetryPolicy and call_with_retry: bounded backoff with full jitter, Retry-After, predicates."""

from __future__ import annotations

import pytest

from influx_flight import (
    NO_RETRY,
    AuthenticationError,
    ConfigurationError,
    QueryError,
    RetryPolicy,
    ServerUnavailableError,
    call_with_retry,
    is_transient,
)


class FakeClock:
    """A deterministic clock: sleeping advances it (no real waiting in tests)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def flaky(failures: list[BaseException], result: str = "ok"):
    calls = {"n": 0}

    def fn() -> str:
        calls["n"] += 1
        if failures:
            raise failures.pop(0)
        return result

    return fn, calls


def test_defaults() -> None:
    p = RetryPolicy()
    assert (p.max_attempts, p.initial_backoff, p.max_backoff, p.max_elapsed, p.jitter) == (
        4,
        0.2,
        10.0,
        60.0,
        True,
    )


def test_succeeds_after_transient_failures() -> None:
    clock = FakeClock()
    fn, calls = flaky([ServerUnavailableError("down"), ServerUnavailableError("down")])
    seen: list[tuple[int, float]] = []
    out = call_with_retry(
        fn,
        RetryPolicy(jitter=False),
        is_retryable=is_transient,
        on_retry=lambda attempt, exc, delay: seen.append((attempt, delay)),
        sleep=clock.sleep,
        clock=clock,
    )
    assert out == "ok"
    assert calls["n"] == 3
    assert seen == [(1, 0.2), (2, 0.4)]  # exponential
    assert clock.sleeps == [0.2, 0.4]


def test_bounded_by_attempts_and_reraises_last() -> None:
    clock = FakeClock()
    errors = [ServerUnavailableError(f"down {i}") for i in range(10)]
    fn, calls = flaky(list(errors))
    with pytest.raises(ServerUnavailableError, match="down 2"):
        call_with_retry(fn, RetryPolicy(max_attempts=3), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 3


def test_bounded_by_elapsed_time() -> None:
    clock = FakeClock()
    fn, calls = flaky([ServerUnavailableError("x") for _ in range(100)])
    policy = RetryPolicy(
        max_attempts=100, initial_backoff=1, max_backoff=4, max_elapsed=10, jitter=False
    )
    with pytest.raises(ServerUnavailableError):
        call_with_retry(fn, policy, sleep=clock.sleep, clock=clock)
    assert clock.now <= 10
    assert clock.sleeps == [1, 2, 4]  # the next (4) would end at 11 > 10
    assert calls["n"] == 4


def test_max_backoff_caps_each_wait() -> None:
    p = RetryPolicy(initial_backoff=1, max_backoff=3, jitter=False)
    assert [p.backoff(n) for n in range(1, 6)] == [1, 2, 3, 3, 3]


def test_full_jitter_stays_within_bounds() -> None:
    p = RetryPolicy(initial_backoff=1, max_backoff=8)
    for n in range(1, 8):
        values = [p.backoff(n) for _ in range(200)]
        ceiling = min(8, 2 ** (n - 1))
        assert all(0 <= v <= ceiling for v in values)
        assert max(values) - min(values) > ceiling * 0.3  # actually random


def test_honours_retry_after() -> None:
    clock = FakeClock()
    fn, _ = flaky([ServerUnavailableError("busy", retry_after=7.0)])
    call_with_retry(fn, RetryPolicy(jitter=False), sleep=clock.sleep, clock=clock)
    assert clock.sleeps == [7.0]


def test_custom_retry_after_extractor() -> None:
    clock = FakeClock()
    fn, _ = flaky([ServerUnavailableError("busy")])
    call_with_retry(
        fn, RetryPolicy(jitter=False), retry_after=lambda e: 3.0, sleep=clock.sleep, clock=clock
    )
    assert clock.sleeps == [3.0]


def test_retry_after_beyond_budget_gives_up() -> None:
    clock = FakeClock()
    fn, calls = flaky([ServerUnavailableError("busy", retry_after=120)])
    with pytest.raises(ServerUnavailableError):
        call_with_retry(fn, RetryPolicy(max_elapsed=60), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 1
    assert clock.sleeps == []


@pytest.mark.parametrize(
    "exc",
    [AuthenticationError("no"), QueryError("bad sql"), ValueError("bug"), KeyboardInterrupt()],
)
def test_non_retryable_errors_propagate_at_once(exc: BaseException) -> None:
    clock = FakeClock()
    fn, calls = flaky([exc])
    with pytest.raises(type(exc)):
        call_with_retry(fn, RetryPolicy(), sleep=clock.sleep, clock=clock)
    assert calls["n"] == 1


def test_custom_predicate() -> None:
    clock = FakeClock()
    fn, calls = flaky([OSError("reset"), OSError("reset")])
    assert (
        call_with_retry(
            fn,
            RetryPolicy(),
            is_retryable=lambda e: isinstance(e, OSError),
            sleep=clock.sleep,
            clock=clock,
        )
        == "ok"
    )
    assert calls["n"] == 3


def test_no_retry_policy() -> None:
    fn, calls = flaky([ServerUnavailableError("x")])
    with pytest.raises(ServerUnavailableError):
        call_with_retry(fn, NO_RETRY)
    assert calls["n"] == 1


def test_sleep_may_raise_to_cancel() -> None:
    class Stop(Exception):
        pass

    def sleep(_: float) -> None:
        raise Stop

    fn, calls = flaky([ServerUnavailableError("x")])
    with pytest.raises(Stop):
        call_with_retry(fn, RetryPolicy(), sleep=sleep)
    assert calls["n"] == 1


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_attempts": 0}, "max_attempts"),
        ({"max_attempts": 2.5}, "max_attempts"),
        ({"max_attempts": True}, "max_attempts"),
        ({"initial_backoff": -1}, "initial_backoff"),
        ({"max_backoff": float("nan")}, "max_backoff"),
        ({"max_elapsed": 0}, "max_elapsed"),
    ],
)
def test_invalid_policy(kwargs: dict, field: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        RetryPolicy(**kwargs)
    assert info.value.field == field
