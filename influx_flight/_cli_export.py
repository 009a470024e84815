"""`influx-flight export`: a time range as a Hive-partitioned Parquet dataset, window by window.

Resumable: re-running the same command skips the windows already written and commits the
dataset (``_SUCCESS``) once all are there; ``--overwrite`` re-exports them. Progress is shown on
a terminal and nothing is printed otherwise (the exit status tells scripts how it went).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._cli_commands import (
    _add_connection_arguments,
    _add_language_argument,
    _add_param_argument,
    _add_progress_arguments,
    _cancel_on_interrupt,
    _config_from_args,
    _human_bytes,
    _ProgressLine,
    _run_guarded,
    parse_params,
)
from ._exceptions import ConfigurationError
from ._options import DEFAULT_COMPRESSION

__all__ = ["add_export_arguments", "run_export"]


def add_export_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `influx-flight export`."""
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "query",
        nargs="?",
        metavar="QUERY",
        help="SQL/InfluxQL with $start and $end placeholders, bound to each window "
        "('-' reads stdin)",
    )
    what.add_argument("--table", "-t", help="export SELECT * of this table (instead of QUERY)")
    parser.add_argument("--start", required=True, help="range start, ISO-8601 (UTC if no zone)")
    parser.add_argument("--end", required=True, help="range end (exclusive)")
    parser.add_argument("--window", default="1h", help="one file per window (default 1h)")
    parser.add_argument(
        "--output", "-o", required=True, help="dataset directory or fsspec URL (s3://bucket/x/)"
    )
    parser.add_argument(
        "--concurrency", "-j", type=int, default=None, help="windows exported at once (default 2)"
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="re-export windows that are already written"
    )
    _add_language_argument(parser)
    _add_param_argument(parser, "extra query parameter (repeatable)")
    parser.add_argument(
        "--compression",
        default=DEFAULT_COMPRESSION,
        help=f"Parquet compression ({DEFAULT_COMPRESSION})",
    )
    _add_progress_arguments(parser, "windows, rows and bytes")
    _add_connection_arguments(parser)


class _DatasetProgressLine(_ProgressLine):
    """Windows done, rows, bytes and rate of a dataset export."""

    def __call__(self, p: Any, *, force: bool = False) -> None:
        if self.enabled:
            skipped = f" ({p.windows_skipped} already done)" if p.windows_skipped else ""
            self.show(
                f"{p.windows_done}/{p.windows_total} windows{skipped}, {p.rows:,} rows, "
                f"{_human_bytes(p.bytes)}, {p.rows_per_second:,.0f} rows/s",
                force=force,
            )


def run_export(args: argparse.Namespace) -> int:
    """`influx-flight export`: run the windows, commit the dataset."""

    def body() -> int:
        from ._client import InfluxDB3Client
        from ._dataset import (
            DEFAULT_EXPORT_CONCURRENCY,
            DatasetProgress,
            export_dataset,
            window_query,
        )

        if args.table:
            query = window_query(args.table)
        else:
            query = sys.stdin.read() if args.query == "-" else args.query
        concurrency = DEFAULT_EXPORT_CONCURRENCY if args.concurrency is None else args.concurrency
        if concurrency < 1:
            raise ConfigurationError("--concurrency: expected 1 or more", field="concurrency")
        enabled = sys.stderr.isatty() if args.progress is None else args.progress
        progress = _DatasetProgressLine(enabled, sys.stderr)
        config = _config_from_args(args)
        with InfluxDB3Client(config) as client, _cancel_on_interrupt(client.cancel):
            try:
                result = export_dataset(
                    client,
                    query,
                    args.output,
                    start=args.start,
                    end=args.end,
                    window=args.window,
                    concurrency=concurrency,
                    overwrite=args.overwrite,
                    language=args.language,
                    params=parse_params(args.param) or None,
                    compression=args.compression,
                    on_progress=progress,
                )
            except BaseException:
                progress.done()
                raise
        n = len(result.files)
        progress(
            DatasetProgress(n, n, result.skipped, result.rows, result.bytes, result.seconds),
            force=True,
        )
        progress.done(
            f"committed {result.path}: {len(result.files)} windows ({result.written} written, "
            f"{result.skipped} already done), {result.rows:,} rows, "
            f"{_human_bytes(result.bytes)} in {result.seconds:.1f} s"
        )
        return 0

    return _run_guarded(body)
