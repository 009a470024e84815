"""InfluxQL functions translated to DataFusion SQL.

Each aggregate/selector becomes one SQL aggregate expression over the filtered source rows;
transformations become window functions over the (gap-filled) series. Semantics follow InfluxQL
(the 1.x engine is the oracle of the differential tests): ``mean``/``median``/``stddev`` are
float, ``percentile`` picks the element at ``floor(n * p / 100 + 0.5)`` (1-based) of the sorted
values rather than interpolating, ``mode`` prefers the smallest of equally frequent values.
"""

from __future__ import annotations

from collections.abc import Callable

AGGREGATES = frozenset(
    {"count", "sum", "mean", "median", "mode", "spread", "stddev", "distinct", "integral"}
)
SELECTORS = frozenset({"first", "last", "min", "max", "percentile"})
TRANSFORMS = frozenset(
    {
        "derivative",
        "non_negative_derivative",
        "difference",
        "non_negative_difference",
        "moving_average",
        "cumulative_sum",
        "elapsed",
    }
)
# Known to InfluxQL but not provided by the stand-in: named as not implemented, never misread.
# Selectors of N rows per group (not usable with other functions).
TOP_BOTTOM = frozenset({"top", "bottom"})
UNSUPPORTED = frozenset(
    {
        "sample",
        "holt_winters",
        "holt_winters_with_fit",
        "exponential_moving_average",
        "double_exponential_moving_average",
        "triple_exponential_moving_average",
        "relative_strength_index",
        "triple_exponential_derivative",
        "kaufmans_efficiency_ratio",
        "kaufmans_adaptive_moving_average",
        "chande_momentum_oscillator",
        "count_hll",
        "sum_hll",
    }
)
# Functions that take fields of any type (the others skip non-numeric fields of a wildcard).
ANY_TYPE = frozenset({"count", "first", "last", "distinct", "mode", "elapsed"})
MATH = {
    "abs": "abs",
    "sin": "sin",
    "cos": "cos",
    "tan": "tan",
    "asin": "asin",
    "acos": "acos",
    "atan": "atan",
    "atan2": "atan2",
    "exp": "exp",
    "ln": "ln",
    "log": "log",
    "log2": "log2",
    "log10": "log10",
    "sqrt": "sqrt",
    "pow": "power",
    "floor": "floor",
    "ceil": "ceil",
    "round": "round",
}

# Functions taking two arguments, and how their call reads (for the arity error).
MATH_ARITY = {"atan2": 2, "pow": 2, "log": 2}
MATH_FORMS = {"atan2": "atan2(y, x)", "pow": "pow(x, y)", "log": "log(x, base)"}
# May give NaN outside their domain; InfluxQL returns no value there.
MATH_NAN_PRONE = frozenset({"ln", "log2", "log10", "asin", "acos", "pow"})


def _dbl(x: str) -> str:
    return f"CAST({x} AS DOUBLE)"


def selector_order(name: str, x: str) -> str:
    """ORDER BY clause inside an aggregate that puts the selected row first."""
    return {
        "first": "time ASC",
        "last": "time DESC",
        "min": f"{x} ASC, time ASC",
        "max": f"{x} DESC, time ASC",
    }[name]


def selected(name: str, x: str, value: str) -> str:
    """``value`` (a column or ``time``) of the row the selector ``name`` picks on ``x``.

    Ties: ``first``/``last`` keep the earliest/latest written row among equal times (as the
    documented examples show); ``min``/``max`` the earliest time. (``percentile`` is planned
    with window functions, see ``SelectPlanner._percentile_ctes``.)
    """
    if name == "last":
        return f"last_value({value} ORDER BY time ASC) FILTER (WHERE {x} IS NOT NULL)"
    return f"first_value({value} ORDER BY {selector_order(name, x)}) FILTER (WHERE {x} IS NOT NULL)"


def aggregate_sql(name: str, x: str, distinct: bool = False) -> str:
    """SQL aggregate for ``name`` over the SQL expression ``x``.

    ``count`` returns NULL instead of 0 for a window without values so that fill() treats it
    like the other aggregates; the planner turns that NULL back into 0 for ``fill(null)``.
    """
    builders: dict[str, Callable[[], str]] = {
        "count": lambda: (
            f"NULLIF(count(DISTINCT {x}), 0)" if distinct else f"NULLIF(count({x}), 0)"
        ),
        "sum": lambda: f"sum({x})",
        "mean": lambda: f"avg({_dbl(x)})",
        "median": lambda: f"median({_dbl(x)})",
        "spread": lambda: f"max({x}) - min({x})",
        "stddev": lambda: f"stddev_samp({_dbl(x)})",
        "first": lambda: selected("first", x, x),
        "last": lambda: selected("last", x, x),
        "min": lambda: f"min({x})",
        "max": lambda: f"max({x})",
    }
    return builders[name]()


__all__ = [
    "AGGREGATES",
    "ANY_TYPE",
    "MATH",
    "MATH_ARITY",
    "MATH_FORMS",
    "MATH_NAN_PRONE",
    "SELECTORS",
    "TOP_BOTTOM",
    "TRANSFORMS",
    "UNSUPPORTED",
    "aggregate_sql",
    "selected",
    "selector_order",
]
