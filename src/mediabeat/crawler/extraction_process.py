"""The extraction process: `python -m mediabeat.crawler.extraction_process`, started by ExtractionPool.

It reads requests from stdin and answers each on stdout (articles.write_frame's messages:
a small pickle, then a page's bytes as they are) until stdin ends: the pool closed it, or
the parent died and the kernel closed it. Being the main module itself, it imports only
what extraction needs.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import IO, Any

from mediabeat.crawler.articles import extract_article, read_frame, write_frame

WARM_UP_PAGE = b"<html><body><article><p>warm up</p></article></body></html>"


def answer(request: tuple[Any, ...], html: bytes) -> Any:
    """The answer to one request on one page: ("extract", url, infer_date), or ("size",) for its length."""
    kind, *rest = request
    if kind == "size":
        return len(html)
    url, infer_date = rest
    return extract_article(html, url, infer_date)


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until `requests` ends (or `replies` can no longer be written: the parent is gone)."""
    extract_article(WARM_UP_PAGE, "http://127.0.0.1/")  # lazy imports and justext's stop lists, before "ready"
    try:
        write_frame(replies, "ready")
        while True:
            try:
                request, html = read_frame(requests)
            except EOFError:
                return
            write_frame(replies, answer(request, html))
    except BrokenPipeError:
        return


def main() -> None:
    # Ctrl-C reaches the whole process group: the parent stops its processes, these stay quiet.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # The replies get their own copy of stdout; whatever a library prints goes to stderr instead.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    serve(sys.stdin.buffer, replies)


if __name__ == "__main__":
    main()
