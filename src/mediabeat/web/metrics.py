"""/metrics in the Prometheus text format: admins only unless MEDIABEAT_METRICS_PUBLIC=true."""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from mediabeat.db.tables import JOB_STATUSES
from mediabeat.domain.metrics import MetricsSnapshot
from mediabeat.domain.scheduler import NodeRecord, NodeState, RunStatus, SchedulerStats
from mediabeat.web.api.scheduler import stats_cache
from mediabeat.web.deps import OptionalUser
from mediabeat.web.errors import ApiError, error_responses

router = APIRouter(tags=["health"])


class _Snapshot:
    """A one-shot collector over a snapshot read from the database."""

    def __init__(self, snapshot: MetricsSnapshot, stats: SchedulerStats, nodes: list[NodeRecord]) -> None:
        self.snapshot = snapshot
        self.stats = stats
        self.nodes = nodes

    def collect(self) -> list[GaugeMetricFamily]:
        snap = self.snapshot
        runs = GaugeMetricFamily(
            "mediabeat_task_runs", "Recorded task runs by task and status", labels=["task", "status"]
        )
        for (task, status), count in sorted(snap.runs.items()):
            runs.add_metric([task, status], count)
        for task in sorted(snap.enabled):
            for status in RunStatus:
                if (task, status) not in snap.runs:
                    runs.add_metric([task, status], 0)
        queue = GaugeMetricFamily("mediabeat_crawl_jobs", "Crawl jobs by status (queue depth)", labels=["status"])
        for status in JOB_STATUSES:
            queue.add_metric([status], snap.jobs.get(status, 0))
        success = GaugeMetricFamily(
            "mediabeat_task_last_success_timestamp_seconds",
            "Unix time of each task's last successful run (0: never)",
            labels=["task"],
        )
        enabled = GaugeMetricFamily("mediabeat_task_enabled", "1 if the task runs on schedule", labels=["task"])
        for task in sorted(snap.enabled):
            last = snap.last_success.get(task)
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            success.add_metric([task], last.timestamp() if last else 0.0)
            enabled.add_metric([task], 1.0 if snap.enabled[task] else 0.0)
        durations = GaugeMetricFamily(
            "mediabeat_task_duration_seconds",
            "Run duration by task over its recorded history: median (0.5) and 95th percentile (0.95)",
            labels=["task", "quantile"],
        )
        for figures in self.stats.tasks:
            for quantile, ms in (("0.5", figures.p50_ms), ("0.95", figures.p95_ms)):
                if ms is not None:
                    durations.add_metric([figures.name, quantile], ms / 1000)
        feeds = GaugeMetricFamily(
            "mediabeat_feeds", "Feeds by state: ok, failing (active, last fetches failed), disabled", labels=["state"]
        )
        for state, count in snap.feeds.items():
            feeds.add_metric([state], count)
        nodes = GaugeMetricFamily(
            "mediabeat_nodes", "serve and worker processes by state (dead: no heartbeat)", labels=["state"]
        )
        for state in NodeState:
            nodes.add_metric([state], sum(1 for n in self.nodes if n.state == state))
        return [runs, queue, success, enabled, durations, feeds, nodes]


@router.get(
    "/metrics",
    summary="Prometheus metrics (admins, or anyone with MEDIABEAT_METRICS_PUBLIC=true)",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}, "description": "Metrics"},
        **error_responses(401, 403),
    },
)
async def metrics(request: Request, principal: OptionalUser) -> Response:
    services = request.app.state.services
    if not services.settings.metrics_public:
        if principal is None:
            raise ApiError(401, "sign in or send an admin API token", headers={"WWW-Authenticate": "Bearer"})
        if not principal.is_admin:
            raise ApiError(403, "metrics need an admin (or MEDIABEAT_METRICS_PUBLIC=true)")
    snapshot = await services.scheduler.metrics_snapshot()
    stats = await stats_cache(request).get()  # the durations, at most a few seconds old, as /scheduler/stats
    nodes = await services.cluster.list_nodes()
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Snapshot(snapshot, stats, nodes))
    body = generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
