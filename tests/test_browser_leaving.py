"""Leaving the line while a predictive call rings for the operator, in headless Chromium: 休憩 waits
for that call (and can be called off), ログアウト follows the pause. The person who answers is put
through, never left with the abandon message."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from playwright.async_api import Browser, Page, expect

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.browser import log_in
from tests.client import until

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)


@contextlib.asynccontextmanager
async def _ready_with_a_call_ringing(
    browser: Browser, settings: Settings, sim: SimulatedPbx, w: factory.World, ring_timeout_s: int
) -> AsyncIterator[tuple[Page, str]]:
    """op1's page, ready on the predictive campaign, the pacer's call ringing for them: (page, url)."""
    slow_ring = replace(settings, dialplan=replace(settings.dialplan, ring_timeout_s=ring_timeout_s))
    async with runtime.started(slow_ring) as product:
        page = await browser.new_page(locale="ja-JP")
        try:
            await log_in(page, product.url, "op1")
            await page.get_by_test_id("ready").click()
            await expect(page.get_by_test_id("agent-state")).to_have_text("待機中")
            await until(lambda: factory.predictive_originates(sim))
            yield page, product.url
        finally:
            await page.close()


async def test_logging_out_while_a_predictive_call_rings_for_the_operator_takes_it_first(
    browser: Browser, settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """ログアウト at the end of a shift, a predictive call ringing for the operator: the page pauses
    first, the person who answers is put through, and the logout follows the call and its outcome
    (logging out at once left that person with the abandon message)."""
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550791", name="予測 次郎")
    sim.script("0355550791", Behaviour("answer", ring_s=3.0, talk_s=None, amd_s=0.2))
    async with _ready_with_a_call_ringing(browser, settings, sim, w, ring_timeout_s=10) as (page, url):
        await page.get_by_role("button", name="ログアウト").click()
        await expect(page.locator("#notice")).to_contain_text("ログアウトします")
        await expect(page.get_by_test_id("rec-name")).to_have_text("予測 次郎", timeout=15000)  # put through
        await page.get_by_label("拒否").check()
        await page.get_by_test_id("hangup").click()
        await page.get_by_test_id("save").click()
        await expect(page).to_have_url(f"{url}/login", timeout=15000)  # then logged out
    assert await pool.fetchval("select count(*) from attempt where outcome = 'abandoned'") == 0
    assert await pool.fetchval("select code from disposition") == "refused"


async def test_a_pause_waiting_for_a_ringing_call_can_be_called_off_on_the_page(
    browser: Browser, settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """休憩 while a predictive call rings for the operator: the page says it waits, and 受付開始 (which
    is otherwise disabled while ready) calls it off (QA: the button stayed disabled)."""
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550792")
    sim.script("0355550792", Behaviour("noanswer", ring_s=1.0))
    async with _ready_with_a_call_ringing(browser, settings, sim, w, ring_timeout_s=15) as (page, _):
        await expect(page.get_by_test_id("ready")).to_be_disabled()
        await page.locator("#pause").click()
        await expect(page.locator("#notice")).to_contain_text("その呼び出しが終わるまで")
        await expect(page.get_by_test_id("ready")).to_be_enabled()
        await page.get_by_test_id("ready").click()
        await expect(page.locator("#notice")).to_be_hidden()
        await expect(page.get_by_test_id("agent-state")).to_have_text("待機中")
        await expect(page.get_by_test_id("ready")).to_be_disabled()


async def test_a_page_closed_during_a_call_and_opened_again_says_the_pause_comes_after_it(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The tab closed in the middle of a call (nobody would see the next screen-pop): the operator
    is paused after the call. Opened again during it, the page says so, not that they are paused
    already while the state says 通話中 (QA: both notices showed together)."""
    w = await factory.world(pool, mode="preview")
    await factory.household(pool, w.campaign_id, "0355550795", name="閉画 四郎")
    sim.script("0355550795", Behaviour("answer", ring_s=0.2, talk_s=None))
    product.engine.page_grace_s = 0.3
    context = await browser.new_context(locale="ja-JP")  # (its login outlives the tab)
    page = await context.new_page()
    await log_in(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("閉画 四郎")
    await page.get_by_test_id("dial").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await page.close()
    await until(lambda: product.engine.floor.slots[w.operator.id].pause_after_call)
    page = await context.new_page()
    await page.goto(product.url + "/operator")
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await expect(page.locator("#notice")).to_have_text(
        "画面が閉じられていたため、この通話と結果入力の後に休憩になります。その後「受付開始」で再開します。"
    )
    await page.get_by_test_id("hangup").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("後処理")
    await expect(page.locator("#notice")).to_contain_text("画面が閉じられていたため")  # (still why)
    await page.get_by_label("拒否").check()
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("休憩中")
    await expect(page.locator("#notice")).to_have_text(
        "画面が閉じられていたため、休憩にしました。受付開始で再開します。"
    )
    await context.close()
