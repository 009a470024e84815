"""Recursive-descent InfluxQL parser producing :mod:`.ast` nodes.

Covers SELECT (fields, aliases, FROM names/regexes/subqueries, WHERE, GROUP BY, fill, ORDER BY,
LIMIT/OFFSET, SLIMIT/SOFFSET, tz) and the SHOW statements InfluxDB 3 serves over Flight. Other
statements are recognised and reported as not implemented rather than misread.
"""

from __future__ import annotations

from influx_flight.server.errors import QueryNotImplemented, QueryPlanError
from influx_flight.server.influxql import ast
from influx_flight.server.influxql.lexer import Lexer, Token, syntax_error

# Binary operator precedence (higher binds tighter), as in InfluxQL's grammar.
_PRECEDENCE = {
    "OR": 1,
    "AND": 2,
    "=": 4,
    "!=": 4,
    "<>": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "=~": 4,
    "!~": 4,
    "+": 5,
    "-": 5,
    "|": 5,
    "^": 5,
    "*": 6,
    "/": 6,
    "%": 6,
    "&": 6,
}
_TYPE_HINTS = ("float", "integer", "unsigned", "string", "boolean", "field", "tag")


def not_implemented(feature: str) -> QueryNotImplemented:
    """The error InfluxDB 3 gives for InfluxQL it parses but does not run."""
    return QueryNotImplemented(f"This feature is not implemented: {feature}")


