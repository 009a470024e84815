"""InfluxQL parser: the accepted grammar, and errors that name the position and expectation."""

from __future__ import annotations

import pytest

from influx_flight.server.errors import QueryNotImplemented, QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql.parser import parse


def test_full_select() -> None:
    stmt = parse(
        'SELECT mean("temp") AS t, max(hum), co * 2 + 1 FROM home, /^h.*/ '
        "WHERE time >= '2022-01-01T08:00:00Z' AND (room =~ /Kit/ OR room != 'x') "
        "GROUP BY time(2h, -15m), room, * fill(linear) ORDER BY time DESC "
        "LIMIT 3 OFFSET 1 tz('Europe/Paris');"
    )
    assert isinstance(stmt, ast.SelectStatement)
    assert stmt.fields[0] == ast.Field(ast.Call("mean", (ast.VarRef("temp"),)), "t")
    assert stmt.fields[2].expr == ast.BinaryExpr(
        "+", ast.BinaryExpr("*", ast.VarRef("co"), ast.IntegerLit(2)), ast.IntegerLit(1)
    )
    assert stmt.sources == [ast.Measurement(name="home"), ast.Measurement(regex="^h.*")]
    assert stmt.dimensions == [
        ast.TimeDimension(
            ast.DurationLit(7_200_000_000_000, "2h"), ast.DurationLit(-900_000_000_000, "-15m")
        ),
        ast.TagDimension("room"),
        ast.WildcardDimension(),
    ]
    assert (stmt.fill, stmt.order_desc, stmt.limit, stmt.offset, stmt.tz) == (
        "linear",
        True,
        3,
        1,
        "Europe/Paris",
    )
    cond = stmt.condition
    assert isinstance(cond, ast.BinaryExpr) and cond.op == "AND"
    assert isinstance(cond.rhs, ast.Paren)


def test_precedence_and_or() -> None:
    stmt = parse("SELECT a FROM m WHERE x = 1 OR y = 2 AND z = 3")
    assert isinstance(stmt, ast.SelectStatement)
    cond = stmt.condition
    assert isinstance(cond, ast.BinaryExpr) and cond.op == "OR"
    assert isinstance(cond.rhs, ast.BinaryExpr) and cond.rhs.op == "AND"


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("1ns", 1),
        ("15u", 15_000),
        ("2ms", 2_000_000),
        ("3s", 3 * 10**9),
        ("1h30m", 5400 * 10**9),
        ("7d", 7 * 86400 * 10**9),
        ("1w", 604800 * 10**9),
    ],
)
def test_durations(text: str, ns: int) -> None:
    stmt = parse(f"SELECT a FROM m WHERE time > now() - {text}")
    assert isinstance(stmt, ast.SelectStatement)
    cond = stmt.condition
    assert isinstance(cond, ast.BinaryExpr) and isinstance(cond.rhs, ast.BinaryExpr)
    assert cond.rhs.rhs == ast.DurationLit(ns, text)


def test_quoted_identifiers_keywords_and_type_hints() -> None:
    stmt = parse('SELECT "my field"::float, "select", key, name FROM "db"."rp"."m m"')
    assert isinstance(stmt, ast.SelectStatement)
    assert [f.expr for f in stmt.fields] == [
        ast.VarRef("my field", "float"),
        ast.VarRef("select"),
        ast.VarRef("key"),
        ast.VarRef("name"),
    ]
    assert stmt.sources == [ast.Measurement(name="m m", retention_policy="rp", database="db")]


def test_bind_parameters_and_regex_escapes() -> None:
    stmt = parse(r"SELECT a FROM m WHERE host = $host AND path =~ /\/var\/.*/")
    assert isinstance(stmt, ast.SelectStatement)
    cond = stmt.condition
    assert isinstance(cond, ast.BinaryExpr)
    assert cond.lhs == ast.BinaryExpr("=", ast.VarRef("host"), ast.BindParam("host"))
    assert cond.rhs == ast.BinaryExpr("=~", ast.VarRef("path"), ast.RegexLit("/var/.*"))


