"""WebSub push: answering a hub's verification, taking pushed feed bodies, and what a feed's push state is.

The hub's requests arrive at /websub/callback/{token} (web/websub.py). A verified, signed body
becomes crawl jobs at once, through the same parse and enqueue as hourly-rss-fetch.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta

from mediabeat.clock import Clock
from mediabeat.crawler.feeds import FeedParseError
from mediabeat.crawler.websub import HubRequest, check_signature, read_hub_request
from mediabeat.db.stores.feeds import FeedStore
from mediabeat.db.stores.jobs import JobStore
from mediabeat.db.stores.websub import SubscriptionKeys, WebSubStore
from mediabeat.domain.websub import (
    PushOutcome,
    PushRefusal,
    SubscriptionRecord,
    SubscriptionState,
    UnsubscribeState,
    UnsubscriptionRecord,
    VerificationRefused,
    push_off_reason,
)
from mediabeat.tasks.feed_entries import crawl_jobs, entry_links, parse_feed_body
from mediabeat.tasks.websub import renewal_time

ENDED = (SubscriptionState.DENIED, SubscriptionState.UNSUBSCRIBED)


@dataclass(frozen=True, slots=True)
class PushStatus:
    """A feed's push state for `feeds websub`, the dashboard and the API: its subscription and why push is off."""

    subscription: SubscriptionRecord | None
    push_off: str | None


