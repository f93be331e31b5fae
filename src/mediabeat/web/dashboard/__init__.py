"""The admin dashboard: server-rendered pages under /app/admin, the sign-in page and their static files."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from mediabeat.web.dashboard.render import PageDenied, error_page, page_denied

STATIC_DIR = Path(__file__).parent / "static"


def install_dashboard(app: FastAPI) -> None:
    """Add the dashboard pages, their static files and the handler that turns refusals into redirects or pages."""
    from mediabeat.web.dashboard import (
        account_pages,
        admin_pages,
        content_pages,
        monitor_pages,
        scheduler_pages,
        stories_pages,
    )

    app.mount("/static/dashboard", StaticFiles(directory=STATIC_DIR), name="dashboard-static")
    app.add_exception_handler(PageDenied, page_denied)
    app.state.error_page = error_page
    app.include_router(scheduler_pages.router)
    app.include_router(content_pages.router)
    app.include_router(account_pages.router)
    app.include_router(monitor_pages.router)
    app.include_router(stories_pages.router)
    app.include_router(admin_pages.router)
