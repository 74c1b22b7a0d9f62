"""Payments (収納) imports: stored once, applied to the right debt, and paid households stop being called."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from campaigns.hours import TOKYO
from dialer.imports import mapping
from dialer.imports.run import ImportRequest, import_file
from dialer.imports.sample import PAYMENTS_HEADER
from dialer.store import attempts, imports, targets
from tests import factory
from tests.test_imports import row, write

NHI = mapping.load("nhi-sample")
PAYMENTS = mapping.load("payments-sample")


def payments_file(path: Path, lines: list[dict[str, str]]) -> Path:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(PAYMENTS_HEADER)
    for p in lines:
        base = {
            "収納番号": "",
            "宛名番号": "A001",
            "年度": "R07",
            "相当年度": "",
            "期別": "1",
            "収納日": "R07.11.20",
            "収納区分": "コンビニ",
        }
        base.update(p)
        w.writerow([base.get(h, "") for h in PAYMENTS_HEADER])
    path.write_bytes(buf.getvalue().encode("cp932"))
    return path


async def import_payments(pool: asyncpg.Pool, path: Path) -> imports.RunInfo:
    return await import_file(pool, ImportRequest(path=path, department_id="nhi", mapping=PAYMENTS))


async def import_export(pool: asyncpg.Pool, path: Path, as_of: date) -> imports.RunInfo:
    """An export of the delinquency system (nhi-sample layout) extracted on `as_of`."""
    return await import_file(pool, ImportRequest(path=path, department_id="nhi", mapping=NHI, as_of=as_of))


@pytest.fixture
async def owed(pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path) -> tuple[asyncpg.Pool, int]:
    """Household H001 owes two periods of FY2025 (¥30,000 each), exported on 2025-11-01, in a campaign.

    Imports and checks run as the product runs (dialer_app, under RLS); setup as the owner.
    """
    await factory.department(pool, "nhi")
    lines = [
        row(期別="1", 調定額="30000", 収納額="0", 未納額="30000", 年度="R07", 相当年度="2025"),
        row(期別="2", 調定額="30000", 収納額="0", 未納額="30000", 年度="R07", 相当年度="2025"),
    ]
    await import_export(app_pool, write(tmp_path / "d.csv", lines), date(2025, 11, 1))
    hid = await app_pool.fetchval("select id from household where household_no = 'H001'")
    cid = await factory.campaign(app_pool, "nhi", "progressive")
    await app_pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
        cid,
        hid,
    )
    return app_pool, hid


async def test_a_payment_reduces_the_debt_and_is_stored_once(
    owed: tuple[asyncpg.Pool, int], tmp_path: Path
) -> None:
    pool, hid = owed
    path = payments_file(tmp_path / "p.csv", [{"収納番号": "R1", "収納額": "10,000"}])
    info = await import_payments(pool, path)
    assert info.counts["payments"] == {"inserted": 1, "already_imported": 0}
    assert await pool.fetchval("select unpaid_yen from household where id = $1", hid) == 50000
    again = await import_payments(pool, path)
    assert again.counts["payments"] == {"inserted": 0, "already_imported": 1}
    assert await pool.fetchval("select unpaid_yen from household where id = $1", hid) == 50000
    assert await pool.fetchval("select state from campaign_target where household_id = $1", hid) == "pending"


async def test_a_payment_beyond_what_was_assessed_is_stored_and_said(
    owed: tuple[asyncpg.Pool, int], tmp_path: Path
) -> None:
    """¥40,000 against a ¥30,000 period (過誤納, or one zero too many): stored as the file says, and
    the report says so (staff QA: accepted without a word)."""
    pool, _ = owed
    info = await import_payments(
        pool, payments_file(tmp_path / "p.csv", [{"収納番号": "R9", "収納額": "40,000"}])
    )
    assert (info.rows_stored, info.rows_warned) == (1, 1)
    assert info.counts["payments_over_assessed"] == 1
    [problem] = await imports.problems(pool, info.id)
    assert "調定額 30000円を超えました" in problem["message"]
    again = await import_payments(
        pool, payments_file(tmp_path / "q.csv", [{"収納番号": "R9", "収納額": "40,000"}])
    )
    assert (again.rows_warned, again.counts["payments_over_assessed"]) == (0, 0)  # stored before: not again


async def test_a_debt_stored_without_its_相当年度_is_that_of_its_年度(
    owed: tuple[asyncpg.Pool, int], pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Debts stored before 相当年度 was (sql/0004), or by hand, have none: it is the 年度's, as an
    import would have made it, and a payment that names it finds them."""
    app, hid = owed
    await pool.execute("update debt set assessed_year = null")
    path = payments_file(tmp_path / "p.csv", [{"収納番号": "R1", "収納額": "10000", "相当年度": "2025"}])
    info = await import_payments(app, path)
    assert (info.counts["payments"], info.rows_rejected) == ({"inserted": 1, "already_imported": 0}, 0)
    assert await app.fetchval("select unpaid_yen from household where id = $1", hid) == 50000
    other = payments_file(tmp_path / "q.csv", [{"収納番号": "R2", "収納額": "10000", "相当年度": "2024"}])
    assert (await import_payments(app, other)).rows_rejected == 1  # another 相当年度: no such debt


