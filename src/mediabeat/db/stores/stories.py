"""Story clusters: the LSH band index, each article's cluster, and the clusters listed largest first.

Assigning clusters is serialised per organisation: on PostgreSQL by a transaction-scoped advisory
lock on (STORY_LOCK, org_id), on SQLite by its single writer (a write transaction begins with
BEGIN IMMEDIATE). So two workers storing copies of one story at the same moment never both start a
cluster: the second waits, then finds the first one's bands in its candidate query.
"""

from __future__ import annotations

import builtins
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from mediabeat.db.engine import Database
from mediabeat.db.stores.rows import record_of
from mediabeat.db.tables import article_bands as bands_t
from mediabeat.db.tables import article_clusters as members_t
from mediabeat.db.tables import articles as articles_t
from mediabeat.db.tables import story_clusters as clusters_t
from mediabeat.domain.stories import (
    ArticleSketch,
    Candidate,
    ClusterMembership,
    PlaceFn,
    StoryDetail,
    StoryMember,
    StorySummary,
)

# The first key of the advisory lock (pg_advisory_xact_lock(int, int)): "MBst" in ASCII.
STORY_LOCK = 0x4D427374
MAX_STORY_MEMBERS = 1_000


class StoryStore:
    """article_clusters, article_bands and story_clusters."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def assign(
        self, org_id: int, sketches: Sequence[ArticleSketch], *, now: datetime, place: PlaceFn
    ) -> builtins.list[int]:
        """Cluster `sketches` (articles of `org_id`, in order) in one transaction; returns their cluster ids.

        An article clustered before is taken out first and placed again (its text may have
        changed). Each article's candidates are read after the articles before it were written,
        so copies within one batch find each other.
        """
        if not sketches:
            return []
        async with self.db.write() as conn:
            if self.db.is_postgres:
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(STORY_LOCK, org_id % 2**31)))
            ids = [s.article_id for s in sketches]
            await conn.execute(members_t.delete().where(members_t.c.article_id.in_(ids)))
            await conn.execute(bands_t.delete().where(bands_t.c.article_id.in_(ids)))  # where FKs are off
            return [await self._assign_one(conn, org_id, sketch, now, place) for sketch in sketches]

    async def _assign_one(
        self, conn: AsyncConnection, org_id: int, sketch: ArticleSketch, now: datetime, place: PlaceFn
    ) -> int:
        candidates = await self._candidates(conn, org_id, sketch.bands) if sketch.bands else []
        placement = place(sketch.signature, candidates)
        cluster_id = placement.cluster_id
        if cluster_id is None:
            insert = clusters_t.insert().values(org_id=org_id, created_at=now).returning(clusters_t.c.id)
            cluster_id = int((await conn.execute(insert)).scalar_one())
        if placement.absorb:
            await conn.execute(
                members_t.update().where(members_t.c.cluster_id.in_(placement.absorb)).values(cluster_id=cluster_id)
            )
            await conn.execute(clusters_t.delete().where(clusters_t.c.id.in_(placement.absorb)))
        await conn.execute(
            members_t.insert().values(
                article_id=sketch.article_id,
                org_id=org_id,
                cluster_id=cluster_id,
                signature=sketch.signature,
                clustered_at=now,
            )
        )
        if sketch.bands:
            await conn.execute(
                bands_t.insert(),
                [
                    {"org_id": org_id, "band_no": no, "band_hash": h, "article_id": sketch.article_id}
                    for no, h in enumerate(sketch.bands)
                ],
            )
        return cluster_id

    async def _candidates(self, conn: AsyncConnection, org_id: int, bands: Sequence[int]) -> builtins.list[Candidate]:
        """The clustered articles sharing at least one band: one query on (org_id, band_no, band_hash)."""
        matches = sa.or_(*(sa.and_(bands_t.c.band_no == no, bands_t.c.band_hash == h) for no, h in enumerate(bands)))
        hits = sa.select(bands_t.c.article_id).where(bands_t.c.org_id == org_id, matches).distinct().subquery()
        query = sa.select(members_t.c.article_id, members_t.c.cluster_id, members_t.c.signature).join(
            hits, hits.c.article_id == members_t.c.article_id
        )
        return [Candidate(int(a), int(c), bytes(s)) for a, c, s in await conn.execute(query)]

    async def memberships(self, article_ids: Sequence[int]) -> dict[int, ClusterMembership]:
        """The cluster and cluster size of each of `article_ids` that is clustered."""
        if not article_ids:
            return {}
        ac, other = members_t.alias("ac"), members_t.alias("other")
        sizes = sa.select(sa.func.count()).where(other.c.cluster_id == ac.c.cluster_id).scalar_subquery()
        outlets = (
            sa.select(sa.func.count(sa.distinct(articles_t.c.feed_id)))
            .select_from(other.join(articles_t, articles_t.c.id == other.c.article_id))
            .where(other.c.cluster_id == ac.c.cluster_id)
            .scalar_subquery()
        )
        query = sa.select(ac.c.article_id, ac.c.cluster_id, sizes, outlets).where(
            ac.c.article_id.in_(list(article_ids))
        )
        async with self.db.read() as conn:
            rows = await conn.execute(query)
            return {int(a): ClusterMembership(int(a), int(c), int(n), int(o)) for a, c, n, o in rows}

    async def list(self, *, org_id: int | None, limit: int, min_size: int = 2) -> builtins.list[StorySummary]:
        """Clusters largest first (then newest first), with at least `min_size` articles."""
        size = sa.func.count().label("size")
        query = (
            sa.select(members_t.c.cluster_id, members_t.c.org_id, size)
            .group_by(members_t.c.cluster_id, members_t.c.org_id)
            .having(sa.func.count() >= min_size)
            .order_by(size.desc(), members_t.c.cluster_id.desc())
            .limit(limit)
        )
        if org_id is not None:
            query = query.where(members_t.c.org_id == org_id)
        async with self.db.read() as conn:
            top = [(int(c), int(o), int(n)) for c, o, n in await conn.execute(query)]
            members = await self._members(conn, [c for c, _, _ in top])
        return [_summary(c, o, members.get(c, []), size=n) for c, o, n in top]

    async def get(self, cluster_id: int) -> StoryDetail | None:
        """One cluster with its articles (the first MAX_STORY_MEMBERS, earliest first)."""
        async with self.db.read() as conn:
            org_id = (
                await conn.execute(sa.select(clusters_t.c.org_id).where(clusters_t.c.id == cluster_id))
            ).scalar_one_or_none()
            if org_id is None:
                return None
            members = (await self._members(conn, [cluster_id])).get(cluster_id, [])
            count = sa.select(sa.func.count()).where(members_t.c.cluster_id == cluster_id)
            size = int((await conn.execute(count)).scalar_one())
        if not members:
            return None
        return StoryDetail(story=_summary(cluster_id, int(org_id), members, size=size), members=tuple(members))

    async def _members(
        self, conn: AsyncConnection, cluster_ids: Sequence[int]
    ) -> dict[int, builtins.list[StoryMember]]:
        if not cluster_ids:
            return {}
        query = (
            sa.select(
                members_t.c.cluster_id,
                articles_t.c.id,
                articles_t.c.title,
                articles_t.c.url,
                articles_t.c.feed_id,
                articles_t.c.published_at,
                articles_t.c.fetched_at,
            )
            .join(articles_t, articles_t.c.id == members_t.c.article_id)
            .where(members_t.c.cluster_id.in_(list(cluster_ids)))
            .order_by(members_t.c.cluster_id, articles_t.c.id)
        )
        grouped: dict[int, builtins.list[StoryMember]] = {}
        for row in await conn.execute(query):
            group = grouped.setdefault(int(row.cluster_id), [])
            if len(group) < MAX_STORY_MEMBERS:
                group.append(record_of(StoryMember, row))  # type: ignore[arg-type]
        return grouped

    async def unclustered(self, org_id: int, *, after_id: int, limit: int) -> builtins.list[Any]:
        """Articles of `org_id` past `after_id` that have no cluster yet, oldest first: (id, title, summary, text)."""
        query = (
            sa.select(articles_t.c.id, articles_t.c.title, articles_t.c.summary, articles_t.c.text)
            .outerjoin(members_t, members_t.c.article_id == articles_t.c.id)
            .where(articles_t.c.org_id == org_id, articles_t.c.id > after_id, members_t.c.article_id.is_(None))
            .order_by(articles_t.c.id)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return list(await conn.execute(query))

    async def clear(self, org_id: int) -> None:
        """Forget every cluster of `org_id` (before a rebuild)."""
        async with self.db.write() as conn:
            if self.db.is_postgres:
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(STORY_LOCK, org_id % 2**31)))
            await conn.execute(bands_t.delete().where(bands_t.c.org_id == org_id))
            await conn.execute(members_t.delete().where(members_t.c.org_id == org_id))
            await conn.execute(clusters_t.delete().where(clusters_t.c.org_id == org_id))

    async def count_clusters(self, org_id: int, *, min_size: int = 2) -> int:
        inner = (
            sa.select(members_t.c.cluster_id)
            .where(members_t.c.org_id == org_id)
            .group_by(members_t.c.cluster_id)
            .having(sa.func.count() >= min_size)
            .subquery()
        )
        async with self.db.read() as conn:
            return int((await conn.execute(sa.select(sa.func.count()).select_from(inner))).scalar_one())


def _summary(cluster_id: int, org_id: int, members: Sequence[StoryMember], *, size: int) -> StorySummary:
    """A cluster's summary from its articles (ordered by id: the first is the earliest stored)."""
    seen = [m.fetched_at for m in members]
    return StorySummary(
        id=cluster_id,
        org_id=org_id,
        size=size,
        title=members[0].title if members else None,
        first_seen=min(seen),
        last_seen=max(seen),
        outlets=len({m.feed_id for m in members if m.feed_id is not None}),
        sites=len({(urlsplit(m.url).hostname or "") for m in members}),
    )
