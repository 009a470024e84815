"""One-off writes through a client with a given retry policy, shared by the writer tests."""

from __future__ import annotations

from typing import Any

from influx_flight import (
    DEFAULT_RETRY_POLICY,
    InfluxDB3Client,
    InfluxDB3Config,
    RetryPolicy,
    WriteResult,
)


def write_arrow(
    config: InfluxDB3Config, data: Any, *, retry: RetryPolicy = DEFAULT_RETRY_POLICY, **kwargs: Any
) -> WriteResult:
    """``client.write`` through a one-off client with ``retry`` as its policy."""
    with InfluxDB3Client(config, retry_policy=retry) as client:
        return client.write(data, **kwargs)


def write_line_protocol(
    config: InfluxDB3Config, lines: Any, *, retry: RetryPolicy = DEFAULT_RETRY_POLICY, **kwargs: Any
) -> WriteResult:
    """``client.write_lp`` through a one-off client with ``retry`` as its policy."""
    with InfluxDB3Client(config, retry_policy=retry) as client:
        return client.write_lp(lines, **kwargs)
