"""What a task handler is: an async callable that gets a RunContext and returns its counts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from mediabeat.domain.scheduler import AllWorkFailed, Trigger


@dataclass(frozen=True, slots=True)
class RunContext:
    """Facts about the run a handler is executing. `now` is when the run started (UTC).

    `winding_down` is set when the node waits for its runs to end (shutdown): a handler that
    would go on looking for more work (hourly-rss-fetch following its feeds) stops instead.
    """

    run_id: int
    task_name: str
    trigger: Trigger
    scheduled_for: datetime
    now: datetime
    params: Mapping[str, Any]
    log: logging.Logger
    winding_down: asyncio.Event = field(default_factory=asyncio.Event)


class SkipRun(Exception):
    """Raised by a handler whose condition for running is not met: the run ends `skipped`, with this reason."""


class NothingToDo(SkipRun):
    """Raised by a handler that found no work (an empty queue, no feed due): the run ends `skipped`.

    A scheduled run that ends so is counted on its task (empty runs per hour, the last one's
    time) but its row is not kept, unless the task's keep_empty_runs or MEDIABEAT_KEEP_EMPTY_RUNS
    asks for it. The history stays readable when a task runs every minute.
    """


def unless_all_failed(
    result: Mapping[str, Any], *, attempted: int, failed: int, unit: str, first_error: str | None
) -> Mapping[str, Any]:
    """`result`, or AllWorkFailed when at least one unit of work was attempted and every one failed.

    `unit` is the plural noun for the message, e.g. "feeds": "all 12 feeds failed (first: ...)".
    """
    if attempted == 0 or failed < attempted:
        return result
    error = first_error or "no error recorded"
    if attempted == 1:
        raise AllWorkFailed(f"the one {unit.removesuffix('s')} tried failed: {error}", result)
    raise AllWorkFailed(f"all {attempted} {unit} failed (first: {error})", result)


class TaskHandler(Protocol):
    """Runs one occurrence of a task and returns counts (JSON-ready) for the run record."""

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]: ...
