"""On SQLite, a commit from another process wakes a sleeping loop."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from mediabeat.scheduler.sqlite_notify import SQLiteChangeNotifier


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_commit_by_another_connection_wakes_the_waiter(database_url: str) -> None:
    path = Path(database_url.removeprefix("sqlite:///"))
    notifier = SQLiteChangeNotifier(path, poll_seconds=0.05)
    waiter = asyncio.create_task(notifier.wait(30))
    await asyncio.sleep(0.2)
    assert not waiter.done()  # nothing changed: still asleep
    other = sqlite3.connect(path)
    other.execute("UPDATE scheduler_tasks SET description = 'changed elsewhere'")
    other.commit()
    other.close()
    assert await asyncio.wait_for(waiter, 5) is True
    assert await notifier.wait(0.2) is False  # and it goes back to sleeping
    await notifier.close()
