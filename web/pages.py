"""Server-rendered pages: login, the operator console, the supervisor console, administration."""

from __future__ import annotations

import asyncio
import secrets
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web

from dialer.store import audit, campaigns, db, dispositions, handovers, lockouts, users
from dialer.store import departments as department_store
from web.auth import COOKIE, SESSIONS, current, require, session_of, token_of
from web.i18n import CATALOG, LANGS
from web.keys import ENGINE, HUB, POOL, SETTINGS
from web.progress import PROGRESS

# An id in a path: at most 18 digits, so always a bigint; anything longer is no page (404).
ID = r"{id:\d{1,18}}"

LANDING = {"operator": "/operator", "supervisor": "/supervisor", "staff": "/supervisor", "admin": "/admin"}


def lang_of(request: web.Request) -> str:
    session = session_of(request)
    if session is not None:
        return str(session.lang)
    lang = request.cookies.get("lang", "ja")
    return lang if lang in LANGS else "ja"


def context(request: web.Request, **extra: Any) -> dict[str, Any]:
    lang = lang_of(request)
    session = session_of(request)
    return {
        "lang": lang, "session": session, "user": session.user if session else None,
        "here": _here(request), "session_check_ms": int(request.app[SETTINGS].session_check_s * 1000), **extra,
    }  # fmt: skip


def _here(request: web.Request) -> str:
    """The page to come back to after switching the language: this one, or for a page a form's
    POST answered (a refusal, say), the nearest page above it that can be opened (QA: the switch
    went to /staff/handovers/7/done, a 405)."""
    if request.method in ("GET", "HEAD"):
        return request.path_qs
    path = request.path
    while path not in ("", "/"):
        for route in request.app.router.routes():
            info = route.resource.get_info() if route.method == "GET" and route.resource is not None else {}
            pattern = info.get("pattern")
            if info.get("path") == path or (pattern is not None and pattern.fullmatch(path)):
                return path
        path = path.rsplit("/", 1)[0]
    return "/"


def local_path(target: str, host: str) -> str:
    """Where to send the browser back to: `target` (a path, or a URL of this site as a Referer
    gives it) as a path on this site; '/' for anything else, so that it is never an open redirect
    (//evil.example, /\\evil.example, https://evil.example/, javascript:…)."""
    if not target or any(ch.isspace() or ord(ch) < 0x20 or ch == "\\" for ch in target):
        return "/"
    parts = urlsplit(target)
    if (parts.scheme or parts.netloc) and (parts.scheme not in ("http", "https") or parts.netloc != host):
        return "/"
    if not parts.path.startswith("/") or parts.path.startswith("//") or parts.path == "/lang":
        return "/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


async def departments(request: web.Request) -> list[Any]:
    """Every department (id and names: no resident in them), for the administrators' pages."""
    return list(await request.app[POOL].fetch("select id, name_ja, name_en from department order by id"))


async def index(request: web.Request) -> web.StreamResponse:
    session = session_of(request)
    raise web.HTTPFound(LANDING[session.user.role] if session else "/login")


LOGIN_COOKIE = "dialer_login"  # the login form's own token (cross_site), SameSite=Strict


async def login_form(request: web.Request) -> web.Response:
    return _login_page(request, failed=False, locked=False, address_locked=False)


def _login_page(request: web.Request, **flags: bool) -> web.Response:
    """The login form, carrying a token its cookie repeats: a form posted by another site's page
    has no such cookie (SameSite=Strict), whatever the browser says of where it comes from."""
    token = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(24)
    response = aiohttp_jinja2.render_template(
        "login.html", request, context(request, login_token=token, **flags)
    )
    response.set_cookie(
        LOGIN_COOKIE, token, httponly=True, samesite="Strict", path="/login",
        secure=request.app[SETTINGS].cookie_secure,
    )  # fmt: skip
    return response


_LOGIN_LOCKS: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()


def cross_site(request: web.Request, form: Mapping[str, Any]) -> bool:
    """A form posted here by another site's page (login CSRF: the browser would be logged in as the
    other site's choice of user, and work as them). A browser says where a request comes from
    (Sec-Fetch-Site), but only to HTTPS and localhost; on a floor served over plain HTTP it says
    nothing, and its Origin is "null" (our pages send no referrer), as another site's page can make
    its own. Such a browser's post must carry the login form's token, which its cookie repeats and
    another site cannot send. A script (no Origin, no Sec-Fetch-Site) is no browser to trick."""
    fetched_from = request.headers.get("Sec-Fetch-Site")
    if fetched_from is not None:
        return fetched_from not in ("same-origin", "none")
    if "Origin" not in request.headers:
        return False
    token = request.cookies.get(LOGIN_COOKIE, "")
    return not token or not secrets.compare_digest(token, str(form.get("login_token", "")))


