"""Calls the PBX fails at once (a misspelt trunk, a carrier down, an AMI user that may not
originate) stop the dialling for a while instead of running through the campaign, and do not use up
the households: against the simulated PBX and the embedded PostgreSQL, over real HTTP."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import asyncpg

from dialer import runtime
from dialer.config import Settings
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


async def test_an_originate_asterisk_refuses_ends_the_attempt_and_the_operator_goes_on(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """A trunk template without its technology ('{number}@trunk'): Asterisk answers the resident's
    Originate with Error (Invalid channel). The operator went on 発信中 for good and the engine's
    dial loop stopped for everyone (the end of the attempt waited for the operator's lock, held by
    the dialling itself: admin QA); a preview 発信 never answered."""
    w = await factory.world(pool)
    for i in range(7):
        await factory.household(pool, w.campaign_id, f"035555071{i}", no=f"R{i}")
    await factory.user(pool, "op2", "operator", "nhi", ext="1002")  # (a campaign with no list: open to all)
    wrong = replace(settings, dialplan=replace(settings.dialplan, trunk_template="{number}@trunk"))
    async with runtime.started(wrong) as running:
        op1, op2 = PageClient(running.url), PageClient(running.url)
        try:
            await op1.ready_as("op1", w.campaign_id)
            await op1.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.pbx_failing", within=20)
            await op2.ready_as("op2", w.campaign_id)  # the loop still serves others (held: nothing placed)
            await op2.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.pbx_failing", within=20)
            outcomes = [r["outcome"] for r in await pool.fetch("select outcome from attempt order by id")]
            assert outcomes == ["failed"] * 5
            _, metrics = await op1.get("/metrics")
            assert 'dialer_agents{state="dialing"} 0.0' in metrics
            placed = f'dialer_calls_originated_total{{campaign="{w.campaign_id}"}}'
            assert not [
                line for line in metrics.splitlines() if line.startswith(placed) and not line.endswith(" 0.0")
            ]
        finally:
            await op1.close()
            await op2.close()
    targets = await pool.fetch("select state, last_outcome from campaign_target where attempts > 0")
    assert {tuple(t) for t in targets} == {("pending", "failed")}  # to call again, not used up


async def test_an_ami_user_without_call_write_leaves_the_call_up_and_says_so(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Hangup refused (Permission denied: manager.conf write lacks `call`) was taken for a channel
    gone: the call was closed as lost and the next resident put into the same bridge, where two
    residents heard each other (admin QA). Now 切断 says the PBX refused, and the call stays."""
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550731", Behaviour("answer", ring_s=0.2, talk_s=2.0, amd_s=0.1)
    )
    await factory.household(pool, w.campaign_id, "0355550732", no="N2")
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record")
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    sim.denied.add("hangup")
    status, reply = await operator.post("/api/agent/hangup")
    assert (status, reply["error"]) == (409, "error.pbx_refused")
    await asyncio.sleep(0.5)
    row = await pool.fetchrow("select outcome, ended_at from attempt where id = $1", pop["attempt_id"])
    assert (row["outcome"], row["ended_at"]) == (None, None)  # still up, not taken for lost
    assert await pool.fetchval("select count(*) from attempt") == 1  # nobody else dialled into it
    ended = await operator.wait(lambda m: m["type"] == "call_ended")  # the resident hangs up (2 s)
    assert (ended["outcome"], ended["hangup_by"]) == ("connected", "resident")  # not the refused 切断


async def test_an_ami_user_without_originate_write_is_told_at_ready(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    sim.denied.add("originate")
    await operator.login("op1", factory.PASSWORD)
    status, reply = await operator.post("/api/agent/ready", {"campaign_id": w.campaign_id})
    assert (status, reply["error"]) == (409, "error.pbx_refused")  # not "the PBX cannot be reached"


async def test_a_preview_call_asterisk_refuses_answers_the_operator_and_shows_the_next(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """発信 on a preview record whose Originate Asterisk refused never answered (admin QA)."""
    w = await factory.world(pool, mode="preview")
    for i in range(2):
        await factory.household(pool, w.campaign_id, f"035555074{i}", no=f"V{i}", priority=i + 1)
    wrong = replace(settings, dialplan=replace(settings.dialplan, trunk_template="{number}@trunk"))
    async with runtime.started(wrong) as running:
        op = PageClient(running.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            await op.wait(lambda m: m["type"] == "record")
            op.forget()
            status, _ = await asyncio.wait_for(op.post("/api/agent/dial"), 10)
            assert status == 200
            ended = await op.wait(lambda m: m["type"] == "call_ended")
            assert ended["outcome"] == "failed"
            await op.wait(lambda m: m["type"] == "record")  # the next household, as after any failure
        finally:
            await op.close()


async def test_a_caller_asterisk_refuses_to_move_is_not_recorded_as_hanging_up(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """Redirect refused (no `call` write): the resident did not hang up; the PBX would not move them."""
    w = await open_line(product, sim, pool)
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait_state("ready")
    sim.denied.add("redirect")
    sim.call_in(LINE, "0355559991")
    ended = "select outcome, hangup_by from attempt where dial_mode = 'inbound' and ended_at is not null"
    for _ in range(100):
        if row := await pool.fetchrow(ended):
            break
        await asyncio.sleep(0.1)
    assert row is not None
    assert (row["outcome"], row["hangup_by"]) == ("dropped", "system")
