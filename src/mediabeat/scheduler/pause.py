"""The cluster-wide pause switch: while it is on, no scheduled, chained or retry run starts on any node.

The switch is one row (scheduler_pause). Every node's claim of due runs reads it in the same
statement, so a pause holds on every node from the moment it commits; a paused loop looks
at the row again every PAUSED_POLL_SECONDS, so a resume reaches every node within about a
second even where no notification arrives. Manual runs still start while paused.
"""

from __future__ import annotations

import logging

from mediabeat.clock import Clock
from mediabeat.db.stores.scheduler import SchedulerStore
from mediabeat.domain.scheduler import SchedulerPause
from mediabeat.scheduler.notify import ChangeNotifier

log = logging.getLogger("mediabeat.scheduler")

# How often a paused loop reads the pause row, in seconds.
PAUSED_POLL_SECONDS = 1.0
REASON_LIMIT = 500


class PauseSwitch:
    """Reads and flips the pause row; remembers the last state this node saw, to log each change once."""

    def __init__(self, *, store: SchedulerStore, clock: Clock, notifier: ChangeNotifier) -> None:
        self.store = store
        self.clock = clock
        self.notifier = notifier
        self._seen: bool | None = None

    async def state(self) -> SchedulerPause:
        return await self.store.get_pause()

    async def observe(self) -> SchedulerPause:
        """The state, as the loop reads it before each step; a change is logged once per node."""
        state = await self.store.get_pause()
        if self._seen is not None and state.paused != self._seen:
            if state.paused:
                log.warning("scheduler paused by %s: %s", state.changed_by, state.reason or "no reason given")
            else:
                log.warning("scheduler resumed by %s", state.changed_by)
        self._seen = state.paused
        return state

    async def pause(self, *, by: str, reason: str | None = None) -> SchedulerPause:
        reason = (reason or "").strip()[:REASON_LIMIT] or None
        state = await self.store.set_pause(paused=True, reason=reason, by=by, now=self.clock.now())
        await self.notifier.notify()
        return state

    async def resume(self, *, by: str) -> SchedulerPause:
        state = await self.store.set_pause(paused=False, reason=None, by=by, now=self.clock.now())
        await self.notifier.notify()  # wake every loop: what came due follows each task's misfire policy
        return state
