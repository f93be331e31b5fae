"""Canonical URLs and OPML parsing/rendering."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mediabeat.crawler.opml import OpmlError, OpmlFeed, parse_opml, render_opml
from mediabeat.crawler.urls import BadUrl, _canonicalize, article_canonical_url, canonicalize


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("HTTP://Example.COM:80/a?utm_source=x&id=3#top", "http://example.com/a?id=3"),
        ("https://example.com:443", "https://example.com/"),
        ("https://example.com:8443/p?fbclid=1&gclid=2&b=2&a=1", "https://example.com:8443/p?b=2&a=1"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://example.com/%7Euser?mc_cid=1&UTM_MEDIUM=y", "https://example.com/%7Euser"),
    ],
)
def test_canonicalize(raw: str, canonical: str) -> None:
    assert canonicalize(raw) == canonical


@pytest.mark.parametrize("bad", ["ftp://example.com/x", "/relative", "http://", "javascript:alert(1)"])
def test_canonicalize_refuses_non_http(bad: str) -> None:
    with pytest.raises(BadUrl):
        canonicalize(bad)


def test_opml_round_trip() -> None:
    feeds = [OpmlFeed(url="http://127.0.0.1/a.xml", title="A & B"), OpmlFeed(url="http://127.0.0.1/b.xml")]
    data = render_opml(feeds, title="Export")
    parsed = parse_opml(data)
    assert parsed == [
        OpmlFeed(url="http://127.0.0.1/a.xml", title="A & B"),
        OpmlFeed("http://127.0.0.1/b.xml", "http://127.0.0.1/b.xml"),
    ]


def test_opml_nested_outlines_and_duplicates() -> None:
    data = b"""<?xml version="1.0"?><opml version="1.0"><body>
    <outline text="News"><outline text="One" xmlUrl="http://127.0.0.1/1"/><outline xmlUrl="http://127.0.0.1/1"/></outline>
    <outline text="no feed"/></body></opml>"""
    assert parse_opml(data) == [OpmlFeed("http://127.0.0.1/1", "One")]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"<opml><body>", r"^the OPML file cannot be read: the file ends before its elements are closed \(was it cut"),
        (b"<opml>\n<body>\n<outline xmlUrl='a&b'/>", r"an & that does not start an entity .*, on line 3$"),
        (b"hello", r"does not start with an XML tag"),
        (b"<rss/>", "not an OPML"),
        (b"<opml/>", "no <body>"),
        (
            b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><opml><body>&e;</body></opml>',
            "entities",
        ),
    ],
)
def test_opml_errors(data: bytes, message: str) -> None:
    with pytest.raises(OpmlError, match=message):
        parse_opml(data)


_HOSTS = st.from_regex(r"[a-zA-Z0-9][a-zA-Z0-9.-]{0,20}\.?", fullmatch=True)
_PATHS = st.from_regex(r"(/[A-Za-z0-9:@!$&'()*+,;=._~%\- ]{0,12}){0,4}", fullmatch=True)


@given(
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    host=_HOSTS,
    port=st.sampled_from(["", ":80", ":443", ":8080", ":080", ":65535", ":70000"]),
    path=_PATHS,
    tail=st.sampled_from(["", "?a=1", "?utm_source=x", "#frag"]),
)
def test_the_already_canonical_shortcut_agrees_with_the_full_rules(
    scheme: str, host: str, port: str, path: str, tail: str
) -> None:
    url = f"{scheme}://{host}{port}{path}{tail}"
    try:
        expected: str | type[BadUrl] = _canonicalize(url)
    except BadUrl:
        expected = BadUrl
    if expected is BadUrl:
        with pytest.raises(BadUrl):
            canonicalize(url)
    else:
        assert canonicalize(url) == expected


def test_an_article_lives_where_its_page_says_if_that_is_on_its_own_site() -> None:
    fetched = "https://www.news.example/story?id=7&utm_source=feed"
    assert (
        article_canonical_url("https://news.example/2026/story.html", fetched) == "https://news.example/2026/story.html"
    )
    assert article_canonical_url("/2026/story.html", fetched) == "https://www.news.example/2026/story.html"
    # Another site's URL, or something that is not a URL, is not believed: the fetched URL stands.
    assert article_canonical_url("https://elsewhere.example/story", fetched) == "https://www.news.example/story?id=7"
    assert article_canonical_url("javascript:alert(1)", fetched) == "https://www.news.example/story?id=7"
    assert article_canonical_url(None, fetched) == "https://www.news.example/story?id=7"