async def login(request: web.Request) -> web.StreamResponse:
    try:
        form = await request.post()
    except (UnicodeDecodeError, ValueError):  # not UTF-8, a broken multipart body: no form
        raise web.HTTPBadRequest(text="The form could not be read.") from None
    if cross_site(request, form):
        raise web.HTTPForbidden(text='{"error": "error.cross_site"}', content_type="application/json")
    login_id, password = users.login_id(str(form.get("login", ""))[:64]), str(form.get("password", ""))[:256]
    pool = request.app[POOL]
    refused: tuple[str, int] | None = None
    user: users.User | None = None
    # One attempt per user ID at a time: the count of failures is read and a failure written under
    # one lock, so a burst of guesses sent at once cannot all pass the check before the first
    # failure is recorded. In this process the guesses for one ID wait for each other without a
    # database connection each (a burst would otherwise hold the web app's pool); across processes,
    # one that finds the ID being checked elsewhere is refused (429) rather than waiting.
    # One address trying many IDs (one password against every ID: a lockout by ID never trips) is
    # refused after LOGIN_FAILURES_PER_ADDRESS failures in the window, whichever ID comes next.
    per_address = request.app[SETTINGS].login_failures_per_address
    remote = lockouts.address_of(request.remote or "")
    async with _LOGIN_LOCKS.setdefault(login_id, asyncio.Lock()), pool.acquire() as conn, conn.transaction():
        key = await lockouts.failure_key(
            conn, login_id
        )  # what the log keeps (never a password typed as an ID)
        if not await conn.fetchval(
            "select pg_try_advisory_xact_lock(hashtext('dialer.login.' || $1))", login_id
        ):
            refused = ("login.busy", 429)
        elif per_address and await lockouts.address_failures(conn, remote) >= per_address:
            refused = ("login.address_locked", 429)
        elif await lockouts.recent_failures(conn, key) >= lockouts.LOCKOUT_FAILURES:
            refused = ("login.locked", 429)
        elif (user := await users.authenticate(conn, login_id, password)) is None:
            refused = ("login.failed", 401)
        if refused is not None:
            await audit.record(
                conn, action=refused[0], user_id=None, department_id=None,
                detail={"login": key}, remote_addr=remote,
            )  # fmt: skip
    if refused is not None:
        return _refused(request, refused[0])
    assert user is not None
    settings = request.app[SETTINGS]
    token = await users.open_session(
        pool,
        user,
        hours=settings.session_hours,
        lang=lang_of(request),
        idle_minutes=settings.session_idle_minutes,
    )
    await audit.record(
        pool, action="login", user_id=user.id, department_id=user.department_id, remote_addr=remote
    )
    response = web.HTTPFound(LANDING[user.role])
    response.set_cookie(
        COOKIE, token, httponly=True, samesite="Strict", path="/", secure=request.app[SETTINGS].cookie_secure
    )
    raise response


def _refused(request: web.Request, why: str) -> web.Response:
    """The login page again with the reason (401 wrong, 429 locked); the refusal is in the audit log."""
    response = _login_page(request, failed=why == "login.failed", locked=why in ("login.locked", "login.busy"),
                           address_locked=why == "login.address_locked")  # fmt: skip
    response.set_status(401 if why == "login.failed" else 429)
    return response


async def logout(request: web.Request) -> web.StreamResponse:
    session = current(request)
    await request.app[ENGINE].logout(session.user)
    await request.app[HUB].close_user(session.user.id)
    request.app[SESSIONS].forget(token_of(request))
    await users.close_session(request.app[POOL], token_of(request))
    await audit.record(
        request.app[POOL], action="logout", user_id=session.user.id, department_id=session.user.department_id
    )
    response = web.HTTPFound("/login")
    response.del_cookie(COOKIE, path="/")
    raise response


async def switch_lang(request: web.Request) -> web.StreamResponse:
    lang = request.query.get("to", "ja")
    lang = lang if lang in LANGS else "ja"
    if session_of(request) is not None:
        await users.set_session_lang(request.app[POOL], token_of(request), lang)
    # The page's link names it (the pages send no Referer: Referrer-Policy no-referrer); else the Referer.
    back = request.query.get("back") or request.headers.get("Referer") or ""
    response = web.HTTPFound(local_path(back, request.host))
    response.set_cookie("lang", lang, samesite="Strict", path="/")
    raise response


@require("operator")
@aiohttp_jinja2.template("operator.html")
async def operator(request: web.Request) -> dict[str, Any]:
    user = current(request).user
    lang = lang_of(request)
    async with db.department(request.app[POOL], user.department_id) as conn:
        active = await campaigns.open_to(conn, user.department_id, user.id)
        codes = list((await dispositions.codes(conn, user.department_id)).values())
    return context(request, campaigns=active, codes=codes, catalog=CATALOG[lang])


@require("supervisor", "staff", "admin")
@aiohttp_jinja2.template("supervisor.html")
async def supervisor(request: web.Request) -> dict[str, Any]:
    user = current(request).user
    progress = await request.app[PROGRESS].of(request.app[POOL], user.department_id, fresh=True)
    error = request.query.get("error", "")
    handovers_open = 0
    if user.role == "staff" and user.department_id is not None:  # cases waiting for them (a count)
        async with db.department(request.app[POOL], user.department_id) as conn:
            handovers_open = await handovers.open_count(conn, user.department_id)
    return context(
        request, catalog=CATALOG[lang_of(request)], progress=progress, can_edit=user.role == "supervisor",
        handovers_open=handovers_open,
        request_error=error if error in CATALOG["ja"] and error.startswith("camp.err.") else "",
    )  # fmt: skip


@require("admin")
@aiohttp_jinja2.template("admin.html")
async def admin(request: web.Request) -> dict[str, Any]:
    pool = request.app[POOL]
    rows = await pool.fetch(
        "select login, display_name, role, department_id, extension, active from app_user order by id"
    )
    locked = await lockouts.locked_logins(pool)
    addresses = await lockouts.locked_addresses(pool, request.app[SETTINGS].login_failures_per_address)
    return context(
        request,
        users=rows,
        locked=locked,
        locked_addresses=addresses,
        departments=await department_store.listed(pool),
    )


def routes(app: web.Application) -> None:
    app.router.add_get("/", index)
    app.router.add_get("/login", login_form)
    app.router.add_post("/login", login)
    app.router.add_post("/logout", logout)
    app.router.add_get("/lang", switch_lang)
    app.router.add_get("/operator", operator)
    app.router.add_get("/supervisor", supervisor)
    app.router.add_get("/admin", admin)
