"""Liveness and readiness probes."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mediabeat import __version__
from mediabeat.db.engine import DatabaseReadOnly, DatabaseUnavailable

log = logging.getLogger("mediabeat.web")

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get(
    "/readyz",
    summary="Readiness: the database answers and accepts writes",
    responses={503: {"description": "Not ready: the database is unreachable or read-only"}},
)
async def readyz(request: Request) -> JSONResponse:
    services = request.app.state.services
    try:
        await services.db.check_writable()
    except DatabaseUnavailable as exc:
        log.error("not ready: %s", exc)  # the details (the database's address) stay in the log
        reason = "read_only" if isinstance(exc, DatabaseReadOnly) else "unreachable"
        message = "not ready: " + NOT_READY[reason]
        return JSONResponse(
            status_code=503,
            content={"error": {"code": "database_unavailable", "message": message, "details": {"reason": reason}}},
            headers={"Retry-After": "5"},
        )
    return JSONResponse({"status": "ready", "scheduler": services.settings.enable_scheduler})


NOT_READY = {
    "read_only": "the database answers but refuses writes (a read-only file or a standby)",
    "unreachable": "the database is unavailable",
}
