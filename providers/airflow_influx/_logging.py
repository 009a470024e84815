"""What every operator, sensor and hook logs about a query (as common.sql does): the rendered
text (truncated), its language and database, then rows, bytes and duration. Never the token:
parameters are logged by name only."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

#: Longer query texts are cut in the log (the rendered template shows the whole text).
MAX_LOGGED_QUERY = 2000


def shorten(text: str, limit: int = MAX_LOGGED_QUERY) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... [{len(text) - limit} more characters]"


def log_query(
    log: logging.Logger | Any,
    query: str,
    *,
    language: str,
    database: str | None,
    params: Mapping[str, Any] | None = None,
    protocol: str | None = None,
) -> None:
    """Log the query about to run (INFO)."""
    log.info(
        "Running %s query on database %r%s%s:\n%s",
        language.upper() if language == "sql" else "InfluxQL",
        database,
        f" over {protocol}" if protocol else "",
        f" with parameters {sorted(params)}" if params else "",
        shorten(str(query)),
    )


def log_done(
    log: logging.Logger | Any, *, rows: int, nbytes: int | None, seconds: float, what: str = ""
) -> None:
    """Log what the query produced (INFO)."""
    log.info(
        "Query done%s: %d row(s)%s in %.3f s",
        f" ({what})" if what else "",
        rows,
        f", {nbytes} byte(s)" if nbytes is not None else "",
        seconds,
    )
