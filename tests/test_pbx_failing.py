"""Calls the PBX fails at once (a misspelt trunk, a carrier down, an AMI user that may not
originate) stop the dialling for a while instead of running through the campaign, and do not use up
the households: against the simulated PBX and the embedded PostgreSQL, over real HTTP."""

from __future__ import annotations

import asyncio

import asyncpg

from dialer import runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient
from tests.test_inbound_calls import LINE, open_line


async def test_calls_failing_at_once_hold_the_dialling_and_leave_the_households_to_call(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    await _failing_households(pool, sim, w.campaign_id, 8, "03555504", "F")
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.pbx_failing", within=20)
    await asyncio.sleep(1.0)  # and nothing more is placed while the hold lasts (30 s)
    outcomes = [r["outcome"] for r in await pool.fetch("select outcome from attempt order by id")]
    assert outcomes == ["congestion"] * 5
    targets = await pool.fetch("select state, last_outcome from campaign_target where attempts > 0")
    assert {tuple(t) for t in targets} == {("pending", "congestion")}  # to call again, not used up
    _, metrics = await operator.get("/metrics")
    assert 'dialer_calls_failing{link="' in metrics
    assert next(line for line in metrics.splitlines() if line.startswith("dialer_calls_failing{")).endswith(
        " 1.0"
    )


async def test_the_pacer_holds_its_calls_too(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="predictive")
    await _failing_households(pool, sim, w.campaign_id, 20, "03555505", "P")
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.pbx_failing", within=20)
    placed = await pool.fetchval("select count(*) from attempt")
    await asyncio.sleep(1.5)
    assert await pool.fetchval("select count(*) from attempt") == placed < 20  # held, not run through


async def test_a_residents_call_in_does_not_end_the_hold(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """A misspelt outbound trunk while the inbound line works: each resident's call in used to clear
    the count, and the operator burned five more households after it."""
    w = await open_line(product, sim, pool)
    await _failing_households(pool, sim, w.campaign_id, 12, "03555506", "I")
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.pbx_failing", within=20)
    uid = sim.call_in(LINE, "0355559990")
    caller = await operator.wait(lambda m: m["type"] == "caller", within=15)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    assert await sim.hangup_remote(uid)
    await operator.wait(lambda m: m["type"] == "call_ended")
    await operator.save(caller["attempt_id"], "account_transfer")  # ready again: still held
    await operator.wait(lambda m: m["type"] == "agent" and m["state"] == "ready")
    await asyncio.sleep(1.0)
    assert await pool.fetchval("select count(*) from attempt where dial_mode <> 'inbound'") == 5


async def _failing_households(
    pool: asyncpg.Pool, sim: SimulatedPbx, campaign_id: int, n: int, number_prefix: str, no_prefix: str
) -> None:
    """n households on the campaign's list whose calls the PBX fails at once (congestion)."""
    for i in range(n):
        number = f"{number_prefix}{i:02d}"
        await factory.household(pool, campaign_id, number, no=f"{no_prefix}{i}", priority=i + 1)
        sim.script(number, Behaviour("congestion", ring_s=0))
