"""Dagster components (registered for `dg` through the `dagster_dg_cli.registry_modules` entry point).

Declare an InfluxDB 3 connection and downsampled assets in `defs.yaml`::

    # defs/influxdb/defs.yaml
    type: dagster_influx.InfluxDB3ResourceComponent
    attributes:
      host: http://127.0.0.1:8181
      database: telegraf
      token_env_var: INFLUXDB3_AUTH_TOKEN      # the NAME of the variable, read at run time

    # defs/cpu_1h/defs.yaml
    type: dagster_influx.InfluxDB3DownsampleComponent
    attributes:
      source: cpu
      window: 1h
      aggregates: {usage_user: [mean, max]}
      target_measurement: cpu_1h
      group_by: [host]
      partitions_def: {type: hourly, start_date: "2026-01-01-00:00"}

The token is never written into `defs.yaml` and never resolved at load time: the component
turns `token_env_var` into `dagster.EnvVar(...)`, which Dagster resolves when a run starts.
"""

import warnings
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated, Any, Literal

from dagster import (
    AssetKey,
    AutomationCondition,
    BackfillPolicy,
    Definitions,
    EnvVar,
    PartitionsDefinition,
)
from dagster.components import (
    Component,
    ComponentLoadContext,
    Model,
    Resolvable,
    Resolver,
    Scaffolder,
    ScaffoldRequest,
    scaffold_with,
)
from dagster.components.resolved.core_models import (
    DailyPartitionsDefinitionModel,
    HourlyPartitionsDefinitionModel,
    MultiRunBackfillPolicyModel,
    SingleRunBackfillPolicyModel,
    TimeWindowPartitionsDefinitionModel,
    WeeklyPartitionsDefinitionModel,
    resolve_backfill_policy,
    resolve_partitions_def,
)
from pydantic import Field

from dagster_influx.resource import InfluxDB3Resource
from influx_flight import DEFAULT_RECEIVE_WINDOW

if TYPE_CHECKING:
    from influx_flight import DownsampleSpec

__all__ = [
    "InfluxDB3ChecksComponent",
    "InfluxDB3DownsampleComponent",
    "InfluxDB3IOManagerComponent",
    "InfluxDB3ObservationComponent",
    "InfluxDB3ResourceComponent",
    "ParquetIOManagerComponent",
]


class InfluxDB3ResourceComponent(Component, Resolvable, Model):
    """An `InfluxDB3Resource` under `resource_key`, declared in YAML.

    The token is given as the name of an environment variable (`token_env_var`), resolved when
    a run starts; its value never enters the definitions.
    """

    host: str = Field(description="Server URL, e.g. http://127.0.0.1:8181 or https://host.")
    database: str = Field(description="Default database for queries and writes.")
    token_env_var: str | None = Field(
        default="INFLUXDB3_AUTH_TOKEN",
        description="NAME of the environment variable holding the token (null: no token).",
    )
    auth_scheme: str = Field(default="Bearer", description="'Bearer' or 'Token'.")
    verify_tls: bool = Field(default=True, description="Verify the server certificate.")
    ca_cert: str | None = Field(default=None, description="PEM CA bundle path (or PEM text).")
    query_timeout: float | None = Field(default=300.0, description="Query deadline in seconds.")
    write_timeout: float | None = Field(default=30.0, description="Write request timeout (s).")
    write_url: str | None = Field(
        default=None, description="Separate base URL for HTTP writes; default: the host."
    )
    receive_window: int | None = Field(
        default=DEFAULT_RECEIVE_WINDOW,
        description="Bytes of a result gRPC buffers ahead of the reader (null: adaptive).",
    )
    resource_key: str = Field(
        default="influxdb", description="Key under which assets request the resource."
    )

    def build_resource(self) -> InfluxDB3Resource:
        """The configured resource (token as an `EnvVar`, not its value)."""
        settings = self.model_dump(exclude={"token_env_var", "resource_key"})
        token = EnvVar(self.token_env_var) if self.token_env_var else None
        return InfluxDB3Resource(**settings, token=token)

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        defs = Definitions(resources={self.resource_key: self.build_resource()})
        return _with_table_check(context, defs)


