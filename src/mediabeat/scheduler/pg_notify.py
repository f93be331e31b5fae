"""Wake-ups across nodes on PostgreSQL: LISTEN/NOTIFY.

Every node keeps one extra connection that LISTENs on a channel. A task change or a
run-now anywhere sends a NOTIFY after its commit, and every sleeping loop wakes at once,
so the lag from a change to its effect is not bounded by the tick. When the listening
connection drops (a restart, a network cut), the notifier reconnects with backoff and
wakes the loop once it is back, since it may have missed a notification meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import psycopg
from sqlalchemy.engine import make_url

from mediabeat.scheduler.notify import LocalNotifier

log = logging.getLogger("mediabeat.notify")

CHANNEL = "mediabeat_tasks"
BACKOFF_START_S = 0.5
BACKOFF_MAX_S = 30.0
CONNECT_TIMEOUT_S = 10


def libpq_url(url: str) -> str:
    """A postgresql:// URL that psycopg understands (no SQLAlchemy driver suffix)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


class PostgresNotifier(LocalNotifier):
    """In-process wake-ups, plus LISTEN/NOTIFY so that every node in the cluster wakes."""

    def __init__(self, url: str, *, channel: str = CHANNEL) -> None:
        super().__init__()
        self.url = libpq_url(url)
        self.channel = channel
        self._listener: asyncio.Task[None] | None = None
        self._sender: psycopg.AsyncConnection[object] | None = None
        self._send_lock: asyncio.Lock | None = None
        self.listening = asyncio.Event()
        self._closed = False

    async def notify(self) -> None:
        """Wake this process now and every other node through NOTIFY (best effort: the tick covers a miss)."""
        self.notify_nowait()
        if self._closed:
            return
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            try:
                if self._sender is None or self._sender.closed:
                    sender = await psycopg.AsyncConnection.connect(
                        self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                    )
                    if self._closed:  # closed while connecting: nobody would close this one
                        await sender.close()
                        return
                    self._sender = sender
                await self._sender.execute("SELECT pg_notify(%s, '')", (self.channel,))
            except (psycopg.Error, OSError) as exc:
                log.warning(
                    "could not notify the other nodes: %s", str(exc).strip().splitlines()[0] if str(exc) else exc
                )
                await self._close_sender()

    async def wait(self, seconds: float) -> bool:
        self._ensure_listening()
        return await super().wait(seconds)

    def _ensure_listening(self) -> None:
        if self._listener is None and not self._closed:
            self._listener = asyncio.create_task(self._listen_forever(), name="mediabeat-listen")

    async def start(self) -> None:
        """Start listening now and wait (briefly) until the LISTEN is in place."""
        self._ensure_listening()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.listening.wait(), timeout=CONNECT_TIMEOUT_S)

    async def _listen_forever(self) -> None:
        backoff = BACKOFF_START_S
        first = True
        while not self._closed:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
                ) as conn:
                    await conn.execute(f'LISTEN "{self.channel}"')
                    self.listening.set()
                    if not first:
                        log.warning("listening for task changes again")
                        self.notify_nowait()  # something may have changed while we were away
                    first, backoff = False, BACKOFF_START_S
                    async for _ in conn.notifies():
                        self.notify_nowait()
            except asyncio.CancelledError:
                raise
            except (psycopg.Error, OSError) as exc:
                self.listening.clear()
                first = False
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                log.warning("lost the LISTEN connection (%s); reconnecting in %.1f s", reason, backoff)
                await asyncio.sleep(backoff)
                backoff = min(BACKOFF_MAX_S, backoff * 2)

    async def _close_sender(self) -> None:
        if self._sender is not None:
            with contextlib.suppress(psycopg.Error, OSError):
                await self._sender.close()
        self._sender = None

    async def close(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
            self._listener = None
        if self._send_lock is not None:
            async with self._send_lock:  # a notify in flight finishes (or gives up) before its connection closes
                await self._close_sender()
        else:
            await self._close_sender()
        await super().close()
