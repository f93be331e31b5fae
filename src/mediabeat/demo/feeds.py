"""Feeds and OPML of the local news site: RSS 2.0 and Atom documents of the generated articles."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from xml.sax.saxutils import escape as xml_escape

from mediabeat.demo.content import ATOM_SECTIONS, DemoSiteConfig, latest_articles, latest_number, published_at


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def rss_feed(
    config: DemoSiteConfig,
    section: str,
    base_url: str,
    now: datetime,
    *,
    relative: bool = False,
    hub: str | None = None,
) -> str:
    """An RSS 2.0 document of the section's newest articles; `relative` gives relative item links.

    With `hub`, the channel advertises that WebSub hub (an atom:link rel="hub").
    """
    articles = latest_articles(config, section, now)
    title = config.section_title(section) or section
    items = []
    for a in articles:
        link = a.path if relative else base_url + a.path
        items.append(
            "    <item>\n"
            f"      <title>{xml_escape(a.title)}</title>\n"
            f"      <link>{xml_escape(link)}</link>\n"
            f'      <guid isPermaLink="true">{xml_escape(link)}</guid>\n'
            f"      <dc:creator>{xml_escape(a.author)}</dc:creator>\n"
            f"      <pubDate>{http_date(a.published)}</pubDate>\n"
            f"      <category>{xml_escape(title)}</category>\n"
            f"      <description>{xml_escape(a.summary)}</description>\n"
            "    </item>\n"
        )
    built = http_date(articles[0].published) if articles else http_date(config.epoch)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:atom="http://www.w3.org/2005/Atom">\n'
        "  <channel>\n"
        f"    <title>{xml_escape(config.name)}: {xml_escape(title)}</title>\n"
        f"    <link>{xml_escape(base_url)}/{section}/</link>\n"
        f'    <atom:link href="{xml_escape(base_url)}/feeds/{section}.rss" rel="self" type="application/rss+xml"/>\n'
        + (f'    <atom:link href="{xml_escape(hub)}" rel="hub"/>\n' if hub else "")
        + f"    <description>{xml_escape(title)} news from {xml_escape(config.name)}, a simulated news site"
        "</description>\n"
        "    <language>en</language>\n"
        f"    <lastBuildDate>{built}</lastBuildDate>\n"
        f"    <ttl>{max(1, config.article_interval_s // 60)}</ttl>\n" + "".join(items) + "  </channel>\n</rss>\n"
    )


def atom_feed(config: DemoSiteConfig, section: str, base_url: str, now: datetime, *, hub: str | None = None) -> str:
    """An Atom 1.0 document of the section's newest articles; with `hub`, a link rel="hub" to it."""
    articles = latest_articles(config, section, now)
    title = config.section_title(section) or section
    updated = (articles[0].published if articles else config.epoch).isoformat().replace("+00:00", "Z")
    entries = []
    for a in articles:
        stamp = a.published.isoformat().replace("+00:00", "Z")
        entries.append(
            "  <entry>\n"
            f"    <title>{xml_escape(a.title)}</title>\n"
            f'    <link rel="alternate" type="text/html" href="{xml_escape(base_url + a.path)}"/>\n'
            f"    <id>{xml_escape(base_url + a.path)}</id>\n"
            f"    <published>{stamp}</published>\n"
            f"    <updated>{stamp}</updated>\n"
            f"    <author><name>{xml_escape(a.author)}</name></author>\n"
            f"    <summary>{xml_escape(a.summary)}</summary>\n"
            "  </entry>\n"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n'
        '<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">\n'
        f"  <title>{xml_escape(config.name)}: {xml_escape(title)}</title>\n"
        f"  <id>{xml_escape(base_url)}/feeds/{section}.atom</id>\n"
        f'  <link rel="self" href="{xml_escape(base_url)}/feeds/{section}.atom"/>\n'
        + (f'  <link rel="hub" href="{xml_escape(hub)}"/>\n' if hub else "")
        + f'  <link rel="alternate" type="text/html" href="{xml_escape(base_url)}/{section}/"/>\n'
        f"  <updated>{updated}</updated>\n" + "".join(entries) + "</feed>\n"
    )


