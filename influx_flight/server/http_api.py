"""The stand-in's HTTP API (aiohttp): writes, SQL/InfluxQL queries, databases, health, ping.

Status codes and bodies follow InfluxDB 3 Core (``influxdb3-protocol.md`` §6): 204 for a
successful write, the partial-write and strict-write JSON bodies with 1-based line numbers and
``original_line`` cut to 20 bytes, v2 ``{code, message}`` errors on ``/api/v2/write``, the exact
401/400 authentication bodies, a 10 MiB body limit enforced after gzip is undone, and streamed
json/jsonl/csv query results. The app runs on its own event loop in a background thread;
parsing, queries and serialisation run in a small thread pool so the loop stays responsive.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import math
import os
import re
import threading
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
from aiohttp import web
from isal import isal_zlib

from influx_flight.server import influxql
from influx_flight.server.cancel import CANCEL_CHECK
from influx_flight.server.errors import (
    DatabaseNotFound,
    InvalidDatabaseName,
    MalformedAuthorization,
    PermissionDenied,
    QueryNotImplemented,
    QueryPlanError,
    ServerError,
    Unauthenticated,
)

__all__ = ["MAX_REQUEST_SIZE", "HttpServer", "build_app"]

log = logging.getLogger(__name__)

#: Core's default ``--max-http-request-size`` (10 MiB), also enforced after gzip.
MAX_REQUEST_SIZE = 10 * 1024 * 1024
#: Seconds a shutdown waits for running HTTP handlers (and Flight calls, in ``app.py``).
SHUTDOWN_GRACE = 2.0
#: Request bodies received but not yet parsed, over all connections (25 full-size bodies):
#: beyond it a write gets 503, so stalled senders cannot exhaust the server's memory.
MAX_BUFFERED_BODIES = 256 * 1024 * 1024
#: The version the stand-in reports on /ping (the Core release the reference describes).
VERSION = "3.10.0"
REVISION = "influx-flight-standin"

_UNAUTHENTICATED_BODY = '{"error": "the request was not authenticated"}'
_FORBIDDEN_BODY = '{"error": "the request was not authorized"}'
_MALFORMED_BODY = '{"error": "' + MalformedAuthorization.BODY + '"}'
_FORMATS = {"json", "jsonl", "json_lines", "csv", "pretty", "parquet"}
_CONTENT_TYPES = {
    "json": "application/json",
    "jsonl": "application/jsonl",
    "csv": "text/csv",
    "pretty": "text/plain; charset=utf-8",
    "parquet": "application/vnd.apache.parquet",
}
_V1_TOKEN_PATHS = {"/write", "/query"}
_STREAMING = "influx_flight.streaming"  # request key: the response status is already sent
#: Core's default delay between a table's soft delete and its purge.
_DEFAULT_HARD_DELETE = timedelta(hours=72)
#: An RFC 3339 date-time with its offset (``hard_delete_at``), as chrono parses it for Core.
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
#: Field types of ``POST /api/v3/configure/table`` (Core's ``FieldDataType`` names).
_TABLE_FIELD_TYPES = {
    "utf8": pa.utf8(),
    "int64": pa.int64(),
    "uint64": pa.uint64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
}


class _HttpError(Exception):
    """An HTTP answer decided inside a handler (status, body, content type)."""

    def __init__(self, status: int, body: str, content_type: str = "text/plain") -> None:
        super().__init__(body)
        self.status = status
        self.body = body
        self.content_type = content_type


def _compact(obj: Any) -> str:
    """serde_json's compact form, as Core's error bodies are serialised."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


async def _json_body(request: web.Request) -> Any:
    """The JSON body of a configure request: 415 unless it says JSON, 400 unless it is JSON."""
    content_type = request.headers.get("Content-Type", "")
    if content_type.split(";")[0].strip().lower() != "application/json":
        raise _HttpError(415, "unacceptable content-type, expected: application/json")
    try:
        return json.loads(await request.read() or b"null")
    except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, nested too deep
        raise _HttpError(400, f"the request body is not valid JSON: {exc}") from None


def _json_error(status: int, message: str) -> _HttpError:
    return _HttpError(status, _compact({"error": message}), "application/json")


def _v2_error(status: int, message: str) -> _HttpError:
    code = {
        400: "invalid",
        401: "unauthorized",
        403: "forbidden",
        404: "not found",
        413: "request too large",
    }.get(status, "internal error")
    return _HttpError(status, _compact({"code": code, "message": message}), "application/json")


