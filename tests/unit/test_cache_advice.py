"""What `mediabeat db search-upkeep` and the nightly cleanup say about PostgreSQL's cache (cache_advice)."""

from __future__ import annotations

from mediabeat.domain.search import cache_advice


def test_a_cache_smaller_than_the_newest_articles_is_named_with_both_sizes() -> None:
    advice = cache_advice({"search_shared_buffers_bytes": 128 * 2**20, "search_newest_bytes": 3 * 2**30 // 2})
    assert advice is not None
    assert "shared_buffers (128 MB)" in advice and "(1.5 GB)" in advice and "docs/deploy.md" in advice


def test_a_cache_that_holds_them_or_sqlite_gets_no_advice() -> None:
    assert cache_advice({"search_shared_buffers_bytes": 4 * 2**30, "search_newest_bytes": 3 * 2**30}) is None
    assert cache_advice({"search_shared_buffers_bytes": 2**30, "search_newest_bytes": 2**30}) is None
    assert cache_advice({"search_weightless_words": 12, "search_common_words": 40}) is None  # SQLite's result
