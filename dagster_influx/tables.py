"""Which InfluxDB 3 table an asset stores into, and refusing two assets that share one.

The rule (Dagster's schema convention, with the database in the schema's place):

1. asset metadata `database` / `table`, when given;
2. else, for the database, the IO manager's `database` setting (if it has one);
3. else the asset key's prefix: `["site_a", "readings"]` is table `readings` in database
   `site_a` (the component before the last one, as Dagster's `DbIOManager` takes the schema);
4. else the resource's database; the table is the key's last component.

Two assets that resolve to the same table would read and overwrite each other's rows without
any error. Dagster calls nothing of a library with every asset and resource while a code
location loads, so they are refused where we can see them all: `validate_tables(defs)` where
Python Definitions are built (every example does it), the YAML components when a `dg` project
loads (`dagster_influx.components`), and, whatever the load did, the IO managers and the
downsampling factory before they write (the run's whole code location, or the whole
selection of a `dg.materialize` run).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster import AssetKey, DagsterInvalidDefinitionError, Definitions

if TYPE_CHECKING:
    from dagster import AssetsDefinition

__all__ = ["TableRef", "table_for_asset", "validate_tables"]

#: Definition metadata the downsampling factory sets on assets whose runs write a table
#: themselves (not through an IO manager): the key of the resource they write with.
WRITES_TABLE = "dagster_influx/writes_table"


@dataclass(frozen=True)
class TableRef:
    """A table in a database; `database=None` means the resource's database."""

    database: str | None
    table: str

    def describe(self, default: str | None = None) -> str:
        database = self.database or default or "<the resource's database>"
        return f"{database}.{self.table}"


def table_for_asset(
    key: AssetKey, metadata: Mapping[str, Any] | None = None, *, database: str | None = None
) -> TableRef:
    """The table an asset stores into; `database` is an IO manager's own setting, if any."""
    meta = metadata or {}
    table = _text(meta.get("table")) or key.path[-1]
    db = _text(meta.get("database")) or database or (key.path[-2] if len(key.path) > 1 else None)
    return TableRef(db, table)


def _text(value: object) -> str | None:
    value = getattr(value, "value", value)  # a MetadataValue.text(...)
    return str(value) if value else None


def _writers(
    assets: Iterable[AssetsDefinition], resources: Mapping[str, Any]
) -> dict[TableRef, list[tuple[AssetKey, str | None]]]:
    """Every table written by these assets -> (asset key, default database) of its writers."""
    from dagster_influx.io_managers import InfluxDB3IOManager

    out: dict[TableRef, list[tuple[AssetKey, str | None]]] = {}
    for assets_def in assets:
        for key in assets_def.keys:
            metadata = assets_def.metadata_by_key.get(key) or {}
            resource_key = _text(metadata.get(WRITES_TABLE))
            if resource_key:
                resource = resources.get(resource_key)
                default = _plain(getattr(resource, "database", None))
                ref = table_for_asset(key, metadata)
                out.setdefault(_resolve(ref, default), []).append((key, default))
                continue
            manager = resources.get(assets_def.get_io_manager_key_for_asset_key(key))
            if isinstance(manager, InfluxDB3IOManager):
                ref = table_for_asset(key, metadata, database=manager.database)
                default = _plain(manager.influxdb.database)
                out.setdefault(_resolve(ref, default), []).append((key, default))
    return out


def _plain(value: object) -> str | None:
    """A setting's text, without resolving an `EnvVar` (its name stands for it)."""
    from dagster import EnvVar

    if isinstance(value, EnvVar):
        return f"${{{value.env_var_name}}}"
    return None if value is None else str(value)


def _resolve(ref: TableRef, default: str | None) -> TableRef:
    return ref if ref.database is not None else TableRef(default, ref.table)


def shared_tables(
    assets: Iterable[AssetsDefinition], resources: Mapping[str, Any]
) -> dict[TableRef, list[AssetKey]]:
    """Tables that more than one asset writes (empty when every asset has its own)."""
    return {
        ref: [key for key, _ in writers]
        for ref, writers in _writers(assets, resources).items()
        if len({key for key, _ in writers}) > 1
    }


def conflict_message(conflicts: Mapping[TableRef, list[AssetKey]]) -> str:
    lines = [
        f"{ref.describe()}: {', '.join(k.to_user_string() for k in keys)}"
        for ref, keys in conflicts.items()
    ]
    return (
        "Several assets store into the same InfluxDB 3 table, so each would read and overwrite"
        " the others' rows: " + "; ".join(lines) + ". Give each asset its own table: a key"
        ' prefix (the database), or asset metadata {"database": ..., "table": ...}.'
    )


def validate_tables(defs: Definitions) -> Definitions:
    """Raise `DagsterInvalidDefinitionError` if two assets of `defs` share a table; return defs.

    Use it where the Definitions are built (`defs = validate_tables(dg.Definitions(...))`) so
    that `dg check defs` and the UI's code location load fail with the list of clashes.
    """
    graph = defs.resolve_asset_graph()
    resources = dict(defs.resources or {})
    conflicts = shared_tables(graph.assets_defs, resources)
    if conflicts:
        raise DagsterInvalidDefinitionError(conflict_message(conflicts))
    return defs


def refuse_shared_tables(context: Any, key: AssetKey) -> None:
    """Before a write: refuse if any other asset the run can see stores into this table.

    Dagster calls nothing of ours with every asset and resource while a code location loads
    (`validate_tables` is that check, where the user builds Definitions). So every write
    checks what its run can see and refuses with the list of clashing assets before anything
    is written: from a code location (UI, CLI, schedules, backfills) all of its assets with
    their IO managers and resources, whichever job the run belongs to; from `dg.materialize`
    or `execute_in_process` every asset of the run's job (its whole selection: Dagster
    builds that job from the selected assets only).
    """
    step = getattr(context, "step_context", None)
    if step is None:
        op_context = getattr(context, "op_execution_context", None)
        step = getattr(op_context, "_step_execution_context", None)
    job = getattr(step, "job_def", None)
    if job is None:  # direct invocation: there is no job to compare with
        return
    try:
        repository = step.repository_def
    except Exception:  # executed without a repository (materialize, execute_in_process)
        repository = None
    resources = {k: _configured(v) for k, v in job.resource_defs.items()}
    assets = {id(a): a for a in job.asset_layer.asset_graph.assets_defs}
    if repository is not None:
        resources.update(
            (k, _configured(v)) for k, v in repository.get_top_level_resources().items()
        )
        assets.update((id(a), a) for a in repository.asset_graph.assets_defs)
    conflicts = {
        ref: keys for ref, keys in shared_tables(assets.values(), resources).items() if key in keys
    }
    if conflicts:
        raise DagsterInvalidDefinitionError(conflict_message(conflicts))


def _configured(resource_def: Any) -> Any:
    """The configured object behind a Pythonic resource definition (its settings), else it."""
    return getattr(getattr(resource_def, "_resource_fn", None), "__self__", resource_def)
