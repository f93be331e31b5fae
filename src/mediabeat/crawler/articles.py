"""Article extraction with trafilatura, in a pool of worker processes so every core works.

Workers receive the page as bytes and return plain dicts; nothing else crosses the
process boundary. The pool is started once and warmed (trafilatura imported in every
worker) before the first page, and each worker is replaced after a number of pages so
the memory of long runs stays bounded.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import multiprocessing.context
import multiprocessing.spawn
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from multiprocessing import popen_spawn_posix
from typing import Any

from mediabeat.crawler.fields import choose_language, choose_published_at, longer_text, wants_recall_pass
from mediabeat.crawler.language import TextLanguage

# How often a worker checks that the process that started it is still alive.
PARENT_CHECK_SECONDS = 0.5
# A fresh worker imports trafilatura again (a second or more of CPU): replace them rarely.
PAGES_PER_WORKER = 2000
LANG_RE = re.compile(rb"<html[^>]*?\slang\s*=\s*[\"']?([A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})?)", re.IGNORECASE)
META_LANG_RE = re.compile(
    rb"<meta[^>]+http-equiv\s*=\s*[\"']?content-language[\"']?[^>]+content\s*=\s*[\"']?([A-Za-z]{2,3}(?:-[A-Za-z0-9]{2,8})?)",
    re.IGNORECASE,
)


_spawning_lean = threading.local()
_preparation_data = multiprocessing.spawn.get_preparation_data


def _lean_preparation_data(name: str) -> dict[str, Any]:
    """What a spawned child prepares: without the parent's __main__ when an extraction worker is spawned.

    A spawned child normally imports the parent's main module first (the CLI, a script),
    with everything that imports: about 40 MB per worker for code it never runs. The
    extraction workers need only this module, which they import by name.
    """
    data: dict[str, Any] = _preparation_data(name)
    if getattr(_spawning_lean, "active", False):
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
    return data


multiprocessing.spawn.get_preparation_data = _lean_preparation_data


class _LeanPopen(popen_spawn_posix.Popen):
    def _launch(self, process_obj: Any) -> None:
        _spawning_lean.active = True
        try:
            super()._launch(process_obj)  # type: ignore[misc]
        finally:
            _spawning_lean.active = False


class _LeanProcess(multiprocessing.context.SpawnProcess):
    @staticmethod
    def _Popen(process_obj: Any) -> Any:
        return _LeanPopen(process_obj)


class _LeanSpawnContext(multiprocessing.context.SpawnContext):
    """spawn, without re-running the parent's main module in each worker."""

    Process = _LeanProcess


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


def _worker_init(parent_pid: int) -> None:
    """Ctrl-C reaches the whole process group: the parent shuts the pool down, workers stay quiet.

    A parent killed with SIGKILL shuts nothing down: each worker watches for that itself.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watchdog = threading.Thread(target=exit_when_orphaned, args=(parent_pid,), name="parent-watchdog", daemon=True)
    watchdog.start()


def exit_when_orphaned(parent_pid: int, *, interval: float = PARENT_CHECK_SECONDS) -> None:
    """Runs in a worker: end the process once `parent_pid` is no longer its parent (it died and we were reparented).

    Polling getppid() works on every POSIX system. Linux's PR_SET_PDEATHSIG is not used: it
    fires when the parent *thread* that spawned the worker ends, and the pool spawns
    replacement workers from its own management thread. Once the workers are gone the
    multiprocessing resource tracker, whose pipe they held open, ends as well.
    """
    while os.getppid() == parent_pid:
        time.sleep(interval)
    os._exit(0)


def _warm() -> bool:
    import trafilatura  # noqa: F401  (the import is the warm-up)

    return True


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


class ExtractionPool:
    """A warm process pool running extract_article; `await pool.extract(html, url)`."""

    def __init__(self, workers: int = 0, *, language: TextLanguage | None = None) -> None:
        self.workers = workers or max(1, os.cpu_count() or 1)
        self.language = language or TextLanguage()
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    async def start(self) -> None:
        if self._executor is not None:
            return
        self._executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_LeanSpawnContext() if os.name == "posix" else multiprocessing.get_context("spawn"),
            max_tasks_per_child=PAGES_PER_WORKER,
            initializer=_worker_init,
            initargs=(os.getpid(),),
        )
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            asyncio.to_thread(self.language.load),
            *(loop.run_in_executor(self._executor, _warm) for _ in range(self.workers)),
        )

    async def extract(self, html: bytes, url: str, *, feed_published_at: datetime | None = None) -> Extracted:
        """Extract the article of `html`; `feed_published_at` is its feed entry's date, if any (the fallback date)."""
        await self.start()
        assert self._executor is not None
        loop = asyncio.get_running_loop()
        infer_date = feed_published_at is None
        try:
            data = await loop.run_in_executor(self._executor, extract_article, html, url, infer_date)
        except concurrent.futures.process.BrokenProcessPool:
            # A worker died (out of memory, killed): start a fresh pool for the next pages.
            self.shutdown()
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
        """The process ids of the running workers (none before start())."""
        executor = self._executor
        return sorted(executor._processes or {}) if executor is not None else []

    def shutdown(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
