"""What the operator's page says between and during calls, in headless Chromium: the last call's
result stays in sight when the next record comes, an old message under 保存 does not follow the
operator to the next resident, 休憩 pressed during a call says it comes after it, and a second
保存 for a call already saved says so."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import pytest
from playwright.async_api import Browser, Route, expect

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.browser import ARTIFACTS, log_in
from tests.client import until

pytestmark = pytest.mark.browser
expect.set_options(timeout=20_000)


async def test_the_operator_is_told_what_became_of_each_call_and_of_each_press(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="preview")
    await factory.household(pool, w.campaign_id, "0355550791", name="話中 一郎", priority=1)
    await factory.household(pool, w.campaign_id, "0355550792", name="応答 二郎", priority=2)
    sim.script("0355550791", Behaviour("busy", ring_s=0.5))
    sim.script("0355550792", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2))
    page = await browser.new_page(locale="ja-JP", viewport={"width": 1366, "height": 650})  # a laptop's
    await log_in(page, product.url, "op1")
    await page.get_by_test_id("ready").press("Enter")
    await expect(page.get_by_test_id("rec-name")).to_have_text("話中 一郎")
    await expect(page.locator("#rec-h")).to_be_focused()  # 受付開始 disabled: its focus handed on (review)
    for button in ("dial", "save"):  # in sight without scrolling (QA: both were below the fold)
        box = await page.get_by_test_id(button).bounding_box()
        assert box is not None
        assert box["y"] + box["height"] <= 650, (button, box)
    for box in await page.locator(
        ".identity input"
    ).all():  # (ticked early: the next record must not keep them)
        await box.check()
    await page.get_by_label("拒否").check()
    await page.get_by_test_id("save").click()  # before dialling: there is no call to save it for
    await expect(page.get_by_test_id("disp-msg")).to_contain_text("発信してから保存してください")
    assert (
        await page.evaluate(
            "Object.keys(localStorage).filter((k) => k.startsWith('dialer.outbox')"
            " && localStorage.getItem(k) !== '[]').length"
        )
        == 0
    )  # nothing queued to send
    await page.get_by_test_id("dial").click()
    # Busy: the next record comes at once, and the page still says what became of the call.
    await expect(page.get_by_test_id("rec-name")).to_have_text("応答 二郎")
    await expect(page.get_by_test_id("outcome")).to_have_text("前の通話: 話し中（網側で終了）")
    await expect(page.get_by_test_id("disp-msg")).to_have_text("")  # the old error went with its record
    await expect(page.get_by_label("拒否")).not_to_be_checked()  # and what was typed for it
    for box in await page.locator(".identity input").all():  # nor the identity check of another resident (QA)
        await expect(box).not_to_be_checked()
    await page.get_by_test_id("dial").press("Enter")
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await expect(page.locator("#rec-h")).to_be_focused()  # a second Enter hangs nothing up (review)
    await expect(page.get_by_test_id("outcome")).to_have_text("")  # a new call
    assert await page.get_by_test_id("call-phase").inner_text() != "call.channel"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "operator-laptop-1366x650.png"))  # what the screen shows
    await page.get_by_test_id("pause").click()
    await expect(page.locator("#notice")).to_have_text("休憩はこの通話と結果入力の後になります。")
    await page.get_by_label("拒否").check()
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    await page.get_by_test_id("save").click()  # again, the resident still on the line
    await expect(page.get_by_test_id("disp-msg")).to_contain_text("この通話の結果は保存済みです")
    assert await pool.fetchval("select count(*) from disposition") == 1

    async def ended_meanwhile(route: Route) -> None:  # as a second 切断 for the call the first ended
        await route.fulfill(status=409, content_type="application/json", body='{"error": "error.no_call"}')

    await page.route("**/api/agent/hangup", ended_meanwhile)
    async with page.expect_response("**/api/agent/hangup"):
        await page.get_by_test_id("hangup").click()
    await page.wait_for_timeout(200)
    await expect(page.locator("#notice")).not_to_contain_text(
        "切断する通話がありません"
    )  # nothing to say (QA)
    await page.unroute("**/api/agent/hangup")
    await page.get_by_test_id("hangup").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("休憩中")
    await page.close()


async def test_a_second_tab_lets_the_resident_go_when_the_first_records_the_outcome(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)  # progressive
    await factory.household(pool, w.campaign_id, "0355550793", name="一件目 太郎", priority=1)
    await factory.household(pool, w.campaign_id, "0355550794", name="二件目 花子", priority=2)
    sim.script("0355550793", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2))
    sim.script("0355550794", Behaviour("answer", ring_s=3.0, talk_s=None, amd_s=0.2))
    context = await browser.new_context(locale="ja-JP")
    first = await context.new_page()
    await log_in(first, product.url, "op1")
    second = await context.new_page()  # the same session, another tab
    await second.goto(f"{product.url}/operator")
    await first.get_by_test_id("ready").click()
    for tab in (first, second):
        await expect(tab.get_by_test_id("rec-name")).to_have_text("一件目 太郎")
    await first.get_by_label("拒否").check()  # saved during the call, then hung up (as QA did)
    await first.get_by_test_id("save").click()
    await expect(first.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    await first.get_by_test_id("hangup").click()
    for tab in (first, second):  # the next household rings: nobody's record on either tab
        await expect(tab.get_by_test_id("call-phase")).to_have_text("呼出中")
        await expect(tab.get_by_test_id("rec-name")).to_be_hidden()
    await context.close()


async def test_skip_cannot_be_pressed_once_the_hours_skips_are_used(
    browser: Browser, settings: Settings, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool, mode="preview")
    for n in (1, 2, 3):
        await factory.household(pool, w.campaign_id, f"035555079{n + 4}", name=f"飛ばし {n}", priority=n)
    async with runtime.started(replace(settings, preview_skips_per_hour=1)) as running:
        page = await browser.new_page(locale="ja-JP")
        await log_in(page, running.url, "op1")
        await page.get_by_test_id("ready").click()
        await expect(page.get_by_test_id("rec-name")).to_have_text("飛ばし 1")
        await page.get_by_test_id("skip").click()
        await expect(page.get_by_test_id("rec-name")).to_have_text("飛ばし 2")
        await page.get_by_test_id("skip").click()  # the hour's one skip is used
        await expect(page.locator("#notice")).to_contain_text("スキップできる件数を超えました")
        await expect(page.get_by_test_id("skip")).to_be_disabled()  # not pressed again and again (QA)
        await expect(page.get_by_test_id("dial")).to_be_enabled()
        await page.close()


async def test_a_correction_saved_while_the_first_outcome_is_on_its_way_is_said_when_too_late(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The first 保存 fails on the way and waits in the page; the page's own resend of it then hangs
    (a slow database) while the operator corrects it and saves again. The first is stored; the
    correction is refused, and the page says that it was not saved and why, not just "already
    saved" (review). Nothing stays queued."""
    w = await factory.world(pool, mode="preview")
    await factory.household(pool, w.campaign_id, "0355550795", name="訂正 三郎")
    sim.script("0355550795", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2))
    page = await browser.new_page(locale="ja-JP")
    seen: list[Route] = []

    async def hold_first(route: Route) -> None:
        seen.append(route)
        if len(seen) == 1:
            await route.abort()  # the network: kept in the page, resent every 5 s
        elif len(seen) > 2:
            await route.continue_()  # (the second, the resend, is held until the correction is queued)

    try:
        await log_in(page, product.url, "op1")
        await page.get_by_test_id("ready").click()
        await expect(page.get_by_test_id("rec-name")).to_have_text("訂正 三郎")
        await page.get_by_test_id("dial").click()
        await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
        await page.route("**/api/dispositions", hold_first)
        await page.get_by_label("拒否").check()
        await page.get_by_test_id("save").click()
        await expect(page.get_by_test_id("disp-msg")).to_have_text("未送信の結果を再送しています…")
        await until(lambda: len(seen) == 2)  # the resend, on its way
        await page.get_by_label("納付済(申出)").check()
        await page.get_by_test_id("save").click()
        await seen[1].continue_()
        await expect(page.get_by_test_id("disp-msg")).to_contain_text("訂正は保存されませんでした")
        queued = "Object.values(localStorage).map(v => JSON.parse(v)).flat().length"
        assert await page.evaluate(queued) == 0
    finally:
        await page.close()
    assert [r["code"] for r in await pool.fetch("select code from disposition")] == ["refused"]


