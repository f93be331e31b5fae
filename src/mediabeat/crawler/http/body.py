"""Reading a response body: decoded by us (gzip, deflate), and capped on the bytes it decompresses to.

aiohttp's own decompression is off, so a gzip bomb stops at the limit instead of inflating in memory.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from mediabeat.crawler.http.errors import FetchError, FetchErrorKind


class Decoder(Protocol):
    @property
    def unconsumed_tail(self) -> bytes: ...

    def decompress(self, data: bytes, max_length: int) -> bytes: ...

    def flush(self) -> bytes: ...


@dataclass
class CappedBody:
    """The bytes read so far; FetchError(TOO_LARGE) as soon as they pass `limit`."""

    limit: int
    data: bytearray = field(default_factory=bytearray)

    def add(self, chunk: bytes) -> None:
        self.data += chunk
        if len(self.data) > self.limit:
            raise FetchError(FetchErrorKind.TOO_LARGE, f"body larger than {self.limit} bytes")

    @property
    def room(self) -> int:
        """How much more a decoder may produce: what still fits, +1 to notice overflow."""
        return self.limit - len(self.data) + 1


class _GzipDecoder:
    def __init__(self) -> None:
        self._inner: Any = zlib.decompressobj(zlib.MAX_WBITS | 16)

    @property
    def unconsumed_tail(self) -> bytes:
        return bytes(self._inner.unconsumed_tail)

    def decompress(self, data: bytes, max_length: int) -> bytes:
        return bytes(self._inner.decompress(data, max_length))

    def flush(self) -> bytes:
        return bytes(self._inner.flush())


class _DeflateDecoder(_GzipDecoder):
    """Content-Encoding: deflate is zlib-wrapped by the spec and raw deflate in practice; accept both."""

    def __init__(self) -> None:
        self._inner = zlib.decompressobj()
        self._first = True

    def decompress(self, data: bytes, max_length: int) -> bytes:
        if self._first:
            self._first = False
            try:
                return bytes(self._inner.decompress(data, max_length))
            except zlib.error:
                self._inner = zlib.decompressobj(-zlib.MAX_WBITS)
        return bytes(self._inner.decompress(data, max_length))


def decoder_for(headers: Mapping[str, str]) -> Decoder | None:
    """The decoder for the response's Content-Encoding; None for identity."""
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding in ("", "identity"):
        return None
    if encoding in ("gzip", "x-gzip"):
        return _GzipDecoder()
    if encoding == "deflate":
        return _DeflateDecoder()
    raise FetchError(FetchErrorKind.BAD_ENCODING, f"unsupported Content-Encoding {encoding!r}")


async def read_capped(chunks: AsyncIterable[bytes], headers: Mapping[str, str], limit: int) -> bytes:
    """The decoded body, at most `limit` bytes both as sent and as decoded; FetchError otherwise."""
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise FetchError(FetchErrorKind.TOO_LARGE, f"body of {declared} bytes is larger than {limit} bytes")
    decoder = decoder_for(headers)
    body = CappedBody(limit)
    raw_total = 0
    async for chunk in chunks:
        raw_total += len(chunk)
        if raw_total > limit:
            raise FetchError(FetchErrorKind.TOO_LARGE, f"body larger than {limit} bytes")
        if decoder is None:
            body.add(chunk)
            continue
        body.add(decoder.decompress(chunk, body.room))
        while decoder.unconsumed_tail:
            body.add(decoder.decompress(decoder.unconsumed_tail, body.room))
    if decoder is not None:
        body.add(decoder.flush())
    return bytes(body.data)
