"""An operator's whole shift step, in headless Chromium: log in, Ready, screen-pop, disposition.

Uses Debian's /usr/bin/chromium (installed by `make test`) through pip's Playwright driver.
Screenshots are kept in var/test-artifacts/ for people to look at.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest
from playwright.async_api import Browser, Dialog, Page, Route, expect

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.browser import ARTIFACTS, log_in

pytestmark = pytest.mark.browser
# Generous: CI machines can be slow and loaded; an expectation returns as soon as it holds.
expect.set_options(timeout=20_000)


@pytest.fixture
async def product(settings: Settings) -> AsyncIterator[runtime.Running]:
    async with runtime.started(replace(settings, dialplan=replace(settings.dialplan, ring_timeout_s=5))) as r:
        yield r


async def _login(page: Page, url: str, login: str) -> None:
    await log_in(page, url, login)


async def test_operator_login_ready_screen_pop_disposition(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    hid = await factory.household(
        pool, w.campaign_id, "0355550777", name="見本 太郎", kana="ミホン タロウ", unpaid=24_000
    )
    await pool.execute(  # past its limitation period (保険料: 2 years): shown, not in the total
        """insert into debt (household_id, department_id, debt_type, fiscal_year, installment, assessed_yen,
                             paid_yen, due_date) values ($1, 'nhi', 'nhi', 2021, 1, 9000, 0, current_date - 800)""",
        hid,
    )
    sim.script("0355550777", Behaviour("answer", ring_s=0.5, talk_s=None, amd_s=0.3))
    page = await browser.new_page(locale="ja-JP", viewport={"width": 1280, "height": 900})
    frames: list[str] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda payload: frames.append(str(payload))))
    api_calls: list[str] = []
    page.on("request", lambda req: api_calls.append(req.url) if "/api/" in req.url else None)

    await _login(page, product.url, "op1")
    await expect(page).to_have_url(f"{product.url}/operator")
    await expect(page.get_by_test_id("agent-state")).to_have_text("オフライン")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("見本 太郎")
    await expect(page.get_by_test_id("rec-phone")).to_contain_text("03-5555-0777")
    await expect(page.get_by_test_id("rec-total")).to_have_text("24,000円")
    await expect(page.get_by_test_id("debt-barred")).to_contain_text("9,000円（時効: 請求しない）")
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    # The record came by WebSocket push: the page made no request for it.
    assert any('"type": "record"' in f for f in frames)
    assert [u for u in api_calls if not u.endswith("/api/agent/ready")] == []

    await page.get_by_label("納付約束").check()
    today = await pool.fetchval("select (now() at time zone 'Asia/Tokyo')::date")
    await page.get_by_test_id("promise-date").fill(today.isoformat())
    await page.get_by_test_id("promise-amount").fill("たくさん")
    await page.get_by_test_id("save").click()  # refused: says what is wrong, not "try again"
    await expect(page.get_by_test_id("disp-msg")).to_have_text(
        "入力内容に誤りがあります。各項目を確認してください。"
    )
    # the field is marked and has the focus, its message read with it (QA: keyboard, screen readers)
    amount = page.get_by_test_id("promise-amount")
    await expect(amount).to_have_attribute("aria-invalid", "true")
    await expect(amount).to_be_focused()
    await expect(page.locator("#" + str(await amount.get_attribute("aria-describedby")))).not_to_be_empty()
    # One zero too many (the record shows 24,000円 owed): asked about; declined, nothing is sent.
    asked: list[str] = []

    async def decline(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.dismiss()

    page.once("dialog", decline)
    await page.get_by_test_id("promise-amount").fill("２４０，０００円")
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("promise-amount")).to_be_focused()
    assert asked == ["約束額 ¥240,000 が画面の未納額合計 ¥24,000 を超えています。このまま保存しますか？"]
    assert await pool.fetchval("select count(*) from disposition") == 0
    await page.get_by_test_id("promise-amount").fill("１２，０００")
    await page.get_by_test_id("note").fill("本人確認済み。月末に全額納付予定。")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "operator-screen-pop.png"), full_page=True)
    await page.get_by_test_id("save").dblclick()  # one press too many: one outcome, and said so
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    await expect(amount).not_to_have_attribute("aria-invalid", "true")
    await page.wait_for_timeout(500)
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    assert await pool.fetchval("select count(*) from disposition") == 1
    await expect(page.get_by_test_id("rec-name")).to_have_text("見本 太郎")  # still on the line: still shown
    await page.get_by_test_id("hangup").press("Enter")
    await expect(page.get_by_test_id("agent-state")).to_have_text("待機中")
    await expect(page.get_by_test_id("rec-name")).to_be_hidden()  # the call is over: gone from the screen
    await expect(page.locator("#rec-h")).to_be_focused()  # not lost with the button, nor on another (QA)
    await page.screenshot(path=str(ARTIFACTS / "operator-after-call.png"), full_page=True)

    row = await pool.fetchrow(
        """select d.code, d.promise_amount_yen, d.note, a.outcome, a.hangup_by, a.household_id
           from disposition d join attempt a on a.id = d.attempt_id"""
    )
    assert dict(row) == {
        "code": "promise",
        "promise_amount_yen": 12000,
        "note": "本人確認済み。月末に全額納付予定。",
        "outcome": "connected",
        "hangup_by": "operator",
        "household_id": hid,
    }
    outbox = await page.evaluate("Object.values(localStorage)")
    assert all(json.loads(v) == [] for v in outbox)  # nothing left unsent


async def test_in_english_the_record_shows_dates_and_amounts_as_english_readers_write_them(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Not 令和8年度 and 24,000円 on the English page (the server's labels are Japanese)."""
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550784", name="見本 花子", unpaid=24_000)
    sim.script("0355550784", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2))
    page = await browser.new_page(locale="en-US")
    await _login(page, product.url, "op1")
    await page.get_by_test_id("lang-switch").click()
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("rec-total")).to_have_text("¥24,000")
    row = page.get_by_test_id("rec-debts").locator("tr").first
    await expect(row).to_contain_text("FY")
    await expect(row).not_to_contain_text("円")
    await expect(row).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))  # the due date
    await page.close()


