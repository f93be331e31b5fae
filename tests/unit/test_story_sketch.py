"""The pure side of story clusters: normalised words, shingles, signatures, bands, the placement rule,
and the demo site's deterministic wire reprints."""

from __future__ import annotations

from mediabeat.demo.content import SECTIONS, DemoSiteConfig, make_article, syndicated_story
from mediabeat.domain.stories import Candidate
from mediabeat.stories import sketch


def text_of(section: str, number: int, config: DemoSiteConfig | None = None) -> str:
    return "\n\n".join(make_article(config or DemoSiteConfig(), section, number).paragraphs)


def test_words_are_folded_and_shingles_overlap() -> None:
    assert sketch.normalised_words("Ｔhe  CITY’s <b>plan</b>, approved!") == [
        "the",
        "city",
        "s",
        "b",
        "plan",
        "b",
        "approved",
    ]
    assert sketch.shingles(["a", "b", "c", "d", "e", "f"]) == {b"a b c d e", b"b c d e f"}
    assert sketch.shingles(["a", "b"]) == {b"a b"} and sketch.shingles([]) == set()


def test_signatures_are_stable_and_short_texts_get_no_bands() -> None:
    text = text_of("world", 0)
    first, again = sketch.sketch_text(text), sketch.sketch_text(text)
    assert first == again and len(first.signature) == sketch.NUM_PERM * 4 and len(first.bands) == sketch.BANDS
    assert sketch.similarity(first.signature, again.signature) == 1.0
    assert not sketch.sketch_text("A short teaser of ten words that says very little.").clusterable
    assert sketch.article_text("title", "summary", None) == "summary" and sketch.article_text("t", None, "") == "t"


def test_reprints_score_above_the_threshold_and_unrelated_articles_below() -> None:
    config = DemoSiteConfig()
    copies = [(s, n) for s, _ in SECTIONS for n in range(8) if syndicated_story(config, s, n) == 0]
    assert len(copies) >= 2
    a, b = (sketch.sketch_text(text_of(s, n)) for s, n in copies[:2])
    assert sketch.similarity(a.signature, b.signature) >= sketch.JOIN_THRESHOLD
    assert set(a.bands) & set(b.bands)
    mine = [(s, n) for s, _ in SECTIONS for n in range(8) if syndicated_story(config, s, n) is None][:2]
    c, d = (sketch.sketch_text(text_of(s, n)) for s, n in mine)
    assert sketch.similarity(c.signature, d.signature) < sketch.JOIN_THRESHOLD


def test_placement_joins_merges_into_the_oldest_or_starts_a_cluster() -> None:
    sig = sketch.sketch_text(text_of("world", 0)).signature
    other = sketch.sketch_text(text_of("sport", 3)).signature
    assert sketch.place(sig, []).cluster_id is None
    assert sketch.place(sig, [Candidate(1, 7, other)]).cluster_id is None  # a band collision, not a copy
    joined = sketch.place(sig, [Candidate(1, 7, sig), Candidate(2, 7, other)])
    assert joined.cluster_id == 7 and joined.absorb == () and joined.best == 1.0
    linked = sketch.place(sig, [Candidate(1, 9, sig), Candidate(2, 4, sig), Candidate(3, 6, other)])
    assert linked.cluster_id == 4 and linked.absorb == (9,)


def test_the_demo_reprints_deterministically_and_can_be_switched_off() -> None:
    config = DemoSiteConfig()
    found = [(s, n, syndicated_story(config, s, n)) for s, _ in SECTIONS for n in range(400)]
    stories = [story for _, _, story in found if story is not None]
    assert 0.05 < len(stories) / len(found) < 0.15
    section, number, story = next(item for item in found if item[2] is not None)
    assert story == number // 4 and make_article(config, section, number) == make_article(config, section, number)
    assert syndicated_story(DemoSiteConfig(syndication_rate=0), section, number) is None
    assert syndicated_story(DemoSiteConfig(wire_feeds=2), "wire-1", number) is None
    titles = {make_article(config, s, n).title for s, n, st in found if st == story}
    assert len(titles) >= 1
