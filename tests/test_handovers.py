"""Cases handed to municipal staff (職員への引継ぎ): an operator's 分納相談希望 opens a case; staff see
a list that names nobody, open a case (a view of the record, audit-logged), take it and close it
with what was agreed, which goes into the 経過記録. Over real HTTP, in Chromium, with the simulated
PBX and the embedded PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
from playwright.async_api import Browser, expect

from dialer import purging, runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.browser import log_in
from tests.client import PageClient, logged_in
from tests.retention_data import closed_household, confirm
from tests.test_cli import _env, _run


async def _post(c: PageClient, path: str, fields: dict[str, str], csrf: bool = True) -> tuple[int, str]:
    """A form posted as the browser posts it (its CSRF field included): status, body."""
    data = [("csrf", c.csrf)] if csrf else []
    async with c.http.post(f"{c.base}{path}", data=[*data, *fields.items()], allow_redirects=False) as r:
        return r.status, await r.text()


async def _handed_over(product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx) -> tuple[int, int]:
    """op1 speaks with 見本 花子 (H0355552001), who wants to pay by instalments: (case id, household id)."""
    w, hid = await factory.world_with_callee(
        pool, sim, "0355552001", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1), name="見本 花子"
    )
    await factory.user(pool, "staff1", "staff", "nhi")
    op = PageClient(product.url)
    try:
        await op.ready_as("op1", w.campaign_id)
        record = await op.wait(lambda m: m["type"] == "record")
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        await op.save(record["attempt_id"], "installment", note="月1万円なら払えるとのこと")
    finally:
        await op.close()
    case_id = await pool.fetchval("select id from handover where household_id = $1 and status = 'open'", hid)
    assert case_id is not None
    return case_id, hid


async def test_staff_take_a_case_an_operator_handed_over_and_close_it_into_the_contact_history(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    case_id, hid = await _handed_over(product, pool, sim)
    staff = await logged_in(product, "staff1", "/supervisor")
    try:
        _, page = await staff.get("/supervisor")
        assert "職員への引継ぎ (1)" in page  # what waits for them, from their landing page
        status, page = await staff.get("/staff/handovers")
        assert status == 200
        assert "H0355552001" in page
        assert "分納相談希望" in page
        assert "見本 花子" not in page  # the list names nobody
        views = "select count(*) from audit_log where action = 'record.view' and user_id = (select id from app_user where login = 'staff1')"
        assert await pool.fetchval(views) == 0
        status, page = await staff.get(f"/staff/handovers/{case_id}")
        assert status == 200
        assert "見本 花子" in page
        assert "月1万円なら払えるとのこと" in page  # the operator's note
        assert await pool.fetchval(views) == 1  # opening it is a view of the record
        status, _ = await _post(staff, f"/staff/handovers/{case_id}/take", {})
        assert status == 302
        assert await pool.fetchval("select status from handover where id = $1", case_id) == "taken"
        status, page = await _post(
            staff, f"/staff/handovers/{case_id}/done", {"method": "counter", "party": "本人", "result": ""}
        )
        assert status == 422  # nothing agreed written: not closed
        assert "対応結果を入力してください（2000文字まで）" in page
        # the language switch comes back to the case's page, not to the POST-only path (QA: a 405)
        assert f'href="/lang?to=en&amp;back=%2Fstaff%2Fhandovers%2F{case_id}"' in page
        status, _ = await _post(
            staff,
            f"/staff/handovers/{case_id}/done",
            {"method": "counter", "party": "本人", "result": "窓口で分納誓約(月1万円×6回)"},
        )
        assert status == 302
        entry = await pool.fetchrow(
            "select method, party, content, source from contact_history where household_id = $1 and source = 'staff'",
            hid,
        )
        assert tuple(entry) == ("counter", "本人", "職員対応: 窓口で分納誓約(月1万円×6回)", "staff")
        status, page = await _post(
            staff,
            f"/staff/handovers/{case_id}/done",
            {"method": "counter", "party": "本人", "result": "二度目"},
        )
        assert status == 409  # (the page again, with why, and what was typed)
        assert "この案件はすでに完了しています" in page
        assert "二度目" in page
        actions = [
            (r["action"], r["remote_addr"])
            for r in await pool.fetch(
                "select action, remote_addr from audit_log where action like 'handover.%'"
            )
        ]
        assert actions == [("handover.take", "127.0.0.1"), ("handover.done", "127.0.0.1")]  # from where too
        status, _ = await _post(staff, f"/staff/handovers/{case_id}/take", {}, csrf=False)
        assert status == 403  # no token: refused
    finally:
        await staff.close()


async def test_only_the_departments_staff_see_its_cases(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    case_id, _ = await _handed_over(product, pool, sim)
    await factory.department(pool, "tax")
    await factory.user(pool, "staff2", "staff", "tax")
    other = await logged_in(product, "staff2", "/supervisor")
    op = await logged_in(product, "op1", "/operator")
    try:
        _, page = await other.get("/staff/handovers")
        assert "H0355552001" not in page
        assert (await other.get(f"/staff/handovers/{case_id}"))[0] == 404
        assert (await _post(other, f"/staff/handovers/{case_id}/take", {}))[0] == 404
        assert (await op.get("/staff/handovers"))[0] == 403  # operators hand over, they do not take
    finally:
        await other.close()
        await op.close()
    assert await pool.fetchval("select status from handover where id = $1", case_id) == "open"


async def test_a_member_of_staff_closes_a_case_in_chromium(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx, browser: Browser
) -> None:
    case_id, _ = await _handed_over(product, pool, sim)
    page = await browser.new_page(locale="ja-JP")
    await log_in(page, product.url, "staff1")
    await page.get_by_test_id("handovers-link").click()
    await page.get_by_test_id(f"open-{case_id}").click()
    await expect(page.get_by_test_id("handover-record")).to_contain_text("見本 花子")
    await page.get_by_test_id("take").click()
    await page.select_option("select[name=method]", "phone_out")
    await page.fill("textarea[name=result]", "電話で分納の相談、来週窓口へ")
    await page.get_by_test_id("done").click()
    await expect(page.get_by_test_id("handovers")).to_contain_text("完了")
    await page.close()


async def test_a_case_not_done_keeps_its_household_from_the_purge(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    w = await factory.world(pool)
    await confirm(pool, "nhi")
    hid = await closed_household(pool, w.campaign_id, "0366662001", "CASE")
    await pool.execute(
        """insert into handover (department_id, household_id, reason, created_at, updated_at)
           values ('nhi', $1, 'installment', now() - interval '400 days', now() - interval '400 days')""",
        hid,
    )
    (kept,) = await purging.purge_all(app_pool, tmp_path, trigger="command", department="nhi")
    assert kept.counts["households"] == 0  # a consultation still to be held
    await pool.execute("update handover set status = 'done', done_at = now() - interval '400 days'")
    (gone,) = await purging.purge_all(app_pool, tmp_path, trigger="command", department="nhi")
    assert (gone.counts["households"], gone.counts["handovers"]) == (1, 1)


async def test_any_outcome_can_hand_a_case_to_staff(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    await factory.department(pool, "nhi")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, err = await _run(
        env, "codes", "add", "--department", "nhi", "--code", "visit_requested", "--ja", "訪問希望",
        "--en", "Wants a home visit", "--to-staff",
    )  # fmt: skip
    assert code == 0, err
    code, out, err = await _run(env, "codes", "list", "--department", "nhi")
    lines = {line.split()[0]: line for line in out.splitlines()}
    assert lines["visit_requested"].endswith("to-staff")
    assert lines["installment"].endswith("to-staff")  # 分納相談希望: handed over by default
    assert not lines["refused"].endswith("to-staff")


async def test_a_case_for_a_caller_nobody_identified_is_refused_until_looked_up(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """An incoming caller matched to no household: 分納相談希望 waits for the look-up (a case staff
    could not find would be lost; review)."""
    w = await factory.world(pool)
    attempt = await pool.fetchval(
        """insert into attempt (department_id, operator_id, dial_mode, channel_id, outcome, caller_number,
                                originated_at, answered_at, connected_at)
           values ('nhi', $1, 'inbound', 'in-1', 'connected', '0355559999', now(), now(), now()) returning id""",
        w.operator.id,
    )
    op = await logged_in(product, "op1", "/operator")
    try:
        status, reply = await op.post(
            "/api/dispositions",
            {"attempt_id": attempt, "token": "7c3f0c0e-52a4-4f65-9d3c-6b2d9a8e1f00", "code": "installment"},
        )
        assert (status, reply["error"]) == (422, "error.no_household")
    finally:
        await op.close()
    assert await pool.fetchval("select count(*) from handover") == 0


async def test_a_long_list_says_it_is_cut(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await factory.user(pool, "staff1", "staff", "nhi")
    hid = await factory.household(pool, w.campaign_id, "0355552101")
    await pool.execute(
        "insert into handover (department_id, household_id, reason) select 'nhi', $1, 'installment' from generate_series(1, 501)",
        hid,
    )
    staff = await logged_in(product, "staff1", "/supervisor")
    try:
        _, page = await staff.get("/staff/handovers")
        assert "最も古いものから500件を表示しています（未対応・対応中は全部で501件）" in page
        assert page.count('data-testid="open-') == 500
    finally:
        await staff.close()


async def test_the_case_shows_what_may_be_asked_for_and_who_closed_it(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """A debt past its limitation period is marked and left out of what is owed, as the operator saw
    it; a colleague who closes a case is its staff member; a result with control characters (NUL:
    a 500 before) is stored cleaned (QA)."""
    case_id, hid = await _handed_over(product, pool, sim)
    await factory.user(pool, "staff2", "staff", "nhi")
    await pool.execute(
        """insert into debt (household_id, department_id, debt_type, fiscal_year, assessed_year, installment,
                             assessed_yen, paid_yen, due_date)
           values ($1, 'nhi', 'nhi', 2020, 2020, 9, 30000, 0, '2021-03-31')""",
        hid,
    )  # a premium due in 2021: past the 2 years
    one, two = (
        await logged_in(product, "staff1", "/supervisor"),
        await logged_in(product, "staff2", "/supervisor"),
    )
    try:
        _, page = await one.get(f"/staff/handovers/{case_id}")
        assert "円（時効: 請求しない）" in page
        assert 'data-testid="handover-owed">24,000円' in page  # the 30,000 not in it
        # each period with its 納期限, as a 分納 is agreed on them (staff QA: by year only)
        assert "令和2年度 国民健康保険料 第9期 納期限 令和3年3月31日 30,000円" in page
        async with one.http.get(f"{one.base}/lang?to=en", allow_redirects=False):
            pass
        _, english = await one.get(f"/staff/handovers/{case_id}")
        assert 'data-testid="handover-owed">¥24,000' in english  # as English reports write it (staff QA)
        assert "FY2020 " in english
        assert "due 2021-03-31 ¥30,000" in english  # dates as the English operator page writes them (QA)
        assert (await _post(one, f"/staff/handovers/{case_id}/take", {}))[0] == 302
        status, _ = await _post(
            two,
            f"/staff/handovers/{case_id}/done",
            {"method": "phone_out", "party": "本人", "result": "相談済\x00\u202e"},
        )
        assert status == 302
        row = await pool.fetchrow(
            "select c.result, u.login from handover c join app_user u on u.id = c.taken_by where c.id = $1",
            case_id,
        )
        assert (row["result"], row["login"]) == ("相談済", "staff2")
        _, page = await two.get(f"/staff/handovers/{case_id}")
        assert 'data-testid="handover-done-at">20' in page  # when it was closed, beside the result (QA)
    finally:
        await one.close()
        await two.close()


async def test_two_cases_of_one_household_are_taken_and_closed_together(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Two calls, two operators, the same household handed over twice (a campaign's call, then the
    resident calling in): the list and the case say so, and one member of staff takes and closes
    both with one consultation (QA: two could each take one and phone the resident twice)."""
    first, hid = await _handed_over(product, pool, sim)
    op2 = await factory.user(pool, "op2", "operator", "nhi", ext="1002")
    second = await pool.fetchval(
        "insert into handover (department_id, household_id, operator_id, reason) values ('nhi', $1, $2, 'installment') returning id",
        hid,
        op2.id,
    )
    await factory.user(pool, "staff2", "staff", "nhi")
    staff = await logged_in(product, "staff1", "/supervisor")
    other = await logged_in(product, "staff2", "/supervisor")
    try:
        _, page = await staff.get("/staff/handovers")
        assert f'data-testid="others-{first}">同じ世帯: #{second}</span>' in page
        assert f'data-testid="others-{second}">同じ世帯: #{first}</span>' in page
        _, page = await staff.get(f"/staff/handovers/{second}")
        assert '<dd class="keep-lines">—</dd>' in page  # its operator wrote no note (QA: an empty line)
        _, page = await staff.get(f"/staff/handovers/{first}")
        assert f'href="/staff/handovers/{second}">#{second}</a>' in page
        assert "対応完了にすると、同じ対応結果でこれらも完了になります" in page
        # (each form says which of the household's cases its page showed: `with`)
        assert (await _post(other, f"/staff/handovers/{second}/take", {"with": str(first)}))[0] == 302
        assert (await _post(staff, f"/staff/handovers/{first}/take", {"with": str(second)}))[0] == 302
        held = await pool.fetch("select taken_by from handover where household_id = $1", hid)
        staff1 = await pool.fetchval("select id from app_user where login = 'staff1'")
        assert [r["taken_by"] for r in held] == [staff1, staff1]  # both moved to who took the household
        third = await pool.fetchval(  # the resident calls in again while staff1 writes the result
            "insert into handover (department_id, household_id, reason) values ('nhi', $1, 'installment') returning id",
            hid,
        )
        status, _ = await _post(
            staff,
            f"/staff/handovers/{first}/done",
            {"method": "phone_out", "party": "本人", "result": "分納誓約", "with": str(second)},
        )
        assert status == 302
        done = await pool.fetch(
            "select id, status, result from handover where household_id = $1 order by id", hid
        )
        assert [tuple(r) for r in done] == [
            (first, "done", "分納誓約"),
            (second, "done", "分納誓約"),
            (third, "open", ""),
        ]
        # (the third was on no page staff1 saw: not closed with a result written before its note was read)
        history = "select count(*) from contact_history where household_id = $1 and source = 'staff'"
        assert await pool.fetchval(history, hid) == 1  # one consultation, one entry
        logged = await pool.fetch(
            "select action, object_id, detail from audit_log where action like 'handover.%' order by id"
        )
        assert [(r["action"], r["object_id"], json.loads(r["detail"] or "{}")) for r in logged] == [
            ("handover.take", str(second), {}), ("handover.take", str(first), {"with": second}),  # staff2
            ("handover.take", str(first), {}), ("handover.take", str(second), {"with": first}),  # staff1
            ("handover.done", str(first), {}), ("handover.done", str(second), {"with": first}),
        ]  # fmt: skip
        status, page = await _post(
            other, f"/staff/handovers/{second}/done", {"method": "phone_out", "party": "本人", "result": "x"}
        )
        assert status == 409  # done already, with the first
    finally:
        await staff.close()
        await other.close()
