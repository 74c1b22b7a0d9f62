"""A campaign's talk script (トークスクリプト): set by a supervisor on the console or from the command
line, checked (only the fields an operator's record shows), and shown on the operator's page with
the resident's details filled in, as text."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from dialer import runtime
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.browser import log_in
from tests.console_forms import everything, post_form, supervisor
from tests.test_campaign_console import _base
from tests.test_cli import _env, _one_clear_line, _run

SCRIPT = "{課名}の{担当者}と申します。\n{氏名}様（{フリガナ}）でいらっしゃいますか。\n未納額は{未納額}です。<b>折り返し</b>: {折り返し番号}"


async def test_a_supervisor_writes_the_script_on_the_console(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await supervisor(product)
    try:
        path = f"/supervisor/campaigns/{w.campaign_id}"
        status, _, page = await post_form(
            sv, path, [*everything(script="{氏名}様の{生年月日}と{住所}を確認"), ("action", "save")]
        )
        assert (status, 'data-testid="error-script"' in page) == (422, True)
        assert "{生年月日} {住所}" in page  # the placeholders it does not know, named
        assert await pool.fetchval("select script from campaign where id = $1", w.campaign_id) == ""
        status, where, _ = await post_form(
            sv, path, [*everything(script=SCRIPT.replace("\n", "\r\n") + "\r\n"), ("action", "save")]
        )
        assert (status, where) == (303, f"{path}?saved=segment")  # (everything() changes the rules too)
        assert await pool.fetchval("select script from campaign where id = $1", w.campaign_id) == SCRIPT
        _, page = await sv.get(path)
        assert "未納額は{未納額}です。&lt;b&gt;折り返し&lt;/b&gt;" in page  # shown back as typed, as text
    finally:
        await sv.close()


@pytest.mark.browser
async def test_the_operator_reads_the_script_with_the_residents_details(
    browser: Browser, product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="preview")
    await pool.execute("update department set callback_number = '0312345678' where id = 'nhi'")
    rule = "━" * 100  # a separator line, as scripts have them (QA: it pushed the form off the screen)
    await pool.execute("update campaign set script = $1 where id = $2", SCRIPT + "\n" + rule, w.campaign_id)
    await factory.household(
        pool, w.campaign_id, "0355550881", name="見本 太郎", kana="ミホン タロウ", unpaid=24_000
    )
    page = await browser.new_page(locale="ja-JP", viewport={"width": 1366, "height": 650})
    await log_in(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("rec-name")).to_have_text("見本 太郎")
    script = page.get_by_test_id("rec-script")
    await expect(script).to_contain_text("見本 太郎様")
    assert await script.evaluate("(el) => el.textContent") == (  # line by line, exactly
        "国民健康保険課のテスト op1と申します。\n見本 太郎様（ミホン タロウ）でいらっしゃいますか。\n"
        "未納額は24,000円です。<b>折り返し</b>: 03-1234-5678\n" + rule
    )
    assert await script.locator("b").count() == 0  # text, never HTML
    assert await page.evaluate("document.documentElement.scrollWidth") <= 1366
    for button in ("save", "dial"):  # in sight, not pushed aside or down by the script
        box = await page.get_by_test_id(button).bounding_box()
        assert box is not None
        assert (box["x"] + box["width"] <= 1366, box["y"] + box["height"] <= 650) == (True, True), button
    await page.close()


async def test_the_script_from_the_command_line(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    good = tmp_path / "script.txt"
    good.write_text("\ufeff" + SCRIPT + "\n", encoding="utf-8")  # with a BOM, as Notepad saves it
    code, _, err = await _run(env, "campaign", "set", str(w.campaign_id), "--script", str(good))
    assert code == 0, err
    assert await pool.fetchval("select script from campaign where id = $1", w.campaign_id) == SCRIPT
    code, out, _ = await _run(env, "campaign", "show", str(w.campaign_id))
    assert json.loads(out)["script"] == SCRIPT
    bad = tmp_path / "bad.txt"
    for content, message in (
        ("{生年月日}を確認".encode(), r"unknown placeholders \{生年月日\} \(known: \{氏名\}"),
        ("本文".encode("cp932") + b"\x82\xa0\xff", "is not UTF-8"),
        ("あ".encode() * 20_000, "at most 4000 characters"),
    ):
        bad.write_bytes(content)
        code, _, err = await _run(env, "campaign", "set", str(w.campaign_id), "--script", str(bad))
        assert code == 2, err
        _one_clear_line(err, message)
    code, _, err = await _run(env, "campaign", "set", str(w.campaign_id), "--script", "none")
    assert code == 0, err
    assert await pool.fetchval("select script from campaign where id = $1", w.campaign_id) == ""


async def test_a_script_two_supervisors_wrote_at_once_is_not_lost(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await factory.user(pool, "sv2", "supervisor", "nhi")
    sv1, sv2 = await supervisor(product), await supervisor(product, "sv2")
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        _, page = await sv1.get(path)
        opened = _base(page)
        _, other = await sv2.get(path)
        status, _, _ = await post_form(
            sv2,
            path,
            [*everything(script="{氏名}様、二人目の台本です"), ("base", _base(other)), ("action", "save")],
        )
        assert status == 303
        mine = "{氏名}様、一人目が長く書いた台本です"
        status, _, page = await post_form(
            sv1, path, [*everything(script=mine), ("base", opened), ("action", "save")]
        )
        assert (status, 'data-testid="clash"' in page) == (409, True)
        assert "{氏名}様、二人目の台本です</textarea>" in page  # as it is now
        assert f'data-testid="script-mine">{mine}</textarea>' in page  # and what sv1 wrote, to copy (QA)
        entry = await pool.fetchval(
            "select detail from audit_log where action = 'campaign.update' order by id desc limit 1"
        )
        assert json.loads(entry)["script"] == {"before": "", "after": "{氏名}様、二人目の台本です"}
    finally:
        await sv1.close()
        await sv2.close()
