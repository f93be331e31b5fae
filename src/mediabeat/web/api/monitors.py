"""Monitors: members manage their own organisation's, admins every one; matches paged or exported; the Atom feed.

Another organisation's monitor answers 404, not 403, so that its existence does not leak.
The Atom feed (`GET /monitors/{token}.atom`) needs no login: its URL is the secret.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from mediabeat.domain.content import MAX_URL_LENGTH
from mediabeat.domain.monitors import (
    MAX_MONITOR_NAME,
    MAX_QUERY_LENGTH,
    Digest,
    MonitorChange,
    MonitorMatch,
    MonitorNotFound,
    MonitorRecord,
    NewMonitor,
)
from mediabeat.monitors.atom import FEED_SIZE, render_feed
from mediabeat.services.monitors import MAX_COOLDOWN_S, MonitorService
from mediabeat.web.api.common import Cursor, Limit, OrgFilter, before_id, next_cursor, org_scope, path_id, target_org
from mediabeat.web.deps import ContentEditor, ContentReader, Principal, actor_of, can_access_org, content_services
from mediabeat.web.errors import ApiError, error_responses

router = APIRouter(prefix="/api/v1", tags=["monitors"])
feed_router = APIRouter(tags=["monitors"])

MonitorId = Annotated[int, path_id("The monitor's id")]
READ = error_responses(401, 404, 422)
EXPORT_COLUMNS = ["match_id", "article_id", "url", "title", "published_at", "matched_at", "delivered_at"]


class MonitorOut(BaseModel):
    id: int
    org_id: int
    name: str
    query: str
    webhook_url: str | None
    email: str | None
    digest: Digest
    cooldown_s: int
    spike_alerts: bool
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime
    last_delivered_at: datetime | None
    last_spike_at: datetime | None

    @classmethod
    def of(cls, monitor: MonitorRecord) -> MonitorOut:
        return cls(**{name: getattr(monitor, name) for name in cls.model_fields})


class MonitorCreated(MonitorOut):
    feed_url: str = Field(description="The secret Atom feed of the matches; shown only now (only a hash is kept)")
    webhook_secret: str | None = Field(description="The HMAC-SHA256 key of X-MediaBeat-Signature; shown only now")


class MonitorList(BaseModel):
    items: list[MonitorOut]


class MonitorCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=MAX_MONITOR_NAME)
    query: str = Field(min_length=1, max_length=MAX_QUERY_LENGTH, examples=['"city council" OR harbour -sport'])
    org_id: int | None = Field(default=None, ge=1, description="Default: your organisation")
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH, description="POST signed JSON here")
    email: str | None = Field(default=None, max_length=320, description="Mail matches here (the SMTP setting)")
    digest: Digest = Field(default=Digest.NONE, description="none: each burst after the cool-down; hourly; daily")
    cooldown_s: int = Field(default=300, ge=0, le=MAX_COOLDOWN_S, description="Seconds between two messages")
    spike_alerts: bool = Field(default=False, description="Alert when this hour's matches exceed the baseline")


class MonitorPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    query: str | None = Field(default=None, min_length=1, max_length=MAX_QUERY_LENGTH)
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH, description='"" removes it')
    email: str | None = Field(default=None, max_length=320, description='"" removes it')
    digest: Digest | None = None
    cooldown_s: int | None = Field(default=None, ge=0, le=MAX_COOLDOWN_S)
    spike_alerts: bool | None = None
    active: bool | None = Field(default=None, description="false: stop matching and delivering")
    rotate_feed_token: bool = Field(default=False, description="true: a new secret feed URL (in feed_url)")


class MonitorPatched(MonitorOut):
    feed_url: str | None = Field(default=None, description="The new feed URL, when rotate_feed_token was true")
    webhook_secret: str | None = Field(default=None, description="The new signing key, when webhook_url changed")


class MatchOut(BaseModel):
    id: int
    article_id: int
    url: str
    title: str | None
    published_at: datetime | None
    matched_at: datetime
    delivered_at: datetime | None

    @classmethod
    def of(cls, match: MonitorMatch) -> MatchOut:
        return cls(**{name: getattr(match, name) for name in cls.model_fields})


class MatchPage(BaseModel):
    items: list[MatchOut]
    next_cursor: str | None


def _monitors(request: Request) -> MonitorService:
    return content_services(request).monitors


def feed_url(request: Request, token: str) -> str:
    public = request.app.state.services.settings.public_url
    base = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return f"{base}/monitors/{token}.atom"


async def _monitor(request: Request, principal: Principal, monitor_id: int) -> MonitorRecord:
    monitor = await _monitors(request).get(monitor_id)
    if not can_access_org(principal, monitor.org_id):
        raise MonitorNotFound(monitor_id)
    return monitor


@router.get("/monitors", response_model=MonitorList, summary="Monitors", responses=READ)
async def list_monitors(request: Request, principal: ContentReader, org_id: OrgFilter = None) -> MonitorList:
    scope = await org_scope(request, principal, org_id)
    return MonitorList(items=[MonitorOut.of(m) for m in await _monitors(request).list(org_id=scope)])


@router.post(
    "/monitors",
    response_model=MonitorCreated,
    status_code=201,
    summary="Create a monitor: a saved query matched against every new article",
    responses=error_responses(401, 404, 409, 422),
)
async def create_monitor(
    body: MonitorCreate, request: Request, response: Response, principal: ContentEditor
) -> MonitorCreated:
    org_id = await target_org(request, principal, body.org_id)
    new = NewMonitor(**body.model_dump(exclude={"org_id"}))
    created = await _monitors(request).create(org_id, new, actor_of(request, principal))
    response.headers["Location"] = f"/api/v1/monitors/{created.monitor.id}"
    out = MonitorOut.of(created.monitor).model_dump()
    return MonitorCreated(**out, feed_url=feed_url(request, created.feed_token), webhook_secret=created.webhook_secret)


@router.get("/monitors/{monitor_id}", response_model=MonitorOut, summary="One monitor", responses=READ)
async def get_monitor(monitor_id: MonitorId, request: Request, principal: ContentReader) -> MonitorOut:
    return MonitorOut.of(await _monitor(request, principal, monitor_id))


@router.patch(
    "/monitors/{monitor_id}",
    response_model=MonitorPatched,
    summary="Change a monitor's query, delivery, digest, cool-down or state; or give it a new feed URL",
    responses=READ,
)
async def patch_monitor(
    monitor_id: MonitorId, body: MonitorPatch, request: Request, principal: ContentEditor
) -> MonitorPatched:
    await _monitor(request, principal, monitor_id)
    actor = actor_of(request, principal)
    service = _monitors(request)
    change = MonitorChange(**body.model_dump(exclude={"rotate_feed_token"}))
    monitor, secret = await service.change(monitor_id, change, actor)
    url = feed_url(request, await service.rotate_feed_token(monitor_id, actor)) if body.rotate_feed_token else None
    return MonitorPatched(**MonitorOut.of(monitor).model_dump(), feed_url=url, webhook_secret=secret)


@router.delete("/monitors/{monitor_id}", status_code=204, summary="Delete a monitor and its matches", responses=READ)
async def delete_monitor(monitor_id: MonitorId, request: Request, principal: ContentEditor) -> Response:
    await _monitor(request, principal, monitor_id)
    await _monitors(request).delete(monitor_id, actor_of(request, principal))
    return Response(status_code=204)


@router.get(
    "/monitors/{monitor_id}/matches",
    response_model=MatchPage,
    summary="A monitor's matches, newest first (pass next_cursor back as cursor for the next page)",
    responses=READ,
)
async def list_matches(
    monitor_id: MonitorId, request: Request, principal: ContentReader, limit: Limit = 50, cursor: Cursor = None
) -> MatchPage:
    await _monitor(request, principal, monitor_id)
    matches = await _monitors(request).matches(monitor_id, limit=limit + 1, before_id=before_id(cursor))
    return MatchPage(
        items=[MatchOut.of(m) for m in matches[:limit]], next_cursor=next_cursor([m.id for m in matches], limit)
    )


def export_row(match: MonitorMatch) -> dict[str, object]:
    return {
        "match_id": match.id,
        "article_id": match.article_id,
        "url": match.url,
        "title": match.title,
        "published_at": match.published_at.isoformat() if match.published_at else None,
        "matched_at": match.matched_at.isoformat(),
        "delivered_at": match.delivered_at.isoformat() if match.delivered_at else None,
    }


async def _csv_lines(matches: AsyncIterator[MonitorMatch]) -> AsyncIterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=EXPORT_COLUMNS)
    writer.writeheader()
    async for match in matches:
        writer.writerow(export_row(match))
        if buffer.tell() > 64 * 1024:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


async def _jsonl_lines(matches: AsyncIterator[MonitorMatch]) -> AsyncIterator[str]:
    async for match in matches:
        yield json.dumps(export_row(match), ensure_ascii=False) + "\n"


@router.get(
    "/monitors/{monitor_id}/matches/export",
    summary="Every match of a monitor as CSV or JSON Lines, streamed (newest first)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}, "application/x-ndjson": {}}, "description": "One row per match"},
        **READ,
    },
)
async def export_matches(
    monitor_id: MonitorId,
    request: Request,
    principal: ContentReader,
    format: Annotated[Literal["csv", "jsonl"], Query(description="csv or jsonl")] = "csv",
) -> StreamingResponse:
    monitor = await _monitor(request, principal, monitor_id)
    rows = _monitors(request).export(monitor_id)
    body = _csv_lines(rows) if format == "csv" else _jsonl_lines(rows)
    media = "text/csv; charset=utf-8" if format == "csv" else "application/x-ndjson"
    name = f"mediabeat-monitor-{monitor.id}-matches.{format}"
    return StreamingResponse(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@feed_router.get(
    "/monitors/{token}.atom",
    summary="A monitor's latest matches as an Atom feed; the token in the URL is the only credential",
    response_class=Response,
    responses={200: {"content": {"application/atom+xml": {}}, "description": "Atom 1.0"}, 404: {}},
)
async def monitor_feed(token: str, request: Request) -> Response:
    service = _monitors(request)
    monitor = await service.by_feed_token(token)
    if monitor is None:
        raise ApiError(404, "no such monitor feed: the URL is wrong or was replaced by a new one", code="not_found")
    matches = await service.matches(monitor.id, limit=FEED_SIZE)
    clock_now = request.app.state.services.clock.now()
    document = render_feed(monitor, matches, self_url=feed_url(request, token), now=clock_now)
    return Response(document, media_type="application/atom+xml; charset=utf-8", headers={"Cache-Control": "private"})
