"""HTTP line-protocol writer: bodies under the size limit, gzip, concurrent requests, retries,
and partial-write errors mapped back to input rows.

Why: InfluxDB 3 takes writes only over HTTP line protocol, rejects bodies over 10 MiB (after
decompression too), and acknowledges a request only when its WAL flush is durable (about 1 s on
Core), so one-request-at-a-time writers crawl. Here the input is encoded in slices, cut into
bodies of at most ``max_body_bytes``, gzipped and sent by ``concurrency`` threads; transient
failures (429, 5xx, refused connections) are retried per ``RetryPolicy`` honouring
``Retry-After`` (safe because every point carries an explicit timestamp); 4xx answers are never
retried. When the server rejects lines, :class:`WriteError` is raised after every request is
done, naming each rejected line's input row, and saying the other lines were written.

Examples:
    result = write_arrow(config, table, measurement="home", tags=["room"])
    result = write_line_protocol(config, "cpu,host=a usage=1 1700000000000000000\\n")
"""

from __future__ import annotations

import gzip as _gzip
import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from influx_flight import __version__
from influx_flight._errors import error_from_http
from influx_flight._exceptions import (
    ConfigurationError,
    InfluxDB3Error,
    RejectedLine,
    ServerUnavailableError,
    TransportError,
    WriteError,
)
from influx_flight._lineprotocol import (
    DEFAULT_BATCH_ROWS,
    EncodedBody,
    EncodedChunk,
    iter_encode,
    normalize_precision,
    pack_bodies,
)
from influx_flight._retry import DEFAULT_RETRY_POLICY, RetryPolicy, call_with_retry

if TYPE_CHECKING:
    import urllib3

    from influx_flight._config import InfluxDB3Config

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "SERVER_MAX_BODY_BYTES",
    "WriteResult",
    "write_arrow",
    "write_line_protocol",
]

log = logging.getLogger("influx_flight.writer")

#: InfluxDB 3's default ``--max-http-request-size`` (also enforced after gzip is undone).
SERVER_MAX_BODY_BYTES = 10 * 1024 * 1024
#: Default body size: under the server limit with room for a line that straddles it.
DEFAULT_MAX_BODY_BYTES = 8 * 1024 * 1024

_V3_PRECISION = {"ns": "nanosecond", "us": "microsecond", "ms": "millisecond", "s": "second"}
_MAX_LISTED = 10  # rejected lines spelled out in an error message


@dataclass(frozen=True)
class WriteResult:
    """What a write did.

    ``rows``: input rows (or input lines for raw line protocol); ``lines_written``: lines the
    server stored; ``rows_skipped``: rows with no field (or blank/comment lines), never sent;
    ``requests``: HTTP requests that completed (retries not counted); ``bytes_sent``: request
    bytes on the wire (after gzip); ``bytes_encoded``: line-protocol bytes before gzip;
    ``rejected``: lines the server refused, with their input ``row``.
    """

    rows: int = 0
    lines_written: int = 0
    rows_skipped: int = 0
    requests: int = 0
    bytes_sent: int = 0
    bytes_encoded: int = 0
    rejected: list[RejectedLine] = field(default_factory=list)
    unwritten_rows: int = 0

    @property
    def ok(self) -> bool:
        return not self.rejected and not self.unwritten_rows


@dataclass
class _Outcome:
    request_no: int
    lines: int
    bytes_encoded: int
    bytes_sent: int = 0
    stored: int = 0
    rejected: list[RejectedLine] = field(default_factory=list)
    refused_whole: str | None = None  # the server refused the whole request (message)
    first_row: int = 0
    last_row: int = 0
    status: int | None = None
    fatal: BaseException | None = None


# --- validation ------------------------------------------------------------------------------------


