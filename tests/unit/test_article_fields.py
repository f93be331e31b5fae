"""The pure choices about an article's fields: date, language, and when a recall pass is tried."""

from __future__ import annotations

from datetime import UTC, datetime

from mediabeat.crawler.fields import (
    LANGUAGE_MIN_CONFIDENCE,
    LANGUAGE_MIN_TEXT_CHARS,
    SHORT_TEXT_CHARS,
    choose_language,
    choose_published_at,
    longer_text,
    wants_recall_pass,
)
from mediabeat.crawler.language import iso_code

PAGE = datetime(2025, 5, 1, tzinfo=UTC)
FEED = datetime(2026, 1, 2, tzinfo=UTC)
GUESS = datetime(2024, 3, 12, tzinfo=UTC)


def test_the_page_date_wins_then_the_feed_then_the_inferred_one() -> None:
    assert choose_published_at(page=PAGE, feed=FEED, inferred=GUESS) == PAGE
    assert choose_published_at(page=None, feed=FEED, inferred=GUESS) == FEED
    assert choose_published_at(page=None, feed=None, inferred=GUESS) == GUESS
    assert choose_published_at(page=None, feed=None, inferred=None) is None


def test_a_short_or_empty_text_gets_a_recall_pass_and_the_longer_text_is_kept() -> None:
    assert wants_recall_pass(None) and wants_recall_pass("   ")
    assert wants_recall_pass("x" * (SHORT_TEXT_CHARS - 1))
    assert not wants_recall_pass("x" * SHORT_TEXT_CHARS)
    assert longer_text("short", "a longer text") == "a longer text"
    assert longer_text("same", "SAME") == "same"  # a tie keeps the precise pass
    assert longer_text(None, None) is None and longer_text("kept", None) == "kept"


def test_the_text_decides_the_language_when_it_is_long_and_sure() -> None:
    long = LANGUAGE_MIN_TEXT_CHARS
    sure = LANGUAGE_MIN_CONFIDENCE
    assert choose_language(declared="en", detected="de", confidence=sure, text_chars=long) == "de"
    assert choose_language(declared=None, detected="fr", confidence=0.99, text_chars=5000) == "fr"
    assert choose_language(declared="pt-br", detected="pt", confidence=0.99, text_chars=5000) == "pt-br"
    # Too little text, or an unsure answer: the page's declaration stands (even when absent).
    assert choose_language(declared="en", detected="de", confidence=0.99, text_chars=long - 1) == "en"
    assert choose_language(declared="en", detected="de", confidence=sure - 0.01, text_chars=5000) == "en"
    assert choose_language(declared=None, detected="de", confidence=0.5, text_chars=5000) is None
    assert choose_language(declared="en", detected=None, confidence=0.0, text_chars=5000) == "en"


def test_cld3_codes_become_iso_639_1() -> None:
    assert iso_code("de") == "de"
    assert iso_code("iw") == "he"  # CLD3 keeps Hebrew's old code
    assert iso_code("fil") == "tl"
    assert iso_code("ru-Latn") == "ru"  # romanised Russian is still Russian
    assert iso_code("und") is None
