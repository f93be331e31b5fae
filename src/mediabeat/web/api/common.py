"""Pieces shared by the API routers: the audit helper and the common response models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Path, Query, Request
from pydantic import BaseModel

from mediabeat.auth.service import AuthService
from mediabeat.db.stores.users import UserRecord
from mediabeat.web.deps import Principal, auth_service, client_ip


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
    auth: AuthService = auth_service(request)
    extra = dict(details or {})
    if principal is not None:
        extra.setdefault("via", principal.via)
    await auth.audit.record(
        actor=principal.email if principal else "anonymous",
        actor_user_id=principal.user_id if principal else None,
        action=action,
        target_type=target_type,
        target_id=target_id,
        details=extra or None,
        ip=client_ip(request),
        now=auth.clock.now(),
    )


MAX_ID = 2**63 - 1
Limit = Annotated[int, Query(ge=1, le=500, description="Page size (at most 500)")]
Cursor = Annotated[
    str | None, Query(max_length=40, pattern=r"^[0-9]+$", description="The next_cursor of the previous page")
]


def before_id(cursor: str | None) -> int | None:
    return min(int(cursor), MAX_ID) if cursor else None


def path_id(description: str) -> Any:
    return Path(ge=1, le=MAX_ID, description=description)


def next_cursor(ids: list[int], limit: int) -> str | None:
    """The cursor for the page after one fetched with limit + 1 rows."""
    return str(ids[limit - 1]) if len(ids) > limit else None
