"""The one tokenisation rule of search: Unicode words, lower-cased, accents folded.

It mirrors SQLite FTS5's `unicode61 remove_diacritics 2` tokenizer, which builds the index on
the default database: a token is a run of letters and digits (the underscore and every other
character separate tokens), compared lower-case and without its accents ("Élysée" is "elysee").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_WORD = re.compile(r"[^\W_]+")


@lru_cache(maxsize=4096)
def fold(word: str) -> str:
    """`word` lower-cased with its combining accents removed (NFKD, marks dropped)."""
    decomposed = unicodedata.normalize("NFKD", word.lower())
    if decomposed.isascii():
        return decomposed
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def tokenize(text: str) -> list[str]:
    """The folded tokens of `text`, in order."""
    tokens: list[str] = []
    for match in _WORD.finditer(text):
        folded = fold(match.group())
        # Folding can split a ligature or leave punctuation (NFKD of "½" is "1⁄2").
        tokens.extend(_WORD.findall(folded) if not folded.isalnum() else (folded,))
    return tokens