async def test_no_field_is_typed_in_under_the_sticky_bars(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """On a laptop's screen the state bar stays at the top and 保存 at the bottom; a field reached
    with Tab (or clicked at the screen's edge) scrolls clear of both (QA: 会話記録 was typed in
    under the 保存 bar)."""
    w = await factory.world(pool, mode="preview")
    await factory.household(pool, w.campaign_id, "0355550793", name="画面 三郎")
    page = await browser.new_page(locale="ja-JP", viewport={"width": 1366, "height": 650})
    await log_in(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("画面 三郎")
    await page.get_by_label("約束").check()  # (its date and amount fields show)
    await page.locator("#rec-h").focus()
    hidden = []
    for _ in range(80):
        await page.keyboard.press("Tab")
        where = await page.evaluate(
            """() => {
                 const el = document.activeElement;
                 if (!el || !el.closest('#disp') || el.closest('.savebar')) return null;
                 const r = el.getBoundingClientRect();
                 const top = document.querySelector('.operator .bar').getBoundingClientRect().bottom;
                 const bottom = document.querySelector('.operator .savebar').getBoundingClientRect().top;
                 return {name: el.name || el.id, at: [r.top, r.bottom, top, bottom], clear: r.top >= top - 1 && r.bottom <= bottom + 1};
               }"""
        )
        if where and not where["clear"]:
            hidden.append((where["name"], where["at"]))
        if await page.evaluate("document.activeElement.dataset.testid === 'save'"):
            break
    assert hidden == []
    await page.close()


@pytest.mark.parametrize("answer_late", [False, True])
async def test_saved_in_wrap_up_the_next_record_says_the_previous_call_was_saved(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx, answer_late: bool
) -> None:
    """In preview the next record comes the moment the outcome is stored: the confirmation stays
    as the previous call's (QA: 保存しました went with the record before it was seen) until the
    next call starts. `answer_late`: the save's answer comes after the next record, which stays on
    the screen (review: it was cleared as the saved call's)."""
    w = await factory.world(pool, mode="preview")
    await factory.household(pool, w.campaign_id, "0355550796", name="保存 五郎", priority=1)
    await factory.household(pool, w.campaign_id, "0355550797", name="次者 六郎", priority=2)
    sim.script("0355550796", Behaviour("answer", ring_s=0.2, talk_s=0.5))  # the resident hangs up
    sim.script("0355550797", Behaviour("answer", ring_s=0.2, talk_s=None))
    page = await browser.new_page(locale="ja-JP")
    await log_in(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("保存 五郎")
    await page.get_by_test_id("dial").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("後処理")
    await page.get_by_label("拒否").check()

    async def late(route: Route) -> None:  # stored at once, answered a second later
        response = await route.fetch()
        await asyncio.sleep(1.0)
        await route.fulfill(response=response)

    if answer_late:
        await page.route("**/api/dispositions", late)
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("次者 六郎")
    await expect(page.get_by_test_id("disp-msg")).to_have_text("前の通話の結果を保存しました。")
    await expect(page.get_by_test_id("rec-name")).to_be_visible()
    await page.wait_for_timeout(300)  # (nothing takes it away meanwhile)
    await expect(page.get_by_test_id("disp-msg")).to_have_text("前の通話の結果を保存しました。")
    await page.get_by_test_id("dial").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await expect(page.get_by_test_id("disp-msg")).to_have_text("")  # the next call: it goes
    assert await pool.fetchval("select count(*) from disposition") == 1
    await page.close()
