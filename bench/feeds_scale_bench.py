"""Feed-pass scale benchmark: one hourly-rss-fetch pass over N due feeds, N = 1,000 .. 200,000.

    .venv/bin/python bench/feeds_scale_bench.py [--max 200000] [--sizes 1000,10000] [--database URL]
        [--latency-ms 0] [--hosts 50] [--profile] [--shared-politeness on|off]

A purpose-built server (this file with --serve, in a subprocess) answers on --hosts loopback
addresses (127.0.0.2 ..), stateless, every body built from the feed's number:
- feeds k % 10 in 1..6: an ETag; the seeded ETag matches, so they answer 304;
- feeds k % 10 in 7..9: no validators, the same 20 entries as before: the body's SHA-256 equals
  the seeded one, so the pass reads it as unchanged without parsing it;
- feeds k % 10 == 0 (a tenth): a new ETag and 20 entries, 2 of them new (the other 18 are
  seeded as crawl jobs already queued), so the pass parses them and queues 2 jobs each.

Each N gets a fresh database (a SQLite file, or a PostgreSQL database created and dropped
when --database or MEDIABEAT_TEST_POSTGRES_URL is given), seeded through the stores
(FeedStore.add_many, then FeedStore.apply_updates for the state a previous pass would have
left, JobStore.enqueue for the seen entries), all feeds due. The pass then runs in a process of
its own (so its peak RSS is the pass's, with the interpreter and imports) and reports wall time,
CPU time, µs per feed, peak RSS, the database size, and the load average. The baseline is the
same run's smallest N: per-feed cost at N over per-feed cost at the smallest N is the linearity.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import hashlib
import io
import json
import logging
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from databases import fresh_database

os.environ.setdefault("NO_PROXY", "127.0.0.0/8,localhost")

ENTRIES = 20
NEW_PER_CHANGED = 2
SEEDED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
PASS_AT = SEEDED_AT + timedelta(hours=1, minutes=1)
ORGS = 20


def kind(k: int) -> str:
    """What feed k does in the pass: changed (a tenth), etag (304) or hash (same body, no validators)."""
    r = k % 10
    return "changed" if r == 0 else "etag" if r <= 6 else "hash"


def feed_body(k: int, base: str, generation: int) -> bytes:
    """Feed k's body: 20 entries; generation 1 shifts the window by NEW_PER_CHANGED new entries."""
    first = generation * NEW_PER_CHANGED
    items = "".join(
        f"<item><title>Story {i} of feed {k}</title><link>{base}/a/{k}/{i}.html</link>"
        f"<pubDate>Tue, 01 Dec 2026 {i % 24:02d}:00:00 GMT</pubDate></item>"
        for i in range(first, first + ENTRIES)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Scale feed {k}</title>'
        f"<link>{base}/</link><description>scale bench</description>{items}</channel></rss>"
    ).encode()


def hosts(count: int) -> list[str]:
    return [f"127.0.{2 + i // 250}.{2 + i % 250}" for i in range(count)]


def feed_url(k: int, host_list: list[str], port: int) -> str:
    return f"http://{host_list[k % len(host_list)]}:{port}/f/{k}.rss"


# --- the server -------------------------------------------------------------------------------


def _response(status: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status}", f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def answer(host: str, path: str, etag_asked: str | None) -> bytes:
    if not (path.startswith("/f/") and path.endswith(".rss")):
        return _response("404 Not Found", b"", {})
    k = int(path[3:-4])
    what = kind(k)
    base = f"http://{host}"
    if what == "etag":
        etag = f'"{k}-0"'
        if etag_asked == etag:
            return _response("304 Not Modified", b"", {"ETag": etag})
        return _response("200 OK", feed_body(k, base, 0), {"Content-Type": "application/rss+xml", "ETag": etag})
    if what == "hash":
        return _response("200 OK", feed_body(k, base, 0), {"Content-Type": "application/rss+xml"})
    etag = f'"{k}-1"'
    return _response("200 OK", feed_body(k, base, 1), {"Content-Type": "application/rss+xml", "ETag": etag})