def _truthy(value: str | None, default: bool, name: str) -> bool:
    if value is None or value == "":
        return default
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise _HttpError(
        400, f"invalid value for query parameter '{name}': {value!r} (use true or false)"
    )


def _cut20(line: str) -> str:
    """Core cuts ``original_line`` to 20 bytes (kept on a UTF-8 character boundary)."""
    raw = line.encode("utf-8")
    if len(raw) <= 20:
        return line
    return raw[:20].decode("utf-8", errors="ignore")


def _line_error_json(err: Any) -> dict[str, Any]:
    return {
        "error_message": err.error_message,
        "line_number": err.line_number,
        "original_line": _cut20(err.original_line),
    }


# ----------------------------------------------------------------------------------------------
# Result serialisation
# ----------------------------------------------------------------------------------------------


def _format_timestamps(arr: pa.Array) -> list[str | None]:
    """Naive ISO-8601 like arrow_json: `2065-01-07T17:28:51` plus .3/.6/.9 digits when needed."""
    if arr.type.tz is not None:
        arr = arr.cast(pa.timestamp(arr.type.unit))
    ns = arr.cast(pa.timestamp("ns")).cast(pa.int64()).to_numpy(zero_copy_only=False)
    valid = np.asarray(arr.is_valid())
    ns_filled = np.where(valid, np.nan_to_num(ns, nan=0), 0).astype(np.int64)
    secs = np.floor_divide(ns_filled, 1_000_000_000)
    frac = ns_filled - secs * 1_000_000_000
    base = np.datetime_as_string(secs.astype("datetime64[s]"), unit="s")
    out: list[str | None] = []
    for b, f, ok in zip(base.tolist(), frac.tolist(), valid.tolist(), strict=True):
        if not ok:
            out.append(None)
        elif f == 0:
            out.append(b)
        elif f % 1_000_000 == 0:
            out.append(f"{b}.{f // 1_000_000:03d}")
        elif f % 1_000 == 0:
            out.append(f"{b}.{f // 1_000:06d}")
        else:
            out.append(f"{b}.{f:09d}")
    return out


def _columns_as_python(batch: pa.RecordBatch) -> list[list[Any]]:
    cols = []
    for col in batch.columns:
        if pa.types.is_timestamp(col.type):
            cols.append(_format_timestamps(col))
        elif pa.types.is_dictionary(col.type):
            cols.append(col.cast(col.type.value_type).to_pylist())
        elif pa.types.is_date(col.type) or pa.types.is_time(col.type):
            cols.append([None if v is None else v.isoformat() for v in col.to_pylist()])
        else:
            cols.append(col.to_pylist())
    return cols


