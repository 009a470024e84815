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
from dagster.components import Component, ComponentLoadContext, Model, Resolvable, Resolver
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

if TYPE_CHECKING:
    from influx_flight import DownsampleSpec

__all__ = ["InfluxDB3DownsampleComponent", "InfluxDB3ResourceComponent"]


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
    resource_key: str = Field(
        default="influxdb", description="Key under which assets request the resource."
    )

    def build_resource(self) -> InfluxDB3Resource:
        """The configured resource (token as an `EnvVar`, not its value)."""
        settings = self.model_dump(exclude={"token_env_var", "resource_key"})
        token = EnvVar(self.token_env_var) if self.token_env_var else None
        return InfluxDB3Resource(**settings, token=token)

    def build_defs(self, context: ComponentLoadContext) -> Definitions:
        return Definitions(resources={self.resource_key: self.build_resource()})


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
        return Definitions(assets=[asset])
