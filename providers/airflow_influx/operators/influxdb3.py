"""Operators for InfluxDB 3 over Arrow Flight: query to XCom, export to Parquet, downsample.

Importing this module is cheap (no pyarrow, pandas or gRPC): the hook and the core are imported
inside ``execute``, after any fork of the task runner.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from airflow_influx._compat import Asset, AssetAlias, BaseOperator, conf
from influx_flight import DEFAULT_COMPRESSION, DEFAULT_ROW_GROUP_SIZE
from influx_flight.time import format_time, parse_time, to_datetime

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

T = TypeVar("T")

DEFAULT_CONN_ID = "influxdb3_flight_default"
#: Rows InfluxDB3QueryOperator pushes to XCom at most, unless told otherwise.
DEFAULT_MAX_XCOM_ROWS = 10_000


def _infer_language(query: str | None, language: str | None) -> str | None:
    if language:
        return language
    if isinstance(query, str) and query.endswith(".influxql"):
        return "influxql"
    return None


def _query_argument(query: str | None, sql: str | None, *, required: bool = True) -> str | None:
    """``query=`` or its common.sql alias ``sql=`` (one of them, or the same text twice)."""
    if query is not None and sql is not None and query != sql:
        raise ValueError("pass the query once: query= or its alias sql=, not both")
    text = query if query is not None else sql
    if text is None and required:
        raise ValueError("a query is required: pass query= (or its alias sql=)")
    return text


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

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:
        """As ``BaseOperator.partial``, with the Asset the tasks emit among their outlets when
        the partial arguments fix it: Airflow knows a mapped task's outlets only from these when
        it parses the DAG (the expanded tasks' ``__init__`` runs at run time), and Airflow 3.0
        fails a task whose outlet Asset it does not know."""
        outlet = cls._fixed_outlet(kwargs)
        if outlet is not None:
            kwargs["outlets"] = [*(kwargs.get("outlets") or []), outlet]
        return super().partial(**kwargs)  # type: ignore[misc]

    @staticmethod
    def _fixed_outlet(kwargs: Mapping[str, Any]) -> Any:
        """The Asset these keyword arguments make the operator emit; None if none or unknown."""
        return None

    def _add_outlet(self, outlet: Any) -> None:
        if outlet not in self.outlets:  # already there when given to partial()
            self.outlets = [*self.outlets, outlet]

    def get_hook(self) -> InfluxDB3FlightHook:
        """The run's hook (created in the task process, never at parse time)."""
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        if self._hook is None:
            self._hook = InfluxDB3FlightHook(
                influxdb3_conn_id=self.influxdb3_conn_id, database=self.database
            )
        return self._hook

    def on_kill(self) -> None:
        """Cancel the running query on the server (``execution_timeout``, a kill, a mark-failed)."""
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

    def _interruptible(self, work: Callable[[], T]) -> T:
        """Run blocking query work so ``execution_timeout`` and kills stop it (and the server)."""
        from influx_flight import run_interruptibly

        hook = self.get_hook()
        hook.get_client()  # created here, so a cancel from this thread reaches it
        return run_interruptibly(work, cancel=hook.cancel)

    def _log_query(self, hook: InfluxDB3FlightHook, query: str, language: str | None, params: Any):
        from airflow_influx._logging import log_query

        settings = hook.get_settings()
        log_query(
            self.log,
            query,
            language=language or settings.query_language,
            database=settings.config.database,
            params=params,
            protocol=settings.protocol,
        )

    # -- OpenLineage ------------------------------------------------------------------------

    def _lineage_inputs(self) -> list[str]:
        """Tables this task read (``database.table``); overridden per operator."""
        return []

    def _lineage_outputs(self) -> list[Any]:
        return []

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> Any:
        """Inputs (the queried tables), outputs (the written table or Parquet location), SQL."""
        from airflow_influx._lineage import operator_lineage

        return operator_lineage(self)


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
        query: str | None = None,
        sql: str | None = None,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        max_rows: int = DEFAULT_MAX_XCOM_ROWS,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query = _query_argument(query, sql)
        self.language = _infer_language(self.query, language)
        self.query_params = query_params
        self.max_rows = max_rows
        self.deferrable = deferrable
        self.poll_interval = poll_interval

    def _lineage_inputs(self) -> list[str]:
        from airflow_influx._lineage import tables_in_query

        return tables_in_query(self.query or "", self.language)

    def execute(self, context: Context) -> list[dict[str, Any]] | None:
        """Run the query (here, or on the triggerer); return at most ``max_rows`` records."""
        if self.deferrable:
            self._defer_query()
            return None
        import time

        from airflow_influx._logging import log_done
        from influx_flight import ResultTooLargeError

        with self._running() as hook:
            self._log_query(hook, self.query or "", self.language, self.query_params)
            started = time.perf_counter()
            result = hook.query(self.query or "", language=self.language, params=self.query_params)
            try:
                records = self._interruptible(lambda: result.to_records(max_rows=self.max_rows))
            except ResultTooLargeError as exc:
                raise ResultTooLargeError(
                    f"Task {self.task_id!r}: the query returned more than max_rows="
                    f"{self.max_rows} rows, too many for XCom (it lives in the metadata "
                    "database). Use InfluxDB3ToParquetOperator to stream the result to a file or "
                    "object storage and pass the path, aggregate in the query, or raise max_rows."
                ) from exc
            log_done(
                self.log,
                rows=len(records),
                nbytes=getattr(result, "bytes", None),
                seconds=time.perf_counter() - started,
            )
        self.log.info("Pushing %d row(s) to XCom", len(records))
        return records

    def _defer_query(self) -> None:
        from datetime import timedelta

        from airflow_influx.triggers.influxdb3 import InfluxDB3QueryTrigger

        self.log.info("Deferring: the query runs on the triggerer")
        timeout = self.execution_timeout
        self.defer(
            trigger=InfluxDB3QueryTrigger(
                influxdb3_conn_id=self.influxdb3_conn_id,
                query=self.query or "",
                language=self.language,
                query_params=dict(self.query_params) if self.query_params else None,
                database=self.database,
                max_rows=self.max_rows,
                timeout=timeout.total_seconds() if isinstance(timeout, timedelta) else None,
            ),
            method_name="execute_complete",
            timeout=timeout,
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict[str, Any]]:
        """Resume with the trigger's rows (or fail with its message; too many rows never retry)."""
        from airflow.providers.common.compat.sdk import AirflowException, AirflowFailException

        status = event.get("status")
        if status == "success":
            self.log.info(
                "Query done on the triggerer: %d row(s) in %.3f s; pushing them to XCom",
                len(event["records"]),
                event.get("seconds", 0.0),
            )
            return event["records"]
        message = f"Task {self.task_id!r}: {event.get('message', event)}"
        if status == "too_large":
            message += (
                " Use InfluxDB3ToParquetOperator to stream the result to a file or object "
                "storage and pass the path, aggregate in the query, or raise max_rows."
            )
        if not event.get("retryable", False):
            raise AirflowFailException(message)
        raise AirflowException(message)


class InfluxDB3ToParquetOperator(_InfluxDB3Operator):
    """Streams a query result to Parquet on any ``ObjectStoragePath`` / fsspec URL.

    The file appears atomically (written under a temporary name, moved into place when
    complete); a failed or killed run leaves nothing behind. With ``split_by`` the result is
    written as one file per time window under ``output_path`` (a directory). Pushes
    ``{"path", "files", "rows", "bytes"}`` to XCom.

    **Assets.** The export is one Asset per destination, not one per file, and each run's event
    carries the destination, files and rows in its ``extra``:

    - ``asset=`` names it yourself: an ``Asset``, an asset URI, or a plain name
      (``asset="home_1h_parquet"`` is ``Asset(name="home_1h_parquet")``). This is the way for a
      destination that starts with a template (``{{ var.value.export_base }}/...``): the Asset
      is known when the DAG is parsed, so consumers can be scheduled on it, whatever the
      template renders to in each deployment.
    - By default the fixed part of ``output_path`` up to its first template (``s3://bucket/home_1h``
      for ``s3://aws_default@bucket/home_1h/{{ ds }}/x.parquet``) is the outlet, declared at parse
      time.
    - When nothing names a directory before the first template (``{{ base }}/home_1h/...``,
      ``s3://{{ bucket }}/...``) and no ``asset=`` is given, nothing is known at parse time: the
      rendered destination (up to the first template's end plus the fixed directories after it,
      e.g. ``file:///exports/home_1h``, the same every run) is reported through an
      ``AssetAlias``; Airflow creates that Asset at the first run (and logs that it does).
    - ``asset=False``: no Asset.

    Example::

        InfluxDB3ToParquetOperator(
            task_id="export_hour",
            sql="SELECT * FROM home_1h WHERE time >= $start AND time < $end",
            query_params={"start": "{{ data_interval_start }}", "end": "{{ data_interval_end }}"},
            output_path="s3://aws_default@bucket/home/{{ ds }}/{{ data_interval_start.hour }}.parquet",
        )

    :param query: SQL or InfluxQL (templated; ``.sql`` / ``.influxql`` files are loaded).
    :param sql: alias of ``query`` (common.sql's name).
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
    :param asset: the destination Asset (``Asset``, URI, or name); default: derived from
        ``output_path``; ``False``: report none.
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
        output_path: Any,
        query: str | None = None,
        sql: str | None = None,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        compression: str = DEFAULT_COMPRESSION,
        row_group_size: int = DEFAULT_ROW_GROUP_SIZE,
        split_by: str | None = None,
        time_column: str = "time",
        asset: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.query = _query_argument(query, sql)
        self.output_path = output_path
        self.language = _infer_language(self.query, language)
        self.query_params = query_params
        self.compression = compression
        self.row_group_size = row_group_size
        self.split_by = split_by
        self.time_column = time_column
        self.asset: Any = None
        self.asset_alias: Any = None
        # Where the export goes, from output_path before rendering: its fixed prefix, or else
        # the template of its destination (rendered per run).
        self._fixed_destination = _static_prefix(output_path)
        self._destination_template = (
            None if self._fixed_destination else _destination_template(output_path, split_by)
        )
        self.asset = self._fixed_outlet({"asset": asset, "output_path": output_path})
        if self.asset is None and asset is not False:
            self.asset_alias = AssetAlias(name=f"influxdb3-parquet/{self.task_id}")
        outlet = self.asset or self.asset_alias
        if outlet is not None:
            self._add_outlet(outlet)
        self._exported: dict[str, Any] | None = None

    @staticmethod
    def _fixed_outlet(kwargs: Mapping[str, Any]) -> Any:
        """``asset=`` as an Asset, else the Asset of output_path's fixed prefix."""
        asset = kwargs.get("asset")
        if asset is False:
            return None
        if asset is not None:
            return _as_asset(asset)
        prefix = _static_prefix(kwargs["output_path"]) if "output_path" in kwargs else None
        return None if prefix is None else Asset(uri=prefix)

    def _lineage_inputs(self) -> list[str]:
        from airflow_influx._lineage import tables_in_query

        return tables_in_query(self.query or "", self.language)

    def _lineage_outputs(self) -> list[Any]:
        from airflow_influx._lineage import file_dataset

        if self._exported is None:
            return []
        return [file_dataset(self._exported["path"])]

    def _destination(self) -> Any:
        """The rendered ``output_path`` as an ObjectStoragePath when Airflow knows the scheme.

        ObjectStoragePath resolves ``s3://conn_id@bucket/...`` credentials from Airflow
        connections; schemes Airflow has no filesystem for (``memory://``) and plain local paths
        go to fsspec as they are.
        """
        from airflow_influx._compat import ObjectStoragePath

        path = self.output_path
        if isinstance(path, ObjectStoragePath) or "://" not in str(path):
            return path
        try:
            obj = ObjectStoragePath(str(path))
            obj.fs  # noqa: B018 - raises ValueError for schemes without a registered filesystem
        except ValueError:
            return str(path)
        return obj

    def _rendered_destination(self, context: Context, written: str) -> str:
        """The run's destination as a URI, the same every run for a given deployment.

        The leading template and the fixed directories after it, rendered (``{{ base }}/home_1h``
        of ``{{ base }}/home_1h/{{ ds }}/x.parquet``); else the fixed prefix of ``output_path``;
        else what this run wrote to.
        """
        if self._destination_template is not None:
            rendered = self.render_template(self._destination_template, context)
            return _asset_uri(str(rendered).rstrip("/"))
        if self._fixed_destination is not None:
            return self._fixed_destination
        return _asset_uri(written.rstrip("/") if self.split_by else written.rsplit("/", 1)[0])

    def execute(self, context: Context) -> dict[str, Any]:
        """Stream the result to Parquet; push path, files, rows and bytes."""
        import time

        from airflow_influx._logging import log_done

        options: dict[str, Any] = {
            "compression": self.compression,
            "row_group_size": self.row_group_size,
        }
        if self.split_by:
            options["split_by"] = self.split_by
            options["time_column"] = self.time_column
        with self._running() as hook:
            self._log_query(hook, self.query or "", self.language, self.query_params)
            started = time.perf_counter()
            result = hook.query(self.query or "", language=self.language, params=self.query_params)
            destination = self._destination()
            exported = self._interruptible(lambda: result.to_parquet(destination, **options))
            log_done(
                self.log,
                rows=exported.rows,
                nbytes=getattr(result, "bytes", None),
                seconds=time.perf_counter() - started,
                what="to Parquet",
            )
        summary = exported.to_dict()
        self._exported = summary
        self.log.info(
            "Wrote %d row(s), %d byte(s) to %d file(s) at %s",
            summary["rows"],
            summary["bytes"],
            len(summary["files"]),
            summary["path"],
        )
        destination = self._rendered_destination(context, summary["path"])
        extra = {
            "destination": destination,
            "path": _asset_uri(summary["path"]),
            "rows": summary["rows"],
            "bytes": summary["bytes"],
            "files": [_asset_uri(f["path"]) for f in summary["files"]],
        }
        outlet_events = context.get("outlet_events") if context else None
        if outlet_events is not None:
            if self.asset is not None:
                outlet_events[self.asset].extra = extra
            elif self.asset_alias is not None:
                outlet_events[self.asset_alias].add(
                    Asset(uri=destination), extra=_alias_event_extra(extra)
                )
        return summary


def _alias_event_extra(extra: dict[str, Any]) -> dict[str, Any]:
    """An alias event's ``extra`` Airflow can store.

    Before 3.2 Airflow hashes the items of an alias event's extra (apache/airflow#56882): a list
    value failed the task's final state update. There the file list becomes its count.
    """
    from airflow.providers.common.compat.version_compat import get_base_airflow_version_tuple

    if get_base_airflow_version_tuple() >= (3, 2, 0):
        return extra
    scalars = {k: v for k, v in extra.items() if not isinstance(v, list | dict)}
    return {**scalars, "file_count": len(extra.get("files", []))}


def _static_prefix(output_path: Any) -> str | None:
    """The directory part of ``output_path`` before its first template, as an Asset URI.

    ``s3://aws_default@bucket/home/{{ ds }}/x.parquet`` -> ``s3://bucket/home``;
    ``/data/exports/{{ ds }}.parquet`` -> ``file:///data/exports``; None when the path starts
    with a template or has no fixed directory.
    """
    text = str(output_path)
    cut = _template_start(text)
    if cut == 0:
        return None
    fixed = text if cut < 0 else text[:cut]
    if cut < 0:
        fixed = fixed.rsplit("/", 1)[0] + "/" if "/" in fixed else ""
    else:
        fixed = fixed[: fixed.rfind("/") + 1]
    if not fixed or fixed in ("/", "file:///"):
        return None
    if "://" not in fixed:
        if not fixed.startswith("/"):
            return None
        from pathlib import Path

        return Path(fixed).as_uri()
    rest = fixed.split("://", 1)[1]
    if not rest.strip("/"):  # only a scheme is fixed (``s3://{{ var.value.bucket }}/...``)
        return None
    return _asset_uri(fixed).rstrip("/")


def _target_table(spec: Any, target_measurement: str | None) -> str | None:
    """The table a downsample writes: ``target_measurement``, else the spec's."""
    if target_measurement:
        return target_measurement
    if isinstance(spec, Mapping):
        return spec.get("target_measurement")
    return getattr(spec, "target_measurement", None)


def _template_start(text: str) -> int:
    """Index of the first Jinja block (``{{`` or ``{%``) in ``text``; -1 if none."""
    return min((i for i in (text.find("{{"), text.find("{%")) if i >= 0), default=-1)


def _destination_template(output_path: Any, split_by: str | None) -> str | None:
    """The part of a templated path naming its destination, the same every run.

    Up to the end of the first template block, plus the fixed directories after it, up to the
    next template or the file name: ``{{ base }}/home_1h`` of
    ``{{ base }}/home_1h/{{ ds }}/x.parquet``, ``s3://{{ bucket }}/home`` of
    ``s3://{{ bucket }}/home/{{ ds }}.parquet``. With ``split_by`` and no further template the
    whole path is the destination (a directory). None without a template.
    """
    text = str(output_path) if isinstance(output_path, str) else ""
    start = _template_start(text)
    if start < 0:
        return None
    close = text.find("}}" if text.startswith("{{", start) else "%}", start)
    if close < 0:
        return None
    head, rest = text[: close + 2], text[close + 2 :]
    following = _template_start(rest)
    if following < 0 and split_by:
        return head + rest.rstrip("/")
    fixed = rest if following < 0 else rest[:following]
    return head + fixed[: fixed.rfind("/")] if "/" in fixed else head


def _as_asset(asset: Any) -> Any:
    """``asset=`` as an Asset: an Asset as given, a URI (``s3://...``) or a name (``home_1h``)."""
    if isinstance(asset, Asset):
        return asset
    text = str(asset)
    return Asset(uri=text) if "://" in text else Asset(name=text)


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
        sql: str | None = None,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        target_measurement: str | None = None,
        target_tags: Sequence[str] | None = None,
        target_database: str | None = None,
        start: datetime | str | None = None,
        end: datetime | str | None = None,
        chunk: str | None = None,
        asset: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        query = _query_argument(query, sql, required=False)
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
        self._summary: dict[str, Any] | None = None
        self.target_asset = self._fixed_outlet(
            {
                "asset": asset,
                "spec": spec,
                "target_measurement": target_measurement,
                "target_database": target_database,
                "database": self.database,
                "influxdb3_conn_id": self.influxdb3_conn_id,
            }
        )
        if self.target_asset is not None:
            self._add_outlet(self.target_asset)

    @staticmethod
    def _fixed_outlet(kwargs: Mapping[str, Any]) -> Any:
        """``asset=`` as an Asset, else the ``influxdb3://`` Asset of the target table when it is
        known (not templated)."""
        asset = kwargs.get("asset")
        if asset is False:
            return None
        if asset is not None:
            return asset if isinstance(asset, Asset) else Asset(uri=str(asset))
        table = _target_table(kwargs.get("spec"), kwargs.get("target_measurement"))
        if not table or "{{" in table:
            return None
        from airflow_influx.assets import influxdb3_asset

        return influxdb3_asset(
            table,
            database=kwargs.get("target_database") or kwargs.get("database"),
            conn_id=kwargs.get("influxdb3_conn_id") or DEFAULT_CONN_ID,
        )

    def _interval(self, context: Context) -> tuple[datetime, datetime]:
        """``[start, end)`` of this run; a configuration problem fails the task without retries.

        A DAG scheduled with a cron string (``schedule="@hourly"``) gets Airflow 3's trigger
        timetable, whose runs have an empty data interval; the run then covers the cron period
        that ends at its logical date (``[04:00, 05:00)`` for the 05:00 run), as it would with
        ``CronDataIntervalTimetable``.
        """
        from airflow.providers.common.compat.sdk import AirflowFailException

        try:
            start = _as_datetime(self.start, "start") or context.get("data_interval_start")
            end = _as_datetime(self.end, "end") or context.get("data_interval_end")
        except ValueError as exc:
            raise AirflowFailException(f"Task {self.task_id!r}: {exc}") from None
        if start is None or end is None:
            raise AirflowFailException(
                f"Task {self.task_id!r}: no interval to downsample; this run has no data "
                "interval (a manual run of a DAG with schedule=None?). Pass start= and end= "
                "(templated, e.g. start='{{ macros.ds_add(ds, -1) }}'), or give the DAG a schedule"
            )
        if end == start and self.start is None:
            previous = _previous_fire(context.get("dag"), end)
            if previous is not None and previous < end:
                self.log.info(
                    "The run's data interval is empty (a cron trigger timetable); downsampling "
                    "the schedule's period [%s, %s) that ends at the run's logical date",
                    previous,
                    end,
                )
                start = previous
        if end == start:
            raise AirflowFailException(
                f"Task {self.task_id!r}: the run's data interval is empty ({start}) and the "
                "schedule gives no period to derive one from. Schedule the DAG with "
                "CronDataIntervalTimetable('@hourly', timezone='UTC') (from airflow.sdk) or pass "
                "start= and end="
            )
        if end < start:
            raise AirflowFailException(
                f"Task {self.task_id!r}: end {end} is not after start {start}; fix start=/end="
            )
        return start, end

    def execute(self, context: Context) -> dict[str, Any]:
        """Downsample ``[start, end)`` and write the windows back; return the counts."""
        start, end = self._interval(context)
        with self._running() as hook:
            if self.spec is not None:
                summary = self._interruptible(lambda: self._run_spec(hook, start, end))
            else:
                summary = self._interruptible(lambda: self._run_query(hook, start, end))
        self._summary = summary
        self.log.info(
            "Downsampled [%s, %s): read %s row(s), wrote %s point(s)",
            start,
            end,
            summary.get("rows_read"),
            summary.get("rows_written"),
        )
        outlet_events = context.get("outlet_events") if context else None
        if self.target_asset is not None and outlet_events is not None:
            outlet_events[self.target_asset].extra = {
                "start": summary["start"],
                "end": summary["end"],
                "rows_written": summary["rows_written"],
            }
        return summary

    def _target_table(self) -> str | None:
        return _target_table(self.spec, self.target_measurement)

    def _lineage_inputs(self) -> list[str]:
        from airflow_influx._lineage import tables_in_query

        if self.query is not None:
            return tables_in_query(self.query, self.language)
        spec = self.spec
        source = spec.get("source") if isinstance(spec, Mapping) else getattr(spec, "source", None)
        return [source] if isinstance(source, str) else []

    def _lineage_outputs(self) -> list[Any]:
        from airflow_influx._lineage import table_dataset

        table = self._target_table()
        if not table:
            return []
        return [table_dataset(self, table, database=self.target_database)]

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


def _previous_fire(dag: Any, end: datetime) -> datetime | None:
    """The schedule's fire time before ``end`` (cron trigger timetables), else None."""
    timetable = getattr(dag, "timetable", None)
    if timetable is None:
        return None
    get_prev = getattr(timetable, "_get_prev", None)
    if get_prev is None:
        try:  # Airflow >= 3.1 keeps the SDK's definition on the DAG; the core one computes
            from airflow.serialization.encoders import coerce_to_core_timetable

            get_prev = getattr(coerce_to_core_timetable(timetable), "_get_prev", None)
        except Exception:
            return None
    if get_prev is None:
        return None
    try:
        previous = get_prev(end)
    except Exception:
        return None
    return previous if isinstance(previous, datetime) else None
