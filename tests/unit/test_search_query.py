"""The search query language: parsing into the typed tree, errors with columns, and the Python evaluator."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mediabeat.search.match import Document, compile_matcher, required_terms
from mediabeat.search.query import (
    MAX_NEAR_DISTANCE,
    MAX_TERMS,
    And,
    Filter,
    FilterField,
    Near,
    Not,
    Or,
    Phrase,
    QueryError,
    Term,
    parse_query,
)
from mediabeat.search.sql import ranked_words, to_fts5_ranking
from mediabeat.search.tokens import tokenize


def t(word: str, prefix: bool = False) -> Term:
    return Term(word, tokenize(word)[0], prefix)


def test_tokenize_folds_case_and_accents_and_splits_on_underscore() -> None:
    assert tokenize("Élysée-Palast, naïve_Straße 2024!") == ["elysee", "palast", "naive", "straße", "2024"]


def test_words_are_joined_by_implicit_and() -> None:
    assert parse_query("brexit vote").text == And((t("brexit"), t("vote")))


def test_operators_precedence_or_is_lowest_not_binds_tightest() -> None:
    query = parse_query("a b OR c NOT d")
    assert query.text == Or((And((t("a"), t("b"))), And((t("c"), Not(t("d"))))))


def test_lower_case_operators_are_words() -> None:
    query = parse_query("rock and roll")
    assert query.text == And((t("rock"), t("and"), t("roll")))


def test_phrase_prefix_near_and_minus() -> None:
    query = parse_query('"climate change" elect* -coal x NEAR/3 "big deal"')
    assert query.text == And(
        (
            Phrase("climate change", ("climate", "change")),
            t("elect", prefix=True),
            Not(t("coal")),
            Near(t("x"), Phrase("big deal", ("big", "deal")), 3),
        )
    )


def test_hyphenated_word_is_a_phrase() -> None:
    assert parse_query("e-mail").text == Phrase("e-mail", ("e", "mail"))


def test_filters_are_split_from_the_text() -> None:
    query = parse_query("brexit site:www.BBC.co.uk lang:EN feed:12 since:2024-01-02 until:2024-02-01")
    assert query.text == t("brexit")
    assert query.filters == And(
        (
            Filter(FilterField.SITE, "bbc.co.uk"),
            Filter(FilterField.LANG, "en"),
            Filter(FilterField.FEED, 12),
            Filter(FilterField.SINCE, dt.date(2024, 1, 2)),
            Filter(FilterField.UNTIL, dt.date(2024, 2, 1)),
        )
    )


def test_filters_combine_among_themselves() -> None:
    query = parse_query("vote (site:a.com OR site:b.com) -lang:de")
    assert query.filters == And(
        (
            Or((Filter(FilterField.SITE, "a.com"), Filter(FilterField.SITE, "b.com"))),
            Not(Filter(FilterField.LANG, "de")),
        )
    )


def test_filters_alone_are_a_query() -> None:
    query = parse_query("site:example.com")
    assert query.text is None and query.filters == Filter(FilterField.SITE, "example.com")


def test_control_characters_separate_words() -> None:
    assert parse_query("brexit\x00vote\n\tdeal").text == And((t("brexit"), t("vote"), t("deal")))


def test_smuggled_fts_operators_are_words_or_nothing() -> None:
    query = parse_query("NEAR(x) ^ : x^2 a:b {c} col:* +d")
    assert isinstance(query.text, And)
    found = [(i.token,) if isinstance(i, Term) else i.tokens for i in query.text.items]  # type: ignore[union-attr]
    assert found == [("near",), ("x",), ("x", "2"), ("a", "b"), ("c",), ("col",), ("d",)]


@pytest.mark.parametrize(
    ("source", "message", "column"),
    [
        ('brexit "vote now', "unbalanced quote", 8),
        ("(a OR b", "unbalanced parenthesis", 1),
        ("a OR b)", "unbalanced parenthesis", 7),
        ("a AND", "AND needs", 3),
        ("OR a", "OR needs", 1),
        ("a NOT", "NOT needs", 3),
        ("()", "empty parentheses", 1),
        ("a NEAR/x b", "NEAR needs a distance", 3),
        (f"a NEAR/{MAX_NEAR_DISTANCE + 1} b", "too far", 3),
        ("(a OR b) NEAR/2 c", "NEAR joins", 10),
        ("-brexit", "cannot only exclude", 1),
        ("a OR -b", "NOT cannot be one side of OR", 6),
        ("brexit OR site:bbc.com", "filters like site:", 1),
        ("since:yesterday x", "since: needs a date", 1),
        ("site: x", "site: needs a value", 1),
        ("feed:abc x", "feed: needs a feed id", 1),
        ("the and of", "only very common words", 1),
        ("e*", "prefix needs at least 2", 1),
        ("* x", "'*' must end a word", 1),
        ('""', "no words", 1),
        ("^ : !", "no words", 1),
    ],
)
def test_errors_name_the_column(source: str, message: str, column: int) -> None:
    with pytest.raises(QueryError) as caught:
        parse_query(source)
    assert message in caught.value.message
    assert caught.value.column == column
    assert f"at column {column}" in str(caught.value)


def test_bounds_on_length_and_terms() -> None:
    with pytest.raises(QueryError, match="limit is 1000"):
        parse_query("x" * 1001)
    with pytest.raises(QueryError, match=f"more than {MAX_TERMS} terms"):
        parse_query(" ".join(f"w{i}" for i in range(MAX_TERMS + 1)))
    with pytest.raises(QueryError):
        parse_query(" ".join(["word"] * 10_000))


def test_a_quoted_phrase_of_common_words_is_accepted() -> None:
    assert parse_query('"to be or not to be"').text == Phrase(
        "to be or not to be", ("to", "be", "or", "not", "to", "be")
    )


def doc(title: str, text: str = "", **meta: object) -> Document:
    return Document.from_article(title=title, text=text, **meta)  # type: ignore[arg-type]


def matches(query: str, document: Document) -> bool:
    return compile_matcher(parse_query(query))(document)


def test_matcher_words_boolean_and_accents() -> None:
    article = doc("Élection présidentielle", "Le débat a eu lieu hier soir.")
    assert matches("election debat", article)
    assert matches("élection OR nothing", article)
    assert not matches("election -debat", article)
    assert matches("election NOT (foo OR bar)", article)


def test_matcher_phrase_and_prefix() -> None:
    article = doc("Climate talks", "The climate change summit opened in Bonn.")
    assert matches('"climate change summit"', article)
    assert not matches('"change climate"', article)
    assert matches("summ*", article)
    assert matches('"climate chan"*', article)
    assert not matches("bonnx*", article)


def test_matcher_near_either_order_and_distance() -> None:
    article = doc("", "alpha one two three beta")
    assert matches("alpha NEAR/3 beta", article)
    assert matches("beta NEAR/3 alpha", article)
    assert not matches("alpha NEAR/2 beta", article)
    assert matches('"alpha one" NEAR/2 beta', article)


def test_matcher_phrase_never_spans_title_and_text() -> None:
    assert not matches('"headline body"', doc("The headline", "body of the article"))


def test_matcher_filters() -> None:
    article = doc(
        "Brexit",
        "",
        url="https://www.news.bbc.co.uk/a",
        lang="en-GB",
        feed_id=7,
        published_at=dt.datetime(2024, 3, 1, 23, 30, tzinfo=dt.UTC),
    )
    assert matches("brexit site:bbc.co.uk lang:en feed:7 since:2024-03-01 until:2024-03-01", article)
    assert not matches("brexit site:cbc.co.uk", article)
    assert not matches("brexit -lang:en", article)
    assert not matches("brexit since:2024-03-02", article)
    assert not matches("brexit feed:8", article)


def test_required_terms() -> None:
    def required(source: str) -> frozenset[str] | None:
        return required_terms(parse_query(source))

    assert required("brexit vote") == {"brexit"} or required("brexit vote") == {"vote"}
    assert required("brexit OR remain") == {"brexit", "remain"}
    assert required('"european union" -uk') == {"european"}
    assert required("elect*") is None
    assert required("elect* OR vote") is None
    assert required("elect* vote") == {"vote"}
    assert required("site:bbc.co.uk") is None


@settings(max_examples=400, deadline=None)
@given(st.text(max_size=120))
def test_random_text_raises_only_query_error(source: str) -> None:
    try:
        query = parse_query(source)
    except QueryError as exc:
        assert exc.column >= 1
        return
    compile_matcher(query)(doc("some title", "some text"))
    required_terms(query)


_ALPHABET = st.sampled_from(
    [
        '"',
        "(",
        ")",
        "-",
        "*",
        " ",
        "AND ",
        "OR ",
        "NOT ",
        "NEAR/2 ",
        "NEAR/",
        "site:",
        "since:",
        "a",
        "b",
        "é",
        ":",
        "^",
    ]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join))
def test_operator_soup_raises_only_query_error(source: str) -> None:
    try:
        query = parse_query(source)
    except QueryError:
        return
    compile_matcher(query)(doc("a b", "é a b"))


def test_ranking_leaves_out_what_weighs_nothing_and_keeps_every_match() -> None:
    weightless = frozenset({"und", "der", "in"})

    def ranking(source: str) -> str | None:
        text = parse_query(source).text
        assert text is not None
        return to_fts5_ranking(text, weightless)

    # A weightless word of an AND, an exclusion, and a NEAR group's weightless side are left out.
    assert ranking("klima und -wetter") == '"klima"'
    assert ranking('"bei der" NEAR/4 und') == '"bei der"'
    assert ranking('gipfel NEAR/2 "in paris"') == '("gipfel" AND "in paris")'
    # In an OR a weightless word is kept: leaving it out would drop the articles only it matches.
    assert ranking("(und OR klima) gipfel") == '(("und" OR "klima") AND "gipfel")'
    assert ranking("(der und) OR klima") == '(("der" AND "und") OR "klima")'
    # A prefix stands for many words, and a phrase is weighed as a phrase: both are kept.
    assert ranking("und in*") == '"in" *'
    assert ranking('"und der"') == '"und der"'
    assert ranking("und klima*") == '"klima" *'
    # Nothing left to weigh.
    assert ranking("klimagipfel NEAR/3 und") == '"klimagipfel"'
    assert to_fts5_ranking(Near(Term("und", "und"), Term("der", "der"), 3), weightless) is None
    assert to_fts5_ranking(And((Term("in", "in"), Not(Term("klima", "klima")))), weightless) is None


def test_the_ranked_words_are_those_the_ranking_expression_weighs() -> None:
    weightless = frozenset({"und", "der", "in"})

    def words(source: str) -> frozenset[str]:
        text = parse_query(source).text
        assert text is not None
        return ranked_words(text, weightless)

    assert words("Klima und -Wetter") == {"klima"}
    assert words('"bei der" NEAR/4 und') == {"bei", "der"}  # a phrase counts every word of it
    assert words("(und OR klima) gipfel") == {"und", "klima", "gipfel"}  # kept in an OR
    assert words("(der und) OR klima") == {"der", "und", "klima"}
    assert words("und klima*") == frozenset()  # a prefix is no word
    assert words('"prime minis"*') == {"prime"}
    assert ranked_words(Near(Term("und", "und"), Term("der", "der"), 3), weightless) == frozenset()
