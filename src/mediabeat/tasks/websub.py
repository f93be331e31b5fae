"""WebSub for the crawler: recording the hubs feeds advertise, and websub-renew, which subscribes and renews.

The decisions (`plan_attempt`, `renewal_time`) are pure; `WebSubRenewal` carries them out
through the SSRF-guarded client. Receiving the hub's requests is `services.websub`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from mediabeat.db.stores.websub import NewSubscription, SubscriptionKeys, WebSubStore
from mediabeat.domain.content import FeedRecord
from mediabeat.domain.websub import HubLinks, SubscriptionRecord, SubscriptionState, push_off_reason
from mediabeat.tasks.base import RunContext, SkipRun, unless_all_failed

if TYPE_CHECKING:  # aiohttp is imported when a request is made, not when the CLI starts
    from mediabeat.crawler.http import SafeClient

CALLBACK_PATH = "/websub/callback/"
# A lease is renewed when this share of it has passed (or at the latest a minute before it ends).
RENEW_AT_SHARE = 0.8
DUE_BATCH = 200
NEVER_VERIFIES = "a hub that never verifies"


def callback_url(public_url: str, token: str) -> str:
    return public_url.rstrip("/") + CALLBACK_PATH + token


def renewal_time(now: datetime, lease_seconds: int) -> datetime:
    """When to renew a lease granted at `now`: after RENEW_AT_SHARE of it, at least a minute before its end."""
    share = timedelta(seconds=lease_seconds * RENEW_AT_SHARE)
    latest = timedelta(seconds=max(lease_seconds - 60, 1))
    return now + min(share, latest)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What websub-renew does with one due subscription: ask the hub, or record `changes` (give up, expire)."""

    subscribe: bool
    changes: Mapping[str, object]


def plan_attempt(sub: SubscriptionRecord, now: datetime, *, max_attempts: int) -> Attempt:
    """The next step for a due subscription. Pure: the caller sends and records."""
    if sub.state in (SubscriptionState.DENIED, SubscriptionState.UNSUBSCRIBED):
        return Attempt(False, {"next_attempt_at": None})
    if sub.attempts >= max_attempts:
        error = f"{NEVER_VERIFIES}: no verification after {sub.attempts} subscription requests to {sub.hub}"
        return Attempt(False, {"state": SubscriptionState.DENIED.value, "next_attempt_at": None, "last_error": error})
    if sub.state == SubscriptionState.VERIFIED and sub.lease_expires_at is not None and sub.lease_expires_at <= now:
        return Attempt(True, {"state": SubscriptionState.EXPIRED.value})
    return Attempt(True, {})


def retry_time(now: datetime, attempts: int, retry_seconds: int) -> datetime:
    """When to ask again after the `attempts`-th request went unverified (doubling, at most a day)."""
    return now + timedelta(seconds=min(retry_seconds * (1 << min(attempts - 1, 10)), 86400))


class HubRecorder:
    """Notes the hubs of fetched feeds: a new or changed hub becomes a pending subscription."""

    def __init__(self, *, store: WebSubStore) -> None:
        self.store = store

    async def record_hubs(self, found: Sequence[tuple[FeedRecord, HubLinks]], *, now: datetime) -> int:
        return await self.store.record_discovered(
            [
                NewSubscription(
                    org_id=feed.org_id,
                    feed_id=feed.id,
                    hub=hub.hub,
                    topic=hub.self_url or feed.url,
                    callback_token=secrets.token_urlsafe(24),
                    secret=secrets.token_urlsafe(32),
                )
                for feed, hub in found
            ],
            now=now,
        )

    async def pushed(self, feed_ids: Sequence[int], *, now: datetime) -> set[int]:
        """The feeds among `feed_ids` a hub pushes now: the poller gives them only a backup poll."""
        return await self.store.pushed_feed_ids(feed_ids, now=now)


class WebSubRenewal:
    """The websub-renew handler: subscribe pending feeds, renew leases, give up on hubs that never verify."""

    def __init__(
        self,
        *,
        store: WebSubStore,
        client_factory: Callable[[], SafeClient],
        public_url: str | None,
        lease_seconds: int,
        max_attempts: int,
        retry_seconds: int,
    ) -> None:
        self.store = store
        self.client_factory = client_factory
        self.public_url = public_url
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.retry_seconds = retry_seconds

    async def __call__(self, ctx: RunContext) -> Mapping[str, Any]:
        off = push_off_reason(self.public_url)
        if off is not None:
            raise SkipRun(off)
        due = await self.store.due(now=ctx.now, limit=DUE_BATCH)
        if not due:
            raise SkipRun("no subscription is due")
        counts = {"due": len(due), "requested": 0, "failed": 0, "given_up": 0}
        first_error: str | None = None
        async with self.client_factory() as client:
            for keys in due:
                outcome = await self.attempt(client, keys, ctx.now)
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome == "failed" and first_error is None:
                    first_error = f"{keys.record.hub}: subscription request failed"
        ctx.log.info("websub-renew: %s", counts)
        sent = counts["requested"] + counts["failed"]
        return unless_all_failed(counts, attempted=sent, failed=counts["failed"], unit="hubs", first_error=first_error)

    async def attempt(self, client: SafeClient, keys: SubscriptionKeys, now: datetime) -> str:
        """Carry out the plan for one subscription; returns requested | failed | given_up | skipped."""
        from mediabeat.crawler.http import FetchError

        sub = keys.record
        plan = plan_attempt(sub, now, max_attempts=self.max_attempts)
        if not plan.subscribe:
            await self.store.update(sub.id, plan.changes, now=now)
            return "given_up" if plan.changes.get("state") == SubscriptionState.DENIED.value else "skipped"
        assert self.public_url is not None
        form = {
            "hub.mode": "subscribe",
            "hub.topic": sub.topic,
            "hub.callback": callback_url(self.public_url, keys.callback_token),
            "hub.secret": keys.secret,
            "hub.lease_seconds": str(self.lease_seconds),
        }
        attempts = sub.attempts + 1
        changes: dict[str, object] = {**plan.changes, "attempts": attempts}
        changes["next_attempt_at"] = retry_time(now, attempts, self.retry_seconds)
        # Recorded before the request: a hub may verify before it answers, and the verification
        # is accepted only for a subscription with a request outstanding (attempts > 0).
        await self.store.update(sub.id, changes, now=now)
        try:
            status, text = await client.post_form(sub.hub, form)
        except FetchError as exc:
            await self.store.update(sub.id, {"last_error": f"subscription request: {exc}"}, now=now)
            return "failed"
        if not 200 <= status < 300:
            error = f"the hub answered HTTP {status} to the subscription request: {text.strip()[:200]}"
            await self.store.update(sub.id, {"last_error": error}, now=now)
            return "failed"
        return "requested"
