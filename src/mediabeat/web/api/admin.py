"""Admin-only resources: organisations, users, API tokens, the audit record and crawl jobs."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from mediabeat.auth.service import AuthService, UserInputError
from mediabeat.db.stores.audit import AuditRecord
from mediabeat.db.stores.jobs import JobRecord, JobStore
from mediabeat.db.stores.orgs import OrgExists, OrgRecord, OrgStore
from mediabeat.db.stores.tokens import TokenRecord
from mediabeat.web.api.common import Cursor, Limit, UserOut, audit, before_id, next_cursor, path_id
from mediabeat.web.deps import AdminUser, auth_service
from mediabeat.web.errors import ApiError, error_responses, not_found

router = APIRouter(prefix="/api/v1", tags=["admin"])

OrgId = Annotated[int, path_id("The organisation's id")]
UserId = Annotated[int, path_id("The user's id")]
TokenId = Annotated[int, path_id("The token's id")]
JobId = Annotated[int, path_id("The crawl job's id")]
JobStatus = Literal["queued", "running", "succeeded", "failed"]
READ = error_responses(401, 403, 404, 422)
LIST = error_responses(401, 403, 422)


def _now(request: Request) -> datetime:
    return auth_service(request).clock.now()


def _orgs(request: Request) -> OrgStore:
    return OrgStore(request.app.state.services.db)


def _jobs(request: Request) -> JobStore:
    return JobStore(request.app.state.services.db)


def _invalid(field: str, message: str) -> ApiError:
    return ApiError(422, f"{field}: {message}", details=[{"field": field, "message": message}])


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
async def list_orgs(request: Request, _: AdminUser) -> OrgList:
    return OrgList(items=[OrgOut.of(o) for o in await _orgs(request).list()])


@router.post(
    "/orgs",
    response_model=OrgOut,
    status_code=201,
    summary="Create an organisation",
    tags=["orgs"],
    responses=error_responses(401, 403, 409, 422),
)
async def create_org(body: OrgCreate, request: Request, response: Response, principal: AdminUser) -> OrgOut:
    try:
        org = await _orgs(request).create(body.name, now=_now(request))
    except OrgExists as exc:
        raise ApiError(409, str(exc), code="exists") from None
    except ValueError as exc:
        raise _invalid("name", str(exc)) from None
    await audit(request, principal, "org.create", target_type="org", target_id=org.id, details={"name": org.name})
    response.headers["Location"] = f"/api/v1/orgs/{org.id}"
    return OrgOut.of(org)


@router.get("/orgs/{org_id}", response_model=OrgOut, summary="One organisation", tags=["orgs"], responses=READ)
async def get_org(org_id: OrgId, request: Request, _: AdminUser) -> OrgOut:
    org = await _orgs(request).get(org_id)
    if org is None:
        raise not_found(f"organisation {org_id}")
    return OrgOut.of(org)


@router.delete(
    "/orgs/{org_id}",
    status_code=204,
    summary="Delete an organisation with its feeds, articles and crawl jobs",
    tags=["orgs"],
    responses=READ,
)
async def delete_org(org_id: OrgId, request: Request, principal: AdminUser) -> Response:
    org = await _orgs(request).get(org_id)
    if org is None or not await _orgs(request).delete(org_id):
        raise not_found(f"organisation {org_id}")
    await audit(request, principal, "org.delete", target_type="org", target_id=org_id, details={"name": org.name})
    return Response(status_code=204)


# -- users -----------------------------------------------------------------------------------


class UserList(BaseModel):
    items: list[UserOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(min_length=3, max_length=320, examples=["editor@example.org"])
    role: Literal["admin", "member"] = "member"
    org_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="Required for members")
    password: str = Field(min_length=1, max_length=1024, description="At least 12 characters")


class UserPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    is_active: bool | None = Field(default=None, description="false signs the user out and refuses their tokens")
    password: str | None = Field(default=None, min_length=1, max_length=1024)


async def _user_or_404(auth: AuthService, user_id: int) -> UserOut:
    user = await auth.users.get(user_id)
    if user is None:
        raise not_found(f"user {user_id}")
    return UserOut.of(user)


@router.get("/users", response_model=UserList, summary="Every user", tags=["users"], responses=LIST)
async def list_users(request: Request, _: AdminUser) -> UserList:
    return UserList(items=[UserOut.of(u) for u in await auth_service(request).users.list()])


@router.post("/users", response_model=UserOut, status_code=201, summary="Create a user", tags=["users"], responses=LIST)
async def create_user(body: UserCreate, request: Request, response: Response, principal: AdminUser) -> UserOut:
    auth = auth_service(request)
    if body.org_id is not None and await _orgs(request).get(body.org_id) is None:
        raise _invalid("org_id", f"no organisation with id {body.org_id}")
    try:
        user = await auth.create_user(body.email, role=body.role, org_id=body.org_id, password=body.password)
    except UserInputError as exc:
        raise _invalid(exc.field, str(exc)) from None
    await audit(
        request,
        principal,
        "user.create",
        target_type="user",
        target_id=user.id,
        details={"email": user.email, "role": user.role, "org_id": user.org_id},
    )
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserOut.of(user)


@router.get("/users/{user_id}", response_model=UserOut, summary="One user", tags=["users"], responses=READ)
async def get_user(user_id: UserId, request: Request, _: AdminUser) -> UserOut:
    return await _user_or_404(auth_service(request), user_id)


@router.patch(
    "/users/{user_id}",
    response_model=UserOut,
    summary="Deactivate or reactivate a user, or set their password",
    tags=["users"],
    responses=READ,
)
async def patch_user(user_id: UserId, body: UserPatch, request: Request, principal: AdminUser) -> UserOut:
    auth = auth_service(request)
    user = await auth.users.get(user_id)
    if user is None:
        raise not_found(f"user {user_id}")
    if body.is_active is False and user.id == principal.user_id:
        raise _invalid("is_active", "you cannot deactivate yourself")
    if body.password is not None:
        try:
            await auth.set_password(user, body.password)
        except UserInputError as exc:
            raise _invalid(exc.field, str(exc)) from None
    if body.is_active is not None:
        await auth.users.set_active(user.id, body.is_active)
        if not body.is_active:
            await auth.sessions.delete_for_user(user.id)
    details: dict[str, Any] = {"email": user.email}
    if body.is_active is not None:
        details["is_active"] = body.is_active
    if body.password is not None:
        details["password_changed"] = True
    await audit(request, principal, "user.update", target_type="user", target_id=user.id, details=details)
    return await _user_or_404(auth, user_id)


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
    user_id: int | None = Field(default=None, ge=1, le=2**63 - 1, description="The owner (default: yourself)")


@router.get(
    "/tokens", response_model=TokenList, summary="API tokens (never the secrets)", tags=["tokens"], responses=LIST
)
async def list_tokens(
    request: Request,
    _: AdminUser,
    user_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
) -> TokenList:
    return TokenList(items=[TokenOut.of(t) for t in await auth_service(request).tokens.list(user_id=user_id)])


@router.post(
    "/tokens",
    response_model=TokenCreated,
    status_code=201,
    summary="Create an API token; the response holds it once",
    tags=["tokens"],
    responses=LIST,
)
async def create_token(body: TokenCreate, request: Request, principal: AdminUser) -> TokenCreated:
    auth = auth_service(request)
    owner = await auth.users.get(body.user_id or principal.user_id)
    if owner is None:
        raise _invalid("user_id", f"no user with id {body.user_id}")
    try:
        token, record = await auth.create_token(owner, body.name)
    except UserInputError as exc:
        raise _invalid(exc.field, str(exc)) from None
    await audit(
        request,
        principal,
        "token.create",
        target_type="token",
        target_id=record.id,
        details={"owner": owner.email, "name": record.name},
    )
    return TokenCreated(token=token, **TokenOut.of(record).model_dump())


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="Revoke a token", tags=["tokens"], responses=READ)
async def revoke_token(token_id: TokenId, request: Request, principal: AdminUser) -> TokenOut:
    auth = auth_service(request)
    record = await auth.tokens.revoke(token_id, now=_now(request))
    if record is None:
        raise not_found(f"token {token_id}")
    await audit(
        request, principal, "token.revoke", target_type="token", target_id=token_id, details={"owner": record.email}
    )
    return TokenOut.of(record)


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
    _: AdminUser,
    action: Annotated[str | None, Query(max_length=100, examples=["task.run"])] = None,
    actor: Annotated[str | None, Query(max_length=320)] = None,
    target_type: Annotated[str | None, Query(max_length=50)] = None,
    target_id: Annotated[str | None, Query(max_length=200)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> AuditPage:
    events = await auth_service(request).audit.list(
        limit=limit + 1,
        before_id=before_id(cursor),
        action=action,
        actor=actor,
        target_type=target_type,
        target_id=target_id,
    )
    return AuditPage(
        items=[AuditOut.of(e) for e in events[:limit]], next_cursor=next_cursor([e.id for e in events], limit)
    )


# -- crawl jobs ----------------------------------------------------------------------------------


class JobOut(BaseModel):
    id: int
    org_id: int
    feed_id: int | None
    url: str
    status: str
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
    ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] | None = Field(
        default=None, max_length=10_000, description="Failed jobs to queue again; omit for every failed job"
    )


class Requeued(BaseModel):
    requeued: int


@router.get("/jobs", response_model=JobPage, summary="Crawl jobs, newest first", tags=["jobs"], responses=LIST)
async def list_jobs(
    request: Request,
    _: AdminUser,
    status: Annotated[JobStatus | None, Query()] = None,
    org_id: Annotated[int | None, Query(ge=1, le=2**63 - 1)] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> JobPage:
    store = _jobs(request)
    jobs = await store.list_jobs(status=status, org_id=org_id, limit=limit + 1, before_id=before_id(cursor))
    return JobPage(
        items=[JobOut.of(j) for j in jobs[:limit]],
        next_cursor=next_cursor([j.id for j in jobs], limit),
        counts=await store.counts_by_status(org_id),
    )


@router.post("/jobs/retry", response_model=Requeued, summary="Queue failed jobs again", tags=["jobs"], responses=LIST)
async def retry_jobs(request: Request, principal: AdminUser, body: JobRetry | None = None) -> Requeued:
    ids = body.ids if body is not None else None
    count = await _jobs(request).retry_failed(ids, now=_now(request))
    await audit(request, principal, "jobs.retry", target_type="job", details={"ids": ids, "requeued": count})
    return Requeued(requeued=count)


@router.post(
    "/jobs/{job_id}/retry",
    response_model=Requeued,
    summary="Queue one failed job again",
    tags=["jobs"],
    responses=error_responses(401, 403, 404, 409, 422),
)
async def retry_job(job_id: JobId, request: Request, principal: AdminUser) -> Requeued:
    count = await _jobs(request).retry_failed([job_id], now=_now(request))
    if count == 0:
        found = await _jobs(request).list_jobs(limit=1, before_id=job_id + 1)
        if not found or found[0].id != job_id:
            raise not_found(f"crawl job {job_id}")
        raise ApiError(409, f"crawl job {job_id} is {found[0].status}, not failed", code="not_failed")
    await audit(request, principal, "jobs.retry", target_type="job", target_id=job_id, details={"requeued": count})
    return Requeued(requeued=count)
