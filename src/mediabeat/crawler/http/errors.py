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


class FetchError(Exception):
    """A request that produced no usable response; the message is for people, `kind` for code."""

    def __init__(self, kind: FetchErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind
