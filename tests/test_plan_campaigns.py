"""Installment plans and the calls: a plan kept keeps its household from being called (unless another
is broken), a broken one lets a segment call it, plans follow a person who moves, and a plan changed
lately keeps its household from the purge."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from campaigns.hours import TOKYO
from campaigns.segments import Segment
from dialer import purging
from dialer.store import segments
from tests import factory
from tests.plan_files import AGREED, TODAY, import_plans, in_a_campaign, plans_file, schedule
from tests.retention_data import OLD, age, confirm, pay_off
from tests.test_imports import row, write
from tests.test_payments_import import import_export, import_payments, payments_file


async def test_a_plan_kept_takes_its_household_out_of_campaigns_and_a_broken_one_is_called(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    cid = await factory.campaign(owing, "nhi", "progressive")
    households = dict(await owing.fetch("select household_no, id from household"))
    for hid in households.values():
        await owing.execute(
            "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
            cid,
            hid,
        )
    # H002's target is leased (a call about to be placed): it is taken back as well
    await owing.execute(
        """update campaign_target set state = 'leased', lease_owner = 'dialer-1',
                  lease_expires_at = now() + interval '1 minute' where household_id = $1""",
        households["H002"],
    )
    kept = schedule(plan="P1", atena="A001", paid_to=1)  # the first instalment (due 30 days ago) paid
    kept += schedule(plan="P2", atena="B001", paid_to=1)
    broken = schedule(plan="P3", atena="A001", paid_to=0)  # A001 also has a plan whose first is overdue
    info = await import_plans(owing, plans_file(tmp_path / "p.csv", kept[3:]))
    assert info.counts["targets_excluded"] == 1
    target = await owing.fetchrow(
        "select state, last_outcome, lease_owner from campaign_target where household_id = $1",
        households["H002"],
    )
    assert tuple(target) == ("excluded", "installment_plan", None)
    info = await import_plans(owing, plans_file(tmp_path / "q.csv", broken))
    assert info.counts["targets_excluded"] == 0
    assert (
        await owing.fetchval("select state from campaign_target where household_id = $1", households["H001"])
        == "pending"
    )
    # the segment rule reads the imported plans: H001's is broken, H002's kept (never called)
    async with owing.acquire() as conn, conn.transaction():
        await conn.execute("select set_config('dialer.department', 'nhi', true)")
        seen = await segments.preview(conn, cid, "nhi", Segment(installment_broken=True), TODAY)
        assert seen.households == 1
        filled = await segments.fill(conn, cid, "nhi", Segment(), TODAY)
    assert filled.matched == 1
    assert (
        await owing.fetchval("select state from campaign_target where household_id = $1", households["H002"])
        == "excluded"
    )


async def test_a_person_who_moves_takes_their_plan(owing: asyncpg.Pool, tmp_path: Path) -> None:
    await import_plans(owing, plans_file(tmp_path / "p.csv", schedule(paid_to=1)))
    await import_export(owing, write(tmp_path / "moved.csv", [row(世帯番号="H002")]), TODAY)
    assert (
        await owing.fetchval(
            "select h.household_no from installment_plan ip join household h on h.id = ip.household_id"
        )
        == "H002"
    )


async def test_a_plan_changed_lately_keeps_its_paid_off_household_from_the_purge(
    owing: asyncpg.Pool, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await import_plans(owing, plans_file(tmp_path / "a.csv", schedule(paid_to=1)))
    households = dict(await pool.fetch("select household_no, id from household"))
    await pool.execute(
        "update installment_plan set created_at = $1, updated_at = $1", datetime.now(TOKYO) - OLD
    )
    # the plan agreed long ago is reported 完了 today: something changed about H001 today
    info = await import_plans(owing, plans_file(tmp_path / "b.csv", schedule(paid_to=2, 状態="完了")))
    assert info.counts["plans"]["updated"] == 1
    for hid in households.values():
        await pay_off(pool, hid)
        await age(pool, hid, OLD)
    await pool.execute("update import_run set started_at = $1", datetime.now(TOKYO) - OLD)
    await confirm(pool, "nhi")
    (purged,) = await purging.purge_all(owing, tmp_path / "uploads", trigger="command", department="nhi")
    assert await pool.fetchval("select array_agg(household_no) from household") == ["H001"]
    assert purged.counts["installment_plans"] == 0
    await pool.execute("update installment_plan set updated_at = $1", datetime.now(TOKYO) - OLD)
    (purged,) = await purging.purge_all(owing, tmp_path / "uploads", trigger="command", department="nhi")
    assert purged.counts["households"] == 1
    assert purged.counts["installment_plans"] == 1
    assert await pool.fetchval("select count(*) from installment_due") == 0


async def test_a_plan_kept_moved_with_its_person_takes_the_new_household_out_of_campaigns(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    _cid, h2 = await in_a_campaign(owing, "H002")
    await import_plans(owing, plans_file(tmp_path / "p.csv", schedule(paid_to=1)))  # A001's, kept
    info = await import_export(owing, write(tmp_path / "moved.csv", [row(世帯番号="H002")]), TODAY)
    assert info.counts["targets_excluded"] == 1
    target = await owing.fetchrow(
        "select state, last_outcome from campaign_target where household_id = $1", h2
    )
    assert tuple(target) == ("excluded", "installment_plan")


async def test_a_household_with_a_plan_kept_and_another_broken_is_called_about_the_broken_one(
    owing: asyncpg.Pool, tmp_path: Path
) -> None:
    cid, _hid = await in_a_campaign(owing, "H001")
    lines = schedule(plan="P1", paid_to=0) + schedule(plan="P2", paid_to=1)  # P1 broken, P2 kept
    info = await import_plans(owing, plans_file(tmp_path / "p.csv", lines))
    assert info.counts["targets_excluded"] == 0
    async with owing.acquire() as conn, conn.transaction():
        await conn.execute("select set_config('dialer.department', 'nhi', true)")
        broken = await segments.preview(conn, cid, "nhi", Segment(installment_broken=True), TODAY)
        anyone = await segments.preview(conn, cid, "nhi", Segment(), TODAY)
    assert (broken.households, anyone.households) == (1, 2)


async def test_a_missed_instalment_paid_since_the_plans_file_keeps_the_plan_at_once(
    owing: asyncpg.Pool, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The plans file of yesterday says A001's first instalment (¥10,000, due 30 days ago) is unpaid:
    the plan is broken and its household called. A payment dated yesterday is in that file already,
    and one of this year's premium (due after the plan was agreed) is not the plan's; ¥10,000 paid
    this morning towards the arrears the plan covers keeps it: the household leaves the campaign
    at once and no longer matches an 'installment broken' segment."""
    arrears = await pool.fetchrow(
        """update debt set due_date = $1, assessed_yen = 50000, paid_yen = 0, fiscal_year = 2024, installment = 1
           where person_id = (select id from person where atena_no = 'A001') returning household_id, person_id""",
        AGREED - timedelta(days=30),
    )
    await pool.execute(
        """insert into debt (household_id, person_id, department_id, debt_type, fiscal_year, installment,
                             assessed_yen, paid_yen, due_date, reported_as_of)
           values ($1, $2, 'nhi', 'nhi', 2024, 9, 10000, 0, $3, $4)""",
        arrears["household_id"], arrears["person_id"], TODAY - timedelta(days=5), TODAY - timedelta(days=1),
    )  # fmt: skip
    other = await pool.fetchval(  # another member of the household, owing arrears of their own
        """insert into person (household_id, department_id, atena_no, name_kanji, is_head)
           values ($1, 'nhi', 'A002', '見本 次郎', false) returning id""",
        arrears["household_id"],
    )
    await pool.execute(
        """insert into debt (household_id, person_id, department_id, debt_type, fiscal_year, installment,
                             assessed_yen, paid_yen, due_date, reported_as_of)
           values ($1, $2, 'nhi', 'nhi', 2024, 1, 20000, 0, $3, $4)""",
        arrears["household_id"], other, AGREED - timedelta(days=30), TODAY - timedelta(days=1),
    )  # fmt: skip
    cid, hid = await in_a_campaign(pool, "H001")
    await import_plans(
        owing, plans_file(tmp_path / "p.csv", schedule(paid_to=0)), as_of=TODAY - timedelta(days=1)
    )

    async def broken() -> int:
        async with owing.acquire() as conn, conn.transaction():
            await conn.execute("select set_config('dialer.department', 'nhi', true)")
            return (
                await segments.preview(conn, cid, "nhi", Segment(installment_broken=True), TODAY)
            ).households

    assert await broken() == 1
    paid = [
        (
            {"収納番号": "R1", "期別": "1", "収納日": (TODAY - timedelta(days=1)).isoformat()},
            0,
        ),  # in the plans file
        ({"収納番号": "R2", "期別": "9", "収納日": TODAY.isoformat()}, 0),  # this year's, not the plan's
        (
            {"収納番号": "R4", "宛名番号": "A002", "期別": "1", "収納日": TODAY.isoformat()},
            0,
        ),  # another member's
        ({"収納番号": "R3", "期別": "1", "収納日": TODAY.isoformat()}, 1),  # the missed instalment
    ]
    for line, excluded in paid:
        path = payments_file(
            tmp_path / f"{line['収納番号']}.csv", [{**line, "年度": "2024", "収納額": "10000"}]
        )
        info = await import_payments(owing, path)
        assert info.rows_stored == 1, info.counts
        assert info.counts["targets_excluded"] == excluded, line
    target = await pool.fetchrow(
        "select state, last_outcome from campaign_target where household_id = $1", hid
    )
    assert tuple(target) == ("excluded", "installment_plan")
    assert await broken() == 0