#: Set while `_with_table_check` builds the whole defs folder (its components then skip it).
_CHECKING_TABLES: ContextVar[bool] = ContextVar("dagster_influx_checking_tables", default=False)


def _with_table_check(context: ComponentLoadContext, defs: Definitions) -> Definitions:
    """`defs`, once no two assets of the project's whole defs folder share a table.

    Dagster calls nothing with every asset and resource while a code location loads, but a
    component can build other components' definitions (`ComponentLoadContext.build_defs`, as
    components that depend on others do). So the first of our connection, IO manager or
    downsampling components that a project loads builds the defs folder (every component, YAML or Python, is built once and cached by
    Dagster: the load does not repeat) and refuses a shared table with `validate_tables`'s
    error: `dg check defs` and the code location load fail, naming the assets and the table,
    without the user calling anything. Any other error of the folder is left for Dagster to
    report where it belongs.
    """
    if _CHECKING_TABLES.get():
        return defs
    from dagster_influx.tables import conflict_message, shared_tables

    token = _CHECKING_TABLES.set(True)
    try:
        project = context.build_defs(context.defs_module_path)
        with warnings.catch_warnings():  # Dagster warns again when it resolves them itself
            warnings.simplefilter("ignore")
            assets = project.resolve_asset_graph().assets_defs
        conflicts = shared_tables(assets, dict(project.resources or {}))
    except Exception:  # not ours to report (and reported by Dagster with its own context)
        return defs
    finally:
        _CHECKING_TABLES.reset(token)
    if conflicts:
        from dagster import DagsterInvalidDefinitionError

        raise DagsterInvalidDefinitionError(conflict_message(conflicts))
    return defs


_TimePartitions = Annotated[
    PartitionsDefinition,
    Resolver(
        resolve_partitions_def,
        description="Time-window partitions; each partition's window is one downsampling run.",
        model_field_type=HourlyPartitionsDefinitionModel
        | DailyPartitionsDefinitionModel
        | WeeklyPartitionsDefinitionModel
        | TimeWindowPartitionsDefinitionModel,
    ),
]

_BackfillPolicy = Annotated[
    BackfillPolicy | None,
    Resolver(
        resolve_backfill_policy,
        model_field_type=SingleRunBackfillPolicyModel | MultiRunBackfillPolicyModel,
    ),
]


def _resolve_key(context: Any, value: str) -> AssetKey:
    return AssetKey.from_user_string(context.resolve_value(value, as_type=str))


_OptionalAssetKeyField = Annotated[
    AssetKey | None,
    Resolver(
        lambda context, value: None if value is None else _resolve_key(context, value),
        model_field_type=str | None,
        description="An asset key as a/b/c (default: derived from the table names).",
    ),
]


def _describe(text: str) -> Resolver:
    return Resolver.default(description=text)


