"""Organisations, users, API tokens and the audit record (admins only), and crawl jobs (operators too)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mediabeat.domain.content import (
    AuditFilter,
    AuditRecord,
    InvalidInput,
    JobFilter,
    JobRecord,
    JobStatus,
    OrgRecord,
    Role,
    TokenRecord,
    UserNotFound,
)
from mediabeat.domain.ids import MAX_ID
from mediabeat.services import ContentServices
from mediabeat.web.api.common import Cursor, Limit, UserOut, before_id, next_cursor, path_id
from mediabeat.web.deps import (
    AuditReader,
    JobRetrier,
    OrgManager,
    QueueViewer,
    UserManager,
    actor_of,
    content_services,
)
from mediabeat.web.errors import error_responses

router = APIRouter(prefix="/api/v1", tags=["admin"])

OrgId = Annotated[int, path_id("The organisation's id")]
UserId = Annotated[int, path_id("The user's id")]
TokenId = Annotated[int, path_id("The token's id")]
JobId = Annotated[int, path_id("The crawl job's id")]
READ = error_responses(401, 403, 404, 422)
LIST = error_responses(401, 403, 422)


def _content(request: Request) -> ContentServices:
    return content_services(request)


# -- organisations -----------------------------------------------------------------------


class OrgOut(BaseModel):
    id: int
    name: str
    is_demo: bool
    created_at: datetime

    @classmethod
    def of(cls, org: OrgRecord) -> OrgOut:
        return cls(id=org.id, name=org.name, is_demo=org.is_demo, created_at=org.created_at)


class OrgList(BaseModel):
    items: list[OrgOut]


class OrgCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)


@router.get("/orgs", response_model=OrgList, summary="Every organisation", tags=["orgs"], responses=LIST)
async def list_orgs(request: Request, _: OrgManager) -> OrgList:
    return OrgList(items=[OrgOut.of(o) for o in await _content(request).orgs.list()])


@router.post(
    "/orgs",
    response_model=OrgOut,
    status_code=201,
    summary="Create an organisation",
    tags=["orgs"],
    responses=error_responses(401, 403, 409, 422),
)
async def create_org(body: OrgCreate, request: Request, response: Response, principal: OrgManager) -> OrgOut:
    org = await _content(request).orgs.create(body.name, actor_of(request, principal))
    response.headers["Location"] = f"/api/v1/orgs/{org.id}"
    return OrgOut.of(org)


@router.get("/orgs/{org_id}", response_model=OrgOut, summary="One organisation", tags=["orgs"], responses=READ)
async def get_org(org_id: OrgId, request: Request, _: OrgManager) -> OrgOut:
    return OrgOut.of(await _content(request).orgs.get(org_id))


@router.delete(
    "/orgs/{org_id}",
    status_code=204,
    summary="Delete an organisation with its feeds, articles and crawl jobs",
    tags=["orgs"],
    responses=READ,
)
async def delete_org(org_id: OrgId, request: Request, principal: OrgManager) -> Response:
    await _content(request).orgs.delete(org_id, actor_of(request, principal))
    return Response(status_code=204)


# -- users -----------------------------------------------------------------------------------


class UserList(BaseModel):
    items: list[UserOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, examples=["editor@example.org"])
    role: Role = Role.MEMBER
    org_id: int | None = Field(
        default=None, ge=1, le=MAX_ID, description="Required for members; refused for operators, who belong to none"
    )
    password: str = Field(min_length=1, max_length=1024, description="At least 12 characters")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    is_active: bool | None = Field(default=None, description="false signs the user out and refuses their tokens")
    password: str | None = Field(default=None, min_length=1, max_length=1024)
    must_change_password: bool = Field(
        default=False, description="With password: the user must choose their own at the next sign-in"
    )
    role: Role | None = Field(
        default=None,
        description="admin, operator or member (a member needs an organisation; the last admin stays one; "
        "an operator keeps their organisation on record but it grants them nothing)",
    )


@router.get("/users", response_model=UserList, summary="Every user", tags=["users"], responses=LIST)
async def list_users(request: Request, _: UserManager) -> UserList:
    return UserList(items=[UserOut.of(u) for u in await _content(request).accounts.list_users()])


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user", tags=["users"], responses=LIST)
async def create_user(body: UserCreate, request: Request, response: Response, principal: UserManager) -> UserOut:
    user = await _content(request).accounts.create_user(
        body.email, role=body.role, org_id=body.org_id, password=body.password, actor=actor_of(request, principal)
    )
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserOut.of(user)


@router.get("/users/{user_id}", response_model=UserOut, summary="One user", tags=["users"], responses=READ)
async def get_user(user_id: UserId, request: Request, _: UserManager) -> UserOut:
    return UserOut.of(await _content(request).accounts.get_user(user_id))


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Deactivate or reactivate a user, set their password or change their role",
    tags=["users"],
    responses=READ,
)
async def patch_user(user_id: UserId, body: UserPatch, request: Request, principal: UserManager) -> UserOut:
    user = await _content(request).accounts.update_user(
        user_id,
        actor_of(request, principal),
        is_active=body.is_active,
        password=body.password,
        must_change_password=body.must_change_password,
        role=body.role,
    )
    return UserOut.of(user)


# -- tokens ----------------------------------------------------------------------------------


class TokenOut(BaseModel):
    id: int
    user_id: int
    email: str
    name: str
    prefix: str = Field(description="The token's first characters, to tell tokens apart")
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, token: TokenRecord) -> TokenOut:
        return cls(**{name: getattr(token, name) for name in cls.model_fields})


class TokenCreated(TokenOut):
    token: str = Field(description="The token itself: shown only in this response, stored only as a hash")


class TokenList(BaseModel):
    items: list[TokenOut]


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200, examples=["deploy script"])
    user_id: int | None = Field(default=None, ge=1, le=MAX_ID, description="The owner (default: yourself)")


@router.get(
    "/tokens", response_model=TokenList, summary="API tokens (never the secrets)", tags=["tokens"], responses=LIST
)
async def list_tokens(
    request: Request,
    _: UserManager,
    user_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> TokenList:
    return TokenList(items=[TokenOut.of(t) for t in await _content(request).accounts.list_tokens(user_id=user_id)])


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Create an API token; the response holds it once",
    tags=["tokens"],
    responses=LIST,
)
async def create_token(body: TokenCreate, request: Request, principal: UserManager) -> TokenCreated:
    accounts = _content(request).accounts
    owner_id = body.user_id or principal.user_id
    try:
        owner = await accounts.get_user(owner_id)
    except UserNotFound:
        raise InvalidInput("user_id", f"no user with id {owner_id}") from None
    token, record = await accounts.create_token(owner, body.name, actor_of(request, principal))
    return TokenCreated(token=token, **TokenOut.of(record).model_dump())


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token", tags=["tokens"], responses=READ)
async def revoke_token(token_id: TokenId, request: Request, principal: UserManager) -> TokenOut:
    return TokenOut.of(await _content(request).accounts.revoke_token(token_id, actor_of(request, principal)))


# -- audit -------------------------------------------------------------------------------------


class AuditOut(BaseModel):
    id: int
    actor_user_id: int | None
    actor: str
    action: str
    target_type: str | None
    target_id: str | None
    details: dict[str, Any] | None
    ip: str | None
    created_at: datetime

    @classmethod
    def of(cls, event: AuditRecord) -> AuditOut:
        return cls(**{name: getattr(event, name) for name in cls.model_fields})


class AuditPage(BaseModel):
    items: list[AuditOut]
    next_cursor: str | None


@router.get(
    "/audit", response_model=AuditPage, summary="The audit record, newest first", tags=["audit"], responses=LIST
)
async def list_audit(
    request: Request,
    _: AuditReader,
    action: Annotated[str | None, Query(max_length=100, examples=["task.run"])] = None,
    actor: Annotated[str | None, Query(max_length=320)] = None,
    target_type: Annotated[str | None, Query(max_length=50)] = None,
    target_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AuditPage:
    query = AuditFilter(
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
        before_id=before_id(cursor),
        limit=limit + 1,
    )
    events = await _content(request).audit.list(query)
    return AuditPage(
        items=[AuditOut.of(e) for e in events[:limit]], next_cursor=next_cursor([e.id for e in events], limit)
    )


# -- crawl jobs ----------------------------------------------------------------------------------


class JobOut(BaseModel):
    id: int
    org_id: int
    feed_id: int | None
    url: str
    status: JobStatus
    attempts: int
    max_attempts: int
    run_after: datetime
    locked_by: str | None
    locked_until: datetime | None
    last_error: str | None
    article_id: int | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    priority: int

    @classmethod
    def of(cls, job: JobRecord) -> JobOut:
        return cls(**{name: getattr(job, name) for name in cls.model_fields})


class JobPage(BaseModel):
    items: list[JobOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="Jobs per status (for the same organisation filter)")


class JobRetry(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ids: list[Annotated[int, Field(ge=1, le=MAX_ID)]] | None = Field(
        default=None, max_length=10_000, description="Failed jobs to queue again; omit for every failed job"
    )


class Requeued(BaseModel):
    requeued: int


class NotFailedJob(BaseModel):
    id: int
    status: JobStatus


class RetryResult(BaseModel):
    requeued: int = Field(description="How many failed jobs were queued again")
    not_found: list[int] = Field(description="Ids named that name no job")
    not_failed: list[NotFailedJob] = Field(description="Jobs named that are not failed, with their status")


@router.get("/jobs", response_model=JobPage, summary="Crawl jobs, newest first", tags=["jobs"], responses=LIST)
async def list_jobs(
    request: Request,
    _: QueueViewer,
    status: Annotated[JobStatus | None, Query()] = None,
    org_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JobPage:
    jobs_service = _content(request).jobs
    jobs = await jobs_service.list(
        JobFilter(status=status, org_id=org_id, limit=limit + 1, before_id=before_id(cursor))
    )
    return JobPage(
        items=[JobOut.of(j) for j in jobs[:limit]],
        next_cursor=next_cursor([j.id for j in jobs], limit),
        counts=await jobs_service.counts(org_id),
    )


@router.post(
    "/jobs/retry", response_model=RetryResult, summary="Queue failed jobs again", tags=["jobs"], responses=LIST
)
async def retry_jobs(request: Request, principal: JobRetrier, body: JobRetry | None = None) -> RetryResult:
    """Queue the named failed jobs again (every failed job when `ids` is omitted). The others named are
    listed with the reason: `not_found`, or `not_failed` with their status. One request queues all it can."""
    ids = body.ids if body is not None else None
    outcome = await _content(request).jobs.retry_failed(ids, actor_of(request, principal))
    return RetryResult(
        requeued=outcome.requeued,
        not_found=list(outcome.not_found),
        not_failed=[NotFailedJob(id=i, status=status) for i, status in outcome.not_failed],
    )


@router.post(
    "/jobs/{job_id}/retry",
    response_model=Requeued,
    summary="Queue one failed job again",
    tags=["jobs"],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def retry_job(job_id: JobId, request: Request, principal: JobRetrier) -> Requeued:
    return Requeued(requeued=await _content(request).jobs.retry_one(job_id, actor_of(request, principal)))
