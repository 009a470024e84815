"""InfluxQL tokenizer.

Regex literals (``/.../``) are ambiguous with division, so the lexer only scans one when the
parser asks for it (:meth:`Lexer.scan_regex`). Positions are 0-based character offsets; error
messages report them 1-based, as InfluxDB's parser does ("at pos N").
"""

from __future__ import annotations

from dataclasses import dataclass

from influx_flight.server.errors import QueryPlanError

# Reserved words: lexed as KEYWORD and never usable unquoted as identifiers. Other InfluxQL
# keywords (SHOW, TAG, KEYS, ...) are matched by value where the grammar expects them, so that
# fields named e.g. ``key`` or ``name`` keep working unquoted.
KEYWORDS = frozenset(
    [
        "SELECT",
        "FROM",
        "WHERE",
        "GROUP",
        "BY",
        "FILL",
        "ORDER",
        "LIMIT",
        "OFFSET",
        "SLIMIT",
        "SOFFSET",
        "TZ",
        "AS",
        "AND",
        "OR",
        "INTO",
        "ON",
        "WITH",
        "IN",
        "ASC",
        "DESC",
        "DISTINCT",
        "TRUE",
        "FALSE",
    ]
)

# Unit -> nanoseconds. Longest units first so "ms" wins over "m".
DURATION_UNITS: tuple[tuple[str, int], ...] = (
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("u", 1_000),
    ("µ", 1_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
    ("d", 86_400_000_000_000),
    ("w", 604_800_000_000_000),
)

OPERATORS = ("=~", "!~", "!=", "<>", "<=", ">=", "::", "=", "<", ">", "+", "-", "*", "/", "%")
OPERATORS += ("&", "|", "^", "(", ")", ",", ";", ".")


@dataclass(frozen=True)
class Token:
    kind: str  # IDENT KEYWORD INTEGER NUMBER DURATION STRING REGEX BIND OP EOF
    value: str
    pos: int
    quoted: bool = False
    number: int | float | None = None

    def describe(self) -> str:
        """How the token reads in an error message."""
        if self.kind == "EOF":
            return "EOF"
        if self.kind == "STRING":
            return f"'{self.value}'"
        return self.value


def syntax_error(found: Token, expected: str) -> QueryPlanError:
    """InfluxQL-style parse error: names what was found, what was expected, and where."""
    return QueryPlanError(
        f"Error while planning query: InfluxQL syntax error: found {found.describe()}, "
        f"expected {expected} at pos {found.pos + 1}"
    )


class Lexer:
    """On-demand scanner over one query text."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_space_and_comments(self) -> None:
        text, n = self.text, len(self.text)
        while self.pos < n:
            ch = text[self.pos]
            if ch.isspace():
                self.pos += 1
            elif text.startswith("--", self.pos):
                end = text.find("\n", self.pos)
                self.pos = n if end < 0 else end + 1
            elif text.startswith("/*", self.pos):
                end = text.find("*/", self.pos + 2)
                self.pos = n if end < 0 else end + 2
            else:
                return

    def next(self) -> Token:
        """Scan the next token (never a regex)."""
        self._skip_space_and_comments()
        text, start = self.text, self.pos
        if start >= len(text):
            return Token("EOF", "", start)
        ch = text[start]
        if ch.isalpha() or ch == "_":
            end = start
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            self.pos = end
            word = text[start:end]
            if word.upper() in KEYWORDS:
                return Token("KEYWORD", word.upper(), start)
            return Token("IDENT", word, start)
        if ch == '"':
            return Token("IDENT", self._quoted('"'), start, quoted=True)
        if ch == "'":
            return Token("STRING", self._quoted("'"), start)
        if ch == "$":
            end = start + 1
            if end < len(text) and text[end] == '"':
                self.pos = end
                return Token("BIND", self._quoted('"'), start)
            while end < len(text) and (text[end].isalnum() or text[end] == "_"):
                end += 1
            if end == start + 1:
                raise syntax_error(Token("OP", "$", start), "a bind parameter name")
            self.pos = end
            return Token("BIND", text[start + 1 : end], start)
        if ch.isdigit() or (ch == "." and start + 1 < len(text) and text[start + 1].isdigit()):
            return self._number(start)
        for op in OPERATORS:
            if text.startswith(op, start):
                self.pos = start + len(op)
                return Token("OP", op, start)
        self.pos = start + 1
        raise syntax_error(Token("OP", ch, start), "a valid token")

    def _quoted(self, quote: str) -> str:
        text, pos = self.text, self.pos + 1
        out: list[str] = []
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text):
                nxt = text[pos + 1]
                out.append(
                    {"n": "\n", "t": "\t", "\\": "\\", "'": "'", '"': '"'}.get(nxt, "\\" + nxt)
                )
                pos += 2
                continue
            if ch == quote:
                self.pos = pos + 1
                return "".join(out)
            if ch == "\n":
                break
            out.append(ch)
            pos += 1
        raise syntax_error(Token("OP", quote, self.pos), f"a closing {quote}")

    def _number(self, start: int) -> Token:
        text, end = self.text, start
        while end < len(text) and text[end].isdigit():
            end += 1
        is_float = False
        if end < len(text) and text[end] == "." and end + 1 <= len(text):
            is_float = True
            end += 1
            while end < len(text) and text[end].isdigit():
                end += 1
        if end < len(text) and text[end] in "eE" and is_float:
            e = end + 1
            if e < len(text) and text[e] in "+-":
                e += 1
            if e < len(text) and text[e].isdigit():
                end = e
                while end < len(text) and text[end].isdigit():
                    end += 1
        if not is_float and end < len(text) and (text[end].isalpha() or text[end] == "µ"):
            return self._duration(start)
        self.pos = end
        literal = text[start:end]
        if is_float:
            return Token("NUMBER", literal, start, number=float(literal))
        return Token("INTEGER", literal, start, number=int(literal))

    def _duration(self, start: int) -> Token:
        """``1h30m``-style durations: one or more integer+unit pairs."""
        text, pos, total = self.text, start, 0
        while pos < len(text) and text[pos].isdigit():
            digits_end = pos
            while digits_end < len(text) and text[digits_end].isdigit():
                digits_end += 1
            amount = int(text[pos:digits_end])
            for unit, ns in DURATION_UNITS:
                if text.startswith(unit, digits_end):
                    after = digits_end + len(unit)
                    if after < len(text) and (text[after].isalpha() or text[after] == "_"):
                        continue
                    total += amount * ns
                    pos = after
                    break
            else:
                bad = Token("IDENT", text[start : digits_end + 1], start)
                raise syntax_error(bad, "a duration unit (ns, u, µ, ms, s, m, h, d, w)")
        self.pos = pos
        return Token("DURATION", text[start:pos], start, number=total)

    def scan_regex(self) -> Token:
        """Scan ``/pattern/`` at the current position (``\\/`` escapes a slash)."""
        self._skip_space_and_comments()
        start, text = self.pos, self.text
        if start >= len(text) or text[start] != "/":
            tok = self.next() if start < len(text) else Token("EOF", "", start)
            raise syntax_error(tok, "regex")
        pos = start + 1
        out: list[str] = []
        while pos < len(text):
            ch = text[pos]
            if ch == "\\" and pos + 1 < len(text) and text[pos + 1] == "/":
                out.append("/")
                pos += 2
                continue
            if ch == "/":
                self.pos = pos + 1
                return Token("REGEX", "".join(out), start)
            out.append(ch)
            pos += 1
        raise syntax_error(Token("OP", "/", start), "a closing / for the regex")
