"""Matching on arrival: each new article against its organisation's monitors, once, without missing any.

crawl-queue calls `MonitorMatcher.on_stored` with every batch it stores. The matcher keeps
each organisation's monitors compiled in memory, with a key (count, newest id, sum of
versions) that it checks once per batch, so a monitor changed by another process is
recompiled here too. An article is tested only against the monitors whose required words
it contains (an inverted index), plus those a prefilter cannot narrow (NOT-only queries).

Nothing is missed: a hook matches its own batch, and catch-up reads the organisation's
articles above its watermark that no batch has matched yet, so a batch whose hook failed,
or that a dead process never matched, is matched by a later batch's hook (at most every
CATCH_UP_EVERY per organisation) or by the monitor-deliveries task (`catch_up_all`).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from mediabeat.clock import Clock
from mediabeat.db.stores.monitor_matches import MatchStore
from mediabeat.db.stores.monitors import ActiveMonitor, MonitorStore
from mediabeat.domain.monitors import BadMonitorQuery, MonitorMatchDoc
from mediabeat.monitors.query import CompiledQuery, Document, compile_query, document

log = logging.getLogger(__name__)

# Articles read and matched per transaction.
SCAN_BATCH = 500
# How old an article must be before the watermark passes it (see MatchStore.advance_cursor).
SETTLE = timedelta(seconds=60)
# A hook matches its own batch; at most this often per organisation it also catches up from the
# watermark (what a failed hook or a dead process left), so that scan is not paid on every batch.
CATCH_UP_EVERY = timedelta(seconds=30)

MatchesRecorded = Callable[[set[int]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class _Compiled:
    id: int
    start_after: int
    query: CompiledQuery


@dataclass
class OrgMonitors:
    """An organisation's monitors, compiled, with the word index that narrows which to test."""

    key: tuple[int, int, int]
    by_word: dict[str, list[_Compiled]] = field(default_factory=lambda: defaultdict(list))
    unfiltered: list[_Compiled] = field(default_factory=list)
    floor: int = 0  # the smallest start_after: nothing at or below it is for any monitor
    queries: dict[str, CompiledQuery] = field(default_factory=dict)  # by query text, for the next compile

    @classmethod
    def compile(
        cls, key: tuple[int, int, int], monitors: Iterable[ActiveMonitor], previous: OrgMonitors | None = None
    ) -> OrgMonitors:
        """The organisation's monitors compiled; queries `previous` had compiled already are reused.

        Parsing 10,000 queries takes 1-2 s (bench/monitor_bench.py): with `previous`, a change
        to one monitor of a large organisation costs one parse on the next batch, not 10,000.
        """
        org = cls(key=key)
        known = previous.queries if previous is not None else {}
        starts: list[int] = []
        for monitor in monitors:
            try:
                query = known.get(monitor.query) or compile_query(monitor.query)
            except BadMonitorQuery as exc:  # saved before a language change made it invalid
                log.warning("monitor %d: its query no longer parses (%s); it matches nothing", monitor.id, exc)
                continue
            org.queries[monitor.query] = query
            compiled = _Compiled(monitor.id, monitor.start_after_article_id, query)
            starts.append(monitor.start_after_article_id)
            if compiled.query.required is None:
                org.unfiltered.append(compiled)
            for word in compiled.query.required or ():
                org.by_word[word].append(compiled)
        org.floor = min(starts) if starts else 0
        return org

    @property
    def empty(self) -> bool:
        return not self.by_word and not self.unfiltered

    def match(self, article_id: int, doc: Document) -> list[int]:
        """The ids of the monitors `doc` matches."""
        candidates: dict[int, _Compiled] = {m.id: m for m in self.unfiltered}
        by_word = self.by_word
        for word in doc.vocabulary & by_word.keys():
            for monitor in by_word[word]:
                candidates[monitor.id] = monitor
        return [m.id for m in candidates.values() if article_id > m.start_after and m.query.matches(doc)]


