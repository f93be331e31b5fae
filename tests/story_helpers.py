"""The demo site's articles (its wire reprints among them) as articles to store, for the story-cluster tests."""

from __future__ import annotations

from mediabeat.crawler.urls import url_hash
from mediabeat.db.stores.articles import NewArticle
from mediabeat.demo.content import SECTIONS, DemoSiteConfig, make_article, syndicated_story

SITE = DemoSiteConfig()


def demo_articles(numbers: range) -> list[tuple[str, int, int | None]]:
    """(section, number, wire story or None) of the demo site's articles."""
    return [(slug, n, syndicated_story(SITE, slug, n)) for slug, _ in SECTIONS for n in numbers]


def new_article(
    org_id: int, section: str, number: int, host: str = "127.0.0.1", feed_id: int | None = None
) -> NewArticle:
    item = make_article(SITE, section, number)
    url = f"http://{host}:8001{item.path}"
    return NewArticle(
        org_id=org_id,
        feed_id=feed_id,
        url=url,
        url_hash=url_hash(url),
        canonical_url=url,
        title=item.title,
        author=item.author,
        published_at=item.published,
        summary=item.summary,
        text="\n\n".join(item.paragraphs),
        language="en",
    )


def copies_of(story: int, numbers: range = range(40)) -> list[tuple[str, int]]:
    """The (section, number) of every reprint of wire story `story` among `numbers`."""
    return [(s, n) for s, n, found in demo_articles(numbers) if found == story]
