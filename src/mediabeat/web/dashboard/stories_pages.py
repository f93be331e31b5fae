"""Story pages: an organisation's stories (syndicated copies grouped), largest first, and one story's articles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse

from mediabeat.domain.content import NotFound
from mediabeat.domain.ids import clamp_id, parse_id
from mediabeat.web.dashboard.render import ContentPage, PageDenied, render
from mediabeat.web.deps import content_services

router = APIRouter(include_in_schema=False)
STORIES_PAGE = 50


@router.get("/app/stories", response_class=HTMLResponse)
async def stories_page(
    request: Request,
    user: ContentPage,
    org: Annotated[str | None, Query(alias="org_id", max_length=20, pattern=r"^[0-9]*$")] = None,
) -> HTMLResponse:
    """Stories with copies, largest first: a member's own organisation's, or any for an admin."""
    content = content_services(request)
    orgs = await content.orgs.list() if user.is_admin else []
    org_id = clamp_id(int(org)) if org else None
    scope = org_id if user.is_admin else user.org_id
    if scope is None and not user.is_admin:
        raise PageDenied(403, f"{user.email} belongs to no organisation, so there are no stories to show.")
    stories = await content.stories.list(org_id=scope, limit=STORIES_PAGE)
    return render(
        request,
        "stories.html",
        {
            "user": user,
            "title": "Stories",
            "active": "stories",
            "stories": stories,
            "orgs": orgs,
            "org_names": {o.id: o.name for o in orgs},
            "org_id": org_id if user.is_admin else None,
        },
    )


@router.get("/app/stories/{story_id}", response_class=HTMLResponse)
async def story_page(
    request: Request, user: ContentPage, story_id: Annotated[str, Path(max_length=20)]
) -> HTMLResponse:
    """One story's articles, earliest first; another organisation's story is a 404."""
    wanted = parse_id(story_id)
    try:
        detail = await content_services(request).stories.get(wanted) if wanted is not None else None
    except NotFound:
        detail = None
    if detail is None or not (user.is_admin or detail.story.org_id == user.org_id):
        raise PageDenied(404, "There is no such story here.")
    return render(
        request,
        "story.html",
        {"user": user, "title": detail.story.title or "Story", "active": "stories", "detail": detail},
    )
