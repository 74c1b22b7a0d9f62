"""Residents calling in who wait for an operator, and the predictive pacer: the first operators
freed are the callers', so no campaign dials for them (pacer.share, campaigns/predictive.py)."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient, until
from tests.test_inbound_calls import LINE, _ready, open_line


@pytest.fixture
async def line(product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool) -> factory.World:
    return await open_line(product, sim, pool)


async def test_a_predictive_campaign_leaves_the_next_free_operator_to_a_waiting_caller(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """An operator wrapping up is about to be free, and the pacer would dial for them; while a
    resident calling in waits, that operator is theirs, and the campaign dials nothing."""
    await pool.execute("update campaign set dial_mode = 'predictive' where id = $1", line.campaign_id)
    # 1 in 10 answered after 60 s; wrap-ups of 20 s: an operator wrapping up is free before any
    # new call could be answered, so the pacer places one call for them (P(a person) 10 % > θ 3 %
    # stops it at one)
    await factory.call_history(pool, line.campaign_id, line.operator.id, live_ring_s=60.0, wrap_s=20.0)
    op = await _ready(product, "op1", line.campaign_id)
    try:
        sim.call_in(LINE, "0355550175")
        first = await op.wait(lambda m: m["type"] == "caller", within=15)
        second = sim.call_in(LINE, "0355550176")
        await until(lambda: second in product.engine.inbound.waiting, within=15)
        for i in range(6):  # nobody answers these
            await factory.household(pool, line.campaign_id, f"03555509{i:02d}", priority=i)
        await op.hang_up()
        await op.wait_state("wrap_up")
        await _dials_nothing(sim, seconds=3.0)
        op.forget()
        await op.save(first["attempt_id"], "refused")
        caller = await op.wait(lambda m: m["type"] == "caller", within=10)
        assert caller["attempt_id"] != first["attempt_id"]  # the waiting caller got the operator
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        assert not factory.predictive_originates(sim)
        await op.hang_up()
        await op.wait_state("wrap_up")
        # nobody waits now: the pacer dials for the operator wrapping up
        await until(lambda: len(factory.predictive_originates(sim)) == 1, within=5)
    finally:
        await op.close()


async def _two_campaigns_all_talking(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World, on_other: int
) -> tuple[int, list[PageClient], str]:
    """Two predictive campaigns of nhi: op1 on the first, `on_other` operators on the second, each
    talking to a resident who called in, one more caller waiting; six households to dial on each
    (nobody answers). Returns the second campaign, the operators' pages, the waiting caller."""
    sim.core.globals["DIALER_INBOUND_WAIT"] = "60"  # the caller waits the whole test
    await pool.execute("update campaign set dial_mode = 'predictive' where id = $1", line.campaign_id)
    other = await factory.campaign(pool, "nhi", "predictive", name="テスト催告 2")
    # long conversations: an operator talking is not about to be free; one wrapping up (20 s) is
    await factory.call_history(pool, line.campaign_id, line.operator.id, live_ring_s=60.0, talk_s=900.0)
    ops = [await _ready(product, "op1", line.campaign_id)]
    for n in range(2, 2 + on_other):
        user = await factory.user(pool, f"op{n}", "operator", "nhi", f"100{n}")
        if n == 2:
            await factory.call_history(pool, other, user.id, live_ring_s=60.0, talk_s=900.0)
        ops.append(await _ready(product, f"op{n}", other))
    for n in range(len(ops)):
        sim.call_in(LINE, f"035555018{n}")
    for op in ops:
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=15)
    waiting = sim.call_in(LINE, "0355550189")
    await until(lambda: waiting in product.engine.inbound.waiting, within=15)
    for campaign_id, prefix in ((line.campaign_id, "035555091"), (other, "035555092")):
        for i in range(6):
            await factory.household(pool, campaign_id, f"{prefix}{i}", priority=i)
    assert not factory.predictive_originates(sim)
    return other, ops, waiting


async def _dials_nothing(sim: SimulatedPbx, seconds: float) -> None:
    """No predictive call for `seconds` of dialling turns (checked every 0.1 s)."""
    for _ in range(round(seconds * 10)):
        await asyncio.sleep(0.1)
        assert not factory.predictive_originates(sim), "dialled for the operator the caller waits for"


def _dialling(sim: SimulatedPbx) -> set[int]:
    """The campaigns that placed predictive calls (each rings out in 2 s here, and the next follows)."""
    variables = [v for a in factory.predictive_originates(sim) for v in a["Variable"]]  # type: ignore[attr-defined]
    return {int(v.split("=")[1]) for v in variables if v.startswith("DIALER_CAMPAIGN=")}