def _check_options(
    config: InfluxDB3Config,
    *,
    database: str | None,
    concurrency: int,
    endpoint: str,
    accept_partial: bool,
    no_sync: bool,
    max_body_bytes: int,
) -> str:
    db = database if database is not None else config.database
    if not isinstance(db, str) or not db.strip():
        raise ConfigurationError(
            "database: name the database to write to (database=... or the config's database)",
            field="database",
        )
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ConfigurationError(
            f"concurrency: expected an integer >= 1, got {concurrency!r}", field="concurrency"
        )
    if endpoint not in ("v3", "v2"):
        raise ConfigurationError(
            f"endpoint: expected 'v3' (/api/v3/write_lp) or 'v2' (/api/v2/write), got {endpoint!r}",
            field="endpoint",
        )
    if endpoint == "v2" and no_sync:
        raise ConfigurationError(
            "no_sync is only available on the v3 endpoint (/api/v3/write_lp); use endpoint='v3'",
            field="no_sync",
        )
    if (
        isinstance(max_body_bytes, bool)
        or not isinstance(max_body_bytes, int)
        or not 1024 <= max_body_bytes <= SERVER_MAX_BODY_BYTES
    ):
        raise ConfigurationError(
            f"max_body_bytes: expected an integer between 1024 and {SERVER_MAX_BODY_BYTES} "
            f"(the server's 10 MiB limit, which also applies after gzip), got {max_body_bytes!r}",
            field="max_body_bytes",
        )
    return db.strip()


# --- HTTP ---------------------------------------------------------------------------------------------


class _Sender:
    """One urllib3 pool, one URL and the headers of every request of a write call."""

    def __init__(
        self,
        config: InfluxDB3Config,
        *,
        database: str,
        precision: str,
        endpoint: str,
        use_gzip: bool,
        accept_partial: bool,
        no_sync: bool,
        concurrency: int,
        retry: RetryPolicy,
    ) -> None:
        import urllib3

        self.config = config
        self.database = database
        self.endpoint = endpoint
        self.use_gzip = use_gzip
        self.accept_partial = accept_partial and endpoint == "v3"
        self.retry = retry
        base = config.write_base_url.rstrip("/")
        if endpoint == "v3":
            params = {
                "db": database,
                "precision": _V3_PRECISION[precision],
                "accept_partial": "true" if accept_partial else "false",
            }
            if no_sync:
                params["no_sync"] = "true"
            self.url = f"{base}/api/v3/write_lp?{urlencode(params)}"
        else:
            self.url = (
                f"{base}/api/v2/write?{urlencode({'bucket': database, 'precision': precision})}"
            )
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": f"influx-flight/{__version__}",
        }
        headers.update(config.http_headers())
        if use_gzip:
            headers["Content-Encoding"] = "gzip"
        self.headers = headers
        wt = config.write_timeout
        timeout = urllib3.Timeout(connect=min(wt, 10.0), read=wt) if wt else urllib3.Timeout()
        pool_kwargs: dict[str, Any] = {
            "num_pools": 2,
            "maxsize": concurrency,
            "block": True,
            "retries": False,
            "timeout": timeout,
        }
        if base.startswith("https"):
            pool_kwargs["cert_reqs"] = "CERT_REQUIRED" if config.verify_tls else "CERT_NONE"
            pem = config.ca_cert_pem()
            if pem is not None:
                pool_kwargs["ca_cert_data"] = pem.decode("ascii")
        self.pool: urllib3.PoolManager = urllib3.PoolManager(**pool_kwargs)

    def close(self) -> None:
        self.pool.clear()

    def _post(self, payload: bytes | memoryview) -> urllib3.BaseHTTPResponse:
        import urllib3

        try:
            return self.pool.request(
                "POST", self.url, body=payload, headers=self.headers, retries=False
            )
        except urllib3.exceptions.SSLError as exc:
            raise TransportError(
                f"TLS handshake with {self.config.scrub(self.url)} failed: "
                f"{self.config.scrub(str(exc))}. Check verify_tls and ca_cert (a CA bundle that "
                "signed the server certificate).",
                host=self.config.host,
                database=self.database,
            ) from None
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", None) or exc
            raise ServerUnavailableError(
                f"cannot write to {self.config.scrub(self.url)}: "
                f"{self.config.scrub(str(reason))}. Check that the server is running and the "
                "write URL (write_url / INFLUXDB3_WRITE_URL) is right; transient failures are "
                "retried.",
                host=self.config.host,
                database=self.database,
            ) from None

    def send(self, body: EncodedBody, request_no: int) -> _Outcome:
        """POST one body (retrying transient failures); never raises for rejected lines."""
        raw = body.data
        payload: bytes | memoryview = (
            _gzip.compress(raw, compresslevel=1, mtime=0) if self.use_gzip else raw
        )
        rows = body.row_index
        out = _Outcome(
            request_no=request_no,
            lines=len(rows),
            bytes_encoded=raw.nbytes,
            first_row=int(rows[0]) if len(rows) else 0,
            last_row=int(rows[-1]) if len(rows) else 0,
        )

        def attempt() -> urllib3.BaseHTTPResponse:
            resp = self._post(payload)
            if resp.status == 429 or resp.status >= 500:
                raise error_from_http(
                    self.config,
                    resp.status,
                    resp.data,
                    dict(resp.headers),
                    database=self.database,
                    url=self.url,
                )
            return resp

        def on_retry(n: int, exc: BaseException, delay: float) -> None:
            log.warning(
                "write request %d to %s failed (attempt %d: %s); retrying in %.2fs",
                request_no,
                self.config.scrub(self.url),
                n,
                exc,
                delay,
            )

        try:
            resp = call_with_retry(attempt, self.retry, on_retry=on_retry)
        except InfluxDB3Error as exc:
            out.fatal = exc
            return out
        out.bytes_sent = len(payload)
        out.status = resp.status
        if 200 <= resp.status < 300:
            out.stored = out.lines
            log.debug("write request %d: %d lines stored", request_no, out.lines)
            return out
        err = error_from_http(
            self.config,
            resp.status,
            resp.data,
            dict(resp.headers),
            database=self.database,
            url=self.url,
        )
        if not isinstance(err, WriteError) or resp.status not in (400, 422):
            out.fatal = err  # auth, not found, body too large: no point going on
            return out
        partial = _is_partial(resp.data)
        rejected = [_with_row(r, rows) for r in err.rejected_lines]
        out.rejected = rejected
        if partial and self.accept_partial:
            out.stored = max(0, out.lines - len({r.line_number for r in rejected}))
        else:
            out.refused_whole = err.message
            out.stored = 0
        return out