class Parser:
    """One-token look-ahead parser over a :class:`Lexer`."""

    def __init__(self, text: str) -> None:
        self.lexer = Lexer(text)
        self._peeked: Token | None = None

    # -- token helpers -------------------------------------------------------------------
    def peek(self) -> Token:
        if self._peeked is None:
            self._peeked = self.lexer.next()
        return self._peeked

    def advance(self) -> Token:
        tok = self.peek()
        self._peeked = None
        return tok

    def at_keyword(self, *words: str) -> bool:
        """Reserved keyword or an unquoted identifier spelling one of ``words``."""
        tok = self.peek()
        if tok.kind == "KEYWORD":
            return tok.value in words
        return tok.kind == "IDENT" and not tok.quoted and tok.value.upper() in words

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok.kind == "OP" and tok.value in ops

    def accept_keyword(self, word: str) -> bool:
        if self.at_keyword(word):
            self.advance()
            return True
        return False

    def accept_op(self, op: str) -> bool:
        if self.at_op(op):
            self.advance()
            return True
        return False

    def expect_keyword(self, word: str) -> Token:
        if not self.at_keyword(word):
            raise syntax_error(self.peek(), word)
        return self.advance()

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            raise syntax_error(self.peek(), op)
        return self.advance()

    def regex(self) -> Token:
        if self._peeked is not None:
            self.lexer.pos = self._peeked.pos
            self._peeked = None
        return self.lexer.scan_regex()

    def at_regex(self) -> bool:
        return self.at_op("/")

    def ident(self, what: str = "identifier") -> str:
        tok = self.peek()
        if tok.kind == "IDENT":
            self.advance()
            return tok.value
        raise syntax_error(tok, what)

    def integer(self, what: str) -> int:
        tok = self.peek()
        if tok.kind != "INTEGER":
            raise syntax_error(tok, what)
        self.advance()
        return int(tok.number or 0)

    # -- statements ------------------------------------------------------------------------
    def parse(self) -> ast.Statement:
        """Parse exactly one statement (an optional trailing ``;`` is allowed)."""
        stmt = self.statement()
        self.accept_op(";")
        if self.peek().kind != "EOF":
            if self.at_keyword("SELECT", "SHOW"):
                raise not_implemented(
                    "The context currently only supports a single InfluxQL statement"
                )
            raise syntax_error(self.peek(), "EOF or ;")
        return stmt

    def statement(self) -> ast.Statement:
        """Dispatch on the first keyword; name statements the stand-in lacks."""
        tok = self.peek()
        if self.at_keyword("SELECT"):
            return self.select()
        if self.at_keyword("SHOW"):
            return self.show()
        if self.at_keyword("EXPLAIN"):
            self.advance()
            analyze = self.at_keyword("ANALYZE")
            if analyze:
                self.advance()
            verbose = self.at_keyword("VERBOSE")
            if verbose:
                self.advance()
            if not self.at_keyword("SELECT"):
                raise syntax_error(self.peek(), "SELECT")
            return ast.Explain(self.select(), analyze=analyze, verbose=verbose)
        if self.at_keyword("CREATE", "DROP", "DELETE", "ALTER", "GRANT", "REVOKE", "KILL"):
            self.advance()
            rest = self.peek()
            name = tok.value.upper()
            if rest.kind in ("IDENT", "KEYWORD") and not rest.quoted:
                name += " " + rest.value.upper()
            raise not_implemented(name)
        raise syntax_error(tok, "SELECT, SHOW")

    def select(self) -> ast.SelectStatement:
        """SELECT ... FROM ... [WHERE] [GROUP BY] [fill] [ORDER BY] [LIMIT/OFFSET] [tz]."""
        self.expect_keyword("SELECT")
        fields = [self.field()]
        while self.accept_op(","):
            fields.append(self.field())
        if self.at_keyword("INTO"):
            raise not_implemented("SELECT INTO")
        self.expect_keyword("FROM")
        sources = self.sources(allow_subquery=True)
        stmt = ast.SelectStatement(fields=fields, sources=sources)
        if self.accept_keyword("WHERE"):
            stmt.condition = self.expr()
        if self.accept_keyword("GROUP"):
            self.expect_keyword("BY")
            stmt.dimensions = self.dimensions()
        if self.accept_keyword("FILL"):
            self.fill(stmt)
        if self.accept_keyword("ORDER"):
            self.expect_keyword("BY")
            self.order_by(stmt)
        if self.accept_keyword("LIMIT"):
            stmt.limit = self.integer("an integer LIMIT")
        if self.accept_keyword("OFFSET"):
            stmt.offset = self.integer("an integer OFFSET")
        if self.accept_keyword("SLIMIT"):
            stmt.slimit = self.integer("an integer SLIMIT")
        if self.accept_keyword("SOFFSET"):
            stmt.soffset = self.integer("an integer SOFFSET")
        if self.accept_keyword("TZ"):
            self.expect_op("(")
            tok = self.peek()
            if tok.kind != "STRING":
                raise syntax_error(tok, "a time zone string")
            self.advance()
            self.expect_op(")")
            stmt.tz = tok.value
        return stmt

    def field(self) -> ast.Field:
        expr = self.expr()
        alias = None
        if self.accept_keyword("AS"):
            alias = self.ident("an alias identifier")
        return ast.Field(expr, alias)

    def sources(self, allow_subquery: bool) -> list[ast.Measurement | ast.SelectStatement]:
        out: list[ast.Measurement | ast.SelectStatement] = [self.source(allow_subquery)]
        while self.accept_op(","):
            out.append(self.source(allow_subquery))
        return out

    def source(self, allow_subquery: bool) -> ast.Measurement | ast.SelectStatement:
        if allow_subquery and self.at_op("("):
            self.advance()
            sub = self.select()
            self.expect_op(")")
            return sub
        return self.measurement()

    def measurement(self) -> ast.Measurement:
        """``[db.][rp.]name`` or ``[db.][rp.]/regex/``."""
        parts: list[str | None] = []
        while True:
            if self.at_regex():
                return ast.Measurement(
                    regex=self.regex().value,
                    retention_policy=parts[-1] if parts else None,
                    database=parts[-2] if len(parts) > 1 else None,
                )
            tok = self.peek()
            if tok.kind == "IDENT":
                self.advance()
                parts.append(tok.value)
            else:
                raise syntax_error(tok, "identifier, regex")
            if not self.accept_op("."):
                break
            if self.at_op("."):  # db..measurement: default retention policy
                self.advance()
                parts.append(None)
        if len(parts) > 3:
            raise syntax_error(self.peek(), "at most database.retention_policy.measurement")
        name = parts[-1]
        return ast.Measurement(
            name=name,
            retention_policy=parts[-2] if len(parts) > 1 else None,
            database=parts[-3] if len(parts) > 2 else None,
        )

    def dimensions(self) -> list[ast.Dimension]:
        dims = [self.dimension()]
        while self.accept_op(","):
            dims.append(self.dimension())
        return dims

    def dimension(self) -> ast.Dimension:
        """One GROUP BY item: ``time(interval[, offset])``, a tag, ``/regex/`` or ``*``."""
        if self.at_op("*"):
            self.advance()
            return ast.WildcardDimension()
        if self.at_regex():
            return ast.RegexDimension(self.regex().value)
        tok = self.peek()
        if tok.kind == "IDENT" and not tok.quoted and tok.value.lower() == "time":
            self.advance()
            if not self.at_op("("):
                return ast.TagDimension("time")
            self.advance()
            interval = self.expr()
            offset = None
            if self.accept_op(","):
                offset = self.expr()
            self.expect_op(")")
            return ast.TimeDimension(interval, offset)
        name = self.ident("identifier, regex, time() or *")
        if self.accept_op("::"):
            self.ident("a type hint")
        return ast.TagDimension(name)

    def fill(self, stmt: ast.SelectStatement) -> None:
        """``fill(null|none|previous|linear|<number>)``."""
        self.expect_op("(")
        tok = self.advance()
        stmt.fill_given = True
        if tok.kind in ("INTEGER", "NUMBER"):
            stmt.fill, stmt.fill_value = "value", tok.number
        elif tok.kind == "OP" and tok.value == "-":
            num = self.advance()
            if num.kind not in ("INTEGER", "NUMBER"):
                raise syntax_error(num, "a number")
            stmt.fill, stmt.fill_value = "value", -(num.number or 0)
        elif tok.kind == "IDENT" and tok.value.lower() in ("null", "none", "previous", "linear"):
            stmt.fill = tok.value.lower()
        else:
            raise syntax_error(tok, "null, none, previous, linear or a number")
        self.expect_op(")")

    def order_by(self, stmt: ast.SelectStatement) -> None:
        tok = self.peek()
        if tok.kind == "IDENT" and tok.value.lower() == "time":
            self.advance()
        elif not self.at_keyword("ASC", "DESC"):
            raise syntax_error(tok, "time, ASC or DESC (only ORDER BY time is supported)")
        if self.accept_keyword("DESC"):
            stmt.order_desc = True
        else:
            self.accept_keyword("ASC")
        if self.at_op(","):
            raise syntax_error(self.peek(), "LIMIT, OFFSET, SLIMIT, SOFFSET, TZ or EOF")

    # -- SHOW --------------------------------------------------------------------------------
    def show(self) -> ast.Statement:
        """SHOW statements; unsupported ones come back as ``ast.Unsupported``."""
        self.advance()
        tok = self.advance()
        word = tok.value.upper() if tok.kind in ("KEYWORD", "IDENT") else ""
        if word == "MEASUREMENTS":
            return self.show_measurements()
        if word == "TAG":
            if self.accept_keyword("KEYS"):
                return self.show_tag_keys()
            if self.accept_keyword("VALUES"):
                return self.show_tag_values()
            raise syntax_error(self.peek(), "KEYS, VALUES")
        if word == "FIELD":
            self.expect_keyword("KEYS")
            return self.show_field_keys()
        if word == "RETENTION":
            self.expect_keyword("POLICIES")
            on = self.ident("database name") if self.accept_keyword("ON") else None
            return ast.ShowRetentionPolicies(on=on)
        if word == "DATABASES":
            return ast.Unsupported("SHOW DATABASES")
        if word in ("SERIES", "QUERIES", "USERS", "GRANTS", "STATS", "DIAGNOSTICS", "SHARDS"):
            return ast.Unsupported(f"SHOW {word}")
        if word in ("CONTINUOUS", "SHARD", "SUBSCRIPTIONS"):
            return ast.Unsupported(f"SHOW {word}")
        raise syntax_error(
            tok,
            "MEASUREMENTS, TAG KEYS, TAG VALUES, FIELD KEYS, RETENTION POLICIES, DATABASES",
        )

    def _on(self) -> str | None:
        return self.ident("database name") if self.accept_keyword("ON") else None

    def _limit_offset(
        self, stmt: ast.ShowMeasurements | ast.ShowTagKeys | ast.ShowTagValues | ast.ShowFieldKeys
    ) -> None:
        if self.accept_keyword("LIMIT"):
            stmt.limit = self.integer("an integer LIMIT")
        if self.accept_keyword("OFFSET"):
            stmt.offset = self.integer("an integer OFFSET")

    def _from(self) -> list[ast.Measurement]:
        if not self.accept_keyword("FROM"):
            return []
        out = [self.measurement()]
        while self.accept_op(","):
            out.append(self.measurement())
        return out

    def show_measurements(self) -> ast.ShowMeasurements:
        stmt = ast.ShowMeasurements(on=self._on())
        if self.accept_keyword("WITH"):
            self.expect_keyword("MEASUREMENT")
            if self.accept_op("=~"):
                stmt.measurement = ast.Measurement(regex=self.regex().value)
            else:
                self.expect_op("=")
                stmt.measurement = self.measurement()
        if self.accept_keyword("WHERE"):
            stmt.condition = self.expr()
        self._limit_offset(stmt)
        return stmt

    def show_tag_keys(self) -> ast.ShowTagKeys:
        stmt = ast.ShowTagKeys(on=self._on())
        stmt.sources = self._from()
        if self.accept_keyword("WHERE"):
            stmt.condition = self.expr()
        self._limit_offset(stmt)
        return stmt

    def show_tag_values(self) -> ast.ShowTagValues:
        stmt = ast.ShowTagValues(on=self._on())
        stmt.sources = self._from()
        self.expect_keyword("WITH")
        self.expect_keyword("KEY")
        if self.accept_keyword("IN"):
            stmt.key_op = "IN"
            self.expect_op("(")
            stmt.key_values = [self.ident("tag key")]
            while self.accept_op(","):
                stmt.key_values.append(self.ident("tag key"))
            self.expect_op(")")
        elif self.at_op("=~", "!~"):
            stmt.key_op = self.advance().value
            stmt.key_regex = self.regex().value
        elif self.at_op("=", "!=", "<>"):
            op = self.advance().value
            stmt.key_op = "!=" if op == "<>" else op
            if self.at_regex():
                stmt.key_regex = self.regex().value
                stmt.key_op = "=~" if op == "=" else "!~"
            else:
                stmt.key_values = [self.ident("tag key")]
        else:
            raise syntax_error(self.peek(), "=, !=, =~, !~ or IN")
        if self.accept_keyword("WHERE"):
            stmt.condition = self.expr()
        self._limit_offset(stmt)
        return stmt

    def show_field_keys(self) -> ast.ShowFieldKeys:
        stmt = ast.ShowFieldKeys(on=self._on())
        stmt.sources = self._from()
        self._limit_offset(stmt)
        return stmt

    # -- expressions ---------------------------------------------------------------------
    def expr(self, min_prec: int = 1) -> ast.Expr:
        """Precedence climbing; the right side of ``=~``/``!~`` is scanned as a regex."""
        lhs = self.unary()
        while True:
            tok = self.peek()
            if (tok.kind == "KEYWORD" and tok.value in ("AND", "OR")) or (
                tok.kind == "OP" and tok.value in _PRECEDENCE
            ):
                op = tok.value
            else:
                return lhs
            prec = _PRECEDENCE[op]
            if prec < min_prec:
                return lhs
            self.advance()
            op = "!=" if op == "<>" else op
            if op in ("=~", "!~"):
                rhs: ast.Expr = self._regex_operand()
            elif op in ("=", "!=") and self.at_regex():
                rhs = ast.RegexLit(self.regex().value)
            else:
                rhs = self.expr(prec + 1)
            lhs = ast.BinaryExpr(op, lhs, rhs)

    def _regex_operand(self) -> ast.Expr:
        if self.peek().kind == "BIND":
            return ast.BindParam(self.advance().value)
        return ast.RegexLit(self.regex().value)

    def unary(self) -> ast.Expr:
        tok = self.peek()
        if tok.kind == "OP" and tok.value in ("-", "+"):
            self.advance()
            operand = self.unary()
            if tok.value == "+":
                return operand
            if isinstance(operand, ast.IntegerLit):
                return ast.IntegerLit(-operand.value)
            if isinstance(operand, ast.NumberLit):
                return ast.NumberLit(-operand.value)
            if isinstance(operand, ast.DurationLit):
                return ast.DurationLit(-operand.ns, "-" + operand.text)
            return ast.BinaryExpr("*", ast.IntegerLit(-1), operand)
        return self.primary()

    def primary(self) -> ast.Expr:
        """Literals, identifiers (with ``::type``), calls, ``*``, regexes, parentheses."""
        tok = self.peek()
        if tok.kind == "OP" and tok.value == "(":
            self.advance()
            inner = self.expr()
            self.expect_op(")")
            return ast.Paren(inner)
        if tok.kind == "OP" and tok.value == "*":
            self.advance()
            hint = None
            if self.accept_op("::"):
                hint = self.ident("field or tag").lower()
            return ast.Wildcard(hint)
        if tok.kind == "OP" and tok.value == "/":
            return ast.RegexLit(self.regex().value)
        if tok.kind == "INTEGER":
            self.advance()
            return ast.IntegerLit(int(tok.number or 0))
        if tok.kind == "NUMBER":
            self.advance()
            return ast.NumberLit(float(tok.number or 0.0))
        if tok.kind == "DURATION":
            self.advance()
            return ast.DurationLit(int(tok.number or 0), tok.value)
        if tok.kind == "STRING":
            self.advance()
            return ast.StringLit(tok.value)
        if tok.kind == "BIND":
            self.advance()
            return ast.BindParam(tok.value)
        if tok.kind == "KEYWORD" and tok.value in ("TRUE", "FALSE"):
            self.advance()
            return ast.BoolLit(tok.value == "TRUE")
        if tok.kind == "KEYWORD" and tok.value == "DISTINCT":
            # ``SELECT DISTINCT x`` is InfluxQL shorthand for ``distinct(x)``.
            self.advance()
            if self.at_op("("):
                self.advance()
                arg = self.expr()
                self.expect_op(")")
            else:
                arg = ast.VarRef(self.ident("field name"))
            return ast.Call("distinct", (arg,))
        if tok.kind == "IDENT":
            self.advance()
            if not tok.quoted and self.at_op("("):
                self.advance()
                args: list[ast.Expr] = []
                if not self.at_op(")"):
                    args.append(self.expr())
                    while self.accept_op(","):
                        args.append(self.expr())
                self.expect_op(")")
                return ast.Call(tok.value.lower(), tuple(args))
            hint = None
            if self.accept_op("::"):
                hint_tok = self.peek()
                hint = self.ident(", ".join(_TYPE_HINTS)).lower()
                if hint not in _TYPE_HINTS:
                    raise syntax_error(hint_tok, ", ".join(_TYPE_HINTS))
            return ast.VarRef(tok.value, hint)
        raise syntax_error(tok, "identifier, string, number, bool")


def parse(text: str) -> ast.Statement:
    """Parse one InfluxQL statement or raise ``QueryPlanError`` naming position and expectation."""
    if not text or not text.strip():
        raise QueryPlanError("Error while planning query: InfluxQL syntax error: empty query")
    return Parser(text).parse()


__all__ = ["Parser", "not_implemented", "parse"]
