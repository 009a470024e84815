"""SHOW statements with InfluxDB 3's shapes (``influxdb3-protocol.md`` §4.2).

SHOW MEASUREMENTS, TAG KEYS and FIELD KEYS answer from the catalog unless a WHERE clause asks
for a data scan; SHOW TAG VALUES always scans. A scan without a time condition looks at the last
24 hours only, as InfluxDB 3 does (``influxql_metadata_cutoff``).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from influx_flight.server.influxql import ast
from influx_flight.server.influxql.parser import not_implemented
from influx_flight.server.influxql.planner import SelectPlanner
from influx_flight.server.influxql.schema import (
    GROUP_KEY_METADATA,
    MEASUREMENT,
    Schema,
    engine_tables,
    field_type_name,
)
from influx_flight.server.influxql.sql import plan_error, qi, ts
from influx_flight.server.influxql.timerange import split_condition
from influx_flight.server.regex import compile_regex

METADATA_CUTOFF_NS = 24 * 3600 * 1_000_000_000


_regex = compile_regex


def _select_measurements(tables: dict[str, Schema], sources: list[ast.Measurement]) -> list[str]:
    if not sources:
        return sorted(tables)
    names: set[str] = set()
    for src in sources:
        if src.database is not None:
            raise not_implemented("database prefix in qualified measurement syntax")
        if src.regex is not None:
            rx = _regex(src.regex)
            names.update(n for n in tables if rx.search(n))
        elif src.name in tables:
            names.add(src.name)
    return sorted(names)


def _page(rows: list[Any], limit: int | None, offset: int | None) -> list[Any]:
    start = offset or 0
    return rows[start : start + limit] if limit is not None and limit > 0 else rows[start:]


def _reader(schema: pa.Schema, columns: list[list[Any]]) -> pa.RecordBatchReader:
    schema = schema.with_metadata({GROUP_KEY_METADATA: b"{}"})
    batch = pa.RecordBatch.from_arrays(
        [pa.array(c, type=f.type) for c, f in zip(columns, schema, strict=True)], schema=schema
    )
    return pa.RecordBatchReader.from_batches(schema, [batch] if batch.num_rows else [])


class _Scanner:
    """Evaluates a SHOW statement's WHERE clause against the data of one measurement."""

    def __init__(self, engine: Any, database: str, condition: ast.Expr | None, now_ns: int) -> None:
        self.engine = engine
        self.database = database
        self.now_ns = now_ns
        self.range, self.rest = split_condition(condition, now_ns, None)
        if self.range.lower is None and self.range.upper is None:
            self.range.lower = now_ns - METADATA_CUTOFF_NS
        self.session = engine.session(database)
        self._planner = SelectPlanner.condition_compiler(self.range, self.rest)

    def where(self, schema: Schema) -> str:
        return " AND ".join(self._planner._where(schema)) or "TRUE"

    def query(self, sql: str) -> pa.Table:
        try:
            df = self.session.sql(sql)
        except Exception as exc:
            raise plan_error(exc) from exc
        # a data scan: Core's --query-file-limit applies, as for SQL
        self.engine.check_file_limit(self.database, df)
        try:
            return df.to_arrow_table()
        except Exception as exc:
            raise plan_error(exc) from exc