def _is_partial(body: bytes) -> bool:
    """True for v3's "partial write" answer (the valid lines of the request were stored)."""
    try:
        doc = json.loads(body.decode("utf-8", "replace"))
    except ValueError:
        return False
    return (
        isinstance(doc, dict)
        and "partial write" in str(doc.get("error", ""))
        and isinstance(doc.get("data"), list)
    )


def _with_row(line: RejectedLine, rows: np.ndarray) -> RejectedLine:
    n = line.line_number
    row = int(rows[n - 1]) if 1 <= n <= len(rows) else None
    return RejectedLine(
        line_number=n, message=line.message, original_line=line.original_line, row=row
    )


# --- the driver ---------------------------------------------------------------------------------------


def _run(
    sender: _Sender,
    bodies: Iterator[EncodedBody],
    *,
    concurrency: int,
    counts: dict[str, int],
) -> WriteResult:
    """Send bodies with at most ``2 * concurrency`` in flight; stop early on a fatal error."""
    outcomes: list[_Outcome] = []
    fatal: BaseException | None = None
    pending: deque[Future[_Outcome]] = deque()
    input_error: BaseException | None = None
    with ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="influx-write") as pool:
        try:
            for request_no, body in enumerate(bodies, start=1):
                if fatal is not None:
                    break
                pending.append(pool.submit(sender.send, body, request_no))
                while len(pending) >= 2 * concurrency:
                    done, _ = wait(list(pending), return_when=FIRST_COMPLETED)
                    for f in done:
                        pending.remove(f)
                        o = f.result()
                        outcomes.append(o)
                        if o.fatal is not None and fatal is None:
                            fatal = o.fatal
        except BaseException as exc:  # the input could not be encoded (or the caller interrupted)
            input_error = exc
        finally:
            for f in pending:
                o = f.result()
                outcomes.append(o)
                if o.fatal is not None and fatal is None:
                    fatal = o.fatal
            sender.close()
    outcomes.sort(key=lambda o: o.request_no)
    done_ok = [o for o in outcomes if o.fatal is None]
    rejected = [r for o in done_ok for r in o.rejected]
    refused = [o for o in done_ok if o.refused_whole is not None]
    result = WriteResult(
        rows=counts["rows"],
        lines_written=sum(o.stored for o in done_ok),
        rows_skipped=counts["skipped"],
        requests=len(done_ok),
        bytes_sent=sum(o.bytes_sent for o in done_ok),
        bytes_encoded=sum(o.bytes_encoded for o in outcomes),
        rejected=rejected,
        unwritten_rows=sum(o.lines for o in refused),
    )
    if input_error is not None:
        if isinstance(input_error, InfluxDB3Error):
            input_error.write_result = result  # type: ignore[attr-defined]
        input_error.add_note(
            f"{result.lines_written} line(s) from earlier rows were already written by "
            f"{result.requests} request(s); writing the same rows again is safe (same points)."
        )
        raise input_error
    if fatal is not None:
        if isinstance(fatal, InfluxDB3Error):
            fatal.write_result = result  # type: ignore[attr-defined]
        fatal.add_note(
            f"{result.requests} request(s) completed before the failure; "
            f"{result.lines_written} line(s) were written."
        )
        raise fatal
    if rejected or refused:
        raise _rejection_error(sender, result, refused, sum(o.lines for o in done_ok))
    return result


