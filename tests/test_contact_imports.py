"""経過記録 imports (`dialer import-contacts`): the delinquency system's contact history, each entry
once; entries that reached the resident count as last contact; none goes back in an export."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
from playwright.async_api import Browser, expect

from campaigns import segments
from campaigns.hours import TOKYO
from dialer import runtime
from dialer.imports import mapping
from dialer.imports.run import ImportRequest, import_file
from dialer.jpformat import wareki
from dialer.store import exports, imports
from tests import factory
from tests.browser import log_in, upload_import
from tests.plan_files import TODAY, csv_file
from tests.test_cli import _env, _run
from tests.test_imports import row, write
from tests.test_payments_import import import_export

CONTACTS = mapping.load("contacts-sample")
HEADER = ("経過番号", "宛名番号", "経過日", "時刻", "方法", "場所", "相手", "接触", "内容")


def entry(**values: str) -> dict[str, str]:
    """One line of the contacts-sample layout: a visit to A001 five days ago that reached them."""
    base = {
        "経過番号": "K1",
        "宛名番号": "A001",
        "経過日": (TODAY - timedelta(days=5)).isoformat(),
        "時刻": "10:30",
        "方法": "臨戸",
        "場所": "自宅",
        "相手": "本人",
        "接触": "接触",
        "内容": "月末に納付すると約束",
    }
    base.update(values)
    return base


def contacts_file(
    path: Path, lines: list[dict[str, str]], encoding: str = "cp932", header: tuple[str, ...] = HEADER
) -> Path:
    return csv_file(path, header, lines, encoding)


async def import_contacts(
    pool: asyncpg.Pool,
    path: Path,
    m: mapping.Mapping = CONTACTS,
    department: str = "nhi",
    as_of: date | None = None,
) -> imports.RunInfo:
    return await import_file(pool, ImportRequest(path=path, department_id=department, mapping=m, as_of=as_of))


async def stored(pool: asyncpg.Pool) -> list[tuple[object, ...]]:
    return [
        tuple(r)
        for r in await pool.fetch(
            """select c.id, h.household_no, c.at, c.method, c.place, c.party, c.reached, c.content, c.source,
                      c.entry_key from contact_history c join household h on h.id = c.household_id
               order by c.entry_key, c.id"""
        )
    ]


async def not_contacted(pool: asyncpg.Pool, days: int) -> set[str]:
    """The households a segment `not contacted for `days` days` selects."""
    q = segments.query(segments.parse({"not_contacted_days": days}), "nhi", TODAY)
    rows = await pool.fetch(q.sql, *q.params)
    return set(
        await pool.fetchval(
            "select coalesce(array_agg(household_no), '{}') from household where id = any($1)",
            [r["household_id"] for r in rows],
        )
    )


async def test_entries_land_once_and_those_that_reached_the_resident_are_a_contact(
    pool: asyncpg.Pool, owing: asyncpg.Pool, tmp_path: Path
) -> None:
    assert await not_contacted(pool, 14) == {"H001", "H002"}
    five_days_ago = TODAY - timedelta(days=5)
    lines = [
        entry(経過日=wareki(five_days_ago)),  # a visit that reached A001 (H001), in 和暦
        # the counter: the wife came, not the resident (B001, H002): no contact; 時刻 in the date's cell
        entry(
            経過番号="K2",
            宛名番号="B001",
            経過日=f"{TODAY - timedelta(days=3):%Y/%m/%d} 14時05分",
            時刻="",
            方法="窓口",
            場所="",
            相手="妻",
            接触="未接触",
            内容="ﾉｳﾌｼｮ 再発行",
        ),
        entry(経過番号="K3", 宛名番号="B001", 方法="催告書", 時刻="", 相手="", 接触="", 内容="催告書を送付"),
    ]
    path = contacts_file(tmp_path / "経過記録.csv", lines)
    info = await import_contacts(owing, path)
    assert (info.status, info.rows_read, info.rows_stored, info.rows_rejected) == ("done", 3, 3, 0)
    assert info.counts["contacts"] == {"inserted": 3, "updated": 0, "unchanged": 0}
    rows = await stored(pool)
    visit, counter, letter = rows
    assert visit[1:9] == (
        "H001",
        datetime.combine(five_days_ago, datetime.min.time(), TOKYO).replace(hour=10, minute=30),
        "visit", "自宅", "本人", True, "月末に納付すると約束", "imported",
    )  # fmt: skip
    assert counter[1:9] == (
        "H002",
        datetime.combine(TODAY - timedelta(days=3), datetime.min.time(), TOKYO).replace(hour=14, minute=5),
        "counter", "", "妻", False, "ノウフショ 再発行", "imported",
    )  # fmt: skip
    assert (letter[3], letter[6], letter[2].astimezone(TOKYO).time()) == (
        "letter",
        False,
        datetime.min.time(),
    )
    # the visit that reached A001 is H001's last contact; the wife at the counter and a letter are not
    assert await not_contacted(pool, 14) == {"H002"}
    assert await not_contacted(pool, 4) == {"H001", "H002"}

    again = await import_contacts(owing, path)
    assert again.counts["contacts"] == {"inserted": 0, "updated": 0, "unchanged": 3}
    assert await stored(pool) == rows


async def test_a_newer_file_corrects_an_entry_in_place_by_its_number(
    pool: asyncpg.Pool, owing: asyncpg.Pool, tmp_path: Path
) -> None:
    first = contacts_file(tmp_path / "a.csv", [entry(), entry(経過番号="K2")])
    await import_contacts(owing, first, as_of=TODAY - timedelta(days=2))
    before = await stored(pool)
    corrected = entry(内容="月末に納付すると約束(訂正: 15日)", 接触="不在")
    second = contacts_file(tmp_path / "b.csv", [corrected, entry(経過番号="K2")])
    info = await import_contacts(owing, second, as_of=TODAY - timedelta(days=1))
    assert info.counts["contacts"] == {"inserted": 0, "updated": 1, "unchanged": 1}
    after = await stored(pool)
    assert [r[0] for r in after] == [r[0] for r in before]  # the same entries
    assert (after[0][6], after[0][7]) == (False, "月末に納付すると約束(訂正: 15日)")
    assert after[1] == before[1]
    # last week's file uploaded again does not undo the correction (staff QA)
    again = await import_contacts(owing, first, as_of=TODAY - timedelta(days=2))
    assert again.counts["contacts"] == {"inserted": 0, "updated": 0, "unchanged": 2}
    assert again.counts["contacts_older"] == 2
    assert await stored(pool) == after


async def test_without_entry_numbers_identical_lines_are_two_entries_and_the_file_again_adds_none(
    pool: asyncpg.Pool, owing: asyncpg.Pool, tmp_path: Path
) -> None:
    layout = tmp_path / "no-numbers.toml"
    text = (mapping.SHIPPED / "contacts-sample.toml").read_text(encoding="utf-8")
    layout.write_text(text.replace('entry_no = "経過番号"\n', ""), encoding="utf-8")
    m = mapping.load(str(layout))
    header = HEADER[1:]
    lines = [entry(方法="電話", 内容="不在のため伝言"), entry(方法="電話", 内容="不在のため伝言"), entry()]
    path = contacts_file(tmp_path / "c.csv", lines, encoding="utf-8-sig", header=header)
    info = await import_contacts(owing, path, m)
    assert info.counts["contacts"] == {"inserted": 3, "updated": 0, "unchanged": 0}
    again = await import_contacts(owing, path, m)
    assert again.counts["contacts"] == {"inserted": 0, "updated": 0, "unchanged": 3}
    assert await pool.fetchval("select count(*) from contact_history") == 3


async def test_lines_that_cannot_be_used_are_reported_and_the_rest_land(
    pool: asyncpg.Pool, owing: asyncpg.Pool, tmp_path: Path
) -> None:
    tomorrow = TODAY + timedelta(days=1)
    lines = [
        entry(),  # 2: good
        entry(経過番号="K2", 宛名番号="Z999"),  # 3: nobody the delinquency data gave
        entry(経過番号="K3", 経過日=tomorrow.isoformat()),  # 4: tomorrow
        entry(経過番号="K4", 経過日="令和0年4月1日"),  # 5: no such year
        entry(経過番号="K5", 方法="FAX"),  # 6: a method we cannot tell
        entry(経過番号="K1", 内容="同じ番号"),  # 7: K1 twice
        entry(経過番号="K6", 時刻="25:00"),  # 8: no such time
        entry(経過番号="K7", 内容="あ" * 4001),  # 9: too long
        entry(
            経過番号="K8", 宛名番号="B001", 相手="ﾎﾝﾆﾝ", 接触=""
        ),  # 10: good; not reached (kana is not 本人)
        entry(経過番号="K9", 宛名番号="B001", 相手="本人(世帯主)", 接触=""),  # 11: good, reached by 相手
        entry(経過番号="K10", 宛名番号="B001", 相手="本人不在", 接触=""),  # 12: good; 本人 was out
        entry(経過番号="K11", 宛名番号="B001", 相手="本人以外", 接触=""),  # 13: good; someone else
        entry(経過番号="K1", 宛名番号="B001"),  # 14: good; B001's K1 is not A001's (numbered per resident)
    ]
    info = await import_contacts(owing, contacts_file(tmp_path / "d.csv", lines))
    assert (info.rows_read, info.rows_stored, info.rows_rejected) == (13, 6, 7)
    rows = await imports.problems(owing, info.id)
    problems = {r["line"]: (r["column_name"] or "", r["message"]) for r in rows}
    values = {r["line"]: r["value"] for r in rows}
    assert (values[4], values[6], values[8]) == (tomorrow.isoformat(), "FAX", "25:00")  # as in the file
    assert set(problems) == {3, 4, 5, 6, 7, 8, 9}
    assert "宛名番号 Z999 の住民が登録されていません" in problems[3][1]
    assert problems[4][0] == "経過日"
    assert "今日" in problems[4][1]
    assert problems[5][0] == "経過日"
    assert problems[6][0] == "方法"
    assert "[values.method]" in problems[6][1]
    assert "宛名番号:経過番号 A001:K1 が行 2 と重複しています" in problems[7][1]
    assert problems[8][0] == "時刻"
    assert problems[9][0] == "内容"
    assert "4000" in problems[9][1]
    reached = {
        r["entry_key"]: r["reached"]
        for r in await pool.fetch("select entry_key, reached from contact_history")
    }
    assert reached == {
        "no:A001:K1": True,
        "no:B001:K8": False,
        "no:B001:K9": True,
        "no:B001:K10": False,
        "no:B001:K11": False,
        "no:B001:K1": True,
    }


async def test_another_departments_resident_is_not_found(
    pool: asyncpg.Pool, owing: asyncpg.Pool, tmp_path: Path
) -> None:
    await factory.department(pool, "tax")
    info = await import_contacts(owing, contacts_file(tmp_path / "t.csv", [entry()]), department="tax")
    assert (info.rows_stored, info.rows_rejected) == (0, 1)  # A001 is the NHI department's resident
    assert await pool.fetchval("select count(*) from contact_history") == 0


async def test_imported_entries_are_not_exported_back(
    pool: asyncpg.Pool, owing: asyncpg.Pool, tmp_path: Path
) -> None:
    await import_contacts(owing, contacts_file(tmp_path / "e.csv", [entry(内容="臨戸で本人と面談")]))
    hid = await pool.fetchval("select id from household where household_no = 'H001'")
    await pool.execute(  # an entry the product wrote (an operator's outcome)
        """insert into contact_history (department_id, household_id, at, method, party, content, source)
           values ('nhi', $1, now() - interval '1 day', 'phone_out', '本人', '電話で納付を約束', 'outcome')""",
        hid,
    )
    staff = await factory.user(pool, "staff1", "staff")
    out = await exports.export(
        owing, kind="history", department_id="nhi", first=TODAY - timedelta(days=30), last=TODAY,
        user_id=staff.id, via="test",
    )  # fmt: skip
    text = out.data.decode(out.encoding)
    assert "電話で納付を約束" in text
    assert "臨戸で本人と面談" not in text
    assert out.rows == 1


async def test_import_contacts_from_the_command_line(
    tmp_path: Path, db_dsn: str, owing: asyncpg.Pool
) -> None:
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    path = contacts_file(tmp_path / "経過記録.csv", [entry(), entry(経過番号="K2", 宛名番号="Z999")])
    code, out, err = await _run(env, "import-contacts", "--department", "nhi", str(path))
    assert code == 1, err  # a line rejected
    assert "contacts: inserted 1, updated 0, unchanged 0" in out
    assert "line 3" in out
    assert "Z999" in out
    code, out, err = await _run(
        env, "import-contacts", "--department", "nhi", "--mapping", "plans-sample", str(path)
    )
    assert code == 2
    assert "for plans files, not contacts" in err


async def test_an_administrator_imports_contact_history_on_the_import_page(
    staffed: runtime.Running, app_pool: asyncpg.Pool, browser: Browser, tmp_path: Path
) -> None:
    await import_export(app_pool, write(tmp_path / "d.csv", [row()]), TODAY)
    path = contacts_file(tmp_path / "経過記録.csv", [entry(), entry(経過番号="K2", 方法="FAX")])
    page = await browser.new_page()
    await log_in(page, staffed.url, "admin1")
    result = await upload_import(page, staffed.url, "nhi", "contacts-sample", path)
    await expect(result).to_contain_text("完了")
    await expect(result).to_contain_text("経過記録新規 1・更新 0")
    await expect(result).to_contain_text("エラー行1")
    await page.reload()
    await expect(page.get_by_test_id("import-runs")).to_contain_text("経過記録")
    await page.close()


async def test_a_time_in_the_date_cell_and_another_in_the_time_column_is_said(
    pool: asyncpg.Pool, owing: asyncpg.Pool, tmp_path: Path
) -> None:
    day = TODAY - timedelta(days=2)
    lines = [entry(経過日=f"{day:%Y/%m/%d} 10:30", 時刻="11:00")]
    info = await import_contacts(owing, contacts_file(tmp_path / "t.csv", lines))
    assert (info.rows_stored, info.rows_warned) == (1, 1)
    [problem] = await imports.problems(owing, info.id)
    assert (problem["column_name"], problem["severity"]) == ("時刻", "warning")
    assert "10:30" in problem["message"]
    at = await pool.fetchval("select at from contact_history")
    assert at == datetime.combine(day, datetime.min.time(), TOKYO).replace(hour=11)
