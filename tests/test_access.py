"""Who may do what, over real HTTP and WebSocket: health, the pages each role reaches, hostile
requests, logins (locked after repeated failures, IDs typed full-width) and logouts that close
the pages' sockets."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from dataclasses import replace

import aiohttp
import asyncpg
from yarl import URL

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.client import PageClient, logged_in


async def test_health_and_access_rules(product: runtime.Running, pool: asyncpg.Pool) -> None:
    await factory.world(pool)
    anon = PageClient(product.url)
    try:
        status, body = await anon.get("/healthz")
        assert status == 200
        assert '"database": "ok"' in body
        assert (await anon.get("/operator"))[0] == 302
        assert (await anon.post("/api/agent/ready", {"campaign_id": 1}))[0] == 401
        assert await anon.login("op1", "wrong-password") == 401
        # a password typed into the ID field is not kept in the log (five years), only a digest of it
        assert await anon.login("my-secret-pass", "wrong-password") == 401
        failed = [
            r["detail"]
            for r in await pool.fetch(
                "select detail from audit_log where action = 'login.failed' order by id"
            )
        ]
        assert len(failed) == 2
        assert json.loads(failed[0]) == {"login": "op1"}
        assert "my-secret-pass" not in failed[1]
        assert len(json.loads(failed[1])["login"]) == 3  # "?" and one of 256 buckets
    finally:
        await anon.close()
    sup = PageClient(product.url)
    try:
        assert await sup.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        assert (await sup.get("/operator"))[0] == 403
        assert (await sup.post("/api/dispositions", {}))[0] == 403
        status, floor = await sup.get("/api/floor")
        assert status == 200
        assert '"pbx_up": true' in floor
    finally:
        await sup.close()


async def test_hostile_requests_get_clear_errors(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    op = PageClient(product.url)
    try:
        assert await op.login("op1", factory.PASSWORD) == 200
        assert (await op.post("/api/agent/ready", {"campaign_id": w.campaign_id}, csrf=False))[0] == 403
        assert (await op.post("/api/agent/ready", raw=b"{not json"))[0] == 400
        assert (await op.post("/api/agent/ready", raw=b"[1, 2]"))[0] == 400
        nested = await op.post("/api/agent/ready", raw=b'{"a":' * 10_000 + b"1" + b"}" * 10_000)
        assert nested == (400, {"error": "error.generic"})  # deeper than json parses: no traceback
        assert (await op.post("/api/agent/ready", {"campaign_id": "1; drop table attempt"}))[0] == 400
        assert (await op.post("/api/agent/ready", {"campaign_id": 999999}))[1]["error"] == "error.campaign"
        status, reply = await op.post("/api/dispositions", raw=b'{"note": "' + b"x" * 300_000 + b'"}')
        assert status == 413
        status, reply = await op.post(
            "/api/dispositions",
            {
                "attempt_id": 1,
                "token": str(uuid.uuid4()),
                "code": "refused",
                "note": "<script>alert(1)</script>",
            },
        )
        assert (status, reply["error"]) == (404, "error.attempt")
        assert await pool.fetchval("select count(*) from attempt") == 0
    finally:
        await op.close()


async def test_repeated_failed_logins_lock_the_user_id(product: runtime.Running, pool: asyncpg.Pool) -> None:
    await factory.world(pool)
    client = PageClient(product.url)
    try:
        for _ in range(5):
            assert await client.login("op1", "wrong-password") == 401
        assert await client.login("op1", factory.PASSWORD) == 429  # even the right password, for a while
        assert (
            await client.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        )  # others are not affected
        actions = [r["action"] for r in await pool.fetch("select action from audit_log order by id")]
        assert actions.count("login.failed") == 5
        assert "login.locked" in actions
    finally:
        await client.close()


async def test_one_address_trying_many_user_ids_is_refused_and_others_are_not(
    settings: Settings, pool: asyncpg.Pool
) -> None:
    # One password against every user ID: no ID reaches its own lockout, the address does.
    await factory.world(pool)
    async with runtime.started(replace(settings, login_failures_per_address=4)) as running:
        guesser, colleague = PageClient(running.url), PageClient(running.url)
        elsewhere = PageClient(running.url)  # another machine: a connection from 127.0.0.2
        await elsewhere.http.close()
        elsewhere.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            connector=aiohttp.TCPConnector(local_addr=("127.0.0.2", 0)),
        )
        try:
            for extra in ("op2", "op3"):
                await factory.user(pool, extra, "operator", "nhi")
            for login in ("op1", "sv1", "nobody", "op2", "op3"):  # an ID that does not exist is not counted
                assert await guesser.login(login, "Haru2026!") == 401
            assert await guesser.login("op2", "Haru2026!") == 429
            async with colleague.http.post(
                f"{running.url}/login",
                data={"login": "sv1", "password": factory.PASSWORD},
                allow_redirects=False,
            ) as r:
                assert (r.status, "この端末からのログインの失敗" in await r.text()) == (429, True)
            assert await elsewhere.login("op1", factory.PASSWORD) == 200
            rows = await pool.fetch(
                "select action, remote_addr from audit_log where action like 'login%' order by id"
            )
            assert [(r["action"], r["remote_addr"]) for r in rows] == [
                *[("login.failed", "127.0.0.1")] * 5,
                *[("login.address_locked", "127.0.0.1")] * 2,
                ("login", "127.0.0.2"),
            ]
        finally:
            for c in (guesser, colleague, elsewhere):
                await c.close()


async def test_a_login_form_that_cannot_be_read_is_a_bad_request(product: runtime.Running) -> None:
    client = PageClient(product.url)
    try:
        for body, kind in (
            (b"login=op1&password=\xff\xfe", "application/x-www-form-urlencoded"),
            (
                b"--x\r\nContent-Disposition: form-data; name=login\r\n\r\nop1",
                "multipart/form-data; boundary=x",
            ),
        ):
            async with client.http.post(
                f"{product.url}/login", data=body, headers={"Content-Type": kind}, allow_redirects=False
            ) as r:
                assert r.status == 400, kind
    finally:
        await client.close()


async def test_guesses_sent_all_at_once_are_held_to_the_same_limit(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    clients = [PageClient(product.url) for _ in range(30)]
    try:
        statuses = await asyncio.gather(*(c.login("op1", "wrong-password") for c in clients))
        assert statuses.count(401) == 5  # checked against the password: the five the lockout allows
        assert statuses.count(429) == 25
        assert await clients[0].login("op1", factory.PASSWORD) == 429
        assert await pool.fetchval("select count(*) from audit_log where action = 'login.failed'") == 5
        assert await pool.fetchval("select count(*) from audit_log where action = 'login'") == 0
    finally:
        await asyncio.gather(*(c.close() for c in clients))


async def test_a_login_id_typed_full_width_is_the_same_id(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    client = PageClient(product.url)
    try:
        assert await client.login(" ｏｐ１ ", factory.PASSWORD) == 200  # IME left on: ｏｐ１
    finally:
        await client.close()


async def test_a_supervisors_logout_closes_their_other_pages_at_once(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """The floor (operators' states, campaigns' figures) stops at logout, not up to 30 s later (QA)."""
    await factory.world(pool)
    tab1, tab2 = PageClient(product.url), PageClient(product.url)
    try:
        assert await tab1.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        tab2.http.cookie_jar.update_cookies(tab1.http.cookie_jar.filter_cookies(URL(product.url)))
        tab2.csrf = tab1.csrf
        await tab2.connect()
        assert (await tab1.post("/logout", {}))[0] == 302
        await tab2.wait_closed(within=2.0)  # product's session check is every 30 s: this is the logout
    finally:
        await tab1.close()
        await tab2.close()


async def test_logout_and_session_end_close_the_pages_sockets(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    await factory.world(pool)
    async with runtime.started(replace(settings, session_check_s=0.3)) as running:
        tab1, tab2, other = PageClient(running.url), PageClient(running.url), PageClient(running.url)
        try:
            assert await tab1.login("op1", factory.PASSWORD) == 200
            tab2.http.cookie_jar.update_cookies(
                tab1.http.cookie_jar.filter_cookies(URL(running.url))
            )  # same browser
            tab2.csrf = tab1.csrf
            await tab1.connect()
            await tab2.connect()
            assert (await tab1.post("/logout", {}))[0] == 302
            await tab2.wait_closed()  # the other tab stops receiving records at once
            await other.open_as("op1")
            await pool.execute("delete from web_session")  # expired, or closed by an administrator
            await other.wait_closed()
        finally:
            for client in (tab1, tab2, other):
                await client.close()


async def test_a_staff_session_left_idle_ends_and_a_page_polling_by_itself_does_not_keep_it(
    staffed: runtime.Running, pool: asyncpg.Pool
) -> None:
    """SESSION_IDLE_MINUTES (30): staff see whole records; a screen left open should not go on
    showing them. Operators' sessions keep only the absolute limit (they wait for calls)."""
    staff = await logged_in(staffed, "staff1", "/supervisor")
    op = await logged_in(staffed, "op1", "/operator")
    try:
        idle = (
            "select s.idle_minutes from web_session s join app_user u on u.id = s.user_id where u.login = $1"
        )
        assert (await pool.fetchval(idle, "staff1"), await pool.fetchval(idle, "op1")) == (30, 0)
        await pool.execute("update web_session set last_active = now() - interval '29 minutes'")
        async with staff.http.get(f"{staff.base}/api/floor", headers={"X-Dialer-Poll": "1"}) as r:
            assert r.status == 200  # the page's own figures: not the person's doing
        ws = await staff.http.ws_connect(f"{staff.base.replace('http', 'ws', 1)}/ws")
        await ws.close()  # nor is the page reconnecting its WebSocket after a network blip
        await pool.execute("update web_session set last_active = last_active - interval '2 minutes'")
        assert (await staff.get("/staff/handovers"))[0] == 302  # idle 31 minutes: to the login page
        assert (await op.get("/operator"))[0] == 200  # an operator's session is not ended so
    finally:
        await staff.close()
        await op.close()
    again = await logged_in(staffed, "staff1", "/supervisor")
    try:
        await pool.execute("update web_session set last_active = now() - interval '29 minutes'")
        assert (await again.get("/staff/handovers"))[0] == 200  # done something: idle from now again
        await pool.execute("update web_session set last_active = last_active - interval '2 minutes'")
        assert (await again.get("/staff/handovers"))[0] == 200
    finally:
        await again.close()


