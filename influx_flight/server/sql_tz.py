"""``tz()`` for the stand-in's SQL: IANA zone checks and the cast to ``Timestamp(ns, zone)``,
plus the UDF that turns local wall-clock times back into zoned instants
(``date_bin_wallclock``).
"""

from __future__ import annotations

import hashlib
import re
import zoneinfo
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc
from datafusion import SessionContext, udf

from influx_flight.server.errors import QueryPlanError
from influx_flight.server.sql_tokens import Tok, _Call, _strip, _text


def _zone_literal(
    tokens: Sequence[Tok], what: str, params: dict[str, pa.Scalar] | None = None
) -> str:
    """The IANA zone named by a string literal or a ``$param`` bound to a string."""
    toks = _strip(tokens)
    zone: str | None = None
    if len(toks) == 1 and toks[0].kind == "str" and toks[0].text.startswith("'"):
        zone = toks[0].text[1:-1].replace("''", "'")
    elif len(toks) == 1 and toks[0].kind == "param" and params is not None:
        value = params.get(toks[0].text[1:])
        if value is not None and pa.types.is_string(value.type) and value.is_valid:
            zone = value.as_py()
    if zone is None:
        raise QueryPlanError(
            f"Error during planning: {what} must be a string literal (or a string parameter)"
            " naming an IANA time zone"
        )
    if zone.upper() == "UTC":
        return "UTC"
    try:
        zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise QueryPlanError(
            f"Error during planning: invalid timezone '{zone}': use an IANA name such as"
            " 'Europe/Oslo' or 'America/New_York'"
        ) from None
    return zone


def _tz_type(zone: str) -> str:
    return f"'Timestamp(Nanosecond, Some(\"{zone}\"))'"


def _tz_sql(call: _Call, params: dict[str, pa.Scalar] | None = None) -> str:
    if len(call.args) not in (1, 2):
        raise QueryPlanError(
            f"Error during planning: tz expects 1 or 2 arguments, got {len(call.args)}"
        )
    zone = (
        _zone_literal(call.args[1], "the zone argument of tz()", params)
        if len(call.args) == 2
        else "UTC"
    )
    if '"' in zone or "'" in zone:
        raise QueryPlanError(f"Error during planning: invalid timezone {zone!r}")
    source = _text(call.args[0])
    return f"arrow_cast(arrow_cast(({source}), {_tz_type('UTC')}), {_tz_type(zone)})"


def _tz_zone_of(tokens: Sequence[Tok]) -> str | None:
    """The zone of a ``tz(x[, 'zone'])`` argument (after rewriting: the arrow_cast text)."""
    text = _text(_strip(tokens))
    match = re.fullmatch(
        r"arrow_cast\(arrow_cast\(.*\), 'Timestamp\(Nanosecond, Some\(\"UTC\"\)\)'\), "
        r"'Timestamp\(Nanosecond, Some\(\"(?P<zone>[^\"]+)\"\)\)'\)",
        text,
        re.DOTALL,
    )
    return match.group("zone") if match else None


def _localize_udf_name(zone: str) -> str:
    return "__iox_localize_" + hashlib.sha1(zone.encode()).hexdigest()[:12]


def _register_localize(ctx: SessionContext, zone: str) -> str:
    """A UDF turning local wall-clock timestamps of ``zone`` into ``Timestamp(ns, zone)``."""
    name = _localize_udf_name(zone)

    def localize(local: pa.Array) -> pa.Array:
        return pc.assume_timezone(
            local, timezone=zone, ambiguous="earliest", nonexistent="earliest"
        )

    ctx.register_udf(udf(localize, [pa.timestamp("ns")], pa.timestamp("ns", zone), "stable", name))
    return name
