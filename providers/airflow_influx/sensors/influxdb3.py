"""``InfluxDB3Sensor``: wait until a query returns rows, its first value passes a check, or a
table's newest point is fresh enough."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow_influx._compat import BaseSensorOperator, PokeReturnValue, conf
from airflow_influx.sensors._condition import (
    MISSING_TABLE_CHOICES,
    condition_met,
    json_safe,
    validate,
)

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook


def _duration(value: timedelta | float | int | str | None, name: str) -> timedelta | None:
    """``timedelta``, seconds, or a duration string such as ``"15m"`` / ``"2h"`` / ``"1d"``."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return timedelta(seconds=value)
    text = str(value).strip().lower()
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    for suffix in sorted(units, key=len, reverse=True):
        if text.endswith(suffix):
            number = text[: -len(suffix)].strip()
            try:
                return timedelta(seconds=float(number) * units[suffix])
            except ValueError:
                break
    raise ValueError(
        f"{name}={value!r} is not a duration; use e.g. '15m', '2h', 900 or a timedelta"
    )


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class InfluxDB3Sensor(BaseSensorOperator):
    """Waits for data in InfluxDB 3: in ``poke``, ``reschedule`` or deferrable mode.

    Two ways to say what to wait for:

    * **a query** (``query=`` or ``sql=``): done when it returns at least ``min_rows`` rows and,
      if asked, the first cell of the first row passes ``value_op``/``value`` (e.g.
      ``value_op=">=", value=100`` on a ``SELECT count(*)``) and then ``check``;
    * **freshness** (``table=`` and ``max_lag=``): done when the table's newest point (optionally
      only of the series matching ``tags``) is at most ``max_lag`` older than ``reference_time``
      (default: the run's ``data_interval_end``, else now). The query is bounded in time
      (``WHERE time >= reference_time - max_lag``), never an unbounded ``max(time)``, which
      InfluxDB 3 Core refuses over many files.

    The first cell (for freshness: the newest time) goes to XCom. A table that does not exist
    yet counts as "no data yet" (``missing_table="wait"``, InfluxDB 3 creates tables on their
    first write); ``missing_table="fail"`` fails at once instead.

    In deferrable mode the waiting happens in
    :class:`~airflow_influx.triggers.influxdb3.InfluxDB3SensorTrigger`. A ``check`` callable
    cannot travel to the triggerer: it is applied when the trigger fires, and if it says no the
    sensor defers again, ``poke_interval`` later and within the same overall ``timeout``.

    Example::

        InfluxDB3Sensor(
            task_id="wait_for_hour",
            sql="SELECT count(*) FROM home WHERE time >= $start AND time < $end",
            query_params={"start": "{{ data_interval_start }}", "end": "{{ data_interval_end }}"},
            value_op=">=", value=2, mode="reschedule", poke_interval=300,
        )
        InfluxDB3Sensor(task_id="home_is_fresh", table="home", max_lag="15m",
                        tags={"room": "Kitchen"}, deferrable=True)

    :param query: SQL or InfluxQL (templated; ``.sql`` / ``.influxql`` files are loaded).
    :param sql: alias of ``query`` (common.sql's name).
    :param language: ``sql`` or ``influxql``; default: inferred from an ``.influxql`` file name,
        else the connection's ``query_language``.
    :param query_params: values for ``$name`` placeholders (templated).
    :param min_rows: the query must return at least this many rows.
    :param value_op: ``truthy``, ``==``, ``!=``, ``>``, ``>=``, ``<`` or ``<=`` on the first cell.
    :param value: what ``value_op`` compares the first cell with.
    :param check: optional callable on the first cell; returns True when done.
    :param table: freshness mode: the table (measurement) whose newest point is checked.
    :param max_lag: freshness mode: how old the newest point may be (``"15m"``, seconds, or a
        ``timedelta``).
    :param tags: freshness mode: only series with these tag values (templated).
    :param reference_time: freshness mode: the time the lag is measured from (templated ISO
        string or datetime); default: ``data_interval_end``, else now.
    :param missing_table: ``"wait"`` (default) or ``"fail"`` when the table does not exist.
    :param deferrable: wait on the triggerer instead of a worker slot.
    :param influxdb3_conn_id: the ``influxdb3_flight`` connection (templated).
    :param database: overrides the connection's database (templated).
    """

    template_fields: Sequence[str] = (
        "query",
        "query_params",
        "language",
        "table",
        "tags",
        "reference_time",
        "influxdb3_conn_id",
        "database",
    )
    template_ext: Sequence[str] = (".sql", ".influxql")
    template_fields_renderers = {"query": "sql", "query_params": "json", "tags": "json"}
    ui_color = "#22adf6"

    def __init__(
        self,
        *,
        query: str | None = None,
        sql: str | None = None,
        language: str | None = None,
        query_params: Mapping[str, Any] | None = None,
        min_rows: int = 1,
        value_op: str | None = None,
        value: Any = None,
        check: Callable[[Any], bool] | None = None,
        table: str | None = None,
        max_lag: timedelta | float | str | None = None,
        tags: Mapping[str, str] | None = None,
        reference_time: datetime | str | None = None,
        missing_table: str = "wait",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        influxdb3_conn_id: str = "influxdb3_flight_default",
        database: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if query is not None and sql is not None and query != sql:
            raise ValueError("pass the query once: query= or its alias sql=, not both")
        query = query if query is not None else sql
        if (query is None) == (table is None):
            raise ValueError(
                "InfluxDB3Sensor needs either query= (or sql=) or, for a freshness check, "
                "table= with max_lag="
            )
        if table is not None:
            if max_lag is None:
                raise ValueError("freshness mode (table=) needs max_lag=, e.g. max_lag='15m'")
            if value_op is not None or min_rows != 1:
                raise ValueError("freshness mode (table=) takes no min_rows/value_op/value")
            _duration(max_lag, "max_lag")
        validate(min_rows, value_op, value)
        if check is not None and not callable(check):
            raise TypeError(f"check must be a callable taking the first value, got {check!r}")
        if missing_table not in MISSING_TABLE_CHOICES:
            raise ValueError(
                f"missing_table must be one of {', '.join(MISSING_TABLE_CHOICES)}, "
                f"got {missing_table!r}"
            )
        self.query = query
        self.language = language or (
            "influxql" if isinstance(query, str) and query.endswith(".influxql") else None
        )
        self.query_params = query_params
        self.min_rows = min_rows
        self.value_op = value_op
        self.value = value
        self.check = check
        self.table = table
        self.max_lag = max_lag
        self.tags = tags
        self.reference_time = reference_time
        self.missing_table = missing_table
        self.deferrable = deferrable
        self.influxdb3_conn_id = influxdb3_conn_id
        self.database = database
        self._hook: InfluxDB3FlightHook | None = None

    # -- what to ask --------------------------------------------------------------------------

    def _condition(self, context: Context) -> tuple[str, str | None, dict | None, str | None]:
        """(query, language, params, value_op) for this run; freshness builds a bounded query."""
        if self.table is None:
            return self.query or "", self.language, self.query_params, self.value_op
        lag = _duration(self.max_lag, "max_lag")
        assert lag is not None
        reference = self._reference(context)
        since = reference - lag
        where = ["time >= $since"]
        params: dict[str, Any] = {"since": since.astimezone(UTC).isoformat()}
        for i, (tag, tag_value) in enumerate(sorted((self.tags or {}).items())):
            where.append(f"{_quote_ident(tag)} = $tag_{i}")
            params[f"tag_{i}"] = str(tag_value)
        query = f"SELECT max(time) AS newest FROM {_quote_ident(self.table)} WHERE {' AND '.join(where)}"
        return query, "sql", params, "truthy"

    def _reference(self, context: Context) -> datetime:
        from airflow_influx.operators.influxdb3 import _as_datetime

        reference = _as_datetime(self.reference_time, "reference_time")
        if reference is None:
            reference = context.get("data_interval_end") if context else None
        if reference is None:
            reference = datetime.now(UTC)
        return reference if reference.tzinfo else reference.replace(tzinfo=UTC)

    def _get_hook(self) -> InfluxDB3FlightHook:
        from airflow_influx.hooks.influxdb3 import InfluxDB3FlightHook

        if self._hook is None:
            self._hook = InfluxDB3FlightHook(
                influxdb3_conn_id=self.influxdb3_conn_id, database=self.database
            )
        return self._hook

    def _passes_check(self, first_value: Any) -> bool:
        return self.check is None or bool(self.check(first_value))

    # -- poke / reschedule --------------------------------------------------------------------

    def poke(self, context: Context) -> PokeReturnValue:
        """One probe: query, count rows up to ``min_rows``, test the first cell."""
        from airflow_influx._errors import fail_fast_on_permanent_errors
        from airflow_influx._logging import log_query
        from airflow_influx.sensors._condition import probe
        from influx_flight import run_interruptibly

        query, language, params, value_op = self._condition(context)
        hook = self._get_hook()
        try:
            with fail_fast_on_permanent_errors():
                settings = hook.get_settings()
                language = language or settings.query_language
                log_query(
                    self.log,
                    query,
                    language=language,
                    database=settings.config.database,
                    params=params,
                )
                found = run_interruptibly(
                    lambda: probe(
                        hook.get_client(),
                        query,
                        language=language,
                        params=params,
                        protocol=settings.protocol,
                        min_rows=self.min_rows,
                        missing_table=self.missing_table,
                    ),
                    cancel=hook.cancel,
                )
        finally:
            hook.close()
        done = condition_met(
            found, min_rows=self.min_rows, value_op=value_op, value=self.value
        ) and self._passes_check(found.first_value)
        if found.missing_table:
            self.log.info("Not yet: the table does not exist yet (missing_table='wait')")
        else:
            self.log.info(
                "%s: %d row(s) (counting stops at %d), first value %r",
                "Condition met" if done else "Not yet",
                found.rows,
                self.min_rows,
                found.first_value,
            )
        return PokeReturnValue(is_done=done, xcom_value=json_safe(found.first_value))

    # -- deferrable ---------------------------------------------------------------------------

    def execute(self, context: Context) -> Any:
        """Poke (or reschedule) as usual; in deferrable mode poke once, then defer."""
        if not self.deferrable:
            return super().execute(context)
        started = time.time()
        outcome = self.poke(context)
        if outcome.is_done:
            return outcome.xcom_value
        self._defer(context, started=started, checks=1)
        return None

    def _defer(self, context: Context, *, started: float, checks: int) -> None:
        """Defer for what is left of ``timeout`` (counted from the first poke, across re-defers)."""
        from airflow_influx.triggers.influxdb3 import InfluxDB3SensorTrigger

        remaining = float(self.timeout) - (time.time() - started)
        if remaining <= 0:
            self._timed_out(checks)
        query, language, params, value_op = self._condition(context)
        self.defer(
            trigger=InfluxDB3SensorTrigger(
                influxdb3_conn_id=self.influxdb3_conn_id,
                query=query,
                language=language,
                query_params=params,
                database=self.database,
                min_rows=self.min_rows,
                value_op=value_op,
                value=self.value,
                poke_interval=float(self.poke_interval),
                timeout=remaining,
                missing_table=self.missing_table,
                poke_at_start=False,
                started=started,
                checks_before=checks,
            ),
            method_name="execute_complete",
            kwargs={"started": started, "checks": checks},
            timeout=timedelta(seconds=remaining),
        )

    def _timed_out(self, checks: int) -> None:
        from airflow.providers.common.compat.sdk import AirflowSensorTimeout, AirflowSkipException

        message = (
            f"InfluxDB3Sensor {self.task_id!r}: condition not met within timeout="
            f"{float(self.timeout):g} s ({checks} check(s))"
        )
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowSensorTimeout(message)

    def execute_complete(
        self,
        context: Context,
        event: dict[str, Any],
        started: float | None = None,
        checks: int = 1,
    ) -> Any:
        """Resume after the trigger fired: fail on its error, defer again if ``check`` says no."""
        from airflow.providers.common.compat.sdk import AirflowException

        # The trigger echoes the overall start and counts all checks (dag.test() does not carry
        # next_kwargs over to the resumed task; the triggerer does).
        started = event.get("started", started)
        checks = int(event.get("checks", checks))
        if event.get("status") == "timeout":
            self._timed_out(checks)
        if event.get("status") != "success":
            raise AirflowException(f"InfluxDB3Sensor failed: {event.get('message', event)}")
        if not self._passes_check(event.get("value")):
            self.log.info(
                "Trigger fired but check(%r) is False (check %d); waiting again",
                event["value"],
                checks,
            )
            self._defer(context, started=started or time.time(), checks=checks)
            return None
        self.log.info("Condition met: %d row(s), first value %r", event["rows"], event["value"])
        return event.get("value")

    def on_kill(self) -> None:
        """Cancel the running Flight stream."""
        if self._hook is not None:
            self._hook.cancel()
