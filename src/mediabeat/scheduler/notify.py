"""Wake-ups: a scheduler loop sleeps until due, but wakes early when a task changes."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Protocol


class ChangeNotifier(Protocol):
    """Tells sleeping loops that tasks changed.

    `wait(seconds)` returns True when woken early, False when the time ran out.
    """

    async def notify(self) -> None: ...

    def notify_nowait(self) -> None:
        """Wake this process's loops only (a slot freed here concerns no other node)."""

    async def wait(self, seconds: float) -> bool: ...

    async def close(self) -> None: ...


class LocalNotifier:
    """Wakes loops in this process only."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    async def notify(self) -> None:
        self._event.set()

    def notify_nowait(self) -> None:
        self._event.set()

    async def wait(self, seconds: float) -> bool:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout=max(0.0, seconds))
        woken = self._event.is_set()
        self._event.clear()
        return woken

    async def close(self) -> None:
        self._event.set()