async def test_english_and_bad_login(browser: Browser, product: runtime.Running, pool: asyncpg.Pool) -> None:
    await factory.world(pool)
    page = await browser.new_page()
    await page.goto(f"{product.url}/login")
    await page.get_by_role("link", name="English").click()
    await expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    await page.fill("input[name=login]", "op1")
    await page.fill("input[name=password]", "not-the-password")
    await page.click("button[type=submit]")
    await expect(page.get_by_test_id("login-error")).to_have_text("Wrong user ID or password.")


async def _in_a_call_with_outcome_filled(
    page: Page, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx, number: str, note: str
) -> None:
    """An operator is on a call and has filled in 拒否 and a note, not yet saved."""
    await factory.world_with_callee(
        pool, sim, number, Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2)
    )
    await _login(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await page.get_by_label("拒否").check()
    await page.get_by_test_id("note").fill(note)


async def test_a_disposition_saved_while_offline_is_delivered_later(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    context = await browser.new_context(locale="ja-JP")
    page = await context.new_page()
    await _in_a_call_with_outcome_filled(page, product, pool, sim, "0355550778", "回線断のテスト")
    await context.set_offline(True)  # the network goes away just as the operator saves
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("disp-msg")).to_have_text("未送信の結果を再送しています…")
    assert await pool.fetchval("select count(*) from disposition") == 0
    stored = await page.evaluate("Object.values(localStorage).map(v => JSON.parse(v).length)")
    assert stored == [1]
    await context.set_offline(False)
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    row = await pool.fetchrow("select code, note from disposition")
    assert (row["code"], row["note"]) == ("refused", "回線断のテスト")
    await context.close()


async def _on_call_with_expired_session(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> Page:
    """An operator in a call fills in the outcome; meanwhile the session expires; they press Save."""
    page = await browser.new_page(locale="ja-JP")
    await _in_a_call_with_outcome_filled(page, product, pool, sim, "0355550779", "期限切れのテスト")
    await pool.execute("delete from web_session")
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("disp-msg")).to_contain_text("ログインし直すと送信されます")
    assert await page.evaluate("Object.values(localStorage).map(v => JSON.parse(v).length)") == [1]
    return page


async def test_an_outcome_saved_after_the_session_expired_is_sent_after_logging_in_again(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    page = await _on_call_with_expired_session(browser, product, pool, sim)
    await _login(page, product.url, "op1")
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    row = await pool.fetchrow("select code, note from disposition")
    assert (row["code"], row["note"]) == ("refused", "期限切れのテスト")


async def test_logging_out_with_an_unsent_outcome_warns_then_clears_it(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    page = await _on_call_with_expired_session(browser, product, pool, sim)
    dialogs: list[str] = []

    async def accept(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.on("dialog", accept)
    await page.get_by_role("button", name="ログアウト").click()
    await expect(page).to_have_url(f"{product.url}/login")
    assert dialogs
    assert "未送信の結果があります" in dialogs[0]
    assert await page.evaluate("Object.keys(localStorage).length") == 0  # nothing left on the terminal


async def test_an_operator_finds_an_unknown_callers_household_by_their_atena_number(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    from tests.test_inbound_calls import LINE, open_line

    w = await open_line(product, sim, pool)
    await factory.household(pool, w.campaign_id, "0355550773", no="00773", name="照会 太郎")
    await factory.household(pool, w.campaign_id, "0355550774", no="00774", name="照会 次郎")
    await pool.execute("update campaign_target set state = 'done'")
    page = await browser.new_page(locale="ja-JP", viewport={"width": 1280, "height": 900})
    await _login(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("待機中")
    sim.call_in(LINE, "0355559996")
    await expect(page.get_by_test_id("caller")).to_contain_text("登録のない番号")
    await page.get_by_test_id("identify-key").fill("A99")
    await page.get_by_test_id("identify-go").click()
    await expect(page.get_by_test_id("identify-msg")).to_have_text(
        "この課にその番号の世帯はありません。番号をご確認ください。"
    )
    await page.get_by_test_id("identify-key").fill("Ａ００７７３")
    await page.get_by_test_id("identify-go").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("照会 太郎")
    await expect(page.get_by_test_id("identify-msg")).to_contain_text("この世帯を表示しました")
    await page.screenshot(path=str(ARTIFACTS / "operator-inbound-identified.png"), full_page=True)
    # The wrong household (the caller misread the number): looked up again before saving.
    await page.get_by_test_id("identify-key").fill("A00774")
    await page.get_by_test_id("identify-go").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("照会 次郎")
    await expect(page.get_by_test_id("identify-msg")).to_contain_text("この世帯を表示しました")
    await page.close()


async def test_a_page_whose_session_ends_goes_to_the_login_page(
    browser: Browser, settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """A login disabled, a new password, a logout elsewhere: the open page leaves for the login
    page (nothing of a resident stays on the screen) instead of reconnecting for ever."""
    await factory.world(pool)
    async with runtime.started(replace(settings, session_check_s=0.3)) as running:
        page = await browser.new_page(locale="ja-JP")
        await _login(page, running.url, "op1")
        await expect(page.get_by_test_id("agent-state")).to_have_text("オフライン")
        await pool.execute("delete from web_session")  # what `dialer users disable op1` does to it
        await expect(page).to_have_url(f"{running.url}/login")
        await page.close()


async def test_what_is_being_typed_survives_a_reload_during_the_call(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    page = await browser.new_page(locale="ja-JP")
    await _in_a_call_with_outcome_filled(page, product, pool, sim, "0355550780", "再読み込みのテスト")
    await page.locator(".identity").get_by_label("氏名").check()  # the identity check, half done
    await page.locator(".identity").get_by_label("生年月日").check()
    await page.reload()  # F5 by mistake, mid-call
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await expect(page.get_by_test_id("note")).to_have_value("再読み込みのテスト")
    await expect(page.get_by_label("拒否")).to_be_checked()
    ticked = [await box.is_checked() for box in await page.locator(".identity input").all()]
    assert ticked == [True, False, True]  # (QA: the ticks were lost)
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    assert await pool.fetchval("select note from disposition") == "再読み込みのテスト"
    await page.reload()  # saved: nothing comes back
    await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")
    await expect(page.get_by_test_id("note")).to_have_value("")
    await page.close()


async def test_what_was_typed_during_a_call_that_rang_out_is_not_carried_to_the_next_resident(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Typed while a call rang (it was never answered): the next resident's record comes with an
    empty form. Before, 番号誤り and the note were still there, to be saved on the wrong household."""
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550781", name="不在 一郎", priority=1)
    await factory.household(pool, w.campaign_id, "0355550782", name="応答 二郎", priority=2)
    sim.script("0355550781", Behaviour("busy", ring_s=2.0))
    sim.script("0355550782", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2))
    page = await browser.new_page(locale="ja-JP")
    await _login(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("発信中")
    await page.get_by_label("番号誤り").check()
    await page.get_by_test_id("note").fill("最初の呼び出し中に入力")
    await expect(page.get_by_test_id("rec-name")).to_have_text("応答 二郎")
    await expect(page.get_by_test_id("note")).to_have_value("")
    await expect(page.get_by_label("番号誤り")).not_to_be_checked()
    await page.close()


async def test_a_save_that_takes_long_says_the_outcome_is_kept_and_being_sent(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The answer is slow (the database hanging before anyone knows it is down): after a few
    seconds the page says the outcome is kept and being sent, not nothing at all."""
    page = await browser.new_page(locale="ja-JP")
    await _in_a_call_with_outcome_filled(page, product, pool, sim, "0355550783", "遅い保存のテスト")

    async def slow(route: Route) -> None:
        await asyncio.sleep(5)
        await route.continue_()

    await page.route("**/api/dispositions", slow)
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("disp-msg")).to_have_text("未送信の結果を再送しています…", timeout=4500)
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。", timeout=10_000)
    await page.close()


async def test_the_campaign_list_follows_a_supervisors_changes_without_a_reload(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """Taken off a campaign, another one paused, a third started while the page is open: Ready on
    the one taken away is refused and the list is read again (as whenever it is about to be used)."""
    w = await factory.world(pool)
    op2 = await factory.user(pool, "op2", "operator", "nhi", "1002")
    second = await factory.campaign(pool, "nhi", "progressive", name="第二")
    page = await browser.new_page(locale="ja-JP")
    await _login(page, product.url, "op1")
    select = page.get_by_test_id("campaign")
    await expect(select.locator("option")).to_have_count(2)
    await pool.execute(
        "insert into campaign_operator (campaign_id, user_id, department_id) values ($1, $2, 'nhi')",
        w.campaign_id,
        op2.id,
    )
    await pool.execute("update campaign set status = 'paused' where id = $1", second)
    third = await factory.campaign(pool, "nhi", "progressive", name="第三")
    await select.select_option(str(w.campaign_id))  # as chosen when the page opened
    await page.get_by_test_id("ready").click()
    await expect(page.locator("#notice")).to_have_text("このキャンペーンの担当ではありません。")
    await expect(select.locator("option")).to_have_count(1)
    await expect(select.locator("option")).to_have_attribute("value", str(third))
    await pool.execute("update campaign set status = 'paused' where id = $1", third)
    await page.get_by_test_id("pause").focus()
    await select.focus()
    await expect(select.locator("option")).to_have_count(0)
    await expect(page.get_by_test_id("no-campaigns")).to_be_visible()


async def test_a_mode_changed_while_the_operator_waits_shows_in_their_list(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)  # progressive, no household to call: op1 waits, ready
    page = await browser.new_page(locale="ja-JP")
    await _login(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("待機中")
    await expect(page.get_by_test_id("campaign")).to_contain_text("プログレッシブ")
    await pool.execute("update campaign set dial_mode = 'predictive' where id = $1", w.campaign_id)
    await expect(page.get_by_test_id("campaign")).to_contain_text("プレディクティブ")  # no focus, no reload
    await page.close()
