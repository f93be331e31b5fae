"""The dashboard's pure presentation helpers: relative times, durations, badge colours and the chart layout."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.web.dashboard.render import safe_next
from mediabeat.web.dashboard.view import RunPoint, duration, duration_chart, status_class, when

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("offset", "words"),
    [
        (timedelta(0), "just now"),
        (timedelta(seconds=-42), "42 s ago"),
        (timedelta(minutes=-3, seconds=-59), "3 min ago"),
        (timedelta(hours=2, minutes=5), "in 2 h"),
        (timedelta(days=-9), "9 d ago"),
    ],
)
def test_when_says_how_far_an_instant_is_from_now(offset: timedelta, words: str) -> None:
    assert when(NOW + offset, NOW) == words


def test_when_of_nothing_is_never() -> None:
    assert when(None, NOW) == "never"


@pytest.mark.parametrize(("ms", "text"), [(None, "—"), (850, "850 ms"), (12_400, "12.4 s"), (185_000, "3 min 5 s")])
def test_duration_reads_like_a_person_would_say_it(ms: int | None, text: str) -> None:
    assert duration(ms) == text


@pytest.mark.parametrize(
    ("status", "css"),
    [("succeeded", "good"), ("failed", "bad"), ("timed_out", "bad"), ("abandoned", "bad"), ("running", "busy")],
)
def test_status_colours(status: str, css: str) -> None:
    assert status_class(status) == css


def test_chart_bars_are_scaled_to_a_round_axis_and_coloured_by_outcome() -> None:
    points = [
        RunPoint(1, "succeeded", NOW, 400),
        RunPoint(2, "failed", NOW + timedelta(minutes=1), 1600),
        RunPoint(3, "running", NOW + timedelta(minutes=2), None),
    ]
    chart = duration_chart(points)
    assert [b.css for b in chart.bars] == ["good", "bad", "busy"]
    assert chart.ticks[-1].label == "2.0 s"  # 1,600 ms rounds up to a 2 s axis
    tallest = max(b.height for b in chart.bars)
    assert tallest == pytest.approx(chart.plot_height * 0.8)
    assert chart.bars[2].height == 2.0  # a run without a duration still shows
    assert chart.bars[0].x < chart.bars[1].x < chart.bars[2].x
    assert all(b.x + b.width <= chart.left + chart.plot_width for b in chart.bars)
    assert chart.bars[1].href == "/app/admin/scheduler/runs/2"


@pytest.mark.parametrize(
    ("target", "where"),
    [
        ("/app/admin/jobs?status=failed", "/app/admin/jobs?status=failed"),
        ("//evil.example/x", "/app/admin/scheduler"),
        ("https://evil.example/", "/app/admin/scheduler"),
        ("/\\evil.example", "/app/admin/scheduler"),
        (None, "/app/admin/scheduler"),
        # Browsers drop tab, CR and LF from a URL: each of these is //evil.example to them.
        ("/\t/evil.example/x", "/app/admin/scheduler"),
        ("/\r/evil.example/x", "/app/admin/scheduler"),
        ("/\n/evil.example/x", "/app/admin/scheduler"),
        ("/\x00/evil.example", "/app/admin/scheduler"),
        ("/\x7f/evil.example", "/app/admin/scheduler"),
        ("/ /evil.example", "/app/admin/scheduler"),
        ("/\u2028/evil.example", "/app/admin/scheduler"),
        ("/app/x\\y", "/app/admin/scheduler"),
        ("javascript:alert(1)", "/app/admin/scheduler"),
        ("", "/app/admin/scheduler"),
        ("/app/articles?q=été#top", "/app/articles?q=été#top"),
    ],
)
def test_sign_in_only_returns_to_local_paths(target: str | None, where: str) -> None:
    assert safe_next(target) == where
