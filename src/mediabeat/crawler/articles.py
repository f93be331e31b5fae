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
import collections
import concurrent.futures
import contextlib
import functools
import os
import pickle
import re
import struct
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import IO, Any

from mediabeat.crawler import heap
from mediabeat.crawler.fields import choose_language, choose_published_at, longer_text, wants_recall_pass
from mediabeat.crawler.language import TextLanguage

PROCESS_MODULE = "mediabeat.crawler.extraction_process"
# A fresh process costs about 0.7 s of CPU (imports, then justext's stop lists on the first
# page that needs them) and reaches about 87 MB. Each gives the heap lxml freed back after
# every page (extraction_process.py) and is replaced after this many pages, which bounds
# whatever else grows over a long run.
PAGES_PER_PROCESS = 1000
# Pages given to one process at a time: the one it works on and the next, waiting in its pipe.
PAGES_QUEUED = 2
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


class _EveryStopList:
    """Every justext stop list as trafilatura's JT_STOPLIST: words read from justext's files when iterated.

    trafilatura falls back to justext on most real pages and hands it JT_STOPLIST, which it
    builds as one tuple of the 154,000 words of every language's list; justext lowers that
    into a frozenset, cached with the tuple as its key. So a process held both (34 MB), and
    every justext call hashed the whole tuple to find its cached set again (several ms a page).
    An instance of this class is hashed by its identity: justext builds the same frozenset
    from it once, and the key costs nothing to hash.
    """

    def __iter__(self) -> Iterator[str]:
        from justext.utils import get_stoplist, get_stoplists

        for language in sorted(get_stoplists()):
            yield from get_stoplist(language)


@functools.cache
def _prepare_trafilatura() -> None:
    """Give trafilatura the stop lists above, unless it has built its own already."""
    from trafilatura import external

    if external.JT_STOPLIST is None:
        external.JT_STOPLIST = _EveryStopList()  # type: ignore[assignment]