@dataclass
class InfluxDB3DownsampleComponent(Component, Resolvable):
    """A partitioned downsampling asset (the core's `DownsampleSpec`), declared in YAML.

    Each partition's time window is queried from `source`, aggregated per `window` bucket and
    written to `target_measurement`; re-running a partition rewrites the same points. The
    attributes mirror `influx_flight.DownsampleSpec`; see `build_downsample_asset` for the
    metadata each run records.
    """

    source: Annotated[str, _describe("Table (measurement) to downsample.")]
    window: Annotated[str, _describe("Bucket width, e.g. 5m, 1h, 1d.")]
    aggregates: Annotated[
        dict[str, list[str]],
        _describe("Aggregates per field, e.g. {usage: [mean, max]}; outputs <field>_<agg>."),
    ]
    target_measurement: Annotated[str, _describe("Table the buckets are written to.")]
    partitions_def: _TimePartitions
    group_by: Annotated[list[str], _describe("Tags kept (written back as tags).")] = field(
        default_factory=list
    )
    offset: Annotated[str | None, _describe("Shift of bucket starts, e.g. 15m.")] = None
    filter: Annotated[str | None, _describe("Extra predicate ANDed to the range.")] = None
    fill: Annotated[
        str | float | None, _describe("null, previous, linear or a number (default: no fill).")
    ] = None
    target_database: Annotated[str | None, _describe("Default: the resource's.")] = None
    language: Annotated[Literal["sql", "influxql"], _describe("Query language.")] = "sql"
    time_zone: Annotated[
        str | None, _describe("IANA zone for wall-clock buckets (InfluxQL only).")
    ] = None
    with_time: Annotated[
        bool, _describe("Also write the selected rows' times for min/max/first/last (SQL).")
    ] = False
    align: Annotated[
        Literal["strict", "widen"], _describe("Refuse (strict) or widen unaligned ranges.")
    ] = "strict"
    asset_key: _OptionalAssetKeyField = None
    source_key: _OptionalAssetKeyField = None
    resource_key: Annotated[str, _describe("Key of the InfluxDB3Resource.")] = "influxdb"
    chunk: Annotated[str | None, _describe("Split each run's range into chunks.")] = None
    description: str | None = None
    group_name: str | None = None
    backfill_policy: _BackfillPolicy = None
    automation_cron: Annotated[
        str | None, _describe("Cron string: materialise new partitions on this schedule.")
    ] = None

    def build_spec(self) -> "DownsampleSpec":
        """The core spec these attributes describe (validated by the core)."""
        from influx_flight import DownsampleSpec

        return DownsampleSpec(
            source=self.source,
            window=self.window,
            aggregates=self.aggregates,
            target_measurement=self.target_measurement,
            offset=self.offset,
            group_by=tuple(self.group_by),
            filter=self.filter,
            fill=self.fill,
            target_database=self.target_database,
            language=self.language,
            time_zone=self.time_zone,
            with_time=self.with_time,
            align=self.align,
        )

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        from dagster_influx.assets import build_downsample_asset

        asset = build_downsample_asset(
            self.build_spec(),
            key=self.asset_key,
            partitions_def=self.partitions_def,
            source_key=self.source_key,
            resource_key=self.resource_key,
            chunk=self.chunk,
            description=self.description,
            group_name=self.group_name,
            backfill_policy=self.backfill_policy,
            automation_condition=(
                AutomationCondition.on_cron(self.automation_cron) if self.automation_cron else None
            ),
        )
        return _with_table_check(context, Definitions(assets=[asset]))


# ---------------------------------------------------------------------------------------------
# IO managers, checks and observation as components
# ---------------------------------------------------------------------------------------------

_OptionalTimePartitions = Annotated[
    PartitionsDefinition | None,
    Resolver(
        resolve_partitions_def,
        description="Time-window partitions (null: the whole table).",
        model_field_type=HourlyPartitionsDefinitionModel
        | DailyPartitionsDefinitionModel
        | WeeklyPartitionsDefinitionModel
        | TimeWindowPartitionsDefinitionModel
        | None,
    ),
]


class InfluxDB3IOManagerComponent(InfluxDB3ResourceComponent):
    """`InfluxDB3IOManager` (or its pandas variant) under `io_manager_key`, declared in YAML.

    The connection attributes are those of `InfluxDB3ResourceComponent`; the token is again an
    environment variable's name.
    """

    io_manager_key: str = Field(default="io_manager", description="Key assets name it by.")
    load_as: Literal["arrow", "pandas"] = Field(
        default="arrow", description="Type unannotated inputs load as."
    )
    io_database: str | None = Field(
        default=None,
        description="Database for every asset of this IO manager (default: key prefix, else"
        " the connection's database).",
    )
    resource_key: str = Field(default="influxdb", description="Unused by the IO manager.")

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        from dagster_influx.io_managers import InfluxDB3IOManager, InfluxDB3PandasIOManager

        cls = InfluxDB3PandasIOManager if self.load_as == "pandas" else InfluxDB3IOManager
        resource = InfluxDB3Resource(
            **self.model_dump(
                exclude={
                    "token_env_var",
                    "resource_key",
                    "io_manager_key",
                    "load_as",
                    "io_database",
                }
            ),
            token=EnvVar(self.token_env_var) if self.token_env_var else None,
        )
        manager = cls(influxdb=resource, database=self.io_database)
        return _with_table_check(context, Definitions(resources={self.io_manager_key: manager}))


