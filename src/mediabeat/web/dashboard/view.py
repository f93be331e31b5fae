"""Pure presentation helpers for the pages: times in words, durations, status colours and the duration chart."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from mediabeat.domain.scheduler import FAILURE_STATUSES, RunPoint
from mediabeat.web.dashboard.labels import label

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
class Bar:
    """One run on the chart; `iso` and `duration` feed the script's tooltip, `label` the built-in one."""

    x: float
    y: float
    width: float
    height: float
    css: str
    label: str
    href: str
    run_id: int
    status: str
    duration: str
    iso: str


@dataclass(frozen=True, slots=True)
class Tick:
    y: float
    label: str


@dataclass(frozen=True, slots=True)
class TimeTick:
    """A mark on the time axis: the server writes it in UTC, the script rewrites it in the browser's time zone."""

    x: float
    iso: str
    label: str
    days: bool


@dataclass(frozen=True, slots=True)
class Chart:
    """An inline SVG chart of run durations on a time axis: x = when the run started, height = how long it took."""

    width: int
    height: int
    left: int
    top: int
    plot_width: int
    plot_height: int
    bars: list[Bar]
    ticks: list[Tick]
    time_ticks: list[TimeTick]


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


# Steps for the time axis, in seconds: the first that gives at most MAX_TIME_TICKS marks is used.
TIME_STEPS = (60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172800, 604800, 2592000)
MAX_TIME_TICKS = 6


def time_ticks(start: datetime, end: datetime) -> tuple[int, list[datetime]]:
    """Round instants (whole minutes, hours or UTC days) between start and end, and the step between them."""
    span = max((end - start).total_seconds(), 1.0)
    step = next((s for s in TIME_STEPS if span / s <= MAX_TIME_TICKS), TIME_STEPS[-1])
    first = -(-int(start.timestamp()) // step) * step
    marks = []
    at = first
    while at <= end.timestamp():
        marks.append(datetime.fromtimestamp(at, UTC))
        at += step
    return step, marks


def duration_chart(points: list[RunPoint], *, width: int = 720, height: int = 240) -> Chart:
    """Place each run (given oldest first) at its start time; runs without a duration (running) get a small mark."""
    left, top, bottom, right = 56, 12, 28, 16
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = _nice_ceiling(max((p.duration_ms or 0 for p in points), default=0))
    bar_w = max(2.0, min(10.0, plot_w / max(len(points), MIN_SLOTS) * 0.7))
    if points:
        first, last = points[0].started_at, points[-1].started_at
        pad = max((last - first) * 0.03, timedelta(minutes=1))
        start, end = first - pad, last + pad
    else:
        start = end = datetime.fromtimestamp(0, UTC)
    span = max((end - start).total_seconds(), 1.0)

    def x_of(at: datetime) -> float:
        return left + plot_w * (at - start).total_seconds() / span

    bars = []
    for point in points:
        h = max(2.0, plot_h * (point.duration_ms or 0) / peak)
        took = duration(point.duration_ms)
        bars.append(
            Bar(
                x=round(x_of(point.started_at) - bar_w / 2, 2),
                y=round(top + plot_h - h, 2),
                width=round(bar_w, 2),
                height=round(h, 2),
                css=status_class(point.status),
                label=f"Run {point.id}: {label(point.status)}, {took}, {exact(point.started_at)}",
                href=f"/app/admin/scheduler/runs/{point.id}",
                run_id=point.id,
                status=label(point.status),
                duration=took,
                iso=iso(point.started_at),
            )
        )
    ticks = [Tick(y=round(top + plot_h - plot_h * f, 2), label=duration(peak * f)) for f in (0, 0.5, 1)]
    step, marks = time_ticks(start, end) if points else (0, [])
    days = step >= 86400
    axis = [
        TimeTick(x=round(x_of(m), 2), iso=iso(m), label=m.strftime("%b %d" if days else "%H:%M"), days=days)
        for m in marks
    ]
    return Chart(
        width=width,
        height=height,
        left=left,
        top=top,
        plot_width=plot_w,
        plot_height=plot_h,
        bars=bars,
        ticks=ticks,
        time_ticks=axis,
    )
