"""Why a request produced no usable response: one enum of kinds, carried by FetchError."""

from __future__ import annotations

from enum import StrEnum


class FetchErrorKind(StrEnum):
    """A machine-readable cause; its value is what feeds and run results record."""

    TIMEOUT = "timeout"
    BAD_URL = "bad_url"
    BLOCKED = "blocked"
    NETWORK = "network"
    TOO_LARGE = "too_large"
    BAD_ENCODING = "bad_encoding"
    REDIRECT_LOOP = "redirect_loop"
    TOO_MANY_REDIRECTS = "too_many_redirects"
    COOLING_DOWN = "cooling_down"  # the host asked us to stay away (429/503 Retry-After): nothing was sent


class FetchError(Exception):
    """A request that produced no usable response; the message is for people, `kind` for code."""

    def __init__(self, kind: FetchErrorKind, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after  # COOLING_DOWN: seconds until the host may be asked again
