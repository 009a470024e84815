"""Triggers that run queries on the triggerer without blocking its event loop.

``InfluxDB3SensorTrigger`` waits for data; ``InfluxDB3QueryTrigger`` runs a deferred query.

Flight has no submit/poll API, so each poke runs the core client's blocking query in a worker
thread (``asyncio.to_thread``), like influxdb3-python's ``query_async``. Events carry only the
row count and the first cell, never result sets.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any, Required, TypedDict

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_influx._secrets import load_settings
from airflow_influx.sensors._condition import condition_met, json_safe, probe

if TYPE_CHECKING:
    from typing import Unpack


class QueryArguments(TypedDict, total=False):
    """The query both triggers run (keyword arguments of either trigger).

    :param influxdb3_conn_id: the ``influxdb3_flight`` connection id.
    :param query: the rendered query.
    :param language: ``sql`` or ``influxql``; None for the connection's default.
    :param query_params: ``$name`` values.
    :param database: overrides the connection's database.
    :param timeout: seconds (None: none); what it bounds is the trigger's to say.
    """

    influxdb3_conn_id: Required[str]
    query: Required[str]
    language: str | None
    query_params: Mapping[str, Any] | None
    database: str | None
    timeout: float | None


class _InfluxDB3Trigger(BaseTrigger):
    """What both triggers share: serialisation of their keyword arguments (never the token:
    the triggerer reads the connection), the connection's settings read in a thread, and one
    client that cancelling the trigger (deferral timeout, a killed task) closes mid-query."""

    #: Constructor keyword arguments, serialised as the attributes of the same names.
    serialized_fields: tuple[str, ...] = tuple(QueryArguments.__annotations__)

    _client: Any = None

    def __init__(self, **query: Unpack[QueryArguments]) -> None:
        unknown = sorted(set(query) - set(QueryArguments.__annotations__))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected keyword argument(s) {unknown}")
        super().__init__()
        self.influxdb3_conn_id = query["influxdb3_conn_id"]
        self.query = query["query"]
        self.language = query.get("language")
        self.query_params = dict(query.get("query_params") or {}) or None
        self.database = query.get("database")
        self.timeout = query.get("timeout")

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments (all JSON-safe) to rebuild it on the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {name: getattr(self, name) for name in self.serialized_fields},
        )

    async def _open(self) -> tuple[Any, TriggerEvent | None]:
        """The connection's settings (token masked) and a client on them (``_client``), or the
        error event when the connection cannot be read."""
        from influx_flight import InfluxDB3Client

        try:
            settings = await asyncio.to_thread(load_settings, self.influxdb3_conn_id, self.database)
        except Exception as exc:
            return None, TriggerEvent(
                {"status": "error", "message": f"{type(exc).__name__}: {exc}"}
            )
        self._client = InfluxDB3Client(settings.config)
        return settings, None

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Open the client, yield the subclass's events, close the client (also if cancelled)."""
        settings, failed = await self._open()
        if failed is not None:
            yield failed
            return
        try:
            async for event in self._events(settings, self.language or settings.query_language):
                yield event
        finally:
            await self.cleanup_client()

    def _events(self, settings: Any, language: str) -> AsyncIterator[TriggerEvent]:
        """The trigger's events, with ``_client`` open on ``settings``."""
        raise NotImplementedError

    async def cleanup_client(self) -> None:
        """Cancel a query still running in the worker thread and close the client."""
        client, self._client = self._client, None
        if client is not None:
            client.cancel()
            await asyncio.to_thread(client.close)

    async def cleanup(self) -> None:
        """Called by the triggerer after ``run`` ends or is cancelled: stop the query."""
        await self.cleanup_client()
        await super().cleanup()

    async def on_kill(self) -> None:
        """The task was killed by a user: stop the running query."""
        await self.cleanup_client()


