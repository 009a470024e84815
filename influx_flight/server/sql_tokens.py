"""SQL text as tokens: the tokenizer, call finding and the outer SELECT's clauses.

The stand-in rewrites InfluxDB's SQL functions on tokens (strings, quoted identifiers and
comments stay intact: joining the tokens gives the input back).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from influx_flight.server.errors import QueryPlanError

# -- tokenizer -------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<str>(?:[EeXxBb])?'(?:[^']|'')*')
  | (?P<qid>"(?:[^"]|"")*")
  | (?P<param>\$[A-Za-z_0-9]+)
  | (?P<num>\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>>=|<=|<>|!=|::|\|\||=>|->>|->|[(),\[\].;=<>+\-*/%!~^&|:?@#{}])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Tok:
    kind: str
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper()

    @property
    def blank(self) -> bool:
        return self.kind in ("ws", "comment")


def tokenize(sql: str) -> list[Tok]:
    """SQL text as tokens; joining every token's text gives the input back."""
    return [Tok(m.lastgroup or "other", m.group()) for m in _TOKEN.finditer(sql)]


def _text(tokens: Sequence[Tok]) -> str:
    return "".join(t.text for t in tokens)


def _strip(tokens: Sequence[Tok]) -> list[Tok]:
    items = list(tokens)
    while items and items[0].blank:
        items.pop(0)
    while items and items[-1].blank:
        items.pop()
    return items


def _compact(tokens: Sequence[Tok]) -> str:
    """Argument text without comments and with whitespace collapsed (for column names)."""
    out: list[str] = []
    for t in tokens:
        if t.kind == "comment":
            continue
        if t.kind == "ws":
            out.append(" ")
        else:
            out.append(t.text)
    text = "".join(out).strip()
    return re.sub(r"\s*([(),\[\]])\s*", r"\1", text)


def _match_paren(tokens: Sequence[Tok], open_index: int) -> int:
    """Index of the ``)`` closing the ``(`` at ``open_index``."""
    depth = 0
    for i in range(open_index, len(tokens)):
        text = tokens[i].text
        if tokens[i].kind != "op":
            continue
        if text in ("(", "["):
            depth += 1
        elif text in (")", "]"):
            depth -= 1
            if depth == 0:
                return i
    raise QueryPlanError("SQL error: unbalanced parentheses in the query")


def _split_top(tokens: Sequence[Tok], separator: str = ",") -> list[list[Tok]]:
    """Split at ``separator`` tokens that are not inside parentheses or brackets."""
    parts: list[list[Tok]] = [[]]
    depth = 0
    for t in tokens:
        if t.kind == "op" and t.text in ("(", "["):
            depth += 1
        elif t.kind == "op" and t.text in (")", "]"):
            depth -= 1
        if depth == 0 and t.kind == "op" and t.text == separator:
            parts.append([])
            continue
        parts[-1].append(t)
    return parts


def _next_solid(tokens: Sequence[Tok], index: int) -> int:
    while index < len(tokens) and tokens[index].blank:
        index += 1
    return index


@dataclass
class _Call:
    start: int  # index of the function name token
    end: int  # index of the closing parenthesis
    name: str
    args: list[list[Tok]]


def _find_calls(tokens: Sequence[Tok], names: set[str]) -> Iterator[_Call]:
    """Outermost calls of any function in ``names`` (case-insensitive), left to right."""
    i = 0
    while i < len(tokens):
        t = tokens[i]
        if t.kind == "word" and t.text.lower() in names:
            j = _next_solid(tokens, i + 1)
            prev = i - 1
            while prev >= 0 and tokens[prev].blank:
                prev -= 1
            qualified = prev >= 0 and tokens[prev].kind == "op" and tokens[prev].text == "."
            if j < len(tokens) and tokens[j].text == "(" and not qualified:
                end = _match_paren(tokens, j)
                inner = list(tokens[j + 1 : end])
                args = [_strip(a) for a in _split_top(inner)] if _strip(inner) else []
                yield _Call(i, end, t.text.lower(), args)
                i = end + 1
                continue
        i += 1


