"""A supervisor's pages in headless Chromium: a segment counted, saved and filled on the campaign
page; listening in on an operator from the floor page, and stopping. Screenshots in
var/test-artifacts/."""

from __future__ import annotations

import json

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from dialer import runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.browser import ARTIFACTS, log_in
from tests.client import PageClient
from tests.test_browser_e2e import product  # noqa: F401 (the fixture: ring timeout 5 s)

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)


async def test_a_supervisor_counts_a_segment_then_saves_and_fills_it(
    browser: Browser,
    product: runtime.Running,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    w = await factory.world(pool)
    await factory.households_for_a_segment(pool, w.campaign_id, "03555540", "B", (30_000, 150_000))
    page = await browser.new_page()
    await log_in(page, product.url, "sv1")
    await page.get_by_role("link", name="設定").first.click()
    await expect(page.get_by_role("heading", name="キャンペーン設定: テスト催告")).to_be_visible()
    await page.get_by_label("未納額（円）以上").fill("１００，０００")  # full-width digits and comma
    await page.get_by_label("方式").select_option("predictive")
    await page.get_by_test_id("preview-button").click()
    await expect(page.get_by_test_id("preview")).to_contain_text("1 世帯が該当")
    await expect(page.get_by_test_id("preview")).to_contain_text("150,000円")
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("saved")).to_be_visible()
    await expect(page.get_by_label("未納額（円）以上")).to_have_value("100000")
    await page.get_by_test_id("fill").click()
    await expect(page.get_by_test_id("filled")).to_contain_text("新規登録 1")
    await page.screenshot(path=str(ARTIFACTS / "supervisor-campaign.png"), full_page=True)
    row = await pool.fetchrow("select dial_mode, segment from campaign where id = $1", w.campaign_id)
    assert (row["dial_mode"], json.loads(row["segment"])) == ("predictive", {"unpaid_min_yen": 100_000})
    await page.goto(f"{product.url}/supervisor")
    await expect(page.locator("#campaigns")).to_contain_text("プレディクティブ")