class ParquetIOManagerComponent(Component, Resolvable, Model):
    """`ParquetIOManager` under `io_manager_key`; secrets are environment variable names."""

    base_dir: str = Field(description="Local directory or fsspec URL (s3://, gs://, az://).")
    provider: Literal["local", "s3", "gcs", "azure"] = Field(
        default="local", description="Storage whose typed settings `storage` holds."
    )
    storage: dict[str, str | bool] = Field(
        default_factory=dict,
        description="Non-secret settings of the provider's config (region, endpoint_url, ...).",
    )
    secret_env_vars: dict[str, str] = Field(
        default_factory=dict,
        description="Secret settings as {setting: ENV_VAR_NAME}, read when a run starts, e.g."
        " {secret_access_key: AWS_SECRET_ACCESS_KEY}.",
    )
    compression: str = Field(default="zstd", description="Parquet compression codec.")
    io_manager_key: str = Field(default="parquet_io", description="Key assets name it by.")

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        from dagster_influx.io_managers import ParquetIOManager
        from dagster_influx.storage import AzureConfig, GcsConfig, LocalConfig, S3Config

        config_cls = {"local": LocalConfig, "s3": S3Config, "gcs": GcsConfig, "azure": AzureConfig}
        settings: dict[str, Any] = dict(self.storage)
        settings.update({k: EnvVar(v) for k, v in self.secret_env_vars.items()})
        manager = ParquetIOManager(
            base_dir=self.base_dir,
            storage=config_cls[self.provider](**settings),
            compression=self.compression,
        )
        return Definitions(resources={self.io_manager_key: manager})


class ValueRange(Model):
    column: str = Field(description="Numeric column.")
    min: float | None = Field(default=None, description="Smallest allowed value.")
    max: float | None = Field(default=None, description="Largest allowed value.")


@dataclass
class InfluxDB3ChecksComponent(Component, Resolvable):
    """The partition-scoped asset checks of `dagster_influx`, declared in YAML."""

    asset_key: Annotated[str, _describe("Key of the checked asset, as a/b/c.")]
    table: Annotated[str, _describe("Table the asset's data lives in.")]
    partitions_def: _OptionalTimePartitions = None
    min_rows: Annotated[
        int | None, _describe("partition_has_data: fewest rows per partition (null: off).")
    ] = 1
    no_nulls: Annotated[list[str], _describe("Columns that must have no nulls.")] = field(
        default_factory=list
    )
    value_ranges: Annotated[
        list[ValueRange], _describe("Columns whose values must lie in [min, max].")
    ] = field(default_factory=list)
    database: Annotated[str | None, _describe("Default: the key prefix, else the resource's.")] = (
        None
    )
    time_column: Annotated[str, _describe("The table's time column.")] = "time"
    resource_key: Annotated[str, _describe("Key of the InfluxDB3Resource.")] = "influxdb"
    blocking: Annotated[bool, _describe("Failed checks stop downstream assets.")] = False

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        from dagster_influx.observability import (
            build_no_nulls_check,
            build_partition_has_data_check,
            build_value_range_check,
        )

        key = AssetKey.from_user_string(self.asset_key)
        common: dict[str, Any] = dict(
            table=self.table,
            partitions_def=self.partitions_def,
            time_column=self.time_column,
            resource_key=self.resource_key,
            database=self.database,
            blocking=self.blocking,
        )
        checks = []
        if self.min_rows is not None:
            checks.append(build_partition_has_data_check(key, min_rows=self.min_rows, **common))
        checks += [build_no_nulls_check(key, column=c, **common) for c in self.no_nulls]
        checks += [
            build_value_range_check(
                key, column=r.column, min_value=r.min, max_value=r.max, **common
            )
            for r in self.value_ranges
        ]
        return Definitions(asset_checks=checks)


@dataclass
class InfluxDB3ObservationComponent(Component, Resolvable):
    """An observable source for a raw table (`build_table_observation`), declared in YAML."""

    table: Annotated[str, _describe("Table (measurement) written outside Dagster.")]
    asset_key: _OptionalAssetKeyField = None
    partitions_def: _OptionalTimePartitions = None
    lookback: Annotated[
        str, _describe("How far back each observation looks (within Core's file limit).")
    ] = "48h"
    database: Annotated[str | None, _describe("Default: the key prefix, else the resource's.")] = (
        None
    )
    time_column: Annotated[str, _describe("The table's time column.")] = "time"
    resource_key: Annotated[str, _describe("Key of the InfluxDB3Resource.")] = "influxdb"
    description: str | None = None
    group_name: str | None = None

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        from dagster_influx.observability import build_table_observation

        observation = build_table_observation(
            self.table,
            key=self.asset_key,
            partitions_def=self.partitions_def,
            lookback=self.lookback,
            resource_key=self.resource_key,
            time_column=self.time_column,
            database=self.database,
            description=self.description,
            group_name=self.group_name,
        )
        return Definitions(assets=[observation])


