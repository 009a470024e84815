"""`influx-flight query` and `influx-flight downsample` (dispatched from influx_flight.cli).

Configured from the environment variables of InfluxDB 3's own CLI (INFLUXDB3_HOST_URL,
INFLUXDB3_DATABASE_NAME, INFLUXDB3_AUTH_TOKEN, INFLUXDB3_WRITE_URL) plus --host / --database
overrides. The token is read from the environment only (``--token-env NAME`` picks another
variable), so it never appears in argv, shell history or ``ps``. Any InfluxDB3Error ends the
command with its message on stderr and a non-zero exit status, without a traceback.

Module imports stay light: pyarrow is imported only when a command runs.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import IO, TYPE_CHECKING, Any

from ._config import ENV_AUTH_TOKEN, InfluxDB3Config
from ._exceptions import ConfigurationError, InfluxDB3Error
from ._options import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE

if TYPE_CHECKING:
    import pyarrow as pa

    from ._client import InfluxDB3Client

__all__ = ["add_downsample_arguments", "add_query_arguments", "run_downsample", "run_query"]

FORMATS = ("table", "csv", "json", "jsonl", "parquet")
_SUFFIX_FORMATS = {".parquet": "parquet", ".csv": "csv", ".json": "json", ".jsonl": "jsonl"}
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


# --- shared connection options ---------------------------------------------------------------


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "connection",
        "Defaults come from INFLUXDB3_HOST_URL, INFLUXDB3_DATABASE_NAME, INFLUXDB3_AUTH_TOKEN "
        "and INFLUXDB3_WRITE_URL.",
    )
    group.add_argument("--host", help="server URL (overrides INFLUXDB3_HOST_URL)")
    group.add_argument("--database", "-d", help="database (overrides INFLUXDB3_DATABASE_NAME)")
    group.add_argument(
        "--token-env",
        metavar="NAME",
        default=ENV_AUTH_TOKEN,
        help=f"environment variable holding the token (default {ENV_AUTH_TOKEN}); tokens are "
        "never taken from the command line",
    )
    group.add_argument("--write-url", help="HTTP base URL for writes (INFLUXDB3_WRITE_URL)")
    group.add_argument(
        "--timeout", type=float, help="query deadline in seconds (default 300; 0 = none)"
    )
    group.add_argument(
        "--insecure", action="store_true", help="do not verify the server's TLS certificate"
    )


def _add_language_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--language", "-l", choices=("sql", "influxql"), default="sql", help="query language (sql)"
    )


def _add_param_argument(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument(
        "--param", "-p", action="append", default=[], metavar="NAME=VALUE", help=help_text
    )


def _add_progress_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """``--progress`` / ``--no-progress``; ``args.progress`` is None when neither is given."""
    progress = parser.add_mutually_exclusive_group()
    progress.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help=f"show {what} on stderr (default: when stderr is a terminal)",
    )
    progress.add_argument("--no-progress", dest="progress", action="store_false")


def _config_from_args(args: argparse.Namespace) -> InfluxDB3Config:
    environ = os.environ
    token_env = args.token_env or ENV_AUTH_TOKEN
    token = environ.get(token_env)
    if args.token_env and args.token_env != ENV_AUTH_TOKEN and token is None:
        raise ConfigurationError(
            f"token: --token-env {token_env} was given but ${token_env} is not set; export it",
            field="token",
        )
    overrides: dict[str, Any] = {
        "host": args.host,
        "database": args.database,
        "token": token,
        "write_url": args.write_url,
    }
    if args.timeout is not None:
        overrides["query_timeout"] = args.timeout if args.timeout > 0 else "none"
    if args.insecure:
        overrides["verify_tls"] = False
    env = {k: v for k, v in environ.items() if k != ENV_AUTH_TOKEN}
    return InfluxDB3Config.from_env(env, **overrides)


def _fail(message: str, status: int = EXIT_ERROR) -> int:
    if not _INTERRUPTED.is_set():  # after Ctrl-C the cancellation error is expected noise
        print(f"influx-flight: error: {message}", file=sys.stderr)
    return status


#: Set on Ctrl-C; the hooks cancel what the command's worker thread is waiting for.
_INTERRUPTED = threading.Event()
_INTERRUPT_HOOKS: list[Any] = []


@contextlib.contextmanager
def _cancel_on_interrupt(cancel: Any) -> Iterator[None]:
    """While inside, Ctrl-C calls ``cancel()`` (e.g. ``client.cancel``) from the main thread."""
    _INTERRUPT_HOOKS.append(cancel)
    try:
        if _INTERRUPTED.is_set():
            cancel()
        yield
    finally:
        _INTERRUPT_HOOKS.remove(cancel)


def _run_guarded(body: Any) -> int:
    """Run a command body; Ctrl-C at any moment exits 130 with nothing partial kept.

    The body runs in a worker thread: the main thread only waits, so it takes SIGINT even
    while the worker is blocked inside gRPC (waiting for a first batch) where Python cannot
    raise KeyboardInterrupt. The interrupt hooks cancel the call; the worker unwinds and its
    export removes its temporary file; a second Ctrl-C leaves at once.
    """
    from ._interrupt import run_interruptibly

    _INTERRUPTED.clear()

    def cancel_all() -> None:
        _INTERRUPTED.set()
        for cancel in list(_INTERRUPT_HOOKS):
            with contextlib.suppress(Exception):
                cancel()

    try:
        # 30 s for the cancelled call to unwind and remove its temporary file
        return run_interruptibly(lambda: _run_body(body), cancel=cancel_all, grace=30)
    except KeyboardInterrupt:  # the first Ctrl-C, or a second one during the grace period
        print("influx-flight: interrupted; nothing partial was kept", file=sys.stderr)
        return EXIT_INTERRUPTED


def _run_body(body: Any) -> int:
    """Run a command body; turn our errors into a message and an exit status."""
    try:
        return int(body() or 0)
    except ConfigurationError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except InfluxDB3Error as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        print("influx-flight: interrupted; nothing partial was kept", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `influx-flight query ... | head`
        with contextlib.suppress(Exception):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the flush at exit
        return 0


# --- query ---------------------------------------------------------------------------------------


def add_query_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `influx-flight query`."""
    parser.add_argument("query", metavar="QUERY", help="SQL or InfluxQL text ('-' reads stdin)")
    _add_language_argument(parser)
    parser.add_argument(
        "--format",
        "-f",
        choices=FORMATS,
        help="output format (default: from --output's suffix, else table)",
    )
    parser.add_argument("--output", "-o", metavar="PATH", help="file or fsspec URL to write to")
    _add_param_argument(
        parser, "query parameter for $NAME (VALUE parsed as JSON when possible, else a string)"
    )
    parser.add_argument("--protocol", choices=("ticket", "flightsql"), default="ticket")
    parser.add_argument(
        "--compression",
        default=DEFAULT_COMPRESSION,
        help=f"Parquet compression ({DEFAULT_COMPRESSION})",
    )
    parser.add_argument(
        "--row-group-size",
        type=int,
        default=DEFAULT_ROW_GROUP_SIZE,
        metavar="ROWS",
        help=f"Parquet rows per row group ({DEFAULT_ROW_GROUP_SIZE:,})",
    )
    parser.add_argument("--split-by", metavar="WINDOW", help="Parquet: one file per window (1d)")
    parser.add_argument(
        "--max-rows",
        type=int,
        default=None,
        help="refuse results with more rows (table/json formats)",
    )
    _add_progress_arguments(parser, "rows and bytes")
    _add_connection_arguments(parser)


