"""glibc's allocator, told to keep less of what a crawl frees; no-ops where the C library is not glibc.

A crawling process allocates and frees a page's buffers and trees over and over, from
several threads (the event loop, the database connections' threads, the extraction pool's).
glibc keeps freed memory for reuse: in one heap per thread (up to 8 per core), and, for blocks
of a few hundred kilobytes, in the heap rather than returning them, once such a block has been
freed (its threshold for mapping large blocks on their own rises to the largest freed). Over
the 922 real pages of bench/crawl_bench.py the worker peaked at 134 MB as glibc leaves it and
at 122 MB with two heaps and a fixed 128 KB threshold, for no measurable CPU.
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable

# mallopt(3) parameters (glibc's malloc.h).
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
ARENAS = 2
MMAP_THRESHOLD = 128 * 1024


def _glibc() -> ctypes.CDLL | None:
    if os.name != "posix":
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@functools.cache
def limit_fragmentation() -> bool:
    """At most ARENAS heaps, and blocks of MMAP_THRESHOLD or more mapped on their own; once per process."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_ARENA_MAX, ARENAS)) and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))


def trimmer() -> Callable[[], object]:
    """glibc's malloc_trim(0): it gives back to the system the memory lxml and trafilatura freed; a no-op elsewhere.

    glibc keeps what a large page's trees freed: over 400 real pages an extraction process
    grew from 87 to 123 MB without it and stayed at 96 MB with it, for about 0.7 ms of CPU a
    page (1%).
    """
    libc = _glibc()
    if libc is None:
        return lambda: None
    trim = libc.malloc_trim
    return lambda: trim(0)
