"""A session's edges in headless Chromium: a page showing a resident leaves the screen when its
session ends, whatever the page (staff's case page has no live connection); a login form posted by
another site's page is refused."""

from __future__ import annotations

import contextlib
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from aiohttp import web
from playwright.async_api import Browser, expect

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.browser import log_in
from tests.test_handovers import _handed_over

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)

VIEWS = "select count(*) from audit_log where action = 'record.view' and user_id = (select id from app_user where login = $1)"
IDLE = (
    "select now() - s.last_active from web_session s join app_user u on u.id = s.user_id where u.login = $1"
)


async def test_a_staff_case_page_leaves_the_screen_when_the_session_ends(
    browser: Browser, settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    async with runtime.started(replace(settings, session_check_s=0.3)) as running:
        case_id, _ = await _handed_over(running, pool, sim)
        page = await browser.new_page(locale="ja-JP")
        await log_in(page, running.url, "staff1")
        await page.goto(f"{running.url}/staff/handovers/{case_id}")
        await expect(page.locator("main")).to_contain_text("見本 花子")
        views = await pool.fetchval(VIEWS, "staff1")
        await pool.execute(
            "update web_session set last_active = now() - interval '29 minutes' where user_id = "
            "(select id from app_user where login = 'staff1')"
        )
        await page.wait_for_timeout(1500)  # several checks: asking is not the person doing something
        idle = await pool.fetchval(IDLE, "staff1")
        assert idle.total_seconds() > 28 * 60
        await expect(page).to_have_url(re.compile(f"/staff/handovers/{case_id}$"))  # still theirs
        await pool.execute(
            "update web_session set last_active = now() - interval '31 minutes' where user_id = "
            "(select id from app_user where login = 'staff1')"
        )
        await expect(page).to_have_url(re.compile("/login$"))
        await expect(page.locator("body")).not_to_contain_text("見本 花子")
        assert await pool.fetchval(VIEWS, "staff1") == views  # the checks never opened the record again
        await page.close()


@contextlib.asynccontextmanager
async def another_site(login_url: str, fields: dict[str, str]) -> AsyncIterator[str]:
    """Another site's page (on localhost: another site than 127.0.0.1 or the machine's address)
    that posts our login form with `fields` the moment it is opened; yields its URL."""
    inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
    html = f"""<!doctype html><form method="post" action="{login_url}" id="f">{inputs}</form>
        <script>document.getElementById("f").submit()</script>"""

    async def serve(_: web.Request) -> web.Response:
        return web.Response(text=html, content_type="text/html")

    attack = web.Application()
    attack.router.add_get("/", serve)
    runner = web.AppRunner(attack)
    await runner.setup()
    await web.TCPSite(runner, "localhost", 0).start()
    try:
        yield f"http://localhost:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()


async def test_a_login_form_posted_by_another_sites_page_is_refused(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    await factory.user(pool, "op9", "operator", "nhi", ext="6009")
    fields = {"login": "op9", "password": factory.PASSWORD}
    async with another_site(f"{product.url}/login", fields) as attack:
        page = await browser.new_page(locale="ja-JP")
        await log_in(page, product.url, "op1")
        await page.goto(attack)
        await expect(page.locator("body")).to_contain_text("他のサイトから送られたログインは受け付けません")
        await page.goto(f"{product.url}/operator")
        await expect(page.get_by_test_id("who")).to_contain_text(
            await pool.fetchval("select display_name from app_user where login = 'op1'")
        )  # still op1, not op9
        logins = "select count(*) from audit_log where action = 'login' and user_id = (select id from app_user where login = 'op9')"
        assert await pool.fetchval(logins) == 0
        await page.close()


def _lan_address() -> str | None:
    """This machine's address on its network (not loopback), if it has one: a browser treats a
    page there, served over plain HTTP, as a municipal floor PC does (no Sec-Fetch-Site)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # (UDP: nothing is sent; only the route is looked up)
            address = str(probe.getsockname()[0])
        except OSError:
            return None
    return None if address.startswith("127.") else address


async def test_logging_in_over_plain_http_on_the_floors_network_works_and_another_site_cannot(
    browser: Browser, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Over plain HTTP on a LAN address the browser sends no Sec-Fetch-Site and, as our pages send
    no referrer, Origin "null": the cross-site check refused every login there (review). The login
    form's token lets our own form in, and still keeps another site's out."""
    lan = _lan_address()
    if lan is None:
        pytest.skip("no network address but loopback on this machine")
    await factory.world(pool)
    async with runtime.started(replace(settings, http_host="0.0.0.0")) as running:
        url = f"http://{lan}:{running.url.rsplit(':', 1)[1]}"
        page = await browser.new_page(locale="ja-JP")
        sent: list[dict[str, str]] = []
        page.on("request", lambda r: sent.append(r.headers) if r.method == "POST" else None)
        await log_in(page, url, "op1")
        await expect(page).to_have_url(re.compile("/operator$"))
        assert "sec-fetch-site" not in sent[0]  # the case: a browser that says nothing of where it is
        fields = {"login": "sv1", "password": factory.PASSWORD, "login_token": "guessed"}
        async with another_site(f"{url}/login", fields) as attack:
            await page.goto(attack)
            await expect(page.locator("body")).to_contain_text(
                "他のサイトから送られたログインは受け付けません"
            )
        await page.close()


async def test_the_pages_name_an_icon_that_is_there(
    browser: Browser, settings: Settings, pool: asyncpg.Pool
) -> None:
    """Each page names its icon, and it is served: a browser asks /favicon.ico otherwise, a 404 in
    its console on every page (QA; Playwright's Chromium never asks for icons itself, so the link
    is what is checked). No other request of the login and operator's pages fails."""
    await factory.world(pool)
    async with runtime.started(settings) as running:
        page = await browser.new_page(locale="ja-JP")
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        try:
            await log_in(page, running.url, "op1")
            await expect(page.get_by_test_id("agent-state")).to_be_visible()
            href = await page.locator("link[rel=icon]").get_attribute("href")
            assert href is not None
            icon = await page.request.get(running.url + href)
            assert (icon.status, icon.headers["content-type"]) == (200, "image/svg+xml")
        finally:
            await page.close()
        assert failed == []
