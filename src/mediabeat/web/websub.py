"""The WebSub callback: a hub's verification GET and its content-distribution POST (W3C WebSub 5.3, 8).

No sign-in here: the hub is not a user. A GET is answered only for a request we made (404
otherwise); a POST is checked against the subscription's secret (X-Hub-Signature) and, as the
spec says, acknowledged with 202 even when it is ignored; the reason is recorded on the subscription.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from mediabeat.domain.websub import VerificationRefused
from mediabeat.web.deps import content_services
from mediabeat.web.errors import error_body

log = logging.getLogger("mediabeat.websub")

router = APIRouter(prefix="/websub", tags=["websub"])


@router.get(
    "/callback/{token}",
    summary="WebSub verification: echo hub.challenge for a subscription we asked for",
    response_class=PlainTextResponse,
    responses={
        200: {"description": "The hub.challenge, as plain text (or empty after hub.mode=denied)"},
        404: {"description": "No such subscription, hub.topic does not match, or no request of ours is outstanding"},
    },
)
async def verify(token: str, request: Request) -> Response:
    service = content_services(request).websub
    try:
        challenge = await service.verify(token, dict(request.query_params))
    except VerificationRefused as exc:
        return JSONResponse(error_body("not_found", str(exc)), status_code=404)
    return PlainTextResponse(challenge)


@router.post(
    "/callback/{token}",
    summary="WebSub content distribution: a pushed feed, signed with the subscription's hub.secret",
    response_class=PlainTextResponse,
    status_code=202,
    responses={
        202: {"description": "Acknowledged: its entries were queued, or it was ignored with a recorded reason"},
        410: {"description": "No such subscription (or it was denied or ended): the hub should stop pushing"},
    },
)
async def receive(token: str, request: Request) -> Response:
    service = content_services(request).websub
    body, too_large = await _read_capped(request, service.max_body_bytes)
    outcome = await service.receive(token, body, request.headers.get("x-hub-signature"), too_large=too_large)
    if outcome.subscription_id is None:
        return JSONResponse(error_body("gone", "no such subscription: stop pushing"), status_code=410)
    if outcome.refused is not None:
        log.warning("websub push ignored for subscription %d: %s", outcome.subscription_id, outcome.refused.value)
        return PlainTextResponse(f"ignored: {outcome.refused.value}\n", status_code=202)
    return PlainTextResponse(f"queued {outcome.jobs_created} of {outcome.entries} entries\n", status_code=202)


async def _read_capped(request: Request, limit: int) -> tuple[bytes, bool]:
    """The body, or what was read of it and True once it passes `limit` (the rest is not read)."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            return bytes(body[:0]), True
    return bytes(body), False
