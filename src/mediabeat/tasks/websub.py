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

from mediabeat.db.stores.websub import NewSubscription, SubscriptionKeys, UnsubscribeKeys, WebSubStore
from mediabeat.domain.content import FeedRecord
from mediabeat.domain.websub import (
    HubLinks,
    SubscriptionRecord,
    SubscriptionState,
    UnsubscribeState,
    UnsubscriptionRecord,
    push_off_reason,
)
from mediabeat.tasks.base import RunContext, SkipRun, unless_all_failed

if TYPE_CHECKING:  # aiohttp is imported when a request is made, not when the CLI starts
    from mediabeat.crawler.http import SafeClient

CALLBACK_PATH = "/websub/callback/"
# A lease is renewed when this share of it has passed (or at the latest a minute before it ends).
RENEW_AT_SHARE = 0.8
DUE_BATCH = 200
NEVER_VERIFIES = "a hub that never verifies"
# Unsubscriptions confirmed or given up are kept this long for `feeds websub`, then forgotten.
KEEP_ENDED = timedelta(days=30)


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


def plan_unsubscribe(unsub: UnsubscriptionRecord, *, max_attempts: int) -> Attempt:
    """The next step for a due unsubscription: ask the hub to stop, or give up after `max_attempts` requests."""
    if unsub.state != UnsubscribeState.PENDING:
        return Attempt(False, {"next_attempt_at": None})
    if unsub.attempts >= max_attempts:
        error = f"no confirmation after {unsub.attempts} unsubscribe requests to {unsub.hub}; pushes still get 410"
        return Attempt(False, {"state": UnsubscribeState.GIVEN_UP.value, "next_attempt_at": None, "last_error": error})
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
        await self.store.retire_disabled(now=ctx.now)  # feeds disabled by a 410 (or any path) since the last run
        await self.store.forget_ended(before=ctx.now - KEEP_ENDED)
        due = await self.store.due(now=ctx.now, limit=DUE_BATCH)
        ending = await self.store.due_unsubscriptions(now=ctx.now, limit=DUE_BATCH)
        if not due and not ending:
            raise SkipRun("no subscription is due")
        counts = {"due": len(due), "requested": 0, "failed": 0, "given_up": 0}
        counts |= {"unsubscribe_due": len(ending), "unsubscribe_requested": 0, "unsubscribe_failed": 0}
        errors: list[str] = []
        async with self.client_factory() as client:
            for keys in due:
                outcome = await self.attempt(client, keys, ctx.now)
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome == "failed":
                    errors.append(f"{keys.record.hub}: subscription request failed")
            for unsub in ending:
                outcome = "unsubscribe_" + await self.unsubscribe(client, unsub, ctx.now)
                counts[outcome] = counts.get(outcome, 0) + 1
                if outcome == "unsubscribe_failed":
                    errors.append(f"{unsub.record.hub}: unsubscribe request failed")
        ctx.log.info("websub-renew: %s", counts)
        failed = counts["failed"] + counts["unsubscribe_failed"]
        sent = failed + counts["requested"] + counts["unsubscribe_requested"]
        first_error = errors[0] if errors else None
        return unless_all_failed(counts, attempted=sent, failed=failed, unit="hubs", first_error=first_error)

    async def unsubscribe(self, client: SafeClient, keys: UnsubscribeKeys, now: datetime) -> str:
        """Ask the hub to stop pushing (hub.mode=unsubscribe); returns requested | failed | given_up | skipped."""
        unsub = keys.record
        plan = plan_unsubscribe(unsub, max_attempts=self.max_attempts)
        if not plan.subscribe:
            await self.store.update_unsubscription(unsub.id, plan.changes, now=now)
            return "given_up" if plan.changes.get("state") == UnsubscribeState.GIVEN_UP.value else "skipped"
        assert self.public_url is not None
        form = {
            "hub.mode": "unsubscribe",
            "hub.topic": unsub.topic,
            "hub.callback": callback_url(self.public_url, keys.callback_token),
        }
        attempts = unsub.attempts + 1
        # Recorded before the request, as for subscribing: the hub may verify before it answers.
        changes = {"attempts": attempts, "next_attempt_at": retry_time(now, attempts, self.retry_seconds)}
        await self.store.update_unsubscription(unsub.id, changes, now=now)
        error = await self._send(client, unsub.hub, form, "unsubscribe request")
        if error is not None:
            await self.store.update_unsubscription(unsub.id, {"last_error": error}, now=now)
            return "failed"
        return "requested"

    async def _send(self, client: SafeClient, hub: str, form: Mapping[str, str], what: str) -> str | None:
        """POST `form` to the hub; None when it answered 2xx, else what went wrong."""
        from mediabeat.crawler.http import FetchError

        try:
            status, text = await client.post_form(hub, form)
        except FetchError as exc:
            return f"{what}: {exc}"
        if not 200 <= status < 300:
            return f"the hub answered HTTP {status} to the {what}: {text.strip()[:200]}"
        return None

    async def attempt(self, client: SafeClient, keys: SubscriptionKeys, now: datetime) -> str:
        """Carry out the plan for one subscription; returns requested | failed | given_up | skipped."""
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
        error = await self._send(client, sub.hub, form, "subscription request")
        if error is not None:
            await self.store.update(sub.id, {"last_error": error}, now=now)
            return "failed"
        return "requested"
