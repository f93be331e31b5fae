"""The front door and the user's own account: `/` and `/app` by role, and the page to change one's password."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from mediabeat.web.dashboard.render import account_page_user, home_for, page_user, render, safe_next
from mediabeat.web.deps import Principal

router = APIRouter(include_in_schema=False)
AccountUser = Annotated[Principal, Depends(account_page_user)]


@router.get("/")
@router.get("/app")
@router.get("/app/")
async def front_door(request: Request) -> RedirectResponse:
    """A browser that opens the bare address lands on its own start page, or on sign-in."""
    return RedirectResponse(home_for(await page_user(request)), status_code=303)


@router.get("/app/account", response_class=HTMLResponse)
async def account_page(
    request: Request, user: AccountUser, next: Annotated[str | None, Query(max_length=2000)] = None
) -> HTMLResponse:
    """Change one's own password; the first admin's generated password is changed here before anything else."""
    must_change = bool(getattr(request.state, "must_change_password", False))
    target = safe_next(next)
    if target == safe_next(None):  # none given (or not a local path): the user's own start page
        target = home_for(user)
    return render(
        request,
        "account.html",
        {
            "user": user,
            "title": "Your account",
            "active": "account",
            "must_change": must_change,
            "next": target,
        },
    )
