"""Defaults and per-call options, in one place (standard library only: cheap to import).

Why: a default repeated in several signatures drifts (the Parquet row-group size once differed
between ``write_parquet`` and ``to_parquet``). Every default lives here once; signatures refer to
these constants, and per-call arguments default to ``USE_CLIENT_DEFAULT`` so that a client's own
settings (``WriteOptions``, ``config.query_timeout``) apply unless the call says otherwise. The
merge happens in one function, :meth:`WriteOptions.merge`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Any, Final, Literal, TypedDict

from ._exceptions import ConfigurationError

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_COMPRESSION",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_ENCODE_QUEUE",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_RECEIVE_WINDOW",
    "DEFAULT_ROW_GROUP_SIZE",
    "SERVER_MAX_BODY_BYTES",
    "USE_CLIENT_DEFAULT",
    "UseClientDefault",
    "WriteOptions",
    "WriteOverrides",
]

#: Rows per Parquet row group, whatever the server's batch size. pyarrow buffers a whole row
#: group before writing it, so this bounds an export's memory (about 13 MiB of sensor rows).
DEFAULT_ROW_GROUP_SIZE: Final = 262_144
#: Row groups handed to the encoder thread and not yet written. 1 is double buffering: one row
#: group is encoded while the next is received, so memory stays at about 2 row groups per
#: export (measured no slower than deeper queues: the encoder is the slower side).
DEFAULT_ENCODE_QUEUE: Final = 1
#: Bytes of a query's result that gRPC may receive ahead of the reader (the HTTP/2 stream
#: window). gRPC's adaptive window (BDP probing) grows without a fixed bound when the reader is
#: slower than the network, as an export that encodes Parquet is: measured on loopback, 90-160
#: MiB buffered by a 10M-row stream that was merely drained. A fixed window bounds it; a stream
#: then moves at most ``window / round-trip time`` (4 MiB at 50 ms: ~80 MB/s).
DEFAULT_RECEIVE_WINDOW: Final = 4 * 1024 * 1024
#: Parquet compression codec of exports.
DEFAULT_COMPRESSION: Final = "zstd"
#: Rows encoded to line protocol per step: bounds memory, keeps offsets far from 2 GiB.
DEFAULT_BATCH_ROWS: Final = 65_536
#: InfluxDB 3's default ``--max-http-request-size`` (also enforced after gzip is undone).
SERVER_MAX_BODY_BYTES: Final = 10 * 1024 * 1024
#: Write request body size: under the server limit with room for a line that straddles it.
DEFAULT_MAX_BODY_BYTES: Final = 8 * 1024 * 1024
#: Concurrent write requests (InfluxDB 3 acknowledges a write when its WAL flush is durable,
#: about 1 s on Core, so one request at a time crawls).
DEFAULT_CONCURRENCY: Final = 4
#: Row guard of ``QueryResult.to_records`` (results meant for XCom should be small).
DEFAULT_MAX_RECORDS: Final = 10_000


class UseClientDefault:
    """Sentinel for "not passed": the client's setting applies.

    ``timeout=USE_CLIENT_DEFAULT`` (the default) means the client's timeout; ``timeout=None``
    means no timeout for this call. Modelled on httpx's ``USE_CLIENT_DEFAULT``.
    """

    _instance: UseClientDefault | None = None

    def __new__(cls) -> UseClientDefault:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "USE_CLIENT_DEFAULT"

    def __reduce__(self) -> str:
        return "USE_CLIENT_DEFAULT"


USE_CLIENT_DEFAULT: Final = UseClientDefault()


def _positive_int(name: str, value: Any, low: int = 1, high: int | None = None) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < low
        or (high is not None and value > high)
    ):
        bound = f"between {low} and {high}" if high is not None else f">= {low}"
        raise ConfigurationError(f"{name}: expected an integer {bound}, got {value!r}", field=name)


@dataclass(frozen=True, kw_only=True)
class WriteOptions:
    """How a client writes line protocol; frozen, set once on the client.

    Args:
        precision: Timestamp precision of the written lines (ns, us, ms, s).
        batch_rows: Rows encoded per step.
        max_body_bytes: Largest request body (the server refuses more than 10 MiB, also after
            gzip is undone).
        gzip: Compress request bodies.
        concurrency: Requests in flight at once.
        no_sync: Acknowledge before the WAL is flushed (v3 only; faster, may lose the last
            second on a crash).
        accept_partial: Store the valid lines of a request that has invalid ones (v3).
        endpoint: ``"v3"`` (``/api/v3/write_lp``) or ``"v2"`` (``/api/v2/write``).
        timeout: Seconds one request may take; ``USE_CLIENT_DEFAULT`` takes
            ``config.write_timeout``, None waits forever.

    Examples:
        client = InfluxDB3Client(config, write_options=WriteOptions(no_sync=True))
        client.write(table, measurement="cpu", concurrency=8)   # one call overrides one option
    """

    precision: str = "ns"
    batch_rows: int = DEFAULT_BATCH_ROWS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    gzip: bool = True
    concurrency: int = DEFAULT_CONCURRENCY
    no_sync: bool = False
    accept_partial: bool = True
    endpoint: Literal["v3", "v2"] = "v3"
    timeout: float | UseClientDefault | None = USE_CLIENT_DEFAULT

    def __post_init__(self) -> None:
        from .time import normalize_precision

        object.__setattr__(self, "precision", normalize_precision(self.precision))
        _positive_int("batch_rows", self.batch_rows)
        _positive_int("max_body_bytes", self.max_body_bytes, 1024, SERVER_MAX_BODY_BYTES)
        _positive_int("concurrency", self.concurrency)
        for name in ("gzip", "no_sync", "accept_partial"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigurationError(
                    f"{name}: expected True or False, got {getattr(self, name)!r}", field=name
                )
        if self.endpoint not in ("v3", "v2"):
            raise ConfigurationError(
                f"endpoint: expected 'v3' (/api/v3/write_lp) or 'v2' (/api/v2/write), got "
                f"{self.endpoint!r}",
                field="endpoint",
            )
        if self.endpoint == "v2" and self.no_sync:
            raise ConfigurationError(
                "no_sync is only available on the v3 endpoint (/api/v3/write_lp); use "
                "endpoint='v3'",
                field="no_sync",
            )
        t = self.timeout
        if not isinstance(t, UseClientDefault) and t is not None:
            if (
                isinstance(t, bool)
                or not isinstance(t, int | float)
                or not math.isfinite(t)
                or t <= 0
            ):
                raise ConfigurationError(
                    f"timeout: expected a positive number of seconds, None or "
                    f"USE_CLIENT_DEFAULT, got {t!r}",
                    field="timeout",
                )
            object.__setattr__(self, "timeout", float(t))

    def merge(self, **overrides: Any) -> WriteOptions:
        """These options with the given per-call values; ``USE_CLIENT_DEFAULT`` values are
        ignored. The one place where call arguments meet client settings."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ConfigurationError(
                f"unknown write option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
                field=unknown[0],
            )
        given = {k: v for k, v in overrides.items() if not isinstance(v, UseClientDefault)}
        return replace(self, **given) if given else self

    def resolved_timeout(self, config_timeout: float | None) -> float | None:
        """The request timeout: this option's, else the config's ``write_timeout``."""
        return config_timeout if isinstance(self.timeout, UseClientDefault) else self.timeout


WriteOptions.__module__ = "influx_flight"
UseClientDefault.__module__ = "influx_flight"


class WriteOverrides(TypedDict, total=False):
    """Per-call write options (``client.write(..., concurrency=8)``); see ``WriteOptions``."""

    precision: str
    batch_rows: int
    max_body_bytes: int
    gzip: bool
    concurrency: int
    no_sync: bool
    accept_partial: bool
    endpoint: Literal["v3", "v2"]
    timeout: float | UseClientDefault | None
