"""Swagger UI at /docs and ReDoc at /redoc come from MediaBeat itself: they work offline, under a strict CSP."""

from __future__ import annotations

import re

import pytest

from tests.integration.api_fixtures import ApiEnv


@pytest.mark.parametrize(
    ("path", "assets"),
    [
        ("/docs", {"/docs/assets/swagger-ui.css", "/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-init.js"}),
        ("/redoc", {"/docs/assets/redoc.standalone.js"}),
    ],
)
async def test_the_api_reference_pages_load_everything_from_this_server(
    api: ApiEnv, path: str, assets: set[str]
) -> None:
    async with api.client() as client:
        page = await client.get(path)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "unsafe-eval" not in policy
        assert "<script>" not in page.text, "an inline script would break the CSP"
        referenced = set(re.findall(r'(?:src|href)="([^"]+)"', page.text))
        assert all(url.startswith("/") for url in referenced), referenced
        assert assets <= referenced
        for url in referenced | {"/openapi.json"}:
            fetched = await client.get(url)
            assert fetched.status_code == 200, url
            assert len(fetched.content) > 100, url
        script = await client.get(next(url for url in assets if url.endswith(".js")))
        assert "javascript" in script.headers["content-type"]
