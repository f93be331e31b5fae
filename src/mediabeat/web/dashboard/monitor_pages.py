"""Monitors in the dashboard: members manage their organisation's, admins every one's; each with its matches.

Plain HTML forms (no script needed); a form carries the session's CSRF token, checked here.
A monitor's two secrets (the Atom feed URL and the webhook's signing key) are shown once, on
the page that answers its creation.
"""

from __future__ import annotations

import hmac
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from mediabeat.domain.content import ContentError
from mediabeat.domain.ids import parse_id
from mediabeat.domain.monitors import Digest, MonitorNotFound, MonitorRecord, NewMonitor
from mediabeat.web.dashboard.render import ContentEditorPage, ContentPage, PageDenied, render
from mediabeat.web.deps import Principal, actor_of, can_access_org, content_services

router = APIRouter(include_in_schema=False)
MATCHES_SHOWN = 50


def _form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


async def _checked_form(request: Request, user: Principal) -> Any:
    form = await request.form()
    sent = _form_text(form, "csrf_token")
    if not sent or not user.csrf_token or not hmac.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise PageDenied(403, "The form has expired: reload the page and try again.")
    return form


async def _list_context(request: Request, user: Principal) -> dict[str, Any]:
    content = content_services(request)
    scope = None if user.is_admin else user.org_id if user.org_id is not None else -1
    orgs = await content.orgs.list()
    return {
        "user": user,
        "title": "Monitors",
        "active": "monitors",
        "monitors": await content.monitors.list(org_id=scope),
        "orgs": orgs if user.is_admin else [o for o in orgs if o.id == user.org_id],
        "org_names": {o.id: o.name for o in orgs},
        "digests": [d.value for d in Digest],
        "form": {},
        "error": None,
    }


@router.get("/app/monitors", response_class=HTMLResponse)
async def monitors_page(request: Request, user: ContentPage) -> HTMLResponse:
    return render(request, "monitors.html", await _list_context(request, user))


@router.post("/app/monitors", response_class=HTMLResponse)
async def create_monitor(request: Request, user: ContentEditorPage) -> HTMLResponse:
    form = await _checked_form(request, user)
    values = {k: _form_text(form, k) for k in ("name", "query", "webhook_url", "email", "digest", "org_id")}
    org_id = parse_id(values["org_id"]) if user.is_admin else user.org_id
    context = await _list_context(request, user)
    try:
        if org_id is None or not can_access_org(user, org_id):
            raise ContentError("choose the organisation the monitor belongs to")
        digest = Digest(values["digest"]) if values["digest"] in Digest.__members__.values() else Digest.NONE
        new = NewMonitor(
            name=values["name"],
            query=values["query"],
            webhook_url=values["webhook_url"] or None,
            email=values["email"] or None,
            digest=digest,
        )
        created = await content_services(request).monitors.create(org_id, new, actor_of(request, user))
    except ContentError as exc:
        return render(request, "monitors.html", {**context, "form": values, "error": str(exc)}, status=422)
    return await _detail(request, user, created.monitor, secrets=(created.feed_token, created.webhook_secret))


async def _own_monitor(request: Request, user: Principal, raw_id: str) -> MonitorRecord:
    monitor_id = parse_id(raw_id)
    try:
        monitor = await content_services(request).monitors.get(monitor_id or 0)
    except MonitorNotFound:
        raise PageDenied(404, "No such monitor.") from None
    if not can_access_org(user, monitor.org_id):
        raise PageDenied(404, "No such monitor.")
    return monitor


async def _detail(
    request: Request, user: Principal, monitor: MonitorRecord, *, secrets: tuple[str, str | None] | None = None
) -> HTMLResponse:
    service = content_services(request).monitors
    base = str(request.base_url).rstrip("/")
    return render(
        request,
        "monitor.html",
        {
            "user": user,
            "title": f"Monitor {monitor.name}",
            "active": "monitors",
            "monitor": monitor,
            "matches": await service.matches(monitor.id, limit=MATCHES_SHOWN),
            "match_count": await service.match_count(monitor.id),
            "deliveries": await service.deliveries_of(monitor.id, limit=10),
            "feed_url": f"{base}/monitors/{secrets[0]}.atom" if secrets else None,
            "webhook_secret": secrets[1] if secrets else None,
        },
    )


@router.get("/app/monitors/{monitor_id}", response_class=HTMLResponse)
async def monitor_page(
    request: Request, user: ContentPage, monitor_id: Annotated[str, Path(max_length=20)]
) -> HTMLResponse:
    return await _detail(request, user, await _own_monitor(request, user, monitor_id))


@router.post("/app/monitors/{monitor_id}/delete", response_class=HTMLResponse)
async def delete_monitor(
    request: Request, user: ContentEditorPage, monitor_id: Annotated[str, Path(max_length=20)]
) -> Response:
    await _checked_form(request, user)
    monitor = await _own_monitor(request, user, monitor_id)
    await content_services(request).monitors.delete(monitor.id, actor_of(request, user))
    return RedirectResponse("/app/monitors", status_code=303)


@router.post("/app/monitors/{monitor_id}/feed-url", response_class=HTMLResponse)
async def new_feed_url(
    request: Request, user: ContentEditorPage, monitor_id: Annotated[str, Path(max_length=20)]
) -> Response:
    await _checked_form(request, user)
    monitor = await _own_monitor(request, user, monitor_id)
    token = await content_services(request).monitors.rotate_feed_token(monitor.id, actor_of(request, user))
    return await _detail(request, user, monitor, secrets=(token, None))
