"""The time source: the real clock, a fake one for tests, and a fast one for simulations."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """Tells the time (always aware UTC) and converts clock seconds into real seconds to wait."""

    def now(self) -> datetime: ...

    def real_seconds(self, seconds: float) -> float:
        """How many real seconds pass while this clock moves `seconds`."""
        ...


class SystemClock:
    """The wall clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def real_seconds(self, seconds: float) -> float:
        return seconds


class FakeClock:
    """A clock that moves only when told to (tests drive the loop step by step with it)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FakeClock needs an aware datetime")
        self._now = start.astimezone(UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0.0, **delta: float) -> datetime:
        self._now += timedelta(seconds=seconds, **delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when.astimezone(UTC)

    def real_seconds(self, seconds: float) -> float:
        return 0.0


class ScaledClock:
    """Simulated time that starts at `epoch` and runs `speed` times faster than real time.

    Processes built with the same epoch, speed and `origin` (a real time.time() value)
    agree on the time, so a multi-process simulation of hours runs in seconds.
    """

    def __init__(self, *, epoch: datetime, speed: float, origin: float | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.epoch = epoch.astimezone(UTC)
        self.speed = speed
        self.origin = time.time() if origin is None else origin

    def now(self) -> datetime:
        return self.epoch + timedelta(seconds=(time.time() - self.origin) * self.speed)

    def real_seconds(self, seconds: float) -> float:
        return seconds / self.speed