async def serve(port: int, latency: float, host_list: list[str]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
                path = head[0].split(" ", 2)[1]
                headers = {}
                for line in head[1:]:
                    if ":" in line:
                        name, value = line.split(":", 1)
                        headers[name.strip().lower()] = value.strip()
                if latency:
                    await asyncio.sleep(latency)
                writer.write(answer(headers.get("host", "127.0.0.1"), path, headers.get("if-none-match")))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    servers = [await asyncio.start_server(handle, h, port, backlog=2048) for h in host_list]
    print("ready", flush=True)
    await asyncio.gather(*(s.serve_forever() for s in servers))


# --- seeding ---------------------------------------------------------------------------------


async def seed(database_url: str, n: int, host_list: list[str], port: int) -> dict[str, float]:
    """N feeds over ORGS organisations, in the state the previous pass left, all due at PASS_AT."""
    from mediabeat.crawler.urls import url_hash
    from mediabeat.db.engine import Database
    from mediabeat.db.stores.feeds import FeedStore, FeedUpdate
    from mediabeat.db.stores.jobs import JobStore, NewJob
    from mediabeat.db.stores.orgs import OrgStore

    db = Database(database_url)
    feeds, jobs = FeedStore(db), JobStore(db)
    started = time.perf_counter()
    orgs = [await OrgStore(db).create(f"org{i}", now=SEEDED_AT) for i in range(ORGS)]
    added: list[tuple[int, int, int]] = []  # (k, feed id, org id)
    for o, org in enumerate(orgs):
        ks = list(range(o, n, ORGS))
        records = await feeds.add_many(org.id, [(feed_url(k, host_list, port), None) for k in ks], now=SEEDED_AT)
        added += [(k, record.id, org.id) for k, (record, _) in zip(ks, records, strict=True)]
    added_s = time.perf_counter() - started
    updates, org_of, seen = [], {}, []
    for k, feed_id, org_id in added:
        url = feed_url(k, host_list, port)
        base = url.split("/f/", 1)[0]
        what = kind(k)
        body_hash = hashlib.sha256(feed_body(k, base, 0)).hexdigest() if what == "hash" else None
        updates.append(
            FeedUpdate(
                id=feed_id, url=url, title=f"Scale feed {k}", site_url=f"{base}/", active=True,
                etag=None if what == "hash" else f'"{k}-0"', last_modified=None, last_fetched_at=SEEDED_AT,
                last_status="ok", last_error=None, consecutive_failures=0,
                next_fetch_at=SEEDED_AT + timedelta(hours=1), disabled_reason=None, fetch_interval_s=3600,
                interval_reason="bench", body_hash=body_hash, entries_per_week=20, last_new_entries=0,
            )
        )  # fmt: skip
        org_of[feed_id] = org_id
        if what == "changed":
            links = [f"{base}/a/{k}/{i}.html" for i in range(NEW_PER_CHANGED, ENTRIES)]
            seen += [NewJob(org_id, feed_id, link, url_hash(link)) for link in links]
    for first in range(0, len(updates), 2000):
        await feeds.apply_updates(updates[first : first + 2000], org_of=org_of, now=SEEDED_AT)
    for first in range(0, len(seen), 20000):
        await jobs.enqueue(seen[first : first + 20000], now=SEEDED_AT)
    await db.dispose()
    return {"seed_feeds_s": added_s, "seed_total_s": time.perf_counter() - started, "seeded_jobs": len(seen)}


# --- the pass, in a process of its own --------------------------------------------------------


async def run_pass(database_url: str, profile_to: str | None, shared: bool | None, reuse: bool) -> dict[str, Any]:
    from mediabeat.clock import SystemClock
    from mediabeat.crawler.http import limiter
    from mediabeat.db.engine import Database
    from mediabeat.settings import Settings
    from mediabeat.tasks.base import RunContext
    from mediabeat.tasks.wiring import build_crawler_handlers

    if not reuse:  # the code before slot reuse: every request takes its own shared slot and gives it back
        limiter.SHARED_REUSE_S = 0.0
    db = Database(database_url)
    calls = count_politeness_calls()
    settings = Settings(
        database_url=database_url,
        crawler_allow_private_networks=True,
        node_id="scale-bench",
        crawler_shared_politeness=shared,
    )
    fetch, crawl = build_crawler_handlers(settings, db, SystemClock())
    ctx = RunContext(1, "hourly-rss-fetch", "manual", PASS_AT, PASS_AT, {}, logging.getLogger("bench"))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    profiler = cProfile.Profile() if profile_to else None
    started, cpu_started = time.perf_counter(), time.process_time()
    if profiler is not None:
        profiler.enable()
    result = dict(await fetch(ctx))
    if profiler is not None:
        profiler.disable()
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    if profiler is not None and profile_to:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(30)
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        Path(profile_to).write_text(out.getvalue())
    await crawl.aclose()
    await db.dispose()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    report = {"seconds": seconds, "cpu": cpu, "peak_mb": peak, "rss_before_mb": rss_before, "result": result}
    return report | {"politeness_calls": dict(calls)}


def count_politeness_calls() -> Counter[str]:
    """Count the shared-politeness store's calls in this process (each is a round trip to the database)."""
    from mediabeat.db.stores.politeness import PolitenessStore

    calls: Counter[str] = Counter()
    for name in ("acquire", "release", "cool_down"):
        method = getattr(PolitenessStore, name)

        async def counted(self: Any, *args: Any, _method: Any = method, _name: str = name, **kwargs: Any) -> Any:
            calls[_name] += 1
            return await _method(self, *args, **kwargs)

        setattr(PolitenessStore, name, counted)
    return calls


def database_size(database_url: str) -> float:
    """MB on disk: the SQLite file and its WAL, or pg_database_size."""
    if database_url.startswith("sqlite"):
        path = Path(database_url.split("///", 1)[1])
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*")) / 1024 / 1024
    import sqlalchemy as sa

    engine = sa.create_engine(database_url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        size = conn.execute(sa.text("SELECT pg_database_size(current_database())")).scalar_one()
    engine.dispose()
    return float(size) / 1024 / 1024


def child(*args: str) -> dict[str, Any]:
    """Run this file with `args` in a new process and return the JSON it prints last."""
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def measure(
    n: int, admin_url: str | None, tmp: Path, args: argparse.Namespace, port: int, *, reuse: bool = True
) -> dict[str, Any]:
    with fresh_database(admin_url, tmp / f"feeds-{n}{'' if reuse else '-per-request'}.db") as url:
        seeded = child("--seed", url, "--n", str(n), "--hosts", str(args.hosts), "--port", str(port))
        if url.startswith("postgresql"):
            import sqlalchemy as sa

            engine = sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)
            with engine.connect() as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            engine.dispose()
        load = os.getloadavg()[0]
        profile = ["--profile-to", str(tmp / f"profile-{n}.txt")] if args.profile else []
        politeness = [] if args.shared_politeness is None else ["--shared-politeness", args.shared_politeness]
        report = child("--pass", url, *profile, *politeness, *([] if reuse else ["--no-reuse"]))
        report.update(seeded, n=n, load_before=load, load_after=os.getloadavg()[0], db_mb=database_size(url))
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=200_000, help="largest N (default 200,000)")
    parser.add_argument("--sizes", help="comma-separated Ns (default 1000,10000,50000,200000 up to --max)")
    parser.add_argument("--database", help="a PostgreSQL URL to create scratch databases on (default: SQLite)")
    parser.add_argument("--latency-ms", type=int, default=0, help="server latency per response")
    parser.add_argument("--hosts", type=int, default=50, help="loopback addresses the feeds are spread over")
    parser.add_argument("--profile", action="store_true", help="cProfile each pass into the temp folder")
    parser.add_argument(
        "--shared-politeness",
        choices=("on", "off"),
        help="MEDIABEAT_CRAWLER_SHARED_POLITENESS for the pass (default: the product's, on for PostgreSQL only)",
    )
    parser.add_argument(
        "--before-up-to",
        type=int,
        default=0,
        help="for each N up to this, also run the pass as before slot reuse (a shared slot per request), same sitting",
    )
    parser.add_argument("--no-reuse", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--serve", nargs=2, metavar=("PORT", "LATENCY_MS"), help=argparse.SUPPRESS)
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    parser.add_argument("--pass", dest="pass_url", help=argparse.SUPPRESS)
    parser.add_argument("--profile-to", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(serve(int(args.serve[0]), int(args.serve[1]) / 1000, hosts(args.hosts)))
        return
    if args.seed:
        print(json.dumps(asyncio.run(seed(args.seed, args.n, hosts(args.hosts), args.port))))
        return
    if args.pass_url:
        shared = None if args.shared_politeness is None else args.shared_politeness == "on"
        print(json.dumps(asyncio.run(run_pass(args.pass_url, args.profile_to, shared, not args.no_reuse))))
        return
    run_all(args)


def report_line(n: int, r: dict[str, Any], vs_smallest: float, slots: str) -> None:
    res = r["result"]
    trips = sum(r["politeness_calls"].values()) / n
    print(
        f"{n:,} | {slots} | {r['seconds']:.1f} | {r['seconds'] / n * 1e6:.0f} | {r['cpu'] / n * 1e6:.0f} | "
        f"{vs_smallest:.2f}x | {r['peak_mb']:.0f} (before {r['rss_before_mb']:.0f}) | {r['db_mb']:.0f} | "
        f"{res['jobs_created']:,} | {trips:.2f} | {r['load_before']:.1f}-{r['load_after']:.1f}   "
        f"[fetched {res['fetched']}, 304 {res['not_modified']}, unchanged {res['unchanged']}, "
        f"failed {res['failed']}; seeded in {r['seed_total_s']:.0f} s]",
        flush=True,
    )


def run_all(args: argparse.Namespace) -> None:
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else [1000, 10_000, 50_000, 200_000]
    sizes = [s for s in sizes if s <= args.max]
    admin_url = args.database or os.environ.get("MEDIABEAT_TEST_POSTGRES_URL")
    backend = "postgresql" if admin_url else "sqlite"
    sys.path.insert(0, str(Path(__file__).parent))
    from crawl_bench import free_port, stop

    host_list = hosts(args.hosts)
    port = free_port(host_list[0])
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), str(args.latency_ms), "--hosts", str(args.hosts)],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    assert server.stdout is not None
    if server.stdout.readline().strip() != b"ready":
        raise SystemExit("the feed server did not start")
    tmp = Path(tempfile.mkdtemp(prefix="feedscale"))
    politeness = args.shared_politeness or ("on" if admin_url else "off")
    print(
        f"{backend}, shared politeness {politeness}, {os.cpu_count()} cores, {args.hosts} hosts, "
        f"{args.latency_ms} ms latency; tmp {tmp}"
    )
    print(
        "N | slots | pass s | µs/feed (wall) | µs/feed (CPU) | CPU vs smallest N | peak RSS MB | DB MB | jobs | "
        "politeness round trips per feed | load"
    )
    baseline = None
    try:
        for n in sizes:
            for reuse in (True, False) if n <= args.before_up_to else (True,):
                r = measure(n, admin_url, tmp, args, port, reuse=reuse)
                cpu_per_feed = r["cpu"] / n * 1e6
                baseline = baseline or cpu_per_feed  # the smallest N's, with slots reused
                report_line(n, r, cpu_per_feed / baseline, "reused" if reuse else "per request")
    finally:
        stop(server)


if __name__ == "__main__":
    main()
