"""Article extraction with trafilatura, in worker processes so every core works.

Each extraction process is a plain `python -m mediabeat.crawler.extraction_process`: pages go
in on its stdin (a small pickle and the page's bytes as they are) and plain dicts come
back on its stdout, nothing else crosses. Started that way it imports this module and trafilatura only, never the
parent's main module (a multiprocessing child re-imports it: the CLI, about 100 MB), and it
needs no resource tracker. When the parent dies, even by SIGKILL, the kernel closes the
pipe and the process ends at the end of its stdin. Each process is replaced after a number
of pages, so the memory of long runs stays bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import pickle
import queue
import re
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

from mediabeat.crawler.fields import choose_language, choose_published_at, longer_text, wants_recall_pass
from mediabeat.crawler.language import TextLanguage

PROCESS_MODULE = "mediabeat.crawler.extraction_process"
# A fresh process costs about 0.7 s of CPU (imports, then justext's stop lists on the first
# page that needs them) and reaches about 87 MB. Each gives the heap lxml freed back after
# every page (extraction_process.py) and is replaced after this many pages, which bounds
# whatever else grows over a long run.
PAGES_PER_PROCESS = 1000
# How long a process that was asked to stop may take before it is killed.
STOP_SECONDS = 5.0
FRAME_HEADER = struct.Struct(">II")  # the lengths of the pickled part and of the raw bytes
LANG_RE = re.compile(rb"<html[^>]*?\slang\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)", re.IGNORECASE)
META_LANG_RE = re.compile(
    rb"<meta[^>]+http-equiv\s*=\s*[\"']?content-language[\"']?[^>]+content\s*=\s*[\"']?([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)",
    re.IGNORECASE,
)


class ExtractionErrorKind(StrEnum):
    """Why a page yielded no article: only a dead worker is worth another attempt."""

    WORKER_DIED = "worker_died"
    NO_TEXT = "no_text"
    FAILED = "failed"


class ExtractionError(Exception):
    """The page yielded no article; `kind` says why."""

    def __init__(self, kind: ExtractionErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Extracted:
    title: str | None
    author: str | None
    published_at: datetime | None
    summary: str | None
    text: str
    language: str | None
    canonical_url: str | None = None


def extract_article(html: bytes, url: str, infer_date: bool = False) -> dict[str, Any]:
    """Runs in a worker process: bytes in, a plain dict out (or {"error": ...}).

    The date is the one the page's markup states ("date"); with `infer_date` (the feed gave
    none) htmldate's text heuristics are asked too ("date_inferred"). A short text gets a
    second, recall-oriented pass.
    """
    try:
        document = _bare_extraction(html, url)
        text = document.get("text") if document else None
        if wants_recall_pass(text):
            recall = _bare_extraction(html, url, favor_recall=True)
            if recall is not None:
                document = {**(document or recall), "text": longer_text(text, recall.get("text"))}
        inferred = _inferred_date(html, url) if infer_date and not (document or {}).get("date") else None
    except Exception as exc:  # a parser crash on one page is that page's failure
        return {"error": f"extraction failed: {type(exc).__name__}: {exc}", "kind": ExtractionErrorKind.FAILED.value}
    if document is None:
        return {"error": "no article text found", "kind": ExtractionErrorKind.NO_TEXT.value}
    return {
        "title": document.get("title"),
        "author": document.get("author"),
        "date": document.get("date"),
        "date_inferred": inferred,
        "summary": document.get("description"),
        "text": document.get("text") or document.get("raw_text") or "",
        "language": document.get("language") or _html_language(html),
        "canonical_url": document.get("url"),  # the page's rel=canonical or og:url (trafilatura falls back to `url`)
    }


def answer(request: tuple[Any, ...], html: bytes) -> Any:
    """The answer to one request on one page: ("extract", url, infer_date), or ("size",) for its length."""
    kind, *rest = request
    if kind == "size":
        return len(html)
    url, infer_date = rest
    return extract_article(html, url, infer_date)


def _bare_extraction(html: bytes, url: str, *, favor_recall: bool = False) -> dict[str, Any] | None:
    """trafilatura's balanced setting, with tables, without comments.

    On a third of the shared corpus (296 pages), with the recall pass for short texts, it found
    94.2% of the snippets an extraction must contain and avoided 89.9% of those it must not;
    favor_precision without tables (the setting before) 92.2% and 92.2%; trafilatura's
    defaults (which keep comments) 93.9% and 89.3%. See docs/benchmarks.md for the full corpus.
    """
    import trafilatura

    document = trafilatura.bare_extraction(
        html,
        url=url,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        # Only dates the markup states (meta tags, <time>, JSON-LD, the URL): the feed entry's
        # date is more reliable than a guess from the text, which comes last (_inferred_date).
        date_extraction_params={"extensive_search": False, "original_date": True},
        favor_recall=favor_recall,
    )
    if document is None:
        return None
    return dict(document.as_dict() if hasattr(document, "as_dict") else document)


def _inferred_date(html: bytes, url: str) -> str | None:
    """htmldate's extensive search: dates in the page's text and links, for a page and feed that state none."""
    from htmldate import find_date

    found = find_date(html, extensive_search=True, original_date=True, url=url)
    return str(found) if found else None


def _html_language(html: bytes) -> str | None:
    head = html[:8192]
    match = LANG_RE.search(head) or META_LANG_RE.search(head)
    return match.group(1).decode("ascii").lower().replace("_", "-") if match else None


def _date(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def _clip(value: Any, limit: int) -> str | None:
    if not value:
        return None
    return str(value)[:limit]


def write_frame(stream: IO[bytes], meta: Any, data: bytes = b"") -> None:
    """Send one message down a pipe: `meta` pickled, then `data` (a page) as it is, without a pickled copy."""
    head = pickle.dumps(meta, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(FRAME_HEADER.pack(len(head), len(data)))
    stream.write(head)
    stream.write(data)
    stream.flush()


def read_frame(stream: IO[bytes]) -> tuple[Any, bytes]:
    """The next message sent by write_frame, (meta, data); EOFError when the other end has closed the pipe."""
    header = stream.read(FRAME_HEADER.size)
    if len(header) < FRAME_HEADER.size:
        raise EOFError
    head_size, data_size = FRAME_HEADER.unpack(header)
    head = stream.read(head_size)
    data = stream.read(data_size) if data_size else b""
    if len(head) < head_size or len(data) < data_size:
        raise EOFError
    return pickle.loads(head), data


class ExtractionProcess:
    """One extraction process and its two pipes; `call(request)` from one thread at a time."""

    def __init__(self) -> None:
        # It finds modules where this process does (its sys.path, not the current directory: -P);
        # stderr is inherited, so trafilatura's warnings land in the worker's log stream.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self._popen = subprocess.Popen(
            [sys.executable, "-P", "-m", PROCESS_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.pages = 0
        self._ready = False

    @property
    def pid(self) -> int:
        return self._popen.pid

    def wait_ready(self) -> None:
        """Block until the process has imported trafilatura (it says "ready"); EOFError if it died."""
        if self._ready:
            return
        assert self._popen.stdout is not None
        if read_frame(self._popen.stdout)[0] != "ready":
            raise EOFError
        self._ready = True

    def call(self, request: tuple[Any, ...], page: bytes) -> Any:
        """Send one request and its page, return the answer; EOFError when the process died meanwhile."""
        assert self._popen.stdin is not None and self._popen.stdout is not None
        self.wait_ready()
        try:
            write_frame(self._popen.stdin, request, page)
        except (BrokenPipeError, ConnectionResetError):
            raise EOFError from None
        self.pages += 1
        return read_frame(self._popen.stdout)[0]

    def stop(self) -> None:
        """Close its stdin, the sign to finish; kill it if it has not ended after STOP_SECONDS."""
        with contextlib.suppress(OSError):
            if self._popen.stdin is not None:
                self._popen.stdin.close()
        try:
            self._popen.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._popen.kill()
            self._popen.wait()
        if self._popen.stdout is not None:
            self._popen.stdout.close()


class ExtractionPool:
    """Warm extraction processes running extract_article; `await pool.extract(html, url)`.

    One thread per process carries the pages to it, so the event loop never blocks on a pipe.
    With `in_process` there are no processes: one thread of this process extracts the pages,
    one at a time (the one-process baseline of bench/crawl_bench.py: the same crawl-queue,
    writes and hooks included, on one core).
    """

    def __init__(
        self,
        workers: int = 0,
        *,
        language: TextLanguage | None = None,
        pages_per_process: int = PAGES_PER_PROCESS,
        in_process: bool = False,
    ) -> None:
        self.in_process = in_process
        self.workers = 1 if in_process else workers or max(1, os.cpu_count() or 1)
        self.language = language or TextLanguage()
        self.pages_per_process = pages_per_process
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._idle: queue.SimpleQueue[ExtractionProcess] = queue.SimpleQueue()
        self._running: set[ExtractionProcess] = set()
        self._lock = threading.Lock()

    async def start(self) -> None:
        if self._threads is not None:
            return
        self._threads = concurrent.futures.ThreadPoolExecutor(self.workers, thread_name_prefix="extraction")
        warm_up = self._warm_up_here if self.in_process else self._start_processes
        await asyncio.gather(asyncio.to_thread(self.language.load), asyncio.to_thread(warm_up))

    def _warm_up_here(self) -> None:
        """In-process mode: import trafilatura now, not on the first page."""
        extract_article(b"<html><body><p>warm up</p></body></html>", "http://127.0.0.1/")

    def _start_processes(self) -> None:
        started = [self._new_process() for _ in range(self.workers)]
        for process in started:
            # One that dies starting fails its first page (WORKER_DIED) and is replaced then.
            with contextlib.suppress(EOFError):
                process.wait_ready()
            self._idle.put(process)

    def _new_process(self) -> ExtractionProcess:
        process = ExtractionProcess()
        with self._lock:
            self._running.add(process)
        return process

    def _retire(self, process: ExtractionProcess) -> None:
        with self._lock:
            self._running.discard(process)
        process.stop()

    def _call(self, request: tuple[Any, ...], page: bytes) -> Any:
        """Runs in a pool thread: an idle process answers `request` on `page`; a dead or worn process is replaced."""
        if self.in_process:
            return answer(request, page)
        process = self._idle.get()
        replace = True
        try:
            reply = process.call(request, page)
            replace = process.pages >= self.pages_per_process
            return reply
        finally:
            if replace:
                # The new process warms up while the other processes work; its first page waits for it.
                self._retire(process)
                process = self._new_process()
            self._idle.put(process)

    async def _send(self, page: bytes, *request: Any) -> Any:
        await self.start()
        assert self._threads is not None
        return await asyncio.get_running_loop().run_in_executor(self._threads, self._call, request, page)

    async def round_trip(self, html: bytes) -> int:
        """Send `html` to an extraction process and back without extracting (its length): the pipe's cost."""
        return int(await self._send(html, "size"))

    async def extract(self, html: bytes, url: str, *, feed_published_at: datetime | None = None) -> Extracted:
        """Extract the article of `html`; `feed_published_at` is its feed entry's date, if any (the fallback date)."""
        try:
            data = await self._send(html, "extract", url, feed_published_at is None)
        except EOFError:
            # The process died (out of memory, killed): a fresh one takes the next page.
            raise ExtractionError(ExtractionErrorKind.WORKER_DIED, "the extraction worker died on this page") from None
        if "error" in data:
            raise ExtractionError(ExtractionErrorKind(data.get("kind", "failed")), str(data["error"]))
        text = str(data.get("text") or "").strip()
        if not text:
            raise ExtractionError(ExtractionErrorKind.NO_TEXT, "no article text found")
        detected, confidence = self.language.identify(text)
        language = choose_language(
            declared=_clip(data.get("language"), 16), detected=detected, confidence=confidence, text_chars=len(text)
        )
        return Extracted(
            title=_clip(data.get("title"), 2000),
            author=_clip(data.get("author"), 500),
            published_at=choose_published_at(
                page=_date(data.get("date")), feed=feed_published_at, inferred=_date(data.get("date_inferred"))
            ),
            summary=_clip(data.get("summary"), 5000),
            text=text,
            language=language,
            canonical_url=_clip(data.get("canonical_url"), 2048),
        )

    def worker_pids(self) -> list[int]:
        """The process ids of the running extraction processes (none before start())."""
        with self._lock:
            return sorted(process.pid for process in self._running)

    def shutdown(self) -> None:
        """Let the pages under way finish, then stop every extraction process (blocking: call it from a thread)."""
        if self._threads is None:
            return
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._threads = None
        with self._lock:
            running, self._running = self._running, set()
        self._idle = queue.SimpleQueue()
        for process in running:
            process.stop()
