"""A node's backlog: occurrences it claimed (`queued` run rows) and starts as its run slots free.

A burst wider than MEDIABEAT_MAX_CONCURRENT_RUNS is claimed in one transaction instead of
one per wave of free slots; each queued execution starts the moment a slot frees, highest
priority first, then the earliest due. The backlog is bounded twice, so that a node does not
hoard work that other nodes could start:
- in size: a claim takes at most the free slots plus MEDIABEAT_RUN_BACKLOG executions, and only
  when the node has a free slot;
- in time: what the node has not started within MEDIABEAT_RUN_BACKLOG_HOLD_SECONDS of claiming
  it goes back to the cluster (run rows with no node), where any node with a free slot takes it.
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field
from datetime import datetime

from mediabeat.domain.scheduler import ClaimedRuns


@dataclass(order=True, slots=True)
class _Entry:
    key: tuple[int, datetime, int]
    seq: int
    claim: ClaimedRuns = field(compare=False)
    claimed_at: datetime = field(compare=False)
    live: bool = field(default=True, compare=False)


class RunBacklog:
    """Queued executions of this node, popped highest priority first, then earliest due, then oldest run."""

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._by_run: dict[int, _Entry] = {}
        self._seq = itertools.count()

    def __len__(self) -> int:
        return len({id(e) for e in self._by_run.values()})

    @property
    def run_ids(self) -> list[int]:
        return sorted(self._by_run)

    def __contains__(self, run_id: object) -> bool:
        return run_id in self._by_run

    def push(self, claim: ClaimedRuns, claimed_at: datetime) -> None:
        key = (-claim.task.priority, claim.scheduled_for[0], claim.run_ids[0])
        entry = _Entry(key, next(self._seq), claim, claimed_at)
        heapq.heappush(self._heap, entry)
        for run_id in claim.run_ids:
            self._by_run[run_id] = entry

    def pop(self) -> ClaimedRuns | None:
        """The next execution to start, or None when the backlog is empty."""
        while self._heap:
            entry = heapq.heappop(self._heap)
            if entry.live:
                self._forget(entry)
                return entry.claim
        return None

    def remove(self, run_id: int) -> tuple[ClaimedRuns, datetime] | None:
        """Take out the execution that holds `run_id` (with when it was claimed), or None if it is not here."""
        entry = self._by_run.get(run_id)
        if entry is None:
            return None
        self._forget(entry)
        return entry.claim, entry.claimed_at

    def drain(self, *, claimed_by: datetime | None = None) -> list[ClaimedRuns]:
        """Take out every execution (or those claimed at or before the given time)."""
        taken = [e for e in self._heap if e.live and (claimed_by is None or e.claimed_at <= claimed_by)]
        for entry in taken:
            self._forget(entry)
        self._heap = [e for e in self._heap if e.live]
        heapq.heapify(self._heap)
        return [entry.claim for entry in taken]

    @property
    def oldest_claimed_at(self) -> datetime | None:
        return min((e.claimed_at for e in self._heap if e.live), default=None)

    def _forget(self, entry: _Entry) -> None:
        entry.live = False
        for run_id in entry.claim.run_ids:
            if self._by_run.get(run_id) is entry:
                del self._by_run[run_id]
