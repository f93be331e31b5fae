"""Liveness and readiness probes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from mediabeat import __version__
from mediabeat.db.engine import DatabaseUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz", summary="Readiness: the database answers", responses={503: {"description": "Not ready"}})
async def readyz(request: Request) -> JSONResponse:
    services = request.app.state.services
    try:
        await services.db.ping()
    except DatabaseUnavailable as exc:
        return JSONResponse(
            status_code=503,
            content={"error": {"code": "database_unavailable", "message": str(exc), "details": None}},
        )
    return JSONResponse({"status": "ready", "scheduler": services.settings.enable_scheduler})
