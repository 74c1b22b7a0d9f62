"""Installment plans (分納) imports: each plan with its whole schedule, once, taken whole or not at all
(what a plan does to the calls: tests/test_plan_campaigns.py)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from dialer import runtime
from dialer.imports.run import ImportRequest, import_file
from dialer.store import imports
from tests import factory
from tests.browser import log_in, upload_import
from tests.plan_files import (
    AGREED,
    HEADER,
    PLANS,
    TODAY,
    import_plans,
    in_a_campaign,
    instalment,
    plans_file,
    schedule,
    stored,
)
from tests.test_cli import _env, _run
from tests.test_imports import row, write
from tests.test_payments_import import import_export


async def test_a_plan_lands_with_its_schedule_and_the_same_file_again_changes_nothing(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    path = plans_file(tmp_path / "分納.csv", schedule(paid_to=1))
    info = await import_plans(owing, path)
    assert (info.status, info.rows_read, info.rows_stored, info.rows_rejected) == ("done", 3, 3, 0)
    assert info.counts["plans"] == {"inserted": 1, "updated": 0, "unchanged": 0}
    assert info.counts["plan_dues"] == {"inserted": 3, "updated": 0, "removed": 0}
    plan = await owing.fetchrow(
        """select ip.*, h.household_no, p.atena_no from installment_plan ip
           join household h on h.id = ip.household_id join person p on p.id = ip.person_id"""
    )
    assert plan is not None
    assert (plan["plan_no"], plan["household_no"], plan["atena_no"]) == ("P1", "H001", "A001")
    assert (plan["status"], plan["agreed_on"], plan["total_yen"]) == ("active", AGREED, 30000)  # the sum
    dues = await owing.fetch("select seq, amount_yen, paid_yen, paid_on from installment_due order by seq")
    assert [tuple(d) for d in dues] == [
        (1, 10000, 10000, AGREED + timedelta(days=28)),
        (2, 10000, 0, None),
        (3, 10000, 0, None),
    ]
    before = await stored(owing)
    again = await import_plans(owing, path)
    assert again.counts["plans"] == {"inserted": 0, "updated": 0, "unchanged": 1}
    assert again.counts["plan_dues"] == {"inserted": 0, "updated": 0, "removed": 0}
    assert await stored(owing) == before


async def test_a_newer_file_updates_the_plan_and_its_schedule_in_place(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    await import_plans(owing, plans_file(tmp_path / "a.csv", schedule()), as_of=TODAY - timedelta(days=2))
    plan_id = await owing.fetchval("select id from installment_plan")
    # rescheduled: two instalments left, the second larger; the plan now says 不履行
    lines = schedule(状態="不履行", 分納総額="30000")[:2]
    lines[1]["予定額"] = "20000"
    info = await import_plans(owing, plans_file(tmp_path / "b.csv", lines), as_of=TODAY)
    assert info.counts["plans"] == {"inserted": 0, "updated": 1, "unchanged": 0}
    assert info.counts["plan_dues"] == {"inserted": 0, "updated": 1, "removed": 1}
    assert await owing.fetchval("select id from installment_plan where status = 'broken'") == plan_id
    dues = await owing.fetch("select seq, amount_yen from installment_due order by seq")
    assert [tuple(d) for d in dues] == [(1, 10000), (2, 20000)]
    # only the schedule changed: the plan counts as changed (its household's retention reads it)
    changed_at = await owing.fetchval("select updated_at from installment_plan")
    lines[0]["納付済額"], lines[0]["納付日"] = "10000", TODAY.isoformat()
    info = await import_plans(owing, plans_file(tmp_path / "c.csv", lines), as_of=TODAY)
    assert info.counts["plans"] == {"inserted": 0, "updated": 1, "unchanged": 0}
    assert info.counts["plan_dues"] == {"inserted": 0, "updated": 1, "removed": 0}
    assert await owing.fetchval("select updated_at from installment_plan") > changed_at


async def test_a_plan_with_a_line_rejected_is_left_as_it_was_and_the_others_land(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    await import_plans(owing, plans_file(tmp_path / "a.csv", schedule()))
    before = await stored(owing)
    lines = schedule(状態="完了", paid_to=3)
    lines[2]["納付予定日"] = "令和0年1月1日"  # an impossible date: this line cannot be read
    lines += schedule(plan="P2", atena="B001")
    info = await import_plans(owing, plans_file(tmp_path / "b.csv", lines))
    assert (info.rows_read, info.rows_stored, info.rows_rejected) == (6, 3, 3)
    problems = [(p["line"], p["column_name"], p["message"]) for p in await imports.problems(owing, info.id)]
    unsure = "計画番号 P1 に取り込めない行があるため、この計画は変更していません"
    assert problems[:2] == [(2, "", unsure), (3, "", unsure)]
    assert [line for line, _, _ in problems] == [2, 3, 4]
    assert problems[2][1] == "納付予定日"
    after = await stored(owing)
    assert after["plan"][0] == before["plan"][0]  # P1 as it was: not 完了, its schedule whole
    assert [d for d in after["due"] if d[0] == before["plan"][0][0]] == before["due"]
    assert await owing.fetchval("select array_agg(plan_no order by plan_no) from installment_plan") == [
        "P1",
        "P2",
    ]


async def test_lines_that_disagree_or_name_nobody_are_rejected_with_their_reason(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    lines = [
        *schedule(plan="P1"),
        instalment(分納番号="P2", 宛名番号="B001", 回="1"),
        instalment(分納番号="P2", 宛名番号="A001", 回="2"),  # another person in the same plan
        instalment(分納番号="P3", 宛名番号="B001", 回="1"),
        instalment(分納番号="P3", 宛名番号="B001", 回="1回"),  # the same 回 twice
        instalment(分納番号="P4", 宛名番号="Z999"),  # nobody of that number
    ]
    info = await import_plans(owing, plans_file(tmp_path / "p.csv", lines))
    messages = {p["line"]: p["message"] for p in await imports.problems(owing, info.id)}
    assert messages == {
        5: "計画番号 P2 に取り込めない行があるため、この計画は変更していません",
        6: "計画番号 P2 の宛名番号・承認日・状態・分納総額が行 5 と違います",
        7: "計画番号 P3 に取り込めない行があるため、この計画は変更していません",
        8: "計画番号 P3 の第1回が行 7 にもあります",
        9: "宛名番号 Z999 の住民が登録されていません(滞納データの取込が先です)",
    }
    assert (info.rows_stored, info.rows_rejected) == (3, 5)
    assert await owing.fetchval("select array_agg(plan_no) from installment_plan") == ["P1"]


@pytest.mark.parametrize(
    ("change", "column", "reason"),
    [
        ({"承認日": (TODAY + timedelta(days=1)).isoformat()}, "承認日", "より後です"),
        ({"納付日": (TODAY + timedelta(days=1)).isoformat(), "納付済額": "1"}, "納付日", "より後です"),
        ({"予定額": "0"}, "予定額", "納付予定額が0円です"),
        ({"分納総額": "0"}, "分納総額", "分納総額が0円です"),
        ({"回": "0"}, "回", "回数として読めません"),
        ({"状態": "保留"}, "状態", "分納の状態として読めません"),
        ({"予定額": ""}, "予定額", "必須項目が空です"),
    ],
)
async def test_a_line_that_cannot_be_right_says_which_cell(
    owing: asyncpg.Pool, tmp_path: Path, change: dict[str, str], column: str, reason: str
) -> None:
    info = await import_plans(owing, plans_file(tmp_path / "p.csv", [instalment(**change)]))
    assert (info.rows_stored, info.rows_rejected) == (0, 1)
    [problem] = await imports.problems(owing, info.id)
    assert problem["column_name"] == column
    assert reason in problem["message"]
    assert await owing.fetchval("select count(*) from installment_plan") == 0


async def test_an_older_file_leaves_the_plans_a_newer_one_reported(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    await import_plans(owing, plans_file(tmp_path / "new.csv", schedule(状態="不履行")), as_of=TODAY)
    before = await stored(owing)
    info = await import_plans(
        owing, plans_file(tmp_path / "old.csv", schedule()[:1]), as_of=TODAY - timedelta(days=7)
    )
    assert info.counts["plans_older"] == 1
    assert info.counts["plans"] == {"inserted": 0, "updated": 0, "unchanged": 0}
    assert await stored(owing) == before


async def test_a_line_whose_plan_cannot_be_told_removes_no_instalment(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    await import_plans(owing, plans_file(tmp_path / "a.csv", schedule()))
    lines = [*schedule()[:2], instalment(分納番号="", 回="3")]  # the third line names no plan
    info = await import_plans(owing, plans_file(tmp_path / "b.csv", lines))
    assert info.counts["plan_dues_not_removed"] == 1
    assert await owing.fetchval("select count(*) from installment_due") == 3


async def test_another_departments_plans_are_never_seen_or_touched(
    owing: asyncpg.Pool, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await factory.department(pool, "tax")
    await import_plans(owing, plans_file(tmp_path / "p.csv", schedule()))
    info = await import_file(
        owing,
        ImportRequest(path=plans_file(tmp_path / "t.csv", schedule()), department_id="tax", mapping=PLANS),
    )
    assert (info.rows_stored, info.rows_rejected) == (0, 3)  # A001 is no resident of the tax department's
    assert await pool.fetchval("select count(*) from installment_plan where department_id = 'tax'") == 0


async def test_import_plans_from_the_command_line(tmp_path: Path, db_dsn: str, owing: asyncpg.Pool) -> None:
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    path = plans_file(tmp_path / "分納計画.csv", schedule(paid_to=1), encoding="utf-8-sig")
    tomorrow = (TODAY + timedelta(days=1)).isoformat()
    code, out, err = await _run(env, "import-plans", "--department", "nhi", "--as-of", tomorrow, str(path))
    assert code == 2, (out, err)
    assert "after today" in err
    code, out, err = await _run(env, "import-plans", "--department", "nhi", str(path))
    assert code == 0, err
    assert "plans: inserted 1, updated 0, unchanged 0" in out
    assert "plan dues: inserted 3, updated 0, removed 0" in out
    detail = await owing.fetchval(
        "select detail from audit_log where action = 'import' order by id desc limit 1"
    )
    assert '"os_user"' in detail  # who ran the command
    code, out, err = await _run(
        env, "import-plans", "--department", "nhi", "--mapping", "nhi-sample", str(path)
    )
    assert code == 2
    assert "for households files, not plans" in err


async def test_an_administrator_imports_plans_on_the_import_page(
    staffed: runtime.Running, app_pool: asyncpg.Pool, browser: Browser, tmp_path: Path
) -> None:
    await import_export(app_pool, write(tmp_path / "d.csv", [row()]), TODAY)
    path = plans_file(tmp_path / "分納計画.csv", schedule(paid_to=1))
    page = await browser.new_page()
    await log_in(page, staffed.url, "admin1")
    result = await upload_import(page, staffed.url, "nhi", "plans-sample", path)
    await expect(result).to_contain_text("完了")
    await expect(result).to_contain_text("分納計画新規 1・更新 0")
    await expect(result).to_contain_text("分納の各回新規 3・更新 0")
    await page.reload()
    await expect(page.get_by_test_id("import-runs")).to_contain_text("plans-sample")
    await page.close()
    assert await app_pool.fetchval("select count(*) from installment_due") == 3
    entry = await app_pool.fetchrow(
        "select user_id, detail from audit_log where action = 'import' order by id desc"
    )
    admin = await app_pool.fetchval("select id from app_user where login = 'admin1'")
    assert entry["user_id"] == admin  # who loaded residents' data, in the audit log
    assert '"kind": "plans"' in entry["detail"]
    assert "os_user" not in entry["detail"]  # a page's upload names its user, not the server's account


async def test_a_line_that_cannot_be_read_at_all_removes_no_instalment_and_keeps_a_broken_plan_broken(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    _cid, hid = await in_a_campaign(owing, "H001")
    await import_plans(owing, plans_file(tmp_path / "a.csv", schedule(paid_to=0)))  # the first is overdue
    path = plans_file(tmp_path / "b.csv", schedule(paid_to=0)[1:])  # its first line, with a quote left open:
    first = ",".join(schedule(paid_to=0)[0][h] for h in HEADER).replace(",10,000,", ',"10000,')
    lines = path.read_bytes().decode("cp932").split("\r\n")
    path.write_bytes("\r\n".join([lines[0], first, *lines[1:]]).encode("cp932"))
    info = await import_plans(owing, path)
    assert info.rows_rejected == 1
    assert info.counts["plan_dues_not_removed"] == 1
    assert await owing.fetchval("select count(*) from installment_due") == 3  # the overdue one stays
    assert info.counts["targets_excluded"] == 0
    assert await owing.fetchval("select state from campaign_target where household_id = $1", hid) == "pending"
    assert await owing.fetchval("select total_yen from installment_plan") == 30000  # the whole schedule's


async def test_a_line_with_a_cell_too_many_could_be_any_plans(owing: asyncpg.Pool, tmp_path: Path) -> None:
    """Its 分納番号 cell holds another column's text: no plan is told by it, none loses an instalment
    (review: the line was filed under a plan named by the wrong cell, and P1 lost its first)."""
    await import_plans(owing, plans_file(tmp_path / "a.csv", schedule()))
    path = plans_file(tmp_path / "b.csv", schedule()[1:])
    first = ",".join(schedule()[0][h] for h in HEADER)
    lines = path.read_bytes().decode("cp932").split("\\r\\n")
    path.write_bytes("\\r\\n".join([lines[0], "X9," + first, *lines[1:]]).encode("cp932"))  # shifted by one
    info = await import_plans(owing, path)
    assert info.rows_rejected == 1
    assert info.counts["plan_dues_not_removed"] == 1
    assert await owing.fetchval("select count(*) from installment_due") == 3
