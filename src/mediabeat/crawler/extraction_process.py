"""The extraction process: `python -m mediabeat.crawler.extraction_process`, started by ExtractionPool.

It reads requests from stdin and answers each on stdout (articles.write_frame's messages:
a small pickle, then a page's bytes as they are) until stdin ends: the pool closed it, or
the parent died and the kernel closed it. Being the main module itself, it imports only
what extraction needs.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from typing import IO

from mediabeat.crawler.articles import answer, read_frame, write_frame


def heap_trimmer() -> Callable[[], object]:
    """glibc's malloc_trim(0): it gives back to the system the memory lxml and trafilatura freed; a no-op elsewhere.

    glibc keeps what a large page's trees freed: over 400 real pages a process grew from 87
    to 123 MB without it and stayed at 96 MB with it, for about 0.7 ms of CPU a page (1%).
    """
    trim = getattr(ctypes.CDLL(None), "malloc_trim", None) if os.name == "posix" else None
    if trim is None:
        return lambda: None
    return lambda: trim(0)


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until `requests` ends (or `replies` can no longer be written: the parent is gone)."""
    # The imports (most of a second) before "ready"; what the pages need later (justext's stop
    # lists, 27 MB) is loaded by the first page that needs it.
    import htmldate  # noqa: F401
    import trafilatura  # noqa: F401

    trim_heap = heap_trimmer()
    try:
        write_frame(replies, "ready")
        while True:
            try:
                request, html = read_frame(requests)
            except EOFError:
                return
            write_frame(replies, answer(request, html))
            del html
            trim_heap()  # after the answer is on its way: the worker does not wait for it
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
