"""What a browser gets when a page cannot be shown: a short page in the user's language, never
the JSON a script gets.

The JSON endpoints (/api/, the WebSocket) answer {"error": <message key>} for the pages' scripts
to translate; a page opened in the browser (an operator following a link to /supervisor, a form
posted after its session token expired, a report link) must not show that raw. This middleware
turns a 4xx on any other path, raised (web.HTTPForbidden …) or returned as JSON, into an HTML page
with the same status: the message the key names, or one for the status.
"""

from __future__ import annotations

import json

import aiohttp_jinja2
from aiohttp import web

from web.auth import Handler
from web.i18n import CATALOG
from web.pages import context

# Paths whose callers are scripts or machines: left as they answer.
MACHINE_PATHS = ("/api/", "/ws", "/static/", "/healthz", "/metrics")


def _for_browser(request: web.Request) -> bool:
    return not request.path.startswith(MACHINE_PATHS) and "application/json" not in request.headers.get(
        "Accept", ""
    )


def _key_in(body: bytes | str | None) -> str:
    """The message key a JSON error body names ({"error": "error.forbidden"}), if it is one we have."""
    try:
        key = json.loads(body or b"").get("error", "")
    except (ValueError, AttributeError):
        return ""
    return key if isinstance(key, str) and key in CATALOG["ja"] else ""


def _page(request: web.Request, status: int, key: str) -> web.Response:
    title = f"errpage.title.{status}" if f"errpage.title.{status}" in CATALOG["ja"] else "errpage.title"
    text = key or (f"errpage.text.{status}" if f"errpage.text.{status}" in CATALOG["ja"] else "error.generic")
    response = aiohttp_jinja2.render_template(
        "error.html", request, context(request, status=status, title_key=title, text_key=text)
    )
    response.set_status(status)
    return response


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if exc.status < 400 or not _for_browser(request):
            raise
        return _page(request, exc.status, _key_in(exc.text))
    if (
        response.status >= 400
        and isinstance(response, web.Response)
        and response.content_type == "application/json"
        and _for_browser(request)
    ):
        return _page(request, response.status, _key_in(response.text))
    return response
