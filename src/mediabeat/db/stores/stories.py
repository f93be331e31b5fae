"""Story clusters: the LSH band index, each article's cluster, the pending markers, and the clusters, largest first.

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
from mediabeat.db.tables import story_pending as pending_t
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
    """article_clusters, article_bands, story_clusters and story_pending."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def assign(
        self, org_id: int, sketches: Sequence[ArticleSketch], *, now: datetime, place: PlaceFn
    ) -> builtins.list[int]:
        """Cluster `sketches` (articles of `org_id`, in order) in one transaction; returns their cluster ids."""
        clusters, _ = await self.assign_counted(org_id, sketches, now=now, place=place)
        return clusters

    async def assign_counted(
        self, org_id: int, sketches: Sequence[ArticleSketch], *, now: datetime, place: PlaceFn
    ) -> tuple[builtins.list[int], int]:
        """Cluster `sketches` in one transaction: (their cluster ids, in order; how many were placed here).

        Exactly once per store: under the lock, an article is placed only if it is marked pending
        (stored, or stored afresh, since it was last placed) or has no cluster at all; its marker is
        deleted in the same transaction. An article another process placed meanwhile (its crawl
        hook, or the sweep) keeps its cluster and is not counted. The batch's candidates are read
        with one indexed query, after the lock; the articles are then placed in order in memory
        (each sees the ones before it, so copies within one batch find each other), and the outcome
        is written with a handful of statements. An article placed before is taken out first.
        """
        if not sketches:
            return [], 0
        async with self.db.write() as conn:
            if self.db.is_postgres:
                await conn.execute(sa.select(sa.func.pg_advisory_xact_lock(STORY_LOCK, org_id % 2**31)))
            ids = [s.article_id for s in sketches]
            marked = pending_t.delete().where(pending_t.c.article_id.in_(ids)).returning(pending_t.c.article_id)
            taken = {int(a) for a in (await conn.execute(marked)).scalars()}
            placed = sa.select(members_t.c.article_id, members_t.c.cluster_id).where(members_t.c.article_id.in_(ids))
            existing = {int(a): int(c) for a, c in await conn.execute(placed)}
            eligible = [s for s in sketches if s.article_id in taken or s.article_id not in existing]
            again = [s.article_id for s in eligible if s.article_id in existing]
            if again:
                await conn.execute(bands_t.delete().where(bands_t.c.article_id.in_(again)))
                await conn.execute(members_t.delete().where(members_t.c.article_id.in_(again)))
            known = await self._candidates(conn, org_id, {h for s in eligible for h in s.bands})
            plan = _BatchPlan(known)
            for sketch in eligible:
                plan.place(sketch, place)
            fresh = dict(
                zip((s.article_id for s in eligible), await self._write_plan(conn, org_id, plan, now), strict=True)
            )
        return [fresh.get(i) or plan.final(existing[i]) for i in ids], len(eligible)

    async def pending(self, org_id: int, *, stored_before: datetime, after_id: int, limit: int) -> builtins.list[Any]:
        """Articles of `org_id` marked pending since before `stored_before`, past `after_id`, oldest first.

        (id, title, summary, text): what a crawl hook did not place (its process died, or the
        database went away between the store and the hook).
        """
        query = (
            sa.select(articles_t.c.id, articles_t.c.title, articles_t.c.summary, articles_t.c.text)
            .join(pending_t, pending_t.c.article_id == articles_t.c.id)
            .where(pending_t.c.org_id == org_id, pending_t.c.article_id > after_id)
            .where(pending_t.c.stored_at <= stored_before)
            .order_by(pending_t.c.article_id)
            .limit(limit)
        )
        async with self.db.read() as conn:
            return list(await conn.execute(query))

    async def orgs_pending(self, *, stored_before: datetime) -> builtins.list[int]:
        """Organisations with articles marked pending since before `stored_before`."""
        query = sa.select(pending_t.c.org_id).where(pending_t.c.stored_at <= stored_before).distinct()
        async with self.db.read() as conn:
            return sorted(int(o) for (o,) in await conn.execute(query))

    async def count_pending(self, org_id: int | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(pending_t)
        if org_id is not None:
            query = query.where(pending_t.c.org_id == org_id)
        async with self.db.read() as conn:
            return int((await conn.execute(query)).scalar_one())

    async def _write_plan(self, conn: AsyncConnection, org_id: int, plan: _BatchPlan, now: datetime) -> list[int]:
        if not plan.members:
            return []
        fresh = plan.fresh_clusters()
        if fresh:
            insert = clusters_t.insert().values([{"org_id": org_id, "created_at": now}] * len(fresh))
            new_ids = [int(i) for i in (await conn.execute(insert.returning(clusters_t.c.id))).scalars()]
            plan.name_fresh(dict(zip(fresh, new_ids, strict=True)))
        for keeper, absorbed in plan.merges().items():
            await conn.execute(members_t.update().where(members_t.c.cluster_id.in_(absorbed)).values(cluster_id=keeper))
            await conn.execute(clusters_t.delete().where(clusters_t.c.id.in_(absorbed)))
        clusters = [plan.final(cluster) for _, cluster, _ in plan.members]
        await conn.execute(
            members_t.insert(),
            [
                {"article_id": a, "org_id": org_id, "cluster_id": c, "signature": sig, "clustered_at": now}
                for (a, _, sig), c in zip(plan.members, clusters, strict=True)
            ],
        )
        if plan.bands:
            await conn.execute(
                bands_t.insert(),
                [{"org_id": org_id, "band_no": no, "band_hash": h, "article_id": a} for a, no, h in plan.bands],
            )
        return clusters

    async def _candidates(self, conn: AsyncConnection, org_id: int, hashes: set[int]) -> dict[int, list[Candidate]]:
        """The clustered articles sharing a band hash with the batch, by hash: one query on (org_id, band_hash)."""
        if not hashes:
            return {}
        query = (
            sa.select(bands_t.c.band_hash, members_t.c.article_id, members_t.c.cluster_id, members_t.c.signature)
            .join(members_t, members_t.c.article_id == bands_t.c.article_id)
            .where(bands_t.c.org_id == org_id, bands_t.c.band_hash.in_(sorted(hashes)))
        )
        found: dict[int, list[Candidate]] = {}
        for h, a, c, sig in await conn.execute(query):
            found.setdefault(int(h), []).append(Candidate(int(a), int(c), bytes(sig)))
        return found

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


# Clusters a batch starts get provisional ids from here up, above any real id, until they are inserted:
# `place` keeps the lowest id of the clusters an article links, so a real (older) cluster always wins.
PROVISIONAL = 2**62


class _BatchPlan:
    """One batch's placements, decided in memory: members, their bands, new clusters and merges."""

    def __init__(self, known: dict[int, list[Candidate]]) -> None:
        self.known = known
        self.members: list[tuple[int, int, bytes]] = []  # (article id, cluster, signature)
        self.bands: list[tuple[int, int, int]] = []  # (article id, band number, band hash)
        self.alias: dict[int, int] = {}  # a merged cluster -> the cluster that absorbed it
        self.next_fresh = PROVISIONAL

    def resolve(self, cluster: int) -> int:
        while cluster in self.alias:
            cluster = self.alias[cluster]
        return cluster

    def place(self, sketch: ArticleSketch, place: PlaceFn) -> None:
        seen: dict[int, Candidate] = {}
        for h in sketch.bands:
            for c in self.known.get(h, ()):
                seen.setdefault(c.article_id, c)
        candidates = [Candidate(c.article_id, self.resolve(c.cluster_id), c.signature) for c in seen.values()]
        placement = place(sketch.signature, candidates)
        cluster = placement.cluster_id
        if cluster is None:
            cluster, self.next_fresh = self.next_fresh, self.next_fresh + 1
        for absorbed in placement.absorb:
            self.alias[absorbed] = cluster
        self.members.append((sketch.article_id, cluster, sketch.signature))
        mine = Candidate(sketch.article_id, cluster, sketch.signature)
        for no, h in enumerate(sketch.bands):
            self.bands.append((sketch.article_id, no, h))
            self.known.setdefault(h, []).append(mine)

    def fresh_clusters(self) -> list[int]:
        """The provisional clusters that survive the batch (were not merged into another)."""
        return sorted({c for c in map(self.resolve, (m[1] for m in self.members)) if c >= PROVISIONAL})

    def name_fresh(self, names: dict[int, int]) -> None:
        for provisional, real in names.items():
            self.alias[provisional] = real

    def merges(self) -> dict[int, list[int]]:
        """Real clusters absorbed by another, by the (real) cluster they end in."""
        out: dict[int, list[int]] = {}
        for absorbed in self.alias:
            if absorbed < PROVISIONAL:
                out.setdefault(self.resolve(absorbed), []).append(absorbed)
        return out

    def final(self, cluster: int) -> int:
        return self.resolve(cluster)


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