async def test_one_waiting_caller_holds_back_one_operator_across_two_predictive_campaigns(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """An operator on each campaign wrapping up, one resident calling in waits: the caller takes
    one of the two operators, so one campaign dials for the other (not both, and not neither)."""
    _, ops, waiting = await _two_campaigns_all_talking(product, sim, pool, line, on_other=1)
    try:
        for op in ops:
            await op.hang_up()
            await op.wait_state("wrap_up")
        await until(lambda: _dialling(sim), within=5)
        await asyncio.sleep(2.0)  # a few dialling turns more
        assert len(_dialling(sim)) == 1
        assert waiting in product.engine.inbound.waiting
    finally:
        for op in ops:
            await op.close()


async def test_the_waiting_caller_holds_back_the_operator_freed_first_not_the_largest_campaign(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """op1 (first campaign) wraps up while the second campaign's two operators talk on: the caller
    will take op1, so the first campaign does not dial for op1, however few operators it has."""
    other, ops, waiting = await _two_campaigns_all_talking(product, sim, pool, line, on_other=2)
    try:
        await ops[0].hang_up()
        await ops[0].wait_state("wrap_up")
        await _dials_nothing(sim, seconds=3.0)
        # op2 wraps up after op1: op1 is still the caller's, the second campaign dials for op2
        await ops[1].hang_up()
        await ops[1].wait_state("wrap_up")
        await until(lambda: _dialling(sim), within=5)
        await asyncio.sleep(1.0)
        assert _dialling(sim) == {other}
        assert waiting in product.engine.inbound.waiting
    finally:
        for op in ops:
            await op.close()


async def test_a_caller_does_not_take_the_operator_a_ringing_predictive_call_counts_on(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """The pacer placed a call for the one ready operator; a resident calls in while it rings: the
    caller waits (taking the operator would leave the person who answers with nobody: abandoned),
    and is put through once the operator is free and no call counts on them."""
    await pool.execute("update campaign set dial_mode = 'predictive' where id = $1", line.campaign_id)
    await factory.household(pool, line.campaign_id, "0355550901", name="予測 太郎")
    # answered just before the test's 2-s ring timeout; the caller is waiting by then
    sim.script("0355550901", Behaviour("answer", ring_s=1.8, talk_s=None, amd_s=0.1))
    op = await _ready(product, "op1", line.campaign_id)
    try:
        await until(lambda: len(factory.predictive_originates(sim)) == 1, within=10)
        caller = sim.call_in(LINE, "0355550177")
        await until(lambda: caller in product.engine.inbound.waiting, within=1.5)
        pop = await op.wait(lambda m: m["type"] == "record" and m["reason"] == "screen_pop", within=15)
        assert pop["record"]["name_kanji"] == "予測 太郎"
        assert not await pool.fetchval("select count(*) from attempt where outcome = 'abandoned'")
        assert caller in product.engine.inbound.waiting  # waits for op1, who talks now
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        await op.hang_up()
        await op.wait_state("wrap_up")
        op.forget()
        await op.save(pop["attempt_id"], "refused")
        await op.wait(lambda m: m["type"] == "caller", within=10)  # nothing rings for op1 now
        assert caller not in product.engine.inbound.waiting
    finally:
        await op.close()


async def test_switched_to_progressive_a_caller_still_waits_for_the_operator_the_pacers_call_counts_on(
    settings: Settings, sim: SimulatedPbx, pool: asyncpg.Pool
) -> None:
    """As above, after a supervisor switched the campaign to progressive while the pacer's call
    rings: the caller still waits (before, only predictive campaigns held operators back, and the
    caller took the one the ringing call counted on: the person who answered was abandoned)."""
    slow_ring = replace(settings, dialplan=replace(settings.dialplan, ring_timeout_s=10))
    async with runtime.started(slow_ring) as product:
        line = await open_line(product, sim, pool)
        await pool.execute("update campaign set dial_mode = 'predictive' where id = $1", line.campaign_id)
        await factory.household(pool, line.campaign_id, "0355550902", name="予測 次郎")
        sim.script("0355550902", Behaviour("answer", ring_s=4.0, talk_s=None, amd_s=0.1))
        op = await _ready(product, "op1", line.campaign_id)
        try:
            await until(lambda: len(factory.predictive_originates(sim)) == 1, within=10)
            await pool.execute(
                "update campaign set dial_mode = 'progressive' where id = $1", line.campaign_id
            )
            slot = product.engine.floor.slots[line.operator.id]
            await until(
                lambda: slot.campaign is not None and slot.campaign.dial_mode == "progressive", within=3
            )
            caller = sim.call_in(LINE, "0355550178")
            await until(lambda: caller in product.engine.inbound.waiting, within=3)
            pop = await op.wait(lambda m: m["type"] == "record" and m["reason"] == "screen_pop", within=15)
            assert pop["record"]["name_kanji"] == "予測 次郎"
            assert not await pool.fetchval("select count(*) from attempt where outcome = 'abandoned'")
            assert caller in product.engine.inbound.waiting  # waits for op1, who talks now
        finally:
            await op.close()