# ---------------------------------------------------------------------------------------------
# `dg scaffold defs` templates: each loads as written (`dg check defs`); replace the example
# values with yours. The comments say what each attribute is.
# ---------------------------------------------------------------------------------------------

_CONNECTION = """\
  # Server URL: queries go over Arrow Flight, writes over HTTP (InfluxDB 3 serves both on 8181).
  host: http://127.0.0.1:8181
  # Database queries and writes use by default.
  database: mydb
  # NAME of the environment variable holding the token (read when a run starts, never shown).
  token_env_var: INFLUXDB3_AUTH_TOKEN
"""

TEMPLATES: dict[str, str] = {
    "InfluxDB3ResourceComponent": _CONNECTION
    + """\
  # Key assets, IO managers and checks request the resource by.
  resource_key: influxdb
""",
    "InfluxDB3IOManagerComponent": _CONNECTION
    + """\
  # Key assets name in io_manager_key=...; inputs load as arrow (pyarrow.Table) or pandas.
  io_manager_key: influx_io
  load_as: arrow
""",
    "ParquetIOManagerComponent": """\
  # Local directory or fsspec URL: one Parquet file per partition under it.
  base_dir: /tmp/dagster-parquet
  # local, s3, gcs or azure; settings in `storage`, secrets as environment variable NAMES.
  provider: local
  storage: {}
  secret_env_vars: {}
  # e.g. provider: s3, storage: {region: eu-west-1},
  #      secret_env_vars: {access_key_id: AWS_ACCESS_KEY_ID, secret_access_key: AWS_SECRET_ACCESS_KEY}
  io_manager_key: parquet_io
""",
    "InfluxDB3DownsampleComponent": """\
  # Needs an InfluxDB3ResourceComponent (resource_key: influxdb) in the same project.
  source: cpu
  window: 1h
  aggregates:
    usage: [mean, max]
  group_by: [host]
  target_measurement: cpu_1h
  # Every partition must hold whole `window` buckets (checked when the definitions load).
  partitions_def:
    type: daily
    start_date: "2026-01-01"
""",
    "InfluxDB3ChecksComponent": """\
  # The asset checked (a/b/c) and the table its data lives in.
  asset_key: cpu_1h
  table: cpu_1h
  partitions_def:
    type: daily
    start_date: "2026-01-01"
  min_rows: 1
  no_nulls: [usage_mean]
  value_ranges:
    - column: usage_mean
      min: 0
      max: 100
""",
    "InfluxDB3ObservationComponent": """\
  # A raw table written outside Dagster; each partition gets its own data version.
  table: cpu
  partitions_def:
    type: daily
    start_date: "2026-01-01"
  # Keep it within the server's query file limit (Core: about 72 hours by default).
  lookback: 48h
""",
}


class InfluxDB3Scaffolder(Scaffolder):
    """Writes a commented `defs.yaml` whose example values load as they are."""

    def scaffold(self, request: ScaffoldRequest) -> None:
        name = request.type_name.rsplit(".", 1)[-1]
        body = f"type: {request.type_name}\n\nattributes:\n{TEMPLATES[name]}"
        path = request.target_path if request.append else request.target_path / "defs.yaml"
        with open(path, "a" if request.append else "w", encoding="utf-8") as f:
            f.write(("---\n" if request.append else "") + body)


for _component in (
    InfluxDB3ResourceComponent,
    InfluxDB3IOManagerComponent,
    ParquetIOManagerComponent,
    InfluxDB3DownsampleComponent,
    InfluxDB3ChecksComponent,
    InfluxDB3ObservationComponent,
):
    scaffold_with(InfluxDB3Scaffolder)(_component)
