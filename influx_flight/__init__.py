"""Core of influxdb3-orchestration: InfluxDB 3 over Arrow Flight, without Airflow or Dagster.

The public names are loaded lazily (PEP 562): ``import influx_flight`` imports neither pyarrow
nor pandas, so Airflow can import DAG files that only build an ``InfluxDB3Config`` cheaply.

Public submodules: ``influx_flight.time`` (durations, RFC 3339, precision, identifier quoting),
``influx_flight.lineprotocol`` (Arrow to line protocol), ``influx_flight.testing`` (test helpers)
and ``influx_flight.cli``. Every other ``influx_flight._*`` module is private.

Examples:
    from influx_flight import InfluxDB3Client, InfluxDB3Config

    with InfluxDB3Client(InfluxDB3Config.from_env()) as client:
        client.query("SELECT * FROM cpu WHERE time > now() - interval '1 hour'").to_parquet(
            "s3://bucket/cpu.parquet"
        )
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "AuthenticationError": "._exceptions",
    "ConfigurationError": "._exceptions",
    "DEFAULT_BATCH_ROWS": "._options",
    "DEFAULT_COMPRESSION": "._options",
    "DEFAULT_CONCURRENCY": "._options",
    "DEFAULT_MAX_BODY_BYTES": "._options",
    "DEFAULT_MAX_RECORDS": "._options",
    "DEFAULT_RECEIVE_WINDOW": "._options",
    "DEFAULT_RETRY_POLICY": "._retry",
    "DEFAULT_ROW_GROUP_SIZE": "._options",
    "DatabaseNotFoundError": "._exceptions",
    "DatasetResult": "._dataset",
    "DatasetWindow": "._dataset",
    "DownsampleResult": "._downsample",
    "DownsampleSpec": "._downsample",
    "EncodingError": "._exceptions",
    "ExportError": "._exceptions",
    "ExportResult": "._sinks",
    "InfluxDB3Client": "._client",
    "InfluxDB3Config": "._config",
    "InfluxDB3Error": "._exceptions",
    "MEASUREMENT_COLUMN": "._downsample",
    "NO_RETRY": "._retry",
    "OperationCancelledError": "._exceptions",
    "QueryCancelledError": "._exceptions",
    "QueryError": "._exceptions",
    "QueryResult": "._results",
    "QueryTimeoutError": "._exceptions",
    "RejectedLine": "._exceptions",
    "ResultTooLargeError": "._exceptions",
    "RetryPolicy": "._retry",
    "ServerUnavailableError": "._exceptions",
    "TableNotFoundError": "._exceptions",
    "TransportError": "._exceptions",
    "USE_CLIENT_DEFAULT": "._options",
    "UseClientDefault": "._options",
    "WriteError": "._exceptions",
    "WriteOptions": "._options",
    "WriteResult": "._writer",
    "call_with_retry": "._retry",
    "commit_dataset": "._dataset",
    "dbapi_options": "._flightsql",
    "drop_measurement_column": "._downsample",
    "error_from_http": "._errors",
    "export_dataset": "._dataset",
    "export_window": "._dataset",
    "is_transient": "._retry",
    "map_flight_errors": "._errors",
    "plan_windows": "._dataset",
    "read_parquet": "._parquet_read",
    "slice_manifest": "._dataset",
    "run_interruptibly": "._interrupt",
    "translate_flight_error": "._errors",
    "window_query": "._dataset",
    "write_parquet": "._sinks",
}

__all__ = sorted([*_EXPORTS, "__version__"])

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from ._client import InfluxDB3Client as InfluxDB3Client
    from ._config import InfluxDB3Config as InfluxDB3Config
    from ._dataset import DatasetResult as DatasetResult
    from ._dataset import DatasetWindow as DatasetWindow
    from ._dataset import commit_dataset as commit_dataset
    from ._dataset import export_dataset as export_dataset
    from ._dataset import export_window as export_window
    from ._dataset import plan_windows as plan_windows
    from ._dataset import slice_manifest as slice_manifest
    from ._dataset import window_query as window_query
    from ._downsample import MEASUREMENT_COLUMN as MEASUREMENT_COLUMN
    from ._downsample import DownsampleResult as DownsampleResult
    from ._downsample import DownsampleSpec as DownsampleSpec
    from ._downsample import drop_measurement_column as drop_measurement_column
    from ._errors import error_from_http as error_from_http
    from ._errors import map_flight_errors as map_flight_errors
    from ._errors import translate_flight_error as translate_flight_error
    from ._exceptions import AuthenticationError as AuthenticationError
    from ._exceptions import ConfigurationError as ConfigurationError
    from ._exceptions import DatabaseNotFoundError as DatabaseNotFoundError
    from ._exceptions import EncodingError as EncodingError
    from ._exceptions import ExportError as ExportError
    from ._exceptions import InfluxDB3Error as InfluxDB3Error
    from ._exceptions import OperationCancelledError as OperationCancelledError
    from ._exceptions import QueryCancelledError as QueryCancelledError
    from ._exceptions import QueryError as QueryError
    from ._exceptions import QueryTimeoutError as QueryTimeoutError
    from ._exceptions import RejectedLine as RejectedLine
    from ._exceptions import ResultTooLargeError as ResultTooLargeError
    from ._exceptions import ServerUnavailableError as ServerUnavailableError
    from ._exceptions import TableNotFoundError as TableNotFoundError
    from ._exceptions import TransportError as TransportError
    from ._exceptions import WriteError as WriteError
    from ._flightsql import dbapi_options as dbapi_options
    from ._interrupt import run_interruptibly as run_interruptibly
    from ._options import DEFAULT_BATCH_ROWS as DEFAULT_BATCH_ROWS
    from ._options import DEFAULT_COMPRESSION as DEFAULT_COMPRESSION
    from ._options import DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY
    from ._options import DEFAULT_MAX_BODY_BYTES as DEFAULT_MAX_BODY_BYTES
    from ._options import DEFAULT_MAX_RECORDS as DEFAULT_MAX_RECORDS
    from ._options import DEFAULT_RECEIVE_WINDOW as DEFAULT_RECEIVE_WINDOW
    from ._options import DEFAULT_ROW_GROUP_SIZE as DEFAULT_ROW_GROUP_SIZE
    from ._options import USE_CLIENT_DEFAULT as USE_CLIENT_DEFAULT
    from ._options import UseClientDefault as UseClientDefault
    from ._options import WriteOptions as WriteOptions
    from ._parquet_read import read_parquet as read_parquet
    from ._results import QueryResult as QueryResult
    from ._retry import DEFAULT_RETRY_POLICY as DEFAULT_RETRY_POLICY
    from ._retry import NO_RETRY as NO_RETRY
    from ._retry import RetryPolicy as RetryPolicy
    from ._retry import call_with_retry as call_with_retry
    from ._retry import is_transient as is_transient
    from ._sinks import ExportResult as ExportResult
    from ._sinks import write_parquet as write_parquet
    from ._writer import WriteResult as WriteResult


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'influx_flight' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name, __name__), name)
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
