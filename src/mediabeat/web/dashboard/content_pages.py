"""The sign-in page and the content pages: feeds and crawl jobs for admins, articles for every signed-in user."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from mediabeat.domain.access import Permission
from mediabeat.domain.content import ArticleFilter, JobFilter, JobStatus
from mediabeat.domain.ids import clamp_id, parse_id
from mediabeat.domain.search import HIGHLIGHT_END, HIGHLIGHT_START, MAX_SEARCH_OFFSET, BadQuery
from mediabeat.search.query import MAX_QUERY_LENGTH
from mediabeat.web.dashboard.filters import CopiesFilter, FeedState, JobStatusFilter
from mediabeat.web.dashboard.render import (
    ContentPage,
    PageDenied,
    QueuePage,
    page_user,
    render,
    safe_next,
    signed_in_page,
)
from mediabeat.web.deps import Principal, content_services, reader_of

router = APIRouter(include_in_schema=False)
SignedIn = Annotated[Principal, Depends(signed_in_page)]

JOBS_PAGE = 50
ARTICLES_PAGE = 30
STATUSES = [s.value for s in JobStatus]


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    target = safe_next(next)
    user = await page_user(request)
    if user is not None and (user.can(Permission.VIEW_SCHEDULER) or not target.startswith("/app/admin")):
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", {"title": "Sign in", "next": target, "signed_in_as": user, "user": None})


@router.get("/app/admin/feeds", response_class=HTMLResponse)
async def feeds_page(request: Request, user: QueuePage, state: FeedState = None) -> HTMLResponse:
    """Every organisation's feeds, with their health, priorities and (for admins) the forms to add more."""
    return await _feeds_page(request, user, state, org_id=None)


@router.get("/app/feeds", response_class=HTMLResponse, response_model=None)
async def member_feeds_page(request: Request, user: SignedIn, state: FeedState = None) -> Response:
    """A member's own organisation's feeds: add one, import OPML, switch them on and off."""
    if user.can(Permission.VIEW_CRAWL_QUEUE):  # admins and operators see every organisation's
        return RedirectResponse("/app/admin/feeds" + (f"?state={state}" if state else ""), status_code=303)
    if user.org_id is None:
        raise PageDenied(403, f"{user.email} belongs to no organisation, so there are no feeds to show.")
    return await _feeds_page(request, user, state, org_id=user.org_id)


async def _feeds_page(request: Request, user: Principal, state: str | None, *, org_id: int | None) -> HTMLResponse:
    content = content_services(request)
    feeds = await content.feeds.list(org_id=org_id)
    if org_id is None:
        orgs = await content.orgs.list()
    else:
        own = await content.orgs.find(org_id)
        orgs = [own] if own is not None else []
    counts = {
        "all": len(feeds),
        "active": sum(1 for f in feeds if f.active),
        "disabled": sum(1 for f in feeds if not f.active),
        "failing": sum(1 for f in feeds if f.consecutive_failures > 0),
    }
    if state == "active":
        feeds = [f for f in feeds if f.active]
    elif state == "disabled":
        feeds = [f for f in feeds if not f.active]
    elif state == "failing":
        feeds = [f for f in feeds if f.consecutive_failures > 0]
    return render(
        request,
        "feeds.html",
        {
            "user": user,
            "title": "Feeds",
            "active": "feeds",
            "feeds": feeds,
            "orgs": orgs,
            "org_names": {o.id: o.name for o in orgs},
            "counts": counts,
            "state": state or "",
            "default_org": user.org_id,
            "member_view": org_id is not None,
            "feeds_path": "/app/feeds" if org_id is not None else "/app/admin/feeds",
            "websub_off": content.websub.push_off,
            "websub_pushed": len(await content.websub.pushed_feed_ids(f.id for f in feeds)),
            "push_states": await content.websub.push_states(f.id for f in feeds),
        },
    )


@router.get("/app/admin/jobs", response_class=HTMLResponse)
async def jobs_page(
    request: Request,
    user: QueuePage,
    status: JobStatusFilter = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]*$")] = None,
) -> HTMLResponse:
    jobs_service = content_services(request).jobs
    before = clamp_id(int(cursor)) if cursor else None
    jobs = await jobs_service.list(JobFilter(status=status, limit=JOBS_PAGE + 1, before_id=before))
    more = len(jobs) > JOBS_PAGE
    jobs = jobs[:JOBS_PAGE]
    return render(
        request,
        "jobs.html",
        {
            "user": user,
            "title": "Crawl jobs",
            "active": "jobs",
            "jobs": jobs,
            "counts": await jobs_service.counts(),
            "statuses": STATUSES,
            "status": status or "",
            "next_cursor": str(jobs[-1].id) if more and jobs else None,
            "paged": cursor is not None,
        },
    )


