"""The query language as monitors use it: compile a saved query once, test it against many articles.

This module is the one place monitors touch the search language (`mediabeat.search`): the
same parser as `articles search`, so a monitor matches what a search would find, and the
same messages for a query it cannot accept. `compile_query` parses and compiles a query, or
raises BadMonitorQuery with the parser's message (and column); `document` prepares an
article once for every monitor.

Speed, measured with bench/monitor_bench.py: most saved queries are words joined by AND, OR
and NOT, which an article's set of tokens decides without token positions. Those are
evaluated on the set; the rest (phrases, NEAR, prefixes, filters) go to the search
language's own evaluator, and only after a check that the article has every token the query
cannot do without. The positional document is built only for an article that reaches it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

from mediabeat.domain.monitors import BadMonitorQuery, MonitorMatchDoc
from mediabeat.search.match import Document as SearchDocument
from mediabeat.search.match import compile_matcher, required_terms
from mediabeat.search.query import And, Filter, Near, Node, Not, Or, Phrase, QueryError, Term, parse_query
from mediabeat.search.tokens import fold

# The word pattern of search.tokens.
_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=100_000)
def _word_tokens(word: str) -> tuple[str, ...]:
    folded = fold(word)
    # Folding can split a ligature or leave punctuation (NFKD of "½" is "1⁄2"), as in search.tokens.
    return (folded,) if folded.isalnum() else tuple(_WORD.findall(folded))


def tokens_of(text: str) -> list[str]:
    """search.tokens.tokenize(text), about five times faster: each distinct word is folded once per process.

    A test holds the two equal.
    """
    return list(chain.from_iterable(map(_word_tokens, _WORD.findall(text))))


class Document:
    """An article as every monitor sees it: its set of tokens, and (built on first use) the positional document."""

    __slots__ = ("_article", "_title_tokens", "_tokens", "source", "vocabulary")

    def __init__(self, source: MonitorMatchDoc) -> None:
        self.source = source
        self._title_tokens = tokens_of(source.title or "")
        self._tokens = self._title_tokens + tokens_of(source.text or "")
        self.vocabulary = frozenset(self._tokens)
        self._article: SearchDocument | None = None

    @property
    def article(self) -> SearchDocument:
        """What SearchDocument.from_article builds, from the tokens made already."""
        if self._article is None:
            doc = self.source
            host = doc.url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
            self._article = SearchDocument(
                tokens=tuple(self._tokens),
                site=host.removeprefix("www."),
                lang=(doc.language or "").lower() or None,
                feed_id=doc.feed_id,
                published_at=doc.published_at,
                title_length=len(self._title_tokens),
            )
        return self._article


def document(doc: MonitorMatchDoc) -> Document:
    return Document(doc)


Predicate = Callable[[Document], bool]
SetPredicate = Callable[[frozenset[str]], bool]


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """A query ready to test; `required` is a set of tokens of which a matching article has at least one.

    `required` is None when no such set exists (prefixes, NOT-only or filter-only queries): such
    a query is tested on every article.
    """

    text: str
    matches: Predicate
    required: frozenset[str] | None


def _on_set(node: Node) -> SetPredicate | None:
    """A test on the article's token set that decides `node`, or None when positions or metadata are needed."""
    if isinstance(node, Term) and not node.prefix:
        token = node.token
        return lambda tokens: token in tokens
    if isinstance(node, Phrase) and len(node.tokens) == 1 and not node.prefix:
        only = node.tokens[0]
        return lambda tokens: only in tokens
    if isinstance(node, And | Or):
        parts = [_on_set(item) for item in node.items]
        if any(p is None for p in parts):
            return None
        known = [p for p in parts if p is not None]
        if isinstance(node, And):
            return lambda tokens: all(p(tokens) for p in known)
        return lambda tokens: any(p(tokens) for p in known)
    if isinstance(node, Not):
        inner = _on_set(node.item)
        return None if inner is None else (lambda tokens: not inner(tokens))
    return None


def _needed(node: Node | None) -> frozenset[str]:
    """Tokens every matching article contains (a cheap check before the positional evaluation)."""
    if node is None or isinstance(node, Not | Filter):
        return frozenset()
    if isinstance(node, Term):
        return frozenset() if node.prefix else frozenset((node.token,))
    if isinstance(node, Phrase):
        return frozenset(node.tokens[:-1] if node.prefix else node.tokens)
    if isinstance(node, Near):
        return _needed(node.left) | _needed(node.right)
    parts = [_needed(item) for item in node.items]
    if isinstance(node, And):
        return frozenset().union(*parts)
    common = parts[0]
    for part in parts[1:]:
        common &= part
    return common


def compile_query(text: str) -> CompiledQuery:
    """`text` compiled for matching; BadMonitorQuery says what is wrong with it and where."""
    text = text.strip()
    try:
        query = parse_query(text)
    except QueryError as exc:
        raise BadMonitorQuery(str(exc)) from None
    required = required_terms(query)
    on_set = _on_set(query.text) if query.text is not None and query.filters is None else None
    if on_set is not None:
        decide = on_set
        return CompiledQuery(text=text, matches=lambda doc: decide(doc.vocabulary), required=required)
    matcher = compile_matcher(query)
    needed = _needed(query.text)
    return CompiledQuery(
        text=text,
        matches=lambda doc: needed <= doc.vocabulary and matcher(doc.article),
        required=required,
    )
