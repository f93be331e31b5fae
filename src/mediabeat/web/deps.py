"""Who is asking: credentials (API token or session cookie) to a Principal, and the checks on it."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from mediabeat.auth.service import AuthService
from mediabeat.domain.access import Permission, allows, refusal
from mediabeat.domain.content import Actor, Role
from mediabeat.domain.search import Reader
from mediabeat.services import ContentServices
from mediabeat.web.errors import ApiError

SESSION_COOKIE = "mediabeat_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FORM_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer mb_...`")
_cookie = APIKeyCookie(
    name=SESSION_COOKIE,
    auto_error=False,
    description="The dashboard session from POST /api/v1/auth/login; mutations also need the X-CSRF-Token header",
)


@dataclass(frozen=True, slots=True)
class Principal:
    """The signed-in user behind a request."""

    user_id: int
    email: str
    role: str
    org_id: int | None
    via: Literal["session", "token"]
    credential_id: int
    csrf_token: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN

    def can(self, permission: Permission) -> bool:
        """Whether the user's role has the permission (domain/access.py's table)."""
        return allows(self.role, permission)


def auth_service(request: Request) -> AuthService:
    """The process's one AuthService (built with the other services in app.build_services)."""
    service: AuthService = request.app.state.services.auth
    return service


def content_services(request: Request) -> ContentServices:
    services: ContentServices = request.app.state.services.content
    return services


def actor_of(request: Request, principal: Principal | None) -> Actor:
    """The principal as the audit record names them: email, user id, session or token, and address."""
    if principal is None:
        return Actor(name="anonymous", ip=client_ip(request))
    return Actor(name=principal.email, user_id=principal.user_id, via=principal.via, ip=client_ip(request))


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _principal(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    cookie: Annotated[str | None, Depends(_cookie)],
) -> Principal | None:
    """The principal, or None without credentials. Invalid credentials are a 401, never anonymous."""
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    auth = auth_service(request)
    principal: Principal | None = None
    if request.headers.get("authorization") is not None:
        if bearer is None:
            raise _unauthenticated("use `Authorization: Bearer <token>`")
        owner = await auth.owner_of_token(bearer.credentials)
        if owner is None:
            raise _unauthenticated("the API token is invalid or revoked")
        principal = Principal(owner.user_id, owner.email, owner.role, owner.org_id, "token", owner.credential_id)
    elif cookie:
        owner = await auth.owner_of_session(cookie)
        if owner is None:
            raise _unauthenticated("the session has expired; sign in again")
        principal = Principal(
            owner.user_id, owner.email, owner.role, owner.org_id, "session", owner.credential_id, owner.csrf_token
        )
    request.state.principal = principal
    return principal


def _unauthenticated(message: str) -> ApiError:
    return ApiError(401, message, code="unauthenticated", headers={"WWW-Authenticate": "Bearer"})


OptionalUser = Annotated[Principal | None, Depends(_principal)]


async def _current_user(principal: OptionalUser) -> Principal:
    if principal is None:
        raise _unauthenticated("sign in, or send an API token as `Authorization: Bearer <token>`")
    return principal


CurrentUser = Annotated[Principal, Depends(_current_user)]


def permitted(permission: Permission) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency: the signed-in user if their role has `permission`, else a 403 that says who may."""

    async def check(principal: CurrentUser) -> Principal:
        if not principal.can(permission):
            raise ApiError(403, refusal(principal.role, permission), code="forbidden")
        return principal

    check.__name__ = f"needs_{permission.value}"
    return check


# The users a route accepts, by what it does: routes depend on a permission, never on a role.
SchedulerViewer = Annotated[Principal, Depends(permitted(Permission.VIEW_SCHEDULER))]
TaskOperator = Annotated[Principal, Depends(permitted(Permission.OPERATE_TASKS))]
RunCanceller = Annotated[Principal, Depends(permitted(Permission.CANCEL_RUNS))]
SchedulerPauser = Annotated[Principal, Depends(permitted(Permission.PAUSE_SCHEDULER))]
TaskEditor = Annotated[Principal, Depends(permitted(Permission.EDIT_TASKS))]
QueueViewer = Annotated[Principal, Depends(permitted(Permission.VIEW_CRAWL_QUEUE))]
JobRetrier = Annotated[Principal, Depends(permitted(Permission.RETRY_JOBS))]
ContentReader = Annotated[Principal, Depends(permitted(Permission.READ_CONTENT))]
ContentEditor = Annotated[Principal, Depends(permitted(Permission.EDIT_CONTENT))]
OrgManager = Annotated[Principal, Depends(permitted(Permission.MANAGE_ORGS))]
UserManager = Annotated[Principal, Depends(permitted(Permission.MANAGE_USERS))]
AuditReader = Annotated[Principal, Depends(permitted(Permission.READ_AUDIT))]


async def _feed_reader(principal: CurrentUser) -> Principal:
    """Feeds are read by who reads content (members: their own) and by who watches the crawl queue."""
    if not (principal.can(Permission.READ_CONTENT) or principal.can(Permission.VIEW_CRAWL_QUEUE)):
        raise ApiError(403, refusal(principal.role, Permission.READ_CONTENT), code="forbidden")
    return principal


FeedReader = Annotated[Principal, Depends(_feed_reader)]


async def require_csrf(request: Request, principal: OptionalUser) -> None:
    """For a cookie-authenticated mutation, the session's CSRF token must come back.

    It is read from the X-CSRF-Token header, or from a `csrf_token` form field. Token-authenticated
    and safe (GET/HEAD/OPTIONS) requests need none.
    """
    if principal is None or principal.via != "session" or request.method in SAFE_METHODS:
        return
    sent = request.headers.get(CSRF_HEADER)
    if sent is None and request.headers.get("content-type", "").startswith(
        ("application/x-www-form-urlencoded", "multipart/form-data")
    ):
        value = (await request.form()).get(CSRF_FORM_FIELD)
        sent = value if isinstance(value, str) else None
    expected = principal.csrf_token or ""
    if not sent or not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(403, f"missing or wrong CSRF token: send the {CSRF_HEADER} header", code="csrf_failed")


def reader_of(principal: Principal) -> Reader:
    """Who searches, as the search service sees them: one who reaches every organisation, or a member of one."""
    return Reader(is_admin=principal.can(Permission.EVERY_ORGANISATION), org_id=principal.org_id)


def can_access_org(principal: Principal, org_id: int | None) -> bool:
    """Admins (and operators, for the feeds they may read) reach every organisation; a member only their own."""
    return principal.can(Permission.EVERY_ORGANISATION) or (org_id is not None and principal.org_id == org_id)
