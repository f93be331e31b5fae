"""The shared politeness decision (db.stores.politeness.plan_start), walked through with a made-up clock."""

from __future__ import annotations

import pytest

from mediabeat.db.stores.politeness import HostState, StartPlan, plan_start

NOW = 1_000_000.0


def state(**values: float) -> HostState:
    fields = {"now": NOW, "next_start_at": 0.0, "cooldown_until": 0.0, "crawl_delay_s": 0.0, "crawl_delay_until": 0.0}
    return HostState(**{**fields, **values})


def test_a_free_host_starts_now_and_pushes_the_next_start_one_spacing_on() -> None:
    assert plan_start(state(), busy=0, limit=2, spacing=0.5) == StartPlan(True, 0.0, NOW + 0.5, 0.5)


def test_a_host_with_every_slot_taken_says_ask_again() -> None:
    assert plan_start(state(), busy=2, limit=2, spacing=0.5) == StartPlan(False, 0.0, spacing=0.5)


def test_the_start_waits_for_the_previous_reservation_and_the_cool_down() -> None:
    waiting = plan_start(state(next_start_at=NOW + 0.3), busy=1, limit=2, spacing=0.5)
    assert waiting == StartPlan(True, pytest.approx(0.3), pytest.approx(NOW + 0.8), 0.5)
    cooled = plan_start(state(next_start_at=NOW + 0.3, cooldown_until=NOW + 0.9), busy=0, limit=2, spacing=0.5)
    assert cooled == StartPlan(True, pytest.approx(0.9), pytest.approx(NOW + 1.4), 0.5)


def test_a_start_beyond_the_horizon_is_not_reserved_and_says_when_to_ask_again() -> None:
    plan = plan_start(state(cooldown_until=NOW + 30), busy=0, limit=2, spacing=0.5)
    assert plan == StartPlan(False, 29.0, spacing=0.5)


def test_a_shared_crawl_delay_spaces_starts_until_it_expires() -> None:
    live = state(crawl_delay_s=3.0, crawl_delay_until=NOW + 10)
    assert plan_start(live, busy=0, limit=2, spacing=0.5) == StartPlan(True, 0.0, NOW + 3.0, 3.0)
    expired = state(crawl_delay_s=3.0, crawl_delay_until=NOW - 1)
    assert plan_start(expired, busy=0, limit=2, spacing=0.5) == StartPlan(True, 0.0, NOW + 0.5, 0.5)
