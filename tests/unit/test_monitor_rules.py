"""The pure monitor rules: when a delivery is due, retries, the spike rule; and the matcher's tokens and prefilter."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.db.stores.monitors import ActiveMonitor
from mediabeat.domain.monitors import Digest, MonitorMatchDoc, MonitorRecord
from mediabeat.monitors import rules
from mediabeat.monitors.matcher import OrgMonitors
from mediabeat.monitors.query import compile_query, document, tokens_of
from mediabeat.search.tokens import tokenize

NOW = datetime(2026, 3, 2, 10, 20, tzinfo=UTC)
MONITOR = MonitorRecord(
    id=1,
    org_id=1,
    name="m",
    query="x",
    webhook_url=None,
    email=None,
    digest=Digest.NONE,
    cooldown_s=300,
    spike_alerts=True,
    active=True,
    start_after_article_id=0,
    version=1,
    created_by="t",
    created_at=NOW - timedelta(days=30),
    updated_at=NOW,
    last_delivered_at=None,
    last_spike_at=None,
)


def doc(title: str, text: str = "", url: str = "https://example.org/a") -> MonitorMatchDoc:
    return MonitorMatchDoc(
        id=5, org_id=1, feed_id=None, url=url, title=title, summary=None, text=text, language="en", published_at=None
    )


def test_without_a_digest_a_message_goes_at_once_then_waits_out_the_cool_down() -> None:
    assert rules.delivery_due(MONITOR, oldest_pending=NOW, now=NOW)
    sent = replace(MONITOR, last_delivered_at=NOW - timedelta(seconds=100))
    assert not rules.delivery_due(sent, oldest_pending=NOW, now=NOW)
    assert rules.delivery_due(sent, oldest_pending=NOW, now=NOW + timedelta(seconds=200))


def test_digests_wait_for_the_hour_or_the_day_to_end() -> None:
    hourly, daily = replace(MONITOR, digest=Digest.HOURLY), replace(MONITOR, digest=Digest.DAILY)
    assert not rules.delivery_due(hourly, oldest_pending=NOW, now=NOW.replace(minute=59))
    assert rules.delivery_due(hourly, oldest_pending=NOW, now=NOW.replace(hour=11, minute=0))
    assert not rules.delivery_due(daily, oldest_pending=NOW, now=NOW.replace(hour=23))
    assert rules.delivery_due(daily, oldest_pending=NOW, now=NOW + timedelta(days=1))


def test_retries_back_off_exponentially_and_give_up() -> None:
    delays = [rules.retry_at(n, NOW) for n in range(1, rules.MAX_ATTEMPTS + 1)]
    assert [(d - NOW).total_seconds() for d in delays[:4] if d] == [30, 60, 120, 240]
    assert delays[-1] is None


def test_the_spike_threshold_is_never_below_five() -> None:
    assert rules.spike_threshold([]) == 5.0
    assert rules.spike_threshold([1] * 168) == 5.0
    assert rules.spike_threshold([10] * 168) == 10.0  # no spread: above the mean is a spike


def test_a_spike_is_this_hours_count_above_mean_plus_three_deviations_once_an_hour() -> None:
    counts = {(NOW - timedelta(hours=h)).strftime("%Y-%m-%dT%H"): 10 + (h % 2) * 4 for h in range(1, 169)}
    threshold = rules.spike_threshold(
        rules.hourly_history(counts, start=NOW - timedelta(days=7), end=NOW.replace(minute=0))
    )
    assert threshold == pytest.approx(12 + 3 * 2)
    counts[NOW.strftime("%Y-%m-%dT%H")] = 18
    assert rules.spike(MONITOR, counts, now=NOW) is None
    counts[NOW.strftime("%Y-%m-%dT%H")] = 19
    assert rules.spike(MONITOR, counts, now=NOW) == (19, pytest.approx(18))
    assert rules.spike(replace(MONITOR, last_spike_at=NOW.replace(minute=5)), counts, now=NOW) is None


@pytest.mark.parametrize(
    "text",
    ["Élysée talks, œuvre and ½ of the ﬁnal_score", "Straße ŒUVRE naïve café 2026", "", "日本語のテキスト mixed"],
)
def test_the_matchers_tokens_are_the_search_indexs(text: str) -> None:
    assert tokens_of(text) == tokenize(text)


def test_set_and_positional_queries_agree_with_the_search_evaluator() -> None:
    article = document(doc("The city council met", "Harbour dues rise. The mayor spoke near the old harbour wall."))
    for query, expected in [
        ("council", True),
        ("harbour AND NOT sport", True),
        ("(ferry OR council) -mayor", False),
        ('"old harbour"', True),
        ('"harbour old"', False),
        ("mayor NEAR/3 harbour", True),
        ("counc*", True),
        ("council site:example.org", True),
        ("council site:other.org", False),
    ]:
        assert compile_query(query).matches(article) is expected, query


def test_the_prefilter_tests_only_monitors_sharing_a_required_token() -> None:
    org = OrgMonitors.compile(
        (1, 3, 3),
        [
            ActiveMonitor(1, "harbour OR ferry", 0),
            ActiveMonitor(2, '"city council"', 0),
            ActiveMonitor(3, "counc*", 10),
        ],
    )
    assert set(org.by_word) == {"harbour", "ferry", "council"} and [m.id for m in org.unfiltered] == [3]
    article = document(doc("City council", "and the harbour"))
    assert sorted(org.match(5, article)) == [1, 2]  # 3 starts after article 10


def test_a_recompile_parses_only_the_queries_that_changed() -> None:
    first = OrgMonitors.compile((1, 2, 2), [ActiveMonitor(1, "harbour OR ferry", 0), ActiveMonitor(2, "council", 0)])
    again = OrgMonitors.compile(
        (2, 3, 3),
        [ActiveMonitor(1, "harbour OR ferry", 0), ActiveMonitor(2, "mayor", 0), ActiveMonitor(3, "council", 0)],
        previous=first,
    )
    assert again.queries["harbour OR ferry"] is first.queries["harbour OR ferry"]
    assert again.queries["council"] is first.queries["council"]  # the same text, now another monitor's
    assert "mayor" in again.queries and set(again.queries) == {"harbour OR ferry", "mayor", "council"}
    assert sorted(again.match(5, document(doc("The mayor", "and the council")))) == [2, 3]
