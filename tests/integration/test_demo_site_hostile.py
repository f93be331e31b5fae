"""Each hostile mode of the local news site misbehaves as documented; every read here is bounded."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime

import feedparser
import httpx
import pytest

from mediabeat.demo import content as demo_content
from mediabeat.demo.hostile import MODES, HostileConfig, gzip_bomb
from mediabeat.demo.site import create_demo_app, running_demo_site

HOSTILE = HostileConfig(
    slow_byte_interval_s=0.1,
    slow_total_s=60,
    slow_headers_delay_s=30,
    huge_bytes=3 * 1024 * 1024 + 7,
    bomb_inflated_bytes=256 * 1024 * 1024,
    retry_after_s=90,
)


@pytest.fixture(scope="module")
def site() -> Iterator[httpx.Client]:
    app = create_demo_app(demo_content.DemoSiteConfig(), hostile=HOSTILE, now=lambda: datetime(2026, 5, 1, tzinfo=UTC))
    with running_demo_site(app) as urls, httpx.Client(base_url=urls[0], timeout=10) as client:
        yield client


def test_hostile_opml_lists_every_mode_and_the_regular_opml_none(site: httpx.Client) -> None:
    outlines = ET.fromstring(site.get("/hostile.opml").content).iter("outline")
    urls = [o.attrib["xmlUrl"] for o in outlines if "xmlUrl" in o.attrib]
    assert sorted(u.split("/")[-2] for u in urls) == sorted(MODES)
    assert "/hostile/" not in site.get("/feeds.opml").text


@pytest.mark.parametrize("kind", ["feed.xml", "page.html"])
def test_error_statuses(site: httpx.Client, kind: str) -> None:
    assert site.get(f"/hostile/error-500/{kind}").status_code == 500
    assert site.get(f"/hostile/gone/{kind}").status_code == 410
    limited = site.get(f"/hostile/rate-limited/{kind}")
    assert limited.status_code == 429 and limited.headers["retry-after"] == "90"


@pytest.mark.parametrize(("mode", "status"), [("moved", 301), ("moved-308", 308), ("found", 302)])
@pytest.mark.parametrize("kind", ["feed", "page"])
def test_redirects_lead_to_a_working_url(site: httpx.Client, mode: str, status: int, kind: str) -> None:
    ext = "xml" if kind == "feed" else "html"
    first = site.get(f"/hostile/{mode}/{kind}.{ext}")
    assert first.status_code == status
    target = first.headers["location"]
    assert target != f"/hostile/{mode}/{kind}.{ext}"
    final = site.get(target)
    assert final.status_code == 200
    if kind == "feed":
        assert len(feedparser.parse(final.content).entries) == 30
    else:
        assert "<article" in final.text


def test_redirect_loop_never_ends(site: httpx.Client) -> None:
    with pytest.raises(httpx.TooManyRedirects):
        site.get("/hostile/redirect-loop/feed.xml", follow_redirects=True)
    hops = {site.get("/hostile/redirect-loop/feed.xml").headers["location"]}
    hops.add(site.get(next(iter(hops))).headers["location"])
    assert hops == {"/hostile/redirect-loop/other-feed.xml", "/hostile/redirect-loop/feed.xml"}


def test_slow_mode_trickles_bytes_without_finishing(site: httpx.Client) -> None:
    received = b""
    finished = True
    with site.stream("GET", "/hostile/slow/feed.xml") as response:
        assert response.status_code == 200
        deadline = time.monotonic() + 1.5
        for chunk in response.iter_raw():
            received += chunk
            if time.monotonic() > deadline:
                finished = False
                break
    assert not finished
    assert 0 < len(received) < 100
    assert received.startswith(b"<?xml"[: len(received)])


def test_slow_headers_hit_the_read_timeout(site: httpx.Client) -> None:
    with pytest.raises(httpx.ReadTimeout):
        site.get("/hostile/slow-headers/feed.xml", timeout=httpx.Timeout(10, read=0.5))


@pytest.mark.parametrize("kind", ["feed.xml", "page.html"])
def test_huge_body_is_streamed_without_length(site: httpx.Client, kind: str) -> None:
    with site.stream("GET", f"/hostile/huge/{kind}") as response:
        assert "content-length" not in response.headers
        total = sum(len(chunk) for chunk in response.iter_raw())
    assert total == HOSTILE.huge_bytes
    assert HostileConfig().huge_bytes == 50 * 1024 * 1024


def test_gzip_bomb_is_small_on_the_wire_and_inflates_to_the_configured_size(site: httpx.Client) -> None:
    with site.stream("GET", "/hostile/gzip-bomb/feed.xml") as response:
        assert response.headers["content-encoding"] == "gzip"
        wire = b"".join(response.iter_raw())
    assert len(wire) < HOSTILE.bomb_inflated_bytes // 500
    inflater = zlib.decompressobj(wbits=31)
    inflated, pending = 0, wire
    while pending:
        inflated += len(inflater.decompress(pending, 16 * 1024 * 1024))
        pending = inflater.unconsumed_tail
    assert inflater.eof  # the trailer's CRC and length matched
    assert inflated == HOSTILE.bomb_inflated_bytes


async def test_gzip_bomb_of_gigabytes_is_generated_lazily_in_small_chunks() -> None:
    stream = gzip_bomb(100 * 1024**3)
    chunks = [await anext(stream) for _ in range(50)]
    assert max(len(c) for c in chunks) < 4096
    await stream.aclose()


def test_malformed_xml_is_not_well_formed(site: httpx.Client) -> None:
    body = site.get("/hostile/malformed/feed.xml").content
    with pytest.raises(ET.ParseError):
        ET.fromstring(body)
    assert feedparser.parse(body).bozo


def test_wrong_charsets(site: httpx.Client) -> None:
    latin = site.get("/hostile/wrong-charset/feed.xml")
    assert "charset=utf-8" in latin.headers["content-type"]
    assert b'encoding="utf-8"' in latin.content
    with pytest.raises(UnicodeDecodeError):
        latin.content.decode("utf-8")
    assert "Zürich".encode("latin-1") in latin.content
    utf8 = site.get("/hostile/wrong-charset-reverse/feed.xml")
    assert "charset=iso-8859-1" in utf8.headers["content-type"]
    assert b'encoding="iso-8859-1"' in utf8.content
    assert "Zürich".encode() in utf8.content


def test_html_served_where_a_feed_is_expected(site: httpx.Client) -> None:
    response = site.get("/hostile/html/feed.xml")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert response.text.startswith("<!DOCTYPE html>")
    assert feedparser.parse(response.content).entries == []


def test_empty_body(site: httpx.Client) -> None:
    response = site.get("/hostile/empty/feed.xml")
    assert response.status_code == 200 and response.content == b""


def test_bom_and_relative_links_are_odd_but_valid(site: httpx.Client) -> None:
    bom = site.get("/hostile/bom/feed.xml").content
    assert bom.startswith(b"\xef\xbb\xbf<?xml")
    assert len(feedparser.parse(bom).entries) == 30
    relative = feedparser.parse(site.get("/hostile/relative-links/feed.xml").content)
    assert relative.entries and all(e.link.startswith("/world/") for e in relative.entries)
    assert not any("published" in e for e in relative.entries)


def test_robots_txt_can_fail_with_503_on_chosen_addresses() -> None:
    hostile = HostileConfig(robots_error_hosts=frozenset({"127.0.0.2"}))
    app = create_demo_app(demo_content.DemoSiteConfig(), hostile=hostile)
    with running_demo_site(app, ["127.0.0.1", "127.0.0.2"]) as urls, httpx.Client(timeout=10) as client:
        assert client.get(urls[0] + "/robots.txt").status_code == 200
        assert client.get(urls[1] + "/robots.txt").status_code == 503
        assert client.get(urls[1] + "/feeds/world.rss").status_code == 200
