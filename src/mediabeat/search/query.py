"""The search query language: text in, a typed syntax tree out, or a QueryError that names the column.

Pure: no I/O, no clock. docs/search.md is the user's description of the language; the grammar is

    query    := or_expr
    or_expr  := and_expr ("OR" and_expr)*
    and_expr := unary (["AND"] unary)*          -- juxtaposition is AND
    unary    := ("NOT" | "-") unary | near
    near     := primary ("NEAR/n" primary)?     -- both sides words or phrases
    primary  := "(" or_expr ")" | '"phrase"'[*] | word[*] | field:value

Operators are operators only in upper case (`AND`, `OR`, `NOT`, `NEAR/n`); in lower case they are
words, the way analysts' tools treat "and" inside a headline. Filters (`site:`, `lang:`, `feed:`,
`since:`, `until:`) restrict the whole query, so they may be combined with each other by any
operator but with words only at the top level (`brexit site:bbc.co.uk`, not `brexit OR site:x`).
"""

from __future__ import annotations

import datetime as dt
import enum
import re
from dataclasses import dataclass, field

from mediabeat.search.tokens import tokenize

MAX_QUERY_LENGTH = 1000
MAX_TERMS = 64
MAX_NEAR_DISTANCE = 20
MIN_PREFIX_LENGTH = 2
_SEPARATORS = frozenset('()"')
_NEAR = re.compile(r"NEAR/(\S*)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_LANG = re.compile(r"[a-z]{2,3}(-[a-z0-9]{2,8})?")
_HOST = re.compile(r"[a-z0-9.-]+")
# Words so common that a query made only of them would return most of the archive.
STOP_WORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "de",
        "del",
        "der",
        "des",
        "die",
        "das",
        "du",
        "el",
        "en",
        "et",
        "for",
        "from",
        "has",
        "he",
        "in",
        "is",
        "it",
        "its",
        "la",
        "las",
        "le",
        "les",
        "los",
        "of",
        "on",
        "or",
        "que",
        "se",
        "that",
        "the",
        "to",
        "un",
        "una",
        "und",
        "une",
        "was",
        "were",
        "will",
        "with",
        "y",
    ]
)


class QueryError(ValueError):
    """A query the language cannot accept; `column` is 1-based, counted in characters."""

    def __init__(self, message: str, column: int, hint: str = "") -> None:
        super().__init__(f"{message} at column {column}" + (f": {hint}" if hint else ""))
        self.message = message
        self.column = column
        self.hint = hint


class FilterField(enum.StrEnum):
    SITE = "site"
    LANG = "lang"
    FEED = "feed"
    SINCE = "since"
    UNTIL = "until"


@dataclass(frozen=True)
class Term:
    """One token to find; `prefix` matches every token that starts with it."""

    text: str  # as typed (the databases fold it with their own tokenizer)
    token: str  # folded by search.tokens
    prefix: bool = False
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Phrase:
    """Tokens that must follow each other; `prefix` applies to the last one."""

    text: str
    tokens: tuple[str, ...]
    prefix: bool = False
    column: int = field(default=0, compare=False)


Operand = Term | Phrase


@dataclass(frozen=True)
class Near:
    """Both operands with at most `distance` tokens between them, in either order."""

    left: Operand
    right: Operand
    distance: int
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Filter:
    """A restriction on the article's metadata; `value` is normalised (see _filter)."""

    name: FilterField
    value: str | int | dt.date
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]
    column: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Not:
    item: Node
    column: int = field(default=0, compare=False)


Node = Term | Phrase | Near | Filter | And | Or | Not


@dataclass(frozen=True)
class Query:
    """A parsed query: the text condition (for the index) and the metadata condition (for WHERE)."""

    source: str
    text: Node | None
    filters: Node | None


class _Kind(enum.Enum):
    WORD = "word"
    PHRASE = "phrase"
    AND = "AND"
    OR = "OR"
    NOT = "NOT"
    NEAR = "NEAR"
    OPEN = "("
    CLOSE = ")"


