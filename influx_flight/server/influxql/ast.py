"""InfluxQL syntax tree: plain dataclasses the parser builds and the planner reads."""

from __future__ import annotations

from dataclasses import dataclass, field


class Expr:
    """Base of every expression node."""


@dataclass(frozen=True)
class VarRef(Expr):
    """A field or tag reference; ``type_hint`` is ``field``/``tag``/``integer``... from ``::x``."""

    name: str
    type_hint: str | None = None


@dataclass(frozen=True)
class Wildcard(Expr):
    """``*`` (optionally ``*::field`` / ``*::tag``)."""

    type_hint: str | None = None


@dataclass(frozen=True)
class RegexLit(Expr):
    """A ``/regex/`` literal (Go RE2 syntax; DataFusion's Rust regex is close to it)."""

    pattern: str


@dataclass(frozen=True)
class IntegerLit(Expr):
    value: int


@dataclass(frozen=True)
class NumberLit(Expr):
    value: float


@dataclass(frozen=True)
class StringLit(Expr):
    value: str


@dataclass(frozen=True)
class BoolLit(Expr):
    value: bool


@dataclass(frozen=True)
class NullLit(Expr):
    """A bound parameter whose value is null (compares false with everything)."""


@dataclass(frozen=True)
class DurationLit(Expr):
    """A duration such as ``7d`` or ``1h30m``, in nanoseconds."""

    ns: int
    text: str


@dataclass(frozen=True)
class BindParam(Expr):
    """``$name``: replaced by the bound value before planning."""

    name: str


@dataclass(frozen=True)
class Call(Expr):
    name: str  # lower-cased
    args: tuple[Expr, ...]


@dataclass(frozen=True)
class BinaryExpr(Expr):
    op: str  # + - * / % & | ^ = != < <= > >= =~ !~ AND OR
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True)
class Paren(Expr):
    expr: Expr


@dataclass(frozen=True)
class Field:
    expr: Expr
    alias: str | None = None


@dataclass(frozen=True)
class Measurement:
    """One FROM source: a name or a regex, with an optional retention policy/database prefix."""

    name: str | None = None
    regex: str | None = None
    database: str | None = None
    retention_policy: str | None = None


@dataclass(frozen=True)
class TimeDimension:
    interval: Expr
    offset: Expr | None = None


@dataclass(frozen=True)
class TagDimension:
    name: str


@dataclass(frozen=True)
class RegexDimension:
    pattern: str


@dataclass(frozen=True)
class WildcardDimension:
    pass


Dimension = TimeDimension | TagDimension | RegexDimension | WildcardDimension


@dataclass
class SelectStatement:
    fields: list[Field]
    sources: list[Measurement | SelectStatement]
    condition: Expr | None = None
    dimensions: list[Dimension] = field(default_factory=list)
    fill: str = "null"  # null | none | previous | linear | value
    fill_value: int | float | None = None
    fill_given: bool = False
    order_desc: bool = False
    limit: int | None = None
    offset: int | None = None
    slimit: int | None = None
    soffset: int | None = None
    tz: str | None = None


@dataclass
class ShowMeasurements:
    on: str | None = None
    measurement: Measurement | None = None  # WITH MEASUREMENT = name | =~ /re/
    condition: Expr | None = None
    limit: int | None = None
    offset: int | None = None


@dataclass
class ShowTagKeys:
    on: str | None = None
    sources: list[Measurement] = field(default_factory=list)
    condition: Expr | None = None
    limit: int | None = None
    offset: int | None = None


@dataclass
class ShowTagValues:
    on: str | None = None
    sources: list[Measurement] = field(default_factory=list)
    key_op: str = "="  # = != =~ !~ IN
    key_values: list[str] = field(default_factory=list)
    key_regex: str | None = None
    condition: Expr | None = None
    limit: int | None = None
    offset: int | None = None


@dataclass
class ShowFieldKeys:
    on: str | None = None
    sources: list[Measurement] = field(default_factory=list)
    limit: int | None = None
    offset: int | None = None


@dataclass
class ShowRetentionPolicies:
    on: str | None = None


@dataclass
class Explain:
    """``EXPLAIN [ANALYZE] [VERBOSE] SELECT ...``."""

    statement: SelectStatement
    analyze: bool = False
    verbose: bool = False


@dataclass
class Unsupported:
    """A statement the parser recognises but the stand-in (like InfluxDB 3 over Flight) lacks."""

    feature: str


Statement = (
    SelectStatement
    | ShowMeasurements
    | ShowTagKeys
    | ShowTagValues
    | ShowFieldKeys
    | ShowRetentionPolicies
    | Explain
    | Unsupported
)
