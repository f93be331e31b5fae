"""kill -9 of a process that owns an extraction pool: its extraction processes end too."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

# Starts a warm pool, has it extract a page, prints its process ids, then waits to be killed.
POOL_OWNER = textwrap.dedent(
    """
    import asyncio, sys
    from mediabeat.crawler.articles import ExtractionPool

    async def main() -> None:
        pool = ExtractionPool(workers=2)
        await pool.start()
        page = b"<html><body><article><p>" + b"A sentence of the article. " * 40 + b"</p></article></body></html>"
        await pool.extract(page, "http://127.0.0.1/a")
        print(" ".join(str(pid) for pid in pool.worker_pids()), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
    """
)


def running(pid: int) -> bool:
    """Whether `pid` is a live process: a zombie waiting for a reaper has ended."""
    stat = Path(f"/proc/{pid}/stat")
    if Path("/proc/self/stat").exists():
        try:
            return stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except (FileNotFoundError, ProcessLookupError):
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_workers_exit_when_the_pool_owner_is_killed() -> None:
    owner = subprocess.Popen([sys.executable, "-c", POOL_OWNER], stdout=subprocess.PIPE, text=True)
    pids: list[int] = []
    try:
        assert owner.stdout is not None
        line = owner.stdout.readline()  # the pool is warm: trafilatura imported in each worker
        workers = [int(pid) for pid in line.split()]
        # Every process the owner started, the extraction processes and whatever else.
        pids = [child.pid for child in psutil.Process(owner.pid).children(recursive=True)]
        assert len(workers) == 2 and set(workers) <= set(pids), (line, pids)
        assert all(running(pid) for pid in pids), pids
        owner.send_signal(signal.SIGKILL)
        owner.wait(timeout=10)
        deadline = time.monotonic() + 10
        while any(running(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert [pid for pid in pids if running(pid)] == []
    finally:
        owner.kill()
        owner.wait()
        if owner.stdout is not None:
            owner.stdout.close()
        for pid in pids:  # the pool's processes, should the test fail
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
