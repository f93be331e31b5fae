"""The API's reference pages, Swagger UI at /docs and ReDoc at /redoc, served from the package: no CDN.

The scripts and styles come from the fastapi-offline package (Swagger UI is Apache-2.0, ReDoc MIT);
the pages are ours, so that they run under a Content-Security-Policy without inline scripts.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

DOCS_URL = "/docs"
REDOC_URL = "/redoc"
ASSETS_URL = "/docs/assets"
# Scripts only from this server, as on the dashboard. Styles may be inline: both UIs set them from
# their scripts (ReDoc writes <style> elements). ReDoc's search runs in a worker made from a blob.
# Images only from here too: ReDoc's attribution logo, which it links from its maker's CDN, is refused
# (the browser notes it in the console) and ReDoc then leaves it out, so the page asks no third party.
DOCS_CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; frame-ancestors 'none'; "
    "base-uri 'none'; form-action 'none'"
)
OWN_ASSETS = Path(__file__).with_name("docs_static")


def install_api_docs(app: FastAPI) -> None:
    """Serve /docs, /redoc and their assets; create the app with docs_url=None and redoc_url=None."""
    app.mount(
        ASSETS_URL,
        StaticFiles(directory=OWN_ASSETS, packages=[("fastapi_offline", "static")]),
        name="api-docs-assets",
    )

    @app.get(DOCS_URL, include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = escape(request.scope.get("root_path", ""))
        return _page(
            f"{app.title} API: Swagger UI",
            root,
            head=f'<link rel="stylesheet" href="{root}{ASSETS_URL}/swagger-ui.css">',
            body=f'<div id="swagger-ui" data-openapi-url="{root}{app.openapi_url}"></div>'
            f'<script src="{root}{ASSETS_URL}/swagger-ui-bundle.js"></script>'
            f'<script src="{root}{ASSETS_URL}/swagger-init.js"></script>',
        )

    @app.get(REDOC_URL, include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = escape(request.scope.get("root_path", ""))
        return _page(
            f"{app.title} API: ReDoc",
            root,
            head="",
            body=f'<redoc spec-url="{root}{app.openapi_url}"></redoc>'
            f'<script src="{root}{ASSETS_URL}/redoc.standalone.js"></script>',
        )


def _page(title: str, root: str, *, head: str, body: str) -> HTMLResponse:
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="icon" href="{root}{ASSETS_URL}/favicon.png">{head}'
        f"</head><body>{body}</body></html>"
    )
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CONTENT_SECURITY_POLICY})
