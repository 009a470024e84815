"""``InfluxDB3Sensor``: wait until a query returns rows, or its first value passes a check."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue, conf

from airflow_influx.sensors._condition import condition_met, json_safe, validate

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook


class InfluxDB3Sensor(BaseSensorOperator):
    """Waits for data in InfluxDB 3: in ``poke``, ``reschedule`` or deferrable mode.

    Succeeds when the query returns at least ``min_rows`` rows and, if asked, the first cell of
    the first row passes ``value_op``/``value`` (e.g. ``value_op=">=", value=100`` on a
    ``SELECT count(*)``) and then ``check``. The first cell goes to XCom. In deferrable mode the
    waiting happens in :class:`~airflow_influx.triggers.influxdb3.InfluxDB3SensorTrigger`; a
    ``check`` callable (not serialisable) is then applied when the trigger fires, and the sensor
    defers again if it fails.

    Example::

        InfluxDB3Sensor(
            task_id="wait_for_hour",
            query="SELECT count(*) FROM home WHERE time >= $start AND time < $end",
            query_params={"start": "{{ data_interval_start }}", "end": "{{ data_interval_end }}"},
            value_op=">=", value=2, mode="reschedule", poke_interval=300,
        )

    :param query: SQL or InfluxQL (templated; ``.sql`` / ``.influxql`` files are loaded).
    :param language: ``sql`` or ``influxql``; default: inferred from an ``.influxql`` file name,
        else the connection's ``query_language``.
    :param query_params: values for ``$name`` placeholders (templated).
    :param min_rows: the query must return at least this many rows.
    :param value_op: ``truthy``, ``==``, ``!=``, ``>``, ``>=``, ``<`` or ``<=`` on the first cell.
    :param value: what ``value_op`` compares the first cell with.
    :param check: optional callable on the first cell; returns True when done.
    :param deferrable: wait on the triggerer instead of a worker slot.
    :param influxdb3_conn_id: the ``influxdb3_flight`` connection (templated).
    :param database: overrides the connection's database (templated).
    """

    template_fields: Sequence[str] = (
        "query",
        "query_params",
        "language",
        "influxdb3_conn_id",
        "database",
    )
    template_ext: Sequence[str] = (".sql", ".influxql")
    template_fields_renderers = {"query": "sql", "query_params": "json"}
    ui_color = "#22adf6"

    def __init__(
        self,
        *,
        query: str,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        min_rows: int = 1,
        value_op: str | None = None,
        value: Any = None,
        check: Callable[[Any], bool] | None = None,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        influxdb3_conn_id: str = "influxdb3_flight_default",
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        validate(min_rows, value_op, value)
        if check is not None and not callable(check):
            raise TypeError(f"check must be a callable taking the first value, got {check!r}")
        self.query = query
        self.language = language or ("influxql" if query.endswith(".influxql") else None)
        self.query_params = query_params
        self.min_rows = min_rows
        self.value_op = value_op
        self.value = value
        self.check = check
        self.deferrable = deferrable
        self.influxdb3_conn_id = influxdb3_conn_id
        self.database = database
        self._hook: InfluxDB3FlightHook | None = None

    def _get_hook(self) -> InfluxDB3FlightHook:
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        if self._hook is None:
            self._hook = InfluxDB3FlightHook(
                influxdb3_conn_id=self.influxdb3_conn_id, database=self.database
            )
        return self._hook

    def _passes_check(self, first_value: Any) -> bool:
        return self.check is None or bool(self.check(first_value))

    def poke(self, context: Context) -> PokeReturnValue:
        """One probe: query, count rows up to ``min_rows``, test the first cell."""
        from airflow_influx._errors import fail_fast_on_permanent_errors
        from airflow_influx.sensors._condition import probe

        hook = self._get_hook()
        try:
            with fail_fast_on_permanent_errors():
                settings = hook.get_settings()
                found = probe(
                    hook.get_client(),
                    self.query,
                    language=self.language or settings.query_language,
                    params=self.query_params,
                    protocol=settings.protocol,
                    min_rows=self.min_rows,
                )
        finally:
            hook.close()
        done = condition_met(
            found, min_rows=self.min_rows, value_op=self.value_op, value=self.value
        ) and self._passes_check(found.first_value)
        self.log.info(
            "%s: %d row(s) (counting stops at %d), first value %r",
            "Condition met" if done else "Not yet",
            found.rows,
            self.min_rows,
            found.first_value,
        )
        return PokeReturnValue(is_done=done, xcom_value=json_safe(found.first_value))

    def execute(self, context: Context) -> Any:
        """Poke (or reschedule) as usual; in deferrable mode poke once, then defer."""
        if not self.deferrable:
            return super().execute(context)
        outcome = self.poke(context)
        if outcome.is_done:
            return outcome.xcom_value
        self._defer()
        return None

    def _defer(self) -> None:
        from airflow_influx.triggers.influxdb3 import InfluxDB3SensorTrigger

        self.defer(
            trigger=InfluxDB3SensorTrigger(
                influxdb3_conn_id=self.influxdb3_conn_id,
                query=self.query,
                language=self.language,
                query_params=self.query_params,
                database=self.database,
                min_rows=self.min_rows,
                value_op=self.value_op,
                value=self.value,
                poke_interval=float(self.poke_interval),
                timeout=float(self.timeout),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=float(self.timeout)),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> Any:
        """Resume after the trigger fired: fail on its error, re-defer if ``check`` says no."""
        from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout

        if event.get("status") == "timeout":
            raise AirflowSensorTimeout(f"InfluxDB3Sensor timed out: {event.get('message')}")
        if event.get("status") != "success":
            raise AirflowException(f"InfluxDB3Sensor failed: {event.get('message', event)}")
        if not self._passes_check(event.get("value")):
            self.log.info("Trigger fired but check(%r) is False; waiting again", event["value"])
            self._defer()
        self.log.info("Condition met: %d row(s), first value %r", event["rows"], event["value"])
        return event.get("value")

    def on_kill(self) -> None:
        """Cancel the running Flight stream."""
        if self._hook is not None:
            self._hook.cancel()