class WebSubService:
    """The subscriber side of WebSub (the hub's requests); subscribing and renewing is the websub-renew task."""

    def __init__(
        self,
        *,
        store: WebSubStore,
        feeds: FeedStore,
        jobs: JobStore,
        clock: Clock,
        public_url: str | None,
        lease_seconds: int,
        max_body_bytes: int,
        job_max_attempts: int,
    ) -> None:
        self.store = store
        self.feeds = feeds
        self.jobs = jobs
        self.clock = clock
        self.public_url = public_url
        self.lease_seconds = lease_seconds
        self.max_body_bytes = max_body_bytes
        self.job_max_attempts = job_max_attempts

    @property
    def push_off(self) -> str | None:
        """Why push is off (no MEDIABEAT_PUBLIC_URL), or None when hubs can reach us."""
        return push_off_reason(self.public_url)

    async def verify(self, token: str, query: Mapping[str, str]) -> str:
        """WebSub 5.3: the challenge to echo when the hub's GET matches a request we made; else VerificationRefused."""
        keys = await self.store.by_token(token[:100])
        request = read_hub_request(query)
        if request is None:
            raise VerificationRefused("not a hub request")
        if keys is None:
            return await self._verify_unsubscribe(token[:100], request)
        sub, now = keys.record, self.clock.now()
        if request.topic != sub.topic:
            await self.store.update(
                sub.id, {"last_error": f"verification for another topic refused: {request.topic[:300]}"}, now=now
            )
            raise VerificationRefused("hub.topic does not match the subscription")
        if request.mode == "denied":
            reason = f"the hub denied the subscription: {request.reason or 'no reason given'}"
            await self.store.update(
                sub.id,
                {"state": SubscriptionState.DENIED.value, "next_attempt_at": None, "last_error": reason},
                now=now,
            )
            return ""
        if request.mode == "unsubscribe":  # someone else asked the hub to end a subscription we keep
            await self.store.update(sub.id, {"last_error": "an unsubscribe we did not ask for was refused"}, now=now)
            raise VerificationRefused("we did not ask to unsubscribe")
        if sub.state in ENDED or sub.attempts == 0:
            raise VerificationRefused("no subscription request of ours is outstanding")
        lease = request.lease_seconds or self.lease_seconds
        changes = {
            "state": SubscriptionState.VERIFIED.value,
            "lease_seconds": lease,
            "lease_expires_at": now + timedelta(seconds=lease),
            "attempts": 0,
            "next_attempt_at": renewal_time(now, lease),
            "last_error": None,
        }
        await self.store.update(sub.id, changes, now=now)
        return request.challenge or ""

    async def _verify_unsubscribe(self, token: str, request: HubRequest) -> str:
        """WebSub 5.3 for hub.mode=unsubscribe: confirm only an unsubscribe request we sent, for its topic."""
        keys = await self.store.by_unsubscribe_token(token)
        if keys is None:
            raise VerificationRefused("no such subscription")
        unsub = keys.record
        if request.mode != "unsubscribe":
            raise VerificationRefused("this subscription has ended: only its unsubscribe is confirmed")
        if request.topic != unsub.topic:
            raise VerificationRefused("hub.topic does not match the subscription")
        if unsub.state != UnsubscribeState.PENDING or unsub.attempts == 0:
            raise VerificationRefused("no unsubscribe request of ours is outstanding")
        changes = {"state": UnsubscribeState.CONFIRMED.value, "next_attempt_at": None, "last_error": None}
        await self.store.update_unsubscription(unsub.id, changes, now=self.clock.now())
        return request.challenge or ""

    async def receive(self, token: str, body: bytes, signature: str | None, *, too_large: bool = False) -> PushOutcome:
        """WebSub 8: a pushed body. Unknown callback: subscription_id None (answer 410); else acknowledged."""
        keys = await self.store.by_token(token[:100])
        if keys is None or keys.record.state in ENDED:
            return PushOutcome(None, reason="no such subscription")
        if too_large:
            return await self._ignored(
                keys, PushRefusal.TOO_LARGE, f"pushed body larger than {self.max_body_bytes} bytes"
            )
        check = check_signature(keys.secret, body, signature)
        if not check.valid:
            assert check.refusal is not None
            return await self._ignored(keys, check.refusal, check.reason or "")
        return await self._take(keys, body)

    async def _take(self, keys: SubscriptionKeys, body: bytes) -> PushOutcome:
        sub, now = keys.record, self.clock.now()
        feed = await self.feeds.get(sub.feed_id)
        if feed is None or not feed.active:  # gone: 410, and websub-renew asks the hub to stop
            return PushOutcome(None, reason="the feed is disabled or gone")
        try:
            parsed = await parse_feed_body(body, url=sub.topic, content_type="")
        except FeedParseError as exc:
            return await self._ignored(keys, PushRefusal.NOT_A_FEED, f"pushed body is not a feed: {exc}")
        found = entry_links(parsed)
        created = await self.jobs.enqueue(
            crawl_jobs(feed, found.links, found.published), now=now, max_attempts=self.job_max_attempts
        )
        await self.store.update(sub.id, {"last_push_at": now, "last_error": None}, now=now)
        return PushOutcome(sub.id, entries=len(found.links), jobs_created=created)

    async def _ignored(self, keys: SubscriptionKeys, refusal: PushRefusal, reason: str) -> PushOutcome:
        now = self.clock.now()
        await self.store.update(keys.record.id, {"last_error": f"push ignored ({refusal.value}): {reason}"}, now=now)
        return PushOutcome(keys.record.id, refused=refusal, reason=reason)

    async def status(self, feed_id: int) -> PushStatus:
        return PushStatus(await self.store.for_feed(feed_id), self.push_off)

    async def list(self, *, org_id: int | None = None) -> list[SubscriptionRecord]:
        return await self.store.list(org_id=org_id)

    async def push_states(self, feed_ids: Iterable[int]) -> dict[int, SubscriptionRecord]:
        """Each listed feed's subscription (absent: its feed names no hub), for the feeds page."""
        return await self.store.for_feeds(feed_ids)

    async def unsubscriptions(self, *, org_id: int | None = None) -> builtins.list[UnsubscriptionRecord]:
        """Subscriptions being ended (or ended in the last 30 days): the hub, why, and whether it confirmed."""
        return await self.store.unsubscriptions(org_id=org_id)

    async def pushed_feed_ids(self, feed_ids: Iterable[int]) -> set[int]:
        """Feeds a hub pushes now: the poller may give them the long (backup) interval."""
        return await self.store.pushed_feed_ids(feed_ids, now=self.clock.now())