def test_show_statements() -> None:
    assert parse("SHOW MEASUREMENTS WITH MEASUREMENT =~ /cpu.*/ LIMIT 2") == ast.ShowMeasurements(
        measurement=ast.Measurement(regex="cpu.*"), limit=2
    )
    tv = parse("show tag values from cpu with key in (host, region) where region = 'e'")
    assert isinstance(tv, ast.ShowTagValues)
    assert (tv.key_op, tv.key_values) == ("IN", ["host", "region"])
    assert parse("SHOW TAG VALUES WITH KEY =~ /h/") == ast.ShowTagValues(key_op="=~", key_regex="h")
    assert parse("SHOW FIELD KEYS FROM cpu") == ast.ShowFieldKeys(
        sources=[ast.Measurement(name="cpu")]
    )
    assert parse("SHOW RETENTION POLICIES") == ast.ShowRetentionPolicies()
    assert parse("SHOW DATABASES") == ast.Unsupported("SHOW DATABASES")


@pytest.mark.parametrize(
    ("text", "found", "expected", "pos"),
    [
        ("SELECT a FROM", "EOF", "identifier, regex", 14),
        ("SELECT a + FROM m", "FROM", "identifier, string, number, bool", 12),
        ("SELECT a", "EOF", "FROM", 9),
        ("SELECT a FROM m GROUP time(1h)", "time", "BY", 23),
        (
            "SELECT a FROM m fill(sideways)",
            "sideways",
            "null, none, previous, linear or a number",
            22,
        ),
        ("SELECT a FROM m WHERE b = 'x", "'", "a closing '", 27),
        ("SELECT a FROM m LIMIT x", "x", "an integer LIMIT", 23),
        ("SELECT a FROM m WHERE x =~ 'a'", "'a'", "regex", 28),
        ("UPSERT a", "UPSERT", "SELECT, SHOW", 1),
        ("SELECT mean(a FROM m", "FROM", ")", 15),
        ("SHOW TAG VALUES FROM m", "EOF", "WITH", 23),
        (
            "SELECT a FROM m WHERE time > now() - 5x",
            "5x",
            "a duration unit (ns, u, µ, ms, s, m, h, d, w)",
            38,
        ),
    ],
)
def test_syntax_errors_name_position_and_expectation(
    text: str, found: str, expected: str, pos: int
) -> None:
    with pytest.raises(QueryPlanError) as err:
        parse(text)
    assert not isinstance(err.value, QueryNotImplemented)
    assert f"found {found}, expected {expected} at pos {pos}" in str(err.value)


def test_empty_query() -> None:
    with pytest.raises(QueryPlanError, match="empty query"):
        parse("   ")


@pytest.mark.parametrize(
    ("text", "feature"),
    [
        ("SELECT a FROM m; SELECT b FROM m", "only supports a single InfluxQL statement"),
        ("DROP MEASUREMENT m", "DROP MEASUREMENT"),
        ("CREATE DATABASE x", "CREATE DATABASE"),
        ("DELETE FROM m", "DELETE FROM"),
        ("SELECT a INTO b FROM m", "SELECT INTO"),
    ],
)
def test_unsupported_statements_are_named(text: str, feature: str) -> None:
    with pytest.raises(QueryNotImplemented, match="This feature is not implemented: .*" + feature):
        parse(text)


def test_explain_parses_its_options() -> None:
    from influx_flight.server.influxql import ast

    stmt = parse("explain analyze verbose SELECT a FROM m")
    assert isinstance(stmt, ast.Explain) and stmt.analyze and stmt.verbose
    assert isinstance(stmt.statement, ast.SelectStatement)
    plain = parse("EXPLAIN SELECT a FROM m")
    assert isinstance(plain, ast.Explain) and not plain.analyze and not plain.verbose
    with pytest.raises(QueryPlanError, match="found SHOW, expected SELECT"):
        parse("EXPLAIN SHOW MEASUREMENTS")
