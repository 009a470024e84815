"""The result stream: one schema over all measurements (types unified), InfluxDB 3's group-key
metadata, batches flowing measurement after measurement."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa

from influx_flight.server.errors import ServerError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql.schema import GROUP_KEY_METADATA, MEASUREMENT, common_type
from influx_flight.server.influxql.sql import plan_error
from influx_flight.server.influxql.timerange import strip_parens


class Emitter:
    """Streaming the planned queries (a mixin of ``SelectPlanner``)."""

    def _stream(self, frames: list[Any]) -> pa.RecordBatchReader:
        """One schema over all measurements; batches flow measurement after measurement."""
        if not frames:
            fields = [
                pa.field(MEASUREMENT, pa.string()),
                pa.field(self.time_alias, self._time_type()),
            ]
            fields += [
                pa.field(t, pa.string()) for t in self.group_tags if t not in self._proj_names()
            ]
            fields += [pa.field(n, pa.float64()) for n in self.names]
            schema = pa.schema(fields, metadata=self._metadata(fields))
            return pa.RecordBatchReader.from_batches(schema, [])
        schemas = []
        for df in frames:
            try:
                schemas.append(df.schema())
            except Exception as exc:
                raise plan_error(exc) from exc
        out_fields = []
        for i, f0 in enumerate(schemas[0]):
            typ = f0.type
            for s in schemas[1:]:
                t2 = s.field(i).type
                if t2 != typ:
                    typ = common_type(typ, t2)
            if i == 1:
                typ = self._time_type()
            if pa.types.is_dictionary(typ):
                typ = typ.value_type
            out_fields.append(pa.field(f0.name, typ))
        schema = pa.schema(out_fields, metadata=self._metadata(out_fields))

        def batches() -> Iterator[pa.RecordBatch]:
            for df in frames:
                try:
                    for rb in self.engine.stream_batches(df):  # stops when the client goes
                        if rb.num_rows == 0:
                            continue
                        yield _conform(rb, schema)
                except ServerError:
                    raise
                except Exception as exc:
                    raise plan_error(exc) from exc

        return pa.RecordBatchReader.from_batches(schema, batches())

    def _explain_stream(self, frames: list[Any]) -> pa.RecordBatchReader:
        """EXPLAIN: DataFusion's plans of the measurements' queries, as SQL's EXPLAIN shows them
        (``plan_type``, ``plan``), one measurement after the other."""
        schema = pa.schema([("plan_type", pa.string()), ("plan", pa.string())])
        batches = []
        for df in frames:
            try:
                table = df.to_arrow_table()
            except Exception as exc:
                raise plan_error(exc) from exc
            cols = [table.column(n).cast(pa.string()) for n in ("plan_type", "plan")]
            batches += pa.table(cols, schema=schema).to_batches()
        return pa.RecordBatchReader.from_batches(schema, batches)

    def _proj_names(self) -> set[str]:
        return {
            strip_parens(f.expr).name
            for f in self.fields
            if isinstance(strip_parens(f.expr), ast.VarRef)
        }

    def _time_type(self) -> pa.DataType:
        return pa.timestamp("ns", tz=self.stmt.tz) if self.stmt.tz else pa.timestamp("ns")

    def _metadata(self, fields: list[pa.Field]) -> dict[bytes, bytes]:
        """``iox::influxql::group_key::metadata`` as pbjson writes it (defaults omitted)."""
        names = [f.name for f in fields]
        projected = self._proj_names()
        keys = []
        for t in sorted(self.group_tags):
            if t not in names:
                continue
            entry: dict[str, Any] = {"tagKey": t, "columnIndex": names.index(t)}
            if t in projected:
                entry["isProjected"] = True
            keys.append(entry)
        md: dict[str, Any] = {}
        if keys:
            md["tagKeyColumns"] = keys
        return {GROUP_KEY_METADATA: json.dumps(md, separators=(",", ":")).encode()}


def _conform(rb: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    cols = []
    for i, f in enumerate(schema):
        col = rb.column(i)
        if col.type != f.type:
            if pa.types.is_dictionary(col.type):
                col = col.dictionary_decode()
            col = col.cast(f.type)
        cols.append(col)
    return pa.RecordBatch.from_arrays(cols, schema=schema)


__all__ = ["Emitter"]