def _bare_extraction(html: bytes, url: str, *, favor_recall: bool = False) -> dict[str, Any] | None:
    """trafilatura's balanced setting, with tables, without comments.

    On a third of the shared corpus (296 pages), with the recall pass for short texts, it found
    94.2% of the snippets an extraction must contain and avoided 89.9% of those it must not;
    favor_precision without tables (the setting before) 92.2% and 92.2%; trafilatura's
    defaults (which keep comments) 93.9% and 89.3%. See docs/benchmarks.md for the full corpus.
    """
    import trafilatura

    _prepare_trafilatura()
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
    """One extraction process and its two pipes.

    `submit` writes a request and returns a future of its answer; a reader thread of its own
    reads the answers, which come in the order of the requests. So a second page can wait in
    the pipe while the process works on the first, and the process starts on it the moment it
    has answered, without waiting for the worker to pick the answer up and send another.
    """

    def __init__(self) -> None:
        # It finds modules where this process does (its sys.path, not the current directory: -P);
        # stderr is inherited, so trafilatura's warnings land in the worker's log stream.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
        self._popen = subprocess.Popen(
            [sys.executable, "-P", "-m", PROCESS_MODULE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        self.pages = 0  # requests sent
        self._writing = threading.Lock()  # one request written at a time, in the order of _waiting
        self._lock = threading.Lock()  # guards _waiting and dead
        self._waiting: collections.deque[concurrent.futures.Future[Any]] = collections.deque()
        self.dead = False
        self._reader = threading.Thread(target=self._read_answers, name=f"extraction-{self.pid}", daemon=True)
        self._started = threading.Event()
        self._reader.start()

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def in_flight(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._waiting)

    def wait_ready(self) -> None:
        """Block until the process has imported trafilatura (it says "ready") or died."""
        self._started.wait()

    def _read_answers(self) -> None:
        """The reader thread: "ready", then each answer to the oldest request waiting; at the end, fail the rest."""
        assert self._popen.stdout is not None
        try:
            if read_frame(self._popen.stdout)[0] != "ready":
                raise EOFError
            self._started.set()
            while True:
                reply = read_frame(self._popen.stdout)[0]
                with self._lock:
                    future = self._waiting.popleft()
                future.set_result(reply)
        except (EOFError, OSError, ValueError, IndexError, pickle.UnpicklingError):
            with self._lock:
                self.dead = True
                waiting, self._waiting = list(self._waiting), collections.deque()
            for future in waiting:
                future.set_exception(EOFError())
        finally:
            self._started.set()

    def submit(self, request: tuple[Any, ...], page: bytes) -> concurrent.futures.Future[Any]:
        """Send one request and its page (blocking while the pipe is full); its answer comes in the future.

        The future fails with EOFError when the process dies before answering.
        """
        assert self._popen.stdin is not None
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._writing:
            with self._lock:
                if self.dead:
                    raise EOFError
                self._waiting.append(future)
                self.pages += 1
            # If it died meanwhile, the reader reaches the end of its output and fails the future.
            with contextlib.suppress(BrokenPipeError, ConnectionResetError, ValueError):
                write_frame(self._popen.stdin, request, page)
        return future

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
        self._reader.join(timeout=STOP_SECONDS)
        if self._popen.stdout is not None:
            with contextlib.suppress(OSError):
                self._popen.stdout.close()


class ExtractionPool:
    """Warm extraction processes running extract_article; `await pool.extract(html, url)`.

    Threads carry the pages to the processes, so the event loop never blocks on a pipe. Each
    process is given up to `depth` pages at a time (the next one waits in its pipe), the page
    going to the process with the fewest. With `in_process` there are no processes: one thread
    of this process extracts the pages, one at a time (the one-process baseline of
    bench/crawl_bench.py: the same crawl-queue, writes and hooks included, on one core).
    """

    def __init__(
        self,
        workers: int = 0,
        *,
        language: TextLanguage | None = None,
        pages_per_process: int = PAGES_PER_PROCESS,
        depth: int = PAGES_QUEUED,
        in_process: bool = False,
    ) -> None:
        self.in_process = in_process
        self.workers = 1 if in_process else workers or max(1, os.cpu_count() or 1)
        self.depth = 1 if in_process else max(1, depth)
        self.language = language or TextLanguage()
        self.pages_per_process = pages_per_process
        self._threads: concurrent.futures.ThreadPoolExecutor | None = None
        self._processes: dict[ExtractionProcess, int] = {}  # each live process: the pages given to it, unanswered
        self._changed = threading.Condition()

    async def start(self) -> None:
        if self._threads is not None:
            return
        heap.limit_fragmentation()
        self._threads = concurrent.futures.ThreadPoolExecutor(
            self.workers * self.depth, thread_name_prefix="extraction"
        )
        warm_up = self._warm_up_here if self.in_process else self._start_processes
        await asyncio.gather(asyncio.to_thread(self.language.load), asyncio.to_thread(warm_up))

    def _warm_up_here(self) -> None:
        """In-process mode: import trafilatura now, not on the first page."""
        extract_article(b"<html><body><p>warm up</p></body></html>", "http://127.0.0.1/")

    def _start_processes(self) -> None:
        with self._changed:
            self._processes = {ExtractionProcess(): 0 for _ in range(self.workers)}
            started = list(self._processes)
        for process in started:
            process.wait_ready()  # one that dies starting is replaced when a page comes

    def _checkout(self) -> tuple[ExtractionProcess, list[ExtractionProcess]]:
        """A process for one page, and the worn ones to stop; waits while every process has `depth` pages.

        The page goes to the process with the fewest pages under way. A dead process, or one
        that has had its pages, takes no more; once its last page is answered it is stopped and
        a fresh one takes its place (it warms up while the others work, and its first page waits
        in its pipe meanwhile).
        """
        retired: list[ExtractionProcess] = []
        with self._changed:
            while True:
                for process, busy in list(self._processes.items()):
                    if busy == 0 and (process.dead or process.pages >= self.pages_per_process):
                        del self._processes[process]
                        self._processes[ExtractionProcess()] = 0
                        retired.append(process)
                open_ = [
                    (busy, n, process)
                    for n, (process, busy) in enumerate(self._processes.items())
                    if busy < self.depth and not process.dead and process.pages < self.pages_per_process
                ]
                if open_:
                    chosen = min(open_, key=lambda item: item[:2])[2]
                    self._processes[chosen] += 1
                    return chosen, retired
                self._changed.wait()

    def _checkin(self, process: ExtractionProcess) -> None:
        with self._changed:
            if process in self._processes:
                self._processes[process] -= 1
            self._changed.notify_all()

    def _call(self, request: tuple[Any, ...], page: bytes) -> Any:
        """Runs in a pool thread: the answer of a process to `request` on `page`; EOFError if it died meanwhile."""
        if self.in_process:
            return answer(request, page)
        process, retired = self._checkout()
        try:
            for worn in retired:
                worn.stop()
            return process.submit(request, page).result()
        finally:
            self._checkin(process)

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

    def pages_in_flight(self) -> int:
        """Pages given to an extraction process and not answered yet."""
        with self._changed:
            return sum(process.in_flight for process in self._processes)

    def processes_alive(self) -> int:
        """Extraction processes that can take a page (a dead one is replaced when the next page comes)."""
        with self._changed:
            return sum(not process.dead for process in self._processes)

    def worker_pids(self) -> list[int]:
        """The process ids of the running extraction processes (none before start())."""
        with self._changed:
            return sorted(process.pid for process in self._processes)

    def shutdown(self) -> None:
        """Let the pages under way finish, then stop every extraction process (blocking: call it from a thread)."""
        if self._threads is None:
            return
        self._threads.shutdown(wait=True, cancel_futures=True)
        self._threads = None
        with self._changed:
            running, self._processes = list(self._processes), {}
        for process in running:
            process.stop()
