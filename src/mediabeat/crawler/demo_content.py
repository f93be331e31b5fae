"""The deterministic content of the local news site: sections, articles, feeds and OPML.

Everything here is a pure function of a seed, the site's settings and a `now` that the caller
passes in: article `n` of a section is published at `epoch + n * interval` (staggered per
section), so new articles appear over time, and two sites with the same settings serve the same
bytes. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import functools
import hashlib
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from html import escape
from xml.sax.saxutils import escape as xml_escape

SECTIONS: tuple[tuple[str, str], ...] = (
    ("world", "World"),
    ("politics", "Politics"),
    ("business", "Business"),
    ("technology", "Technology"),
    ("science", "Science"),
    ("health", "Health"),
    ("climate", "Climate"),
    ("culture", "Culture"),
    ("sport", "Sport"),
    ("education", "Education"),
    ("cities", "Cities"),
    ("opinion", "Opinion"),
)
# Sections whose feed is listed as Atom in the OPML; the others as RSS 2.0. Both formats exist for all.
ATOM_SECTIONS = frozenset({"politics", "technology", "health", "culture", "education", "opinion"})
DEFAULT_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)

_GIVEN = ("Amira", "Jonas", "Lucia", "Kenji", "Priya", "Tomasz", "Chloe", "Diego", "Ingrid", "Samuel", "Hannah")
_FAMILY = ("Haddad", "Berg", "Moreno", "Watanabe", "Raman", "Nowak", "Martin", "Alvarez", "Solberg", "Okafor", "Weiss")
_SUBJECTS = (
    "city council",
    "regional water board",
    "national rail operator",
    "university hospital",
    "central bank",
    "harbour authority",
    "farmers' cooperative",
    "public broadcaster",
    "energy regulator",
    "teachers' union",
    "space agency",
    "museum trust",
    "housing association",
    "football federation",
    "research institute",
    "ministry of transport",
)
_VERBS = (
    "approves",
    "delays",
    "unveils",
    "rejects",
    "expands",
    "reviews",
    "cuts",
    "doubles",
    "defends",
    "questions",
    "launches",
    "pauses",
)
_OBJECTS = (
    "plan for new tram lines",
    "budget for flood defences",
    "pilot of four-day school weeks",
    "rules on short-term rentals",
    "funding for rural clinics",
    "study of microplastics in rivers",
    "bid to host the championships",
    "reform of night-train timetables",
    "programme for rooftop solar",
    "overhaul of the pension fund",
    "ban on single-use packaging",
    "deal with coastal fishing fleets",
    "audit of hospital waiting lists",
    "vote on the new library",
)
_QUALIFIERS = (
    "after months of debate",
    "amid protests",
    "despite warnings from experts",
    "ahead of the winter",
    "in a surprise move",
    "as costs rise",
    "following a public consultation",
    "under pressure from residents",
)
_OPENERS = (
    "Officials said on {day} that",
    "According to documents seen by this newspaper,",
    "In a statement released late on {day},",
    "Speaking to reporters on {day}, a spokesperson confirmed that",
    "Residents were told at a packed meeting that",
    "The decision, announced on {day}, means that",
)
_FACTS = (
    "the {subject} will spend {num} million on the first phase",
    "about {pct} per cent of households in the region are affected",
    "the work is expected to take {years} years to complete",
    "a final vote is scheduled for the spring",
    "{num} jobs could be created over the coming decade",
    "critics argue the timetable is far too optimistic",
    "a similar scheme in a neighbouring region cost {num} million more than planned",
    "independent auditors will publish a review within {years} months",
)
_QUOTES = (
    "\u201cWe have listened carefully and we believe this is the right step,\u201d said {person}.",
    "\u201cNobody asked the people who actually live here,\u201d said {person}, a local shop owner.",
    "\u201cThe numbers simply do not add up,\u201d {person}, an economist, told us.",
    "\u201cThis is a long-term investment, not a quick fix,\u201d said {person}.",
    "\u201cWe will be watching closely how the money is spent,\u201d said {person} of the opposition.",
)
_CONTEXT = (
    "The proposal has been discussed in various forms since at least {year}, when a first study "
    "was commissioned and later shelved because of its cost.",
    "Similar measures have been introduced in several other countries, with mixed results, and "
    "researchers caution that local conditions matter a great deal.",
    "Opposition parties have called for a full parliamentary inquiry, while business groups have "
    "broadly welcomed the announcement as overdue.",
    "Campaigners say that the plan does not go far enough and have promised to keep up the pressure "
    "with further demonstrations in the coming weeks.",
    "The timetable depends on approval from neighbouring municipalities, several of which have yet to "
    "take a formal position on the matter.",
)
_COMMENTS = (
    "Finally some good news for once.",
    "I'll believe it when I see it.",
    "Who is paying for all this?",
    "Great reporting, thank you.",
    "This has been promised every year since I moved here.",
    "Does anyone know where the consultation documents are?",
)
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass(frozen=True)
class DemoSiteConfig:
    """What makes one demo site: its seed, when article 0 appears, and how often new ones do."""

    seed: int = 1
    epoch: datetime = DEFAULT_EPOCH
    article_interval_s: int = 120
    feed_size: int = 30
    wire_feeds: int = 0
    sections: tuple[tuple[str, str], ...] = field(default=SECTIONS)

    def section_names(self) -> list[str]:
        return [slug for slug, _ in self.sections] + [f"wire-{k}" for k in range(self.wire_feeds)]

    def section_title(self, slug: str) -> str | None:
        for name, title in self.sections:
            if name == slug:
                return title
        if slug.startswith("wire-") and slug[5:].isdigit() and int(slug[5:]) < self.wire_feeds:
            return f"Wire {int(slug[5:])}"
        return None


@dataclass(frozen=True)
class Article:
    """One generated news article."""

    section: str
    number: int
    slug: str
    title: str
    author: str
    published: datetime
    summary: str
    paragraphs: tuple[str, ...]
    comments: tuple[tuple[str, str], ...]

    @property
    def path(self) -> str:
        return f"/{self.section}/{self.number}-{self.slug}.html"

    @property
    def etag(self) -> str:
        digest = hashlib.sha256(f"{self.path}|{self.title}|{self.published.isoformat()}".encode()).hexdigest()
        return f'"a-{digest[:20]}"'


def _section_offset(config: DemoSiteConfig, section: str) -> float:
    """Stagger sections so that they do not all publish in the same second."""
    names = config.section_names()
    index = names.index(section) if section in names else 0
    return config.article_interval_s * (index % len(config.sections)) / len(config.sections)


def published_at(config: DemoSiteConfig, section: str, number: int) -> datetime:
    return config.epoch + timedelta(seconds=number * config.article_interval_s + _section_offset(config, section))


def latest_number(config: DemoSiteConfig, section: str, now: datetime) -> int:
    """The number of the newest article of `section` published at or before `now`; -1 if none yet."""
    elapsed = (now - config.epoch).total_seconds() - _section_offset(config, section)
    if elapsed < 0:
        return -1
    return int(elapsed // config.article_interval_s)


def is_published(config: DemoSiteConfig, section: str, number: int, now: datetime) -> bool:
    return 0 <= number <= latest_number(config, section, now)


@functools.lru_cache(maxsize=8192)
def make_article(config: DemoSiteConfig, section: str, number: int) -> Article:
    """Article `number` of `section`: the same inputs always give the same article."""
    rng = random.Random(f"{config.seed}:{section}:{number}")
    subject = rng.choice(_SUBJECTS)
    title = f"{subject.capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_QUALIFIERS)}"
    author = f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}"
    published = published_at(config, section, number)
    day = _WEEKDAYS[published.weekday()]
    paragraphs = [_paragraph(rng, subject, day, published.year) for _ in range(rng.randint(5, 8))]
    slug = "-".join(title.lower().replace("'", "").replace(",", "").split()[:8])
    comments = tuple(
        (f"{rng.choice(_GIVEN)}{rng.randint(1, 99)}", rng.choice(_COMMENTS)) for _ in range(rng.randint(2, 5))
    )
    return Article(
        section=section,
        number=number,
        slug=slug,
        title=title,
        author=author,
        published=published,
        summary=paragraphs[0][:220].rsplit(" ", 1)[0] + "\u2026",
        paragraphs=tuple(paragraphs),
        comments=comments,
    )


def _paragraph(rng: random.Random, subject: str, day: str, year: int) -> str:
    values = {
        "subject": subject,
        "day": day,
        "num": rng.randint(3, 900),
        "pct": rng.randint(2, 60),
        "years": rng.randint(2, 12),
        "year": year - rng.randint(2, 15),
        "person": f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}",
    }
    sentences = [f"{rng.choice(_OPENERS)} {rng.choice(_FACTS)}.", rng.choice(_CONTEXT)]
    if rng.random() < 0.6:
        sentences.append(rng.choice(_QUOTES))
    sentences.append(f"{rng.choice(_FACTS).capitalize()}.")
    return " ".join(s.format(**values) for s in sentences)


def latest_articles(config: DemoSiteConfig, section: str, now: datetime, limit: int | None = None) -> list[Article]:
    """The newest articles of a section at `now`, newest first."""
    newest = latest_number(config, section, now)
    count = config.feed_size if limit is None else limit
    return [make_article(config, section, n) for n in range(newest, max(newest - count, -1), -1)]


def front_page_articles(config: DemoSiteConfig, now: datetime, per_section: int = 3) -> list[Article]:
    items = [a for slug, _ in config.sections for a in latest_articles(config, slug, now, per_section)]
    return sorted(items, key=lambda a: a.published, reverse=True)


# ---- feeds -----------------------------------------------------------------------------------


def http_date(moment: datetime) -> str:
    return format_datetime(moment.astimezone(UTC), usegmt=True)


def rss_feed(config: DemoSiteConfig, section: str, base_url: str, now: datetime, *, relative: bool = False) -> str:
    """An RSS 2.0 document of the section's newest articles; `relative` gives relative item links."""
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
        f"    <title>The Daily Loopback: {xml_escape(title)}</title>\n"
        f"    <link>{xml_escape(base_url)}/{section}/</link>\n"
        f'    <atom:link href="{xml_escape(base_url)}/feeds/{section}.rss" rel="self" type="application/rss+xml"/>\n'
        f"    <description>{xml_escape(title)} news from The Daily Loopback, a simulated news site</description>\n"
        "    <language>en</language>\n"
        f"    <lastBuildDate>{built}</lastBuildDate>\n"
        f"    <ttl>{max(1, config.article_interval_s // 60)}</ttl>\n" + "".join(items) + "  </channel>\n</rss>\n"
    )


