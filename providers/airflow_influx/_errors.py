"""How core errors surface in Airflow tasks: only transient failures are worth a task retry."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def fail_fast_on_permanent_errors() -> Iterator[None]:
    """Turn non-retryable ``InfluxDB3Error`` (bad token, bad query, unknown database, result too
    large, ...) into ``AirflowFailException`` so the task fails at once instead of spending its
    retries; transient errors (server unavailable, timeouts) propagate and are retried.
    """
    from influx_flight import InfluxDB3Error

    try:
        yield
    except InfluxDB3Error as exc:
        if exc.retryable:
            raise
        from airflow.providers.common.compat.sdk import AirflowFailException

        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from exc