class InfluxDB3SensorTrigger(_InfluxDB3Trigger):
    """Polls a query every ``poke_interval`` seconds until the sensor's condition holds.

    Yields ``{"status": "success", "rows": n, "value": first_cell}`` when it does, or
    ``{"status": "error", "message": ...}`` on a non-retryable failure (bad token, bad query,
    unknown database). Transient failures (server unavailable, timeouts) are logged and retried
    at the next poke. The deferral timeout is enforced by Airflow.

    :param query: the connection, query and ``timeout`` (:class:`QueryArguments`).
    :param min_rows: rows the query must return.
    :param value_op: optional comparison of the first cell (see the sensor).
    :param value: the value ``value_op`` compares with.
    :param poke_interval: seconds between pokes.
    ``timeout``: seconds after which the trigger gives up with ``{"status": "timeout"}``.
        Airflow's deferral timeout also applies; this one makes the wait end in ``dag.test()``
        too, which runs triggers inline without enforcing deferral timeouts.
    :param missing_table: ``"wait"``: a table that does not exist yet counts as no rows;
        ``"fail"``: it is an error.
    :param poke_at_start: poke at once (True) or ``poke_interval`` after starting (the sensor
        has just poked itself).

    :param started: when the sensor started waiting (epoch seconds), echoed in every event.
    :param checks_before: checks the sensor made before this trigger, added to ``checks``.

    Every event also carries ``checks`` (all checks so far) and ``started``, so a sensor that
    defers again keeps one overall timeout even where ``next_kwargs`` are not carried over.
    """

    serialized_fields = (
        *_InfluxDB3Trigger.serialized_fields,
        "min_rows",
        "value_op",
        "value",
        "poke_interval",
        "missing_table",
        "poke_at_start",
        "started",
        "checks_before",
    )

    def __init__(
        self,
        *,
        min_rows: int = 1,
        value_op: str | None = None,
        value: Any = None,
        poke_interval: float = 60.0,
        missing_table: str = "wait",
        poke_at_start: bool = True,
        started: float | None = None,
        checks_before: int = 0,
        **query: Unpack[QueryArguments],
    ) -> None:
        super().__init__(**query)
        self.started = started
        self.checks_before = checks_before
        self.min_rows = min_rows
        self.value_op = value_op
        self.value = value
        self.poke_interval = poke_interval
        self.missing_table = missing_table
        self.poke_at_start = poke_at_start

    async def _events(self, settings: Any, language: str) -> AsyncIterator[TriggerEvent]:
        """Poke until the condition holds, the timeout passes or a non-retryable error occurs."""
        from influx_flight import InfluxDB3Error

        deadline = None if self.timeout is None else time.monotonic() + self.timeout
        checks = 0
        if not self.poke_at_start:
            if deadline is not None and time.monotonic() + self.poke_interval > deadline:
                yield self._timeout_event(checks)
                return
            await asyncio.sleep(self.poke_interval)
        while True:
            checks += 1
            try:
                found = await asyncio.to_thread(
                    probe,
                    self._client,
                    self.query,
                    language=language,
                    params=self.query_params,
                    protocol=settings.protocol,
                    min_rows=self.min_rows,
                    missing_table=self.missing_table,
                )
            except InfluxDB3Error as exc:
                if not exc.retryable:
                    message = settings.config.scrub(f"{type(exc).__name__}: {exc}")
                    yield TriggerEvent({"status": "error", "message": message, "checks": checks})
                    return
                self.log.warning("Transient error, poking again later: %s", exc)
            else:
                if condition_met(
                    found, min_rows=self.min_rows, value_op=self.value_op, value=self.value
                ):
                    yield self._event(
                        {
                            "status": "success",
                            "rows": found.rows,
                            "value": json_safe(found.first_value),
                        },
                        checks,
                    )
                    return
                self.log.info(
                    "Condition not met (%s); next poke in %ss",
                    "table does not exist yet"
                    if found.missing_table
                    else f"{found.rows} row(s), first value {found.first_value!r}",
                    self.poke_interval,
                )
            if deadline is not None and time.monotonic() + self.poke_interval > deadline:
                yield self._timeout_event(checks)
                return
            await asyncio.sleep(self.poke_interval)

    def _timeout_event(self, checks: int) -> TriggerEvent:
        return self._event(
            {"status": "timeout", "message": f"no matching data after {self.timeout:g} s"}, checks
        )

    def _event(self, payload: dict[str, Any], checks: int) -> TriggerEvent:
        payload = {**payload, "checks": self.checks_before + checks}
        if self.started is not None:
            payload["started"] = self.started
        return TriggerEvent(payload)


class InfluxDB3QueryTrigger(_InfluxDB3Trigger):
    """Runs one query on the triggerer for a deferred ``InfluxDB3QueryOperator``.

    The blocking Flight read runs in a worker thread (``asyncio.to_thread``), so the triggerer's
    event loop keeps serving other triggers; if the trigger is cancelled (deferral timeout, a
    killed task) the query is cancelled on the server. The event carries the rows (at most
    ``max_rows``, JSON-safe, the same guard as the operator's XCom) or the error. The serialised
    trigger holds the connection id, never the token.

    :param query: the connection, query and ``timeout`` (:class:`QueryArguments`); ``timeout``
        is the query's deadline in seconds (None: the connection's).
    :param max_rows: the most rows the event may carry.
    """

    serialized_fields = (*_InfluxDB3Trigger.serialized_fields, "max_rows")

    def __init__(self, *, max_rows: int = 10_000, **query: Unpack[QueryArguments]) -> None:
        super().__init__(**query)
        self.max_rows = max_rows

    async def _events(self, settings: Any, language: str) -> AsyncIterator[TriggerEvent]:
        """Run the query in a thread; yield its rows or its error."""
        from influx_flight import InfluxDB3Error, ResultTooLargeError

        kwargs: dict[str, Any] = {"language": language, "protocol": settings.protocol}
        if self.query_params:
            kwargs["params"] = self.query_params
        if self.timeout is not None:
            kwargs["timeout"] = self.timeout

        def work() -> list[dict[str, Any]]:
            return self._client.query(self.query, **kwargs).to_records(max_rows=self.max_rows)

        started = time.perf_counter()
        try:
            records = await asyncio.to_thread(work)
        except ResultTooLargeError:
            yield TriggerEvent(
                {
                    "status": "too_large",
                    "message": f"the query returned more than max_rows={self.max_rows} rows, "
                    "too many for XCom (it lives in the metadata database).",
                    "retryable": False,
                }
            )
            return
        except InfluxDB3Error as exc:
            message = settings.config.scrub(f"{type(exc).__name__}: {exc}")
            yield TriggerEvent(
                {"status": "error", "message": message, "retryable": bool(exc.retryable)}
            )
            return
        yield TriggerEvent(
            {
                "status": "success",
                "records": records,
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
