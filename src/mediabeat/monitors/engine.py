"""One process's monitor engine: the matcher crawl-queue calls, and the deliveries it hands new matches to."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from mediabeat.clock import Clock
from mediabeat.crawler.http import SafeClient
from mediabeat.db.engine import Database
from mediabeat.db.stores.monitor_deliveries import DeliveryStore
from mediabeat.db.stores.monitor_matches import MatchStore
from mediabeat.db.stores.monitors import MonitorStore
from mediabeat.monitors.delivery import MailSetup, MonitorDeliveries
from mediabeat.monitors.matcher import MonitorMatcher

log = logging.getLogger(__name__)


@dataclass
class MonitorEngine:
    """The matcher and the deliveries, wired so that new matches are sent at once, in the background."""

    matcher: MonitorMatcher
    deliveries: MonitorDeliveries

    def __post_init__(self) -> None:
        self._pending: set[asyncio.Task[None]] = set()
        self.matcher.on_matches = self._new_matches

    async def _new_matches(self, monitor_ids: set[int]) -> None:
        task = asyncio.create_task(self._flush(monitor_ids))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _flush(self, monitor_ids: set[int]) -> None:
        try:
            await self.deliveries.flush(monitor_ids)
        except Exception:  # the monitor-deliveries task sends what this did not
            log.exception("sending new monitor matches failed; the monitor-deliveries task will retry")

    async def drain(self) -> None:
        """Wait for deliveries started by new matches (at shutdown and in tests)."""
        while self._pending:
            await asyncio.wait(set(self._pending), timeout=60)


def build_monitor_engine(
    db: Database,
    clock: Clock,
    *,
    client_factory: Callable[[], SafeClient],
    mail: MailSetup | None,
    public_url: str | None,
) -> MonitorEngine:
    monitors, matches = MonitorStore(db), MatchStore(db)
    return MonitorEngine(
        matcher=MonitorMatcher(monitors=monitors, matches=matches, clock=clock),
        deliveries=MonitorDeliveries(
            monitors=monitors,
            matches=matches,
            deliveries=DeliveryStore(db),
            clock=clock,
            client_factory=client_factory,
            mail=mail,
            public_url=public_url,
        ),
    )
