"""Monitors: create, change and delete saved queries; their matches, exports and secret Atom feeds.

Every change is audited. A query is compiled before it is saved, so a bad one is refused
with the parser's message; a webhook URL is vetted by the crawler's SSRF guard (scheme,
host, and every address the name resolves to) before it is saved, and again on each send.
"""

from __future__ import annotations

import builtins
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mediabeat.auth.emails import InvalidEmail, check_email
from mediabeat.clock import Clock
from mediabeat.db.stores.monitor_deliveries import DeliveryStore
from mediabeat.db.stores.monitor_matches import MatchStore
from mediabeat.db.stores.monitors import MonitorStore
from mediabeat.domain.content import MAX_URL_LENGTH, Actor, InvalidInput
from mediabeat.domain.ids import valid_id
from mediabeat.domain.monitors import (
    MAX_MONITOR_NAME,
    BadWebhookUrl,
    DeliveryRecord,
    MonitorChange,
    MonitorExists,
    MonitorMatch,
    MonitorNotFound,
    MonitorRecord,
    NewMonitor,
)
from mediabeat.domain.secrets import hash_secret
from mediabeat.monitors.query import compile_query
from mediabeat.services.audit import AuditService

MAX_COOLDOWN_S = 7 * 24 * 3600
MAX_PAGE = 1_000  # the API pages up to 500 and asks for one more

