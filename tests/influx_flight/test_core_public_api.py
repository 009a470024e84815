"""The public front of influx_flight: a pinned, sorted __all__, lazy and light imports."""

from __future__ import annotations

import subprocess
import sys

import pytest

import influx_flight

PUBLIC = [
    "AuthenticationError",
    "ConfigurationError",
    "DEFAULT_BATCH_ROWS",
    "DEFAULT_COMPRESSION",
    "DEFAULT_CONCURRENCY",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_MAX_RECORDS",
    "DEFAULT_RECEIVE_WINDOW",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_ROW_GROUP_SIZE",
    "DatabaseNotFoundError",
    "DatasetResult",
    "DatasetWindow",
    "DownsampleResult",
    "DownsampleSpec",
    "EncodingError",
    "ExportError",
    "ExportResult",
    "InfluxDB3Client",
    "InfluxDB3Config",
    "InfluxDB3Error",
    "MEASUREMENT_COLUMN",
    "NO_RETRY",
    "OperationCancelledError",
    "QueryCancelledError",
    "QueryError",
    "QueryResult",
    "QueryTimeoutError",
    "RejectedLine",
    "ResultTooLargeError",
    "RetryPolicy",
    "ServerUnavailableError",
    "TableNotFoundError",
    "TransportError",
    "USE_CLIENT_DEFAULT",
    "UseClientDefault",
    "WriteError",
    "WriteOptions",
    "WriteResult",
    "__version__",
    "call_with_retry",
    "commit_dataset",
    "dbapi_options",
    "drop_measurement_column",
    "error_from_http",
    "export_dataset",
    "export_window",
    "is_transient",
    "map_flight_errors",
    "plan_windows",
    "read_parquet",
    "run_interruptibly",
    "slice_manifest",
    "translate_flight_error",
    "window_query",
    "write_parquet",
]


def test_all_is_pinned_and_sorted() -> None:
    assert influx_flight.__all__ == PUBLIC
    assert influx_flight.__all__ == sorted(influx_flight.__all__)


@pytest.mark.parametrize("name", [n for n in PUBLIC if n != "__version__"])
def test_every_public_name_resolves(name: str) -> None:
    obj = getattr(influx_flight, name)
    assert obj is not None
    if isinstance(obj, type) and name not in ("DownsampleResult", "DownsampleSpec", "WriteResult"):
        assert obj.__module__ == "influx_flight", name  # reprs say influx_flight.X


def test_unknown_attribute() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        influx_flight.Nope  # noqa: B018


def test_dir_lists_public_names() -> None:
    assert set(PUBLIC) <= set(dir(influx_flight))


def test_from_import_star_is_lazy_until_used() -> None:
    code = (
        "import sys\n"
        "import influx_flight\n"
        "assert 'pyarrow' not in sys.modules, 'import influx_flight pulled pyarrow'\n"
        "from influx_flight import InfluxDB3Client\n"
        "assert 'pandas' not in sys.modules, 'the client pulled pandas'\n"
        "from influx_flight import QueryResult, ExportResult\n"
        "assert 'pandas' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_version() -> None:
    assert influx_flight.__version__ == "0.1.0"


def test_lineprotocol_submodule_is_pinned() -> None:
    import pyarrow as pa

    import influx_flight.lineprotocol as lp

    assert lp.__all__ == ["EncodedChunk", "EncodedLines", "encode_table", "iter_encode"]
    encoded = lp.encode_table(pa.table({"v": [1.5]}), measurement="m", time_column=None)
    assert isinstance(encoded, lp.EncodedLines)
    assert encoded.lines() == ["m v=1.5"]
