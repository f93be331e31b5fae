"""HTTP request metrics: a count and a duration per method, route template and status.

The route label is the template the request matched (`/api/v1/scheduler/runs/{run_id}`),
never the raw path, so a crawler trying a million URLs adds one series, `<unmatched>`.
"""

from __future__ import annotations

import time

from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediabeat.telemetry import HTTP_REQUEST_DURATION, HTTP_REQUESTS

UNMATCHED = "<unmatched>"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_template(scope: Scope) -> str:
    """The path template of the route that answered `scope` (after routing), or `<unmatched>`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str) and template:
        return template
    app = scope.get("app")
    for candidate in getattr(app, "routes", ()):
        if isinstance(candidate, Mount) and candidate.matches(scope)[0] is Match.FULL:
            return f"{candidate.path}/{{path}}"
    return UNMATCHED


class HttpMetrics:
    """ASGI middleware: counts every HTTP response and observes how long it took."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if the app raises before it answers

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            method = scope["method"] if scope["method"] in METHODS else "other"
            route = route_template(scope)
            HTTP_REQUESTS.labels(method, route, str(status)).inc()
            HTTP_REQUEST_DURATION.labels(method, route).observe(time.perf_counter() - started)
