"""Sessions, roles and CSRF. Every page and API call needs a session, except login and probes."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable

from aiohttp import web

from dialer.store import users
from dialer.store.db import UNAVAILABLE
from dialer.store.users import Session
from web.keys import ENGINE, POOL

COOKIE = "dialer_session"
NO_SESSION = ("/static/", "/healthz", "/metrics")  # served without looking up a session
SESSION: web.RequestKey[Session | None] = web.RequestKey("session")
TOKEN: web.RequestKey[str | None] = web.RequestKey("token")
PUBLIC = ("/login", "/healthz", "/metrics", "/static/", "/lang")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class DatabaseAway(Exception):
    """The database is unreachable and this request cannot be served without it (a 503)."""


class SessionCache:
    """Sessions the database confirmed lately, for while it is away.

    With PostgreSQL down, a page already open keeps working: the operator can still hang up,
    pause, and have the page queue an outcome. Only a session the database confirmed in the last
    `grace_s` is honoured, only while the database is unreachable, and a logout forgets it at once.
    No new login is possible meanwhile (passwords live in the database). Keys are token hashes.
    """

    def __init__(self, grace_s: float = 900.0, size: int = 5000) -> None:
        self.grace_s, self.size = grace_s, size
        self._seen: OrderedDict[str, tuple[Session, float]] = OrderedDict()

    @staticmethod
    def _key(token: str) -> str:
        return hashlib.sha256(token.encode()).hexdigest()

    def remember(self, token: str, session: Session | None) -> None:
        key = self._key(token)
        if session is None:
            self._seen.pop(key, None)
            return
        self._seen[key] = (session, time.monotonic())
        self._seen.move_to_end(key)
        while len(self._seen) > self.size:
            self._seen.popitem(last=False)

    def recall(self, token: str) -> Session | None:
        seen = self._seen.get(self._key(token))
        if seen is None or time.monotonic() - seen[1] > self.grace_s:
            return None
        return seen[0]

    def forget(self, token: str) -> None:
        self._seen.pop(self._key(token), None)


SESSIONS: web.AppKey[SessionCache] = web.AppKey("sessions", SessionCache)


async def load_session(request: web.Request, token: str) -> Session | None:
    """The token's session from the database; from the cache while the database is away."""
    cache = request.app[SESSIONS]
    try:
        session = await users.load_session(request.app[POOL], token)
    except UNAVAILABLE as exc:
        await request.app[ENGINE].db.down(exc, "session")
        session = cache.recall(token)
        if session is None:
            raise DatabaseAway from exc
        return session
    cache.remember(token, session)
    return session


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """On every response, just before its headers are sent (on_response_prepare): a streamed
    response (an error report download) is sent before a middleware would see it."""
    response.headers.setdefault(
        "Content-Security-Policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    )
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    response.headers.setdefault("Cache-Control", "no-store")


@web.middleware
async def session_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    path = request.path
    if path.startswith(NO_SESSION):
        return await handler(request)
    token = request.cookies.get(COOKIE)
    session = await load_session(request, token) if token else None
    request[SESSION] = session
    request[TOKEN] = token
    if session is None and not path.startswith(PUBLIC) and path != "/":
        if path.startswith(("/api/", "/ws")):
            raise web.HTTPUnauthorized(text='{"error": "login required"}', content_type="application/json")
        raise web.HTTPFound("/login")
    if session is not None and token and request.headers.get(POLL_HEADER) is None and path != "/ws":
        # a person did this (a page polling by itself says so; a page's WebSocket reconnects by itself)
        await _touch(request, token)
    if session is not None and request.method not in ("GET", "HEAD", "OPTIONS") and path != "/login":
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.content_type == "application/x-www-form-urlencoded":
            sent = await _form_token(request)
        if sent != session.csrf_token:
            raise web.HTTPForbidden(text='{"error": "error.csrf"}', content_type="application/json")
    return await handler(request)


POLL_HEADER = "X-Dialer-Poll"  # sent by a page asking by itself (figures every 5 s): not a person's doing


async def _touch(request: web.Request, token: str) -> None:
    """The session's idle time starts again (staff, administrators); nothing if the database is away."""
    session = request[SESSION]
    if session is None or session.user.role not in users.IDLE_ROLES:
        return
    with contextlib.suppress(*UNAVAILABLE):  # the session itself was read from the cache meanwhile
        await users.touch_session(request.app[POOL], token)


# Indexing keeps the RequestKey's type; aiohttp types .get() as Any.
def session_of(request: web.Request) -> Session | None:
    return request[SESSION] if SESSION in request else None  # noqa: SIM401


def token_of(request: web.Request) -> str:
    return (request[TOKEN] if TOKEN in request else None) or ""  # noqa: SIM401


def current(request: web.Request) -> Session:
    session = session_of(request)
    if session is None:
        raise web.HTTPUnauthorized()
    return session


def require(*roles: str) -> Callable[[Handler], Handler]:
    """Allow only these roles; everyone else gets 403."""

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def guarded(request: web.Request) -> web.StreamResponse:
            if current(request).user.role not in roles:
                raise web.HTTPForbidden(text='{"error": "error.forbidden"}', content_type="application/json")
            return await handler(request)

        return guarded

    return wrap


async def _form_token(request: web.Request) -> str:
    """The token of a posted form; "" for a body that is no form (a CSV file sent by a script
    without the header: curl --data-binary says form-urlencoded) or larger than any form."""
    try:
        return str((await request.post()).get("csrf", ""))
    except (UnicodeDecodeError, ValueError, web.HTTPRequestEntityTooLarge):
        return ""
