"""Operators for InfluxDB 3 over Arrow Flight: query to XCom, export to Parquet, downsample.

Importing this module is cheap (no pyarrow, pandas or gRPC): the hook and the core are imported
inside ``execute``, after any fork of the task runner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from airflow.sdk import AssetAlias, BaseOperator

from influx_flight import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE
from influx_flight.time import format_time, parse_time, to_datetime

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

DEFAULT_CONN_ID = "influxdb3_flight_default"
#: Rows InfluxDB3QueryOperator pushes to XCom at most, unless told otherwise.
DEFAULT_MAX_XCOM_ROWS = 10_000


def _infer_language(query: str | None, language: str | None) -> str | None:
    if language:
        return language
    if isinstance(query, str) and query.endswith(".influxql"):
        return "influxql"
    return None


class _InfluxDB3Operator(BaseOperator):
    """Connection plumbing shared by the operators: one hook per run, cancelled by on_kill."""

    template_fields: Sequence[str] = ("influxdb3_conn_id", "database")
    template_ext: Sequence[str] = (".sql", ".influxql")
    template_fields_renderers = {"query": "sql", "query_params": "json"}
    ui_color = "#22adf6"

    def __init__(
        self,
        *,
        influxdb3_conn_id: str = DEFAULT_CONN_ID,
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.influxdb3_conn_id = influxdb3_conn_id
        self.database = database
        self._hook: InfluxDB3FlightHook | None = None

    def get_hook(self) -> InfluxDB3FlightHook:
        """The run's hook (created in the task process, never at parse time)."""
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        if self._hook is None:
            self._hook = InfluxDB3FlightHook(
                influxdb3_conn_id=self.influxdb3_conn_id, database=self.database
            )
        return self._hook

    def on_kill(self) -> None:
        """Cancel the running Flight stream so the server stops work for a killed task."""
        if self._hook is not None:
            self._hook.cancel()

    @contextlib.contextmanager
    def _running(self) -> Iterator[InfluxDB3FlightHook]:
        """The run's hook, closed afterwards; permanent errors fail the task without retries."""
        from airflow_influx._errors import fail_fast_on_permanent_errors

        try:
            with fail_fast_on_permanent_errors():
                yield self.get_hook()
        finally:
            if self._hook is not None:
                self._hook.close()


