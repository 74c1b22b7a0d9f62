"""Switching the language (/lang) goes back to the page it was pressed on, and never elsewhere."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from dialer import runtime
from tests import factory
from tests.browser import log_in
from tests.client import PageClient
from web.pages import local_path

HOST = "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("target", "back"),
    [
        ("/supervisor/campaigns/3", "/supervisor/campaigns/3"),
        ("/supervisor?error=camp.err.name", "/supervisor?error=camp.err.name"),
        (f"http://{HOST}/supervisor/campaigns/3", "/supervisor/campaigns/3"),  # a Referer: was "/"
        (f"https://{HOST}/admin/imports?x=1", "/admin/imports?x=1"),
        ("", "/"),
        ("https://evil.example/", "/"),
        ("http://127.0.0.1:9999/supervisor", "/"),  # another origin
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("\\\\evil.example", "/"),
        ("javascript:alert(1)", "/"),
        ("evil.example", "/"),
        ("/lang?to=en", "/"),  # never a loop
        ("/x\r\nSet-Cookie: a=b", "/"),
        (f"ftp://{HOST}/supervisor", "/"),
    ],
)
def test_where_the_browser_is_sent_back(target: str, back: str) -> None:
    assert local_path(target, HOST) == back


async def test_the_switch_returns_to_the_same_page(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    sv = PageClient(product.url)
    try:
        assert await sv.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        page = f"/supervisor/campaigns/{w.campaign_id}"
        async with sv.http.get(
            f"{sv.base}/lang?to=en", headers={"Referer": f"{sv.base}{page}"}, allow_redirects=False
        ) as r:
            assert (r.status, r.headers["Location"]) == (302, page)
        for evil in ("https://evil.example/", "//evil.example/"):
            async with sv.http.get(
                f"{sv.base}/lang", params={"to": "ja", "back": evil}, allow_redirects=False
            ) as r:
                assert (r.status, r.headers["Location"]) == (302, "/")
    finally:
        await sv.close()


@pytest.mark.browser
async def test_switching_language_in_chromium_stays_on_the_page(
    product: runtime.Running, pool: asyncpg.Pool, browser: Browser
) -> None:
    w = await factory.world(pool)
    page = await browser.new_page()
    await log_in(page, product.url, "sv1")
    await page.goto(f"{product.url}/supervisor/campaigns/{w.campaign_id}")
    await expect(page.locator("h1")).to_contain_text("キャンペーン設定")
    await page.get_by_test_id("lang-switch").click()
    await page.wait_for_load_state()
    assert page.url == f"{product.url}/supervisor/campaigns/{w.campaign_id}"
    await expect(page.locator("h1")).to_contain_text("Campaign settings")
    await page.get_by_test_id("lang-switch").click()
    await expect(page.locator("h1")).to_contain_text("キャンペーン設定")
    assert page.url == f"{product.url}/supervisor/campaigns/{w.campaign_id}"
    await page.close()