async def test_without_receipt_numbers_identical_lines_are_distinct_payments_but_a_rerun_adds_none(
    owed: tuple[asyncpg.Pool, int], tmp_path: Path
) -> None:
    pool, hid = owed
    path = payments_file(tmp_path / "p.csv", [{"収納額": "5000"}, {"収納額": "5000"}])
    await import_payments(pool, path)
    await import_payments(pool, path)
    assert await pool.fetchval("select count(*) from payment") == 2
    assert await pool.fetchval("select unpaid_yen from household where id = $1", hid) == 50000


async def test_paid_in_full_leaves_every_campaign_even_a_queued_call(
    owed: tuple[asyncpg.Pool, int], tmp_path: Path
) -> None:
    pool, hid = owed
    other = await factory.campaign(pool, "nhi", "preview", name="別の催告")
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
        other,
        hid,
    )
    await pool.execute(
        "insert into phone (household_id, department_id, number, kind) values ($1, 'nhi', '0398765432', 'landline')",
        hid,
    )
    cid = await pool.fetchval(
        "select campaign_id from campaign_target where household_id = $1 and campaign_id <> $2", hid, other
    )
    lease = await targets.lease_next(pool, cid, "dialer-1", 60)  # the engine has queued this household
    assert lease is not None
    assert lease.household_id == hid
    path = payments_file(
        tmp_path / "p.csv",
        [
            {"収納番号": "R1", "期別": "1", "収納額": "30000"},
            {"収納番号": "R2", "期別": "2", "収納額": "30000"},
        ],
    )
    info = await import_payments(pool, path)
    assert info.counts["households_paid_off"] == 1
    states = await pool.fetch("select state, last_outcome from campaign_target where household_id = $1", hid)
    assert {(r["state"], r["last_outcome"]) for r in states} == {("excluded", "paid")}
    with pytest.raises(attempts.TargetWithdrawn):
        await attempts.create(pool, lease, operator_id=None, dial_mode="progressive", link="test")
    assert await pool.fetchval("select count(*) from attempt") == 0
    # the engine giving its lease back does not bring the household back
    await targets.release(pool, lease.target_id, "dialer-1", done=False)
    assert (
        await pool.fetchval("select state from campaign_target where id = $1", lease.target_id) == "excluded"
    )
    assert await targets.lease_next(pool, cid, "dialer-1", 60) is None


