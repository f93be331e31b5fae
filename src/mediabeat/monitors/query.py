"""The query language as monitors use it: compile a saved query once, test it against many articles.

This module is the one place monitors touch the search language (`mediabeat.search`): the
same parser as `articles search`, so a monitor matches what a search would find, and the
same messages for a query it cannot accept. `compile_query` parses and compiles a query, or
raises BadMonitorQuery with the parser's message (and column); `document` tokenises an
article once for every monitor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mediabeat.domain.monitors import BadMonitorQuery, MonitorMatchDoc
from mediabeat.search.match import Document as SearchDocument
from mediabeat.search.match import compile_matcher, required_terms
from mediabeat.search.query import QueryError, parse_query


@dataclass(frozen=True, slots=True)
class Document:
    """An article as every monitor sees it: the search evaluator's document, and its set of tokens."""

    article: SearchDocument
    vocabulary: frozenset[str]


def document(doc: MonitorMatchDoc) -> Document:
    article = SearchDocument.from_article(
        title=doc.title,
        text=doc.text,
        url=doc.url,
        lang=doc.language,
        feed_id=doc.feed_id,
        published_at=doc.published_at,
    )
    return Document(article=article, vocabulary=frozenset(article.tokens))


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """A query ready to test; `required` is a set of tokens of which a matching article has at least one.

    `required` is None when no such set exists (prefixes, NOT-only or filter-only queries): such
    a query is tested on every article.
    """

    text: str
    matches: Callable[[Document], bool]
    required: frozenset[str] | None


def compile_query(text: str) -> CompiledQuery:
    """`text` compiled for matching; BadMonitorQuery says what is wrong with it and where."""
    text = text.strip()
    try:
        query = parse_query(text)
    except QueryError as exc:
        raise BadMonitorQuery(str(exc)) from None
    matcher = compile_matcher(query)
    return CompiledQuery(text=text, matches=lambda doc: matcher(doc.article), required=required_terms(query))