def parse_params(items: Sequence[str]) -> dict[str, Any]:
    """``["room=Kitchen", "n=3"]`` -> ``{"room": "Kitchen", "n": 3}``."""
    params: dict[str, Any] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or not name.strip():
            raise ConfigurationError(
                f"--param {item!r}: expected NAME=VALUE, e.g. --param room=Kitchen",
                field="params",
            )
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if isinstance(value, list | dict):
            value = raw
        params[name.strip().lstrip("$")] = value
    return params


class _ProgressLine:
    """A throttled one-line display on stderr, redrawn in place (at most every 0.2 s)."""

    def __init__(self, enabled: bool, stream: IO[str]) -> None:
        self.enabled = enabled
        self.stream = stream
        self.started = time.monotonic()
        self._last = 0.0
        self._shown = False

    def show(self, text: str, *, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        if not force and now - self._last < 0.2:
            return
        self._last = now
        self.stream.write(f"\r{text}   ")
        self.stream.flush()
        self._shown = True

    def done(self, message: str | None = None) -> None:
        """End the line (and print ``message`` on its own line) when progress is shown."""
        if not self.enabled:
            return
        if self._shown:
            self.stream.write("\n")
        if message:
            self.stream.write(message + "\n")
        self.stream.flush()


class _Progress(_ProgressLine):
    """`rows, bytes (rate)` of a query's output."""

    def __call__(self, rows: int, nbytes: int, *, force: bool = False) -> None:
        if self.enabled:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            text = f"{rows:,} rows, {_human_bytes(nbytes)} ({rows / elapsed:,.0f} rows/s)"
            self.show(text, force=force)


def _human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:,.0f} {unit}" if unit == "B" else f"{n:,.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def render_table(
    names: Sequence[str], records: Sequence[dict[str, Any]], max_width: int = 40
) -> str:
    """A plain aligned text table (timestamps ISO-8601 UTC, nulls empty)."""
    rows = [[_cell(record.get(n), max_width) for n in names] for record in records]
    widths = [max([len(n), *(len(r[i]) for r in rows)]) for i, n in enumerate(names)]
    out = [
        " | ".join(n.ljust(w) for n, w in zip(names, widths, strict=True)),
        "-+-".join("-" * w for w in widths),
    ]
    out += [" | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(line.rstrip() for line in out)


def _cell(value: Any, max_width: int) -> str:
    if value is None:
        return ""
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= max_width else text[: max_width - 1] + "…"


@contextlib.contextmanager
def _text_output(path: str | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        sys.stdout.flush()
        return
    import fsspec

    try:
        with fsspec.open(path, "w", encoding="utf-8") as f:
            yield f
    except OSError as exc:
        raise ConfigurationError(
            f"--output {path!r}: cannot write ({exc.strerror or exc})", field="output"
        ) from exc


def _choose_format(args: argparse.Namespace) -> str:
    if args.format:
        fmt = args.format
    elif args.output:
        suffix = os.path.splitext(str(args.output).split("?")[0])[1].lower()
        fmt = _SUFFIX_FORMATS.get(suffix, "table")
    else:
        fmt = "table"
    if fmt == "parquet" and not args.output:
        raise ConfigurationError(
            "--format parquet needs --output PATH (a file or an fsspec URL)", field="output"
        )
    if args.split_by and fmt != "parquet":
        raise ConfigurationError("--split-by only applies to --format parquet", field="split_by")
    return fmt


def run_query(args: argparse.Namespace) -> int:
    """`influx-flight query`: run one query and print or export it."""

    def body() -> int:
        from ._client import InfluxDB3Client

        text = sys.stdin.read() if args.query == "-" else args.query
        fmt = _choose_format(args)
        params = parse_params(args.param)
        config = _config_from_args(args)
        progress = _Progress(
            sys.stderr.isatty() if args.progress is None else args.progress, sys.stderr
        )
        with InfluxDB3Client(config) as client, _cancel_on_interrupt(client.cancel):
            try:
                return _export(client, text, params, fmt, args, progress)
            except KeyboardInterrupt:
                client.cancel()
                raise
            finally:
                progress.done()

    return _run_guarded(body)


def _export(
    client: InfluxDB3Client,
    text: str,
    params: dict[str, Any],
    fmt: str,
    args: argparse.Namespace,
    progress: _Progress,
) -> int:
    result = client.query(
        text, language=args.language, params=params or None, protocol=args.protocol
    )
    if fmt == "parquet":
        exported = result.to_parquet(
            args.output,
            compression=args.compression,
            row_group_size=args.row_group_size,
            split_by=args.split_by,
            on_progress=progress,
        )
        progress(exported.rows, exported.bytes, force=True)
        if not progress.enabled:
            print(
                f"wrote {exported.rows:,} rows ({_human_bytes(exported.bytes)}) to "
                f"{len(exported.files)} file(s) at {exported.path}",
                file=sys.stderr,
            )
        return 0
    if fmt == "table":
        records = result.to_records(max_rows=args.max_rows)
        with _text_output(args.output) as out:
            out.write(render_table(result.schema.names, records) + "\n")
        return 0
    if fmt == "csv":
        return _write_csv(result, args.output, progress)
    return _write_json(result, args.output, progress, lines=fmt == "jsonl", max_rows=args.max_rows)


def _write_csv(result: Any, output: str | None, progress: _Progress) -> int:
    """CSV streamed batch by batch (a failed export to a file keeps nothing)."""
    import pyarrow.csv as pacsv

    if output is None:
        with pacsv.CSVWriter(sys.stdout.buffer, result.schema) as writer:
            for batch in result:
                writer.write_batch(batch)
                progress(result.rows, result.bytes)
        sys.stdout.buffer.flush()
        return 0

    def write(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> None:
        with _atomic_output(output) as f, pacsv.CSVWriter(f, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
                progress(result.rows, result.bytes)

    result.consume(write)
    return 0


def _write_json(
    result: Any, output: str | None, progress: _Progress, *, lines: bool, max_rows: int | None
) -> int:
    from ._exceptions import ResultTooLargeError
    from ._results import batch_to_records

    def write(batches: Iterator[pa.RecordBatch], out: IO[str]) -> None:
        count = 0
        first = True
        if not lines:
            out.write("[")
        for batch in batches:
            count += batch.num_rows
            if max_rows is not None and count > max_rows:
                raise ResultTooLargeError(
                    f"The result has more than --max-rows={max_rows} rows; narrow the query or "
                    "export with --format parquet --output PATH."
                )
            for record in batch_to_records(batch):
                if lines:
                    out.write(json.dumps(record) + "\n")
                else:
                    out.write(("\n  " if first else ",\n  ") + json.dumps(record))
                first = False
            progress(result.rows, result.bytes)
        if not lines:
            out.write("]\n" if first else "\n]\n")

    if output is None:
        write(iter(result), sys.stdout)
        return 0

    def to_file(batches: Iterator[pa.RecordBatch], schema: pa.Schema) -> None:
        with _atomic_output(output, text=True) as f:
            write(batches, f)

    result.consume(to_file)
    return 0


@contextlib.contextmanager
def _atomic_output(path: str, *, text: bool = False) -> Iterator[Any]:
    """Write to a temporary sibling and move it into place only on success."""

    import fsspec

    from ._sinks import remove_stale_temporaries, temporary_name

    fs, fs_path = fsspec.core.url_to_fs(path)
    parent, name = os.path.split(fs_path) if "://" not in path else fs_path.rsplit("/", 1)
    if "://" not in path:
        remove_stale_temporaries(parent, name)  # left by a run that was killed
    tmp = (parent + "/" if parent else "") + temporary_name(name)
    try:
        if parent:
            fs.makedirs(parent, exist_ok=True)
        f = fs.open(tmp, "w" if text else "wb", **({"encoding": "utf-8"} if text else {}))
    except OSError as exc:
        raise ConfigurationError(
            f"--output {path!r}: cannot write ({exc.strerror or exc})", field="output"
        ) from exc
    try:
        with f:
            yield f
        fs.mv(tmp, fs_path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm(tmp)
        raise


# --- downsample ------------------------------------------------------------------------------


def add_downsample_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `influx-flight downsample`."""
    parser.add_argument("--source", required=True, help="source table (measurement)")
    parser.add_argument("--window", required=True, help="bucket width, e.g. 1h, 15m, 1d")
    parser.add_argument(
        "--agg",
        action="append",
        required=True,
        metavar="FIELD:FN[,FN]",
        help="aggregates per field, e.g. --agg temp:mean,max --agg hum:mean (repeatable)",
    )
    parser.add_argument(
        "--group-by", action="append", default=[], metavar="TAG", help="tags (repeatable or a,b)"
    )
    parser.add_argument("--target", required=True, help="table to write the buckets to")
    parser.add_argument("--target-database", help="database to write to (default: the source's)")
    parser.add_argument("--start", required=True, help="range start (RFC 3339, inclusive)")
    parser.add_argument("--end", required=True, help="range end (RFC 3339, exclusive)")
    _add_language_argument(parser)
    parser.add_argument("--offset", help="bucket offset from the epoch, e.g. 15m")
    parser.add_argument("--filter", help="extra predicate ANDed to the time range")
    parser.add_argument("--fill", help="fill: null, previous, linear or a number")
    parser.add_argument(
        "--chunk", help="query the range in chunks of this size (a window multiple)"
    )
    parser.add_argument("--align", choices=("strict", "widen"), default="strict")
    parser.add_argument("--time-zone", help="IANA zone for wall-clock buckets (InfluxQL)")
    parser.add_argument(
        "--with-time", action="store_true", help="also write selector times (SQL only)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the queries; read and write nothing"
    )
    parser.add_argument(
        "--output-format", choices=("text", "json"), default="text", help="summary format"
    )
    _add_connection_arguments(parser)


def parse_aggregates(items: Sequence[str]) -> dict[str, list[str]]:
    """``["temp:mean,max", "hum:mean"]`` -> ``{"temp": ["mean", "max"], "hum": ["mean"]}``."""
    out: dict[str, list[str]] = {}
    for item in items:
        field, sep, fns = item.rpartition(":")
        names = [f.strip() for f in fns.split(",") if f.strip()]
        if not sep or not field.strip() or not names:
            raise ConfigurationError(
                f"--agg {item!r}: expected FIELD:FN[,FN], e.g. --agg temp:mean,max",
                field="aggregates",
            )
        out.setdefault(field.strip(), [])
        out[field.strip()] += [n for n in names if n not in out[field.strip()]]
    return out


def _parse_fill(value: str | None) -> Any:
    if value is None:
        return None
    if value in ("null", "previous", "linear"):
        return value
    try:
        number = float(value)
    except ValueError:
        raise ConfigurationError(
            f"--fill {value!r}: expected null, previous, linear or a number", field="fill"
        ) from None
    return int(number) if number.is_integer() and "." not in value else number


def build_spec(args: argparse.Namespace) -> Any:
    """The DownsampleSpec described by the command-line options."""
    from ._downsample import DownsampleSpec

    group_by = [t.strip() for item in args.group_by for t in item.split(",") if t.strip()]
    return DownsampleSpec(
        source=args.source,
        window=args.window,
        aggregates=parse_aggregates(args.agg),
        target_measurement=args.target,
        offset=args.offset,
        group_by=tuple(group_by),
        filter=args.filter,
        fill=_parse_fill(args.fill),
        target_database=args.target_database,
        language=args.language,
        time_zone=args.time_zone,
        with_time=args.with_time,
        align=args.align,
    )


def _jsonable(value: Any) -> Any:
    import dataclasses
    import datetime as dt

    from .time import format_time

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def run_downsample(args: argparse.Namespace) -> int:
    """`influx-flight downsample`: aggregate [start, end) and write the buckets back."""

    def body() -> int:
        from ._client import InfluxDB3Client

        spec = build_spec(args)
        config = _config_from_args(args)
        with InfluxDB3Client(config) as client, _cancel_on_interrupt(client.cancel):
            try:
                result = client.downsample(
                    spec,
                    args.start,
                    args.end,
                    chunk=args.chunk,
                    target_database=args.target_database,
                    dry_run=args.dry_run,
                )
            except KeyboardInterrupt:
                client.cancel()
                raise
        summary = _jsonable(result)
        if args.output_format == "json":
            print(json.dumps(summary, indent=2))
        elif args.dry_run:
            for query in dict.fromkeys(summary.get("queries", [])):
                print(query)
            print(
                f"dry run: {len(summary.get('windows', []))} window(s) from {summary.get('start')} "
                f"to {summary.get('end')}; nothing read or written",
                file=sys.stderr,
            )
        else:
            print(
                f"downsampled {summary.get('rows_read', 0):,} bucket row(s) from "
                f"{spec.source!r} into {spec.target_measurement!r} "
                f"(database {summary.get('target_database')!r}): "
                f"{summary.get('points_written', 0):,} point(s) written in "
                f"{len(summary.get('windows', []))} window(s), "
                f"{summary.get('start')} to {summary.get('end')}"
            )
        return 0

    return _run_guarded(body)
