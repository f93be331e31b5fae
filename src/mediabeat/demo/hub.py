"""The demo site's WebSub hub, on loopback only: it verifies subscribers and pushes new articles, signed.

It behaves as a real hub does (W3C WebSub 5, 6, 8): a subscription request is answered 202 and
then verified with a GET carrying a random hub.challenge, which the subscriber must echo; the
hub then pushes the topic's whole feed, signed with HMAC-SHA256 of hub.secret, whenever a new
article appears (a watcher compares each subscribed feed's newest article) or a publisher posts
`hub.mode=publish`. Callbacks must be on a loopback address: this hub never sends elsewhere.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from mediabeat.domain.websub import signature_header

if TYPE_CHECKING:  # aiohttp is imported when the hub first calls back, not when the CLI starts
    import aiohttp

log = logging.getLogger("mediabeat.demo.hub")

HUB_PATH = "/hub"
MAX_LEASE_S = 30 * 86400
# What a topic renders to: (body, media type), or None when the URL is no feed of this site.
Renderer = Callable[[str], tuple[bytes, str] | None]
# A topic's version: changes exactly when its feed gains an article (the newest article number).
Versioner = Callable[[str], int | None]


@dataclass
class Subscriber:
    topic: str
    callback: str
    secret: str | None
    lease_expires_at: datetime


def is_loopback_url(url: str) -> bool:
    """Whether `url` is http(s) to a loopback address: the only callbacks this hub calls."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if parts.scheme not in ("http", "https"):
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class DemoHub:
    """Subscriptions by (topic, callback); `watch_interval_s` is how often new articles are looked for."""

    def __init__(
        self, *, render: Renderer, version: Versioner, now: Callable[[], datetime], watch_interval_s: float = 0.2
    ) -> None:
        self.render = render
        self.version = version
        self.now = now
        self.watch_interval_s = watch_interval_s
        self.subscribers: dict[tuple[str, str], Subscriber] = {}
        self.pushes: list[tuple[str, int]] = []  # (callback, status) of every push, for tests
        self._seen: dict[str, int | None] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None

    async def handle(self, request: Request) -> Response:
        """POST /hub: hub.mode = subscribe | unsubscribe | publish."""
        form = await request.form()
        mode = str(form.get("hub.mode") or "")
        if mode == "publish":
            topic = str(form.get("hub.url") or form.get("hub.topic") or "")
            if self.render(topic) is None:
                return PlainTextResponse("hub.url is no feed of this site\n", status_code=400)
            self._spawn(self.distribute(topic))
            return PlainTextResponse("publishing\n", status_code=202)
        if mode not in ("subscribe", "unsubscribe"):
            return PlainTextResponse("hub.mode must be subscribe, unsubscribe or publish\n", status_code=400)
        topic, callback = str(form.get("hub.topic") or ""), str(form.get("hub.callback") or "")
        if self.render(topic) is None:
            return PlainTextResponse("hub.topic is no feed of this site\n", status_code=400)
        if not is_loopback_url(callback):
            return PlainTextResponse("hub.callback must be an http URL on a loopback address\n", status_code=400)
        lease_text = str(form.get("hub.lease_seconds") or "")
        lease = min(int(lease_text), MAX_LEASE_S) if lease_text.isdigit() and len(lease_text) < 9 else 86400
        secret = str(form.get("hub.secret") or "") or None
        self._spawn(self.verify(mode, topic, callback, secret, lease))
        return PlainTextResponse("verifying\n", status_code=202)

    async def verify(self, mode: str, topic: str, callback: str, secret: str | None, lease: int) -> bool:
        """WebSub 5.3: GET the callback with a challenge; the intent holds only if it is echoed."""
        import aiohttp

        challenge = secrets.token_urlsafe(16)
        query = {"hub.mode": mode, "hub.topic": topic, "hub.challenge": challenge, "hub.lease_seconds": str(lease)}
        joiner = "&" if "?" in callback else "?"
        try:
            async with (
                _session() as session,
                session.get(callback + joiner + urlencode(query), allow_redirects=False) as response,
            ):
                answer = (await response.content.read(1024)).decode("utf-8", "replace")
                ok = 200 <= response.status < 300 and answer == challenge
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("demo hub: verification of %s failed: %s", callback, exc)
            return False
        key = (topic, callback)
        if ok and mode == "subscribe":
            self.subscribers[key] = Subscriber(topic, callback, secret, self.now() + timedelta(seconds=lease))
            self._seen.setdefault(topic, self.version(topic))
            self._start_watcher()
        elif ok:
            self.subscribers.pop(key, None)
        return ok

    async def distribute(self, topic: str) -> int:
        """WebSub 8: POST the topic's feed to each subscriber whose lease runs; returns how many got it."""
        import aiohttp

        rendered = self.render(topic)
        if rendered is None:
            return 0
        body, media_type = rendered
        now = self.now()
        targets = [s for s in self.subscribers.values() if s.topic == topic and s.lease_expires_at > now]
        sent = 0
        async with _session() as session:
            for sub in targets:
                headers = {"Content-Type": media_type, "Link": f'<{topic}>; rel="self"'}
                if sub.secret:
                    headers["X-Hub-Signature"] = signature_header(sub.secret, body)
                try:
                    async with session.post(
                        sub.callback, data=body, headers=headers, allow_redirects=False
                    ) as response:
                        await response.content.read(1024)
                        self.pushes.append((sub.callback, response.status))
                        sent += 1
                except (aiohttp.ClientError, TimeoutError) as exc:
                    log.info("demo hub: push to %s failed: %s", sub.callback, exc)
        return sent

    async def watch_once(self) -> int:
        """One look for new articles: pushes each subscribed topic whose feed changed; returns how many."""
        pushed = 0
        for topic in {s.topic for s in self.subscribers.values()}:
            current = self.version(topic)
            if current != self._seen.get(topic):
                self._seen[topic] = current
                await self.distribute(topic)
                pushed += 1
        return pushed

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.watch_interval_s)
            try:
                await self.watch_once()
            except Exception:  # the watcher must outlive one bad push; the error is logged
                log.exception("demo hub: watching for new articles failed")

    def _start_watcher(self) -> None:
        if self._watcher is None or self._watcher.done():
            self._watcher = asyncio.get_running_loop().create_task(self._watch(), name="demo-hub-watcher")

    def _spawn(self, work: object) -> None:
        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _session() -> aiohttp.ClientSession:
    import aiohttp

    # Callbacks are checked to be loopback before they are stored; no proxy from the environment.
    return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30), trust_env=False)
