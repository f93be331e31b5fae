"""WebSub (W3C Recommendation, 2018) records: a feed's hub, a subscription to it and its state."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

# WebSub 8: the hub signs with one of these. SHA-1, which the spec also lists, is refused: SHA-256 is
# what hubs that sign use (Google's, WordPress's, Superfeedr's), accepting SHA-1 would let a weaker
# method through for no hub we know needs it, and the refusal is recorded on the subscription.
SIGNATURE_METHODS = {"sha256": hashlib.sha256, "sha384": hashlib.sha384, "sha512": hashlib.sha512}


def signature_header(secret: str, body: bytes, method: str = "sha256") -> str:
    """The X-Hub-Signature value for `body`: the method and the hex HMAC keyed with hub.secret."""
    return f"{method}={hmac.new(secret.encode('utf-8'), body, SIGNATURE_METHODS[method]).hexdigest()}"


def push_off_reason(public_url: str | None) -> str | None:
    """Why push cannot work with this public URL (MEDIABEAT_PUBLIC_URL), or None when it can."""
    if not public_url:
        return "push is off: MEDIABEAT_PUBLIC_URL is not set, so no hub can reach a callback"
    if not public_url.startswith(("http://", "https://")):
        return f"push is off: MEDIABEAT_PUBLIC_URL {public_url!r} is not an http(s) address"
    return None


class SubscriptionState(StrEnum):
    """Where a subscription stands; its value is what websub_subscriptions.state holds."""

    PENDING = "pending"  # asked (or about to ask) the hub; it has not verified our callback yet
    VERIFIED = "verified"  # the hub verified the callback: it pushes until lease_expires_at
    DENIED = "denied"  # the hub refused (hub.mode=denied), or it never verified within the bound
    EXPIRED = "expired"  # the lease ran out without a renewal
    UNSUBSCRIBED = "unsubscribed"  # we (or the hub, verifying an unsubscribe) ended it


class PushRefusal(StrEnum):
    """Why a pushed body was acknowledged but not used (WebSub 8: acknowledge with 2xx, ignore it)."""

    NO_SIGNATURE = "missing_signature"
    BAD_SIGNATURE = "bad_signature"
    WEAK_SIGNATURE = "unsupported_signature_method"
    TOO_LARGE = "too_large"
    NOT_A_FEED = "not_a_feed"
    NOT_VERIFIED = "not_verified"


@dataclass(frozen=True, slots=True)
class HubLinks:
    """What a feed advertises: its hub and its own (topic) URL, from the body or the Link header."""

    hub: str
    self_url: str | None


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """One feed's subscription to its hub. The shared secret is not here: only the store reads it."""

    id: int
    org_id: int
    feed_id: int
    hub: str
    topic: str
    state: SubscriptionState
    lease_seconds: int | None
    lease_expires_at: datetime | None
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_push_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UnsubscribeState(StrEnum):
    """Where ending a subscription stands; its value is what websub_unsubscriptions.state holds."""

    PENDING = "pending"  # to ask the hub (again), or asked and not confirmed yet
    CONFIRMED = "confirmed"  # the hub verified our unsubscribe request: it stopped
    GIVEN_UP = "given_up"  # no confirmation within the bound; pushes still get 410


class UnsubscribeReason(StrEnum):
    """Why a subscription is being ended (the start of websub_unsubscriptions.reason)."""

    FEED_DELETED = "feed deleted"
    FEED_DISABLED = "feed disabled"
    ORG_REMOVED = "organisation removed"
    HUB_CHANGED = "hub changed"


@dataclass(frozen=True, slots=True)
class UnsubscriptionRecord:
    """A subscription being ended: the hub is asked to stop (hub.mode=unsubscribe) until it confirms.

    The feed and its organisation may be gone; their ids are kept for the record only.
    """

    id: int
    org_id: int
    feed_id: int
    hub: str
    topic: str
    reason: str
    state: UnsubscribeState
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class PushOutcome:
    """What became of one pushed body: the jobs it queued, or why it was ignored."""

    subscription_id: int | None
    entries: int = 0
    jobs_created: int = 0
    refused: PushRefusal | None = None
    reason: str | None = None


class VerificationRefused(Exception):
    """A hub's verification request does not match a subscription we asked for (answered 404)."""
