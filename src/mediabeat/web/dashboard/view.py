"""Pure presentation helpers for the pages: times in words, durations, status colours and the duration chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from mediabeat.domain.scheduler import FAILURE_STATUSES

FAILED = FAILURE_STATUSES  # a run status; a crawl job's "failed" is the same word
MIN_SLOTS = 40  # a few runs draw as thin bars from the left, not as wide blocks


def status_class(status: str | None) -> str:
    """The badge colour for a run or job status."""
    if status is None:
        return "none"
    if status in FAILED:
        return "bad"
    return {"succeeded": "good", "running": "busy", "queued": "wait", "skipped": "muted"}.get(status, "muted")


def iso(value: datetime | None) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z") if value is not None else ""


def exact(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def when(value: datetime | None, now: datetime) -> str:
    """'3 min ago' or 'in 2 h': how far an instant is from now, in the largest fitting unit."""
    if value is None:
        return "never"
    seconds = (value - now).total_seconds()
    span = abs(seconds)
    if span < 5:
        return "just now"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60), ("s", 1)):
        if span >= size:
            amount = f"{int(span // size)} {unit}"
            break
    return f"in {amount}" if seconds > 0 else f"{amount} ago"


def duration(ms: int | float | None) -> str:
    """A run time for people: '850 ms', '12.4 s', '3 min 5 s'."""
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{int(ms)} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    minutes, seconds = divmod(int(ms // 1000), 60)
    return f"{minutes} min {seconds} s"


@dataclass(frozen=True, slots=True)
class RunPoint:
    """One run as the chart and the sparkline see it."""

    id: int
    status: str
    started_at: datetime
    duration_ms: int | None


@dataclass(frozen=True, slots=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    css: str
    label: str
    href: str


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class Chart:
    """An inline SVG bar chart: one bar per run, oldest on the left, height = duration, colour = outcome."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: list[Bar]
    ticks: list[Tick]
    first_label: str
    last_label: str


def _nice_ceiling(value: float) -> float:
    """The smallest 1, 2 or 5 times a power of ten at or above value, so the axis has round numbers."""
    if value <= 0:
        return 1.0
    scale = 1.0
    while scale * 10 <= value:
        scale *= 10
    while scale > value:
        scale /= 10
    for step in (1, 2, 5, 10):
        if step * scale >= value:
            return step * scale
    return 10 * scale


def duration_chart(points: list[RunPoint], *, width: int = 720, height: int = 240) -> Chart:
    """Lay out the bars for runs given oldest first; runs without a duration (running) get a small marker."""
    left, top, bottom, right = 56, 12, 28, 8
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_ceiling(max((p.duration_ms or 0 for p in points), default=0))
    slot = plot_w / max(len(points), MIN_SLOTS)
    gap = min(2.0, slot * 0.2)
    bars = []
    for index, point in enumerate(points):
        value = point.duration_ms or 0
        h = max(2.0, plot_h * value / peak)
        label = f"Run {point.id}: {point.status}, {duration(point.duration_ms)}, {exact(point.started_at)}"
        bars.append(
            Bar(
                x=round(left + index * slot + gap / 2, 2),
                y=round(top + plot_h - h, 2),
                width=round(max(slot - gap, 1.0), 2),
                height=round(h, 2),
                css=status_class(point.status),
                label=label,
                href=f"/app/admin/scheduler/runs/{point.id}",
            )
        )
    ticks = [Tick(y=round(top + plot_h - plot_h * f, 2), label=duration(peak * f)) for f in (0, 0.5, 1)]
    return Chart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_width=plot_w,
        plot_height=plot_h,
        bars=bars,
        ticks=ticks,
        first_label=exact(points[0].started_at) if points else "",
        last_label=exact(points[-1].started_at) if points else "",
    )
