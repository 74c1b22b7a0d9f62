"""What a request gets while PostgreSQL is away: 503 and a message, never a traceback page.

JSON endpoints answer {"error": "error.database"}; the operator's page keeps an unsent outcome and
sends it again (web/static/operator.js). Pages answer a short notice in the user's language.
"""

from __future__ import annotations

from aiohttp import web

from dialer import logs
from dialer.store.db import UNAVAILABLE
from web.auth import DatabaseAway, Handler, session_of
from web.i18n import LANGS, translate
from web.keys import ENGINE

log = logs.get("web.outage")
RETRY_AFTER_S = "5"


@web.middleware
async def database_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except DatabaseAway:
        pass
    except UNAVAILABLE as exc:
        if _client_gone(request, exc):
            log.info("web.client_gone", path=request.path, method=request.method)
            raise web.HTTPBadRequest() from None  # nobody to answer; aiohttp lets it go quietly
        if not _from_database(exc):
            raise  # a disk full, a folder that cannot be made: a 500 for this request, not an outage
        await request.app[ENGINE].db.down(exc, "web")
    log.warning("web.database_away", path=request.path, method=request.method)
    headers = {"Retry-After": RETRY_AFTER_S}
    if request.path.startswith(("/api/", "/ws")) or "application/json" in request.headers.get("Accept", ""):
        return web.json_response({"error": "error.database", "fields": {}}, status=503, headers=headers)
    session = session_of(request)
    lang = session.lang if session is not None else request.cookies.get("lang", "ja")
    lang = lang if lang in LANGS else "ja"
    title, text = translate(lang, "error.database_title"), translate(lang, "error.database")
    body = (
        f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{title}</title></head>'
        f'<body><h1>{title}</h1><p role="alert">{text}</p></body></html>'
    )
    return web.Response(text=body, status=503, content_type="text/html", headers=headers)


def _client_gone(request: web.Request, exc: BaseException) -> bool:
    """The browser went away (an upload cancelled, a tab closed): aiohttp's ConnectionResetError
    is about the page's connection, not PostgreSQL's, and must not stop the floor's dialling."""
    transport = request.transport
    return isinstance(exc, ConnectionResetError) and (transport is None or transport.is_closing())


def _from_database(exc: BaseException) -> bool:
    """Whether an error of UNAVAILABLE's kinds came from PostgreSQL: asyncpg's own errors and our
    DatabaseUnavailable, a timeout (a query's), or an OSError raised inside asyncpg (a refused or
    dropped connection). Any other OSError (the disk, a file) is this request's failure alone."""
    if not isinstance(exc, OSError) or isinstance(exc, TimeoutError):
        return True
    tb = exc.__traceback__
    while tb is not None:
        if str(tb.tb_frame.f_globals.get("__name__", "")).startswith("asyncpg"):
            return True
        tb = tb.tb_next
    return False
