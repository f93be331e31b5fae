"""/metrics in the Prometheus text format: admins only unless MEDIABEAT_METRICS_PUBLIC=true.

Two kinds of series (docs/metrics.md): this process's counters and histograms
(mediabeat.telemetry), which sum across nodes, and `mediabeat_cluster_*` gauges read from
the shared database, which every node reports alike.
"""

from __future__ import annotations

from datetime import UTC

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from mediabeat import telemetry
from mediabeat.db.tables import JOB_STATUSES
from mediabeat.domain.access import Permission, refusal
from mediabeat.domain.metrics import MetricsSnapshot
from mediabeat.domain.scheduler import NodeRecord, NodeState, RunStatus
from mediabeat.web.deps import OptionalUser
from mediabeat.web.errors import ApiError, error_responses

router = APIRouter(tags=["health"])


class _ClusterSnapshot:
    """A one-shot collector over a snapshot of the shared database: the same figures on every node.

    Each is a `mediabeat_cluster_*` gauge: aggregate them across nodes with max(), never sum().
    """

    def __init__(self, snapshot: MetricsSnapshot, nodes: list[NodeRecord]) -> None:
        self.snapshot = snapshot
        self.nodes = nodes

    def collect(self) -> list[GaugeMetricFamily]:
        snap = self.snapshot
        running = GaugeMetricFamily(
            "mediabeat_cluster_task_runs_running", "Runs recorded as running on any node, by task", labels=["task"]
        )
        queue = GaugeMetricFamily(
            "mediabeat_cluster_crawl_jobs", "Crawl jobs by status (queued: the queue depth)", labels=["status"]
        )
        for status in JOB_STATUSES:
            queue.add_metric([status], snap.jobs.get(status, 0))
        success = GaugeMetricFamily(
            "mediabeat_cluster_task_last_success_timestamp_seconds",
            "Unix time of each task's last successful run on any node (0: never)",
            labels=["task"],
        )
        enabled = GaugeMetricFamily("mediabeat_cluster_task_enabled", "1 if the task runs on schedule", labels=["task"])
        for task in sorted(snap.enabled):
            last = snap.last_success.get(task)
            if last is not None and last.tzinfo is None:
                last = last.replace(tzinfo=UTC)
            success.add_metric([task], last.timestamp() if last else 0.0)
            enabled.add_metric([task], 1.0 if snap.enabled[task] else 0.0)
            running.add_metric([task], snap.runs.get((task, RunStatus.RUNNING), 0))
        feeds = GaugeMetricFamily(
            "mediabeat_cluster_feeds",
            "Feeds by state: ok, failing (active, last fetches failed), disabled",
            labels=["state"],
        )
        for state, count in snap.feeds.items():
            feeds.add_metric([state], count)
        nodes = GaugeMetricFamily(
            "mediabeat_cluster_nodes", "serve and worker processes by state (dead: no heartbeat)", labels=["state"]
        )
        for state in NodeState:
            nodes.add_metric([state], sum(1 for n in self.nodes if n.state == state))
        return [running, queue, success, enabled, feeds, nodes]


@router.get(
    "/metrics",
    summary="Prometheus metrics (operators and admins, or anyone with MEDIABEAT_METRICS_PUBLIC=true)",
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
            raise ApiError(
                401, "sign in or send an operator's or admin's API token", headers={"WWW-Authenticate": "Bearer"}
            )
        if not principal.can(Permission.VIEW_SCHEDULER):
            refused = refusal(principal.role, Permission.VIEW_SCHEDULER)
            raise ApiError(403, f"{refused} (or MEDIABEAT_METRICS_PUBLIC=true)", code="forbidden")
    snapshot = await services.scheduler.metrics_snapshot()
    nodes = await services.cluster.list_nodes()
    cluster = CollectorRegistry(auto_describe=False)
    cluster.register(_ClusterSnapshot(snapshot, nodes))
    # This process's counters and histograms, then the database's gauges: no name is in both.
    body = generate_latest(telemetry.REGISTRY) + generate_latest(cluster)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
