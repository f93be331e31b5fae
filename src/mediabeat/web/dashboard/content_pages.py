"""The sign-in page and the content pages of the admin dashboard: feeds and crawl jobs."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.orgs import OrgStore
from mediabeat.db.tables import JOB_STATUSES
from mediabeat.web.dashboard.render import admin_page, page_user, render, safe_next
from mediabeat.web.deps import Principal

router = APIRouter(include_in_schema=False)
Admin = Annotated[Principal, Depends(admin_page)]

JOBS_PAGE = 50
MAX_ID = 2**63 - 1


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, next: Annotated[str | None, Query(max_length=2000)] = None) -> Response:
    target = safe_next(next)
    user = await page_user(request)
    if user is not None and user.is_admin:
        return RedirectResponse(target, status_code=303)
    return render(request, "login.html", {"title": "Sign in", "next": target, "signed_in_as": user, "user": None})


@router.get("/app/admin/feeds", response_class=HTMLResponse)
async def feeds_page(
    request: Request, user: Admin, state: Annotated[str | None, Query(pattern="^(active|disabled|failing)?$")] = None
) -> HTMLResponse:
    db = request.app.state.services.db
    feeds = await FeedStore(db).list()
    orgs = await OrgStore(db).list()
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
        },
    )


@router.get("/app/admin/jobs", response_class=HTMLResponse)
async def jobs_page(
    request: Request,
    user: Admin,
    status: Annotated[str | None, Query(max_length=20)] = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]*$")] = None,
) -> HTMLResponse:
    store = JobStore(request.app.state.services.db)
    chosen = status if status in JOB_STATUSES else None
    before = min(int(cursor), MAX_ID) if cursor else None
    jobs = await store.list_jobs(status=chosen, limit=JOBS_PAGE + 1, before_id=before)
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
            "counts": await store.counts_by_status(),
            "statuses": JOB_STATUSES,
            "status": chosen or "",
            "next_cursor": str(jobs[-1].id) if more and jobs else None,
            "paged": cursor is not None,
        },
    )
