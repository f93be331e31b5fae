"""Pure decisions about an extracted article's fields: which date and language to keep, when to extract again.

No I/O and no clock: the extraction workers and the pool gather the candidates, these pick.
"""

from __future__ import annotations

from datetime import datetime

# Below this many characters the precision-first extraction probably missed the article
# (a teaser, a caption): a recall-oriented pass is tried and the longer text kept.
SHORT_TEXT_CHARS = 250
# The identifier is trusted on this much text at this confidence (CLD3's probability); a
# shorter or less certain text keeps the page's declared language.
LANGUAGE_MIN_TEXT_CHARS = 80
LANGUAGE_MIN_CONFIDENCE = 0.9


def choose_published_at(*, page: datetime | None, feed: datetime | None, inferred: datetime | None) -> datetime | None:
    """The page's own date (its markup), else the feed entry's, else one inferred from the page's text."""
    return page or feed or inferred


def wants_recall_pass(text: str | None) -> bool:
    """Whether a first extraction's text is short enough that a recall-oriented pass should be tried."""
    return len((text or "").strip()) < SHORT_TEXT_CHARS


def longer_text(first: str | None, second: str | None) -> str | None:
    """The longer of two extractions of one page (the first on a tie: it is the more precise one)."""
    return second if len((second or "").strip()) > len((first or "").strip()) else first


def choose_language(*, declared: str | None, detected: str | None, confidence: float, text_chars: int) -> str | None:
    """The article's language: the one its text is in when the identifier is sure, else the page's declaration.

    A declaration that agrees with the text is kept as it is, so a region ("pt-br") survives.
    """
    if detected is None or text_chars < LANGUAGE_MIN_TEXT_CHARS or confidence < LANGUAGE_MIN_CONFIDENCE:
        return declared
    if declared and declared.split("-", 1)[0] == detected:
        return declared
    return detected
