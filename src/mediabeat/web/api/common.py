"""Pieces shared by the API routers: the audit helper, content errors as API errors, the common models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from mediabeat.domain.access import Permission, permissions_of
from mediabeat.domain.content import (
    BadOpml,
    ContentError,
    InvalidInput,
    JobNotFailed,
    NotFound,
    OpmlTooLarge,
    OrgExists,
    OrgNotFound,
    UserRecord,
)
from mediabeat.domain.ids import MAX_ID, clamp_id
from mediabeat.domain.monitors import MonitorExists
from mediabeat.web.deps import Principal, actor_of, can_access_org, content_services
from mediabeat.web.errors import ApiError, error_body


class UserOut(BaseModel):
    id: int
    email: str
    role: str
    org_id: int | None
    org_name: str | None
    is_active: bool
    must_change_password: bool
    last_login_at: datetime | None
    created_at: datetime
    permissions: list[Permission] = Field(
        default_factory=list, description="What the role allows (the role table in docs/api.md)"
    )

    @classmethod
    def of(cls, user: UserRecord) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            role=user.role,
            org_id=user.org_id,
            org_name=user.org_name,
            is_active=user.is_active,
            must_change_password=user.must_change_password,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
            permissions=[p for p in Permission if p in permissions_of(user.role)],
        )


async def audit(
    request: Request,
    principal: Principal | None,
    action: str,
    *,
    target_type: str | None = None,
    target_id: str | int | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    """Record a mutation: who (the principal, and whether by session or token), what, when and from where."""
    await content_services(request).audit.record(
        actor_of(request, principal), action, target_type=target_type, target_id=target_id, details=details
    )


def api_error(exc: ContentError) -> ApiError:
    """A content service's refusal as the API's error: the status and code follow from its type."""
    if isinstance(exc, NotFound):
        return ApiError(404, f"{exc.kind} {exc.key} not found")
    if isinstance(exc, InvalidInput):
        code = "invalid_opml" if isinstance(exc, BadOpml) else "invalid"
        message = str(exc) if isinstance(exc, BadOpml) else f"{exc.field}: {exc}"
        return ApiError(422, message, code=code, details=[{"field": exc.field, "message": str(exc)}])
    if isinstance(exc, OrgExists | MonitorExists):
        return ApiError(409, str(exc), code="exists")
    if isinstance(exc, JobNotFailed):
        return ApiError(409, str(exc), code="not_failed")
    if isinstance(exc, OpmlTooLarge):
        return ApiError(413, str(exc))
    return ApiError(422, str(exc))


async def content_error(request: Request, exc: Exception) -> JSONResponse:
    """The exception handler for ContentError: the one error shape, whichever route raised it."""
    assert isinstance(exc, ContentError)
    error = api_error(exc)
    return JSONResponse(error_body(error.code, str(error.detail), error.details), status_code=error.status_code)


OrgFilter = Annotated[
    int | None, Query(ge=1, le=MAX_ID, description="The organisation (members: only their own; default: theirs)")
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500)")]
Cursor = Annotated[
    str | None, Query(max_length=40, pattern=r"^[0-9]+$", description="The next_cursor of the previous page")
]


def before_id(cursor: str | None) -> int | None:
    return clamp_id(int(cursor)) if cursor else None


def path_id(description: str) -> Any:
    return Path(ge=1, le=MAX_ID, description=description)


def next_cursor(ids: list[int], limit: int) -> str | None:
    """The cursor for the page after one fetched with limit + 1 rows."""
    return str(ids[limit - 1]) if len(ids) > limit else None


async def org_scope(request: Request, principal: Principal, org_id: int | None) -> int | None:
    """The organisation a request is about: a member's own (another is a 404); for an admin (or an operator
    reading feeds), the given one."""
    if org_id is None:
        if principal.can(Permission.EVERY_ORGANISATION):
            return None
        return principal.org_id if principal.org_id is not None else -1
    if not can_access_org(principal, org_id):
        raise OrgNotFound(org_id)
    return (await content_services(request).orgs.get(org_id)).id


async def target_org(request: Request, principal: Principal, org_id: int | None) -> int:
    """The organisation something new (a feed, a monitor) goes to: the given one, else the member's own."""
    scoped = await org_scope(request, principal, org_id)
    if scoped is None:
        scoped = principal.org_id
    if scoped is None or scoped < 0:
        raise ApiError(
            422, "org_id: give the organisation", details=[{"field": "org_id", "message": "give the organisation"}]
        )
    return scoped
