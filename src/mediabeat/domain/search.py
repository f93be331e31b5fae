"""Search results as plain records, and the refusal of a query the language cannot parse."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from mediabeat.domain.content import InvalidInput

# Where a snippet's matched words start and end. Private-use code points, which no article's
# text is expected to hold; each surface turns them into its own marks (HTML <mark>, «», offsets).
HIGHLIGHT_START = "\ue000"
HIGHLIGHT_END = "\ue001"
MAX_SEARCH_OFFSET = (
    2_000  # ranked results page this deep at most (the newest 2,000 matches are ranked); an export has no limit
)


# What an article shows in a list of articles or of search results: SearchHit's first fields, the
# API's ArticleSummary and the search SQL's columns. A test holds the three to this one list.
LISTING_FIELDS = (
    "id", "org_id", "feed_id", "url", "canonical_url", "title", "author",
    "published_at", "summary", "language", "fetched_at", "created_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class SearchHit:
    """One ranked match: `snippet` marks the matched words with HIGHLIGHT_START/END; higher score is better.

    `cluster_id` is the article's story (None until it is clustered) and `cluster_size` the
    story's articles, this one included: in a collapsed search, the hit stands for them all.
    """

    id: int
    org_id: int
    feed_id: int | None
    url: str
    canonical_url: str | None
    title: str | None
    author: str | None
    published_at: datetime | None
    summary: str | None
    language: str | None
    fetched_at: datetime
    created_at: datetime
    snippet: str
    score: float
    cluster_id: int | None = None
    cluster_size: int = 1

    def plain(self) -> dict[str, Any]:
        """The hit for the API and scripts: the listing fields, the snippet as plain text with the
        [start, end) offsets of its highlights, the score and the story."""
        text, spans = plain_snippet(self.snippet)
        return {
            **{name: getattr(self, name) for name in LISTING_FIELDS},
            "snippet": text,
            "highlights": [list(span) for span in spans],
            "score": self.score,
            "cluster_id": self.cluster_id,
            "cluster_size": self.cluster_size,
        }


@dataclass(frozen=True, slots=True)
class Reader:
    """Who searches: an admin may search every organisation, a member only `org_id`."""

    is_admin: bool
    org_id: int | None = None


ADMIN_READER = Reader(is_admin=True)


class BadQuery(InvalidInput):
    """The query does not parse; the message names the column of the problem."""

    def __init__(self, message: str, column: int) -> None:
        super().__init__("q", message)
        self.column = column


def plain_snippet(snippet: str) -> tuple[str, list[tuple[int, int]]]:
    """The snippet without its marks, and the (start, end) offsets of each highlighted part in it."""
    text: list[str] = []
    spans: list[tuple[int, int]] = []
    length, start = 0, -1
    for ch in snippet:
        if ch == HIGHLIGHT_START:
            start = length
        elif ch == HIGHLIGHT_END:
            if start >= 0:
                spans.append((start, length))
            start = -1
        else:
            text.append(ch)
            length += 1
    return "".join(text), spans


def marked_snippet(snippet: str, start: str, end: str) -> str:
    """The snippet with the highlight marks replaced by `start` and `end` (for text output)."""
    return snippet.replace(HIGHLIGHT_START, start).replace(HIGHLIGHT_END, end)


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GB" if n >= 2**30 else f"{n / 2**20:.0f} MB"


def cache_advice(done: dict[str, Any]) -> str | None:
    """What to tell an operator whose PostgreSQL cache (`shared_buffers`) is smaller than the newest articles'
    rows and search index, which searches read most (SearchStore.upkeep's sizes); None when it holds them, or
    on SQLite. At 1,000,000 articles with the package's 128 MB a NEAR query's p99 was 61-64 ms against 43-45
    with 4 GB: its rows came from the OS's cache (docs/benchmarks.md)."""
    shared, newest = done.get("search_shared_buffers_bytes"), done.get("search_newest_bytes")
    if shared is None or newest is None or shared >= newest:
        return None
    return (
        f"PostgreSQL's shared_buffers ({_size(shared)}) is smaller than the newest articles' rows and search "
        f"index ({_size(newest)}), which searches read most: they read the rest from the operating system's "
        "cache, and their slowest take longer (docs/deploy.md suggests a quarter of the memory)"
    )