def _rejection_error(
    sender: _Sender, result: WriteResult, refused: list[_Outcome], total: int
) -> WriteError:
    cfg = sender.config
    parts = [
        f"InfluxDB at {cfg.scrub(cfg.write_base_url)} (database {sender.database!r}) rejected "
        f"{len(result.rejected)} line(s); {result.lines_written} of {total} line(s) were "
        "written."
    ]
    for r in result.rejected[:_MAX_LISTED]:
        where = f"row {r.row}" if r.row is not None else "unknown row"
        parts.append(
            f"  {where} (line {r.line_number} of its request): {r.message}"
            + (f" [{r.original_line!r}]" if r.original_line else "")
        )
    if len(result.rejected) > _MAX_LISTED:
        parts.append(f"  ... and {len(result.rejected) - _MAX_LISTED} more (see .rejected_lines)")
    if refused:
        spans = ", ".join(f"{o.first_row}..{o.last_row}" for o in refused[:_MAX_LISTED])
        reasons = sorted({o.refused_whole for o in refused if o.refused_whole})
        parts.append(
            f"{len(refused)} request(s) were refused as a whole, so none of their "
            f"{result.unwritten_rows} line(s) were written (input rows {spans}); the server "
            f"said: {'; '.join(reasons) or 'no reason given'}."
        )
    if result.rejected:
        parts.append("Fix the rejected rows (e.g. field type conflicts) and write them again.")
    else:
        parts.append("Fix what the server named (database name, endpoint options) and retry.")
    statuses = [o.status for o in refused] + [None]
    err = WriteError(
        "\n".join(parts),
        rejected_lines=result.rejected,
        status=statuses[0] or 400,
        host=cfg.host,
        database=sender.database,
    )
    err.write_result = result  # type: ignore[attr-defined]
    return err


def _split_bodies(
    chunks: Iterable[EncodedChunk], max_body_bytes: int, counts: dict[str, int]
) -> Iterator[EncodedBody]:
    def counted() -> Iterator[EncodedChunk]:
        for chunk in chunks:
            counts["rows"] += chunk.rows
            counts["skipped"] += chunk.rows_skipped
            yield chunk

    yield from pack_bodies(counted(), max_body_bytes)


# --- public API ----------------------------------------------------------------------------------------


def write_arrow(
    config: InfluxDB3Config,
    data: Any,
    *,
    measurement: str,
    tags: Sequence[str] = (),
    time_column: str | None = "time",
    precision: str = "ns",
    field_columns: Sequence[str] | None = None,
    database: str | None = None,
    concurrency: int = 4,
    endpoint: Literal["v3", "v2"] = "v3",
    gzip: bool = True,
    accept_partial: bool = True,
    no_sync: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
    batch_rows: int = DEFAULT_BATCH_ROWS,
) -> WriteResult:
    """Encode Arrow data (Table, RecordBatch, reader, DataFrame, batches) and write it.

    Columns other than ``time_column`` and ``tags`` become fields (or only ``field_columns``).
    Raises WriteError (with ``rejected_lines`` mapped to input rows and ``write_result``) after
    all requests are done if the server rejected lines; AuthenticationError & co. at once.
    """

    def encode(prec: str) -> Iterable[EncodedChunk]:
        return iter_encode(
            data,
            measurement=measurement,
            tags=tags,
            time_column=time_column,
            precision=prec,
            field_columns=field_columns,
            batch_rows=batch_rows,
            threads=min(2, os.cpu_count() or 1),
        )

    return _write(
        config,
        encode,
        database=database,
        precision=precision,
        concurrency=concurrency,
        endpoint=endpoint,
        gzip=gzip,
        accept_partial=accept_partial,
        no_sync=no_sync,
        max_body_bytes=max_body_bytes,
        retry=retry,
    )


