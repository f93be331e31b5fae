"""A parsed query evaluated in Python against one article, the way the index would answer it.

For saved-query monitors: each new article is matched against many queries without a round trip
to the index. Words, phrases and NEAR are decided on token positions from search.tokens, the
tokenisation rule of the SQLite index; the title and the text are separate fields, so a phrase
or a NEAR never spans from one to the other (as in FTS5, where they are two columns).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from mediabeat.search.query import (
    And,
    Filter,
    FilterField,
    Near,
    Node,
    Not,
    Operand,
    Or,
    Phrase,
    Query,
    Term,
)
from mediabeat.search.tokens import tokenize

# Positions of the text start this far after the title's, so no phrase or NEAR joins the two.
_FIELD_GAP = 1_000


@dataclass(frozen=True)
class Document:
    """What a query can see of an article: its tokens and the metadata filters compare."""

    tokens: tuple[str, ...]
    site: str = ""  # host name, lower case, without "www."
    lang: str | None = None
    feed_id: int | None = None
    published_at: dt.datetime | None = None
    title_length: int = 0  # the first title_length tokens are the title
    _positions: dict[str, list[int]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_article(
        cls,
        *,
        title: str | None,
        text: str | None,
        url: str = "",
        lang: str | None = None,
        feed_id: int | None = None,
        published_at: dt.datetime | None = None,
    ) -> Document:
        """A Document for an article row; `url` gives the site."""
        title_tokens = tokenize(title or "")
        host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
        return cls(
            tokens=tuple(title_tokens + tokenize(text or "")),
            site=host.removeprefix("www."),
            lang=(lang or "").lower() or None,
            feed_id=feed_id,
            published_at=published_at,
            title_length=len(title_tokens),
        )

    def positions(self) -> dict[str, list[int]]:
        """Each token's sorted positions (built once, on first use)."""
        found = self._positions
        if not found and self.tokens:
            title = self.title_length
            for i, token in enumerate(self.tokens[:title]):
                found.setdefault(token, []).append(i)
            for i, token in enumerate(self.tokens[title:], start=title + _FIELD_GAP):
                found.setdefault(token, []).append(i)
        return found


Matcher = Callable[[Document], bool]


def compile_matcher(query: Query) -> Matcher:
    """A function that says whether a Document matches `query` (text and filters both)."""
    parts = [_compile(node) for node in (query.text, query.filters) if node is not None]
    return lambda doc: all(part(doc) for part in parts)


def _compile(node: Node) -> Matcher:
    if isinstance(node, Term | Phrase):
        operand = node
        return lambda doc: next(_spans(doc, operand), None) is not None
    if isinstance(node, Near):
        return _near(node)
    if isinstance(node, And):
        items = [_compile(i) for i in node.items]
        return lambda doc: all(m(doc) for m in items)
    if isinstance(node, Or):
        alternatives = [_compile(i) for i in node.items]
        return lambda doc: any(m(doc) for m in alternatives)
    if isinstance(node, Not):
        inner = _compile(node.item)
        return lambda doc: not inner(doc)
    return _filter(node)


def _spans(doc: Document, operand: Operand) -> Iterator[tuple[int, int]]:
    """(first, last) token positions of each occurrence of `operand` in `doc`."""
    positions = doc.positions()
    tokens = (operand.token,) if isinstance(operand, Term) else operand.tokens
    last = len(tokens) - 1
    starts = _token_positions(positions, tokens[0], operand.prefix and last == 0)
    if last == 0:
        yield from ((p, p) for p in starts)
        return
    following = [
        set(_token_positions(positions, t, operand.prefix and i == last)) for i, t in enumerate(tokens[1:], start=1)
    ]
    for start in starts:
        if all(start + i in following[i - 1] for i in range(1, last + 1)):
            yield start, start + last


def _token_positions(positions: dict[str, list[int]], token: str, prefix: bool) -> list[int]:
    if not prefix:
        return positions.get(token, [])
    found = [p for key, ps in positions.items() if key.startswith(token) for p in ps]
    return sorted(found)


def _near(node: Near) -> Matcher:
    def matches(doc: Document) -> bool:
        lefts = list(_spans(doc, node.left))
        if not lefts:
            return False
        for r_first, r_last in _spans(doc, node.right):
            for l_first, l_last in lefts:
                gap = r_first - l_last - 1 if r_first > l_last else l_first - r_last - 1
                if 0 <= gap <= node.distance:
                    return True
        return False

    return matches


def _filter(node: Filter) -> Matcher:
    value = node.value
    if node.name is FilterField.SITE:
        return lambda doc: doc.site == value or doc.site.endswith(f".{value}")
    if node.name is FilterField.LANG:
        return lambda doc: doc.lang is not None and (doc.lang == value or doc.lang.startswith(f"{value}-"))
    if node.name is FilterField.FEED:
        return lambda doc: doc.feed_id == value
    assert isinstance(value, dt.date)
    if node.name is FilterField.SINCE:
        return lambda doc: doc.published_at is not None and doc.published_at.date() >= value
    return lambda doc: doc.published_at is not None and doc.published_at.date() <= value


def required_terms(query: Query) -> frozenset[str] | None:
    """Tokens of which a matching article must contain at least one, or None if no such set.

    A monitor can skip every query whose set shares no token with an article. Prefixes give
    None (they match an open set of tokens); for a phrase the longest token is enough.
    """
    return None if query.text is None else _required(query.text)


def _required(node: Node) -> frozenset[str] | None:
    if isinstance(node, Term):
        return None if node.prefix else frozenset((node.token,))
    if isinstance(node, Phrase):
        fixed = node.tokens[:-1] if node.prefix else node.tokens
        return frozenset((max(fixed, key=len),)) if fixed else None
    if isinstance(node, Near):
        sides = [s for s in (_required(node.left), _required(node.right)) if s is not None]
        return min(sides, key=len) if sides else None
    if isinstance(node, And):
        found = [s for s in (_required(i) for i in node.items) if s is not None]
        return min(found, key=len) if found else None
    if isinstance(node, Or):
        union: set[str] = set()
        for item in node.items:
            part = _required(item)
            if part is None:
                return None
            union |= part
        return frozenset(union)
    return None