def as_doc(article_id: int, article: Any) -> MonitorMatchDoc:
    """A stored article (crawl-queue's NewArticle) as the matcher sees it."""
    return MonitorMatchDoc(
        id=article_id,
        org_id=article.org_id,
        feed_id=article.feed_id,
        url=article.url,
        title=article.title,
        summary=article.summary,
        text=article.text,
        language=article.language,
        published_at=article.published_at,
    )


class MonitorMatcher:
    """Records each new article's matches; one per process, its compiled monitors shared by every batch."""

    def __init__(
        self,
        *,
        monitors: MonitorStore,
        matches: MatchStore,
        clock: Clock,
        on_matches: MatchesRecorded | None = None,
        scan_batch: int = SCAN_BATCH,
    ) -> None:
        self.monitors = monitors
        self.matches = matches
        self.clock = clock
        self.on_matches = on_matches
        self.scan_batch = scan_batch
        self._orgs: dict[int, OrgMonitors] = {}
        self._caught_up: dict[int, datetime] = {}

    async def on_stored(self, stored: Sequence[tuple[int, Any]]) -> None:
        """crawl-queue's hook: match the batch's articles; now and then, also what earlier batches left."""
        by_org: dict[int, list[MonitorMatchDoc]] = defaultdict(list)
        for article_id, article in stored:
            by_org[article.org_id].append(as_doc(article_id, article))
        for org_id, docs in sorted(by_org.items()):
            org = await self.compiled(org_id)
            if org.empty:
                continue
            # The batch is matched as crawl-queue hands it over: no need to read it back.
            new, touched = await self._match(org_id, org, docs)
            last = self._caught_up.get(org_id)
            if last is None or self.clock.now() - last >= CATCH_UP_EVERY:
                new += await self.catch_up(org_id, notify=False)
            if new and self.on_matches is not None:
                await self.on_matches(touched)

    async def compiled(self, org_id: int) -> OrgMonitors:
        key = await self.monitors.org_version(org_id)
        cached = self._orgs.get(org_id)
        if cached is None or cached.key != key:
            cached = OrgMonitors.compile(key, await self.monitors.active_for_org(org_id), previous=cached)
            self._orgs[org_id] = cached
        return cached

    async def _match(self, org_id: int, org: OrgMonitors, docs: Sequence[MonitorMatchDoc]) -> tuple[int, set[int]]:
        """Match `docs`, record their matches and mark them matched: (new matches, the monitors that got some)."""
        if not docs:
            return 0, set()
        found = self.match_docs(org, docs)
        new = await self.matches.record_scan(org_id, [d.id for d in docs], found, now=self.clock.now())
        return new, {monitor_id for monitor_id, _ in found}

    async def catch_up(self, org_id: int, *, notify: bool = True) -> int:
        """Match every article of the org that no batch has matched; returns how many new matches."""
        org = await self.compiled(org_id)
        if org.empty:
            return 0
        self._caught_up[org_id] = self.clock.now()
        after = max(await self.matches.cursor(org_id), org.floor)
        new, touched = 0, set[int]()
        while True:
            docs = await self.matches.unscanned(org_id, after_id=after, limit=self.scan_batch)
            found, monitors = await self._match(org_id, org, docs)
            new += found
            touched |= monitors
            if len(docs) < self.scan_batch:
                break
            after = docs[-1].id
        now = self.clock.now()
        await self.matches.advance_cursor(org_id, floor=org.floor, settled_before=now - SETTLE, now=now)
        if new and notify and self.on_matches is not None:
            await self.on_matches(touched)
        return new

    @staticmethod
    def match_docs(org: OrgMonitors, docs: Sequence[MonitorMatchDoc]) -> list[tuple[int, int]]:
        """(monitor id, article id) for every match among `docs`: the pure, CPU-bound part."""
        return [(monitor_id, doc.id) for doc in docs for monitor_id in org.match(doc.id, document(doc))]

    async def catch_up_all(self) -> int:
        """Match what every organisation's hooks left (the monitor-deliveries task calls this)."""
        total = 0
        for org_id in await self.matches.orgs_behind():
            total += await self.catch_up(org_id)
        return total