def show(engine: Any, database: str, stmt: ast.Statement, now_ns: int) -> pa.RecordBatchReader:
    """Run one SHOW statement."""
    if isinstance(stmt, ast.ShowRetentionPolicies):
        if stmt.on is not None:
            raise not_implemented("SHOW RETENTION POLICIES ON <database>")
        schema = pa.schema(
            [
                (MEASUREMENT, pa.string()),
                ("name", pa.string()),
                ("duration", pa.string()),
                ("shardGroupDuration", pa.string()),
                ("replicaN", pa.int64()),
                ("default", pa.bool_()),
            ]
        )
        return _reader(
            schema, [["retention_policies"], ["autogen"], ["0s"], ["168h0m0s"], [1], [True]]
        )
    on = getattr(stmt, "on", None)
    kind = type(stmt).__name__
    label = {
        "ShowMeasurements": "SHOW MEASUREMENTS",
        "ShowTagKeys": "SHOW TAG KEYS",
        "ShowTagValues": "SHOW TAG VALUES",
        "ShowFieldKeys": "SHOW FIELD KEYS",
    }[kind]
    if on is not None:
        raise not_implemented(f"{label} ON <database>")
    tables = engine_tables(engine, database)

    if isinstance(stmt, ast.ShowMeasurements):
        names = sorted(tables)
        if stmt.measurement is not None:
            if stmt.measurement.regex is not None:
                rx = _regex(stmt.measurement.regex)
                names = [n for n in names if rx.search(n)]
            else:
                names = [n for n in names if n == stmt.measurement.name]
        if stmt.condition is not None:
            sc = _Scanner(engine, database, stmt.condition, now_ns)
            names = [
                n
                for n in names
                if sc.query(
                    f"SELECT 1 FROM public.iox.{qi(n)} WHERE {sc.where(tables[n])} LIMIT 1"
                ).num_rows
            ]
        names = _page(names, stmt.limit, stmt.offset)
        schema = pa.schema([(MEASUREMENT, pa.string()), ("name", pa.string())])
        return _reader(schema, [["measurements"] * len(names), names])

    if isinstance(stmt, ast.ShowFieldKeys):
        ms, keys, types = [], [], []
        for m in _select_measurements(tables, stmt.sources):
            rows = _page(sorted(tables[m].fields.items()), stmt.limit, stmt.offset)
            for name, typ in rows:
                ms.append(m)
                keys.append(name)
                types.append(field_type_name(typ))
        schema = pa.schema(
            [(MEASUREMENT, pa.string()), ("fieldKey", pa.string()), ("fieldType", pa.string())]
        )
        return _reader(schema, [ms, keys, types])

    if isinstance(stmt, ast.ShowTagKeys):
        ms, keys = [], []
        sc = _Scanner(engine, database, stmt.condition, now_ns) if stmt.condition else None
        for m in _select_measurements(tables, stmt.sources):
            tags = tables[m].tags
            if sc is not None and tags:
                cols = ", ".join(f"count({qi(t)}) AS {qi(t)}" for t in tags)
                tbl = sc.query(f"SELECT {cols} FROM public.iox.{qi(m)} WHERE {sc.where(tables[m])}")
                tags = [t for t in tags if tbl.column(t)[0].as_py()]
            for t in _page(sorted(tags), stmt.limit, stmt.offset):
                ms.append(m)
                keys.append(t)
        schema = pa.schema([(MEASUREMENT, pa.string()), ("tagKey", pa.string())])
        return _reader(schema, [ms, keys])

    assert isinstance(stmt, ast.ShowTagValues)
    sc = _Scanner(engine, database, stmt.condition, now_ns)
    ms, ks, vs = [], [], []
    rx = _regex(stmt.key_regex) if stmt.key_regex is not None else None
    for m in _select_measurements(tables, stmt.sources):
        keys = []
        for t in tables[m].tags:
            if stmt.key_op in ("=", "IN"):
                ok = t in stmt.key_values
            elif stmt.key_op == "!=":
                ok = t not in stmt.key_values
            elif stmt.key_op == "=~":
                ok = bool(rx and rx.search(t))
            else:
                ok = not (rx and rx.search(t))
            if ok:
                keys.append(t)
        rows: list[tuple[str, str]] = []
        for k in sorted(keys):
            tbl = sc.query(
                f"SELECT DISTINCT CAST({qi(k)} AS VARCHAR) AS v FROM public.iox.{qi(m)} "
                f"WHERE {qi(k)} IS NOT NULL AND {sc.where(tables[m])} ORDER BY v"
            )
            rows += [(k, v) for v in tbl.column(0).to_pylist()]
        for k, v in _page(rows, stmt.limit, stmt.offset):
            ms.append(m)
            ks.append(k)
            vs.append(v)
    schema = pa.schema([(MEASUREMENT, pa.string()), ("key", pa.string()), ("value", pa.string())])
    return _reader(schema, [ms, ks, vs])


__all__ = ["METADATA_CUTOFF_NS", "show", "ts"]
