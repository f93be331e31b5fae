"""This process's Prometheus metrics: counters and histograms of the work this node did.

Every series here counts what *this* process did since it started, so a sum() over all nodes
is the cluster's total and rate() survives restarts. Figures read from the shared database
(the queue, feeds, nodes) are the same on every node: /metrics exports those separately,
as `mediabeat_cluster_*` gauges (see docs/metrics.md).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)

# The `_created` series of each counter doubles the output for little use in Prometheus.
disable_created_metrics()  # type: ignore[no-untyped-call]

REGISTRY = CollectorRegistry()
ProcessCollector(registry=REGISTRY)
PlatformCollector(registry=REGISTRY)

# Seconds: from a cleanup of a few milliseconds to a crawl run near its one-hour cap.
RUN_BUCKETS = (0.05, 0.25, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Seconds: one HTTP fetch or one request, with a timeout of 30 s at most.
FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

TASK_RUNS = Counter(
    "mediabeat_task_runs",
    "Task runs this node finished, by task and status",
    ["task", "status"],
    registry=REGISTRY,
)
TASK_RUN_DURATION = Histogram(
    "mediabeat_task_run_duration_seconds",
    "How long this node's runs took, by task",
    ["task"],
    buckets=RUN_BUCKETS,
    registry=REGISTRY,
)
TASK_RUNS_IN_PROGRESS = Gauge(
    "mediabeat_task_runs_in_progress",
    "Runs executing on this node now, by task",
    ["task"],
    registry=REGISTRY,
)
FEED_FETCHES = Counter(
    "mediabeat_feed_fetches",
    "Feed fetches by this node, by outcome (fetched, not_modified, failed, disabled)",
    ["outcome"],
    registry=REGISTRY,
)
FEED_FETCH_DURATION = Histogram(
    "mediabeat_feed_fetch_duration_seconds",
    "How long one feed fetch took on this node (HTTP and parsing)",
    buckets=FETCH_BUCKETS,
    registry=REGISTRY,
)
CRAWL_PAGES = Counter(
    "mediabeat_crawl_pages",
    "Article pages this node crawled, by outcome (succeeded, retried, failed, lost, deferred)",
    ["outcome"],
    registry=REGISTRY,
)
CRAWL_PAGE_DURATION = Histogram(
    "mediabeat_crawl_page_duration_seconds",
    "How long one page took on this node until its outcome was known (robots.txt, fetch, extraction)",
    buckets=FETCH_BUCKETS,
    registry=REGISTRY,
)
ALERTS = Counter(
    "mediabeat_alerts",
    "Run alerts this node sent, by channel (webhook, email), kind (failure, recovery) and result (sent, failed)",
    ["channel", "kind", "result"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "mediabeat_http_requests",
    "HTTP requests this node answered, by method, route template and status code",
    ["method", "route", "status"],
    registry=REGISTRY,
)
HTTP_REQUEST_DURATION = Histogram(
    "mediabeat_http_request_duration_seconds",
    "How long this node took to answer, by method and route template",
    ["method", "route"],
    buckets=FETCH_BUCKETS,
    registry=REGISTRY,
)


@contextmanager
def timed(histogram: Histogram) -> Iterator[None]:
    """Observe the block's duration (monotonic clock) into `histogram`, also when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        histogram.observe(time.perf_counter() - started)