async def test_payments_up_to_the_export_date_are_already_in_its_figures(
    owed: tuple[asyncpg.Pool, int], tmp_path: Path
) -> None:
    pool, hid = owed
    path = payments_file(
        tmp_path / "p.csv",
        [
            {"収納番号": "OLD", "収納額": "30000", "収納日": "R07.10.31"},
            {"収納番号": "NEW", "期別": "2", "収納額": "1000"},
        ],
    )
    info = await import_payments(pool, path)
    assert info.counts["payments"]["inserted"] == 2
    assert info.counts["yen_applied"] == 1000
    assert await pool.fetchval("select unpaid_yen from household where id = $1", hid) == 59000
    # OLD is stored, not applied, and the report says why (a payment that seemed lost, else)
    assert info.counts["payments_in_export"] == 1
    assert (info.rows_stored, info.rows_warned) == (2, 1)
    (said,) = await imports.problems(pool, info.id)
    assert (said["line"], said["severity"]) == (2, "warning")
    assert "収納日 2025-10-31 は抽出日 2025-11-01 の滞納データの収納額に含まれている" in said["message"]
    again = await import_payments(pool, path)  # the same file again: nothing stored, nothing to say
    assert (again.counts["payments_in_export"], again.rows_warned) == (0, 0)
    # the next export includes NEW in its 収納額: it is not counted twice
    lines = [
        row(期別="1", 調定額="30000", 収納額="0", 未納額="30000", 年度="R07", 相当年度="2025"),
        row(期別="2", 調定額="30000", 収納額="1000", 未納額="29000", 年度="R07", 相当年度="2025"),
    ]
    await import_export(pool, write(tmp_path / "d2.csv", lines), date(2025, 11, 25))
    assert await pool.fetchval("select unpaid_yen from household where id = $1", hid) == 59000


async def test_unmatched_and_ambiguous_payments_are_reported(
    owed: tuple[asyncpg.Pool, int], tmp_path: Path
) -> None:
    pool, _ = owed
    tomorrow = datetime.now(TOKYO).date() + timedelta(days=1)
    path = payments_file(
        tmp_path / "p.csv",
        [
            {"収納番号": "R1", "宛名番号": "NOBODY", "収納額": "1000"},  # line 2
            {"収納番号": "R2", "期別": "", "収納額": "1000"},  # line 3: which period?
            {"収納番号": "R3", "収納額": "0"},  # line 4
            {"収納番号": "R4", "収納日": "令和0年1月1日", "収納額": "1000"},  # line 5
            {"収納番号": "R5", "収納額": "1000"},  # line 6: fine
            {"収納番号": "R5", "収納額": "1000"},  # line 7: the same receipt twice
            {"収納番号": "R6", "収納額": "1000", "収納日": tomorrow.isoformat()},  # line 8: a typo'd year
        ],
    )
    info = await import_payments(pool, path)
    problems = {
        r["line"]: r["message"] for r in await imports.problems(pool, info.id) if r["severity"] == "error"
    }
    assert set(problems) == {2, 3, 4, 5, 7, 8}
    assert "該当する債権がありません" in problems[2]
    assert "特定できません" in problems[3]
    assert "行 6" in problems[7]
    # stored, it would be added on top of every export until that day (docs/data.md §4)
    assert f"収納日 {tomorrow.isoformat()} が今日" in problems[8]
    assert (info.rows_read, info.rows_stored, info.rows_rejected) == (7, 1, 6)
    whose = dict(await pool.fetch("select line, atena_no from import_problem where import_id = $1", info.id))
    assert whose[2] == "NOBODY"  # the resident each line is about (a deletion request finds it)
    assert whose[4] == whose[5] == whose[7] != ""
    assert await pool.fetchval("select count(*) from payment") == 1


async def test_a_new_household_counts_payments_imported_before_it_existed(
    owed: tuple[asyncpg.Pool, int], tmp_path: Path
) -> None:
    """A new household starts from the file's figures; the summary still counts what the file cannot know."""
    pool, _ = owed
    await import_payments(pool, payments_file(tmp_path / "p.csv", [{"収納番号": "R9", "収納額": "10000"}]))
    # the next export (dated before that payment) has A001 in a household new to us
    lines = [
        row(
            世帯番号="H777", 期別="1", 調定額="30000", 収納額="0", 未納額="30000", 年度="R07", 相当年度="2025"
        ),
        row(
            世帯番号="H777", 期別="2", 調定額="30000", 収納額="0", 未納額="30000", 年度="R07", 相当年度="2025"
        ),
    ]
    await import_export(pool, write(tmp_path / "d3.csv", lines), date(2025, 11, 15))
    moved = await pool.fetchrow("select id, unpaid_yen, dialable from household where household_no = 'H777'")
    assert (moved["unpaid_yen"], moved["dialable"]) == (50000, True)
    assert await pool.fetchval("select unpaid_yen from household where household_no = 'H001'") == 0
    assert await pool.fetchval("select count(*) from debt where household_id = $1", moved["id"]) == 2
