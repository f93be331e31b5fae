"""A query's text condition compiled for each index: an FTS5 MATCH string, a PostgreSQL tsquery expression.

Pure string building. Nothing the user typed becomes syntax: in FTS5 every word and phrase is a
double-quoted string (FTS5 tokenizes inside the quotes, so `NEAR(`, `^`, `:` or `*` there are
just characters), and the tsquery is a fixed SQL expression whose every lexeme comes in a bound
parameter, parsed by `phraseto_tsquery` (which reads plain text, not tsquery syntax) or, for a
prefix, a folded token of letters and digits only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mediabeat.search.query import And, Near, Node, Not, Operand, Or, Phrase, Term

TS_CONFIG = "mediabeat_search"


def to_fts5(node: Node) -> str:
    """The FTS5 MATCH expression for a text condition (no filters: those are WHERE clauses)."""
    if isinstance(node, Term | Phrase):
        return _fts5_operand(node)
    if isinstance(node, Near):
        return f"NEAR({_fts5_operand(node.left)} {_fts5_operand(node.right)}, {node.distance})"
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(i) for i in node.items) + ")"
    if isinstance(node, Not):  # only inside an And (the parser refuses it elsewhere)
        return to_fts5(node.item)
    assert isinstance(node, And)
    positive = [to_fts5(i) for i in node.items if not isinstance(i, Not)]
    negative = [to_fts5(i.item) for i in node.items if isinstance(i, Not)]
    expression = "(" + " AND ".join(positive) + ")"
    for excluded in negative:
        expression = f"({expression} NOT {excluded})"
    return expression


def _fts5_operand(operand: Operand) -> str:
    quoted = '"' + operand.text.replace('"', '""') + '"'
    return f"{quoted} *" if operand.prefix else quoted


@dataclass
class TsQuery:
    """A tsquery SQL expression and its bound parameters (named :tsq0, :tsq1, ...)."""

    sql: str = ""
    params: dict[str, str] = field(default_factory=dict)

    def bind(self, value: str) -> str:
        name = f"tsq{len(self.params)}"
        self.params[name] = value
        return f":{name}"


def to_tsquery(node: Node) -> TsQuery:
    """The PostgreSQL tsquery for a text condition; NEAR/n is every `<k>` distance in both orders."""
    query = TsQuery()
    query.sql = _ts(node, query)
    return query


def _ts(node: Node, query: TsQuery) -> str:
    if isinstance(node, Term | Phrase):
        return _ts_operand(node, query)
    if isinstance(node, Near):
        left, right = _ts_operand(node.left, query), _ts_operand(node.right, query)
        # FTS5's NEAR/n allows n tokens between; `<k>` is exactly k positions apart, so k = 1..n+1.
        options = [
            f"tsquery_phrase({a}, {b}, {k})"
            for k in range(1, node.distance + 2)
            for a, b in ((left, right), (right, left))
        ]
        return "(" + " || ".join(options) + ")"
    if isinstance(node, Or):
        return "(" + " || ".join(_ts(i, query) for i in node.items) + ")"
    if isinstance(node, Not):
        return f"(!! {_ts(node.item, query)})"
    assert isinstance(node, And)
    return "(" + " && ".join(_ts(i, query) for i in node.items) + ")"


def _ts_operand(operand: Operand, query: TsQuery) -> str:
    config = f"'{TS_CONFIG}'::regconfig"
    if not operand.prefix:
        return f"phraseto_tsquery({config}, {query.bind(operand.text)})"
    tokens = (operand.token,) if isinstance(operand, Term) else operand.tokens
    # The folded token holds letters and digits only, so quoting it cannot break out of the lexeme.
    last = f"to_tsquery({config}, {query.bind(chr(39) + tokens[-1] + chr(39) + ':*')})"
    if len(tokens) == 1:
        return last
    head = f"phraseto_tsquery({config}, {query.bind(' '.join(tokens[:-1]))})"
    return f"tsquery_phrase({head}, {last})"
