"""Story clusters: an organisation's stories (syndicated copies grouped), largest first, and one with its articles.

Members see their own organisation's stories; another organisation's story answers 404.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from mediabeat.domain.access import Permission
from mediabeat.domain.ids import MAX_ID
from mediabeat.domain.stories import StoryMember, StoryNotFound, StorySummary
from mediabeat.services.stories import MAX_STORIES
from mediabeat.web.api.common import path_id
from mediabeat.web.deps import ContentReader, can_access_org, content_services
from mediabeat.web.errors import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["stories"])
READ = error_responses(401, 404, 422)
StoryId = Annotated[int, path_id("The story's id (an article's cluster_id)")]


class StoryOut(BaseModel):
    id: int = Field(description="The story's id: the cluster_id of its articles")
    org_id: int
    size: int = Field(description="How many articles the story has")
    title: str | None = Field(description="The title of its earliest stored article")
    first_seen: datetime = Field(description="When its first article was fetched")
    last_seen: datetime = Field(description="When its latest article was fetched")
    outlets: int = Field(description="Distinct feeds its articles came from")
    sites: int = Field(description="Distinct host names of its articles' URLs")

    @classmethod
    def of(cls, story: StorySummary) -> StoryOut:
        return cls(**{name: getattr(story, name) for name in cls.model_fields})


class StoryMemberOut(BaseModel):
    id: int
    title: str | None
    url: str
    feed_id: int | None
    published_at: datetime | None
    fetched_at: datetime

    @classmethod
    def of(cls, member: StoryMember) -> StoryMemberOut:
        return cls(**{name: getattr(member, name) for name in cls.model_fields})


class StoryList(BaseModel):
    items: list[StoryOut]


class StoryDetailOut(StoryOut):
    members: list[StoryMemberOut] = Field(description="Its articles, earliest first (at most 1,000)")


@router.get(
    "/stories",
    response_model=StoryList,
    summary="Story clusters, largest first",
    description="Near-duplicate articles (wire reprints, edited copies, the same text under another headline) "
    "grouped per organisation. Members see their own organisation's; admins name one with org_id or see all.",
    responses=READ,
)
async def list_stories(
    request: Request,
    principal: ContentReader,
    org_id: Annotated[
        int | None, Query(ge=1, le=MAX_ID, description="The organisation (members: only their own)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_STORIES, description="How many, largest first")] = 50,
    min_size: Annotated[int, Query(ge=1, le=1_000_000, description="Only stories with this many articles")] = 2,
) -> StoryList:
    if not principal.can(Permission.EVERY_ORGANISATION):
        if org_id is not None and org_id != principal.org_id:
            raise ApiError(404, f"organisation {org_id} not found")
        org_id = principal.org_id if principal.org_id is not None else -1
    stories = await content_services(request).stories.list(org_id=org_id, limit=limit, min_size=min_size)
    return StoryList(items=[StoryOut.of(s) for s in stories])


@router.get("/stories/{story_id}", response_model=StoryDetailOut, summary="One story with its articles", responses=READ)
async def get_story(story_id: StoryId, request: Request, principal: ContentReader) -> StoryDetailOut:
    detail = await content_services(request).stories.get(story_id)
    if not can_access_org(principal, detail.story.org_id):
        raise StoryNotFound(story_id)
    return StoryDetailOut(
        **StoryOut.of(detail.story).model_dump(), members=[StoryMemberOut.of(m) for m in detail.members]
    )
