"""One list of an article's listing fields: SearchHit, the API's ArticleSummary and the search SQL follow it."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

from mediabeat.db.stores.search import _HIT_COLUMNS
from mediabeat.domain.search import HIGHLIGHT_END, HIGHLIGHT_START, LISTING_FIELDS, SearchHit
from mediabeat.web.api.content import ArticleSummary

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_search_hits_the_api_and_the_sql_share_the_listing_fields() -> None:
    hit_fields = [f.name for f in dataclasses.fields(SearchHit)]
    assert tuple(hit_fields[: len(LISTING_FIELDS)]) == LISTING_FIELDS
    assert tuple(list(ArticleSummary.model_fields)[: len(LISTING_FIELDS)]) == LISTING_FIELDS
    assert ", ".join(f"articles.{name}" for name in LISTING_FIELDS) == _HIT_COLUMNS


def test_a_hit_in_the_api_has_a_plain_snippet_with_the_offsets_of_its_highlights() -> None:
    hit = SearchHit(
        **{name: None for name in LISTING_FIELDS},
        snippet=f"the {HIGHLIGHT_START}harbour{HIGHLIGHT_END} wall",
        score=1.5,
        cluster_id=7,
        cluster_size=3,
    )
    hit = dataclasses.replace(hit, id=1, org_id=2, url="https://example.org/a", fetched_at=NOW, created_at=NOW)
    item = ArticleSummary.of_hit(hit)
    assert item.snippet == "the harbour wall" and item.highlights == [[4, 11]]
    assert (item.id, item.score, item.cluster_id, item.cluster_size) == (1, 1.5, 7, 3)
