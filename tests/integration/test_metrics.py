"""/metrics through the real app: counters and histograms of this node, cluster gauges, HTTP metrics, deploy files."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from mediabeat.cli.common import CliError
from mediabeat.cli.serve_cmd import serve_worker_metrics
from mediabeat.db.stores.feeds import FeedStore
from tests.integration.api_fixtures import ApiEnv, assert_error

B = "/api/v1/scheduler"
REPO = Path(__file__).resolve().parents[2]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> tuple[dict[str, str], Samples]:
    """The exposition text as {family: type} and {(sample name, labels): value}; it must parse."""
    types: dict[str, str] = {}
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        types[family.name] = family.type
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return types, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def scrape(api: ApiEnv) -> tuple[dict[str, str], Samples, str]:
    async with api.admin() as client:
        response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    types, samples = parse(response.text)
    return types, samples, response.text


async def test_counters_and_histograms_have_their_types_and_move(api: ApiEnv) -> None:
    types, before, text = await scrape(api)
    for family in ("mediabeat_task_runs", "mediabeat_feed_fetches", "mediabeat_crawl_pages", "mediabeat_alerts"):
        assert types[family] == "counter" and f"# TYPE {family}_total counter" in text
    for family in (
        "mediabeat_task_run_duration_seconds",
        "mediabeat_feed_fetch_duration_seconds",
        "mediabeat_crawl_page_duration_seconds",
        "mediabeat_http_request_duration_seconds",
    ):
        assert types[family] == "histogram", family
    assert types["mediabeat_http_requests"] == "counter"
    assert types["mediabeat_task_runs_in_progress"] == "gauge"
    assert "process_cpu_seconds_total" in text  # the process collector, per node as well

    async with api.admin() as client:
        for _ in range(2):
            run = await client.post(f"{B}/tasks/nightly-cleanup/run?wait=true")
            assert run.json()["status"] == "succeeded"
    _, after, _ = await scrape(api)
    runs = "mediabeat_task_runs_total"
    assert value(after, runs, task="nightly-cleanup", status="succeeded") == (
        value(before, runs, task="nightly-cleanup", status="succeeded") + 2
    )
    count = "mediabeat_task_run_duration_seconds_count"
    assert value(after, count, task="nightly-cleanup") == value(before, count, task="nightly-cleanup") + 2
    inf = "mediabeat_task_run_duration_seconds_bucket"
    assert value(after, inf, task="nightly-cleanup", le="+Inf") == value(after, count, task="nightly-cleanup")
    assert value(after, "mediabeat_task_runs_in_progress", task="nightly-cleanup") == 0


async def test_http_requests_are_counted_by_route_template_not_by_path(api: ApiEnv) -> None:
    _, before, _ = await scrape(api)
    async with api.admin() as client:
        for run_id in (999_001, 999_002, 999_003):
            assert (await client.get(f"{B}/runs/{run_id}")).status_code == 404
        for n in range(3):
            assert (await client.get(f"/no/such/page/{n}")).status_code == 404
        assert (await client.get("/healthz")).status_code == 200
    _, after, text = await scrape(api)
    requests = "mediabeat_http_requests_total"
    template = f"{B}/runs/{{run_id}}"
    assert value(after, requests, method="GET", route=template, status="404") == (
        value(before, requests, method="GET", route=template, status="404") + 3
    )
    assert value(after, requests, method="GET", route="<unmatched>", status="404") >= 3
    assert value(after, requests, method="GET", route="/healthz", status="200") >= 1
    # raw paths never become labels (a bare "999001" could be the digits of a float sample value)
    assert "/runs/999001" not in text and "/no/such/page" not in text
    duration = "mediabeat_http_request_duration_seconds_count"
    assert (
        value(after, duration, method="GET", route=template)
        == value(before, duration, method="GET", route=template) + 3
    )


async def test_cluster_gauges_come_from_the_database(api: ApiEnv) -> None:
    feeds = FeedStore(api.services.db)
    now = api.services.clock.now()
    added = [await feeds.add(api.org_id, f"https://news.example.org/{n}.xml", now=now) for n in range(3)]
    await feeds.change(added[0][0].id, active=False, reason="gone", now=now)
    await api.services.cluster.register()
    async with api.admin() as client:
        await client.post(f"{B}/tasks/nightly-cleanup/run?wait=true")
    types, samples, text = await scrape(api)
    assert all(types[name] == "gauge" for name in types if name.startswith("mediabeat_cluster_"))
    assert value(samples, "mediabeat_cluster_crawl_jobs", status="queued") == 0
    assert value(samples, "mediabeat_cluster_feeds", state="ok") == 2
    assert value(samples, "mediabeat_cluster_feeds", state="disabled") == 1
    assert value(samples, "mediabeat_cluster_nodes", state="running") == 1
    assert value(samples, "mediabeat_cluster_task_enabled", task="nightly-cleanup") == 1
    assert value(samples, "mediabeat_cluster_task_last_success_timestamp_seconds", task="nightly-cleanup") > 0
    assert value(samples, "mediabeat_cluster_task_runs_running", task="nightly-cleanup") == 0
    # No series under two names: the old gauges are gone.
    assert not re.search(r"^mediabeat_(task_runs|crawl_jobs|feeds|nodes)\{", text, flags=re.MULTILINE)
    async with api.member() as client:
        assert_error(await client.get("/metrics"), 403)
    async with api.client() as client:
        assert_error(await client.get("/metrics"), 401)


async def test_the_grafana_dashboard_and_the_alert_rules_use_served_metrics_rightly(api: ApiEnv) -> None:
    types, _, _ = await scrape(api)
    dashboard = json.loads((REPO / "deploy" / "grafana" / "mediabeat.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    rules = yaml.safe_load((REPO / "deploy" / "prometheus" / "alerts.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"]]
    assert alerts and all(rule["alert"].startswith("MediaBeat") and rule["expr"] for rule in alerts)
    exprs += [rule["expr"] for rule in alerts]
    served = set(types)
    for expr in exprs:
        for name in re.findall(r"mediabeat_\w+", expr):
            family = re.sub(r"_(total|bucket|count|sum)$", "", name)
            assert family in served, (name, expr)
            if types[family] == "counter":  # a counter only through rate() or increase()
                assert name.endswith("_total") and re.search(rf"(rate|increase)\({name}\b", expr), expr
            if types[family] == "histogram":
                assert name.endswith("_bucket") and "histogram_quantile" in expr, expr
            if family.startswith("mediabeat_cluster_"):  # the same on every node: never summed across them
                assert not re.search(rf"sum\(\s*{family}\b", expr), expr


def test_a_worker_serves_its_own_counters_on_loopback() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = serve_worker_metrics("127.0.0.1", port)
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
        assert "# TYPE mediabeat_task_runs_total counter" in text
        assert "mediabeat_cluster_" not in text  # the serve nodes report the database's figures
        with pytest.raises(CliError, match="cannot serve metrics"):
            serve_worker_metrics("127.0.0.1", port)  # taken now
    finally:
        server.shutdown()
        server.server_close()
