"""Sign-in for the dashboard: a session cookie (HttpOnly, SameSite=Lax, Secure over https) and a CSRF token."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from mediabeat.auth.service import InvalidCredentials, LoginThrottled, UserInputError
from mediabeat.web.api.common import UserOut, audit
from mediabeat.web.deps import SESSION_COOKIE, CurrentUser, Principal, auth_service, client_ip, require_csrf
from mediabeat.web.errors import ApiError, error_responses, not_found

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])


class LoginIn(BaseModel):
    email: str = Field(min_length=1, max_length=320)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    user: UserOut
    csrf_token: str | None = Field(
        description="Send it back as the X-CSRF-Token header on every mutation made with the session cookie"
    )


class PasswordChangeIn(BaseModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = Field(min_length=1, max_length=1024)


class LoggedOut(BaseModel):
    signed_out: bool


def _secure(request: Request) -> bool:
    public_url = auth_service(request).settings.public_url or ""
    return request.url.scheme == "https" or public_url.startswith("https://")


@router.post(
    "/login",
    response_model=SessionOut,
    summary="Sign in with email and password; sets the session cookie",
    responses=error_responses(401, 422, 429),
)
async def login(body: LoginIn, request: Request, response: Response) -> SessionOut:
    auth = auth_service(request)
    try:
        signed_in = await auth.login(
            body.email, body.password, ip=client_ip(request), user_agent=request.headers.get("user-agent")
        )
    except InvalidCredentials as exc:
        raise ApiError(401, str(exc), code="invalid_credentials") from None
    except LoginThrottled as exc:
        raise ApiError(429, str(exc), code="too_many_attempts", headers={"Retry-After": str(exc.retry_after)}) from None
    _set_session_cookie(request, response, signed_in.session_id)
    user = await auth.users.get(signed_in.user.id)
    return SessionOut(user=UserOut.of(user or signed_in.user), csrf_token=signed_in.csrf_token)


def _set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=int(auth_service(request).settings.session_hours * 3600),
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
    )


@router.post(
    "/password",
    response_model=SessionOut,
    summary="Change your own password; every session ends and a cookie session gets a new one",
    responses=error_responses(401, 403, 422, 429),
    dependencies=[Depends(require_csrf)],
)
async def change_password(
    body: PasswordChangeIn, request: Request, response: Response, principal: CurrentUser
) -> SessionOut:
    """The current password proves it is you. Other sessions (other browsers) are signed out."""
    auth = auth_service(request)
    try:
        changed = await auth.change_own_password(
            principal.user_id,
            body.current_password,
            body.new_password,
            ip=client_ip(request),
            user_agent=request.headers.get("user-agent"),
            new_session=principal.via == "session",
        )
    except InvalidCredentials as exc:
        raise ApiError(401, str(exc), code="unauthenticated") from None
    except LoginThrottled as exc:
        raise ApiError(429, str(exc), code="too_many_attempts", headers={"Retry-After": str(exc.retry_after)}) from None
    except UserInputError as exc:
        details = [{"field": exc.field, "message": str(exc), "type": "value_error"}]
        raise ApiError(422, f"invalid input: {exc.field}: {exc}", details=details) from None
    await audit(request, principal, "auth.password_changed", target_type="user", target_id=principal.user_id)
    if changed.session_id is not None:
        _set_session_cookie(request, response, changed.session_id)
    return SessionOut(user=UserOut.of(changed.user), csrf_token=changed.csrf_token)


@router.post(
    "/logout",
    response_model=LoggedOut,
    summary="End the session and clear its cookie",
    responses=error_responses(403),
)
async def logout(request: Request, response: Response) -> LoggedOut:
    """Ends the session of the cookie. A live session must send its CSRF token; an expired one is just cleared."""
    auth = auth_service(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    owner = await auth.owner_of_session(cookie) if cookie else None
    if cookie and owner is not None:
        principal = Principal(
            owner.user_id, owner.email, owner.role, owner.org_id, "session", owner.credential_id, owner.csrf_token
        )
        await require_csrf(request, principal)
        await auth.sessions.delete(cookie)
        await audit(request, principal, "auth.logout", target_type="user", target_id=principal.user_id)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request))
    return LoggedOut(signed_out=True)


@router.get(
    "/me",
    response_model=SessionOut,
    summary="The signed-in user (and the session's CSRF token)",
    responses=error_responses(401),
)
async def me(request: Request, principal: CurrentUser) -> SessionOut:
    user = await auth_service(request).users.get(principal.user_id)
    if user is None:
        raise not_found("user")
    return SessionOut(user=UserOut.of(user), csrf_token=principal.csrf_token)