@dataclass(frozen=True)
class _Token:
    kind: _Kind
    text: str
    column: int
    prefix: bool = False
    distance: int = 0


def parse_query(source: str) -> Query:
    """Parse `source` into a Query; raise QueryError (with the column) for anything it cannot accept."""
    if len(source) > MAX_QUERY_LENGTH:
        raise QueryError(
            f"the query is {len(source)} characters long; the limit is {MAX_QUERY_LENGTH}",
            MAX_QUERY_LENGTH + 1,
        )
    cleaned = _CONTROL.sub(" ", source)  # newlines, tabs and other controls separate words
    tokens = _lex(cleaned)
    if not tokens:
        raise QueryError("the query has no words to search for", 1)
    node = _Parser(tokens).parse()
    if node is None:
        raise QueryError("the query has no words to search for", 1)
    _check_term_count(node)
    return _split(source, node)


def _lex(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            tokens.append(_Token(_Kind.OPEN if ch == "(" else _Kind.CLOSE, ch, i + 1))
            i += 1
        elif ch == '"':
            i = _lex_phrase(text, i, tokens)
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _SEPARATORS:
                j += 1
            _lex_bare(text[i:j], i + 1, tokens, next_char=text[j] if j < len(text) else "")
            i = j
    return tokens


def _lex_phrase(text: str, start: int, tokens: list[_Token]) -> int:
    end = text.find('"', start + 1)
    if end < 0:
        raise QueryError("unbalanced quote", start + 1, 'this phrase has no closing "')
    prefix = end + 1 < len(text) and text[end + 1] == "*"
    tokens.append(_Token(_Kind.PHRASE, text[start + 1 : end], start + 1, prefix=prefix))
    return end + 2 if prefix else end + 1


def _lex_bare(word: str, column: int, tokens: list[_Token], next_char: str) -> None:
    if word in ("AND", "OR", "NOT"):
        tokens.append(_Token(_Kind(word), word, column))
        return
    near = _NEAR.fullmatch(word)
    if near:
        tokens.append(_Token(_Kind.NEAR, word, column, distance=_near_distance(near[1], column)))
        return
    if word.startswith("-") and (len(word) > 1 or next_char in ('"', "(")):
        tokens.append(_Token(_Kind.NOT, "-", column))
        word, column = word[1:], column + 1
        if not word:
            return
    prefix = word.endswith("*")
    tokens.append(_Token(_Kind.WORD, word.rstrip("*") if prefix else word, column, prefix=prefix))


def _near_distance(digits: str, column: int) -> int:
    if not digits.isascii() or not digits.isdigit():
        raise QueryError("NEAR needs a distance in words, as in NEAR/5", column)
    distance = int(digits)
    if distance > MAX_NEAR_DISTANCE:
        raise QueryError(f"NEAR/{distance} is too far; the limit is NEAR/{MAX_NEAR_DISTANCE}", column)
    return distance


class _Parser:
    """Recursive descent over the lexed tokens; words without letters or digits vanish here."""

    def __init__(self, tokens: list[_Token]) -> None:
        self.tokens = tokens
        self.pos = 0

    def peek(self) -> _Token | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Token:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def parse(self) -> Node | None:
        node = self.or_expr()
        extra = self.peek()
        if extra is not None:  # only a stray ")" stops or_expr early
            raise QueryError("unbalanced parenthesis", extra.column, "this ')' has no '('")
        return node

    def or_expr(self) -> Node | None:
        first = self.peek()
        items = [self.and_expr()]
        while (token := self.peek()) is not None and token.kind is _Kind.OR:
            self.take()
            items.append(self.and_expr())
            if items[-1] is None or items[0] is None:
                raise QueryError("OR needs a word or phrase on both sides", token.column)
        if len(items) == 1:
            return items[0]
        return Or(tuple(i for i in items if i is not None), first.column if first else 0)

    def and_expr(self) -> Node | None:
        items: list[Node] = []
        first = self.peek()
        if first is not None and first.kind is _Kind.AND:
            raise QueryError("AND needs a word or phrase on both sides", first.column)
        while (token := self.peek()) is not None and token.kind not in (_Kind.OR, _Kind.CLOSE):
            if token.kind is _Kind.AND:
                self.take()
                after = self.peek()
                if after is None or after.kind in (_Kind.OR, _Kind.CLOSE, _Kind.AND):
                    raise QueryError("AND needs a word or phrase on both sides", token.column)
                continue
            node = self.unary()
            if node is not None:
                items.append(node)
        if not items:
            return None
        return items[0] if len(items) == 1 else And(tuple(items), items[0].column)

    def unary(self) -> Node | None:
        token = self.peek()
        if token is not None and token.kind is _Kind.NOT:
            self.take()
            after = self.peek()
            if after is None or after.kind in (_Kind.OR, _Kind.CLOSE, _Kind.AND, _Kind.NEAR):
                raise QueryError(f"{token.text} needs a word or phrase after it", token.column)
            inner = self.unary()
            if inner is None:
                return None
            return inner.item if isinstance(inner, Not) else Not(inner, token.column)
        return self.near()

    def near(self) -> Node | None:
        left = self.primary()
        token = self.peek()
        if token is None or token.kind is not _Kind.NEAR:
            return left
        self.take()
        right = self.primary()
        if not isinstance(left, Term | Phrase) or not isinstance(right, Term | Phrase):
            raise QueryError("NEAR joins two words or phrases, as in brexit NEAR/5 vote", token.column)
        following = self.peek()
        if following is not None and following.kind is _Kind.NEAR:
            raise QueryError("NEAR joins two words or phrases; combine several with AND", following.column)
        return Near(left, right, token.distance, left.column)

    def primary(self) -> Node | None:
        token = self.peek()
        if token is None:
            return None
        if token.kind is _Kind.OPEN:
            return self.group()
        if token.kind is _Kind.CLOSE:
            return None
        if token.kind in (_Kind.AND, _Kind.OR, _Kind.NEAR, _Kind.NOT):
            raise QueryError(f"{token.text} needs a word or phrase before it", token.column)
        self.take()
        if token.kind is _Kind.PHRASE:
            return _operand(token.text, token.column, token.prefix, quoted=True)
        return _word(token)

    def group(self) -> Node | None:
        opening = self.take()
        inner = self.or_expr()
        closing = self.peek()
        if closing is None or closing.kind is not _Kind.CLOSE:
            raise QueryError("unbalanced parenthesis", opening.column, "this '(' is never closed")
        self.take()
        if inner is None:
            raise QueryError("empty parentheses", opening.column)
        return inner


def _word(token: _Token) -> Node | None:
    name, colon, value = token.text.partition(":")
    if colon and name.lower() in FilterField.__members__.values():
        return _filter(FilterField(name.lower()), value, token.column)
    return _operand(token.text, token.column, token.prefix, quoted=False)


def _operand(text: str, column: int, prefix: bool, *, quoted: bool) -> Operand | None:
    tokens = tokenize(text)
    if not tokens:
        if quoted:
            raise QueryError("this phrase has no words in it", column)
        if prefix:
            raise QueryError("'*' must end a word, as in elect*", column)
        return None  # punctuation typed between words, like "-" or "&"
    if prefix and len(tokens[-1]) < MIN_PREFIX_LENGTH:
        raise QueryError(f"a prefix needs at least {MIN_PREFIX_LENGTH} letters before '*'", column)
    if len(tokens) == 1:
        return Term(text, tokens[0], prefix, column)
    return Phrase(text, tuple(tokens), prefix, column)


def _filter(name: FilterField, raw: str, column: int) -> Filter:
    value = raw.strip().lower()
    if not value:
        raise QueryError(f"{name}: needs a value, as in {_FILTER_EXAMPLES[name]}", column)
    if name is FilterField.SITE:
        host = value.split("://", 1)[-1].split("/", 1)[0].removeprefix("www.")
        if not host or not _HOST.fullmatch(host):
            raise QueryError(f"site: needs a host name, as in {_FILTER_EXAMPLES[name]}", column)
        return Filter(name, host, column)
    if name is FilterField.LANG:
        if not _LANG.fullmatch(value):
            raise QueryError(f"lang: needs a language code, as in {_FILTER_EXAMPLES[name]}", column)
        return Filter(name, value, column)
    if name is FilterField.FEED:
        if not value.isascii() or not value.isdigit() or len(value) > 18:
            raise QueryError(f"feed: needs a feed id, as in {_FILTER_EXAMPLES[name]}", column)
        return Filter(name, int(value), column)
    try:
        return Filter(name, dt.date.fromisoformat(value), column)
    except ValueError:
        raise QueryError(f"{name}: needs a date, as in {_FILTER_EXAMPLES[name]}", column) from None


_FILTER_EXAMPLES = {
    FilterField.SITE: "site:bbc.co.uk",
    FilterField.LANG: "lang:fr",
    FilterField.FEED: "feed:12",
    FilterField.SINCE: "since:2024-01-31",
    FilterField.UNTIL: "until:2024-12-31",
}


def _check_term_count(node: Node) -> None:
    count = 0
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, And | Or):
            stack.extend(item.items)
        elif isinstance(item, Not):
            stack.append(item.item)
        else:
            count += 2 if isinstance(item, Near) else 1
            if count > MAX_TERMS:
                raise QueryError(f"the query has more than {MAX_TERMS} terms", item.column)