def feed_last_modified(config: DemoSiteConfig, section: str, now: datetime) -> datetime:
    newest = latest_number(config, section, now)
    return published_at(config, section, newest) if newest >= 0 else config.epoch


def feed_path(config: DemoSiteConfig, section: str) -> str:
    return f"/feeds/{section}.atom" if section in ATOM_SECTIONS else f"/feeds/{section}.rss"


def opml(title: str, outlines: list[tuple[str, str, str]]) -> str:
    """An OPML 2.0 document; each outline is (text, feed type `rss`/`atom`, absolute xmlUrl)."""
    body = "".join(
        f'    <outline type="rss" text="{xml_escape(text)}" title="{xml_escape(text)}" '
        f'xmlUrl="{xml_escape(url, {chr(34): "&quot;"})}" version="{kind.upper()}"/>\n'
        for text, kind, url in outlines
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n<opml version="2.0">\n'
        f"  <head><title>{xml_escape(title)}</title></head>\n"
        f'  <body>\n  <outline text="{xml_escape(title)}">\n{body}  </outline>\n  </body>\n</opml>\n'
    )


def site_opml(config: DemoSiteConfig, base_url: str) -> str:
    """Every regular feed of the site, one per section (RSS or Atom), plus the wire feeds."""
    outlines = []
    for slug in config.section_names():
        path = feed_path(config, slug)
        kind = "atom" if path.endswith(".atom") else "rss"
        outlines.append((f"{config.name}: {config.section_title(slug)}", kind, base_url + path))
    return opml(f"{config.name} (MediaBeat demo site)", outlines)


SITEMAP_XMLNS = "http://www.sitemaps.org/schemas/sitemap/0.9"
NEWS_XMLNS = "http://www.google.com/schemas/sitemap-news/0.9"


def news_sitemap_index(config: DemoSiteConfig, base_url: str) -> str:
    """The sitemap index robots.txt lists: one news sitemap per section, as large news sites split theirs."""
    children = "".join(
        f"  <sitemap><loc>{xml_escape(base_url)}/sitemaps/news-{slug}.xml</loc></sitemap>\n"
        for slug, _ in config.sections
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<sitemapindex xmlns="{SITEMAP_XMLNS}">\n{children}</sitemapindex>\n'
    )


def news_sitemap(config: DemoSiteConfig, section: str, base_url: str, now: datetime) -> str:
    """A Google News sitemap of the section's newest articles (`<news:news>` with title and date)."""
    urls = []
    for a in latest_articles(config, section, now):
        urls.append(
            "  <url>\n"
            f"    <loc>{xml_escape(base_url + a.path)}</loc>\n"
            "    <news:news>\n"
            f"      <news:publication><news:name>{xml_escape(config.name)}</news:name>"
            "<news:language>en</news:language></news:publication>\n"
            f"      <news:publication_date>{a.published.astimezone(UTC).isoformat()}</news:publication_date>\n"
            f"      <news:title>{xml_escape(a.title)}</news:title>\n"
            "    </news:news>\n"
            "  </url>\n"
        )
    return (
        f'<?xml version="1.0" encoding="utf-8"?>\n<urlset xmlns="{SITEMAP_XMLNS}" xmlns:news="{NEWS_XMLNS}">\n'
        + "".join(urls)
        + "</urlset>\n"
    )


def pages_sitemap(config: DemoSiteConfig, base_url: str) -> str:
    """A plain sitemap of the site's section pages: no `<news:news>`, so discovery says it is no news sitemap."""
    pages = [f"{base_url}/"] + [f"{base_url}/{slug}/" for slug, _ in config.sections]
    urls = "".join(f"  <url><loc>{xml_escape(page)}</loc></url>\n" for page in pages)
    return f'<?xml version="1.0" encoding="utf-8"?>\n<urlset xmlns="{SITEMAP_XMLNS}">\n{urls}</urlset>\n'
