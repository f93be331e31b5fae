"""The admins' pages for people and access: users, API tokens and the audit record.

The pages read through the same services as the API's /users, /tokens and /audit; their
forms send changes to those API routes from dashboard.js, with the session's CSRF token.
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from mediabeat.domain.content import AuditFilter, Role
from mediabeat.domain.ids import clamp_id
from mediabeat.web.dashboard.render import AuditPage, UsersPage, render
from mediabeat.web.deps import content_services

router = APIRouter(include_in_schema=False)

AUDIT_PAGE = 50
ROLES = [r.value for r in Role]


@router.get("/app/admin/users", response_class=HTMLResponse)
async def users_page(request: Request, user: UsersPage) -> HTMLResponse:
    """Every user with their role and state; forms to add one, change a role, (de)activate, reset a password."""
    content = content_services(request)
    users = await content.accounts.list_users()
    orgs = await content.orgs.list()
    return render(
        request,
        "users.html",
        {
            "user": user,
            "title": "Users",
            "active": "users",
            "users": users,
            "orgs": orgs,
            "roles": ROLES,
            "counts": {
                "all": len(users),
                "admins": sum(1 for u in users if u.role == Role.ADMIN),
                "inactive": sum(1 for u in users if not u.is_active),
            },
        },
    )


@router.get("/app/admin/tokens", response_class=HTMLResponse)
async def tokens_page(request: Request, user: UsersPage) -> HTMLResponse:
    """Every API token (never the secret): who owns it, when it was last used; create and revoke."""
    accounts = content_services(request).accounts
    tokens = await accounts.list_tokens()
    users = await accounts.list_users()
    return render(
        request,
        "tokens.html",
        {
            "user": user,
            "title": "API tokens",
            "active": "tokens",
            "tokens": tokens,
            "owners": [u for u in users if u.is_active],
            "active_count": sum(1 for t in tokens if t.revoked_at is None),
        },
    )


@router.get("/app/admin/audit", response_class=HTMLResponse)
async def audit_page(
    request: Request,
    user: AuditPage,
    actor: Annotated[str | None, Query(max_length=320)] = None,
    action: Annotated[str | None, Query(max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=20, pattern=r"^[0-9]*$")] = None,
) -> HTMLResponse:
    """The audit record, newest first, 50 a page, filtered by actor and action."""
    actor = (actor or "").strip() or None
    action = (action or "").strip() or None
    before = clamp_id(int(cursor)) if cursor else None
    query = AuditFilter(actor=actor, action=action, before_id=before, limit=AUDIT_PAGE + 1)
    events = await content_services(request).audit.list(query)
    more = len(events) > AUDIT_PAGE
    events = events[:AUDIT_PAGE]
    details = {e.id: json.dumps(e.details, ensure_ascii=False, sort_keys=True) if e.details else "" for e in events}
    return render(
        request,
        "audit.html",
        {
            "user": user,
            "title": "Audit log",
            "active": "audit",
            "events": events,
            "details": details,
            "actor": actor or "",
            "action": action or "",
            "next_cursor": str(events[-1].id) if more and events else None,
            "paged": cursor is not None,
        },
    )