def atom_feed(config: DemoSiteConfig, section: str, base_url: str, now: datetime) -> str:
    """An Atom 1.0 document of the section's newest articles."""
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
        f"  <title>The Daily Loopback: {xml_escape(title)}</title>\n"
        f"  <id>{xml_escape(base_url)}/feeds/{section}.atom</id>\n"
        f'  <link rel="self" href="{xml_escape(base_url)}/feeds/{section}.atom"/>\n'
        f'  <link rel="alternate" type="text/html" href="{xml_escape(base_url)}/{section}/"/>\n'
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
        outlines.append((f"The Daily Loopback: {config.section_title(slug)}", kind, base_url + path))
    return opml("The Daily Loopback (MediaBeat demo site)", outlines)


# ---- HTML pages ------------------------------------------------------------------------------


def _nav(config: DemoSiteConfig) -> str:
    links = "".join(f'<li><a href="/{slug}/">{escape(title)}</a></li>' for slug, title in config.sections)
    return (
        '<header class="site-header"><a class="logo" href="/">The Daily Loopback</a>'
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
    return _page(f"{article.title} | The Daily Loopback", head, body)


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
    return _page(f"{title} | The Daily Loopback", feeds, body)


def home_html(config: DemoSiteConfig, now: datetime) -> str:
    items = "".join(
        f'<li><a href="{a.path}">{escape(a.title)}</a> <time>{a.published.isoformat()}</time></li>'
        for a in front_page_articles(config, now)
    )
    body = (
        _nav(config)
        + _ad("leaderboard")
        + "<main><h1>The Daily Loopback</h1>"
        + '<p>A simulated news site for MediaBeat. All feeds: <a href="/feeds.opml">/feeds.opml</a>; '
        + 'misbehaving feeds: <a href="/hostile.opml">/hostile.opml</a>.</p>'
        + f"<ul>{items}</ul></main>"
        + _footer()
    )
    return _page("The Daily Loopback", '<link rel="alternate" type="text/x-opml" href="/feeds.opml">\n', body)


def private_html(path: str) -> str:
    body = '<main><h1>Members only</h1><p>This page is disallowed by robots.txt.</p><p class="path">'
    return _page("Members only | The Daily Loopback", "", body + escape(path) + "</p></main>")


def robots_txt(base_url: str) -> str:
    """Everything is allowed except the members area and search, as on many news sites."""
    return "User-agent: *\nDisallow: /private/\nDisallow: /search\n"