class InfluxDB3QueryOperator(_InfluxDB3Operator):
    """Runs SQL or InfluxQL and pushes the rows to XCom as JSON-safe dicts.

    XCom lives in the metadata database, so the rows are guarded: more than ``max_rows`` fails
    the task with a message pointing to :class:`InfluxDB3ToParquetOperator`, which streams any
    size to object storage and pushes only the path.

    Example::

        InfluxDB3QueryOperator(
            task_id="kitchen",
            query="SELECT time, temp FROM home WHERE room = $room AND time >= $start",
            query_params={"room": "Kitchen", "start": "{{ data_interval_start }}"},
        )

    :param query: SQL or InfluxQL (templated; ``.sql`` / ``.influxql`` files are loaded).
    :param language: ``sql`` or ``influxql``; default: inferred from an ``.influxql`` file name,
        else the connection's ``query_language``.
    :param query_params: values for ``$name`` placeholders, bound by the server (templated).
    :param max_rows: the most rows pushed to XCom.
    :param influxdb3_conn_id: the ``influxdb3_flight`` connection (templated).
    :param database: overrides the connection's database (templated).
    """

    template_fields: Sequence[str] = (
        "query",
        "query_params",
        "language",
        *_InfluxDB3Operator.template_fields,
    )

    def __init__(
        self,
        *,
        query: str,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        max_rows: int = DEFAULT_MAX_XCOM_ROWS,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query = query
        self.language = _infer_language(query, language)
        self.query_params = query_params
        self.max_rows = max_rows

    def execute(self, context: Context) -> list[dict[str, Any]]:
        """Run the query; return at most ``max_rows`` JSON-safe records."""
        from influx_flight import ResultTooLargeError

        with self._running() as hook:
            result = hook.query(self.query, language=self.language, params=self.query_params)
            try:
                records = result.to_records(max_rows=self.max_rows)
            except ResultTooLargeError as exc:
                raise ResultTooLargeError(
                    f"Task {self.task_id!r}: the query returned more than max_rows="
                    f"{self.max_rows} rows, too many for XCom (it lives in the metadata "
                    "database). Use InfluxDB3ToParquetOperator to stream the result to a file or "
                    "object storage and pass the path, aggregate in the query, or raise max_rows."
                ) from exc
        self.log.info("Pushing %d row(s) to XCom", len(records))
        return records


class InfluxDB3ToParquetOperator(_InfluxDB3Operator):
    """Streams a query result to Parquet on any ``ObjectStoragePath`` / fsspec URL.

    The file appears atomically (written under a temporary name, moved into place when
    complete); a failed or killed run leaves nothing behind. With ``split_by`` the result is
    written as one file per time window under ``output_path`` (a directory). Pushes
    ``{"path", "files", "rows", "bytes"}`` to XCom and records each file as an Asset event on the
    task's ``AssetAlias`` outlet, so downstream DAGs can be scheduled on the export.

    Example::

        InfluxDB3ToParquetOperator(
            task_id="export_hour",
            query="SELECT * FROM home_1h WHERE time >= $start AND time < $end",
            query_params={"start": "{{ data_interval_start }}", "end": "{{ data_interval_end }}"},
            output_path="s3://aws_default@bucket/home/{{ ds }}/{{ data_interval_start.hour }}.parquet",
        )

    :param query: SQL or InfluxQL (templated; ``.sql`` / ``.influxql`` files are loaded).
    :param output_path: target file (or directory with ``split_by``), templated per run:
        ``file:///data/{{ ds }}/x.parquet``, ``s3://conn_id@bucket/key.parquet``, a local path,
        or an ``ObjectStoragePath``.
    :param language: ``sql`` or ``influxql``; default as for the query operator.
    :param query_params: values for ``$name`` placeholders (templated).
    :param compression: Parquet codec (``zstd``, ``snappy``, ``gzip``, ``lz4``, ``none``).
    :param row_group_size: rows per row group; default: the core's ``DEFAULT_ROW_GROUP_SIZE``.
    :param split_by: e.g. ``"1h"``: one file per window of the ``time`` column; ``output_path``
        is then a directory (files named by window start) or a template with ``{window_start}``,
        ``{date}`` or ``{hour}``.
    :param time_column: the column ``split_by`` windows on.
    :param asset_alias: name of the ``AssetAlias`` outlet the files are reported on; default
        ``influxdb3-parquet/<task_id>``; ``""`` disables it.
    """

    template_fields: Sequence[str] = (
        "query",
        "query_params",
        "language",
        "output_path",
        "compression",
        *_InfluxDB3Operator.template_fields,
    )

    def __init__(
        self,
        *,
        query: str,
        output_path: Any,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        compression: str = DEFAULT_COMPRESSION,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        split_by: str | None = None,
        time_column: str = "time",
        asset_alias: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query = query
        self.output_path = output_path
        self.language = _infer_language(query, language)
        self.query_params = query_params
        self.compression = compression
        self.row_group_size = row_group_size
        self.split_by = split_by
        self.time_column = time_column
        alias_name = f"influxdb3-parquet/{self.task_id}" if asset_alias is None else asset_alias
        self.asset_alias = AssetAlias(name=alias_name) if alias_name else None
        if self.asset_alias is not None:
            self.outlets = [*self.outlets, self.asset_alias]

    def _destination(self) -> Any:
        """The rendered ``output_path`` as an ObjectStoragePath when Airflow knows the scheme.

        ObjectStoragePath resolves ``s3://conn_id@bucket/...`` credentials from Airflow
        connections; schemes Airflow has no filesystem for (``memory://``) and plain local paths
        go to fsspec as they are.
        """
        from airflow.sdk import ObjectStoragePath

        path = self.output_path
        if isinstance(path, ObjectStoragePath) or "://" not in str(path):
            return path
        try:
            obj = ObjectStoragePath(str(path))
            obj.fs  # noqa: B018 - raises ValueError for schemes without a registered filesystem
        except ValueError:
            return str(path)
        return obj

    def execute(self, context: Context) -> dict[str, Any]:
        """Stream the result to Parquet; push path, files, rows and bytes."""
        from airflow.sdk import Asset

        options: dict[str, Any] = {
            "compression": self.compression,
            "row_group_size": self.row_group_size,
        }
        if self.split_by:
            options["split_by"] = self.split_by
            options["time_column"] = self.time_column
        with self._running() as hook:
            result = hook.query(self.query, language=self.language, params=self.query_params)
            exported = result.to_parquet(self._destination(), **options)
        summary = exported.to_dict()
        self.log.info(
            "Wrote %d row(s), %d byte(s) to %d file(s) at %s",
            summary["rows"],
            summary["bytes"],
            len(summary["files"]),
            summary["path"],
        )
        if self.asset_alias is not None:
            events = context["outlet_events"][self.asset_alias]
            for f in summary["files"]:
                events.add(Asset(uri=_asset_uri(f["path"])), extra={"rows": f["rows"]})
        return summary


def _asset_uri(path: str) -> str:
    """An Asset URI for a written file: file:// for local paths, no credentials in userinfo."""
    from urllib.parse import urlsplit, urlunsplit

    if "://" not in path:
        from pathlib import Path

        return Path(path).absolute().as_uri()
    parts = urlsplit(path)
    if "@" in parts.netloc:
        parts = parts._replace(netloc=parts.netloc.rsplit("@", 1)[1])
    return urlunsplit(parts)


class InfluxDB3DownsampleOperator(_InfluxDB3Operator):
    """Aggregates raw data into windows and writes them back, over the run's data interval.

    Give either ``spec`` (the core's ``DownsampleSpec``, or a dict of its fields) or a raw
    ``query`` whose ``$start`` / ``$end`` bound the interval; the query's rows are written to
    ``target_measurement`` with ``target_tags`` as tags. Re-runs and backfills are idempotent:
    windows start at deterministic timestamps, so a rerun overwrites the same points.
    Pushes what was read and written.

    Example::

        InfluxDB3DownsampleOperator(
            task_id="home_1h",
            spec=DownsampleSpec(source="home", window="1h", target_measurement="home_1h",
                                aggregates={"temp": ["mean", "max"]}, group_by=["room"]),
        )

    :param spec: a ``DownsampleSpec`` or a dict of its keyword arguments (templated).
    :param query: raw SQL or InfluxQL instead of a spec (templated; files are loaded).
    :param language: the raw query's language; default as for the query operator.
    :param query_params: extra ``$name`` values for the raw query (templated).
    :param target_measurement: where the raw query's rows are written.
    :param target_tags: columns of the raw query's result written as tags.
    :param target_database: database to write to; default: the connection's.
    :param start: interval start (templated); default: the run's ``data_interval_start``.
    :param end: interval end (templated); default: the run's ``data_interval_end``.
    :param chunk: with ``spec``, query long intervals in chunks of this many whole windows
        (e.g. ``"1d"`` for backfills of months).
    """

    template_fields: Sequence[str] = (
        "spec",
        "query",
        "query_params",
        "language",
        "target_measurement",
        "target_database",
        "start",
        "end",
        *_InfluxDB3Operator.template_fields,
    )

    def __init__(
        self,
        *,
        spec: Any = None,
        query: str | None = None,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        target_measurement: str | None = None,
        target_tags: Sequence[str] | None = None,
        target_database: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        chunk: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if (spec is None) == (query is None):
            raise ValueError(
                "InfluxDB3DownsampleOperator needs exactly one of spec= (a DownsampleSpec or "
                "dict) or query= (raw SQL/InfluxQL with $start/$end)"
            )
        if query is not None and not target_measurement:
            raise ValueError("query= needs target_measurement= (where to write the rows)")
        self.spec = spec
        self.query = query
        self.language = _infer_language(query, language)
        self.query_params = query_params
        self.target_measurement = target_measurement
        self.target_tags = list(target_tags or [])
        self.target_database = target_database
        self.start = start
        self.end = end
        self.chunk = chunk

    def _interval(self, context: Context) -> tuple[datetime, datetime]:
        start = _as_datetime(self.start, "start") or context.get("data_interval_start")
        end = _as_datetime(self.end, "end") or context.get("data_interval_end")
        if start is None or end is None:
            raise ValueError(
                f"Task {self.task_id!r}: no interval to downsample; this run has no data "
                "interval (manual run without a timetable?), so pass start= and end="
            )
        if end == start:
            raise ValueError(
                f"Task {self.task_id!r}: the run's data interval is empty ({start}); Airflow 3 "
                "turns a cron string like '@hourly' into a trigger timetable without data "
                "intervals. Schedule the DAG with CronDataIntervalTimetable('@hourly', "
                "timezone='UTC') or pass start= and end="
            )
        if end < start:
            raise ValueError(f"Task {self.task_id!r}: end {end} is not after start {start}")
        return start, end

    def execute(self, context: Context) -> dict[str, Any]:
        """Downsample ``[start, end)`` and write the windows back; return the counts."""
        start, end = self._interval(context)
        with self._running() as hook:
            if self.spec is not None:
                summary = self._run_spec(hook, start, end)
            else:
                summary = self._run_query(hook, start, end)
        self.log.info(
            "Downsampled [%s, %s): read %s row(s), wrote %s point(s)",
            start,
            end,
            summary.get("rows_read"),
            summary.get("rows_written"),
        )
        return summary

    def _run_spec(self, hook: InfluxDB3FlightHook, start: datetime, end: datetime) -> dict:
        from influx_flight import DownsampleSpec

        spec = self.spec if isinstance(self.spec, DownsampleSpec) else DownsampleSpec(**self.spec)
        options: dict[str, Any] = {"target_database": self.target_database}
        if self.chunk:
            options["chunk"] = self.chunk
        result = hook.get_client().downsample(spec, start, end, **options)
        return {
            "mode": "spec",
            "start": format_time(result.start),
            "end": format_time(result.end),
            "rows_read": result.rows_read,
            "rows_written": result.points_written,
            "rows_skipped": result.rows_skipped,
            "windows": [[format_time(lo), format_time(hi)] for lo, hi in result.windows],
            "source": spec.source,
            "target_measurement": spec.target_measurement,
            "target_database": result.target_database,
        }

    def _run_query(self, hook: InfluxDB3FlightHook, start: datetime, end: datetime) -> dict:
        params = {**(self.query_params or {}), "start": format_time(start), "end": format_time(end)}
        settings = hook.get_settings()
        # The core's one query -> write-back loop: streams batches, drops InfluxQL's
        # iox::measurement column, restarts from scratch on a transient failure.
        written = hook.get_client().write_back(
            self.query or "",
            measurement=self.target_measurement or "",
            tags=self.target_tags,
            language=self.language or hook.query_language or settings.query_language,
            protocol=hook.protocol or settings.protocol,
            params=params,
            target_database=self.target_database,
        )
        return {
            "mode": "query",
            "start": format_time(start),
            "end": format_time(end),
            "rows_read": written.rows,
            "rows_written": written.lines_written,
            "rows_skipped": written.rows_skipped,
            "target_measurement": self.target_measurement,
            "target_database": self.target_database or hook.get_config().database,
        }


def _as_datetime(value: datetime | str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    from influx_flight import ConfigurationError

    try:
        return to_datetime(parse_time(str(value), name))
    except ConfigurationError:
        raise ValueError(
            f"{name}={value!r} is not an ISO-8601 date-time; use e.g. '2024-01-01T00:00:00Z' or "
            "'{{ data_interval_start | ts }}'"
        ) from None
