"""The identity check (本人確認) ticks on the operator's page, in headless Chromium: kept through a
reload for their own call (this tab only), never carried to another resident or call."""

from __future__ import annotations

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from dialer import runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.test_browser_e2e import _login, product  # noqa: F401 (the fixture: ring timeout 5 s)

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)


async def test_the_identity_ticks_of_a_preview_call_survive_a_reload_and_go_with_it(
    browser: Browser,
    product: runtime.Running,  # noqa: F811
    pool: asyncpg.Pool,
    sim: SimulatedPbx,
) -> None:
    """Preview: ticked while the record is read, before and after 発信; a reload during the call
    keeps them (review: only progressive calls kept them)."""
    w = await factory.world(pool, mode="preview")
    await factory.household(pool, w.campaign_id, "0355550798", name="確認 七郎")
    sim.script("0355550798", Behaviour("answer", ring_s=0.2, talk_s=None))
    page = await browser.new_page(locale="ja-JP")
    await _login(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("確認 七郎")
    boxes = page.locator(".identity input")
    await boxes.nth(0).check()  # 氏名, before dialling
    await page.get_by_test_id("dial").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await boxes.nth(2).check()  # 生年月日, during the call
    await page.reload()
    await expect(page.get_by_test_id("rec-name")).to_have_text("確認 七郎")
    await expect(boxes.nth(0)).to_be_checked()
    await expect(boxes.nth(1)).not_to_be_checked()
    await expect(boxes.nth(2)).to_be_checked()
    await page.close()
