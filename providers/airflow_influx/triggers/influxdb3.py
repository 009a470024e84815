"""``InfluxDB3SensorTrigger``: waits for data on the triggerer, without blocking its event loop.

Flight has no submit/poll API, so each poke runs the core client's blocking query in a worker
thread (``asyncio.to_thread``), like influxdb3-python's ``query_async``. Events carry only the
row count and the first cell, never result sets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_influx.sensors._condition import condition_met, json_safe, probe


class InfluxDB3SensorTrigger(BaseTrigger):
    """Polls a query every ``poke_interval`` seconds until the sensor's condition holds.

    Yields ``{"status": "success", "rows": n, "value": first_cell}`` when it does, or
    ``{"status": "error", "message": ...}`` on a non-retryable failure (bad token, bad query,
    unknown database). Transient failures (server unavailable, timeouts) are logged and retried
    at the next poke. The deferral timeout is enforced by Airflow.

    :param influxdb3_conn_id: the ``influxdb3_flight`` connection id.
    :param query: the query to run (already rendered).
    :param language: ``sql`` or ``influxql``; None for the connection's default.
    :param query_params: ``$name`` values.
    :param database: overrides the connection's database.
    :param min_rows: rows the query must return.
    :param value_op: optional comparison of the first cell (see the sensor).
    :param value: the value ``value_op`` compares with.
    :param poke_interval: seconds between pokes.
    :param timeout: seconds after which the trigger gives up with ``{"status": "timeout"}``.
        Airflow's deferral timeout also applies; this one makes the wait end in ``dag.test()``
        too, which runs triggers inline without enforcing deferral timeouts.
    """

    def __init__(
        self,
        *,
        influxdb3_conn_id: str,
        query: str,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        database: str | None = None,
        min_rows: int = 1,
        value_op: str | None = None,
        value: Any = None,
        poke_interval: float = 60.0,
        timeout: float | None = None,
    ) -> None:
        super().__init__()
        self.influxdb3_conn_id = influxdb3_conn_id
        self.query = query
        self.language = language
        self.query_params = dict(query_params) if query_params else None
        self.database = database
        self.min_rows = min_rows
        self.value_op = value_op
        self.value = value
        self.poke_interval = poke_interval
        self.timeout = timeout
        self._client: Any = None

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments (all JSON-safe) to rebuild it on the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "influxdb3_conn_id": self.influxdb3_conn_id,
                "query": self.query,
                "language": self.language,
                "query_params": self.query_params,
                "database": self.database,
                "min_rows": self.min_rows,
                "value_op": self.value_op,
                "value": self.value,
                "poke_interval": self.poke_interval,
                "timeout": self.timeout,
            },
        )

    async def _settings(self) -> Any:
        from airflow.sdk import BaseHook
        from airflow.sdk.log import amask_secret

        from airflow_influx.hooks._connection import settings_from_connection

        conn = await BaseHook.aget_connection(self.influxdb3_conn_id)
        settings = settings_from_connection(conn, database=self.database)
        if settings.config.token:
            await amask_secret(settings.config.token)
        return settings

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poke until the condition holds or a non-retryable error occurs."""
        from influx_flight import InfluxDB3Client, InfluxDB3Error

        try:
            settings = await self._settings()
        except Exception as exc:
            yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
            return
        language = self.language or settings.query_language
        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        self._client = InfluxDB3Client(settings.config)
        try:
            while True:
                try:
                    found = await asyncio.to_thread(
                        probe,
                        self._client,
                        self.query,
                        language=language,
                        params=self.query_params,
                        protocol=settings.protocol,
                        min_rows=self.min_rows,
                    )
                except InfluxDB3Error as exc:
                    if not exc.retryable:
                        message = settings.config.scrub(f"{type(exc).__name__}: {exc}")
                        yield TriggerEvent({"status": "error", "message": message})
                        return
                    self.log.warning("Transient error, poking again later: %s", exc)
                else:
                    if condition_met(
                        found, min_rows=self.min_rows, value_op=self.value_op, value=self.value
                    ):
                        yield TriggerEvent(
                            {
                                "status": "success",
                                "rows": found.rows,
                                "value": json_safe(found.first_value),
                            }
                        )
                        return
                    self.log.info(
                        "Condition not met (%d row(s), first value %r); next poke in %ss",
                        found.rows,
                        found.first_value,
                        self.poke_interval,
                    )
                if deadline is not None and time.monotonic() + self.poke_interval > deadline:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "message": f"no matching data after {self.timeout:g} s",
                        }
                    )
                    return
                await asyncio.sleep(self.poke_interval)
        finally:
            await self.cleanup_client()

    async def cleanup_client(self) -> None:
        """Cancel a query still running in the worker thread and close the client."""
        client, self._client = self._client, None
        if client is not None:
            client.cancel()
            await asyncio.to_thread(client.close)

    async def on_kill(self) -> None:
        """The task was killed by a user: stop the running Flight stream."""
        await self.cleanup_client()
