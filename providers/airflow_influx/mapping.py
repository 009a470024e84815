"""Fan-out on Airflow's own executors: a range as window kwargs for dynamic task mapping.

Why: a day, a month or a year of exports and downsampling outgrows one task. Airflow already
knows how to spread work over workers (LocalExecutor processes, Celery workers, Kubernetes pods)
when a task is mapped; these helpers only turn a range, usually the run's data interval, into
the list that ``.expand_kwargs(...)`` maps over, one aligned window per task instance:

* ``parquet_window_kwargs`` for ``InfluxDB3ToParquetOperator``: ``query_params`` carrying
  ``$start``/``$end`` and an ``output_path`` in the Hive layout of the core's windowed dataset
  export (``<dataset>/date=2024-01-01/hour=06/part-0.parquet``). Each file appears atomically,
  so a failed mapped task is retried alone and never leaves a partial file.
* ``downsample_window_kwargs`` for ``InfluxDB3DownsampleOperator``: ``start``/``end``.
* ``commit_parquet_dataset`` runs after the mapped tasks: it checks that every window has its
  file and writes the ``_SUCCESS`` manifest (files, rows, query) that downstream readers wait for.

Example::

    @task
    def hours(data_interval_start=None, data_interval_end=None):
        return parquet_window_kwargs(data_interval_start, data_interval_end, "1h", DATASET)

    export = InfluxDB3ToParquetOperator.partial(task_id="export", query=QUERY).expand_kwargs(
        hours()
    )

Cheap to import (no pyarrow, no gRPC): DAG files may import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

__all__ = ["commit_parquet_dataset", "downsample_window_kwargs", "parquet_window_kwargs"]

Instant = datetime | str | int
Window = str | timedelta


def downsample_window_kwargs(start: Instant, end: Instant, window: Window = "1h") -> list[dict]:
    """``[{"start": ..., "end": ...}, ...]``: one aligned window of ``[start, end)`` per mapped
    ``InfluxDB3DownsampleOperator`` (RFC 3339 UTC strings, JSON-safe for XCom)."""
    from influx_flight import plan_windows

    return [w.to_kwargs() for w in plan_windows(start, end, window)]


def parquet_window_kwargs(
    start: Instant,
    end: Instant,
    window: Window,
    dataset: str,
    *,
    query_params: Mapping[str, Any] | None = None,
) -> list[dict]:
    """``[{"query_params": {..., "start", "end"}, "output_path": ...}, ...]``: one window per
    mapped ``InfluxDB3ToParquetOperator``, writing the windowed dataset's layout under
    ``dataset`` (a directory, ``file://`` or ``s3://conn_id@bucket/prefix`` URL)."""
    from influx_flight import plan_windows

    if not isinstance(dataset, str) or not dataset.strip():
        raise ValueError(f"dataset: expected a directory or URL prefix, got {dataset!r}")
    root = dataset.rstrip("/")
    out = []
    for w in plan_windows(start, end, window):
        out.append(
            {
                "query_params": {**dict(query_params or {}), **w.to_kwargs()},
                "output_path": f"{root}/{w.file_path}",
            }
        )
    return out


def _storage_path(path: str) -> Any:
    """An ObjectStoragePath for URLs Airflow has a filesystem for (connection credentials),
    else the string as is (local paths, memory://)."""
    if "://" not in path:
        return path
    from airflow.sdk import ObjectStoragePath

    try:
        obj = ObjectStoragePath(path)
        obj.fs  # noqa: B018 - raises ValueError for schemes without a registered filesystem
    except ValueError:
        return path
    return obj


def commit_parquet_dataset(
    query: str,
    dataset: str,
    start: Instant,
    end: Instant,
    window: Window = "1h",
    *,
    language: str = "sql",
    query_params: Mapping[str, Any] | None = None,
    database: str | None = None,
) -> dict[str, Any]:
    """Write ``<dataset>/_SUCCESS`` once every window of ``[start, end)`` has its file; returns
    the manifest summary (JSON-safe). Raises ExportError naming the missing windows."""
    from influx_flight import commit_dataset

    result = commit_dataset(
        query,
        _storage_path(dataset.rstrip("/")),
        start=start,
        end=end,
        window=window,
        language=language,
        params={k: v for k, v in (query_params or {}).items() if k not in ("start", "end")},
        database=database,
    )
    summary = result.to_dict()
    summary.pop("files", None)  # XCom stays small; the manifest lists them
    summary["windows"] = len(result.files)
    return summary
