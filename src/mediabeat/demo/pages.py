"""HTML pages of the local news site: article pages with the clutter real news sites have around them."""

from __future__ import annotations

from datetime import datetime
from html import escape

from mediabeat.demo.content import Article, DemoSiteConfig, front_page_articles, latest_articles


def _nav(config: DemoSiteConfig) -> str:
    links = "".join(f'<li><a href="/{slug}/">{escape(title)}</a></li>' for slug, title in config.sections)
    return (
        f'<header class="site-header"><a class="logo" href="/">{escape(config.name)}</a>'
        '<form class="search" action="/search"><input name="q" placeholder="Search"></form>'
        '<a class="subscribe" href="/private/subscribe">Subscribe</a></header>'
        f'<nav class="main-nav" aria-label="Sections"><ul>{links}</ul></nav>'
    )


def _ad(slot: str) -> str:
    return (
        f'<aside class="ad ad-{slot}" data-ad-slot="{slot}"><span class="ad-label">Advertisement</span>'
        '<a href="/ads/click?campaign=demo" rel="sponsored">Limited offer: 50% off noise-cancelling headphones '
        "this week only. Free delivery on all orders.</a></aside>"
    )


def _footer() -> str:
    return (
        '<footer class="site-footer"><ul><li><a href="/about">About us</a></li><li><a href="/contact">Contact</a>'
        '</li><li><a href="/privacy">Privacy</a></li><li><a href="/private/archive">Archive</a></li></ul>'
        "<p>\u00a9 The Daily Loopback. A simulated news site served by MediaBeat for demos and tests; "
        "every article is generated.</p>"
        '<div class="cookie-banner">We use cookies to improve your experience. <button>Accept all</button></div>'
        "</footer>"
    )


def _page(title: str, head_extra: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{head_extra}"
        "<style>body{font-family:Georgia,serif;max-width:60rem;margin:auto}.ad{background:#fee;padding:1em}</style>\n"
        "</head>\n<body>\n" + body + "\n</body>\n</html>\n"
    )


def article_html(config: DemoSiteConfig, article: Article, base_url: str) -> str:
    """A full article page: navigation, ads, related links and comments around the article itself."""
    section_title = config.section_title(article.section) or article.section
    stamp = article.published.isoformat()
    url = base_url + article.path
    head = (
        f'<link rel="canonical" href="{escape(url)}">\n'
        f'<meta name="author" content="{escape(article.author)}">\n'
        f'<meta name="description" content="{escape(article.summary)}">\n'
        f'<meta property="og:type" content="article">\n'
        f'<meta property="og:title" content="{escape(article.title)}">\n'
        f'<meta property="og:url" content="{escape(url)}">\n'
        f'<meta property="article:published_time" content="{stamp}">\n'
        f'<meta property="article:author" content="{escape(article.author)}">\n'
        f'<meta property="article:section" content="{escape(section_title)}">\n'
    )
    paragraphs = "\n".join(f"<p>{escape(p)}</p>" for p in article.paragraphs)
    middle = len(article.paragraphs) // 2
    body_parts = paragraphs.split("\n")
    body_parts.insert(middle, _ad("inline"))
    related = "".join(
        f'<li><a href="{a.path}">{escape(a.title)}</a></li>'
        for a in latest_articles(config, article.section, article.published, 4)
        if a.number != article.number
    )
    comments = "".join(
        f'<li class="comment"><span class="comment-author">{escape(who)}</span><p>{escape(text)}</p></li>'
        for who, text in article.comments
    )
    body = (
        _nav(config)
        + _ad("leaderboard")
        + '<main><article class="story">'
        + f'<p class="kicker"><a href="/{article.section}/">{escape(section_title)}</a></p>'
        + f"<h1>{escape(article.title)}</h1>"
        + f'<p class="byline">By <span class="author" rel="author">{escape(article.author)}</span>, '
        + f'<time datetime="{stamp}">{article.published.strftime("%d %B %Y, %H:%M")} UTC</time></p>'
        + '<div class="story-body">'
        + "\n".join(body_parts)
        + "</div></article>"
        + f'<aside class="related"><h2>More in {escape(section_title)}</h2><ul>{related}</ul></aside>'
        + _ad("sidebar")
        + f'<section class="comments"><h2>{len(article.comments)} comments</h2><ul>{comments}</ul>'
        + '<form class="comment-form"><textarea name="comment"></textarea><button>Post</button></form></section>'
        + '<div class="newsletter">Get the morning briefing in your inbox. <a href="/private/newsletter">Sign up</a>'
        + "</div></main>"
        + _footer()
    )
    return _page(f"{article.title} | {config.name}", head, body)


def section_html(config: DemoSiteConfig, section: str, now: datetime) -> str:
    title = config.section_title(section) or section
    items = "".join(
        f'<li><a href="{a.path}">{escape(a.title)}</a> <time>{a.published.isoformat()}</time></li>'
        for a in latest_articles(config, section, now)
    )
    feeds = (
        f'<link rel="alternate" type="application/rss+xml" href="/feeds/{section}.rss">\n'
        f'<link rel="alternate" type="application/atom+xml" href="/feeds/{section}.atom">\n'
    )
    body = _nav(config) + f"<main><h1>{escape(title)}</h1><ul>{items}</ul></main>" + _footer()
    return _page(f"{title} | {config.name}", feeds, body)


def home_html(config: DemoSiteConfig, now: datetime) -> str:
    items = "".join(
        f'<li><a href="{a.path}">{escape(a.title)}</a> <time>{a.published.isoformat()}</time></li>'
        for a in front_page_articles(config, now)
    )
    body = (
        _nav(config)
        + _ad("leaderboard")
        + f"<main><h1>{escape(config.name)}</h1>"
        + '<p>A simulated news site for MediaBeat. All feeds: <a href="/feeds.opml">/feeds.opml</a>; '
        + 'misbehaving feeds: <a href="/hostile.opml">/hostile.opml</a>.</p>'
        + f"<ul>{items}</ul></main>"
        + _footer()
    )
    # Feed discovery: each section's RSS feed (the first is the site's main feed).
    feeds = "".join(
        f'<link rel="alternate" type="application/rss+xml" title="{escape(title)}" href="/feeds/{slug}.rss">\n'
        for slug, title in config.sections
    )
    return _page(config.name, feeds + '<link rel="alternate" type="text/x-opml" href="/feeds.opml">\n', body)


def private_html(path: str) -> str:
    body = '<main><h1>Members only</h1><p>This page is disallowed by robots.txt.</p><p class="path">'
    return _page("Members only | The Daily Loopback", "", body + escape(path) + "</p></main>")


def robots_txt(base_url: str) -> str:
    """Everything is allowed except the members area and search, as on many news sites; it lists the sitemaps."""
    sitemaps = f"Sitemap: {base_url}/sitemaps/news.xml\nSitemap: {base_url}/sitemaps/pages.xml\n"
    return "User-agent: *\nDisallow: /private/\nDisallow: /search\n\n" + sitemaps
