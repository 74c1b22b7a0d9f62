"""Installment plans and the calls: a plan kept keeps its household from being called (unless another
is broken), a broken one lets a segment call it, plans follow a person who moves, and a plan changed
lately keeps its household from the purge."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import asyncpg

from campaigns.hours import TOKYO
from campaigns.segments import Segment
from dialer import purging
from dialer.store import segments
from tests import factory
from tests.plan_files import TODAY, import_plans, in_a_campaign, plans_file, schedule
from tests.retention_data import OLD, age, confirm, pay_off
from tests.test_imports import row, write
from tests.test_payments_import import import_export


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
