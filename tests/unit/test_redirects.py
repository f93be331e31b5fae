"""The redirect decision on its own: no server, no client, just the response and where we are."""

from __future__ import annotations

from mediabeat.crawler.http import FetchErrorKind, RedirectRefusal, RedirectRequest, next_redirect

PAGE = "https://news.example/a/page"


def decide(status: int, location: str | None, *, hops: int = 0, seen: tuple[str, ...] = (PAGE,), method: str = "GET"):  # type: ignore[no-untyped-def]
    headers = {"location": location} if location is not None else {}
    return next_redirect(
        status=status, headers=headers, url=PAGE, method=method, hops=hops, max_redirects=3, seen=frozenset(seen)
    )


def test_a_final_response_is_no_redirect() -> None:
    assert decide(200, None) is None
    assert decide(200, "/elsewhere") is None  # a Location on a 200 is not a redirect
    assert decide(302, None) is None  # a redirect without a Location is the answer itself


def test_relative_locations_resolve_against_the_current_url() -> None:
    assert decide(301, "../b") == RedirectRequest(url="https://news.example/b", method="GET", status=301)
    assert decide(308, " //cdn.example/x ") == RedirectRequest(url="https://cdn.example/x", method="GET", status=308)


def test_method_rules() -> None:
    assert decide(303, "/x", method="POST") == RedirectRequest("https://news.example/x", "GET", 303)
    assert decide(303, "/x", method="HEAD") == RedirectRequest("https://news.example/x", "HEAD", 303)
    assert decide(302, "/x", method="POST") == RedirectRequest("https://news.example/x", "GET", 302)
    assert decide(307, "/x", method="POST") == RedirectRequest("https://news.example/x", "POST", 307)


def test_refusals_are_typed() -> None:
    assert decide(302, "file:///etc/passwd") == RedirectRefusal(
        FetchErrorKind.BAD_URL, f"redirect from {PAGE} to a non-http(s) URL: file:///etc/passwd"
    )
    unreadable = decide(302, "http://[::1")
    assert isinstance(unreadable, RedirectRefusal) and unreadable.kind is FetchErrorKind.BAD_URL
    too_many = decide(302, "/next", hops=3)
    assert isinstance(too_many, RedirectRefusal) and too_many.kind is FetchErrorKind.TOO_MANY_REDIRECTS


def test_loops() -> None:
    # The first hop may come back to the page (it set a cookie); a later one coming back is a loop.
    assert decide(302, PAGE, hops=0) == RedirectRequest(PAGE, "GET", 302)
    loop = decide(302, PAGE, hops=1, seen=(PAGE, "https://news.example/b"))
    assert isinstance(loop, RedirectRefusal) and loop.kind is FetchErrorKind.REDIRECT_LOOP
    assert decide(302, "/c", hops=2, seen=(PAGE, "https://news.example/b")) == RedirectRequest(
        "https://news.example/c", "GET", 302
    )
