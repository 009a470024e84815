"""Shared helpers of the Dagster tests (a unique module name: conftest modules would clash)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

TOKEN_ENV = "INFLUXDB3_AUTH_TOKEN"
T0 = datetime(2026, 1, 1, tzinfo=UTC)
HOSTS = ("alpha", "beta")
STEP_S = 60


def raw_cpu_lines(hours: int = 4, start: datetime = T0) -> str:
    """Deterministic raw points: one per host per minute; usage depends on host and minute."""
    lines = []
    t0 = int(start.timestamp())
    for minute in range(hours * 60):
        ts = (t0 + minute * STEP_S) * 1_000_000_000
        for h, host in enumerate(HOSTS):
            usage = float((minute * 7 + h * 13) % 100)
            lines.append(f"cpu,host={host},region=eu usage={usage},load={minute % 5}i {ts}")
    return "\n".join(lines)


def hour(n: int) -> datetime:
    return T0 + timedelta(hours=n)
