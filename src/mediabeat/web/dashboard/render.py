"""Rendering and access for the dashboard pages: templates, security headers, who may see a page."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import sqlalchemy as sa
from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from mediabeat import __version__
from mediabeat.domain.access import Permission, refusal
from mediabeat.schedule.freshness import human_interval
from mediabeat.web.dashboard import labels, view
from mediabeat.web.deps import SESSION_COOKIE, Principal, auth_service

log = logging.getLogger("mediabeat.web")
TEMPLATES_DIR = Path(__file__).parent / "templates"

# No inline script or style anywhere: every script and stylesheet is a file under /static/dashboard.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = view.when
    env.filters["duration"] = view.duration
    env.filters["iso"] = view.iso
    env.filters["exact"] = view.exact
    env.filters["label"] = labels.label
    env.filters["interval"] = lambda seconds: human_interval(seconds) if seconds else "-"
    env.globals["result_items"] = labels.result_items
    env.globals["status_class"] = view.status_class
    env.globals["version"] = __version__
    env.globals["perm"] = Permission
    return env


ENV = _environment()


class PageDenied(Exception):
    """A page refused: anonymous visitors go to sign-in; others get an error page with this status."""

    def __init__(
        self, status: int, message: str, *, login_next: str | None = None, location: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.login_next = login_next
        self.location = location


async def page_denied(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, PageDenied)
    if exc.location is not None:
        return RedirectResponse(exc.location, status_code=303)
    if exc.login_next is not None:
        return RedirectResponse(f"/login?next={quote(exc.login_next, safe='/')}", status_code=303)
    return await error_page(request, exc.status, exc.message)


ERROR_TITLES = {
    401: "Sign in first",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    422: "Cannot show this page",
    500: "Something went wrong",
    503: "The database is unavailable",
}


async def error_page(request: Request, status: int, message: str) -> HTMLResponse:
    """The dashboard's page for a refusal or a failure (the API's error handlers use it for pages for people).

    An address no route knows still shows the signed-in user's navigation, unless the database is what failed.
    """
    if status < 500 and getattr(request.state, "dashboard_user", None) is None:
        try:
            await page_user(request)
        except sa.exc.SQLAlchemyError:  # the page still says what went wrong, without the navigation
            log.warning("could not look up the user for the %d page of %s", status, request.url.path)
    context = {"status": status, "message": message, "title": ERROR_TITLES.get(status, "Cannot show this page")}
    return render(request, "error.html", context, status=status)


DEFAULT_NEXT = "/app/admin/scheduler"


def safe_next(target: str | None) -> str:
    """A path on this site to return to after sign-in; anything else goes to the scheduler page.

    Browsers drop tabs and line breaks from a URL and read a backslash as a slash, so
    `/\t/evil.example` and `/\\evil.example` are other hosts to them: a target with any control
    character, whitespace or backslash is refused, and so is one that does not parse as a
    bare path (`//host`, `scheme:`).
    """
    if not target or not target.startswith("/") or "\\" in target:
        return DEFAULT_NEXT
    if any(c.isspace() or not c.isprintable() for c in target):
        return DEFAULT_NEXT
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith("/") or parts.path.startswith("//"):
        return DEFAULT_NEXT
    return target


async def page_user(request: Request) -> Principal | None:
    """The signed-in user of a page request (session cookie only), or None; never raises for a stale cookie."""
    cookie = request.cookies.get(SESSION_COOKIE)
    if not cookie:
        return None
    owner = await auth_service(request).owner_of_session(cookie)
    if owner is None:
        return None
    principal = Principal(
        owner.user_id, owner.email, owner.role, owner.org_id, "session", owner.credential_id, owner.csrf_token
    )
    request.state.dashboard_user = principal
    request.state.must_change_password = owner.must_change_password
    if principal.can(Permission.VIEW_SCHEDULER):  # the paused banner on every page: one primary-key read
        request.state.scheduler_pause = await request.app.state.services.scheduler.pause_state()
    return principal


ACCOUNT_PAGE = "/app/account"


def home_for(principal: Principal | None) -> str:
    """Where `/` sends someone: admins and operators to the scheduler, members to the articles, strangers to sign in."""
    if principal is None:
        return "/login"
    return "/app/admin/scheduler" if principal.can(Permission.VIEW_SCHEDULER) else "/app/articles"


def _this_page(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


async def account_page_user(request: Request) -> Principal:
    """Anyone signed in, including someone who must change their password (this is where they do it)."""
    principal = await page_user(request)
    if principal is None:
        raise PageDenied(401, "sign in", login_next=_this_page(request))
    return principal


async def signed_in_page(request: Request) -> Principal:
    """Anyone signed in (members read their organisation's articles); anonymous visitors are sent to sign in.

    A user whose password must change (the first admin's generated one) is sent to change it first.
    """
    principal = await account_page_user(request)
    if getattr(request.state, "must_change_password", False):
        raise PageDenied(303, "change your password", location=f"{ACCOUNT_PAGE}?next={quote(_this_page(request))}")
    return principal


def page_with(permission: Permission) -> Callable[[Request], Awaitable[Principal]]:
    """A page dependency: the signed-in user if their role has `permission`; anonymous visitors are sent to
    sign in, others get a 403 page that says who may see it."""

    async def check(request: Request) -> Principal:
        principal = await signed_in_page(request)
        if not principal.can(permission):
            raise PageDenied(403, f"{principal.email} is signed in, but {refusal(principal.role, permission)}.")
        return principal

    check.__name__ = f"page_needs_{permission.value}"
    return check


# The users a page accepts, by what it shows: pages depend on a permission, never on a role.
SchedulerPage = Annotated[Principal, Depends(page_with(Permission.VIEW_SCHEDULER))]
TaskEditorPage = Annotated[Principal, Depends(page_with(Permission.EDIT_TASKS))]
QueuePage = Annotated[Principal, Depends(page_with(Permission.VIEW_CRAWL_QUEUE))]
ContentPage = Annotated[Principal, Depends(page_with(Permission.READ_CONTENT))]
ContentEditorPage = Annotated[Principal, Depends(page_with(Permission.EDIT_CONTENT))]
UsersPage = Annotated[Principal, Depends(page_with(Permission.MANAGE_USERS))]
AuditPage = Annotated[Principal, Depends(page_with(Permission.READ_AUDIT))]


@dataclass(frozen=True, slots=True)
class Nav:
    key: str
    label: str
    href: str
    permission: Permission


NAV = (
    Nav("scheduler", "Scheduler", "/app/admin/scheduler", Permission.VIEW_SCHEDULER),
    Nav("runs", "Runs", "/app/admin/scheduler/runs", Permission.VIEW_SCHEDULER),
    Nav("feeds", "Feeds", "/app/admin/feeds", Permission.VIEW_CRAWL_QUEUE),
    Nav("jobs", "Crawl jobs", "/app/admin/jobs", Permission.VIEW_CRAWL_QUEUE),
    Nav("articles", "Articles", "/app/articles", Permission.READ_CONTENT),
    Nav("monitors", "Monitors", "/app/monitors", Permission.READ_CONTENT),
    Nav("stories", "Stories", "/app/stories", Permission.READ_CONTENT),
    Nav("users", "Users", "/app/admin/users", Permission.MANAGE_USERS),
    Nav("tokens", "API tokens", "/app/admin/tokens", Permission.MANAGE_USERS),
    Nav("audit", "Audit log", "/app/admin/audit", Permission.READ_AUDIT),
)
MEMBER_NAV = (
    Nav("feeds", "Feeds", "/app/feeds", Permission.EDIT_CONTENT),
    Nav("articles", "Articles", "/app/articles", Permission.READ_CONTENT),
    Nav("monitors", "Monitors", "/app/monitors", Permission.READ_CONTENT),
    Nav("stories", "Stories", "/app/stories", Permission.READ_CONTENT),
)


def nav_for(principal: Principal | None) -> tuple[Nav, ...]:
    """The navigation: only the pages the user's role may open (the admin's full one for a stranger's error page)."""
    if principal is None:
        return NAV
    entries = NAV if principal.can(Permission.VIEW_SCHEDULER) else MEMBER_NAV
    return tuple(n for n in entries if principal.can(n.permission))


def render(request: Request, template: str, context: dict[str, Any], *, status: int = 200) -> HTMLResponse:
    """A page with the security headers; `now` is the server's clock so relative times agree with it."""
    principal: Principal | None = context.get("user", getattr(request.state, "dashboard_user", None))
    values = {
        "request_path": request.url.path,
        "nav": nav_for(principal),
        "user": principal,
        "csrf_token": principal.csrf_token if principal is not None else "",
        "scheduler_pause": getattr(request.state, "scheduler_pause", None),
        "now": request.app.state.services.clock.now(),
        **context,
    }
    html = ENV.get_template(template).render(values)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)
