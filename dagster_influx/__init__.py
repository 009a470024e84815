"""Dagster library for InfluxDB 3 over Arrow Flight.

A thin layer over the core package `influx_flight`: a resource, downsampling and Parquet-export
asset factories, IO managers (InfluxDB 3 and Parquet), an observable source and asset checks,
and components for `defs.yaml`. See docs/dagster.md.
"""

from dagster_shared.libraries import DagsterLibraryRegistry

from dagster_influx.assets import build_downsample_asset as build_downsample_asset
from dagster_influx.components import InfluxDB3ChecksComponent as InfluxDB3ChecksComponent
from dagster_influx.components import (
    InfluxDB3DownsampleComponent as InfluxDB3DownsampleComponent,
)
from dagster_influx.components import (
    InfluxDB3IOManagerComponent as InfluxDB3IOManagerComponent,
)
from dagster_influx.components import (
    InfluxDB3ObservationComponent as InfluxDB3ObservationComponent,
)
from dagster_influx.components import InfluxDB3ResourceComponent as InfluxDB3ResourceComponent
from dagster_influx.components import ParquetIOManagerComponent as ParquetIOManagerComponent
from dagster_influx.exports import build_export_asset as build_export_asset
from dagster_influx.io_managers import InfluxDB3ArrowTypeHandler as InfluxDB3ArrowTypeHandler
from dagster_influx.io_managers import InfluxDB3DbClient as InfluxDB3DbClient
from dagster_influx.io_managers import InfluxDB3IOManager as InfluxDB3IOManager
from dagster_influx.io_managers import InfluxDB3PandasIOManager as InfluxDB3PandasIOManager
from dagster_influx.io_managers import InfluxDB3PandasTypeHandler as InfluxDB3PandasTypeHandler
from dagster_influx.io_managers import InfluxDB3PolarsTypeHandler as InfluxDB3PolarsTypeHandler
from dagster_influx.io_managers import ParquetIOManager as ParquetIOManager
from dagster_influx.observability import build_no_nulls_check as build_no_nulls_check
from dagster_influx.observability import (
    build_partition_has_data_check as build_partition_has_data_check,
)
from dagster_influx.observability import build_table_observation as build_table_observation
from dagster_influx.observability import build_value_range_check as build_value_range_check
from dagster_influx.observability import (
    fetch_last_updated_timestamps as fetch_last_updated_timestamps,
)
from dagster_influx.resource import InfluxDB3Resource as InfluxDB3Resource
from dagster_influx.storage import AzureConfig as AzureConfig
from dagster_influx.storage import GcsConfig as GcsConfig
from dagster_influx.storage import LocalConfig as LocalConfig
from dagster_influx.storage import S3Config as S3Config
from dagster_influx.tables import TableRef as TableRef
from dagster_influx.tables import table_for_asset as table_for_asset
from dagster_influx.tables import validate_tables as validate_tables

__version__ = "0.1.0"

__all__ = [
    "AzureConfig",
    "GcsConfig",
    "InfluxDB3ArrowTypeHandler",
    "InfluxDB3ChecksComponent",
    "InfluxDB3DbClient",
    "InfluxDB3DownsampleComponent",
    "InfluxDB3IOManager",
    "InfluxDB3IOManagerComponent",
    "InfluxDB3ObservationComponent",
    "InfluxDB3PandasIOManager",
    "InfluxDB3PandasTypeHandler",
    "InfluxDB3PolarsTypeHandler",
    "InfluxDB3Resource",
    "InfluxDB3ResourceComponent",
    "LocalConfig",
    "ParquetIOManager",
    "ParquetIOManagerComponent",
    "S3Config",
    "TableRef",
    "__version__",
    "build_downsample_asset",
    "build_export_asset",
    "build_no_nulls_check",
    "build_partition_has_data_check",
    "build_table_observation",
    "build_value_range_check",
    "fetch_last_updated_timestamps",
    "table_for_asset",
    "validate_tables",
]

DagsterLibraryRegistry.register("influxdb3-orchestration", __version__, is_dagster_package=False)
