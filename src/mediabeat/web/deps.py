"""Who is asking: credentials (API token or session cookie) to a Principal, and the checks on it."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer

from mediabeat.auth.service import AuthService
from mediabeat.domain.content import Actor
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
        return self.role == "admin"


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


async def _admin_user(principal: CurrentUser) -> Principal:
    if not principal.is_admin:
        raise ApiError(403, "this needs an admin", code="forbidden")
    return principal


AdminUser = Annotated[Principal, Depends(_admin_user)]


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
    """Who searches, as the search service sees them: an admin, or a member of one organisation."""
    return Reader(is_admin=principal.is_admin, org_id=principal.org_id)


def can_access_org(principal: Principal, org_id: int | None) -> bool:
    """Admins reach every organisation; a member only their own."""
    return principal.is_admin or (org_id is not None and principal.org_id == org_id)
