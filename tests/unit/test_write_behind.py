"""crawl-queue's write-behind buffer: batches by size and by time, one write at a time, failures reach every page."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from mediabeat.tasks.crawl_queue import WriteBehind


async def test_pages_are_written_in_batches_by_size_then_by_time() -> None:
    writes: list[list[Any]] = []

    async def write(batch: list[Any]) -> list[str]:
        writes.append(list(batch))
        await asyncio.sleep(0.01)
        return [f"ok-{item}" for item in batch]

    buffer = WriteBehind(write, max_items=3, max_delay=0.05)
    futures = [buffer.add(i) for i in range(5)]  # type: ignore[arg-type]
    assert await asyncio.gather(*futures[:3]) == ["ok-0", "ok-1", "ok-2"]
    assert writes == [[0, 1, 2]]  # the full batch went at once; the other two wait for the timer
    assert await asyncio.wait_for(asyncio.gather(*futures[3:]), timeout=5) == ["ok-3", "ok-4"]
    assert writes == [[0, 1, 2], [3, 4]]
    await buffer.close()


async def test_close_writes_what_is_left_and_a_failed_write_fails_its_pages() -> None:
    async def write(batch: list[Any]) -> list[str]:
        if 99 in batch:
            raise RuntimeError("database gone")
        return ["ok"] * len(batch)

    buffer = WriteBehind(write, max_items=100, max_delay=60)
    kept = buffer.add(1)  # type: ignore[arg-type]
    await buffer.close()
    assert kept.result() == "ok"
    failed = [buffer.add(99), buffer.add(2)]  # type: ignore[arg-type]
    await buffer.close()
    for future in failed:
        with pytest.raises(RuntimeError, match="database gone"):
            future.result()


async def test_stored_hooks_run_in_order_in_the_background_and_a_full_queue_pushes_back() -> None:
    from mediabeat.tasks.stored_hooks import StoredHooks

    release = asyncio.Event()
    seen: list[int] = []
    after: list[int] = []

    async def slow(stored: Any) -> None:
        seen.append(stored[0][0])
        await release.wait()

    async def failing(stored: Any) -> None:
        raise RuntimeError("a hook that fails")

    async def next_hook(stored: Any) -> None:
        after.append(stored[0][0])

    hooks = StoredHooks([slow, failing, next_hook], max_waiting=1)
    await hooks.announce([(1, None)])  # type: ignore[list-item]
    await hooks.announce([(2, None)])  # type: ignore[list-item]  # queued while batch 1's hook runs
    third = asyncio.create_task(hooks.announce([(3, None)]))  # type: ignore[list-item]
    done, _ = await asyncio.wait([third], timeout=0.05)
    assert not done and seen == [1]  # the queue is full: the caller waits (back-pressure), nothing is dropped
    release.set()
    await third
    await hooks.close()
    assert seen == [1, 2, 3] and after == [1, 2, 3]  # a failing hook does not stop the next one
