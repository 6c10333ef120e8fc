"""GET / (the page) and GET /static/{name} (its script and style), from package data.

The page is served by the same ingress as the API, so it calls the API on its own origin and
needs no CORS. Under a route prefix (Serve's ``route_prefix``, a reverse proxy's path) the page
learns where it lives from the ASGI ``root_path`` and writes it into ``<base href>``: every URL
the page uses is relative to that.
"""

from __future__ import annotations

import html
from functools import cache
from importlib import resources

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from clipmaker.errors import NotFound

router = APIRouter(include_in_schema=False)

_ASSETS = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8"}
_BASE_MARK = "<!--BASE-->"

# The page runs only its own script and style; it may play media from anywhere (a source's
# preview, signed S3 links) and talks only to its own origin.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "media-src 'self' http: https: blob:; connect-src 'self'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'; object-src 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@cache
def _static(name: str) -> bytes:
    return (resources.files("clipmaker.web") / "static" / name).read_bytes()


@router.get("/", response_class=HTMLResponse)
def page(request: Request) -> HTMLResponse:
    """The clip maker page."""
    root = str(request.scope.get("root_path") or "").rstrip("/")
    base = f'<base href="{html.escape(root, quote=True)}/">'
    text = _static("index.html").decode().replace(_BASE_MARK, base, 1)
    return HTMLResponse(text, headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


@router.get("/static/{name}")
def asset(name: str) -> Response:
    """The page's script and style sheet (a fixed list: nothing else is reachable here)."""
    media_type = _ASSETS.get(name)
    if media_type is None:
        raise NotFound("not_found", f"no static file {name!r}")
    return Response(
        _static(name),
        media_type=media_type,
        headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"},
    )
