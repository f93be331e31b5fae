"""Delivering monitor matches: webhooks (HMAC-signed JSON, through the SSRF-guarded client) and email.

Two steps, as everywhere here: `plan` decides which monitors' pending matches go out now
(cool-down, digests: `rules.delivery_due`) and queues one delivery per channel, holding the
matches it lists; `send_due` claims due deliveries atomically and makes one attempt each,
rescheduling a failure with exponential backoff (`rules.retry_at`). Every attempt is
recorded in monitor_deliveries.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any

from mediabeat.clock import Clock
from mediabeat.crawler.http import FetchError, FetchErrorKind, SafeClient
from mediabeat.db.stores.monitor_deliveries import DeliveryStore
from mediabeat.db.stores.monitor_matches import MatchStore
from mediabeat.db.stores.monitors import MonitorStore
from mediabeat.domain.monitors import DeliveryChannel, DeliveryKind, DeliveryRecord, MonitorMatch, MonitorRecord
from mediabeat.mail import send_mail
from mediabeat.monitors import rules
from mediabeat.settings import SmtpServer

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-MediaBeat-Signature"
# A message lists at most this many matches (the newest); `total` says how many there were.
MAX_LISTED = 100
CLAIM_BATCH = 50
LEASE = timedelta(minutes=2)


def sign(secret: str, body: bytes) -> str:
    """The X-MediaBeat-Signature value: "sha256=" and the hex HMAC-SHA256 of the raw body under the monitor's secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def match_item(match: MonitorMatch) -> dict[str, Any]:
    return {
        "article_id": match.article_id,
        "url": match.url,
        "title": match.title,
        "published_at": match.published_at.isoformat() if match.published_at else None,
        "matched_at": match.matched_at.isoformat(),
    }


def payload(monitor: MonitorRecord, kind: DeliveryKind, *, now: datetime, **facts: Any) -> dict[str, Any]:
    return {
        "monitor": {"id": monitor.id, "name": monitor.name, "org_id": monitor.org_id, "query": monitor.query},
        "kind": kind.value,
        "created_at": now.isoformat(),
        **facts,
    }


def channels_of(monitor: MonitorRecord) -> list[DeliveryChannel]:
    found = []
    if monitor.webhook_url:
        found.append(DeliveryChannel.WEBHOOK)
    if monitor.email:
        found.append(DeliveryChannel.EMAIL)
    return found


@dataclass(frozen=True, slots=True)
class MailSetup:
    server: SmtpServer
    sender: str


