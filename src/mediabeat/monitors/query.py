"""The query language as monitors use it: compile a saved query once, test it against many articles.

This module is the one place monitors touch the query language. It offers `compile_query`
(text to a `CompiledQuery`, or BadMonitorQuery with the parser's message) and `document`
(an article's words, tokenised once for every monitor).

Until the full-text search language is available, a small Boolean subset is parsed here:
words, "exact phrases", AND / OR / NOT, -word and parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from mediabeat.domain.monitors import MAX_QUERY_LENGTH, BadMonitorQuery, MonitorMatchDoc

WORD = re.compile(r"\w+", re.UNICODE)
LEXEME = re.compile(r'\s*(?:(?P<open>\()|(?P<close>\))|"(?P<phrase>[^"]*)"|(?P<neg>-)?(?P<word>[^\s()"]+))')
MAX_TERMS = 1_000


@dataclass(frozen=True, slots=True)
class Document:
    """An article's words in order (lower case) and as a set, made once per article."""

    words: tuple[str, ...]
    vocabulary: frozenset[str]
    joined: str


def document(doc: MonitorMatchDoc) -> Document:
    text = " ".join(part for part in (doc.title, doc.summary, doc.text) if part)
    words = tuple(word.lower() for word in WORD.findall(text))
    return Document(words=words, vocabulary=frozenset(words), joined=f" {' '.join(words)} ")


Predicate = Callable[[Document], bool]


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    """A query ready to test; `required` is a set of words of which a matching article has at least one.

    `required` is None when no such set exists (a query made of NOTs only): it is tested on every article.
    """

    text: str
    matches: Predicate
    required: frozenset[str] | None


@dataclass(frozen=True, slots=True)
class _Node:
    predicate: Predicate
    required: frozenset[str] | None  # any-of


def _term(words: list[str]) -> _Node:
    if not words:
        raise BadMonitorQuery("an empty phrase or a term without letters or digits matches nothing")
    if len(words) == 1:
        word = words[0]
        return _Node(lambda d: word in d.vocabulary, frozenset(words))
    phrase = f" {' '.join(words)} "
    rarest = max(words, key=len)
    return _Node(lambda d: rarest in d.vocabulary and phrase in d.joined, frozenset({rarest}))


def _not(node: _Node) -> _Node:
    inner = node.predicate
    return _Node(lambda d: not inner(d), None)


def _all(nodes: list[_Node]) -> _Node:
    if len(nodes) == 1:
        return nodes[0]
    predicates = [n.predicate for n in nodes]
    known = [n.required for n in nodes if n.required is not None]
    return _Node(lambda d: all(p(d) for p in predicates), min(known, key=len) if known else None)


def _any(nodes: list[_Node]) -> _Node:
    if len(nodes) == 1:
        return nodes[0]
    predicates = [n.predicate for n in nodes]
    required: frozenset[str] | None = frozenset()
    for node in nodes:
        required = None if required is None or node.required is None else required | node.required
    return _Node(lambda d: any(p(d) for p in predicates), required)


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _lex(text)
        self.pos = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def parse(self) -> _Node:
        node = self.disjunction()
        if self.peek() is not None:
            raise BadMonitorQuery("a closing parenthesis has no opening one")
        return node

    def disjunction(self) -> _Node:
        nodes = [self.conjunction()]
        while self.peek() == ("op", "OR"):
            self.pos += 1
            nodes.append(self.conjunction())
        return _any(nodes)

    def conjunction(self) -> _Node:
        nodes = [self.unary()]
        while (token := self.peek()) is not None and token not in (("op", "OR"), ("close", ")")):
            if token == ("op", "AND"):
                self.pos += 1
            nodes.append(self.unary())
        return _all(nodes)

    def unary(self) -> _Node:
        token = self.peek()
        if token is None:
            raise BadMonitorQuery("the query ends where a word, a phrase or a parenthesis was expected")
        self.pos += 1
        kind, value = token
        if kind == "op" and value in ("NOT", "-"):
            return _not(self.unary())
        if kind == "open":
            node = self.disjunction()
            if self.peek() != ("close", ")"):
                raise BadMonitorQuery("a parenthesis is not closed")
            self.pos += 1
            return node
        if kind in ("word", "phrase"):
            return _term([w.lower() for w in WORD.findall(value)])
        raise BadMonitorQuery(f"{value} needs a word or a phrase on each side")


def _lex(text: str) -> list[tuple[str, str]]:
    if text.count('"') % 2:
        raise BadMonitorQuery('a quotation mark (") is not closed')
    tokens: list[tuple[str, str]] = []
    for match in LEXEME.finditer(text):
        if match.group("open"):
            tokens.append(("open", "("))
        elif match.group("close"):
            tokens.append(("close", ")"))
        elif match.group("phrase") is not None:
            tokens.append(("phrase", match.group("phrase")))
        elif (word := match.group("word")) is not None:
            if match.group("neg"):
                tokens.append(("op", "-"))
            tokens.append(("op", word) if word in ("AND", "OR", "NOT") else ("word", word))
    if len(tokens) > MAX_TERMS:
        raise BadMonitorQuery(f"a monitor's query has at most {MAX_TERMS} terms")
    return tokens


def compile_query(text: str) -> CompiledQuery:
    """`text` compiled for matching; BadMonitorQuery says what is wrong with it and where."""
    text = text.strip()
    if not text:
        raise BadMonitorQuery('give a query: words, "phrases", AND, OR, NOT and parentheses')
    if len(text) > MAX_QUERY_LENGTH:
        raise BadMonitorQuery(f"a monitor's query has at most {MAX_QUERY_LENGTH} characters")
    node = _Parser(text).parse()
    return CompiledQuery(text=text, matches=node.predicate, required=node.required)