def _json_default(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    return str(value)


def _rows(batch: pa.RecordBatch) -> Iterator[dict[str, Any]]:
    names = batch.schema.names
    cols = _columns_as_python(batch)
    for j, col in enumerate(batch.columns):
        if pa.types.is_floating(col.type):
            # JSON has no NaN or infinity: such values are left out like nulls.
            cols[j] = [None if v is not None and not math.isfinite(v) else v for v in cols[j]]
    for i in range(batch.num_rows):
        # Null values are left out, as arrow_json does.
        yield {n: c[i] for n, c in zip(names, cols, strict=True) if c[i] is not None}


def _dumps(obj: Any) -> str:
    return json.dumps(obj, default=_json_default, ensure_ascii=False, separators=(",", ":"))


def _csv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if any(c in text for c in ',"\n\r'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_chunk(batch: pa.RecordBatch, header: bool) -> str:
    cols = _columns_as_python(batch)
    lines = [",".join(_csv_cell(n) for n in batch.schema.names)] if header else []
    for i in range(batch.num_rows):
        lines.append(",".join(_csv_cell(c[i]) for c in cols))
    return "".join(line + "\n" for line in lines)


def _pretty(table: pa.Table) -> str:
    """Arrow's pretty-printed table (`arrow::util::pretty::pretty_format_batches`)."""
    names = table.schema.names
    rows: list[list[str]] = []
    for batch in table.to_batches():
        cols = _columns_as_python(batch)
        for i in range(batch.num_rows):
            rows.append(["" if c[i] is None else str(c[i]) for c in cols])
    widths = [max([len(n)] + [len(r[j]) for r in rows]) for j, n in enumerate(names)]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"

    def line(cells: list[str]) -> str:
        return "|" + "|".join(f" {c:<{w}} " for c, w in zip(cells, widths, strict=True)) + "|"

    out = [sep, line(names), sep, *[line(r) for r in rows], sep]
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------
# The application
# ----------------------------------------------------------------------------------------------


class _Api:
    """Request handlers bound to one engine, pipeline and authenticator."""

    def __init__(
        self, engine: Any, pipeline: Any, authenticator: Any, executor: ThreadPoolExecutor
    ) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.authenticator = authenticator
        self.executor = executor
        self.cluster_uuid = str(uuid.uuid4())
        self.process_id = str(uuid.uuid4())
        self._buffered = 0  # bytes of request bodies being received (one event loop: no lock)

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.executor, fn, *args)

    # -- middleware -----------------------------------------------------------------------

    @web.middleware
    async def middleware(
        self, request: web.Request, handler: Callable[..., Any]
    ) -> web.StreamResponse:
        v2 = request.path == "/api/v2/write"
        try:
            if request.method == "OPTIONS":
                response: web.StreamResponse = web.Response(status=204)
                response.headers["Access-Control-Allow-Origin"] = "*"
                response.headers["Access-Control-Allow-Methods"] = "*"
                response.headers["Access-Control-Allow-Headers"] = "*"
            else:
                self._authenticate(request)
                response = await handler(request)
        except _HttpError as exc:
            if v2 and exc.content_type != "application/json":
                exc = _v2_error(exc.status, exc.body)
            response = web.Response(status=exc.status, text=exc.body, content_type=exc.content_type)
        except web.HTTPNotFound:
            response = web.Response(status=404, text="Not found")
        except web.HTTPMethodNotAllowed as exc:
            response = web.Response(status=405, text=f"method {request.method} not allowed")
            response.headers["Allow"] = ",".join(sorted(exc.allowed_methods))
        except web.HTTPException:
            raise
        except Exception:
            if request.get(_STREAMING):
                raise  # the status is sent: aiohttp drops the connection, the client sees it cut
            # Never a traceback, a file path or a class name on the wire: the log has them.
            log.exception("%s %s failed", request.method, request.path)
            response = web.Response(
                status=500,
                text=_compact(
                    {"error": "internal error: the server could not handle this request"}
                ),
                content_type="application/json",
            )
        if not response.prepared:
            response.headers["cluster-uuid"] = self.cluster_uuid
            if response.status < 400:
                response.headers.setdefault("Access-Control-Allow-Origin", "*")
        return response

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization")
        query_token = request.query.get("p") if request.path in _V1_TOKEN_PATHS else None
        try:
            self.authenticator.check_http(header, query_token)
        except MalformedAuthorization:
            raise _HttpError(400, _MALFORMED_BODY, "application/json") from None
        except PermissionDenied:
            raise _HttpError(403, _FORBIDDEN_BODY, "application/json") from None
        except Unauthenticated:
            raise _HttpError(401, _UNAUTHENTICATED_BODY, "application/json") from None

    # -- writes ---------------------------------------------------------------------------

    async def _read_body(self, request: web.Request) -> bytes:
        encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
        if encoding not in ("gzip", "identity", ""):
            raise _HttpError(
                400,
                f"invalid content encoding: {encoding!r}; send the body uncompressed or with "
                "Content-Encoding: gzip",
            )
        too_big = _HttpError(413, f"max request size ({MAX_REQUEST_SIZE} bytes) exceeded")
        declared = request.content_length
        if declared is not None and declared > MAX_REQUEST_SIZE:
            raise too_big
        chunks: list[bytes] = []
        size = 0
        try:
            async for chunk in request.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > MAX_REQUEST_SIZE:
                    raise too_big
                # Slow or stalled senders hold their partial bodies in memory: cap the total.
                if self._buffered + len(chunk) > MAX_BUFFERED_BODIES:
                    raise _HttpError(
                        503,
                        f"the server is buffering {MAX_BUFFERED_BODIES} bytes of request bodies"
                        " already; retry the write shortly",
                    )
                self._buffered += len(chunk)
                chunks.append(chunk)
        finally:
            self._buffered -= sum(len(c) for c in chunks)
        raw = b"".join(chunks)
        if encoding != "gzip" or not raw:
            return raw
        try:
            # off the event loop: other requests keep streaming in while this one inflates
            body = await self.run(_gunzip, raw, MAX_REQUEST_SIZE)
        except _TooBig:
            raise too_big from None
        except (zlib.error, isal_zlib.error, ValueError) as exc:
            raise _HttpError(400, f"error decompressing gzip payload: {exc}") from None
        return body

    async def _write(
        self,
        request: web.Request,
        database: str,
        precision: str,
        accept_partial: bool,
        no_sync: bool,
        v2: bool,
    ) -> web.Response:
        from influx_flight.server.engine import validate_database_name

        try:
            validate_database_name(database)
        except InvalidDatabaseName as exc:
            raise (_v2_error(400, exc.message) if v2 else _json_error(400, exc.message)) from None
        body = await self._read_body(request)
        if not body:
            raise _HttpError(400, "incoming write was empty")
        try:
            future = await self.run(
                lambda: self.pipeline.submit(
                    database,
                    body,
                    precision=precision,
                    accept_partial=accept_partial,
                    no_sync=no_sync,
                )
            )
        except UnicodeDecodeError:
            raise _HttpError(400, "body contents must be valid UTF-8 line protocol") from None
        except ValueError as exc:
            raise _HttpError(400, str(exc)) from None
        except ServerError as exc:
            raise _json_error(exc.http_status, exc.message) from None
        except RuntimeError as exc:  # the pipeline is closing: the server is shutting down
            raise _HttpError(503, f"the server is shutting down: {exc}") from None
        try:
            outcome = await asyncio.wrap_future(future)
        except ServerError as exc:
            raise _json_error(exc.http_status, exc.message) from None
        if outcome.errors:
            if v2:
                first = outcome.errors[0]
                raise _v2_error(
                    400,
                    "write buffer error: line protocol parse failed: "
                    f"{first.error_message} (line {first.line_number}: "
                    f"{_cut20(first.original_line)!r})",
                )
            if outcome.rejected_all or not accept_partial:
                body_json = {
                    "error": "line protocol parsing error",
                    "data": _line_error_json(outcome.errors[0]),
                }
            else:
                body_json = {
                    "error": "partial write of line protocol occurred",
                    "data": [_line_error_json(e) for e in outcome.errors],
                }
            raise _HttpError(400, _compact(body_json), "application/json")
        return web.Response(status=204)

    @staticmethod
    def _precision(value: str | None, default: str, allow_auto: bool) -> str:
        if value is None or value == "":
            return default
        from influx_flight.server.line_protocol import PRECISIONS

        if value not in PRECISIONS or (value == "auto" and not allow_auto):
            names = "auto, " if allow_auto else ""
            raise _HttpError(
                400,
                f"invalid precision {value!r}: use one of {names}s, ms, us, ns "
                "(or second, millisecond, microsecond, nanosecond)",
            )
        return value

    async def write_lp(self, request: web.Request) -> web.Response:
        q = request.query
        if "db" not in q:
            raise _HttpError(400, "missing query parameter 'db'")
        return await self._write(
            request,
            q["db"],
            self._precision(q.get("precision"), "auto", True),
            _truthy(q.get("accept_partial"), True, "accept_partial"),
            _truthy(q.get("no_sync"), False, "no_sync"),
            v2=False,
        )

    async def write_v2(self, request: web.Request) -> web.Response:
        q = request.query
        bucket = q.get("bucket", "")
        if not bucket:
            raise _v2_error(400, "missing bucket value")
        return await self._write(
            request,
            bucket,
            self._precision(q.get("precision"), "ns", False),
            accept_partial=False,
            no_sync=False,
            v2=True,
        )

    async def write_v1(self, request: web.Request) -> web.Response:
        q = request.query
        if "db" not in q:
            raise _HttpError(400, "missing query parameter 'db'")
        database = q["db"]
        rp = q.get("rp", "")
        if rp and rp not in ("autogen", "default"):
            database = f"{database}/{rp}"
        return await self._write(
            request,
            database,
            self._precision(q.get("precision"), "ns", False),
            accept_partial=False,
            no_sync=False,
            v2=False,
        )

    # -- queries --------------------------------------------------------------------------

    async def _query_request(self, request: web.Request) -> dict[str, Any]:
        if request.method == "POST":
            raw = await request.read()
            try:
                data = json.loads(raw or b"{}")
            except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, nested too deep
                raise _HttpError(400, f"the request body is not valid JSON: {exc}") from None
            if not isinstance(data, dict):
                raise _HttpError(400, "the request body must be a JSON object with db and q")
            params = data.get("params")
        else:
            data = dict(request.query)
            params = data.get("params")
            if isinstance(params, str) and params:
                try:
                    params = json.loads(params)
                except (ValueError, RecursionError) as exc:  # bad JSON, bad UTF-8, nested too deep
                    raise _HttpError(400, f"params must be a JSON object: {exc}") from None
        if params is not None and not isinstance(params, dict):
            raise _HttpError(400, "params must be a JSON object mapping names to values")
        data["params"] = params or None
        fmt = data.get("format")
        if fmt in (None, ""):
            fmt = self._format_from_accept(request.headers.get("Accept"))
        if fmt not in _FORMATS:
            raise _HttpError(
                400, f"invalid format {fmt!r}: use json, jsonl, csv, pretty or parquet"
            )
        data["format"] = "jsonl" if fmt == "json_lines" else fmt
        if not data.get("q"):
            raise _HttpError(400, "missing query parameter 'q'")
        return data

    @staticmethod
    def _format_from_accept(accept: str | None) -> str:
        if accept is None or accept == "" or "*/*" in accept or "text/html" in accept:
            return "json"
        if accept.startswith("application/vnd.apache.parquet"):
            return "parquet"
        if accept.startswith("text/csv"):
            return "csv"
        if accept.startswith("text/plain"):
            return "pretty"
        if accept.startswith("application/json"):
            return "json"
        raise _HttpError(400, "invalid mime type")

    async def query_sql(self, request: web.Request) -> web.StreamResponse:
        data = await self._query_request(request)
        database = data.get("db")
        if not database:
            raise _HttpError(400, "missing query parameter 'db'")
        return await self._query(
            request,
            data["format"],
            lambda: self.engine.query_sql(database, data["q"], data["params"], hydrate=True),
        )

    async def query_influxql(self, request: web.Request) -> web.StreamResponse:
        data = await self._query_request(request)
        database = data.get("db")
        if not database:
            raise _HttpError(400, "missing query parameter 'db': InfluxQL needs a database")
        return await self._query(
            request,
            data["format"],
            lambda: self._influxql(influxql.execute, database, data["q"], data["params"]),
        )

    def _influxql(
        self, execute: Callable[..., Any], database: str, text: Any, params: Any
    ) -> pa.RecordBatchReader:
        if isinstance(text, str):
            self.engine.limits.check_query_text(text)
        return self.engine.admit(lambda: execute(self.engine, database, text, params))

    async def _query(
        self, request: web.Request, fmt: str, start: Callable[[], pa.RecordBatchReader]
    ) -> web.StreamResponse:
        transport = request.transport

        def gone() -> bool:  # polled from worker threads while DataFusion computes
            return transport is None or transport.is_closing()

        def start_query() -> tuple[pa.RecordBatchReader, pa.RecordBatch | None]:
            token = CANCEL_CHECK.set(gone)
            try:
                reader = start()
                return reader, _next_batch(reader)  # the first batch starts DataFusion
            finally:
                CANCEL_CHECK.reset(token)

        try:
            reader, first = await self.run(start_query)
        except DatabaseNotFound as exc:
            raise _HttpError(
                404,
                _compact({"error": f"query error: database not found: {exc.database}"}),
                "application/json",
            ) from None
        except (QueryPlanError, QueryNotImplemented) as exc:
            raise _HttpError(exc.http_status, exc.message) from None
        except ServerError as exc:
            raise _HttpError(exc.http_status, exc.message) from None
        except Exception as exc:  # DataFusion execution errors surface as Arrow exceptions
            raise _HttpError(500, f"query error: {exc}") from None
        if fmt in ("parquet", "pretty"):
            return await self._query_whole(reader, first, fmt)
        # The first batch is serialised before the 200 goes out, so a value that cannot be
        # rendered (an overflowing timestamp...) is a clean error rather than a cut body.
        try:
            first_text = None if first is None else await self.run(_serialise, first, fmt, 0)
        except Exception as exc:
            with contextlib.suppress(Exception):
                reader.close()
            raise _HttpError(
                400, f"query error: the result cannot be rendered as {fmt}: {exc}"
            ) from None
        response = web.StreamResponse(status=200)
        response.content_type = _CONTENT_TYPES[fmt]
        response.headers["cluster-uuid"] = self.cluster_uuid
        response.headers["Access-Control-Allow-Origin"] = "*"
        await response.prepare(request)
        request[_STREAMING] = True
        batch = first
        count = 0
        if fmt == "json":
            await response.write(b"[")
        try:
            while batch is not None:
                if batch.num_rows:
                    if first_text is not None:
                        text, first_text = first_text, None
                    else:
                        text = await self.run(_serialise, batch, fmt, count)
                    await response.write(text.encode("utf-8"))
                    count += batch.num_rows
                batch = await self.run(_next_batch, reader)
        except Exception:
            # Headers are gone: like Core, a failure mid-stream ends the response early.
            log.exception("query failed while streaming its result")
            with contextlib.suppress(Exception):
                reader.close()
            raise
        if fmt == "json":
            await response.write(b"]")
        await response.write_eof()
        return response

    async def _query_whole(
        self, reader: pa.RecordBatchReader, first: pa.RecordBatch | None, fmt: str
    ) -> web.Response:
        def collect() -> bytes:
            batches = [] if first is None else [first]
            batches.extend(iter(lambda: _next_batch(reader), None))
            table = pa.Table.from_batches(batches, schema=reader.schema)
            if fmt == "pretty":
                return _pretty(table).encode("utf-8")
            import pyarrow.parquet as pq

            buf = io.BytesIO()
            pq.write_table(table, buf)
            return buf.getvalue()

        payload = await self.run(collect)
        response = web.Response(status=200, body=payload)
        response.content_type = _CONTENT_TYPES[fmt].split(";")[0]
        if fmt == "pretty":
            response.charset = "utf-8"
        return response

    # -- databases ------------------------------------------------------------------------

    async def create_database(self, request: web.Request) -> web.Response:
        data = await _json_body(request)
        if not isinstance(data, dict) or not isinstance(data.get("db"), str):
            raise _HttpError(400, 'the request body must be {"db": "<name>"}')
        name = data["db"]
        from influx_flight.server.engine import validate_database_name

        try:
            validate_database_name(name)
        except InvalidDatabaseName as exc:
            raise _json_error(400, exc.message) from None
        if self.engine.has_database(name):
            raise _json_error(409, f"attempted to create resource that already exists: {name}")
        await asyncio.wrap_future(self.pipeline.create_database(name))
        return web.Response(status=200)

    async def list_databases(self, request: web.Request) -> web.Response:
        fmt = request.query.get("format")
        if not fmt:
            raise _HttpError(
                400, "missing query parameter 'format' (json, jsonl, csv, pretty, parquet)"
            )
        if fmt not in _FORMATS:
            raise _HttpError(
                400, f"invalid format {fmt!r}: use json, jsonl, csv, pretty or parquet"
            )
        fmt = "jsonl" if fmt == "json_lines" else fmt
        show_deleted = _truthy(request.query.get("show_deleted"), False, "show_deleted")
        names = self.engine.list_databases()
        columns: dict[str, pa.Array] = {"iox::database": pa.array(names, pa.string())}
        if show_deleted:
            columns["deleted"] = pa.array([False] * len(names), pa.bool_())
        table = pa.table(columns)
        if fmt in ("pretty", "parquet"):
            return await self._query_whole(table.to_reader(), None, fmt)
        batch = table.combine_chunks().to_batches()
        text = "" if not batch else _serialise(batch[0], fmt, 0)
        if fmt == "json":
            text = "[" + text + "]"
        response = web.Response(status=200, body=text.encode("utf-8"))
        response.content_type = _CONTENT_TYPES[fmt]
        return response

    async def delete_database(self, request: web.Request) -> web.Response:
        name = request.query.get("db")
        if not name:
            raise _HttpError(400, "missing query parameter 'db'")
        if not self.engine.has_database(name):
            raise _json_error(404, f"database not found: {name}")
        await asyncio.wrap_future(self.pipeline.delete_database(name))
        return web.Response(status=200)

    # -- tables ---------------------------------------------------------------------------

    async def create_table(self, request: web.Request) -> web.Response:
        """``POST /api/v3/configure/table``: ``{"db","table","tags":[...],"fields":[...]}``."""
        data = await _json_body(request)
        usage = (
            'the request body must be {"db": "<name>", "table": "<name>", "tags": ["<tag>", ...],'
            ' "fields": [{"name": "<field>", "type": "utf8|int64|uint64|float64|bool"}, ...]}'
        )
        if not isinstance(data, dict):
            raise _HttpError(400, usage)
        database, table = data.get("db"), data.get("table")
        tags, fields = data.get("tags"), data.get("fields", [])
        if not isinstance(database, str) or not isinstance(table, str) or not table:
            raise _HttpError(400, usage)
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise _HttpError(400, usage)
        if not isinstance(fields, list):
            raise _HttpError(400, usage)
        field_types: dict[str, pa.DataType] = {}
        for item in fields:
            if not isinstance(item, dict) or not isinstance(item.get("name"), str):
                raise _HttpError(400, usage)
            dtype = _TABLE_FIELD_TYPES.get(str(item.get("type")))
            if dtype is None:
                raise _HttpError(
                    400,
                    f"field '{item['name']}' has unknown type {item.get('type')!r}: use utf8,"
                    " int64, uint64, float64 or bool",
                )
            field_types[item["name"]] = dtype
        try:
            future = self.pipeline.create_table(database, table, tags, field_types)
            await asyncio.wrap_future(future)
        except DatabaseNotFound as exc:
            raise _json_error(404, f"database not found: {exc.database}") from None
        except ServerError as exc:
            raise _json_error(exc.http_status, exc.message) from None
        return web.Response(status=200)

    async def delete_table(self, request: web.Request) -> web.Response:
        """``DELETE /api/v3/configure/table?db=&table=[&hard_delete_at=]``."""
        database, table = request.query.get("db"), request.query.get("table")
        if not database:
            raise _HttpError(400, "missing query parameter 'db'")
        if not table:
            raise _HttpError(400, "missing query parameter 'table'")
        hard = request.query.get("hard_delete_at", "")
        now = datetime.now(UTC)
        due: datetime | None = now + _DEFAULT_HARD_DELETE
        if hard == "now":
            due = now
        elif hard == "never":
            due = None
        elif hard not in ("", "default"):
            try:  # Core: chrono's parse_from_rfc3339 (date, time and offset all required)
                if not _RFC3339.fullmatch(hard):
                    raise ValueError(hard)
                due = max(now, datetime.fromisoformat(hard.upper().replace("Z", "+00:00")))
            except ValueError:
                raise _HttpError(
                    400,
                    f"invalid hard_delete_at {hard!r}: use now, never, default or an RFC3339 time",
                ) from None
        if not self.engine.has_database(database):
            raise _json_error(404, f"database not found: {database}")
        self.engine.purge_deleted()
        deleted = self.engine.deleted_tables(database)
        if not self.engine.has_table(database, table) and table not in deleted:
            raise _json_error(404, f"table not found: {table}")
        due_ns = None if due is None else int(due.timestamp() * 1e6) * 1000
        if table in deleted and hard in ("", "default"):
            due_ns = deleted[table]  # Core: a default re-delete keeps the purge time
        renamed = f"{table}-{now:%Y%m%dT%H%M%S}"  # Core's soft-delete name (deletion time, UTC)
        try:
            future = self.pipeline.delete_table(database, table, renamed, due_ns)
            await asyncio.wrap_future(future)
        except ServerError as exc:
            raise _json_error(exc.http_status, exc.message) from None
        return web.Response(status=200)

    # -- health ---------------------------------------------------------------------------

    async def health(self, request: web.Request) -> web.Response:
        return web.Response(status=200, text="OK", content_type="text/plain", charset="utf-8")

    async def ping(self, request: web.Request) -> web.Response:
        request_id = str(uuid.uuid4())
        body = {
            "product_name": "InfluxDB 3 Core",
            "version": VERSION,
            "revision": REVISION,
            "process_id": self.process_id,
        }
        response = web.json_response(body)
        response.headers["X-Influxdb-Version"] = VERSION
        response.headers["X-Influxdb-Build"] = "Core"
        response.headers["Request-Id"] = request_id
        response.headers["X-Request-Id"] = request_id
        return response


class _TooBig(Exception):
    pass


def _gunzip(raw: bytes, limit: int) -> bytes:
    """Every gzip member of ``raw`` (RFC 1952 allows several), at most ``limit`` bytes.

    A member without its trailer (truncated) or bytes after the last member that are not
    another member raise ValueError; a result over ``limit`` raises _TooBig.
    """
    out = bytearray()
    data = raw
    while True:
        member = isal_zlib.decompressobj(16 + zlib.MAX_WBITS)  # ISA-L: ~2x zlib's inflate
        out += member.decompress(data, limit + 1 - len(out))
        if len(out) > limit:
            raise _TooBig
        if not member.eof:
            raise ValueError("the gzip body is truncated (a member has no end)")
        data = member.unused_data
        if not data:
            return bytes(out)
        if not data.startswith(b"\x1f\x8b"):
            raise ValueError(f"{len(data)} bytes of trailing garbage after the gzip body")


def _next_batch(reader: pa.RecordBatchReader) -> pa.RecordBatch | None:
    try:
        return reader.read_next_batch()
    except StopIteration:
        return None


def _serialise(batch: pa.RecordBatch, fmt: str, rows_before: int) -> str:
    if fmt == "csv":
        return _csv_chunk(batch, header=rows_before == 0)
    if fmt == "jsonl":
        return "".join(_dumps(row) + "\n" for row in _rows(batch))
    text = ",".join(_dumps(row) for row in _rows(batch))
    return ("," + text) if rows_before and text else text


def build_app(
    engine: Any, pipeline: Any, authenticator: Any, executor: ThreadPoolExecutor
) -> web.Application:
    """The aiohttp application (routes as in Core's `all_paths.rs`)."""
    api = _Api(engine, pipeline, authenticator, executor)
    app = web.Application(middlewares=[api.middleware], client_max_size=MAX_REQUEST_SIZE)
    app.router.add_post("/api/v3/write_lp", api.write_lp)
    app.router.add_post("/api/v2/write", api.write_v2)
    app.router.add_post("/write", api.write_v1)
    for path, handler in (
        ("/api/v3/query_sql", api.query_sql),
        ("/api/v3/query_influxql", api.query_influxql),
    ):
        app.router.add_get(path, handler, allow_head=False)
        app.router.add_post(path, handler)
    app.router.add_post("/api/v3/configure/database", api.create_database)
    app.router.add_get("/api/v3/configure/database", api.list_databases, allow_head=False)
    app.router.add_delete("/api/v3/configure/database", api.delete_database)
    app.router.add_post("/api/v3/configure/table", api.create_table)
    app.router.add_delete("/api/v3/configure/table", api.delete_table)
    app.router.add_get("/health", api.health, allow_head=False)
    app.router.add_get("/api/v1/health", api.health, allow_head=False)
    app.router.add_get("/ping", api.ping, allow_head=False)
    app.router.add_post("/ping", api.ping)
    return app


class HttpServer:
    """Runs the aiohttp app on its own event loop in a background thread."""

    def __init__(
        self,
        engine: Any,
        pipeline: Any,
        authenticator: Any,
        host: str = "127.0.0.1",
        port: int | None = 0,
    ) -> None:
        self.engine = engine
        self.pipeline = pipeline
        self.authenticator = authenticator
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._executor = ThreadPoolExecutor(
            max_workers=max(2, min(8, (os.cpu_count() or 2) * 2)), thread_name_prefix="http-api"
        )

    def __repr__(self) -> str:
        return f"HttpServer(http://{self.host}:{self.port})"

    def start(self) -> int | None:
        """Bind and serve; returns the bound port (a free one when port=0; None without one)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._setup())
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._cleanup())
            loop.close()

        self._thread = threading.Thread(target=main, name="http-api-loop", daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            self._thread = None
            raise failure[0]
        return self.port

    def adopt(self, sock: Any) -> None:
        """Serve an already accepted connection (the shared Flight + HTTP port hands it over)."""
        loop, runner = self._loop, self._runner
        if loop is None or runner is None or runner.server is None:
            sock.close()
            return
        server = runner.server

        async def serve() -> None:
            await loop.connect_accepted_socket(server, sock)

        asyncio.run_coroutine_threadsafe(serve(), loop)

    async def _setup(self) -> None:
        app = build_app(self.engine, self.pipeline, self.authenticator, self._executor)
        # Handlers still running at shutdown (a client reading slowly) are cancelled after
        # SHUTDOWN_GRACE seconds: SIGTERM must not wait for them.
        self._runner = web.AppRunner(
            app, auto_decompress=False, access_log=None, shutdown_timeout=SHUTDOWN_GRACE
        )
        await self._runner.setup()
        if self.port is None:
            return  # no listener of its own: connections arrive through adopt()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

    async def _cleanup(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def stop(self) -> None:
        """Stop serving and wait for the loop thread; idempotent."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=SHUTDOWN_GRACE + 2)
        self._thread = None
        self._loop = None
        self._executor.shutdown(wait=False, cancel_futures=True)