class MonitorDeliveries:
    """Plans and sends the deliveries of every monitor; one per process."""

    def __init__(
        self,
        *,
        monitors: MonitorStore,
        matches: MatchStore,
        deliveries: DeliveryStore,
        clock: Clock,
        client_factory: Callable[[], SafeClient],
        mail: MailSetup | None,
        public_url: str | None = None,
    ) -> None:
        self.monitors = monitors
        self.matches = matches
        self.deliveries = deliveries
        self.clock = clock
        self.client_factory = client_factory
        self.mail = mail
        self.public_url = public_url.rstrip("/") if public_url else None
        self._flushing = asyncio.Lock()

    async def plan(self, now: datetime) -> int:
        """Queue a message for every monitor whose pending matches are due; returns how many monitors."""
        planned = 0
        for monitor, _pending, oldest in await self.monitors.with_pending():
            if not rules.delivery_due(monitor, oldest_pending=oldest, now=now):
                continue
            listed, total = await self.matches.take_pending(monitor.id, now=now, limit=MAX_LISTED)
            channels = channels_of(monitor)
            if channels and total:
                kind = DeliveryKind.MATCHES if monitor.digest.value == "none" else DeliveryKind.DIGEST
                body = payload(monitor, kind, now=now, total=total, matches=[match_item(m) for m in listed])
                await self.deliveries.enqueue(
                    monitor_id=monitor.id, org_id=monitor.org_id, channels=channels, kind=kind, payload=body, now=now
                )
            await self.monitors.mark_delivered(monitor.id, now=now)
            planned += 1
        return planned

    async def check_spikes(self, now: datetime) -> int:
        """Queue a spike alert for each monitor whose matches this hour rose above its baseline (rules.spike)."""
        alerts = 0
        for monitor in await self.monitors.with_spike_alerts():
            since = rules.hour_start(now) - rules.SPIKE_BASELINE
            found = rules.spike(monitor, await self.matches.hourly_counts(monitor.id, since=since), now=now)
            channels = channels_of(monitor)
            if found is None or not channels:
                continue
            count, threshold = found
            body = payload(
                monitor,
                DeliveryKind.SPIKE,
                now=now,
                hour=rules.hour_start(now).isoformat(),
                count=count,
                threshold=round(threshold, 2),
            )
            await self.deliveries.enqueue(
                monitor_id=monitor.id,
                org_id=monitor.org_id,
                channels=channels,
                kind=DeliveryKind.SPIKE,
                payload=body,
                now=now,
            )
            await self.monitors.mark_delivered(monitor.id, now=now, spike=True)
            alerts += 1
        return alerts

    async def send_due(self, now: datetime) -> tuple[int, int]:
        """Make one attempt at each due delivery; returns (sent, failed attempts)."""
        sent = failed = 0
        async with self.client_factory() as client:
            while batch := await self.deliveries.claim_due(now=now, limit=CLAIM_BATCH, lease=LEASE):
                for delivery in batch:
                    problem, permanent = await self._attempt(delivery, client)
                    if problem is None:
                        await self.deliveries.record_sent(delivery.id, now=self.clock.now())
                        sent += 1
                        continue
                    failed += 1
                    retry = None if permanent else rules.retry_at(delivery.attempts, self.clock.now())
                    await self.deliveries.record_failure(delivery.id, error=problem, retry_at=retry)
                    log.warning("monitor delivery %d (%s) failed: %s", delivery.id, delivery.channel, problem)
                if len(batch) < CLAIM_BATCH:
                    break
        return sent, failed

    async def flush(self, _monitor_ids: set[int] | None = None) -> None:
        """Plan and send at once (after new matches): a monitor out of its cool-down hears within seconds."""
        async with self._flushing:
            now = self.clock.now()
            if await self.plan(now):
                await self.send_due(now)

    async def _attempt(self, delivery: DeliveryRecord, client: SafeClient) -> tuple[str | None, bool]:
        monitor = await self.monitors.get(delivery.monitor_id)
        if monitor is None:
            return "the monitor was deleted", True
        if delivery.channel == DeliveryChannel.WEBHOOK:
            return await self._post(delivery, monitor, client)
        return await self._mail(delivery, monitor)

    async def _post(
        self, delivery: DeliveryRecord, monitor: MonitorRecord, client: SafeClient
    ) -> tuple[str | None, bool]:
        if not monitor.webhook_url:
            return "the monitor has no webhook any more", True
        body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "X-MediaBeat-Delivery": str(delivery.id),
            SIGNATURE_HEADER: sign(await self.monitors.webhook_secret(monitor.id) or "", body),
        }
        try:
            result = await client.post(monitor.webhook_url, body, headers=headers)
        except FetchError as exc:
            return str(exc), exc.kind in (FetchErrorKind.BLOCKED, FetchErrorKind.BAD_URL)
        if 200 <= result.status < 300:
            return None, False
        return f"HTTP {result.status}", result.status in (400, 401, 403, 404, 410)

    async def _mail(self, delivery: DeliveryRecord, monitor: MonitorRecord) -> tuple[str | None, bool]:
        if self.mail is None or not monitor.email:
            return "no mail server is configured (MEDIABEAT_SMTP_URL)" if monitor.email else "no address", True
        message = self.message(delivery, monitor, sender=self.mail.sender)
        try:
            await asyncio.to_thread(send_mail, self.mail.server, message, timeout_s=10.0)
        except (smtplib.SMTPException, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}", False
        return None, False

    def message(self, delivery: DeliveryRecord, monitor: MonitorRecord, *, sender: str) -> EmailMessage:
        facts = delivery.payload
        message = EmailMessage()
        message["From"] = sender
        message["To"] = monitor.email or ""
        if delivery.kind == DeliveryKind.SPIKE:
            message["Subject"] = f"MediaBeat: spike in monitor {monitor.name}"
            lines = [f"{facts.get('count')} matches this hour (threshold {facts.get('threshold')})."]
        else:
            total = facts.get("total", 0)
            label = "digest" if delivery.kind == DeliveryKind.DIGEST else "new matches"
            message["Subject"] = f"MediaBeat: {total} {label} for monitor {monitor.name}"
            lines = [f"Query: {monitor.query}", ""]
            items = facts.get("matches")
            for item in items if isinstance(items, list) else []:
                lines += [f"- {item.get('title') or item.get('url')}", f"  {item.get('url')}"]
            if isinstance(total, int) and total > MAX_LISTED:
                lines.append(f"... and {total - MAX_LISTED} more")
        if self.public_url:
            lines += ["", f"All matches: {self.public_url}/app/monitors/{monitor.id}"]
        message.set_content("\n".join(lines) + "\n")
        return message
