"""Wake-ups across processes on SQLite: watch the database's data_version.

SQLite has no LISTEN/NOTIFY. `PRAGMA data_version` changes whenever another connection
commits, so polling it (a read of shared memory in WAL mode, microseconds) tells a
sleeping loop that a task may have changed: `mediabeat tasks set` in another process, or
run-now from the API of another `serve`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from mediabeat.scheduler.notify import LocalNotifier

POLL_SECONDS = 0.5


class SQLiteChangeNotifier(LocalNotifier):
    """In-process wake-ups, plus a wake-up when another connection commits to the file."""

    def __init__(self, path: Path, *, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__()
        self.path = path
        self.poll_seconds = poll_seconds
        self._connection: sqlite3.Connection | None = None
        self._seen: int | None = None

    async def wait(self, seconds: float) -> bool:
        deadline = time.monotonic() + max(0.0, seconds)
        self._changed()  # remember where we start, so only later commits wake us
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            if await super().wait(min(remaining, self.poll_seconds)):
                return True
            if self._changed():
                return True

    def _changed(self) -> bool:
        try:
            if self._connection is None:
                self._connection = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False)
            version = int(self._connection.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error:
            self._drop_connection()  # the file is away or locked: the loop's own step will report it
            return False
        changed = self._seen is not None and version != self._seen
        self._seen = version
        return changed

    def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(sqlite3.Error):
                self._connection.close()
        self._connection = None
        self._seen = None

    async def close(self) -> None:
        self._drop_connection()
        await super().close()