async def test_a_login_posted_from_another_site_is_refused_by_what_the_browser_says(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    form = {"login": "op1", "password": factory.PASSWORD}
    async with aiohttp.ClientSession() as http:
        for headers, status in (
            ({"Sec-Fetch-Site": "cross-site"}, 403),
            ({"Sec-Fetch-Site": "same-site"}, 403),  # another host of the same domain is another site's page
            ({"Origin": "http://evil.example"}, 403),  # a browser that says no Sec-Fetch-Site (plain HTTP)
            ({"Origin": "null"}, 403),  # as our own pages' posts say over plain HTTP, and any page can
            ({"Sec-Fetch-Site": "same-origin"}, 302),  # our own login page, over HTTPS or localhost
            ({}, 302),  # a script (curl): no browser to trick
        ):
            async with http.post(
                f"{product.url}/login", data=form, headers=headers, allow_redirects=False
            ) as r:
                assert r.status == status, headers
                assert ("dialer_session" in r.cookies) == (status == 302)
    # A browser over plain HTTP (no Sec-Fetch-Site, Origin "null"): the login form's token, which
    # its cookie repeats (SameSite=Strict: never sent with another site's form), lets it in.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        async with browser.get(f"{product.url}/login") as r:
            token = re.search(r'name="login_token" value="([^"]+)"', await r.text())
        assert token is not None
        for sent, status in (("wrong", 403), ("", 403), (token[1], 302)):
            async with browser.post(
                f"{product.url}/login", data={**form, "login_token": sent}, headers={"Origin": "null"},
                allow_redirects=False,
            ) as r:  # fmt: skip
                assert r.status == status, sent
    assert await pool.fetchval("select count(*) from audit_log where action = 'login'") == 3