def _write(
    config: InfluxDB3Config,
    encode: Callable[[str], Iterable[EncodedChunk]],
    *,
    database: str | None,
    precision: str,
    concurrency: int,
    endpoint: Literal["v3", "v2"],
    gzip: bool,
    accept_partial: bool,
    no_sync: bool,
    max_body_bytes: int,
    retry: RetryPolicy,
) -> WriteResult:
    """Validate the options (before anything is encoded), then encode, cut into bodies, send."""
    prec = normalize_precision(precision)
    db = _check_options(
        config,
        database=database,
        concurrency=concurrency,
        endpoint=endpoint,
        accept_partial=accept_partial,
        no_sync=no_sync,
        max_body_bytes=max_body_bytes,
    )
    sender = _Sender(
        config,
        database=db,
        precision=prec,
        endpoint=endpoint,
        use_gzip=gzip,
        accept_partial=accept_partial,
        no_sync=no_sync,
        concurrency=concurrency,
        retry=retry,
    )
    counts = {"rows": 0, "skipped": 0}
    return _run(
        sender,
        _split_bodies(encode(prec), max_body_bytes, counts),
        concurrency=concurrency,
        counts=counts,
    )


def _lines_chunk(lines: Any) -> EncodedChunk:
    """Raw line protocol -> one chunk; blank and comment lines are dropped (the server does not
    count them in its line numbers), ``row_index`` is the 0-based input line."""
    if isinstance(lines, bytes | bytearray | memoryview):
        lines = bytes(lines).decode("utf-8")
    if isinstance(lines, str):
        items = lines.split("\n")
        if items and items[-1] == "":
            items.pop()
    elif isinstance(lines, Iterable):
        items = [x.decode("utf-8") if isinstance(x, bytes) else x for x in lines]
        bad = next((x for x in items if not isinstance(x, str)), None)
        if bad is not None:
            raise ConfigurationError(
                f"lines: expected str or bytes items, got {type(bad).__name__}", field="lines"
            )
        items = [x[:-1] if x.endswith("\n") else x for x in items]
    else:
        raise ConfigurationError(
            f"lines: expected line protocol as str, bytes or an iterable of lines, got "
            f"{type(lines).__name__}",
            field="lines",
        )
    arr = pa.array(items, pa.string())
    trimmed = pc.utf8_trim_whitespace(arr)
    keep = pc.and_(
        pc.greater(pc.binary_length(trimmed), 0), pc.invert(pc.starts_with(trimmed, "#"))
    )
    keep_np = keep.to_numpy(zero_copy_only=False)
    kept = arr.filter(keep)
    row_index = np.flatnonzero(keep_np).astype(np.int64)
    text = pc.binary_join_element_wise(kept, "\n", "")
    return EncodedChunk(text, row_index, len(items), len(items) - len(kept))


def write_line_protocol(
    config: InfluxDB3Config,
    lines: str | bytes | Iterable[str] | Iterable[bytes],
    *,
    database: str | None = None,
    precision: str = "ns",
    concurrency: int = 4,
    endpoint: Literal["v3", "v2"] = "v3",
    gzip: bool = True,
    accept_partial: bool = True,
    no_sync: bool = False,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    retry: RetryPolicy = DEFAULT_RETRY_POLICY,
) -> WriteResult:
    """Write raw line protocol: a text (split on newlines) or an iterable of lines (each item one
    line; use this form when string fields contain newlines). Rejected lines carry ``row`` = the
    0-based input line."""
    return _write(
        config,
        lambda _prec: [_lines_chunk(lines)],
        database=database,
        precision=precision,
        concurrency=concurrency,
        endpoint=endpoint,
        gzip=gzip,
        accept_partial=accept_partial,
        no_sync=no_sync,
        max_body_bytes=max_body_bytes,
        retry=retry,
    )
