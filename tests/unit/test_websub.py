"""WebSub's pure parts: hub discovery, signatures, the hub's GET, and websub-renew's decisions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from mediabeat.crawler.websub import check_signature, discover_hub, link_header_rels, read_hub_request
from mediabeat.domain.websub import (
    HubLinks,
    PushRefusal,
    SubscriptionRecord,
    SubscriptionState,
    push_off_reason,
    signature_header,
)
from mediabeat.tasks.websub import NEVER_VERIFIES, callback_url, plan_attempt, renewal_time, retry_time

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
FEED = "https://news.example.org/feeds/world.rss"


def test_rss_channel_atom_links_give_the_hub_and_self() -> None:
    body = (
        b'<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom"><channel><title>x</title>'
        b'<atom:link rel="self" href="/feeds/world.rss"/><atom:link rel="hub" href="https://hub.example.net/"/>'
        b"<item><link>https://news.example.org/a</link></item></channel></rss>"
    )
    assert discover_hub(body, None, FEED) == HubLinks("https://hub.example.net/", FEED)


def test_atom_feed_links_and_link_header_first() -> None:
    body = (
        b'<feed xmlns="http://www.w3.org/2005/Atom"><title>x</title>'
        b'<link rel="hub" href="https://in-body.example.net/"/><link rel="self" href="https://news.example.org/a.atom"/>'
        b"</feed>"
    )
    assert discover_hub(body, None, FEED) == HubLinks("https://in-body.example.net/", "https://news.example.org/a.atom")
    header = '<https://from-header.example.net/>; rel="hub", <https://news.example.org/t>; rel=self'
    assert discover_hub(body, header, FEED) == HubLinks(
        "https://from-header.example.net/", "https://news.example.org/t"
    )


def test_no_hub_and_broken_bodies_give_none() -> None:
    assert discover_hub(b"<rss><channel><title>no hub here</title></channel></rss>", None, FEED) is None
    assert discover_hub(b"<<<not xml hub", None, FEED) is None
    assert discover_hub(b"", '<javascript:alert(1)>; rel="hub"', FEED) is None
    assert link_header_rels('<a>; rel="next hub"', FEED) == {
        "next": "https://news.example.org/feeds/a",
        "hub": "https://news.example.org/feeds/a",
    }


def test_signatures() -> None:
    body = b"<rss/>"
    assert check_signature("k", body, signature_header("k", body)).valid
    assert check_signature("k", body, signature_header("k", body, "sha512")).valid
    assert check_signature("k", body, None).refusal == PushRefusal.NO_SIGNATURE
    assert check_signature("k", body, signature_header("other", body)).refusal == PushRefusal.BAD_SIGNATURE
    assert check_signature("k", body + b" ", signature_header("k", body)).refusal == PushRefusal.BAD_SIGNATURE
    assert check_signature("k", body, "sha1=00").refusal == PushRefusal.WEAK_SIGNATURE
    assert check_signature("k", body, "garbage").refusal == PushRefusal.WEAK_SIGNATURE


def test_hub_requests() -> None:
    request = read_hub_request(
        {"hub.mode": "subscribe", "hub.topic": FEED, "hub.challenge": "c", "hub.lease_seconds": "99"}
    )
    assert request is not None and (request.mode, request.challenge, request.lease_seconds) == ("subscribe", "c", 99)
    assert read_hub_request({"hub.mode": "subscribe", "hub.topic": FEED}) is None  # no challenge
    assert read_hub_request({"hub.mode": "publish", "hub.topic": FEED, "hub.challenge": "c"}) is None
    denied = read_hub_request({"hub.mode": "denied", "hub.topic": FEED, "hub.reason": "no"})
    assert denied is not None and denied.reason == "no"
    huge = read_hub_request(
        {"hub.mode": "subscribe", "hub.topic": FEED, "hub.challenge": "c", "hub.lease_seconds": "9" * 30}
    )
    assert huge is not None and huge.lease_seconds is None


def _sub(state: SubscriptionState, attempts: int = 0, lease_end: datetime | None = None) -> SubscriptionRecord:
    return SubscriptionRecord(
        1, 1, 1, "https://hub.example.net/", FEED, state, None, lease_end, attempts, NOW, None, None, NOW, NOW
    )


def test_plan_attempt() -> None:
    assert plan_attempt(_sub(SubscriptionState.PENDING), NOW, max_attempts=3).subscribe
    gave_up = plan_attempt(_sub(SubscriptionState.PENDING, attempts=3), NOW, max_attempts=3)
    assert not gave_up.subscribe and gave_up.changes["state"] == "denied"
    assert NEVER_VERIFIES in str(gave_up.changes["last_error"])
    expired = plan_attempt(_sub(SubscriptionState.VERIFIED, lease_end=NOW), NOW, max_attempts=3)
    assert expired.subscribe and expired.changes == {"state": "expired"}
    assert not plan_attempt(_sub(SubscriptionState.DENIED), NOW, max_attempts=3).subscribe


def test_times_and_urls() -> None:
    assert renewal_time(NOW, 1000) == NOW + timedelta(seconds=800)
    assert renewal_time(NOW, 120) == NOW + timedelta(seconds=60)
    assert retry_time(NOW, 1, 300) == NOW + timedelta(seconds=300)
    assert retry_time(NOW, 3, 300) == NOW + timedelta(seconds=1200)
    assert retry_time(NOW, 40, 300) == NOW + timedelta(days=1)
    assert callback_url("https://beat.example.org/", "tok") == "https://beat.example.org/websub/callback/tok"
    assert push_off_reason(None) and push_off_reason("beat.example.org") and push_off_reason("https://x") is None


def test_the_cli_starts_without_the_http_client() -> None:
    """WebSub, the demo hub and sitemaps import aiohttp when they first send, not when a command starts."""
    import subprocess
    import sys

    code = "import sys, mediabeat.cli; print('aiohttp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
