"""One error shape for every response: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from mediabeat.db.engine import DatabaseUnavailable, describe_db_error
from mediabeat.domain.invalid import describe

log = logging.getLogger("mediabeat.web")

# What the database's absence looks like in the middle of a request: a refused or broken
# connection, a pool with no connection to give, SQLite's locked or missing file.
DATABASE_DOWN = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)
# Pages for people (HTML errors, when the dashboard has installed a renderer); the API is always JSON.
PAGE_PREFIXES = ("/app", "/login")
API_PREFIX = "/api/"
ErrorPage = Callable[[Request, int, str], Awaitable[Response]]

CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}


class ErrorInfo(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorResponse(BaseModel):
    """Every error: a stable machine-readable code, a sentence for people, and details when useful."""

    error: ErrorInfo


class ApiError(StarletteHTTPException):
    """An HTTP error with a stable code and optional details."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status_code=status_code, detail=message, headers=headers)
        self.code = code or CODES.get(status_code, "error")
        self.details = details


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "details": details}}


def not_found(what: str) -> ApiError:
    return ApiError(404, f"{what} not found")


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in {"body", "query", "path", "header", "cookie"}:
        parts = parts[1:] or parts
    return ".".join(parts)


def _detail(err: Mapping[str, Any]) -> dict[str, Any]:
    """One validation error for people: what the field accepts (and got), said in words, not the validator's."""
    loc, kind = tuple(err.get("loc", ())), err.get("type")
    if kind == "json_invalid":  # loc is ("body", position)
        where = f" at position {loc[1]}" if len(loc) > 1 and isinstance(loc[1], int) else ""
        return {"field": "body", "message": f"not valid JSON{where}", "type": kind}
    if loc == ("body",) and kind in {"model_attributes_type", "dict_type"}:
        return {"field": "body", "message": "must be a JSON object", "type": kind}
    return {"field": _field(loc), "message": describe(err), "type": kind}


def wants_page(path: str, accept: str) -> bool:
    """Whether an error goes to a person (an HTML page) rather than a program (the JSON shape).

    The API always answers JSON; elsewhere an Accept that names JSON but not HTML gets JSON too. Dashboard
    paths, and anything a browser asks for (it sends text/html first), get a page.
    """
    if path.startswith(API_PREFIX):
        return False
    accept = accept.lower()
    if "json" in accept and "text/html" not in accept:
        return False
    return path.startswith(PAGE_PREFIXES) or "text/html" in accept


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    code = exc.code if isinstance(exc, ApiError) else CODES.get(exc.status_code, "error")
    details = exc.details if isinstance(exc, ApiError) else None
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    status = exc.status_code
    if status == 400 and not isinstance(exc, ApiError):
        # The framework's "error parsing the body": invalid input like any other, so a 422.
        status, code = 422, "invalid"
        message = "invalid input: body: not valid JSON"
        details = [{"field": "body", "message": "not valid JSON", "type": "json_invalid"}]
    page = await _page(request, status, _sentence(status, message))
    if page is not None:
        page.headers.update(exc.headers or {})
        return page
    return JSONResponse(error_body(code, message, details), status_code=status, headers=exc.headers)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [_detail(err) for err in exc.errors()]
    first = details[0] if details else {"field": "?", "message": "invalid"}
    message = f"invalid input: {first['field']}: {first['message']}"
    sentence = f"The address has a value this page cannot use ({first['field']}: {first['message']})."
    page = await _page(request, 422, sentence)
    if page is not None:
        return page
    return JSONResponse(error_body("invalid", message, details), status_code=422)


# The framework's bare messages ("Not Found"), said the way the rest of the dashboard speaks.
PAGE_SENTENCES = {
    404: "There is no page at this address. Check the link, or start again from the dashboard.",
    405: "This address does not take that kind of request.",
}


def _sentence(status: int, message: str) -> str:
    return PAGE_SENTENCES.get(status, message) if message in {"Not Found", "Method Not Allowed"} else message


async def _page(request: Request, status: int, message: str) -> Response | None:
    """An HTML error page for a person (see wants_page), when the dashboard is installed."""
    render: ErrorPage | None = getattr(request.app.state, "error_page", None)
    if render is None or not wants_page(request.url.path, request.headers.get("accept", "")):
        return None
    try:
        return await render(request, status, message)
    except Exception:  # the page itself failed: the JSON error below still says what happened
        log.exception("could not render the %d page for %s", status, request.url.path)
        return None


# What a client learns of an outage: the database's address and the driver's reason are for the log only.
UNAVAILABLE_MESSAGE = "the database is unavailable; try again in a few seconds, and tell an operator if it lasts"


async def _unavailable(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, _Logged):
        log.error("%s %s: %s", request.method, request.url.path, exc)
    message = UNAVAILABLE_MESSAGE
    page = await _page(request, 503, message)
    headers = {"Retry-After": "5"}
    if page is not None:
        page.headers.update(headers)
        return page
    return JSONResponse(error_body("database_unavailable", message), status_code=503, headers=headers)


async def _database_down(request: Request, exc: Exception) -> Response:
    services = getattr(request.app.state, "services", None)
    message = describe_db_error(services.settings.database_url if services is not None else "", exc)
    log.error("%s %s: %s", request.method, request.url.path, message)  # an outage, not a bug: one line
    return await _unavailable(request, _Logged(message))


class _Logged(DatabaseUnavailable):
    """An outage already logged with its details."""


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "an unexpected error occurred; it has been logged"
    return await _page(request, 500, message) or JSONResponse(error_body("internal_error", message), status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(DatabaseUnavailable, _unavailable)
    for kind in DATABASE_DOWN:
        app.add_exception_handler(kind, _database_down)
    app.add_exception_handler(Exception, _unexpected)


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route may answer, all with ErrorResponse."""
    descriptions = {
        400: "Bad request",
        401: "Not signed in, or the credentials are invalid",
        403: "Signed in but not allowed (or a missing CSRF token)",
        404: "Not found",
        409: "Conflict with the current state",
        422: "Invalid input; details name each field",
        429: "Too many attempts",
        503: "The database is unavailable",
    }
    return {s: {"model": ErrorResponse, "description": descriptions.get(s, "Error")} for s in statuses}
