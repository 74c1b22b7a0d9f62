"""催告書: the households a campaign cannot reach by phone, listed for reminder letters. Which ones
(the segment, no number or the campaign finished with them, nobody reached since it began, no
recent letter), what the list records (経過記録, audit log), who may make it (staff of the
department), on the page (real HTTP, Chromium), by the CLI and in the 日報. Embedded PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
from datetime import date
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser

from dialer import runtime
from dialer.jpformat import wareki
from dialer.store import letters, reports
from tests import factory
from tests.browser import log_in
from tests.client import logged_in
from tests.test_cli import _env, _run


async def _scene(pool: asyncpg.Pool) -> tuple[int, dict[str, int]]:
    """A campaign over households owing carried-over arrears: (campaign id, household id by 世帯番号).

    L0 has no phone; L1 was called six times and never answered (the campaign finished with it);
    L2 was finished too, but the person owing was reached since the campaign began; L3 is still to
    be called; L4 has no phone but its head has died; L5 has no phone but has paid; L6 was finished,
    reached only two months before the campaign began."""
    await factory.department(pool, "nhi")
    if not await pool.fetchval("select 1 from app_user where login = 'staff1'"):  # `staffed` has one
        await factory.user(pool, "staff1", "staff", "nhi")
    cid = await factory.campaign(pool, "nhi", name="国保 滞納繰越")
    amounts = (30_000, 40_000, 50_000, 60_000, 70_000, 80_000, 90_000, 100_000)
    await factory.households_for_a_segment(pool, cid, "03555510", "L", amounts)
    ids = {r["household_no"]: r["id"] for r in await pool.fetch("select id, household_no from household")}
    for no in ("L0", "L4", "L5"):
        await pool.execute("delete from phone where household_id = $1", ids[no])
    await pool.execute("update person set death_date = current_date - 10 where household_id = $1", ids["L4"])
    await pool.execute("update debt set paid_yen = assessed_yen where household_id = $1", ids["L5"])
    for no, state, attempts, last in (
        ("L1", "done", 6, "no_answer"),
        ("L2", "done", 3, "no_answer"),
        ("L3", "pending", 0, None),
        ("L6", "done", 6, "no_answer"),
        ("L7", "done", 6, "failed"),  # the PBX never placed its calls: not a letter's case
    ):
        await pool.execute(
            """insert into campaign_target (campaign_id, household_id, department_id, state, attempts, last_outcome)
               values ($1, $2, 'nhi', $3, $4, $5)""",
            cid, ids[no], state, attempts, last,
        )  # fmt: skip
    for no, ago in (("L2", "0 days"), ("L6", "60 days")):
        await pool.execute(
            """insert into contact_history (department_id, household_id, at, method, party, content, source)
               values ('nhi', $1, now() - $2::text::interval, 'phone_out', '本人', '納付を案内', 'outcome')""",
            ids[no], ago,
        )  # fmt: skip
    await pool.execute("update campaign set created_at = now() - interval '30 days' where id = $1", cid)
    for no, postal in (("L0", "100-0002"), ("L1", "060-0001"), ("L6", "900-0001")):
        await pool.execute("update household set postal_code = $2 where id = $1", ids[no], postal)
    return cid, ids


def _rows(data: bytes, encoding: str = "cp932") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(encoding), newline="")))


async def test_the_list_has_the_households_phone_cannot_reach_and_records_their_letters(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    cid, ids = await _scene(pool)
    staff = await pool.fetchval("select id from app_user where login = 'staff1'")
    other = await factory.campaign(pool, "nhi", name="別キャンペーン")
    await pool.execute(  # L1 in a call of another campaign right now: not listed while it lasts
        """insert into campaign_target (campaign_id, household_id, department_id, state, lease_owner, lease_expires_at)
           values ($1, $2, 'nhi', 'leased', 'dialer-x', now() + interval '1 minute')""",
        other, ids["L1"],
    )  # fmt: skip
    async with app_pool.acquire() as conn:
        assert (await letters.count(conn, cid, "nhi")).households == 2
    await pool.execute("delete from campaign_target where campaign_id = $1", other)
    async with app_pool.acquire() as conn:
        counted = await letters.count(conn, cid, "nhi")
    assert (counted.households, counted.no_phone, counted.unpaid_yen) == (3, 1, 40_000 + 30_000 + 90_000)
    assert (
        await pool.fetchval("select count(*) from contact_history where method = 'letter'") == 0
    )  # counting records nothing

    made = await letters.make(app_pool, campaign_id=cid, department_id="nhi", user_id=staff, via="test")
    rows = _rows(made.data)
    assert tuple(rows[0]) == letters.HEADER
    oldest = await pool.fetchval("select min(due_date) from debt")
    assert rows[1:] == [  # by postal code
        ["060-0001", "見本県見本市見本町1丁目2番3号", "見本 太郎", "ミホン タロウ", "L1", "AL1", "40000", wareki(oldest),
         letters.NOT_REACHED, "6", "国保 滞納繰越"],
        ["100-0002", "見本県見本市見本町1丁目2番3号", "見本 太郎", "ミホン タロウ", "L0", "AL0", "30000", wareki(oldest),
         letters.NO_PHONE, "0", "国保 滞納繰越"],
        ["900-0001", "見本県見本市見本町1丁目2番3号", "見本 太郎", "ミホン タロウ", "L6", "AL6", "90000", wareki(oldest),
         letters.NOT_REACHED, "6", "国保 滞納繰越"],
    ]  # fmt: skip
    assert made.rows == 3
    assert made.encoding == "cp932"
    assert made.filename.startswith("nhi-letters-")
    lettered = await pool.fetch(
        "select household_id, recorded_by, source, content from contact_history where method = 'letter' order by household_id"
    )
    assert [r["household_id"] for r in lettered] == sorted(ids[n] for n in ("L0", "L1", "L6"))
    assert {(r["recorded_by"], r["source"]) for r in lettered} == {(staff, "staff")}
    contents = {r["household_id"]: r["content"] for r in lettered}
    assert contents[ids["L0"]] == f"催告書送付({letters.NO_PHONE}: 国保 滞納繰越)"  # each its own reason
    assert contents[ids["L1"]] == f"催告書送付({letters.NOT_REACHED}: 国保 滞納繰越)"
    logged = await pool.fetchrow(
        "select * from audit_log where action = 'export' and object_type = 'letters'"
    )
    assert logged["user_id"] == staff
    assert logged["object_id"] == str(cid)
    assert json.loads(logged["detail"]) == {
        "campaign": "国保 滞納繰越",
        "rows": 3,
        "again_days": 30,
        "via": "test",
    }

    # a letter is not a contact: the households stay on the campaign; but they are not listed again soon
    assert (
        await pool.fetchval("select state from campaign_target where household_id = $1", ids["L1"]) == "done"
    )
    again = await letters.make(app_pool, campaign_id=cid, department_id="nhi", user_id=staff, via="test")
    assert again.rows == 0
    assert _rows(again.data) == [list(letters.HEADER)]
    async with app_pool.acquire() as conn:
        assert (await letters.count(conn, cid, "nhi", again_days=0)).households == 3


async def test_a_household_with_no_address_is_left_off_and_one_the_encoding_cannot_write_is_named(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path, db_dsn: str
) -> None:
    """No address: no letter can go, so it is not listed (nor recorded as sent). 𠮷 is not in
    Shift_JIS: the list would show 〓田 on the envelope; the count says which households (staff QA)."""
    cid, ids = await _scene(pool)
    await pool.execute("update household set address = '' where id = $1", ids["L0"])
    await pool.execute("update person set name_kanji = '𠮷田 花子' where household_id = $1", ids["L1"])
    async with app_pool.acquire() as conn:
        counted = await letters.count(conn, cid, "nhi")
    assert (counted.households, counted.no_address, counted.unwritable) == (2, ("L0",), ("L1",))
    assert counted.encoding == "cp932"
    staff = await pool.fetchval("select id from app_user where login = 'staff1'")
    made = await letters.make(app_pool, campaign_id=cid, department_id="nhi", user_id=staff, via="test")
    assert [row[4] for row in _rows(made.data)[1:]] == ["L1", "L6"]
    sent = "select count(*) from contact_history where method = 'letter' and household_id = $1"
    assert await pool.fetchval(sent, ids["L0"]) == 0
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, err = await _run(env, "letters", str(cid), "--count", "--again-days", "0")
    assert code == 0, err
    assert "left off, no address to post to: 1 (L0)" in out
    assert "cannot write (〓 in the list): 1 (L1)" in out
    made = tmp_path / "list.csv"  # making the list says it too, from the households it picked
    code, out, err = await _run(
        env, "letters", str(cid), "--again-days", "0", "--user", "staff1", "--output", str(made)
    )
    assert code == 0, err
    assert "left off, no address to post to: 1 (L0)" in out
    await pool.execute("update department set export_encoding = 'utf-8-sig' where id = 'nhi'")
    async with app_pool.acquire() as conn:
        assert (await letters.count(conn, cid, "nhi", again_days=0)).unwritable == ()


async def test_another_departments_staff_cannot_list_a_campaigns_households(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    cid, _ids = await _scene(pool)
    await factory.department(pool, "tax")
    tax_staff = await factory.user(pool, "staff2", "staff", "tax")
    tax_cid = await factory.campaign(pool, "tax", name="住民税")
    tax_hid = await factory.household(pool, tax_cid, "0398765432", dept="tax", no="T1")
    await pool.execute("delete from phone where household_id = $1", tax_hid)
    with pytest.raises(letters.LetterError) as refused:
        await letters.make(app_pool, campaign_id=cid, department_id="tax", user_id=tax_staff.id, via="test")
    assert refused.value.key == "let.err.campaign"
    assert await pool.fetchval("select count(*) from contact_history where method = 'letter'") == 0
    made = await letters.make(
        app_pool, campaign_id=tax_cid, department_id="tax", user_id=tax_staff.id, via="test"
    )
    assert [r[4] for r in _rows(made.data)[1:]] == ["T1"]  # its own household only, none of nhi's


async def test_staff_count_then_download_the_list_over_http(
    staffed: runtime.Running, pool: asyncpg.Pool
) -> None:
    cid, _ids = await _scene(pool)
    await factory.user(pool, "sv1", "supervisor", "nhi")
    staff = await logged_in(staffed, "staff1", "/supervisor")
    sv = await logged_in(staffed, "sv1", "/supervisor")
    op = await logged_in(staffed, "op1", "/operator")
    try:
        status, page = await staff.get(
            f"/staff/letters?campaign={cid}&again=３０"
        )  # full-width digits as typed
        assert status == 200
        assert 'data-testid="letters-counted"' in page
        assert "3世帯" in page
        assert "見本" not in page  # counting names nobody
        for bad in (
            f"campaign={cid}&again=-1",
            f"campaign={cid}&again=x",
            "campaign=99999",
            "campaign=1e3",
            "campaign=99999999999999999999",
        ):  # (beyond a bigint: was a 500)
            status, page = await staff.get(f"/staff/letters?{bad}")
            assert (status, 'data-testid="letters-error"' in page) == (422, True), bad
        for other in (sv, op):
            assert (await other.get("/staff/letters"))[0] == 403
            async with other.http.post(
                f"{other.base}/staff/letters", data={"csrf": other.csrf, "campaign": cid}
            ) as r:
                assert r.status == 403
        async with staff.http.post(f"{staff.base}/staff/letters", data={"campaign": cid}) as r:
            assert r.status == 403  # no CSRF token
        assert await pool.fetchval("select count(*) from contact_history where method = 'letter'") == 0
        async with staff.http.post(
            f"{staff.base}/staff/letters/last", data={"csrf": staff.csrf, "campaign": cid}
        ) as r:
            assert (r.status, "まだありません" in await r.text()) == (422, True)  # no list made yet
        async with staff.http.post(
            f"{staff.base}/staff/letters", data={"csrf": staff.csrf, "campaign": cid}
        ) as r:
            assert r.status == 200
            assert r.content_type == "text/csv"
            assert "attachment" in r.headers["Content-Disposition"]
            first_list = _rows(await r.read())
            assert [row[4] for row in first_list[1:]] == ["L1", "L0", "L6"]
        async with staff.http.post(
            f"{staff.base}/staff/letters", data={"csrf": staff.csrf, "campaign": cid}
        ) as r:
            assert r.status == 200
            assert 'data-testid="letters-none"' in await r.text()
        entry = await pool.fetchrow("select remote_addr, detail from audit_log where object_type = 'letters'")
        assert json.loads(entry["detail"])["via"] == "web"
        # The download was lost: the last list again, the same households, no letter recorded twice.
        await pool.execute("update household set address = '新住所 1-2-3' where household_no = 'L0'")
        await pool.execute(  # a debt past 時効 (保険料: 2 years) is not asked for in a letter
            """insert into debt (household_id, department_id, debt_type, fiscal_year, installment, assessed_yen,
                                 paid_yen, due_date)
               select id, 'nhi', 'nhi', 2020, 1, 40000, 0, current_date - 900 from household where household_no = 'L1'"""
        )
        await pool.execute(  # L6 has paid since: no letter for it
            "update debt set paid_yen = assessed_yen where household_id = (select id from household where household_no = 'L6')"
        )
        for other in (sv, op):
            async with other.http.post(
                f"{other.base}/staff/letters/last", data={"csrf": other.csrf, "campaign": cid}
            ) as r:
                assert r.status == 403
        async with staff.http.post(
            f"{staff.base}/staff/letters/last", data={"csrf": staff.csrf, "campaign": cid}
        ) as r:
            assert (r.status, r.content_type) == (200, "text/csv")
            rows = _rows(await r.read())
        assert [row[4] for row in rows[1:]] == ["L1", "L0"]
        assert (rows[2][1], rows[2][8], rows[1][8]) == ("新住所 1-2-3", letters.NO_PHONE, letters.NOT_REACHED)
        assert rows[1][6:8] == first_list[1][6:8]  # L1's arrears in scope and oldest 納期限, as listed
        assert await pool.fetchval("select count(*) from contact_history where method = 'letter'") == 3
        again = await pool.fetchval(
            "select detail from audit_log where object_type = 'letters' and detail ? 'again_of'"
        )
        assert (json.loads(again)["rows"], json.loads(again)["no_longer_owing"]) == (2, 1)
    finally:
        for c in (staff, sv, op):
            await c.close()


async def test_a_member_of_staff_downloads_the_list_in_chromium(
    staffed: runtime.Running, pool: asyncpg.Pool, browser: Browser, tmp_path: Path
) -> None:
    cid, _ = await _scene(pool)
    page = await browser.new_page(locale="ja-JP", accept_downloads=True)
    await log_in(page, staffed.url, "staff1")
    await page.get_by_test_id("letters-link").click()
    await page.select_option("select[name=campaign]", str(cid))
    await page.get_by_test_id("letters-count").click()
    counted = await page.get_by_test_id("letters-counted").inner_text()
    assert "3世帯" in counted
    assert "電話番号なし 1世帯" in counted
    async with page.expect_download() as waiting:
        await page.get_by_test_id("letters-download").click()
    download = await waiting.value
    saved = tmp_path / download.suggested_filename
    await download.save_as(saved)
    assert [row[4] for row in _rows(saved.read_bytes())[1:]] == ["L1", "L0", "L6"]
    async with page.expect_download() as waiting:
        await page.get_by_test_id("letters-last").click()
    again = tmp_path / "again.csv"
    await (await waiting.value).save_as(again)
    assert again.read_bytes() == saved.read_bytes()
    await page.close()


async def test_the_cli_counts_and_writes_the_list_for_staff_only(
    tmp_path: Path, db_dsn: str, pool: asyncpg.Pool
) -> None:
    cid, _ = await _scene(pool)
    await factory.user(pool, "op1", "operator", "nhi", "1001")
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, err = await _run(env, "letters", str(cid), "--count")
    assert (code, "3 households for a letter (1 with no number)" in out) == (0, True), err
    out_file = tmp_path / "letters.csv"
    code, out, err = await _run(env, "letters", str(cid), "--user", "op1", "--output", str(out_file))
    assert code != 0
    assert "only staff" in err
    assert not out_file.exists()
    code, out, err = await _run(env, "letters", str(cid), "--output", str(out_file))
    assert code != 0
    assert "--user" in err
    code, out, err = await _run(env, "letters", str(cid), "--user", "staff1", "--output", str(out_file))
    assert (code, "3 households" in out) == (0, True), err
    assert [row[4] for row in _rows(out_file.read_bytes())[1:]] == ["L1", "L0", "L6"]
    assert out_file.stat().st_mode & 0o777 == 0o600  # names and addresses: its owner only
    # a list that cannot be written (a full disk) records no letter
    await pool.execute("delete from contact_history where method = 'letter'")
    code, out, err = await _run(env, "letters", str(cid), "--user", "staff1", "--output", "/dev/full")
    assert (code, "no letter was recorded" in err) == (2, True), err
    assert await pool.fetchval("select count(*) from contact_history where method = 'letter'") == 0
    entry = await pool.fetchrow("select detail from audit_log where object_type = 'letters'")
    assert json.loads(entry["detail"])["via"] == "cli"
    code, out, err = await _run(
        env, "letters", str(cid), "--last", "--user", "staff1", "--output", str(out_file)
    )
    assert (code, "No list has been made" in err) == (2, True), err
    code, out, err = await _run(env, "letters", str(cid), "--user", "staff1", "--output", str(out_file))
    assert code == 0, err
    again = tmp_path / "again.csv"
    code, out, err = await _run(
        env, "letters", str(cid), "--last", "--user", "staff1", "--output", str(again)
    )
    assert (code, "again: 3 households" in out) == (0, True), err
    assert again.read_bytes() == out_file.read_bytes()
    assert await pool.fetchval("select count(*) from contact_history where method = 'letter'") == 3
    code, out, err = await _run(env, "letters", "99999", "--count")
    assert code != 0
    assert "No campaign 99999" in err


async def test_the_daily_report_counts_the_letters_sent(pool: asyncpg.Pool, app_pool: asyncpg.Pool) -> None:
    cid, _ = await _scene(pool)
    staff = await pool.fetchval("select id from app_user where login = 'staff1'")
    await letters.make(app_pool, campaign_id=cid, department_id="nhi", user_id=staff, via="test")
    today = await pool.fetchval("select (now() at time zone 'Asia/Tokyo')::date")
    async with app_pool.acquire() as conn:
        made = await reports.report(conn, "nhi", today, today, "day")
        before = await reports.report(conn, "nhi", date(2020, 1, 1), date(2020, 1, 31), "day")
    assert made.letters == 3
    assert before.letters == 0
