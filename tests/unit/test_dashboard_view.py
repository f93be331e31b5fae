"""The dashboard's pure presentation helpers: relative times, durations, badge colours, labels and the chart."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from mediabeat.domain.scheduler import RunPoint
from mediabeat.web.dashboard.labels import label, result_items
from mediabeat.web.dashboard.render import safe_next
from mediabeat.web.dashboard.view import (
    MAX_TIME_TICKS,
    duration,
    duration_chart,
    status_class,
    time_ticks,
    when,
)

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


def test_the_chart_places_runs_by_when_they_started_not_by_their_index() -> None:
    points = [
        RunPoint(1, "succeeded", NOW, 400),
        RunPoint(2, "succeeded", NOW + timedelta(minutes=10), 400),
        RunPoint(3, "succeeded", NOW + timedelta(hours=3), 400),
    ]
    bars = duration_chart(points).bars
    early_gap, late_gap = bars[1].x - bars[0].x, bars[2].x - bars[1].x
    assert late_gap == pytest.approx(early_gap * 17, rel=0.01)  # 170 minutes against 10
    assert bars[2].iso == "2026-03-01T15:00:00Z" and bars[2].status == "Succeeded" and bars[2].duration == "400 ms"


@pytest.mark.parametrize(
    ("span", "step", "first"),
    [
        (timedelta(minutes=7), 120, "12:02"),
        (timedelta(hours=5), 3600, "13:00"),
        (timedelta(days=3), 43200, "00:00"),
        (timedelta(days=20), 604800, "00:00"),
    ],
)
def test_time_axis_marks_fall_on_round_instants(span: timedelta, step: int, first: str) -> None:
    start = NOW + timedelta(seconds=1)
    chosen, marks = time_ticks(start, start + span)
    assert chosen == step
    assert 1 <= len(marks) <= MAX_TIME_TICKS
    assert marks[0].strftime("%H:%M") == first
    assert all(start <= m <= start + span for m in marks)


def test_chart_time_marks_are_written_in_utc_for_the_script_to_localise() -> None:
    points = [RunPoint(1, "succeeded", NOW, 400), RunPoint(2, "failed", NOW + timedelta(hours=4), 900)]
    marks = duration_chart(points).time_ticks
    assert [m.label for m in marks] == ["12:00", "13:00", "14:00", "15:00", "16:00"]
    assert marks[0].iso == "2026-03-01T12:00:00Z" and not marks[0].days


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("not_modified", "Not modified"),
        ("timed_out", "Timed out"),
        ("http_503", "HTTP 503"),
        ("blocked", "Blocked address"),
        ("dependency", "After another task"),
        ("some_new_state", "Some new state"),
        (None, "Never run"),
    ],
)
def test_labels_are_words_for_people(value: str | None, words: str) -> None:
    assert label(value) == words


def test_run_results_become_labelled_lines_with_nested_counts() -> None:
    items = result_items({"fetched": 2, "not_modified": 3, "errors": {"blocked": 12, "http_503": 1}, "x_y": "z"})
    assert [(i.label, i.value) for i in items] == [
        ("Fetched", 2),
        ("Not modified", 3),
        ("Errors by kind", 13),
        ("X y", "z"),
    ]
    assert [(s.label, s.value) for s in items[2].items] == [("Blocked address", 12), ("HTTP 503", 1)]
    assert result_items(None) == []
