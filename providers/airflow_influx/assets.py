"""The ``influxdb3`` Asset URI scheme: one stable Asset per InfluxDB 3 table.

``influxdb3://<authority>/<database>/<table>``, where the authority is the Airflow connection id
the producing task writes through (``influxdb3_flight_default``) or a ``host:port``. Both the
producer (e.g. :class:`~airflow_influx.operators.influxdb3.InfluxDB3DownsampleOperator`, whose
target table is its outlet) and consumer DAGs (``schedule=[influxdb3_asset("home_1h", ...)]``)
build the same URI with :func:`influxdb3_asset`, so they meet without the scheduler reading a
connection at parse time. ``influxdb3://<authority>/<table>`` (no database) stands for the
connection's own database.

Registered in provider info (``asset-uris``): Airflow calls :func:`sanitize_uri` on every
``influxdb3://`` URI, so spellings that differ only in case or a trailing slash are one Asset.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import SplitResult, urlsplit

if TYPE_CHECKING:
    from airflow.sdk import Asset

SCHEME = "influxdb3"
DEFAULT_AUTHORITY = "influxdb3_flight_default"


def sanitize_uri(uri: SplitResult) -> SplitResult:
    """Normalise an ``influxdb3://`` URI; refuse shapes that cannot name a table."""
    if not uri.netloc:
        raise ValueError(
            "influxdb3 asset URI needs an authority (a connection id or host:port), e.g. "
            "influxdb3://influxdb3_flight_default/mydb/home_1h"
        )
    if "@" in uri.netloc:
        raise ValueError("influxdb3 asset URI must not carry credentials")
    segments = [s for s in uri.path.split("/") if s]
    if not 1 <= len(segments) <= 2:
        raise ValueError(
            f"influxdb3 asset URI path must be /<database>/<table> or /<table>, got {uri.path!r}"
        )
    if uri.query or uri.fragment:
        raise ValueError("influxdb3 asset URI takes no query string or fragment")
    return uri._replace(scheme=SCHEME, netloc=uri.netloc.lower(), path="/" + "/".join(segments))


def asset_uri(table: str, *, database: str | None = None, conn_id: str | None = None) -> str:
    """``influxdb3://<conn_id>/<database>/<table>`` (the database part only when given)."""
    authority = (conn_id or DEFAULT_AUTHORITY).lower()
    path = f"{database}/{table}" if database else table
    return f"{SCHEME}://{authority}/{path}"


def influxdb3_asset(
    table: str,
    *,
    database: str | None = None,
    conn_id: str | None = None,
    **kwargs: Any,
) -> Asset:
    """The Asset for an InfluxDB 3 table, the same one the downsample operator emits.

    :param table: the table (measurement).
    :param database: its database; None for the connection's own.
    :param conn_id: the ``influxdb3_flight`` connection id (the URI's authority).
    :param kwargs: passed to ``Asset`` (``name``, ``group``, ``extra``, ...).
    """
    from airflow_influx._compat import Asset

    uri = asset_uri(table, database=database, conn_id=conn_id)
    kwargs.setdefault("name", uri)
    kwargs.setdefault("group", "influxdb3")
    return Asset(uri=uri, **kwargs)


def create_asset(
    *, table: str, database: str | None = None, conn_id: str | None = None, **kwargs: Any
) -> Asset:
    """Asset factory registered for the ``influxdb3`` scheme."""
    return influxdb3_asset(table, database=database, conn_id=conn_id, **kwargs)


def convert_asset_to_openlineage(asset: Any, lineage_context: Any = None) -> Any:
    """OpenLineage dataset for an ``influxdb3://`` Asset: namespace by authority, name db.iox.table."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    parts = urlsplit(asset.uri)
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) == 2:
        segments.insert(1, "iox")
    return Dataset(namespace=f"{SCHEME}://{parts.netloc}", name=".".join(segments))
