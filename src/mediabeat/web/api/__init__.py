"""The JSON API under /api/v1: routers, error handlers, authentication."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import Depends, FastAPI

from mediabeat.domain.content import ContentError
from mediabeat.web.api.common import content_error
from mediabeat.web.deps import require_csrf
from mediabeat.web.errors import install_error_handlers

if TYPE_CHECKING:
    from mediabeat.app import Services


def install_api(app: FastAPI, services: Services) -> None:
    """Add the API and its error handlers to the app (the services, auth included, are app.state.services)."""
    from mediabeat.web import metrics
    from mediabeat.web.api import admin, auth, content, monitors, nodes, scheduler, search, stories, task_alerts

    install_error_handlers(app)
    app.add_exception_handler(ContentError, content_error)
    app.include_router(auth.router)
    csrf = [Depends(require_csrf)]
    app.include_router(scheduler.router, dependencies=csrf)
    app.include_router(task_alerts.router, dependencies=csrf)
    app.include_router(nodes.router)
    app.include_router(search.router, dependencies=csrf)  # before content's /articles/{article_id}
    app.include_router(content.router, dependencies=csrf)
    app.include_router(admin.router, dependencies=csrf)
    app.include_router(monitors.router, dependencies=csrf)
    app.include_router(monitors.feed_router)
    app.include_router(stories.router)
    app.include_router(metrics.router)
