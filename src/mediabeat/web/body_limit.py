"""A cap on request bodies, enforced before anything parses them or checks who is asking."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mediabeat.web.errors import ApiError, error_body


class RequestTooLarge(ApiError):
    """The body passed the limit while it was being read; the error handlers answer 413."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, too_large_message(limit), code="too_large", details={"max_bytes": limit})


def too_large_message(limit: int) -> str:
    return f"the request body is larger than the limit of {limit} bytes (MEDIABEAT_MAX_REQUEST_BYTES)"


def declared_length(scope: Scope) -> int | None:
    """The Content-Length the client sent, or None (absent, or chunked: the server has checked its form)."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and value.isdigit():
            return int(value)
    return None


class BodyLimit:
    """ASGI middleware: a declared length over `max_bytes` gets 413 at once, unread; a streamed body is counted.

    The count is made in `receive`, so a chunked body is cut off at the limit whoever reads it.
    The route's body parsing lets the RequestTooLarge through to the error handlers; if nothing
    handled it and no response has started, this middleware answers the 413 itself.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = declared_length(scope)
        if length is not None and length > self.max_bytes:
            await self._refuse(send)
            return
        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise RequestTooLarge(self.max_bytes)
            return message

        async def watching_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, watching_send)
        except RequestTooLarge:
            if started:
                raise
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(error_body("too_large", too_large_message(self.max_bytes), {"max_bytes": self.max_bytes}))
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body.encode()})