async def test_a_supervisor_listens_in_from_the_floor_page(
    browser: Browser,
    product: runtime.Running,  # noqa: F811
    pool: asyncpg.Pool,
    sim: SimulatedPbx,
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550781", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await pool.execute("update app_user set extension = '9001' where login = 'sv1'")
    op = PageClient(product.url)
    try:
        await op.ready_as("op1", w.campaign_id)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        page = await browser.new_page(locale="ja-JP")
        await log_in(page, product.url, "sv1")
        await expect(page.get_by_test_id("agents")).to_contain_text("通話中")
        await expect(page.get_by_test_id("occupancy")).to_have_text("100 % (1/1)")  # the one operator talks
        await expect(page.locator("#campaigns")).to_contain_text("進行中 1")
        await expect(page.locator("#campaigns")).not_to_contain_text("outcome.")  # no untranslated key
        await page.get_by_test_id(f"listen-listen-{w.operator.id}").click()
        await expect(page.get_by_test_id("listen-msg")).to_contain_text("あなたの電話を呼び出しています")
        await page.screenshot(path=str(ARTIFACTS / "supervisor-listen.png"), full_page=True)
        (spy,) = [a for a in sim.actions("Originate") if a["Context"] == "dialer-listen"]
        assert spy["Channel"] == "PJSIP/9001"
        assert await pool.fetchval("select count(*) from audit_log where action = 'listen'") == 1
        # whom, and a way to stop (it goes on through the operator's next calls otherwise)
        await expect(page.get_by_test_id("listen-msg")).to_contain_text("テスト op1（聞く）のモニタが始まり")
        await expect(page.get_by_test_id("listen-msg")).not_to_contain_text(
            "モニタ中"
        )  # not before it answers
        await page.get_by_test_id("listen-stop").click()
        await expect(page.get_by_test_id("listen-msg")).to_have_text("モニタを終了しました。")
        await expect(page.get_by_test_id("listen-stop")).to_be_hidden()
        assert not [c for c in sim.live_channels() if c.uniqueid == spy["ChannelId"]]
        stopped = await pool.fetch(
            "select object_type, object_id from audit_log where action = 'listen.stop'"
        )
        assert [tuple(r) for r in stopped] == [("operator", str(w.operator.id))]  # whom (QA: blank)
    finally:
        await op.close()


async def test_the_english_report_fits_a_small_screen(
    browser: Browser,
    product: runtime.Running,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    """English headings are longer: the page itself does not grow wider than the screen, the table
    scrolls inside its card (QA: columns off-screen at 1024 px)."""
    await factory.world(pool)
    page = await browser.new_page(locale="en-US", viewport={"width": 1024, "height": 700})
    await log_in(page, product.url, "sv1")
    await page.goto(f"{product.url}/lang?to=en")
    await page.goto(f"{product.url}/supervisor/reports?by=operator")
    await expect(page.get_by_test_id("report")).to_be_visible()
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1024
    await page.close()


async def test_a_refused_save_puts_the_first_field_in_error_in_sight_on_a_laptop(
    browser: Browser,
    product: runtime.Running,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    """The settings page is long: a refused save focuses the first field in error, beside its
    message, and 保存 stays at the bottom of the screen (QA: only a banner at the top said
    something was wrong, the field and 保存 2,800 px below)."""
    w = await factory.world(pool)
    page = await browser.new_page(locale="ja-JP", viewport={"width": 1366, "height": 650})
    await log_in(page, product.url, "sv1")
    await page.goto(f"{product.url}/supervisor/campaigns/{w.campaign_id}")
    save = page.get_by_test_id("save")
    box = await save.bounding_box()
    assert box is not None
    assert box["y"] + box["height"] <= 650  # in sight before scrolling
    field = page.locator("input[name=amd_false_machine_pct]")
    await field.fill("９９")
    await save.click()
    await expect(page.get_by_test_id("errors")).to_be_visible()
    await expect(field).to_be_focused()
    message = await page.get_by_test_id("error-amd_false_machine_pct").bounding_box()
    assert message is not None
    assert message["y"] >= 0, message
    assert message["y"] + message["height"] <= 650, message
    await page.close()


async def test_the_floor_shows_what_operators_recorded_beside_the_calls_results(
    browser: Browser,
    product: runtime.Running,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    """本日の結果 counts how the calls ended; an outcome an operator saved on a call that ended before
    the connection (番号誤り said at once) was nowhere on the page (QA): it is, below, counted by code."""
    w = await factory.world(pool)
    await factory.call_history(pool, w.campaign_id, w.operator.id, dialed=4, live=3, morning=0)
    await pool.execute("update attempt set originated_at = now() - interval '1 minute'")  # (today in Tokyo)
    await pool.execute(
        "update disposition set code = 'wrong_number' where id = (select min(id) from disposition)"
    )
    page = await browser.new_page(locale="ja-JP")
    await log_in(page, product.url, "sv1")
    recorded = page.get_by_test_id(f"recorded-{w.campaign_id}")
    await expect(recorded).to_have_text("応対結果: 拒否 2・番号誤り 1")
    await page.get_by_test_id("lang-switch").click()
    await expect(recorded).to_have_text("Recorded by operators: Refused 2, Wrong number 1")
    await page.close()


async def test_the_floor_says_why_a_ready_operator_gets_no_calls(
    browser: Browser,
    product: runtime.Running,  # noqa: F811
    pool: asyncpg.Pool,
) -> None:
    """An operator ready on a campaign that has nobody to call, then is paused: the floor says so
    beside 待機中 (QA: nothing said why the occupancy fell)."""
    w = await factory.world(pool)
    op = PageClient(product.url)
    page = await browser.new_page(locale="ja-JP")
    try:
        await op.ready_as("op1", w.campaign_id)
        await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets")
        await log_in(page, product.url, "sv1")
        why = page.get_by_test_id(f"why-{w.operator.id}")
        await expect(why).to_have_text(" (発信できる世帯なし)")
        await pool.execute("update campaign set status = 'paused' where id = $1", w.campaign_id)
        await factory.household(pool, w.campaign_id, "0355550907")
        product.engine.floor.wake.set()
        await expect(why).to_have_text(" (キャンペーン停止中)")
    finally:
        await page.close()
        await op.close()
