"""OpenLineage for the operators: which tables a task read and what it wrote.

Datasets follow OpenLineage naming with InfluxDB 3 as a database: namespace
``influxdb3://<host>:<port>``, name ``<database>.iox.<table>``; Parquet outputs are ``file`` /
``s3://bucket`` datasets named by path. OpenLineage imports happen here, at call time, so the
provider works without the OpenLineage provider installed.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

_FROM = re.compile(
    r"""\b(?:FROM|JOIN)\s+((?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)(?:\s*\.\s*(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*))*)""",
    re.IGNORECASE,
)
_IDENT = re.compile(r'"(?:[^"]|"")+"|[A-Za-z_][\w$]*')
_SKIP_SCHEMAS = {"information_schema", "system"}


def _unquote(part: str) -> str:
    part = part.strip()
    if part.startswith('"') and part.endswith('"'):
        return part[1:-1].replace('""', '"')
    return part


def tables_in_query(query: str, language: str | None = None) -> list[str]:
    """Table names after FROM/JOIN (SQL and InfluxQL), without subqueries or system tables."""
    seen: list[str] = []
    for match in _FROM.finditer(query or ""):
        parts = [_unquote(p) for p in _IDENT.findall(match.group(1))]
        if parts and parts[0].lower() in _SKIP_SCHEMAS:
            continue
        if len(parts) >= 2 and parts[-2].lower() == "iox":
            parts = parts[-1:]
        name = parts[-1]
        if name and name not in seen:
            seen.append(name)
    return seen


def namespace(config: Any) -> str:
    """``influxdb3://host:port`` of a core config (the server the task talked to)."""
    parts = urlsplit(config.flight_location)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    return f"influxdb3://{host}:{parts.port}"


def table_dataset(op: Any, table: str, *, database: str | None = None) -> Any:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    config = op.get_hook().get_config()
    # database.schema.table, as common.sql's SQL parser names it (InfluxDB 3's schema is iox).
    return Dataset(namespace=namespace(config), name=f"{database or config.database}.iox.{table}")


def file_dataset(path: str) -> Any:
    """A Parquet destination as an OpenLineage dataset (credentials dropped)."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    if "://" not in path:
        return Dataset(namespace="file", name=path)
    parts = urlsplit(path)
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if parts.scheme == "file":
        return Dataset(namespace="file", name=parts.path)
    return Dataset(namespace=f"{parts.scheme}://{netloc}", name=parts.path.lstrip("/"))


def operator_lineage(op: Any) -> Any:
    """``OperatorLineage`` for one of this provider's operators, after it ran."""
    from airflow.providers.common.compat.openlineage.facet import SQLJobFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    inputs = [table_dataset(op, table) for table in op._lineage_inputs()]
    outputs = list(op._lineage_outputs())
    job_facets: dict[str, Any] = {}
    query = getattr(op, "query", None)
    if isinstance(query, str) and query:
        job_facets["sql"] = SQLJobFacet(query=query)
    return OperatorLineage(inputs=inputs, outputs=outputs, job_facets=job_facets)
