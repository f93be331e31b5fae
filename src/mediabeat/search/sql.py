"""A query's text condition compiled for each index: an FTS5 MATCH string, a PostgreSQL tsquery expression.

Pure string building. Nothing the user typed becomes syntax: in FTS5 every word and phrase is a
double-quoted string (FTS5 tokenizes inside the quotes, so `NEAR(`, `^`, `:` or `*` there are
just characters), and the tsquery is a fixed SQL expression whose every lexeme comes in a bound
parameter, parsed by `phraseto_tsquery` (which reads plain text, not tsquery syntax) or, for a
prefix, a folded token of letters and digits only.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from mediabeat.search.query import And, Near, Node, Not, Operand, Or, Phrase, Term

TS_CONFIG = "mediabeat_search"


def is_positional(node: Node) -> bool:
    """Whether matching `node` needs word positions (a phrase of several words, or NEAR), not only the index."""
    if isinstance(node, Near):
        return True
    if isinstance(node, Phrase):
        return len(node.tokens) > 1
    if isinstance(node, And | Or):
        return any(is_positional(i) for i in node.items)
    if isinstance(node, Not):
        return is_positional(node.item)
    return False


def to_fts5(node: Node, *, relaxed: bool = False) -> str:
    """The FTS5 MATCH expression for a text condition (no filters: those are WHERE clauses).

    `relaxed`: the positions left out (a phrase or NEAR becomes AND of its words, an excluded
    phrase is not excluded), so every article that matches `node` matches it too; it is what
    the index answers without reading positions.
    """
    if isinstance(node, Term | Phrase):
        return _fts5_relaxed(node) if relaxed else _fts5_operand(node)
    if isinstance(node, Near):
        if relaxed:
            return f"({_fts5_relaxed(node.left)} AND {_fts5_relaxed(node.right)})"
        return f"NEAR({_fts5_operand(node.left)} {_fts5_operand(node.right)}, {node.distance})"
    if isinstance(node, Or):
        return "(" + " OR ".join(to_fts5(i, relaxed=relaxed) for i in node.items) + ")"
    if isinstance(node, Not):  # only inside an And (the parser refuses it elsewhere)
        return to_fts5(node.item, relaxed=relaxed)
    assert isinstance(node, And)
    kept = [i for i in node.items if isinstance(i, Not) and not (relaxed and is_positional(i))]
    positive = [to_fts5(i, relaxed=relaxed) for i in node.items if not isinstance(i, Not)]
    negative = [to_fts5(i.item, relaxed=relaxed) for i in kept]
    expression = "(" + " AND ".join(positive) + ")"
    for excluded in negative:
        expression = f"({expression} NOT {excluded})"
    return expression


def to_fts5_ranking(node: Node, weightless: Collection[str] = frozenset()) -> str | None:
    """The FTS5 expression that ranks articles already known to match `node`: what bm25() weighs.

    bm25() counts the articles holding each phrase of its expression over the whole index, which
    is most of a search's time for a common word. This expression matches every article that
    `node` matches (so the same candidates are ranked) and leaves out what weighs nothing:
    - an exclusion (a ranked article holds none of its words: bm25 would only count them);
    - a word of `weightless`, the words held by at least half of the articles, where an AND
      holds it: FTS5 gives such a word the weight 1e-6, far below a score's three digits;
    - a NEAR group is weighed as its two sides (AND), as PostgreSQL ranks it: bm25 counts a
      group's sides one by one anyway, and without the group a weightless side can be left out.
    A word inside an OR is kept (leaving it out would drop the articles it alone matches).
    None: nothing is left to weigh, and every candidate scores 0.
    """
    if isinstance(node, Term | Phrase):
        tokens = (node.token,) if isinstance(node, Term) else node.tokens
        if not node.prefix and len(tokens) == 1 and tokens[0] in weightless:
            return None
        return _fts5_operand(node)
    if isinstance(node, Near):
        return _fts5_and([to_fts5_ranking(node.left, weightless), to_fts5_ranking(node.right, weightless)])
    if isinstance(node, Or):
        items = []
        for item in node.items:
            # An item with nothing to weigh still matches its own articles: it is kept, unweighed words and all.
            ranked = to_fts5_ranking(item, weightless) or to_fts5_ranking(item)
            assert ranked is not None  # an OR's items each hold something to find (the parser refuses NOT there)
            items.append(ranked)
        return "(" + " OR ".join(items) + ")"
    if isinstance(node, Not):
        return None
    assert isinstance(node, And)
    return _fts5_and([to_fts5_ranking(i, weightless) for i in node.items])


def ranked_words(node: Node, weightless: Collection[str] = frozenset()) -> frozenset[str]:
    """The words that to_fts5_ranking(node, weightless) weighs (a prefix is not a word), folded as the
    index folds them: bm25() counts the articles holding each of them before it scores a row."""
    if isinstance(node, Term | Phrase):
        if to_fts5_ranking(node, weightless) is None:
            return frozenset()
        tokens = (node.token,) if isinstance(node, Term) else node.tokens
        return frozenset(tokens[:-1] if node.prefix else tokens)
    if isinstance(node, Near):
        return ranked_words(node.left, weightless) | ranked_words(node.right, weightless)
    if isinstance(node, Or):
        # As to_fts5_ranking: an item with nothing to weigh is kept, unweighed words and all.
        return frozenset().union(
            *(ranked_words(i, weightless if to_fts5_ranking(i, weightless) else ()) for i in node.items)
        )
    if isinstance(node, Not):
        return frozenset()
    assert isinstance(node, And)
    return frozenset().union(*(ranked_words(i, weightless) for i in node.items))


def _fts5_and(items: list[str | None]) -> str | None:
    kept = [i for i in items if i is not None]
    if len(kept) < 2:
        return kept[0] if kept else None
    return "(" + " AND ".join(kept) + ")"


def _fts5_relaxed(operand: Operand) -> str:
    if isinstance(operand, Term) or len(operand.tokens) < 2:
        return _fts5_operand(operand)
    words = [f'"{token}"' for token in operand.tokens]
    if operand.prefix:
        words[-1] += " *"
    return "(" + " AND ".join(words) + ")"


def _fts5_operand(operand: Operand) -> str:
    quoted = '"' + operand.text.replace('"', '""') + '"'
    return f"{quoted} *" if operand.prefix else quoted


@dataclass
class TsQuery:
    """A tsquery SQL expression and its bound parameters (named :tsq0, :tsq1, ...)."""

    sql: str = ""
    params: dict[str, str] = field(default_factory=dict)
    prefix: str = "tsq"
    relaxed: bool = False

    def bind(self, value: str) -> str:
        name = f"{self.prefix}{len(self.params)}"
        self.params[name] = value
        return f":{name}"


def to_tsquery(node: Node, *, relaxed: bool = False, prefix: str = "tsq") -> TsQuery:
    """The PostgreSQL tsquery for a text condition; NEAR/n is every `<k>` distance in both orders.

    `relaxed`: without positions, as in to_fts5 (a phrase or NEAR is AND of its words, an
    excluded phrase is not excluded). The GIN index answers it without reading any row's
    `tsvector`. The parameters are named `prefix` and a number.
    """
    query = TsQuery(prefix=prefix, relaxed=relaxed)
    query.sql = _ts(node, query)
    return query


def _ts(node: Node, query: TsQuery) -> str:
    if isinstance(node, Term | Phrase):
        return _ts_operand(node, query)
    if isinstance(node, Near) and query.relaxed:
        return f"({_ts_operand(node.left, query)} && {_ts_operand(node.right, query)})"
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
    kept = [i for i in node.items if not (query.relaxed and isinstance(i, Not) and is_positional(i))]
    return "(" + " && ".join(_ts(i, query) for i in kept) + ")"


def _ts_operand(operand: Operand, query: TsQuery) -> str:
    config = f"'{TS_CONFIG}'::regconfig"
    words = "plainto_tsquery" if query.relaxed else "phraseto_tsquery"
    if not operand.prefix:
        return f"{words}({config}, {query.bind(operand.text)})"
    tokens = (operand.token,) if isinstance(operand, Term) else operand.tokens
    # The folded token holds letters and digits only, so quoting it cannot break out of the lexeme.
    last = f"to_tsquery({config}, {query.bind(chr(39) + tokens[-1] + chr(39) + ':*')})"
    if len(tokens) == 1:
        return last
    head = f"{words}({config}, {query.bind(' '.join(tokens[:-1]))})"
    return f"({head} && {last})" if query.relaxed else f"tsquery_phrase({head}, {last})"
