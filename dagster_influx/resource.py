"""`InfluxDB3Resource`: the connection settings of one InfluxDB 3 database, as a Dagster resource.

The resource only translates Dagster config into the core's `InfluxDB3Config` and hands out an
`influx_flight.InfluxDB3Client`; every query, write and downsampling step is the core's code, so
the Airflow hook and this resource behave the same way.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr

from influx_flight import DEFAULT_RECEIVE_WINDOW

if TYPE_CHECKING:
    import pandas as pd
    import pyarrow as pa

    from influx_flight import DownsampleSpec, InfluxDB3Client, InfluxDB3Config, WriteResult

__all__ = ["InfluxDB3Resource"]

#: Read when a run starts if `write_url` is unset (the stand-in prints it with the settings).
ENV_WRITE_URL = "INFLUXDB3_WRITE_URL"
_DOCS = "https://docs.influxdata.com/influxdb3/core/reference/config-options/"


class InfluxDB3Resource(ConfigurableResource):
    """Connection to one InfluxDB 3 database (queries over Arrow Flight, writes over HTTP).

    Inside a run the resource opens one client on first use and closes it when the run's
    resources are torn down, so every asset, IO manager and check of the run shares one gRPC
    channel. Outside a run (`get_client()` on a plain instance), each `with` block gets its own
    client, closed on exit.

    Give the token as `dagster.EnvVar("NAME")`: Dagster reads it when the run starts and never
    shows its value; the resource's repr leaves it out.

    Examples:
        .. code-block:: python

            import dagster as dg
            from dagster_influx import InfluxDB3Resource

            @dg.asset
            def cpu_hosts(influxdb: InfluxDB3Resource) -> None:
                table = influxdb.query("SELECT DISTINCT host FROM cpu")
                ...

            defs = dg.Definitions(
                assets=[cpu_hosts],
                resources={
                    "influxdb": InfluxDB3Resource(
                        host="http://127.0.0.1:8181",
                        database="telegraf",
                        token=dg.EnvVar("INFLUXDB3_AUTH_TOKEN"),
                    )
                },
            )
    """

    host: str = Field(
        description=(
            "Server URL: 'http://127.0.0.1:8181', 'https://host', 'grpc+tls://host:443' or a bare"
            " 'host:port'. Queries go over Arrow Flight to this address."
        )
    )
    database: str = Field(description="Database (bucket) that queries and writes use by default.")
    token: str | None = Field(
        default=None,
        repr=False,
        description=(
            "API token. Pass dagster.EnvVar('INFLUXDB3_AUTH_TOKEN') so the value is read at run"
            " time and never shown. Leave empty for a server started with --without-auth."
        ),
    )
    auth_scheme: str = Field(
        default="Bearer",
        description="Authorization scheme sent with the token: 'Bearer' (v3) or 'Token' (v2 API).",
    )
    verify_tls: bool = Field(
        default=True,
        description="Verify the server certificate on TLS connections. Disable only for tests.",
    )
    ca_cert: str | None = Field(
        default=None,
        description=(
            "CA certificates for a private CA: a path to a PEM bundle or the PEM text itself"
            f" ({_DOCS})."
        ),
    )
    query_timeout: float | None = Field(
        default=300.0,
        description="Seconds a whole query (including streaming its result) may take; null: none.",
    )
    write_timeout: float | None = Field(
        default=30.0,
        description="Seconds one HTTP write request may take before it is retried; null: none.",
    )
    write_url: str | None = Field(
        default=None,
        description=(
            "Separate base URL for HTTP writes (for example when Flight and HTTP listen on"
            " different ports). Unset: the INFLUXDB3_WRITE_URL environment variable when a run"
            " starts, else the host."
        ),
    )

    receive_window: int | None = Field(
        default=DEFAULT_RECEIVE_WINDOW,
        description=(
            "Bytes of a query result gRPC may buffer ahead of the reader (fixed HTTP/2 window);"
            " bounds receive memory. Raise for fast high-latency links (throughput <= window /"
            " round-trip time); null: gRPC's adaptive window."
        ),
    )

    _client: InfluxDB3Client | None = PrivateAttr(default=None)
    _in_run: bool = PrivateAttr(default=False)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    # -- configuration ------------------------------------------------------------------------

    def to_config(self) -> InfluxDB3Config:
        """The core configuration these settings describe (validated by the core)."""
        from influx_flight import InfluxDB3Config

        return InfluxDB3Config(
            host=self.host,
            database=self.database,
            token=self.token,
            auth_scheme=self.auth_scheme,
            verify_tls=self.verify_tls,
            ca_cert=self.ca_cert,
            query_timeout=self.query_timeout,
            write_timeout=self.write_timeout,
            write_url=self.write_url or os.environ.get(ENV_WRITE_URL) or None,
            receive_window=self.receive_window,
        )

    # -- lifecycle ----------------------------------------------------------------------------

    def setup_for_execution(self, context: InitResourceContext) -> None:
        """Mark the run scope; the client itself is opened lazily on first use."""
        self._in_run = True
        self._client = None

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        """Close the run's client (called even when steps failed)."""
        client, self._client = self._client, None
        self._in_run = False
        if client is not None:
            client.close()

    @contextmanager
    def get_client(self) -> Iterator[InfluxDB3Client]:
        """Yield a connected `InfluxDB3Client`.

        Within a run this is the run's shared client (closed at teardown, not here); outside a
        run a new client is opened and closed when the block exits.
        """
        if self._in_run:
            with self._lock:  # threads of one step share the run's client
                if self._client is None:
                    from influx_flight import InfluxDB3Client

                    self._client = InfluxDB3Client(self.to_config())
                client = self._client
            yield client
            return
        from influx_flight import InfluxDB3Client

        client = InfluxDB3Client(self.to_config())
        try:
            yield client
        finally:
            client.close()

    # -- conveniences over the client -----------------------------------------------------------
    # They forward to the client's methods with the same arguments (see
    # `influx_flight.InfluxDB3Client`), so they cannot drift from it.

    def query(self, text: str, **kwargs: Any) -> pa.Table:
        """`client.query(text, **kwargs).to_table()`: the whole result as an Arrow table
        (timestamps in UTC). For results too large for memory use `get_client()` and iterate
        the batches."""
        with self.get_client() as client:
            return client.query(text, **kwargs).to_table()

    def query_pandas(self, text: str, **kwargs: Any) -> pd.DataFrame:
        """`client.query(text, **kwargs).to_pandas()` (needs the `pandas` extra)."""
        with self.get_client() as client:
            return client.query(text, **kwargs).to_pandas()

    def write(self, data: Any, **kwargs: Any) -> WriteResult:
        """`client.write(data, **kwargs)`: an Arrow table or DataFrame as line protocol.

        A point with the same measurement, tag set and time as an existing one replaces its
        fields (InfluxDB's upsert), so re-writing the same data is idempotent.
        """
        with self.get_client() as client:
            return client.write(data, **kwargs)

    def downsample(self, spec: DownsampleSpec, start: Any, end: Any, **kwargs: Any) -> Any:
        """`client.downsample(spec, start, end, **kwargs)`: query plus write-back over
        `[start, end)`."""
        with self.get_client() as client:
            return client.downsample(spec, start, end, **kwargs)
