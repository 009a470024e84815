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
    client.write(table, measurement="home", tags=["room"])
    client.write_lp("cpu,host=a usage=1 1700000000000000000\\n", precision="ns")
"""

from __future__ import annotations

import json
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from isal import igzip as _igzip  # ISA-L: the same gzip format at several times zlib's speed

from influx_flight import __version__
from influx_flight._cancel import POLL_SECONDS, Operation
from influx_flight._errors import error_from_http
from influx_flight._exceptions import (
    ConfigurationError,
    InfluxDB3Error,
    OperationCancelledError,
    RejectedLine,
    WriteError,
)
from influx_flight._lineprotocol import EncodedBody, EncodedChunk, iter_encode, pack_bodies
from influx_flight._options import DEFAULT_MAX_BODY_BYTES, SERVER_MAX_BODY_BYTES, WriteOptions
from influx_flight._retry import RetryPolicy, call_with_retry, is_transient

if TYPE_CHECKING:
    from influx_flight._config import InfluxDB3Config
    from influx_flight._http import HttpResponse, HttpTransport

__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "SERVER_MAX_BODY_BYTES",
    "WriteResult",
    "arrow_chunks",
    "line_chunks",
    "write_data",
]

log = logging.getLogger("influx_flight.writer")

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


# --- HTTP ---------------------------------------------------------------------------------------------


class _Sender:
    """The URL, headers and retry loop of every request of one write call, over the client's
    shared HTTP transport."""

    def __init__(
        self,
        transport: HttpTransport,
        config: InfluxDB3Config,
        *,
        database: str,
        options: WriteOptions,
        retry: RetryPolicy,
        op: Operation,
    ) -> None:
        self.transport = transport
        self.config = config
        self.database = database
        self.use_gzip = options.gzip
        self.accept_partial = options.accept_partial and options.endpoint == "v3"
        self.retry = retry
        self.op = op
        self.timeout = options.resolved_timeout(config.write_timeout)
        base = config.write_base_url.rstrip("/")
        if options.endpoint == "v3":
            params = {
                "db": database,
                "precision": _V3_PRECISION[options.precision],
                "accept_partial": "true" if options.accept_partial else "false",
            }
            if options.no_sync:
                params["no_sync"] = "true"
            self.url = f"{base}/api/v3/write_lp?{urlencode(params)}"
        else:
            query = urlencode({"bucket": database, "precision": options.precision})
            self.url = f"{base}/api/v2/write?{query}"
        headers = {
            "Content-Type": "text/plain; charset=utf-8",
            "Accept": "application/json",
            "User-Agent": f"influx-flight/{__version__}",
        }
        headers.update(config.http_headers())
        if options.gzip:
            headers["Content-Encoding"] = "gzip"
        self.headers = headers

    def _cancelled(self) -> OperationCancelledError:
        return OperationCancelledError(
            f"The write to {self.config.scrub(self.config.write_base_url)} (database "
            f"{self.database!r}) was cancelled by client.cancel() or close(); requests already "
            "acknowledged were stored, writing the same rows again is safe.",
            host=self.config.host,
            database=self.database,
        )

    def send(self, body: EncodedBody, request_no: int) -> _Outcome:
        """POST one body (retrying transient failures); never raises for rejected lines."""
        raw = body.data
        payload: bytes | memoryview = (
            _igzip.compress(raw, compresslevel=1, mtime=0) if self.use_gzip else raw
        )
        rows = body.row_index
        out = _Outcome(
            request_no=request_no,
            lines=len(rows),
            bytes_encoded=raw.nbytes,
            first_row=int(rows[0]) if len(rows) else 0,
            last_row=int(rows[-1]) if len(rows) else 0,
        )

        def attempt() -> HttpResponse:
            if self.op.cancelled.is_set():
                raise self._cancelled()
            resp = self.transport.request(
                "POST",
                self.url,
                body=payload,
                headers=self.headers,
                timeout=self.timeout,
                database=self.database,
                action="write to",
            )
            if resp.status == 429 or resp.status >= 500:
                raise error_from_http(
                    self.config,
                    resp.status,
                    resp.data,
                    resp.headers,
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

        def sleep(seconds: float) -> None:
            if self.op.sleep(seconds):
                raise self._cancelled()

        try:
            resp = call_with_retry(
                attempt,
                self.retry,
                is_retryable=lambda e: not self.op.cancelled.is_set() and is_transient(e),
                on_retry=on_retry,
                sleep=sleep,
            )
        except InfluxDB3Error as exc:
            out.fatal = self._cancelled() if self.op.cancelled.is_set() else exc
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
            resp.headers,
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
    """Send bodies with at most ``2 * concurrency`` in flight; stop early on a fatal error.

    The calling thread waits in short steps, so ``client.cancel()`` / ``close()`` (which also
    shut the transport's sockets down) and signals (Airflow's ``execution_timeout``) stop the
    write promptly instead of after the request timeout.
    """
    op = sender.op
    outcomes: list[_Outcome] = []
    fatal: BaseException | None = None
    pending: deque[Future[_Outcome]] = deque()
    input_error: BaseException | None = None

    def collect(futures: Iterable[Future[_Outcome]]) -> None:
        nonlocal fatal
        for f in futures:
            pending.remove(f)
            o = f.result()
            outcomes.append(o)
            if o.fatal is not None and fatal is None:
                fatal = o.fatal

    def wait_until(done_when: Callable[[], bool]) -> None:
        while not done_when():
            if op.cancelled.is_set():
                raise sender._cancelled()
            done, _ = wait(list(pending), timeout=POLL_SECONDS, return_when=FIRST_COMPLETED)
            collect(done)

    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="influx-write")
    interrupted = False
    try:
        try:
            for request_no, body in enumerate(bodies, start=1):
                if fatal is not None:
                    break
                if op.cancelled.is_set():
                    raise sender._cancelled()
                pending.append(pool.submit(sender.send, body, request_no))
                wait_until(lambda: len(pending) < 2 * concurrency)
            wait_until(lambda: not pending)
        except BaseException as exc:  # bad input, cancel, or a signal (task timeout)
            input_error = exc
            interrupted = not isinstance(exc, Exception) or isinstance(exc, OperationCancelledError)
            if interrupted:
                op.cancel()  # stop the requests in flight (sockets shut down)
            else:
                wait_until(lambda: not pending)
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    collect([f for f in pending if f.done() and not f.cancelled()])
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
        raise _with_result(
            input_error,
            result,
            f"{result.lines_written} line(s) from earlier rows were already written by "
            f"{result.requests} request(s); writing the same rows again is safe (same points).",
        )
    if fatal is not None:
        raise _with_result(
            fatal,
            result,
            f"{result.requests} request(s) completed before the failure; "
            f"{result.lines_written} line(s) were written.",
        )
    if rejected or refused:
        raise _rejection_error(sender, result, refused, sum(o.lines for o in done_ok))
    return result


def _with_result(error: BaseException, result: WriteResult, note: str) -> BaseException:
    """``error`` carrying what was written before it, so a caller can resume or report."""
    if isinstance(error, InfluxDB3Error):
        error.write_result = result  # type: ignore[attr-defined]
    error.add_note(note)
    return error


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


# --- entry points (called by InfluxDB3Client) ---------------------------------------------------------


def write_data(
    transport: HttpTransport,
    config: InfluxDB3Config,
    encode: Callable[[str, int], Iterable[EncodedChunk]],
    *,
    database: str | None,
    options: WriteOptions,
    retry: RetryPolicy,
    op: Operation,
) -> WriteResult:
    """Encode (``encode(precision, batch_rows)``), cut into bodies, send; the options are
    already merged and validated."""
    db = database if database is not None else config.database
    if not isinstance(db, str) or not db.strip():
        raise ConfigurationError(
            "database: name the database to write to (database=... or the config's database)",
            field="database",
        )
    sender = _Sender(transport, config, database=db.strip(), options=options, retry=retry, op=op)
    counts = {"rows": 0, "skipped": 0}
    chunks = encode(options.precision, options.batch_rows)
    return _run(
        sender,
        _split_bodies(chunks, options.max_body_bytes, counts),
        concurrency=options.concurrency,
        counts=counts,
    )


def arrow_chunks(
    data: Any,
    *,
    measurement: str,
    tags: Sequence[str],
    time_column: str | None,
    field_columns: Sequence[str] | None,
) -> Callable[[str, int], Iterable[EncodedChunk]]:
    """The encoder of Arrow data (Table, RecordBatch, reader, DataFrame, batches)."""

    def encode(precision: str, batch_rows: int) -> Iterable[EncodedChunk]:
        return iter_encode(
            data,
            measurement=measurement,
            tags=tags,
            time_column=time_column,
            precision=precision,
            field_columns=field_columns,
            batch_rows=batch_rows,
            threads=min(2, os.cpu_count() or 1),
        )

    return encode


def line_chunks(lines: Any) -> Callable[[str, int], Iterable[EncodedChunk]]:
    """The "encoder" of raw line protocol (validated before anything is sent)."""
    chunk = _lines_chunk(lines)
    return lambda _precision, _rows: [chunk]


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
