"""Full-text search over articles (migration 0011's index): ranked hits with a snippet, and a keyset export.

The text condition comes compiled by mediabeat.search.sql (every user word in a quoted string
or a bound parameter); the filters become WHERE clauses here, with bound parameters. The SQL is
written out per database because the two indexes have little syntax in common.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import struct
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import sqlalchemy as sa

from mediabeat.db.engine import Database
from mediabeat.db.tables import SEARCH_BAND_INDEX_PREFIX, UTCDateTime
from mediabeat.domain.search import HIGHLIGHT_END, HIGHLIGHT_START, LISTING_FIELDS, SearchHit
from mediabeat.search.query import And, Filter, FilterField, Near, Node, Not, Or, Query
from mediabeat.search.sql import TS_CONFIG, is_positional, ranked_words, to_fts5, to_fts5_ranking, to_tsquery

# Scores equal to this many decimals are a tie, and the newest article comes first: a phrase that is in
# nearly every article has an inverse document frequency near 0, so its BM25 scores differ only by noise.
SCORE_DIGITS = 3
RANK_CANDIDATES = 2_000  # the newest matches that are ranked (see SearchStore._ranked)
# A phrase or NEAR query checks word positions in at most this many of the newest articles that hold
# its words (the query with positions left out: sql.to_fts5 / to_tsquery with relaxed=True). FTS5 keeps
# positions in its index; PostgreSQL reads and decompresses each row's `tsvector`, hence fewer there.
# On SQLite they are counted in the whole archive first (the index alone answers that, see _sqlite_floor),
# and in the organisation's own articles when that left a page short; on PostgreSQL, in the organisation's.
POSITION_CHECKS = 20_000
# SQLite: migration 0031's FTS5 index of the newest articles, where a search whose candidates all lie
# there is ranked, and a phrase or NEAR query is tried first (see SearchStore._ranking_plan and
# _sqlite_search), and migration 0011's index of every article.
RECENT_INDEX = "articles_search_recent"
FULL_INDEX = "articles_search"
POSTGRES_POSITION_CHECKS = 5_000
# PostgreSQL walks the archive newest first in id windows through the GIN index: the first window's
# width in ids, and how much wider the next one may grow when the words are rare.
FIRST_WINDOW = 8_000
MAX_GROWTH = 8
# While collecting candidates on PostgreSQL: only bitmap scans (the GIN index, and the primary key for
# the window), room for an exact bitmap of a common word (see _postgres_candidates), no parallel
# workers, whose start costs more than a window's scan (30 ms for ten bands of 250 matches, read in 9 ms),
# and each statement planned for its own words. A window's text is the same for every query of its shape
# (the words are parameters), and after five runs on a connection PostgreSQL may keep one plan for any
# words, blind to how many articles hold them: at 1,000,000 articles a NEAR window took 112 ms that way
# and 16 ms planned for its words, and such plans were most of the benchmark's slowest searches. No JIT
# compilation either: a statement reading many bands is planned near jit_above_cost (82,000 of 100,000 for
# the benchmark's costliest, at ten bands; more bands go past it), and compiling one took 8.6 ms, which a
# walk statement of a few milliseconds never wins back.
_CANDIDATE_SETTINGS = {
    "enable_seqscan": "off",
    "enable_indexscan": "off",
    "work_mem": "64MB",
    "max_parallel_workers_per_gather": "0",
    "plan_cache_mode": "force_custom_plan",
    "jit": "off",
}
# A window walked down the primary key instead, reading each row's `tsvector` (see _first_window).
_BY_KEY_SETTINGS = {"enable_bitmapscan": "off", "enable_indexscan": "on"}
_AFTER_BY_KEY = {"enable_bitmapscan": "on", "enable_indexscan": "off"}
# What a GIN bitmap scan costs per entry of the words' posting lists, against reading one row's `tsvector`
# by key (measured at 1,000,000 articles: 81 ms for a word in 281,525 of them; 19.3 ms for the 4,740 newest
# rows, whose vectors are in their rows since migration 0032; read from the TOAST table a row cost 48).
POSTING_COST = 1.0
ROW_COST = 14.0
# A GIN window reads its segment's index (see _Segment), and either ANDs its bitmap with the primary key's for
# the window's ids, each id costing about half a posting (64,000 ids, 8.7 ms), or reads every row the index
# finds from its heap page, about 9.5 each (942 matches, 2.5 ms; 14,649 postings, 4.1 ms), and keeps those
# in the window: whichever costs less (SearchStore._walk_windows).
KEY_COST = 0.5
VISIT_COST = 9.5
# A statement's round trip and planning, in the same units (1.5 ms): reading the rows of the bands below a
# window beyond those the walk needs is worth it when it saves one more statement (SearchStore._reach).
STATEMENT_COST = 5_000.0
# The holders of a phrase's or NEAR's common words, to the planner's estimate (SearchStore._first_window).
TOGETHER = 1.4
SNIPPET_TOKENS = 24  # FTS5 snippet length, in tokens
_HEADLINE = (
    f'StartSel="{HIGHLIGHT_START}", StopSel="{HIGHLIGHT_END}", MaxWords=30, MinWords=12, '
    'MaxFragments=2, FragmentDelimiter=" … "'
)
# The host of an article's URL, lower case, without a port: the site: filter compares it.
_SQLITE_REST = "substr(articles.url, instr(articles.url, '://') + 3)"
_SQLITE_HOSTPORT = (
    f"(CASE WHEN instr({_SQLITE_REST}, '/') > 0 "
    f"THEN substr({_SQLITE_REST}, 1, instr({_SQLITE_REST}, '/') - 1) ELSE {_SQLITE_REST} END)"
)
_SQLITE_HOST = (
    f"lower(CASE WHEN instr({_SQLITE_HOSTPORT}, ':') > 0 "
    f"THEN substr({_SQLITE_HOSTPORT}, 1, instr({_SQLITE_HOSTPORT}, ':') - 1) ELSE {_SQLITE_HOSTPORT} END)"
)
_POSTGRES_HOST = "lower(split_part(split_part(split_part(articles.url, '://', 2), '/', 1), ':', 1))"
_COLUMNS: dict[str, Any] = {
    "id": sa.BigInteger(),
    "org_id": sa.BigInteger(),
    "feed_id": sa.BigInteger(),
    "published_at": UTCDateTime(),
    "fetched_at": UTCDateTime(),
    "created_at": UTCDateTime(),
    "score": sa.Float(),
}
_EXPORT_COLUMNS = (
    "articles.id, articles.org_id, articles.feed_id, articles.url, articles.title, articles.author, "
    "articles.published_at, articles.language, articles.summary"
)
_HIT_COLUMNS = ", ".join(f"articles.{name}" for name in LISTING_FIELDS)
_COLLAPSED_COLUMNS = ", ".join(f"hits.{name}" for name in LISTING_FIELDS)
# An article's story for collapsing: its cluster, or (not clustered yet) a story of its own.
# SQLite: the newest articles' index floor, the words that weigh nothing (count_weightless_words) and the
# common words (count_common_words).
_RANKING_STATE = (
    "SELECT (SELECT id FROM articles_search_recent_floor), "
    "(SELECT group_concat(term, ' ') FROM search_weightless_words), "
    "(SELECT group_concat(term, ' ') FROM search_common_words)"
)
# SQLite: a word held by at least 1/COMMON_SHARE of the newest articles is common (migration 0035).
COMMON_SHARE = 20
_RECORD_COMMON = (
    "INSERT INTO search_common_words (term, recent_articles, counted_at) "
    "SELECT term, doc, CURRENT_TIMESTAMP FROM articles_search_recent_vocab WHERE :share * doc >= :articles"
)
_RECENT_ARTICLES = "SELECT count(*) FROM articles WHERE id >= (SELECT id FROM articles_search_recent_floor)"
_RECENT_COMMON_WORDS = "SELECT term, doc FROM articles_search_recent_vocab WHERE 2 * doc >= :articles"
_HOLDING = f"SELECT count(*) FROM {FULL_INDEX} WHERE {FULL_INDEX} MATCH :match"
_RECORD_WEIGHTLESS = (
    "INSERT INTO search_weightless_words (term, articles, recent_articles, counted_at) "
    "VALUES (:term, :articles, :recent_articles, CURRENT_TIMESTAMP)"
)
_STORY = "coalesce(article_clusters.cluster_id, -articles.id)"
_WITH_STORY = "LEFT JOIN article_clusters ON article_clusters.article_id = articles.id"


@dataclass(frozen=True)
class _Segment:
    """The ids one PostgreSQL GIN index holds: from `low`, below `high` (a band of older ids, migration
    0036), or every id from `low` up (None: the newest articles', migration 0034)."""

    low: int
    high: int | None


@dataclass(frozen=True)
class _Walk:
    """How far a PostgreSQL window walk goes: until `wanted` matches, or `checks` rows position-checked."""

    wanted: int
    checks: int
    scored: bool = False  # whether each match is scored (ts_rank_cd) as its window reads it


def _has_near(node: Node) -> bool:
    if isinstance(node, Near):
        return True
    if isinstance(node, And | Or):
        return any(_has_near(i) for i in node.items)
    return isinstance(node, Not) and _has_near(node.item)


@dataclass
class _Clauses:
    """SQL conditions and their bound parameters, built up clause by clause."""

    postgres: bool
    params: list[sa.BindParameter[Any]] = field(default_factory=list)
    clauses: list[str] = field(default_factory=list)
    match: str = ""  # the bound FTS5 expression's placeholder
    ranking: str | None = None  # SQLite: the FTS5 expression that ranks the candidates (None: nothing to weigh)
    candidates: list[int] | None = None  # the matches to rank, found beforehand (newest first)
    scores: list[float] = field(default_factory=list)  # PostgreSQL: each candidate's score, from its window
    unweighed: list[int] = field(default_factory=list)  # SQLite: older matches ranked after them, score 0
    floor: int | None = None  # SQLite: the lowest id whose positions are checked
    index: str = FULL_INDEX  # SQLite: the FTS5 table that matches and ranks
    scan: str = FULL_INDEX  # SQLite: the FTS5 table the candidates are collected from
    rows: bool = False  # SQLite: whether a condition reads the row of articles (not the index alone)

    def ranking_params(self) -> list[sa.BindParameter[Any]]:
        """What ranking binds (the candidates hold every other condition): on PostgreSQL the candidates
        and their scores; on SQLite the expression that ranks them, if any."""
        if self.postgres:
            # Array literals: binding 2,000 numbers one by one cost 6 ms in the driver, the text under 1 ms. A
            # score's repr is the exact value of the `real` it came from, which reads it back unchanged.
            return [
                sa.bindparam("ranked_ids", "{" + ",".join(str(int(i)) for i in self.candidates or ()) + "}"),
                sa.bindparam("ranked_scores", "{" + ",".join(repr(float(x)) for x in self.scores) + "}"),
            ]
        return [] if self.ranking is None else [sa.bindparam("ranking", self.ranking)]

    def append(self, clause: str, *, index_only: bool = False) -> None:
        self.clauses.append(clause)
        self.rows = self.rows or not index_only

    def bind(self, value: Any, type_: Any = None) -> str:
        name = f"w{len(self.params)}"
        self.params.append(sa.bindparam(name, value, type_=type_))
        return f":{name}"

    def filters(self, node: Node) -> str:
        if isinstance(node, And | Or):
            joiner = " AND " if isinstance(node, And) else " OR "
            return "(" + joiner.join(self.filters(i) for i in node.items) + ")"
        if isinstance(node, Not):
            return f"(NOT {self.filters(node.item)})"
        assert isinstance(node, Filter)
        return self.filter(node)

    def filter(self, node: Filter) -> str:
        value = node.value
        if node.name is FilterField.SITE:
            host = _POSTGRES_HOST if self.postgres else _SQLITE_HOST
            return f"({host} = {self.bind(value)} OR {host} LIKE {self.bind(f'%.{value}')})"
        if node.name is FilterField.LANG:
            language = "lower(articles.language)"
            return f"({language} = {self.bind(value)} OR {language} LIKE {self.bind(f'{value}-%')})"
        if node.name is FilterField.FEED:
            return f"articles.feed_id = {self.bind(value)}"
        assert isinstance(value, dt.date)
        day = dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
        if node.name is FilterField.SINCE:
            return f"articles.published_at >= {self.bind(day, UTCDateTime())}"
        return f"articles.published_at < {self.bind(day + dt.timedelta(days=1), UTCDateTime())}"


# PostgreSQL: the newest articles' GIN index (migration 0034), built again over the newest RECENT_IDS ids
# once it holds twice as many (refresh_recent_index).
_RECENT_GIN = "ix_articles_search_recent"
# PostgreSQL's cache, and the bytes of the newest articles' rows (their share of the table's pages, by the
# planner's row count) and of their GIN index: what searches read most (SearchStore.upkeep).
_CACHE_SIZES = (
    "SELECT pg_size_bytes(current_setting('shared_buffers')), "
    f"coalesce(pg_relation_size(to_regclass('{_RECENT_GIN}')), 0) + pg_relation_size('articles') "
    f"* least(1.0, ({_RECENT_ARTICLES}) / greatest(articles_class.reltuples, 1.0)) "
    "FROM pg_class AS articles_class WHERE articles_class.oid = CAST('articles' AS regclass)"
)
RECENT_LOCK = 0x4D427372  # "MBsr": the advisory lock one rebuild holds
RECENT_IDS = 100_000
# Where a PostgreSQL walk starts, the lowest id of the newest articles' GIN index (migration 0034), and the
# bounds of the older ids' bands, each with a GIN index of its own (migration 0036; NULL when there are none).
_WALK_BOUNDS = (
    "SELECT (SELECT max(id) + 1 FROM articles), (SELECT id FROM articles_search_recent_floor), "
    "(SELECT array_agg(low) || array_agg(high) FROM articles_search_bands)"
)
# The planner's estimate of the articles holding a query's words (EXPLAIN of this, with the tsquery).
_HOLDERS = "SELECT 1 FROM articles WHERE articles.search_vector @@"
# The words of a tsquery as the index spells them, the table's size, and ANALYZE's most common words
# with their frequencies (the last two frequencies are the lowest and the highest of them).
_WORD_STATISTICS = (
    "SELECT CAST({tsquery} AS text) AS words, articles_class.reltuples AS rows, "
    "CAST(CAST(stats.most_common_elems AS text) AS text[]) AS elems, stats.most_common_elem_freqs AS freqs "
    "FROM pg_class AS articles_class LEFT JOIN pg_stats AS stats ON stats.schemaname = current_schema() "
    "AND stats.tablename = 'articles' AND stats.attname = 'search_vector' "
    "WHERE articles_class.oid = CAST('articles' AS regclass)"
)
_LEXEME = re.compile(r"'((?:[^']|'')*)'")


def _postings(stats: Any) -> tuple[float, bool]:
    """How many posting-list entries a GIN scan for the query's words reads (each word's estimated
    articles; a word ANALYZE did not list counts half its lowest frequency, as the planner does), and
    whether the query is one word that ANALYZE listed: the planner's estimate of its articles is then a
    count, not a guess."""
    if not stats.elems or not stats.freqs:
        return 0.0, False
    frequency: dict[str, float] = {str(w): float(f) for w, f in zip(stats.elems, stats.freqs, strict=False)}
    rare = float(stats.freqs[len(stats.elems)]) / 2 if len(stats.freqs) > len(stats.elems) else 0.0
    words = [w.replace("''", "'") for w in _LEXEME.findall(stats.words or "")]
    postings = sum(frequency.get(w, rare) for w in words) * max(float(stats.rows or 0), 0.0)
    return postings, len(words) == 1 and words[0] in frequency


def rank_key(score: float) -> Decimal:
    """A PostgreSQL score's rank, as ranking's `round(CAST(score AS numeric), SCORE_DIGITS)` computes it:
    the score is a `real`, which becomes numeric through its six significant digits (float4_numeric),
    rounded half away from zero. `score` is the `real` as the driver read it, whose nearest float4 is it."""
    exact = struct.unpack("f", struct.pack("f", score))[0]
    return Decimal(format(exact, ".6g")).quantize(Decimal(1).scaleb(-SCORE_DIGITS), rounding=ROUND_HALF_UP)


def ranked_page(scored: Sequence[tuple[int, float]], limit: int, offset: int) -> list[tuple[int, float]]:
    """The page (`limit` after `offset`) that ranking gives of scored candidates (id, score): by rank_key,
    then newest, as SearchStore._ranked orders them. Ranking in the database bound 2,000 ids and scores as
    array literals, building which took 1.2 ms a search (under cProfile), for 20 of them to come back.

    By score, highest first, the rank never rises: only the first offset + limit candidates, and those
    whose rank ties the last of them, can be on the page, so only theirs are computed."""
    wanted = offset + limit
    if wanted <= 0:
        return []
    ranks: list[tuple[Decimal, int, float]] = []
    for candidate, score in sorted(scored, key=lambda pair: (pair[1], pair[0]), reverse=True):
        rank = rank_key(score)
        if len(ranks) >= wanted and rank < ranks[wanted - 1][0]:
            break
        ranks.append((rank, candidate, score))
    ranks.sort(reverse=True)
    return [(candidate, score) for _, candidate, score in ranks[offset:wanted]]


def band_index(low: int) -> str:
    """The name of the GIN index of the band of ids from `low` (migration 0036)."""
    return f"{SEARCH_BAND_INDEX_PREFIX}{int(low)}"


def band_definition(low: int, high: int) -> str:
    """The GIN index of the band of ids from `low` below `high`, as CREATE INDEX [CONCURRENTLY] takes it."""
    return f"{band_index(low)} ON articles USING gin (search_vector) WHERE id >= {int(low)} AND id < {int(high)}"


class RecentIndexNotRebuilt(Exception):
    """The newest articles' GIN index could not be rebuilt (the login does not own the table): it still serves."""


class SearchStore:
    """Searches the articles index; `org_id` None is every organisation (admins only: the service decides)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def search(
        self,
        query: Query,
        *,
        org_id: int | None,
        limit: int,
        offset: int = 0,
        feed_id: int | None = None,
        collapse: bool = False,
    ) -> list[SearchHit]:
        """The best `limit` matches after skipping `offset`, best first, with their highlighted snippets.

        With `collapse`, one hit per story (the best-ranked copy), counted and paged in SQL.
        """
        ranked = self._collapsed if collapse else self._ranked
        async with self.db.read() as conn:
            if query.text is not None and not self.db.is_postgres:
                rows = await self._sqlite_search(conn, query, org_id, feed_id, ranked, limit, offset)
            else:
                if query.text is None:
                    where = self._text_where(query, org_id, feed_id, FULL_INDEX)
                else:
                    # The candidates hold every condition, and each window scored its own: ranking sorts them.
                    where = _Clauses(True)
                    scored = await self._postgres_candidates(conn, query, org_id, feed_id, scored=True)
                    if not collapse:  # the page, ranked here: only its rows go to the database
                        scored, offset = ranked_page(scored, limit, offset), 0
                    where.candidates, where.scores = [i for i, _ in scored], [score for _, score in scored]
                rows = list((await conn.execute(ranked(query, where, limit=limit, offset=offset))).all())
            ids = [int(r.id) for r in rows]
            snippets = await self._snippets(conn, query, ids)
            stories = await self._stories(conn, ids)
        return [
            SearchHit(
                **{name: r._mapping[name] for name in LISTING_FIELDS},
                snippet=snippets.get(r.id, ""),
                score=round(float(r.score or 0.0), 6),
                cluster_id=stories.get(r.id, (None, 1))[0],
                cluster_size=stories.get(r.id, (None, 1))[1],
            )
            for r in rows
        ]

    async def export_page(
        self, query: Query, *, org_id: int | None, before_id: int | None, limit: int
    ) -> list[dict[str, Any]]:
        """One page of matches for an export, newest id first, after `before_id` (a keyset: no offset).

        On PostgreSQL the matches come from the same id windows as a search's (every position checked),
        not from the planner, which would read the `tsvector` of every row down to the page's last match.
        """
        if query.text is not None and self.db.is_postgres:
            return await self._postgres_export_page(query, org_id=org_id, before_id=before_id, limit=limit)
        where = self._where(query, org_id)
        if before_id is not None:
            # On SQLite the bound goes to FTS5 (the same id), which then starts its scan there.
            fts5 = query.text is not None and not self.db.is_postgres
            where.append(f"{'articles_search.rowid' if fts5 else 'articles.id'} < {where.bind(before_id)}")
        sql = (
            f"SELECT {_EXPORT_COLUMNS} FROM {self._source(query, where)} "
            f"WHERE {' AND '.join(where.clauses) or '1 = 1'} "
            f"ORDER BY {self._newest_first(query)} LIMIT {int(limit)}"
        )
        statement = sa.text(sql).bindparams(*where.params).columns(**_COLUMNS)
        async with self.db.read() as conn:
            return [dict(r._mapping) for r in await conn.execute(statement)]

    async def _postgres_export_page(
        self, query: Query, *, org_id: int | None, before_id: int | None, limit: int
    ) -> list[dict[str, Any]]:
        async with self.db.read() as conn:
            found = await self._postgres_candidates(
                conn, query, org_id, None, below=before_id, wanted=int(limit), exact=True
            )
            ids = [i for i, _ in found]
            if not ids:
                return []
            sql = (
                f"SELECT {_EXPORT_COLUMNS} FROM articles WHERE articles.id IN ({', '.join(str(i) for i in ids)}) "
                "ORDER BY articles.id DESC"
            )
            return [dict(r._mapping) for r in await conn.execute(sa.text(sql).columns(**_COLUMNS))]

    async def _sqlite_search(
        self, conn: Any, query: Query, org_id: int | None, feed_id: int | None, ranked: Any, limit: int, offset: int
    ) -> list[Any]:
        """SQLite: a page of ranked hits for a text query.

        A phrase or NEAR query is first searched in the newest articles' index (migration 0031) alone.
        When the page is full there, it is the page that the index of every article gives: either the
        newest POSITION_CHECKS articles holding the words all lie among the newest articles (the same
        candidates), or fewer do, and then the candidates there are all ranked before any older one
        (_ranking_plan). Only a page left short is searched again in the index of every article,
        whose floor costs a scan of the newest POSITION_CHECKS holders of the words in the whole archive,
        unless it was found among the newest articles: then it is the archive's too.
        """
        assert query.text is not None
        if org_id is not None and await self._sole_organisation(conn, org_id):
            # Every article is the organisation's (in this read's snapshot): FTS5 then finds the
            # candidates alone, without reading each one's row of articles for its org_id.
            org_id = None
        floor = None
        if self._recent_first(query):
            newest = self._text_where(query, org_id, feed_id, RECENT_INDEX)
            newest.floor = floor = await self._sqlite_floor(conn, query, RECENT_INDEX)
            rows = await self._sqlite_ranked(conn, query, newest, ranked, limit, offset)
            if len(rows) == limit:
                return rows
        where = self._text_where(query, org_id, feed_id, FULL_INDEX)
        if is_positional(query.text):
            where.floor = floor if floor is not None else await self._sqlite_floor(conn, query, FULL_INDEX)
        rows = await self._sqlite_ranked(conn, query, where, ranked, limit, offset)
        if len(rows) < limit and where.floor is not None and (org_id is not None or feed_id is not None):
            rows = await self._below_archive_floor(conn, query, where, org_id, feed_id, ranked, limit, offset, rows)
        return rows

    @staticmethod
    def _recent_first(query: Query) -> bool:
        """SQLite: whether a search is tried in the newest articles' index first (a phrase or NEAR query)."""
        assert query.text is not None
        return is_positional(query.text)

    def _text_where(self, query: Query, org_id: int | None, feed_id: int | None, index: str) -> _Clauses:
        """The conditions of a search whose candidates FTS5 collects from `index`."""
        where = self._where(query, org_id, index=index)
        if feed_id is not None:
            where.append(f"articles.feed_id = {where.bind(feed_id)}")
        return where

    async def _sqlite_ranked(
        self, conn: Any, query: Query, where: _Clauses, ranked: Any, limit: int, offset: int
    ) -> list[Any]:
        """SQLite: the newest RANK_CANDIDATES matches in `where.scan` (from the floor up, for a phrase or
        NEAR), then the page of them ranked as _ranking_plan says."""
        index = where.index = where.scan
        floor = [] if where.floor is None else [f"{index}.rowid >= {int(where.floor)}"]
        # A row of articles is read for each match only when a condition needs it (the organisation, a filter).
        source = f"articles.id FROM {self._source(query, where)}" if where.rows else f"{index}.rowid FROM {index}"
        sql = (
            f"SELECT {source} WHERE {' AND '.join(where.clauses + floor)} "
            f"ORDER BY {self._newest_first(query, index)} LIMIT {RANK_CANDIDATES}"
        )
        where.candidates = [int(i) for i in (await conn.execute(sa.text(sql).bindparams(*where.params))).scalars()]
        if not where.candidates:
            return []
        floor, weightless, common = (await conn.execute(sa.text(_RANKING_STATE))).one()
        unweighable = frozenset((weightless or "").split())
        where.ranking = self._ranking_expression(query, unweighable)
        if where.ranking is None:
            # Nothing to weigh: the candidates' page is read from articles alone (FTS5 would look each one up).
            where.index = "articles"
        else:
            assert query.text is not None
            # What bm25() counts in the index of every article is costly: a phrase's holders (their positions
            # checked), or a common word's.
            costly = is_positional(query.text) or not ranked_words(query.text, unweighable).isdisjoint(
                (common or "").split()
            )
            where.index, where.candidates, where.unweighed = self._ranking_plan(costly, floor, where.candidates)
        return list((await conn.execute(ranked(query, where, limit=limit, offset=offset))).all())

    @staticmethod
    def _ranking_expression(query: Query, weightless: frozenset[str]) -> str | None:
        """SQLite: what bm25() weighs for the candidates (to_fts5_ranking): the words held by at least half
        of the articles are left out, as counted by the last count_weightless_words."""
        assert query.text is not None
        return to_fts5_ranking(query.text, weightless)

    def _ranking_plan(self, costly: bool, floor: int | None, candidates: list[int]) -> tuple[str, list[int], list[int]]:
        """SQLite: the index that ranks the candidates, the candidates it weighs, and those that follow them
        unweighed (score 0, newest first). `floor` is the lowest id of the newest articles' index
        (migration 0031); the candidates are newest first; `costly`: the query weighs a phrase, a NEAR
        group or a common word (migration 0035).

        FTS5's bm25() counts the articles holding each phrase of the query over its whole index before
        it scores a row: for a common word or phrase that is most of a search's time (70 ms for
        `"ist der"` at 1,000,000 articles). So the candidates are ranked in the newest articles' index
        when they all lie there: the same hits but for those counts, which are then taken over the
        newest articles, a tenth of the work. Otherwise they are ranked in the index of every article,
        where a rare word's count is cheap; unless the count is costly there: a phrase's or NEAR's checks
        the positions in every article of the archive holding its words (30-40 ms for `"ist Eine all"`,
        however few its matches), a common word's reads a long list (7-14 ms for `haben`). Then the
        candidates among the newest articles are ranked there, and the older ones follow them, newest
        first.
        """
        if floor is None or candidates[-1] >= floor:
            return (FULL_INDEX if floor is None else RECENT_INDEX), candidates, []
        if costly and candidates[0] >= floor:
            newer = [i for i in candidates if i >= floor]
            return RECENT_INDEX, newer, candidates[len(newer) :]
        return FULL_INDEX, candidates, []

    async def upkeep(self) -> dict[str, Any]:
        """What the nightly cleanup does for search (also `mediabeat db search-upkeep`), as a run result:
        SQLite counts the words ranking leaves out (`search_weightless_words`: how many) and lists the
        common ones (`search_common_words`: how many); PostgreSQL moves
        the newest articles' GIN index up when due (`search_recent_index_floor`: its new floor, None when
        it was left as it was), or says why it could not (`search_recent_index`: it still serves), and
        sizes PostgreSQL's cache (`search_shared_buffers_bytes`) against what searches read most: the
        newest articles' rows and their GIN index (`search_newest_bytes`)."""
        if not self.db.is_postgres:
            return {
                "search_weightless_words": await self.count_weightless_words(),
                "search_common_words": await self.count_common_words(),
            }
        try:
            done: dict[str, Any] = {"search_recent_index_floor": await self.refresh_recent_index()}
        except RecentIndexNotRebuilt as exc:
            done = {"search_recent_index": str(exc)}
        async with self.db.read() as conn:
            shared, newest = (await conn.execute(sa.text(_CACHE_SIZES))).one()
        return done | {"search_shared_buffers_bytes": int(shared), "search_newest_bytes": int(newest or 0)}

    async def count_weightless_words(self) -> int:
        """SQLite: record the words that bm25() weighs at nothing, in both FTS5 indexes (those held by at
        least half of the articles), so that ranking leaves them out (to_fts5_ranking); how many.

        The newest articles' index lists its words with their counts (`articles_search_recent_vocab`,
        a scan of that index: 1.6 s at 100,000 articles); each one held by half of them is then
        counted in the index of every article. The nightly cleanup runs it. PostgreSQL ranks with
        ts_rank_cd, which weighs no word by its frequency: nothing to count there (0).
        """
        if self.db.is_postgres:
            return 0
        async with self.db.read() as conn:
            recent = (await conn.execute(sa.text(_RECENT_ARTICLES))).scalar_one()
            archive = (await conn.execute(sa.text("SELECT count(*) FROM articles"))).scalar_one()
            common = (await conn.execute(sa.text(_RECENT_COMMON_WORDS), {"articles": recent})).all()
            words = []
            for term, recent_holders in common:
                match = '"' + str(term).replace('"', '""') + '"'
                holders = (await conn.execute(sa.text(_HOLDING), {"match": match})).scalar_one()
                if 2 * holders >= archive:
                    words.append({"term": term, "articles": holders, "recent_articles": recent_holders})
        async with self.db.write() as conn:
            await conn.execute(sa.text("DELETE FROM search_weightless_words"))
            if words:
                await conn.execute(sa.text(_RECORD_WEIGHTLESS), words)
        return len(words)

    async def count_common_words(self) -> int:
        """SQLite: list the words held by at least 1/COMMON_SHARE of the newest articles, whose count over
        the whole archive is costly enough that a query weighing one is ranked among the newest articles
        first (_ranking_plan); how many. One scan of the newest articles' index (FTS5's own list of its
        words). Nothing to list on PostgreSQL (0)."""
        if self.db.is_postgres:
            return 0
        async with self.db.write() as conn:
            recent = (await conn.execute(sa.text(_RECENT_ARTICLES))).scalar_one()
            await conn.execute(sa.text("DELETE FROM search_common_words"))
            if recent:
                await conn.execute(sa.text(_RECORD_COMMON), {"share": COMMON_SHARE, "articles": recent})
            return int((await conn.execute(sa.text("SELECT count(*) FROM search_common_words"))).scalar_one())

    async def refresh_recent_index(self) -> int | None:
        """PostgreSQL: build the newest articles' GIN index (migration 0034) again over the newest
        RECENT_IDS ids once it holds twice as many; its new floor, or None when it was left as it was.

        The new index is built beside the old one (CREATE INDEX CONCURRENTLY: writers go on), after the
        index of the band of ids it leaves (migration 0036); then it takes its name and its floor, and the
        band is listed, in one transaction, and the old one is dropped. Building an
        index takes the table's owner: a login with the app role only (docs/deploy.md) gets
        RecentIndexNotRebuilt, and the old index goes on serving, over more ids. SQLite's slice
        moves with every insert (migration 0031): nothing to do there.
        """
        if not self.db.is_postgres:
            return None
        async with self.db.read() as conn:  # autocommit on PostgreSQL: CONCURRENTLY runs outside a transaction
            # One rebuild at a time (the nightly cleanup and the command may overlap): a session lock, held
            # on this connection until the old index is gone.
            if not (await conn.execute(sa.select(sa.func.pg_try_advisory_lock(RECENT_LOCK)))).scalar():
                return None
            try:
                return await self._rebuild_recent_index(conn)
            finally:
                await conn.execute(sa.select(sa.func.pg_advisory_unlock(RECENT_LOCK)))

    async def _rebuild_recent_index(self, conn: Any) -> int | None:
        top, floor, _ = (await conn.execute(sa.text(_WALK_BOUNDS))).one()
        if top is None or floor is None or int(top) - int(floor) <= 2 * RECENT_IDS:
            return None
        floor, new_floor = int(floor), int(top) - RECENT_IDS
        try:
            # The ids the index leaves become a band with an index of its own (migration 0036), built
            # first: from the swap on, a window below the new floor is planned on it.
            await conn.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {band_index(floor)}"))  # a failed build's
            await conn.execute(sa.text(f"CREATE INDEX CONCURRENTLY {band_definition(floor, new_floor)}"))
            await conn.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {_RECENT_GIN}_next"))  # a failed build's
            await conn.execute(
                sa.text(
                    f"CREATE INDEX CONCURRENTLY {_RECENT_GIN}_next ON articles USING gin (search_vector) "
                    f"WHERE id >= {new_floor}"
                )
            )
        except sa.exc.ProgrammingError as exc:
            if getattr(exc.orig, "sqlstate", None) != "42501":  # insufficient_privilege: not the owner
                raise
            raise RecentIndexNotRebuilt(
                "the newest articles' search index was not rebuilt: this database login does not own the "
                "articles table; run `mediabeat db search-upkeep` as the schema owner (docs/deploy.md)"
            ) from None
        async with self.db.write() as swap:
            await swap.execute(sa.text(f"ALTER INDEX {_RECENT_GIN} RENAME TO {_RECENT_GIN}_old"))
            await swap.execute(sa.text(f"ALTER INDEX {_RECENT_GIN}_next RENAME TO {_RECENT_GIN}"))
            await swap.execute(sa.text("UPDATE articles_search_recent_floor SET id = :floor"), {"floor": new_floor})
            await swap.execute(
                sa.text("INSERT INTO articles_search_bands (low, high) VALUES (:low, :high)"),
                {"low": floor, "high": new_floor},
            )
        await conn.execute(sa.text(f"DROP INDEX CONCURRENTLY IF EXISTS {_RECENT_GIN}_old"))
        return new_floor

    def _where(self, query: Query, org_id: int | None, *, text: bool = True, index: str = FULL_INDEX) -> _Clauses:
        """The organisation's and the filters' conditions, and with `text` (SQLite) the FTS5 match. On
        PostgreSQL the words are matched by the walk's windows (_window), which ask for `text=False`."""
        clauses = _Clauses(self.db.is_postgres, index=index, scan=index)
        if org_id is not None:
            clauses.append(f"articles.org_id = {clauses.bind(org_id)}")
        if query.filters is not None:
            clauses.append(clauses.filters(query.filters))
        if query.text is not None and text:
            assert not self.db.is_postgres, "PostgreSQL matches the words in the walk's windows"
            clauses.match = clauses.bind(to_fts5(query.text))
            clauses.append(f"{index} MATCH {clauses.match}", index_only=True)
        return clauses

    @staticmethod
    def _source(query: Query, where: _Clauses) -> str:
        """What the matching runs over: articles, or for words (SQLite) the FTS5 table joined to articles,
        FTS5 first: it delivers its matches newest first, and each is looked up in articles after."""
        if query.text is None:
            return "articles"
        return f"{where.index} CROSS JOIN articles ON articles.id = {where.index}.rowid"

    def _newest_first(self, query: Query, index: str = FULL_INDEX) -> str:
        """Newest first. On SQLite ordered by the FTS5 rowid (the same id), which FTS5 delivers in that
        order: the LIMIT then stops the scan early, where ordering by articles.id sorts every match."""
        return f"{index}.rowid DESC" if query.text is not None and not self.db.is_postgres else "articles.id DESC"

    def _ranked(self, query: Query, where: _Clauses, *, limit: int, offset: int) -> Any:
        """Ranked hits. Only the newest RANK_CANDIDATES matches are ranked: scoring every match of a
        common word costs time in proportion to the archive, and a monitoring desk wants recent news."""
        condition = " AND ".join(where.clauses) or "1 = 1"
        page = f"LIMIT {int(limit)} OFFSET {int(offset)}"
        if query.text is None:
            sql = (
                f"SELECT {_HIT_COLUMNS}, 0.0 AS score FROM articles WHERE {condition} "
                f"ORDER BY articles.published_at DESC, articles.id DESC {page}"
            )
            return sa.text(sql).bindparams(*where.params).columns(**_COLUMNS)
        # The candidates come scored (FTS5 scores them; on PostgreSQL their windows did), and only the
        # page's rows are read from articles.
        top = (
            f"SELECT scored.id, scored.score FROM ({self._scored(where)}) AS scored "
            f"ORDER BY round(CAST(scored.score AS numeric), {SCORE_DIGITS}) DESC, scored.id DESC {page}"
        )
        return self._page_rows(where, top)

    def _scored(self, where: _Clauses) -> str:
        """The candidates with their scores (`id`, `score`). PostgreSQL: as their windows scored them
        (_window), bound as two arrays. SQLite: as _ranking_plan split them, those that the ranking index
        weighs, then the unweighed ones with 0."""
        if self.db.is_postgres:
            # `real`, as ts_rank_cd gave them: rounded for the order exactly as they were computed.
            return (
                "SELECT candidate.id, candidate.score FROM unnest(CAST(:ranked_ids AS bigint[]), "
                "CAST(:ranked_scores AS real[])) AS candidate (id, score)"
            )
        index, candidates = where.index, where.candidates or [0]
        ids = ", ".join(str(int(i)) for i in candidates)
        if where.ranking is None:
            # Nothing to weigh (only words in half of the articles): every candidate scores 0, as bm25 would give.
            return f"SELECT {index}.rowid AS id, 0.0 AS score FROM {index} WHERE {index}.rowid IN ({ids})"
        # The candidates' lowest id bounds FTS5's scan: bm25 then scores those, not every match. The unary
        # + keeps the id list from FTS5, which would probe each id on its own (70 µs each).
        weighed = (
            f"SELECT {index}.rowid AS id, -bm25({index}, 4.0, 1.0) AS score FROM {index} "
            f"WHERE {index} MATCH :ranking AND {index}.rowid >= {min(candidates)} AND +{index}.rowid IN ({ids})"
        )
        if not where.unweighed:
            return weighed
        # The ids alone (no row of articles is read for them): json_each lists the literal's numbers.
        older = ",".join(str(int(i)) for i in where.unweighed)
        return f"{weighed} UNION ALL SELECT CAST(value AS INTEGER), 0.0 FROM json_each('[{older}]')"

    def _collapsed(self, query: Query, where: _Clauses, *, limit: int, offset: int) -> Any:
        """Ranked hits, one per story: each story's best-ranked copy (ROW_NUMBER over the story), paged after.

        Collapsing runs over the candidates that ranking sees (the newest RANK_CANDIDATES matches;
        without words, the newest by publication), so a page is the same whether or not copies
        of a story fall on other pages.
        """
        if query.text is not None:
            order = f"round(CAST({{t}}.score AS numeric), {SCORE_DIGITS}) DESC, {{t}}.id DESC"
            return self._collapsed_scored(where, order, limit=limit, offset=offset)
        condition = " AND ".join(where.clauses) or "1 = 1"
        order = "{t}.published_at DESC, {t}.id DESC"
        candidates = (
            f"SELECT {_HIT_COLUMNS}, 0.0 AS score, {_STORY} AS story FROM articles {_WITH_STORY} "
            f"WHERE {condition} ORDER BY {order.format(t='articles')} LIMIT {RANK_CANDIDATES}"
        )
        sql = (
            f"SELECT {_COLLAPSED_COLUMNS}, hits.score FROM (SELECT candidates.*, "
            f"ROW_NUMBER() OVER (PARTITION BY candidates.story ORDER BY {order.format(t='candidates')}) AS copy_rank "
            f"FROM ({candidates}) AS candidates) AS hits WHERE hits.copy_rank = 1 "
            f"ORDER BY {order.format(t='hits')} LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        return sa.text(sql).bindparams(*where.params).columns(**_COLUMNS)

    def _collapsed_scored(self, where: _Clauses, order: str, *, limit: int, offset: int) -> Any:
        """Collapsed hits of a text query: each scored candidate is given its story, and only the page's
        rows are read from articles."""
        candidates = (
            f"SELECT scored.id, scored.score, coalesce(article_clusters.cluster_id, -scored.id) AS story "
            f"FROM ({self._scored(where)}) AS scored "
            "LEFT JOIN article_clusters ON article_clusters.article_id = scored.id"
        )
        page = (
            f"SELECT hits.id, hits.score FROM (SELECT candidates.*, ROW_NUMBER() OVER (PARTITION BY candidates.story "
            f"ORDER BY {order.format(t='candidates')}) AS copy_rank FROM ({candidates}) AS candidates) AS hits "
            f"WHERE hits.copy_rank = 1 ORDER BY {order.format(t='hits')} LIMIT {int(limit)} OFFSET {int(offset)}"
        )
        return self._page_rows(where, page)

    @staticmethod
    def _page_rows(where: _Clauses, page: str) -> Any:
        """A page of ranked (id, score) with each hit's columns, read from articles for its rows only."""
        join = "JOIN" if where.postgres else "CROSS JOIN"  # SQLite's CROSS JOIN keeps the page as the outer loop
        sql = (
            f"SELECT {_HIT_COLUMNS}, top.score FROM ({page}) AS top {join} articles ON articles.id = top.id "
            f"ORDER BY round(CAST(top.score AS numeric), {SCORE_DIGITS}) DESC, top.id DESC"
        )
        return sa.text(sql).bindparams(*where.ranking_params()).columns(**_COLUMNS)

    async def _below_archive_floor(
        self,
        conn: Any,
        query: Query,
        where: _Clauses,
        org_id: int | None,
        feed_id: int | None,
        ranked: Any,
        limit: int,
        offset: int,
        rows: list[Any],
    ) -> list[Any]:
        """A page the archive-wide floor left short: the floor counted every organisation's articles, so an
        organisation (or feed) with a small share of the archive may hold its POSITION_CHECKS newest
        candidates below it. Search again from the floor counted in its own articles, when that is lower."""
        if feed_id is None and not await self._other_organisations(conn, org_id):
            return rows  # the organisation is the whole archive: its own floor is the same one
        scoped = await self._sqlite_scoped_floor(conn, query, org_id, feed_id)
        assert where.floor is not None
        if scoped is not None and scoped >= where.floor:
            return rows
        where.floor = scoped
        return await self._sqlite_ranked(conn, query, where, ranked, limit, offset)

    @staticmethod
    async def _sole_organisation(conn: Any, org_id: int) -> bool:
        """Whether every article of the archive is the organisation's (two probes of the org_id index)."""
        # One aggregate per SELECT: SQLite reads min() or max() off the index only when it is alone.
        sql = "SELECT (SELECT min(org_id) FROM articles) = :org AND (SELECT max(org_id) FROM articles) = :org"
        return bool((await conn.execute(sa.text(sql).bindparams(org=org_id))).scalar())

    @staticmethod
    async def _other_organisations(conn: Any, org_id: int | None) -> bool:
        """Whether the archive holds articles of another organisation than `org_id` (an index probe)."""
        sql = "SELECT EXISTS (SELECT 1 FROM articles WHERE org_id <> :org)"
        return bool((await conn.execute(sa.text(sql).bindparams(org=org_id))).scalar())

    async def _sqlite_scoped_floor(
        self, conn: Any, query: Query, org_id: int | None, feed_id: int | None
    ) -> int | None:
        """The id of the POSITION_CHECKS-th newest article of the organisation (and feed) that holds the
        words of a phrase or NEAR query, None when fewer do. It reads a row of `articles` per candidate,
        so it runs only when the archive-wide floor left a page short."""
        assert query.text is not None
        where = self._where(query, org_id, text=False)
        if feed_id is not None:
            where.append(f"articles.feed_id = {where.bind(feed_id)}")
        where.append(f"{FULL_INDEX} MATCH {where.bind(to_fts5(query.text, relaxed=True))}")
        sql = (
            f"SELECT {FULL_INDEX}.rowid FROM {FULL_INDEX} JOIN articles ON articles.id = {FULL_INDEX}.rowid "
            f"WHERE {' AND '.join(where.clauses)} ORDER BY {FULL_INDEX}.rowid DESC "
            f"LIMIT 1 OFFSET {POSITION_CHECKS - 1}"
        )
        floor = (await conn.execute(sa.text(sql).bindparams(*where.params))).scalar()
        return None if floor is None else int(floor)

    async def _sqlite_floor(self, conn: Any, query: Query, index: str) -> int | None:
        """The id of the POSITION_CHECKS-th newest article of `index` (the archive, or the newest articles)
        that holds the words of a phrase or NEAR query (None when fewer do): FTS5 then checks positions
        from there on, not through the whole archive. The index alone answers it (no row of `articles`
        is read), so the bound counts the articles of every organisation."""
        assert query.text is not None
        sql = (
            f"SELECT rowid FROM {index} WHERE {index} MATCH :relaxed "
            f"ORDER BY rowid DESC LIMIT 1 OFFSET {POSITION_CHECKS - 1}"
        )
        statement = sa.text(sql).bindparams(relaxed=to_fts5(query.text, relaxed=True))
        floor = (await conn.execute(statement)).scalar()
        return None if floor is None else int(floor)

    async def _postgres_candidates(
        self,
        conn: Any,
        query: Query,
        org_id: int | None,
        feed_id: int | None,
        *,
        below: int | None = None,
        wanted: int | None = None,
        exact: bool = False,
        scored: bool = False,
    ) -> list[tuple[int, float]]:
        """The newest `wanted` (RANK_CANDIDATES) matches below the id `below`, through the GIN index in id
        windows, each with its score (`scored`: ts_rank_cd, by which ranking orders them; otherwise 0).

        Each window is a bitmap scan of the GIN index of its segment of ids (see _walk_windows), so only
        the window's matching rows are read, never every match of a common word (which the planner, blind
        to the cost of reading each row's `tsvector`, would otherwise do or scan the table). A window
        that found few matches makes the next one wider. A phrase or NEAR query is found with its
        positions left out (the index alone answers that), and the positions are checked on those
        rows only, at most POSTGRES_POSITION_CHECKS of them (`exact`: every one, for an export).

        A window scores its matches as it reads them, while their rows are at hand: ranking is then a sort
        of the scores. Scoring them after the walk read each candidate's row a second time (2,000 rows by
        key: 15-20 ms at 1,000,000 articles).
        """
        assert query.text is not None
        # The walk's settings go with its bounds, in one statement; RESET puts each back as the session had it.
        top, floor, bands, *_ = (
            await conn.execute(sa.text(f"{_WALK_BOUNDS}, {self._set_config(_CANDIDATE_SETTINGS)}"))
        ).one()
        try:
            top = below if below is not None else top
            if top is None:
                return []
            walk = _Walk(wanted or RANK_CANDIDATES, sys.maxsize if exact else POSTGRES_POSITION_CHECKS, scored)
            floor = max(int(floor or 1), 1)
            bounds = sorted({int(b) for b in bands or ()} | {floor})
            return await self._walk_windows(conn, query, org_id, feed_id, int(top), walk, floor=floor, bounds=bounds)
        finally:
            await conn.execute(
                sa.text("; ".join(f"RESET {name}" for name in {**_CANDIDATE_SETTINGS, **_BY_KEY_SETTINGS}))
            )

    async def _walk_windows(
        self,
        conn: Any,
        query: Query,
        org_id: int | None,
        feed_id: int | None,
        high: int,
        walk: _Walk,
        *,
        floor: int,
        bounds: Sequence[int],
    ) -> list[tuple[int, float]]:
        """Windows newest first until `walk.wanted` matches or `walk.checks` position checks. A window's
        LIMIT cuts it short only when that ends the walk, so no match inside the walked ids is skipped.

        Every id lies in one GIN index's segment: the newest articles' from `floor` up (migration 0034),
        or a band of older ids (migration 0036); `bounds` are the segments' bounds, ascending, `floor`
        among them. A window never crosses one, so it is planned on its segment's index, which holds
        that segment's postings only (a tenth of the archive's, at 1,000,000 articles)."""
        assert query.text is not None
        positional = is_positional(query.text)
        found: list[tuple[int, float]] = []
        if high <= bounds[0]:
            return []  # no id below (an export's keyset at the first article)
        first = high - max(b for b in bounds if b < high)  # the ids of the first window's segment
        checked, (window, by_key, read) = 0, await self._first_window(conn, query, high, walk, first)
        # `reach`: see _reach; `needed`: the rows the walk still needs (None: not measured yet). At first, the
        # matches wanted as the statistics estimate them; not for a phrase or NEAR, whose every row taken in
        # is checked, and whose estimate (the words taken as independent) is often several times too low.
        top, reach = high, None
        needed = None if positional or not read else min(walk.wanted, read * high)
        while high > bounds[0] and len(found) < walk.wanted and checked < walk.checks:
            low, segment, keyed, rest = self._place(
                bounds, floor, (top, high), window, read, by_key, reach, needed, positional
            )
            limit = walk.checks - checked if positional else walk.wanted - len(found)
            statement = self._window(
                query, org_id, feed_id, (low, high), segment, keyed, limit, scored=walk.scored, rest=rest
            )
            hits, taken = await self._read_window(conn, statement, by_key)
            found.extend(hits)
            by_key = False
            if positional:
                checked += taken
            low = rest[-1].low if rest else low
            density = max(len(hits), 1) / (high - low)
            wanted = (walk.wanted - len(found)) / density * 1.25
            # The rows a window reads (matches, or for a phrase or NEAR the articles holding its words) per id.
            read = max(taken, 1) / (high - low)
            window = self._next_width(window, wanted, read, walk.checks - checked if positional else None)
            high = low
            # The rows the walk still needs for the matches it wants (for a phrase or NEAR, no more than its
            # position checks left allow). A bitmap scan reads every row in its segment, whatever its LIMIT.
            needed = min(wanted * read, walk.checks - checked) if positional else wanted * read
            reach = self._reach(bounds, high, read, needed, positional)
        return found[: walk.wanted]

    async def _read_window(self, conn: Any, statement: Any, by_key: bool) -> tuple[list[tuple[int, float]], int]:
        """A window's matches (id, score), newest first, and how many rows it took (for a phrase or NEAR,
        the articles holding its words whose positions it checked), walked down the primary key (`by_key`)
        under the settings for that. The statement (_window) returns the matches and then one row that
        counts what it took: the driver converting every row checked took 2.8 ms a search for a NEAR
        query's 5,000, most of them not matches (under cProfile)."""
        if by_key:
            await self._settings(conn, _BY_KEY_SETTINGS)
        rows = (await conn.execute(statement)).all()
        if by_key:
            await self._settings(conn, _AFTER_BY_KEY)
        # By position: reading a row's fields by name took 3.8 ms a search for 5,000 rows (under cProfile).
        hits = sorted(((int(i), float(score or 0.0)) for i, score in rows if i is not None), reverse=True)
        return hits, int(next(score for i, score in rows if i is None))

    @classmethod
    def _next_width(cls, window: int, wanted: float, read: float, checks: int | None) -> int:
        """The next window's width after one of `window` ids: the `wanted` ids its matches' density says
        the matches still wanted need, and at least twice as wide; at most MAX_GROWTH times as wide. For a
        phrase or NEAR (`checks`: its position checks left) no wider than those ids, or than the checks left
        need at `read` holders of its words per id, and not made wider for its own sake: each holder in a
        window is checked."""
        if checks is not None:
            return cls._checked_window(int(min(wanted, window * MAX_GROWTH)), checks, read)
        return int(min(max(wanted, window * 2), window * MAX_GROWTH))

    @staticmethod
    def _place(
        bounds: Sequence[int],
        floor: int,
        ids: tuple[int, int],
        window: int,
        read: float,
        by_key: bool,
        reach: int | None,
        needed: float | None,
        positional: bool,
    ) -> tuple[int, _Segment, bool, list[_Segment]]:
        """Where a walk's next statement at `high` reads (`ids`: the walk's top and `high`): its window's
        lowest id, the window's segment, whether the primary key's bitmap bounds the window (`keyed`),
        and the segments below it read whole in the same statement (down to `reach`, see _reach), newest
        first."""
        top, high = ids
        low = max(high - window, max(b for b in bounds if b < high))
        segment = _Segment(
            max(b for b in bounds if b <= low), None if low >= floor else min(b for b in bounds if b >= high)
        )
        # The rows the segment's index finds outside the window, each read from its heap page to be
        # filtered out, against the primary key's bitmap of the window's ids (see KEY_COST).
        outside = read * ((segment.high or top) - segment.low - (high - low))
        keyed = reach is None and (by_key or outside * VISIT_COST >= (high - low) * KEY_COST)
        below = read * (high - segment.low)  # the rows of the segment from `high` down
        short = not positional and needed is not None and read * (high - low) < needed <= below <= 2 * needed
        if reach is not None or (needed is not None and not keyed and (below <= needed or short)):
            # Its index's rows below the window are read from the heap anyway: the window takes them in
            # when the walk needs them all, or, for words, when it would go on into them (the window holds
            # fewer rows than it needs) and they are no more than twice what it needs. Each is scored (or
            # checked) past the LIMIT, but the next window would read every one of them again.
            low = segment.low
        rest = [_Segment(b, bounds[i + 1]) for i, b in enumerate(bounds[:-1]) if reach is not None and reach <= b]
        return low, segment, keyed, [part for part in rest if part.high is not None and part.high <= low][::-1]

    @staticmethod
    def _reach(bounds: Sequence[int], high: int, read: float, needed: float, positional: bool) -> int | None:
        """How far down the next statement of a walk at `high` reads whole segments (None: one window),
        at `read` rows per id, when the walk still needs `needed` rows.

        All of the rest, in one statement, when its rows beyond those needed cost less to read than one
        statement more (a phrase or NEAR query's only when it needs them all: each row is checked, past
        the LIMIT). Otherwise as many segments as the rows needed cover, when that is more than one: none
        of their rows is read for nothing, each segment more saves a statement, and the walk takes one
        more when they fall short. Reading every band of `(deine OR haben) they -wieviel` for the 1,655
        matches it still wanted read 3,232 rows and nine posting lists in 35 ms; five bands hold them.
        """
        below = read * (high - bounds[0])
        lows = sorted((b for b in bounds if b < high), reverse=True)
        if (below - min(below, needed)) * VISIT_COST < STATEMENT_COST and (not positional or below <= needed):
            return bounds[0]
        reach, covered, upper, taken = None, 0.0, high, 0
        for low in lows:
            covered += read * (upper - low)
            if covered > needed:
                break
            reach, upper, taken = low, low, taken + 1
        return reach if taken > 1 else None

    @staticmethod
    def _checked_window(window: int, checks: int, read: float) -> int:
        """A phrase or NEAR walk's next window: no wider than its `checks` left need, at `read` holders of
        its words per id (a quarter more for the noise). A bitmap scan reads every holder in its window,
        whatever its LIMIT, and a sparse phrase of common words would otherwise grow it eightfold."""
        return min(window, int(checks / read * 1.25) + 1)

    async def _first_window(
        self, conn: Any, query: Query, high: int, walk: _Walk, segment: int | None = None
    ) -> tuple[int, bool, float]:
        """The first window's width in ids, whether it is walked down the primary key (True) or read
        through the GIN index, chosen from the planner's statistics of the words, and the estimate of
        the rows it reads per id (the articles holding the words). `segment`: how many of the ids below
        `high` the GIN index of its segment holds (None: all of them).

        A GIN bitmap scan reads every entry of the posting lists of the query's words in its index,
        whatever the window: for words in most articles that is most of a search's time (55 ms for a word
        in 660,000 of 1,000,000 articles, in the GIN index of every article; a tenth of that in the newest
        ids' index). Walking the newest rows by key reads each one's `tsvector` instead and stops
        at the LIMIT: cheaper when the words are so common that few rows are walked. Otherwise the first
        GIN window is as wide as the estimate says the matches wanted need (each further window reads
        the posting lists again). A wrong estimate costs time, never a match: the walk goes on in
        windows either way.
        """
        assert query.text is not None
        smallest = max(FIRST_WINDOW * walk.wanted // RANK_CANDIDATES, 1)
        if high <= smallest:
            return smallest, False, 0.0  # one window holds the whole archive: nothing to choose
        relaxed = to_tsquery(query.text, relaxed=True, prefix="etq")
        params: list[sa.BindParameter[Any]] = [sa.bindparam(k, v) for k, v in relaxed.params.items()]
        plan = (
            await conn.execute(sa.text(f"EXPLAIN (FORMAT JSON) {_HOLDERS} {relaxed.sql}").bindparams(*params))
        ).scalar()
        holders = float((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"]["Plan Rows"])
        stats = (await conn.execute(sa.text(_WORD_STATISTICS.format(tsquery=relaxed.sql)).bindparams(*params))).one()
        density = min(max(holders, 1.0) / max(high, 1), 1.0)
        # The matches wanted, or for a phrase or NEAR the rows holding its words that are checked.
        positional = is_positional(query.text)
        needed = min(walk.checks, holders) if positional else min(walk.wanted, holders)
        postings, counted = _postings(stats)
        # The statistics count the whole archive; the segment's index holds its share (ids spread evenly).
        share = min(segment or high, high) / high
        # The words of a phrase or NEAR of words in more articles than it checks go together more often
        # than the planner's estimate, which takes them as independent: the newest articles holding two
        # common words were 1.35-1.5 times that estimate (seven phrase and NEAR queries at 1,000,000
        # articles). The walk by key stops sooner by as much, and a GIN window is sized by it (below). Its
        # postings count twice: a GIN window reads each holder from its heap page and checks it, past the
        # LIMIT, which costs more than the constants say for a word's matches (at 1,000,000 articles,
        # `mit NEAR/5 Das`, in 45 % of the newest articles: by key 32-35 ms, GIN 40-48; `die NEAR/5 Wir`,
        # in 25 %: GIN 39-47, by key 54-58; counted twice, each takes the faster).
        scans, together = (2, TOGETHER) if positional and holders > walk.checks else (1, 1.0)
        if needed / min(density * together, 1.0) * ROW_COST < max(postings, holders) * share * POSTING_COST * scans:
            # The walk stops at its LIMIT; the width only bounds it when the estimate was too high.
            return max(smallest, min(int(needed / density * 2) + 1, high)), True, density
        # Unless the estimate counts one listed word: at most MAX_GROWTH times the smallest. The estimate of
        # a word the statistics do not list, or of words that go together, can be several times too low,
        # and a window too wide reads rows for nothing (a bitmap scan reads every match in its window).
        widest = high if counted else smallest * MAX_GROWTH
        if positional and holders > walk.checks:
            # A phrase or NEAR of words in more articles than it checks: a window checks every holder in it,
            # past its LIMIT, so the first window is as wide as its checks need at TOGETHER times the
            # estimated holders, without the quarter more; the next, if any, is sized on what it found.
            # Sized on the estimate with the quarter more, `Und NEAR/5 ich` checked 8,435 holders (48 ms) for
            # its 5,000; a first window for half its checks made two GIN scans of its common words.
            return max(smallest, min(int(walk.checks / min(density * TOGETHER, 1.0)) + 1, widest)), False, density
        return max(smallest, min(int(needed / density * 1.25) + 1, widest)), False, density

    @staticmethod
    def _set_config(settings: dict[str, str]) -> str:
        """The set_config() calls that change these settings for the session (columns of a SELECT)."""
        return ", ".join(f"set_config('{k}', '{v}', false)" for k, v in settings.items())

    @classmethod
    async def _settings(cls, conn: Any, settings: dict[str, str]) -> None:
        await conn.execute(sa.text(f"SELECT {cls._set_config(settings)}"))

    def _window(
        self,
        query: Query,
        org_id: int | None,
        feed_id: int | None,
        ids: tuple[int, int],
        segment: _Segment,
        keyed: bool,
        limit: int,
        *,
        scored: bool = False,
        rest: Sequence[_Segment] = (),
    ) -> Any:
        """Of the window of `ids` (from, below), the newest `limit` rows that match, or for a phrase or NEAR
        that hold the words (their positions checked): the matches (`id`, `score`), then one row with no
        id whose `score` counts the rows taken. With `scored`, each match's score (ts_rank_cd), computed
        while its row is at hand; otherwise NULL.

        The segment's bounds are constants that imply its index's condition, so the window is planned on
        that index. The window's own bounds go to the primary key's bitmap (`keyed`), or are a filter on
        the rows the index finds (`+ 0` keeps the planner from the key). The segments of `rest`, below
        the window, are read whole in the same statement, each on its own index.
        """
        assert query.text is not None
        where = self._where(query, org_id, text=False)
        if feed_id is not None:
            where.append(f"articles.feed_id = {where.bind(feed_id)}")
        index = to_tsquery(query.text, relaxed=True, prefix="rtq")
        where.params.extend(sa.bindparam(k, v) for k, v in index.params.items())
        where.append(f"articles.search_vector @@ {index.sql}")
        hit, score, checked = self._hit_and_score(query, where, scored)

        def rows(low: int, high: int, segment: _Segment, keyed: bool) -> str:
            # Each row's positions are checked, and a match scored, as the scan reads it (its `tsvector` is
            # in its row since migration 0032): only the results go through the window's sort.
            return (
                f"SELECT articles.id, {hit} AS hit, {score} AS score FROM articles{checked} "
                f"WHERE {' AND '.join(where.clauses + self._window_bounds(low, high, segment, keyed))}"
            )

        window = rows(*ids, segment, keyed)
        if rest:
            parts = [window, *(rows(part.low, part.high or ids[0], part, False) for part in rest)]
            window = "SELECT * FROM (" + " UNION ALL ".join(f"({part})" for part in parts) + ") AS articles"
        sql = (
            f"WITH candidate_rows AS MATERIALIZED ({window} ORDER BY articles.id DESC LIMIT {int(limit)}) "
            "SELECT candidate_rows.id, candidate_rows.score FROM candidate_rows WHERE candidate_rows.hit "
            "UNION ALL SELECT NULL, CAST(count(*) AS real) FROM candidate_rows"
        )
        return sa.text(sql).bindparams(*where.params)

    @staticmethod
    def _window_bounds(low: int, high: int, segment: _Segment, keyed: bool) -> list[str]:
        """The conditions on a window's ids (from `low`, below `high`) in `segment`: the primary key's
        (`keyed`), or the segment's index condition and a filter on the rows that index finds."""
        if keyed:
            # The window's bounds alone, as bigints: they imply the segment's index condition (written with
            # integers), without being the same clauses. A bitmap AND leaves out an index any of whose
            # conditions is one the first index's condition already applies, and the primary key then
            # went unused: each window read every row its segment's index found (`und & ich`: 21,682
            # rows in 45 ms, for 5,822 in the window; 18 ms with the key's bitmap).
            return [f"articles.id >= CAST({int(low)} AS bigint)", f"articles.id < CAST({int(high)} AS bigint)"]
        bounds = [f"articles.id >= {int(segment.low)}"]
        if segment.high is not None:
            bounds.append(f"articles.id < {int(segment.high)}")
        if (low, high) != (segment.low, segment.high):
            bounds.append(f"articles.id + 0 >= {int(low)} AND articles.id + 0 < {int(high)}")
        return bounds

    @staticmethod
    def _hit_and_score(query: Query, where: _Clauses, scored: bool) -> tuple[str, str, str]:
        """A window's `hit` (a phrase or NEAR query's positions checked, else true), `score` (ts_rank_cd of a
        match with `scored`, else NULL) and what its FROM joins to compute them (`checked`), their
        parameters bound in `where`."""
        assert query.text is not None
        hit, score, checked = "true", "CAST(NULL AS real)", ""
        if is_positional(query.text):
            exact = to_tsquery(query.text)
            where.params.extend(sa.bindparam(k, v) for k, v in exact.params.items())
            hit = f"articles.search_vector @@ {exact.sql}"
        if scored:
            # NEAR/n is 2(n+1) phrase alternatives, which ts_rank_cd scores one by one (ten times the cost of
            # the words): a NEAR query is scored on its words, as its snippet marks them (see _snippets).
            ranking = to_tsquery(query.text, relaxed=_has_near(query.text), prefix="stq")
            where.params.extend(sa.bindparam(k, v) for k, v in ranking.params.items())
            score = f"ts_rank_cd(articles.search_vector, {ranking.sql})"
            if hit != "true":
                # The positions are checked once per row, in a subquery of its own (OFFSET 0 keeps the planner
                # from copying the check into the score's CASE, which checked each row twice: NEAR/5 of two
                # common words, 8,435 rows, 55 ms, 45 ms checked once).
                checked = f" CROSS JOIN LATERAL (SELECT {hit} AS hit OFFSET 0) AS checked"
                hit = "checked.hit"
                score = f"CASE WHEN checked.hit THEN {score} END"
        return hit, score, checked

    async def _stories(self, conn: Any, ids: Sequence[int]) -> dict[int, tuple[int, int]]:
        """(cluster id, cluster size) of each of the hits that is clustered."""
        if not ids:
            return {}
        id_list = ", ".join(str(int(i)) for i in ids)
        sql = (
            "SELECT article_clusters.article_id, article_clusters.cluster_id, (SELECT count(*) FROM article_clusters "
            "AS copies WHERE copies.cluster_id = article_clusters.cluster_id) AS size FROM article_clusters "
            f"WHERE article_clusters.article_id IN ({id_list})"
        )
        rows = await conn.execute(sa.text(sql))
        return {int(r.article_id): (int(r.cluster_id), int(r.size)) for r in rows}

    async def _snippets(self, conn: Any, query: Query, ids: Sequence[int]) -> dict[int, str]:
        """Highlighted extracts for the hits only (making one for every match would cost far more)."""
        if not ids:
            return {}
        id_list = ", ".join(str(int(i)) for i in ids)
        params: list[sa.BindParameter[Any]] = []
        if query.text is None:
            sql = f"SELECT id, substr(coalesce(text, ''), 1, 240) AS snippet FROM articles WHERE id IN ({id_list})"
        elif self.db.is_postgres:
            # NEAR/n is 2(n+1) phrase alternatives, which ts_headline evaluates at every word of the
            # text (seconds per article): the snippet of a NEAR query marks its words instead.
            tsquery = to_tsquery(query.text, relaxed=_has_near(query.text))
            params = [sa.bindparam(k, v) for k, v in tsquery.params.items()]
            params.append(sa.bindparam("headline_options", _HEADLINE))
            sql = (
                f"SELECT id, ts_headline('{TS_CONFIG}'::regconfig, coalesce(title, '') || ' ' || coalesce(text, ''), "
                f"{tsquery.sql}, :headline_options) AS snippet FROM articles WHERE id IN ({id_list})"
            )
        else:
            params = [
                sa.bindparam("match", to_fts5(query.text)),
                sa.bindparam("start", HIGHLIGHT_START),
                sa.bindparam("end", HIGHLIGHT_END),
            ]
            sql = (
                f"SELECT rowid AS id, snippet(articles_search, -1, :start, :end, '…', {SNIPPET_TOKENS}) AS snippet "
                f"FROM articles_search WHERE articles_search MATCH :match AND rowid IN ({id_list})"
            )
        rows = await conn.execute(sa.text(sql).bindparams(*params))
        return {int(r.id): r.snippet or "" for r in rows}
