"""The deterministic content of the local news site: sections, articles, feeds and OPML.

Everything here is a pure function of a seed, the site's settings and a `now` that the caller
passes in: article `n` of a section is published at `epoch + n * interval` (staggered per
section), so new articles appear over time, and two sites with the same settings serve the same
bytes. Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

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


# The mastheads of the outlets on 127.0.0.1, 127.0.0.2, ...: one site, several publishers.
OUTLET_NAMES = (
    "The Daily Loopback",
    "The Loopback Herald",
    "Evening Localhost",
    "The Port 8001 Gazette",
    "The Subnet Times",
    "The Packet Post",
)


def outlet_of(host: str | None) -> int:
    """The outlet number of a loopback address: 127.0.0.1 -> 0, 127.0.0.2 -> 1, ...; anything else 0."""
    try:
        address = ipaddress.ip_address(host or "")
    except ValueError:
        return 0
    if address.version != 4 or not address.is_loopback:
        return 0
    return max(0, int(address) - int(ipaddress.IPv4Address("127.0.0.1")))


@dataclass(frozen=True)
class DemoSiteConfig:
    """What makes one demo site: its seed, when article 0 appears, and how often new ones do."""

    seed: int = 1
    epoch: datetime = DEFAULT_EPOCH
    article_interval_s: int = 120
    feed_size: int = 30
    wire_feeds: int = 0
    # The share of (section, wire story) pairs in which a section reprints the story (0 turns syndication off).
    syndication_rate: float = 0.35
    sections: tuple[tuple[str, str], ...] = field(default=SECTIONS)
    # Which outlet this is: 0 is The Daily Loopback; each other loopback address of the site is
    # another outlet (127.0.0.2 is 1, ...) with articles of its own and its own reprints of the
    # same wire stories, under its own headlines and edits (see `for_host`).
    outlet: int = 0

    @property
    def name(self) -> str:
        """The outlet's masthead."""
        if self.outlet < len(OUTLET_NAMES):
            return OUTLET_NAMES[self.outlet]
        return f"The Loopback Courier {self.outlet}"

    def _key(self, kind: str) -> str:
        """The seed prefix of one kind of draw: the outlet 0 keeps the strings it always had."""
        return f"{self.seed}:{kind}" if self.outlet == 0 else f"{self.seed}:{kind}@{self.outlet}"

    def for_host(self, host: str | None) -> DemoSiteConfig:
        """The outlet served on `host`: 127.0.0.k is outlet k - 1; any other address (::1, a name) is outlet 0."""
        outlet = outlet_of(host)
        return self if outlet == self.outlet else replace(self, outlet=outlet)

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
    story = syndicated_story(config, section, number)
    if story is not None:
        return syndicated_copy(config, section, number, story)
    own = f"{config.seed}:{section}:{number}" if config.outlet == 0 else f"{config._key('own')}:{section}:{number}"
    rng = random.Random(own)
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


# Wire story s is offered to every section at article numbers [s * WIRE_SLOT, (s + 1) * WIRE_SLOT).
WIRE_SLOT = 4
WIRE_AGENCY = "Loopback Wire"
# A reprint's light edits: house style replaces these words (each with the given chance).
_STYLE_EDITS = (("per cent", "percent"), ("said", "says"), ("million", "m"), ("the coming", "the next"))
_CREDITS = (
    "This story was first published by the {agency} news service.",
    "Additional reporting by {person}.",
    "Distributed by {agency}; edited for length.",
)


def syndicated_story(config: DemoSiteConfig, section: str, number: int) -> int | None:
    """The wire story that article `number` of `section` reprints, or None for an article of its own.

    Story s falls in slot s; a section reprints it with chance `syndication_rate`, at one number
    of the slot that depends on the section. Wire feeds (`wire-k`) never reprint.
    """
    if config.syndication_rate <= 0 or number < 0 or section not in {slug for slug, _ in config.sections}:
        return None
    story, position = divmod(number, WIRE_SLOT)
    draw = random.Random(f"{config._key('syndication')}:{story}:{section}")
    if draw.random() >= config.syndication_rate or draw.randrange(WIRE_SLOT) != position:
        return None
    return story


def wire_story(config: DemoSiteConfig, story: int) -> tuple[str, str, tuple[str, ...]]:
    """Wire story `story` as the agency sends it: (subject, headline, paragraphs)."""
    rng = random.Random(f"{config.seed}:wire:{story}")
    subject = rng.choice(_SUBJECTS)
    headline = f"{subject.capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_QUALIFIERS)}"
    day = _WEEKDAYS[(story * 3) % 7]
    year = config.epoch.year
    return subject, headline, tuple(_paragraph(rng, subject, day, year) for _ in range(rng.randint(6, 9)))


def syndicated_copy(config: DemoSiteConfig, section: str, number: int, story: int) -> Article:
    """Article `number` of `section` as a reprint of wire story `story`: its own headline and light edits.

    The edits are the usual ones of a reprint: another headline (or the agency's), the last
    paragraph cut, house-style word changes, and a credit line added.
    """
    subject, headline, paragraphs = wire_story(config, story)
    rng = random.Random(f"{config._key('copy')}:{story}:{section}")
    if rng.random() < 0.3:
        title = headline
    else:
        title = f"{subject.capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} {rng.choice(_QUALIFIERS)}"
    kept = list(paragraphs[: len(paragraphs) - (1 if rng.random() < 0.5 else 0)])
    for old, new in _STYLE_EDITS:
        if rng.random() < 0.3:
            kept = [p.replace(old, new) for p in kept]
    person = f"{rng.choice(_GIVEN)} {rng.choice(_FAMILY)}"
    kept.append(rng.choice(_CREDITS).format(agency=WIRE_AGENCY, person=person))
    published = published_at(config, section, number)
    slug = "-".join(title.lower().replace("'", "").replace(",", "").split()[:8])
    author = WIRE_AGENCY if rng.random() < 0.5 else person
    return Article(
        section=section,
        number=number,
        slug=slug,
        title=title,
        author=author,
        published=published,
        summary=kept[0][:220].rsplit(" ", 1)[0] + "\u2026",
        paragraphs=tuple(kept),
        comments=((f"{rng.choice(_GIVEN)}{rng.randint(1, 99)}", rng.choice(_COMMENTS)),),
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