def _has_filter(node: Node) -> bool:
    if isinstance(node, Filter):
        return True
    if isinstance(node, And | Or):
        return any(_has_filter(i) for i in node.items)
    return isinstance(node, Not) and _has_filter(node.item)


def _is_filter_only(node: Node) -> bool:
    if isinstance(node, Filter):
        return True
    if isinstance(node, And | Or):
        return all(_is_filter_only(i) for i in node.items)
    return isinstance(node, Not) and _is_filter_only(node.item)


def _split(source: str, node: Node) -> Query:
    conjuncts = node.items if isinstance(node, And) else (node,)
    texts: list[Node] = []
    filters: list[Node] = []
    for item in conjuncts:
        if _is_filter_only(item):
            filters.append(item)
        elif _has_filter(item):
            raise QueryError(
                "filters like site: and since: apply to the whole query; "
                "combine them with words only by AND, not inside OR, NOT or parentheses",
                item.column,
            )
        else:
            texts.append(item)
    text = _join(texts)
    if text is not None:
        _check_positive(text)
        _check_not_only_stop_words(text)
    return Query(source, text, _join(filters))


def _join(items: list[Node]) -> Node | None:
    if not items:
        return None
    return items[0] if len(items) == 1 else And(tuple(items), items[0].column)


def _check_positive(node: Node) -> None:
    """Every AND and the query itself need a part that is not excluded; an OR may not exclude."""
    if isinstance(node, Not):
        raise QueryError(
            "a query cannot only exclude; add a word or phrase to find, as in brexit -vote",
            node.column,
        )
    if isinstance(node, Or):
        for item in node.items:
            if isinstance(item, Not):
                raise QueryError("NOT cannot be one side of OR; use AND NOT", item.column)
            _check_positive(item)
    if isinstance(node, And):
        positives = [i for i in node.items if not isinstance(i, Not)]
        if not positives:
            _check_positive(node.items[0])
        for item in node.items:
            _check_positive(item.item if isinstance(item, Not) else item)


def _check_not_only_stop_words(node: Node) -> None:
    terms = [t for t in _positive_operands(node)]
    if terms and all(isinstance(t, Term) and not t.prefix and t.token in STOP_WORDS for t in terms):
        raise QueryError(
            "the query has only very common words; add a more specific word or quote a phrase",
            terms[0].column,
        )


def _positive_operands(node: Node) -> list[Operand]:
    if isinstance(node, Term | Phrase):
        return [node]
    if isinstance(node, Near):
        return [node.left, node.right]
    if isinstance(node, And | Or):
        return [t for i in node.items for t in _positive_operands(i)]
    return []
