"""Story clusters' vocabulary: near-duplicate articles of one organisation grouped as one story.

Plain records and the exception a story lookup raises; the maths is in mediabeat.stories.sketch,
the SQL in mediabeat.db.stores.stories.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from mediabeat.domain.content import NotFound


@dataclass(frozen=True, slots=True)
class ArticleSketch:
    """What the index stores of one article: its MinHash signature and its LSH band hashes (none: too short)."""

    article_id: int
    signature: bytes
    bands: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Candidate:
    """An article already clustered that shares a band with a new one."""

    article_id: int
    cluster_id: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Placement:
    """Where a new article goes: `cluster_id` None means a new cluster; `absorb` are clusters merged into it."""

    cluster_id: int | None
    absorb: tuple[int, ...]
    best: float


# Decides a new article's placement from its signature and its band candidates (pure).
PlaceFn = Callable[[bytes, Sequence[Candidate]], Placement]


@dataclass(frozen=True, slots=True)
class ClusterMembership:
    """An article's story: its cluster's id, how many articles it has (1: no copies found), on how many feeds."""

    article_id: int
    cluster_id: int
    cluster_size: int
    cluster_outlets: int


@dataclass(frozen=True, slots=True)
class StoryMember:
    """One article of a story, as a story page lists it."""

    id: int
    title: str | None
    url: str
    feed_id: int | None
    published_at: datetime | None
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class StorySummary:
    """A story cluster: its size, the title of its earliest article, when it was seen, on how many outlets and sites.

    `outlets` counts distinct feeds, `sites` distinct host names of the articles' URLs.
    """

    id: int
    org_id: int
    size: int
    title: str | None
    first_seen: datetime
    last_seen: datetime
    outlets: int
    sites: int


@dataclass(frozen=True, slots=True)
class StoryDetail:
    """A story cluster with its articles, earliest first."""

    story: StorySummary
    members: tuple[StoryMember, ...]


@dataclass(frozen=True, slots=True)
class RebuildResult:
    """What `stories rebuild` did for one organisation."""

    org_id: int
    articles: int
    clusters: int


class StoryNotFound(NotFound):
    def __init__(self, key: object) -> None:
        super().__init__("story", key)