# Vets a webhook URL; raises BadWebhookUrl with the reason (the SSRF guard's, in the service).
UrlCheck = Callable[[str], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class CreatedMonitor:
    """A new monitor, with its two secrets: shown once, here (only the feed token's hash is kept)."""

    monitor: MonitorRecord
    feed_token: str
    webhook_secret: str | None


def check_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_MONITOR_NAME or any(not c.isprintable() for c in name):
        raise InvalidInput("name", f"a monitor's name has 1 to {MAX_MONITOR_NAME} printable characters")
    return name


def check_cooldown(seconds: int) -> int:
    if not 0 <= seconds <= MAX_COOLDOWN_S:
        raise InvalidInput("cooldown_s", f"the cool-down is 0 to {MAX_COOLDOWN_S} seconds, not {seconds}")
    return seconds


def check_address(address: str) -> str:
    try:
        return check_email(address.strip())
    except InvalidEmail as exc:
        raise InvalidInput("email", str(exc)) from None


class MonitorService:
    """The rules for an organisation's monitors; every change is audited."""

    def __init__(
        self,
        *,
        store: MonitorStore,
        matches: MatchStore,
        deliveries: DeliveryStore,
        audit: AuditService,
        clock: Clock,
        check_url: UrlCheck,
    ) -> None:
        self.store = store
        self.match_store = matches
        self.deliveries = deliveries
        self.audit = audit
        self.clock = clock
        self.check_url = check_url

    async def _webhook(self, url: str) -> str:
        url = url.strip()
        if len(url) > MAX_URL_LENGTH or any(c.isspace() for c in url):
            raise BadWebhookUrl(f"a webhook URL has at most {MAX_URL_LENGTH} characters and no spaces")
        await self.check_url(url)  # raises BadWebhookUrl
        return url

    async def create(self, org_id: int, new: NewMonitor, actor: Actor) -> CreatedMonitor:
        """Save a monitor; it matches articles stored from now on."""
        query = compile_query(new.query).text
        webhook = await self._webhook(new.webhook_url) if new.webhook_url else None
        feed_token = secrets.token_urlsafe(24)
        secret = secrets.token_urlsafe(32) if webhook else None
        values: dict[str, Any] = {
            "org_id": org_id,
            "name": check_name(new.name),
            "query": query,
            "webhook_url": webhook,
            "webhook_secret": secret,
            "email": check_address(new.email) if new.email else None,
            "digest": new.digest.value,
            "cooldown_s": check_cooldown(new.cooldown_s),
            "spike_alerts": new.spike_alerts,
            "feed_token_hash": hash_secret(feed_token),
            "created_by": actor.name,
        }
        monitor = await self.store.create(values, now=self.clock.now())
        if monitor is None:
            raise MonitorExists(f"the organisation has a monitor named {values['name']!r} already")
        details = {"name": monitor.name, "query": monitor.query, "org_id": org_id}
        await self.audit.record(actor, "monitor.create", target_type="monitor", target_id=monitor.id, details=details)
        return CreatedMonitor(monitor=monitor, feed_token=feed_token, webhook_secret=secret)

    async def change(self, monitor_id: int, change: MonitorChange, actor: Actor) -> tuple[MonitorRecord, str | None]:
        """Apply a patch; a new webhook URL gets a new secret, returned (once) beside the monitor."""
        await self.get(monitor_id)
        values: dict[str, Any] = {}
        secret = None
        if change.query is not None:
            values["query"] = compile_query(change.query).text
        if change.webhook_url is not None:
            values["webhook_url"] = await self._webhook(change.webhook_url) if change.webhook_url else None
            secret = secrets.token_urlsafe(32) if values["webhook_url"] else None
            values["webhook_secret"] = secret
        if change.email is not None:
            values["email"] = check_address(change.email) if change.email else None
        if change.digest is not None:
            values["digest"] = change.digest.value
        if change.cooldown_s is not None:
            values["cooldown_s"] = check_cooldown(change.cooldown_s)
        for name in ("spike_alerts", "active"):
            if (value := getattr(change, name)) is not None:
                values[name] = value
        monitor = await self.store.change(monitor_id, values, now=self.clock.now())
        if monitor is None:
            raise MonitorNotFound(monitor_id)
        shown = {k: v for k, v in values.items() if k != "webhook_secret"}
        await self.audit.record(actor, "monitor.change", target_type="monitor", target_id=monitor_id, details=shown)
        return monitor, secret

    async def rotate_feed_token(self, monitor_id: int, actor: Actor) -> str:
        """A new secret Atom URL for the monitor; the old one stops working."""
        await self.get(monitor_id)
        token = secrets.token_urlsafe(24)
        await self.store.change(monitor_id, {"feed_token_hash": hash_secret(token)}, now=self.clock.now())
        await self.audit.record(actor, "monitor.feed_token", target_type="monitor", target_id=monitor_id)
        return token

    async def delete(self, monitor_id: int, actor: Actor) -> MonitorRecord:
        """Remove a monitor with its matches and deliveries."""
        monitor = await self.get(monitor_id)
        if not await self.store.delete(monitor_id):
            raise MonitorNotFound(monitor_id)
        details = {"name": monitor.name, "org_id": monitor.org_id}
        await self.audit.record(actor, "monitor.delete", target_type="monitor", target_id=monitor_id, details=details)
        return monitor

    async def list(self, *, org_id: int | None = None) -> builtins.list[MonitorRecord]:
        return await self.store.list(org_id=org_id)

    async def get(self, monitor_id: int) -> MonitorRecord:
        monitor = await self.store.get(monitor_id) if valid_id(monitor_id) else None
        if monitor is None:
            raise MonitorNotFound(monitor_id)
        return monitor

    async def by_name(self, org_id: int, name: str) -> MonitorRecord:
        monitor = await self.store.by_name(org_id, name)
        if monitor is None:
            raise MonitorNotFound(name)
        return monitor

    async def by_feed_token(self, token: str) -> MonitorRecord | None:
        """The monitor whose secret Atom URL carries `token`; None for any other string."""
        if not 8 <= len(token) <= 100:
            return None
        return await self.store.by_feed_token_hash(hash_secret(token))

    async def matches(
        self, monitor_id: int, *, limit: int = 50, before_id: int | None = None
    ) -> builtins.list[MonitorMatch]:
        """A page of matches, newest first (keyset paging on the match id)."""
        return await self.match_store.page(monitor_id, limit=min(max(limit, 1), MAX_PAGE), before_id=before_id)

    def export(self, monitor_id: int) -> AsyncIterator[MonitorMatch]:
        """Every match, newest first, streamed a page at a time."""
        return self.match_store.stream(monitor_id)

    async def match_count(self, monitor_id: int) -> int:
        return await self.match_store.count(monitor_id)

    async def deliveries_of(self, monitor_id: int, *, limit: int = 20) -> builtins.list[DeliveryRecord]:
        return await self.deliveries.list(monitor_id, limit=limit)
