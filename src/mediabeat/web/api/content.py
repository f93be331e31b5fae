"""Feeds (with OPML import and export) and articles: members reach their own organisation's, admins every one;
operators read every organisation's feeds (their fetch state) and nothing else here.

Another organisation's feed or article answers 404, not 403, so that its existence does not leak.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mediabeat.crawler.opml import MAX_OPML_BYTES
from mediabeat.db.tables import MAX_PRIORITY, MIN_PRIORITY
from mediabeat.domain.access import Permission
from mediabeat.domain.content import (
    MAX_URL_LENGTH,
    ArticleFilter,
    ArticleNotFound,
    ArticleRecord,
    FeedNotFound,
    FeedRecord,
    OpmlTooLarge,
)
from mediabeat.domain.ids import MAX_ID
from mediabeat.domain.search import LISTING_FIELDS, MAX_SEARCH_OFFSET, SearchHit
from mediabeat.domain.stories import ClusterMembership
from mediabeat.search.query import MAX_QUERY_LENGTH
from mediabeat.services import ContentServices
from mediabeat.web.api.common import Cursor, Limit, OrgFilter, before_id, next_cursor, org_scope, path_id, target_org
from mediabeat.web.deps import (
    ContentEditor,
    ContentReader,
    FeedReader,
    Principal,
    actor_of,
    can_access_org,
    content_services,
    reader_of,
)
from mediabeat.web.errors import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["feeds"])

FeedId = Annotated[int, path_id("The feed's id")]
ArticleId = Annotated[int, path_id("The article's id")]
READ = error_responses(401, 404, 422)


class FeedOut(BaseModel):
    id: int
    org_id: int
    url: str
    title: str | None
    site_url: str | None
    active: bool
    last_fetched_at: datetime | None
    last_status: str | None
    last_error: str | None
    consecutive_failures: int
    next_fetch_at: datetime | None
    disabled_reason: str | None
    priority: int = Field(description="0-9: the feed's articles are crawled highest priority first")
    created_at: datetime
    updated_at: datetime
    fetch_interval_s: int | None = Field(default=None, description="The interval in effect, in seconds")
    interval_reason: str | None = Field(
        default=None, description="Why: publishing rate, overlap, the server's TTL/Cache-Control, backoff, dormant"
    )
    entries_per_week: int | None = Field(default=None, description="Publishing rate seen at the last parse")
    window_entries: int | None = Field(
        default=None,
        description="Entries the feed listed at its last parse (its window); the schedule reads the rate against it."
        " Null until the feed has been parsed",
    )
    last_new_entries: int | None = Field(default=None, description="New links at the last fetch")
    dormant_since: datetime | None = Field(
        default=None, description="Set while a long-failing feed is dormant (tried at MEDIABEAT_FEED_DORMANT_INTERVAL)"
    )

    @classmethod
    def of(cls, feed: FeedRecord) -> FeedOut:
        return cls(**{name: getattr(feed, name) for name in cls.model_fields})


class CheckedFeedOut(BaseModel):
    url: str
    title: str | None
    entries: int


class RefusedOut(BaseModel):
    url: str
    reason: str


class SitemapFoundOut(BaseModel):
    url: str
    news_entries: int = Field(description="Its <news:news> entries now (0 when it is no news sitemap)")
    reason: str | None = Field(description="Why it is no news sitemap; null for a news sitemap")


class FeedAdded(FeedOut):
    """The feed added (the first when several were); what the check found."""

    checked: bool = Field(description="false when added with check=false (not fetched)")
    added: list[FeedOut] = Field(description="Every feed added by this request (several with all_feeds)")
    found: list[CheckedFeedOut] = Field(description="The feeds found and parsed, with their entry counts")
    also_found: list[str] = Field(description="Further feeds the site names, not added (use all_feeds)")
    refused: list[RefusedOut] = Field(description="Candidate addresses that could not be used, with why")
    sitemaps: list[SitemapFoundOut] = Field(
        default_factory=list,
        description="A site's address: the sitemaps its robots.txt lists, probed for news entries; news sitemaps "
        "not added are in also_found",
    )
    robots_note: str | None = Field(default=None, description="Why robots.txt gave no sitemap, when it did not")


class FeedFetchOut(BaseModel):
    feed: FeedOut
    outcome: str = Field(description="fetched, not_modified, unchanged, failed, dormant or disabled")
    status: str | None
    error: str | None
    entries: int = Field(description="Entries in the feed when it was parsed")
    new_jobs: int = Field(description="Crawl jobs queued for new entries")


class FeedList(BaseModel):
    items: list[FeedOut]


class FeedCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH, examples=["https://news.example.org/rss.xml"])
    title: str | None = Field(default=None, max_length=500)
    org_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="Default: your organisation")
    check: bool = Field(
        default=True,
        description="Fetch the URL once: a feed is parsed, a site's page is searched for its feeds "
        "(<link rel=alternate>, then /feed, /rss.xml ...). false adds the URL unchecked",
    )
    all_feeds: bool = Field(default=False, description="A site with several feeds: add them all, not just the first")


class FeedPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    active: bool | None = Field(
        default=None, description="false stops fetching it; true resumes and clears the failure backoff"
    )
    reason: str | None = Field(default=None, max_length=500, description="Why it is disabled")
    priority: int | None = Field(
        default=None,
        ge=MIN_PRIORITY,
        le=MAX_PRIORITY,
        description="Admins only: 0-9, higher is crawled sooner; applies to its queued jobs too",
    )


class OpmlImported(BaseModel):
    org_id: int
    added: int
    existing: int
    feeds: list[FeedOut]


class ArticleSummary(BaseModel):
    """An article in a list; with q, also its snippet, score and story (the fields of LISTING_FIELDS first)."""

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
    snippet: str | None = Field(
        default=None, description="With q: the matched passage, plain text (highlights says where the matches are)"
    )
    highlights: list[list[int]] | None = Field(
        default=None, description="With q: [start, end) character offsets of each match in snippet"
    )
    score: float | None = Field(default=None, description="With q: relevance, higher is better (items are in order)")
    cluster_id: int | None = Field(
        default=None, description="The article's story (GET /api/v1/stories/{id}); null until it is clustered"
    )
    cluster_size: int | None = Field(
        default=None,
        description="How many articles the story has, this one included (1: no copies found); with q and "
        "collapse=true the item stands for all of them",
    )

    @classmethod
    def of(cls, article: ArticleRecord) -> ArticleSummary:
        return cls(**{name: getattr(article, name) for name in LISTING_FIELDS})

    @classmethod
    def of_hit(cls, hit: SearchHit) -> ArticleSummary:
        return cls(**hit.plain())


class ArticleOut(ArticleSummary):
    text: str | None

    @classmethod
    def of(cls, article: ArticleRecord, story: ClusterMembership | None = None) -> ArticleOut:
        return cls(
            **{name: getattr(article, name) for name in LISTING_FIELDS},
            text=article.text,
            cluster_id=story.cluster_id if story else None,
            cluster_size=story.cluster_size if story else None,
        )


class ArticlePage(BaseModel):
    items: list[ArticleSummary]
    next_cursor: str | None


def _content(request: Request) -> ContentServices:
    return content_services(request)


async def _feed(request: Request, principal: Principal, feed_id: int) -> FeedRecord:
    feed = await _content(request).feeds.get(feed_id)
    if not can_access_org(principal, feed.org_id):
        raise FeedNotFound(feed_id)
    return feed


@router.get("/feeds", response_model=FeedList, summary="Feeds", responses=READ)
async def list_feeds(
    request: Request,
    principal: FeedReader,
    org_id: OrgFilter = None,
    active: Annotated[bool | None, Query()] = None,
) -> FeedList:
    scope = await org_scope(request, principal, org_id)
    return FeedList(items=[FeedOut.of(f) for f in await _content(request).feeds.list(org_id=scope, active=active)])


@router.post(
    "/feeds",
    response_model=FeedAdded,
    status_code=201,
    summary="Add a feed, or a site's feed(s) (200 with the existing one when the organisation has it already)",
    description="The URL is fetched once with the crawler's guarded client: a feed is parsed (its title and entry "
    'count come back in `found`); a site\'s page is searched for `<link rel="alternate">` feeds, then the usual '
    "paths, and its robots.txt `Sitemap:` lines are probed for news sitemaps (in `sitemaps`). A site with several "
    "feeds adds the first and offers the rest, news sitemaps included, in `also_found`, unless `all_feeds`; a site "
    "with news sitemaps and no feed adds its first news sitemap. An address that gives no usable feed is "
    "a 422 saying why (not a feed, HTTP 404, an address the crawler never fetches, timeout); "
    "`check: false` skips all this.",
    responses={200: {"model": FeedAdded, "description": "The organisation has this feed already"}, **READ},
)
async def create_feed(body: FeedCreate, request: Request, response: Response, principal: ContentEditor) -> FeedAdded:
    org_id = await target_org(request, principal, body.org_id)
    done = await _content(request).feeds.add_address(
        org_id, body.url, actor_of(request, principal), title=body.title, check=body.check, all_feeds=body.all_feeds
    )
    feed = done.feeds[0][0]
    response.headers["Location"] = f"/api/v1/feeds/{feed.id}"
    if not any(c for _, c in done.feeds):
        response.status_code = 200
    return FeedAdded(
        **FeedOut.of(feed).model_dump(),
        checked=done.checked,
        added=[FeedOut.of(f) for f, _ in done.feeds],
        found=[CheckedFeedOut(url=f.url, title=f.title, entries=f.entries) for f in done.found],
        also_found=done.also_found,
        refused=[RefusedOut(url=u, reason=r) for u, r in done.refused],
        sitemaps=[SitemapFoundOut(url=m.url, news_entries=m.news_entries, reason=m.reason) for m in done.sitemaps],
        robots_note=done.robots_note,
    )


@router.post(
    "/feeds/{feed_id}/fetch",
    response_model=FeedFetchOut,
    summary="Fetch one feed now",
    description="Fetches the feed whatever its schedule, queues a crawl job per new entry, and plans its next "
    "fetch: the answer carries the outcome, the new jobs, and the feed with its next_fetch_at and interval_reason.",
    responses=READ,
)
async def fetch_feed(feed_id: FeedId, request: Request, principal: ContentEditor) -> FeedFetchOut:
    await _feed(request, principal, feed_id)
    report = await _content(request).feeds.fetch_now(feed_id, actor_of(request, principal))
    return FeedFetchOut(
        feed=FeedOut.of(report.feed),
        outcome=report.outcome,
        status=report.status,
        error=report.error,
        entries=report.entries,
        new_jobs=report.new_jobs,
    )


@router.get(
    "/feeds/export",
    summary="The organisation's feeds as OPML",
    response_class=Response,
    responses={200: {"content": {"text/x-opml": {"schema": {"type": "string"}}}, "description": "OPML 2.0"}, **READ},
)
async def export_opml(request: Request, principal: ContentReader, org_id: OrgFilter = None) -> Response:
    scope = await target_org(request, principal, org_id)
    return Response(
        await _content(request).feeds.export_opml(scope),
        media_type="text/x-opml",
        headers={"Content-Disposition": f'attachment; filename="mediabeat-feeds-{scope}.opml"'},
    )


@router.post(
    "/feeds/import",
    response_model=OpmlImported,
    summary="Add every feed of an OPML file (the request body); feeds the organisation has are kept",
    responses=error_responses(401, 404, 413, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/x-opml": {"schema": {"type": "string"}},
                "application/xml": {"schema": {"type": "string"}},
            },
        }
    },
)
async def import_opml(request: Request, principal: ContentEditor, org_id: OrgFilter = None) -> OpmlImported:
    target = await target_org(request, principal, org_id)
    data = bytearray()
    async for chunk in request.stream():
        data.extend(chunk)
        if len(data) > MAX_OPML_BYTES:  # stop reading here; the service would refuse it anyway
            raise OpmlTooLarge(f"the OPML file is larger than {MAX_OPML_BYTES // (1024 * 1024)} MB")
    done = await _content(request).feeds.import_opml(target, bytes(data), actor_of(request, principal))
    return OpmlImported(
        org_id=target, added=done.added, existing=done.existing, feeds=[FeedOut.of(f) for f, _ in done.feeds]
    )


@router.get("/feeds/{feed_id}", response_model=FeedOut, summary="One feed", responses=READ)
async def get_feed(feed_id: FeedId, request: Request, principal: FeedReader) -> FeedOut:
    return FeedOut.of(await _feed(request, principal, feed_id))


@router.patch(
    "/feeds/{feed_id}",
    response_model=FeedOut,
    summary="Enable or disable a feed, or set its priority",
    responses=error_responses(401, 403, 404, 422),
)
async def patch_feed(feed_id: FeedId, body: FeedPatch, request: Request, principal: ContentEditor) -> FeedOut:
    if body.active is None and body.priority is None:
        raise ApiError(
            422,
            "nothing to change: give active, priority or both",
            details=[{"field": "active", "message": "give active, priority or both"}],
        )
    await _feed(request, principal, feed_id)
    if body.priority is not None and not principal.can(Permission.EVERY_ORGANISATION):
        # Every organisation's jobs share one queue: a member's priority would be another's delay.
        raise ApiError(403, "only an admin can set a feed's priority", code="forbidden")
    updated = await _content(request).feeds.change(
        feed_id, actor_of(request, principal), active=body.active, reason=body.reason, priority=body.priority
    )
    return FeedOut.of(updated)


@router.delete("/feeds/{feed_id}", status_code=204, summary="Delete a feed", responses=READ)
async def delete_feed(feed_id: FeedId, request: Request, principal: ContentEditor) -> Response:
    await _feed(request, principal, feed_id)
    await _content(request).feeds.delete(feed_id, actor_of(request, principal))
    return Response(status_code=204)


@router.get(
    "/articles",
    response_model=ArticlePage,
    summary="Articles, newest first; with q, the full-text matches, best first",
    description=(
        "Without `q`, the newest articles. With `q`, a search of title and text in the query language of "
        'docs/search.md (words, "phrases", AND/OR/NOT, -word, prefix*, NEAR/n, site:, lang:, feed:, since:, '
        "until:): items are ranked, each with `snippet`, `highlights` and `score`, and `next_cursor` pages on. "
        "A query that does not parse is a 422 whose message names the column."
    ),
    tags=["articles"],
    responses=READ,
)
async def list_articles(
    request: Request,
    principal: ContentReader,
    org_id: OrgFilter = None,
    feed_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    q: Annotated[
        str | None,
        Query(max_length=MAX_QUERY_LENGTH, description="A search query (docs/search.md); blank lists everything"),
    ] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    collapse: Annotated[
        bool,
        Query(
            description="With q: one item per story, its best-ranked copy, with cluster_size saying how many "
            "articles the story has (copies of a wire story on other outlets); paging counts stories"
        ),
    ] = False,
) -> ArticlePage:
    scope = await org_scope(request, principal, org_id)
    if feed_id is not None:
        await _feed(request, principal, feed_id)
    if q is not None and q.strip():
        search = _SearchRequest(q=q, scope=scope, feed_id=feed_id, limit=limit, cursor=cursor, collapse=collapse)
        return await _search_page(request, principal, search)
    articles = await _content(request).articles.list(
        ArticleFilter(org_id=scope, feed_id=feed_id, limit=limit + 1, before_id=before_id(cursor))
    )
    return ArticlePage(
        items=[ArticleSummary.of(a) for a in articles[:limit]],
        next_cursor=next_cursor([a.id for a in articles], limit),
    )


@dataclass(frozen=True, slots=True)
class _SearchRequest:
    q: str
    scope: int | None
    feed_id: int | None
    limit: int
    cursor: str | None
    collapse: bool


async def _search_page(request: Request, principal: Principal, search: _SearchRequest) -> ArticlePage:
    """A page of ranked matches; the cursor of a search is how many results (or stories) came before it."""
    offset = min(int(search.cursor), MAX_SEARCH_OFFSET + 1) if search.cursor else 0
    limit = search.limit
    hits = await _content(request).search.search(
        search.q,
        reader=reader_of(principal),
        org_id=search.scope,
        limit=limit + 1,
        offset=offset,
        feed_id=search.feed_id,
        collapse=search.collapse,
    )
    return ArticlePage(
        items=[ArticleSummary.of_hit(h) for h in hits[:limit]],
        next_cursor=str(offset + limit) if len(hits) > limit else None,
    )


@router.get(
    "/articles/{article_id}",
    response_model=ArticleOut,
    summary="One article with its text",
    tags=["articles"],
    responses=READ,
)
async def get_article(article_id: ArticleId, request: Request, principal: ContentReader) -> ArticleOut:
    article = await _content(request).articles.get(article_id)
    if not can_access_org(principal, article.org_id):
        raise ArticleNotFound(article_id)
    return ArticleOut.of(article, await _content(request).stories.membership(article.id))
