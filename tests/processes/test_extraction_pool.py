"""The extraction pool's processes: replaced after a number of pages, and after one dies, without losing the pool."""

from __future__ import annotations

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


async def test_a_killed_process_fails_its_page_and_a_fresh_one_takes_the_next() -> None:
    pool = ExtractionPool(workers=1)
    await pool.start()
    try:
        [pid] = pool.worker_pids()
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(ExtractionError) as failed:
            await pool.extract(PAGE, "http://127.0.0.1/killed")
        assert failed.value.kind is ExtractionErrorKind.WORKER_DIED
        extracted = await pool.extract(PAGE, "http://127.0.0.1/next")
        assert "A sentence of the article" in extracted.text
        assert pool.worker_pids() != [pid]
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
