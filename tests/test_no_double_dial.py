"""A household, or a number, is never called twice at once: not across campaigns, not across households."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient


async def _two_campaigns(pool: asyncpg.Pool) -> tuple[int, int]:
    w = await factory.world(pool)
    await factory.user(pool, "op2", "operator", "nhi", "1002")
    second = await factory.campaign(pool, "nhi", "progressive", name="高額滞納")
    return w.campaign_id, second


def _live_resident_calls(sim: SimulatedPbx) -> list[str]:
    return [c.uniqueid for c in sim.live_channels() if c.uniqueid.startswith("dlr-a")]


async def test_a_household_in_two_campaigns_gets_one_call(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    first, second = await _two_campaigns(pool)
    hid = await factory.household(pool, first, "0355550700")
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
        second,
        hid,
    )
    sim.script("0355550700", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.1))
    op1, op2 = PageClient(product.url), PageClient(product.url)
    try:
        await op1.ready_as("op1", first)
        await op1.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        await op2.ready_as("op2", second)
        await op2.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets")
        await asyncio.sleep(1.5)  # several dial-loop turns
        assert len(_live_resident_calls(sim)) == 1
        assert await pool.fetchval("select count(*) from attempt") == 1
    finally:
        await op1.close()
        await op2.close()


async def test_two_households_sharing_a_number_are_not_called_at_once(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    first, _ = await _two_campaigns(pool)
    await factory.household(pool, first, "0355550701", no="H-A", priority=1)
    await factory.household(pool, first, "0355550701", no="H-B", priority=2)  # 同一電話番号 (family members)
    sim.script("0355550701", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.1))
    op1, op2 = PageClient(product.url), PageClient(product.url)
    try:
        await op1.ready_as("op1", first)
        await op1.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        await op2.ready_as("op2", first)
        await op2.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets")
        assert len(_live_resident_calls(sim)) == 1
        later = await pool.fetchval(
            "select next_attempt_at > now() + interval '5 minutes' from campaign_target t "
            "join household h on h.id = t.household_id where h.household_no = 'H-B'"
        )
        assert later is True  # put back for a while, not excluded
    finally:
        await op1.close()
        await op2.close()


async def test_the_database_refuses_a_second_live_lease_for_a_household(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0355550702")
    other = await factory.campaign(pool, "nhi", "progressive", name="別キャンペーン")
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
        other,
        hid,
    )
    await pool.execute("update campaign_target set state = 'leased' where campaign_id = $1", w.campaign_id)
    with pytest.raises(asyncpg.UniqueViolationError):
        await pool.execute("update campaign_target set state = 'leased' where campaign_id = $1", other)


async def test_a_target_cannot_claim_another_department(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    hid = await factory.household(pool, w.campaign_id, "0355550703")
    tax_campaign = await factory.campaign(pool, "tax")
    with pytest.raises(asyncpg.ForeignKeyViolationError):
        await pool.execute(
            "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'tax')",
            tax_campaign,
            hid,
        )


async def test_two_dialer_processes_on_one_predictive_campaign_never_dial_a_household_twice(
    product: runtime.Running, settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, tmp_path: Path
) -> None:
    """Two dialers (each its own engine, pool and AMI link, as two processes would have) pace the
    same predictive campaign against one PBX, racing for the same households."""
    w = await factory.world(pool, mode="predictive")
    await factory.user(pool, "op2", "operator", "nhi", "1002")
    # 1 call in 50 brings a person: each dialer keeps 2 lines for its one operator.
    await factory.call_history(pool, w.campaign_id, w.operator.id, dialed=600, live=12)
    numbers = [f"03555510{i:02d}" for i in range(40)]
    for i, number in enumerate(numbers):
        await factory.household(pool, w.campaign_id, number, priority=i % 3)
        sim.script(number, Behaviour("busy", ring_s=0.1))  # busy: tried again only minutes later
    other_settings = replace(
        settings,
        var_dir=tmp_path / "second",
        dialplan=replace(settings.dialplan, ring_timeout_s=2),
    )
    (tmp_path / "second").mkdir()
    async with runtime.started(other_settings) as other:
        op1, op2 = PageClient(product.url), PageClient(other.url)
        try:
            await op1.ready_as("op1", w.campaign_id)
            await op2.ready_as("op2", w.campaign_id)
            await op1.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=30)
            await op2.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=30)
        finally:
            await op1.close()
            await op2.close()
        per_household = await pool.fetch(
            "select household_id, count(*) as n from attempt where channel_id like 'dlr-a%' group by 1"
        )
        assert len(per_household) == len(numbers)  # every household called ...
        assert {r["n"] for r in per_household} == {1}  # ... once
        labels = {"campaign": str(w.campaign_id)}
        first = product.metrics.registry.get_sample_value("dialer_calls_originated_total", labels)
        second = other.metrics.registry.get_sample_value("dialer_calls_originated_total", labels)
        assert first is not None
        assert second is not None
        assert (first + second, min(first, second) > 0) == (len(numbers), True)  # both dialled