def _replace_calls(tokens: list[Tok], names: set[str], build: Any) -> tuple[list[Tok], list[_Call]]:
    """Replace each call of ``names`` by ``build(call) -> str`` (args rewritten first)."""
    out: list[Tok] = []
    calls: list[_Call] = []
    last = 0
    for call in _find_calls(tokens, names):
        out.extend(tokens[last : call.start])
        call.args = [_replace_calls(list(a), names, build)[0] for a in call.args]
        out.extend(tokenize(build(call)))
        calls.append(call)
        last = call.end + 1
    out.extend(tokens[last:])
    return out, calls


# -- query structure -----------------------------------------------------------------------

_CLAUSES = ("FROM", "WHERE", "GROUP", "HAVING", "WINDOW", "QUALIFY", "ORDER", "LIMIT", "OFFSET")


@dataclass
class _Select:
    """The outermost SELECT of a query, cut into clauses (token lists)."""

    head: list[Tok]  # everything before the select list, including SELECT [DISTINCT]
    items: list[list[Tok]]
    clauses: dict[str, list[Tok]]  # keyword -> tokens after it, up to the next clause
    clause_order: list[str]


def _outer_select(tokens: list[Tok]) -> _Select | None:
    depth = 0
    marks: list[tuple[int, str]] = []
    select_at = None
    for i, t in enumerate(tokens):
        if t.kind == "op" and t.text in ("(", "["):
            depth += 1
        elif t.kind == "op" and t.text in (")", "]"):
            depth -= 1
        elif depth == 0 and t.kind == "word":
            word = t.upper
            if word == "SELECT" and select_at is None:
                select_at = i
            elif select_at is not None and word in _CLAUSES:
                if word in ("GROUP", "ORDER"):
                    j = _next_solid(tokens, i + 1)
                    if j >= len(tokens) or tokens[j].upper != "BY":
                        continue
                marks.append((i, word))
            elif select_at is not None and word in ("UNION", "EXCEPT", "INTERSECT"):
                return None  # set operations: no gap filling at the top level
    if select_at is None:
        return None
    head_end = select_at + 1
    j = _next_solid(tokens, head_end)
    if j < len(tokens) and tokens[j].upper in ("DISTINCT", "ALL"):
        head_end = j + 1
    list_end = marks[0][0] if marks else len(tokens)
    items = _split_top(tokens[head_end:list_end])
    clauses: dict[str, list[Tok]] = {}
    order: list[str] = []
    for n, (i, word) in enumerate(marks):
        end = marks[n + 1][0] if n + 1 < len(marks) else len(tokens)
        start = i + 1
        if word in ("GROUP", "ORDER"):
            start = _next_solid(tokens, i + 1) + 1
        clauses[word] = list(tokens[start:end])
        order.append(word)
    return _Select(list(tokens[:head_end]), items, clauses, order)


def _item_alias(item: Sequence[Tok]) -> tuple[list[Tok], str | None]:
    """(expression tokens, alias or None) of a select-list item."""
    toks = _strip(item)
    if len(toks) >= 3 and toks[-1].kind == "str":  # AS 'alias' (DataFusion's dialect allows it)
        k = len(toks) - 2
        while k >= 0 and toks[k].blank:
            k -= 1
        if k >= 0 and toks[k].upper == "AS":
            return _strip(toks[:k]), toks[-1].text[1:-1].replace("''", "'")
    if len(toks) >= 3 and toks[-1].kind in ("word", "qid"):
        k = len(toks) - 2
        while k >= 0 and toks[k].blank:
            k -= 1
        if k >= 0 and toks[k].upper == "AS":
            return _strip(toks[:k]), _ident(toks[-1])
        implicit = k >= 0 and (
            toks[k].text in (")", "]") or toks[k].kind in ("word", "qid", "num", "str")
        )
        if implicit and toks[-1].upper not in ("END", "NULL", "TRUE", "FALSE"):
            return _strip(toks[: k + 1]), _ident(toks[-1])
    return toks, None


def _ident(tok: Tok) -> str:
    if tok.kind == "qid":
        return tok.text[1:-1].replace('""', '"')
    return tok.text.lower()


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _contains_call(tokens: Sequence[Tok], names: set[str]) -> bool:
    return any(True for _ in _find_calls(tokens, names))
