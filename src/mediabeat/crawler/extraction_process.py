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
from typing import IO

from mediabeat.crawler import heap
from mediabeat.crawler.articles import answer, read_frame, write_frame


def serve(requests: IO[bytes], replies: IO[bytes]) -> None:
    """Answer requests until `requests` ends (or `replies` can no longer be written: the parent is gone)."""
    # The imports (most of a second) before "ready"; what the pages need later (justext's stop
    # lists, 27 MB) is loaded by the first page that needs it.
    import htmldate  # noqa: F401
    import trafilatura  # noqa: F401

    trim_heap = heap.trimmer()
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
