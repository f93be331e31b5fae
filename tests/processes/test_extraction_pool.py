"""The extraction pool's processes: replaced after a number of pages, and after one dies, without losing the pool."""

from __future__ import annotations

import asyncio
import os
import signal

import psutil
import pytest

from mediabeat.crawler.articles import ExtractionError, ExtractionErrorKind, ExtractionPool

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

SENTENCE = b"A sentence of the article, long enough to keep. "
PAGE = b"<html><body><article><p>" + SENTENCE * 20 + b"</p></article></body></html>"


async def test_a_process_is_replaced_after_its_pages_and_the_pages_keep_coming() -> None:
    pool = ExtractionPool(workers=1, pages_per_process=2)
    await pool.start()
    try:
        first = pool.worker_pids()
        texts = [(await pool.extract(PAGE, f"http://127.0.0.1/{n}")).text for n in range(3)]
        assert all("A sentence of the article" in text for text in texts)
        assert len(pool.worker_pids()) == 1 and pool.worker_pids() != first
    finally:
        pool.shutdown()
    assert pool.worker_pids() == []


async def test_a_process_killed_on_a_page_fails_that_page_and_a_fresh_one_takes_the_next() -> None:
    pool = ExtractionPool(workers=1)
    await pool.start()
    try:
        [pid] = pool.worker_pids()
        os.kill(pid, signal.SIGSTOP)  # the page waits in its pipe, unanswered
        page = asyncio.create_task(pool.extract(PAGE, "http://127.0.0.1/killed"))
        for _ in range(200):
            if pool.pages_in_flight():
                break
            await asyncio.sleep(0.01)
        assert pool.pages_in_flight() == 1
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ExtractionError) as failed:
            await page
        assert failed.value.kind is ExtractionErrorKind.WORKER_DIED
        extracted = await pool.extract(PAGE, "http://127.0.0.1/next")
        assert "A sentence of the article" in extracted.text
        assert len(pool.worker_pids()) == 1 and pool.worker_pids() != [pid]
    finally:
        pool.shutdown()


async def test_a_process_that_died_idle_costs_no_page() -> None:
    pool = ExtractionPool(workers=1)
    await pool.start()
    try:
        [pid] = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        for _ in range(1000):  # its reader thread sees the end of its output
            if pool.processes_alive() == 0:
                break
            await asyncio.sleep(0.01)
        assert pool.processes_alive() == 0
        extracted = await pool.extract(PAGE, "http://127.0.0.1/after")
        assert "A sentence of the article" in extracted.text
        assert pool.worker_pids() != [pid]
    finally:
        pool.shutdown()


async def test_each_process_is_given_its_next_page_while_it_works_on_one() -> None:
    pool = ExtractionPool(workers=1, depth=2)
    await pool.start()
    try:
        [pid] = pool.worker_pids()
        os.kill(pid, signal.SIGSTOP)
        pages = [asyncio.create_task(pool.extract(PAGE, f"http://127.0.0.1/{n}")) for n in range(3)]
        for _ in range(200):
            if pool.pages_in_flight() == 2:
                break
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.2)
        assert pool.pages_in_flight() == 2  # two in its pipe, the third waits for a place
        os.kill(pid, signal.SIGCONT)
        texts = [(await page).text for page in pages]
        assert all("A sentence of the article" in text for text in texts)
        assert pool.worker_pids() == [pid] and pool.pages_in_flight() == 0
    finally:
        pool.shutdown()


async def test_in_process_the_pool_extracts_in_this_process_and_starts_none() -> None:
    pool = ExtractionPool(in_process=True)
    await pool.start()
    try:
        extracted = await pool.extract(PAGE, "http://127.0.0.1/here")
        assert "A sentence of the article" in extracted.text
        assert await pool.round_trip(PAGE) == len(PAGE)
        assert pool.worker_pids() == [] and psutil.Process().children() == []
    finally:
        pool.shutdown()