@router.get("/app/articles", response_class=HTMLResponse)
async def articles_page(
    request: Request,
    user: ContentPage,
    org: Annotated[str | None, Query(alias="org_id", max_length=20, pattern=r"^[0-9]*$")] = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]*$")] = None,
    q: Annotated[str | None, Query(max_length=MAX_QUERY_LENGTH)] = None,
    copies: CopiesFilter = None,
) -> HTMLResponse:
    """The articles crawl-queue collected, newest first, or with `q` the search's matches, best first.

    A search shows one result per story (its best-ranked copy, "and N more outlets"); `copies=1` shows every copy.
    """
    content = content_services(request)
    orgs = await content.orgs.list() if user.is_admin else []
    org_id = clamp_id(int(org)) if org else None  # "" is the filter's "All organisations"
    scope = org_id if user.is_admin else user.org_id
    if scope is None and not user.is_admin:
        raise PageDenied(403, f"{user.email} belongs to no organisation, so there are no articles to show.")
    query = (q or "").strip()
    collapse = copies != "1"
    listing = await (
        _search_listing(request, user, query, scope, cursor, collapse=collapse)
        if query
        else _newest(request, scope, cursor)
    )
    feeds = {f.id: f for f in await content.feeds.list(org_id=scope)}
    return render(
        request,
        "articles.html",
        {
            "user": user,
            "title": "Articles",
            "active": "articles",
            "stories": await content.stories.memberships([a.id for a in listing["articles"]]),
            "feeds": feeds,
            "orgs": orgs,
            "org_names": {o.id: o.name for o in orgs},
            "org_id": org_id if user.is_admin else None,
            "q": query,
            "collapsed": bool(query) and collapse,
            "paged": cursor is not None,
            **listing,
        },
        status=422 if listing.get("error") else 200,
    )


async def _newest(request: Request, scope: int | None, cursor: str | None) -> dict[str, Any]:
    content = content_services(request)
    before = clamp_id(int(cursor)) if cursor else None
    articles = await content.articles.list(ArticleFilter(org_id=scope, limit=ARTICLES_PAGE + 1, before_id=before))
    more = len(articles) > ARTICLES_PAGE
    articles = articles[:ARTICLES_PAGE]
    return {
        "articles": articles,
        "total": await content.articles.count(org_id=scope),
        "next_cursor": str(articles[-1].id) if more and articles else None,
    }


async def _search_listing(
    request: Request, user: Principal, query: str, scope: int | None, cursor: str | None, *, collapse: bool
) -> dict[str, Any]:
    """Ranked matches with their snippets; a query that does not parse is the page's message, not an error page."""
    offset = min(int(cursor), MAX_SEARCH_OFFSET + 1) if cursor else 0
    try:
        hits = await content_services(request).search.search(
            query, reader=reader_of(user), org_id=scope, limit=ARTICLES_PAGE + 1, offset=offset, collapse=collapse
        )
    except BadQuery as exc:
        return {"articles": [], "total": 0, "next_cursor": None, "error": str(exc)}
    return {
        "articles": hits[:ARTICLES_PAGE],
        "snippets": {h.id: highlighted(h.snippet) for h in hits[:ARTICLES_PAGE]},
        "total": None,
        "next_cursor": str(offset + ARTICLES_PAGE) if len(hits) > ARTICLES_PAGE else None,
    }


def highlighted(snippet: str) -> Markup:
    """A snippet as HTML: its text escaped, its matches in <mark> (the only markup it can contain)."""
    escaped = str(escape(snippet))
    return Markup(escaped.replace(HIGHLIGHT_START, "<mark>").replace(HIGHLIGHT_END, "</mark>"))


@router.get("/app/articles/{article_id}", response_class=HTMLResponse)
async def article_page(
    request: Request, user: ContentPage, article_id: Annotated[str, Path(max_length=20)]
) -> HTMLResponse:
    """One article to read, with where it came from; another organisation's is a 404, as if it did not exist."""
    content = content_services(request)
    wanted = parse_id(article_id)  # None for what names no row: "0", "²", 20 nines
    article = await content.articles.find(wanted) if wanted is not None else None
    if article is None or not (user.is_admin or article.org_id == user.org_id):
        raise PageDenied(404, "There is no such article here.")
    feed = await content.feeds.find(article.feed_id) if article.feed_id is not None else None
    paragraphs = [p.strip() for p in (article.text or "").split("\n") if p.strip()]
    return render(
        request,
        "article.html",
        {
            "user": user,
            "title": article.title or "Article",
            "active": "articles",
            "article": article,
            "feed": feed,
            "story": await content.stories.membership(article.id),
            "paragraphs": paragraphs,
        },
    )
