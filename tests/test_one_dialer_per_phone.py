"""Dialers sharing one Asterisk and one database never both drive an operator's phone (sql/0037):
two sessions to one phone put two residents through to it, and they heard each other (QA).
Against the embedded PostgreSQL and the simulated PBX; the killed dialer is a real process."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import asyncpg

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient
from tests.test_dialer_crash import _killed_mid_call


def _sessions(sim: SimulatedPbx, user_id: int) -> list[str]:
    return [
        str(a["ChannelId"]) for a in sim.actions("Originate")
        if str(a.get("ChannelId", "")).startswith(f"dlr-s{user_id}-")
    ]  # fmt: skip


async def test_ready_pressed_on_two_dialers_at_once_opens_one_session(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    async with runtime.started(settings) as a, runtime.started(settings) as b:
        on_a, on_b = PageClient(a.url), PageClient(b.url)
        try:
            await on_a.open_as("op1")
            await on_b.open_as("op1")
            replies = await asyncio.gather(
                on_a.post("/api/agent/ready", {"campaign_id": w.campaign_id}),
                on_b.post("/api/agent/ready", {"campaign_id": w.campaign_id}),
            )
            assert sorted(status for status, _ in replies) == [200, 409]
            assert [body["error"] for status, body in replies if status == 409] == ["error.phone_elsewhere"]
            await asyncio.sleep(0.5)
            assert len(_sessions(sim, w.operator.id)) == 1
        finally:
            await on_a.close()
            await on_b.close()


async def test_a_session_taken_over_from_a_dead_dialer_is_not_taken_again_by_a_third(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, tmp_path: Path
) -> None:
    """The first dialer is killed mid-call; the restarted one takes op1 and the call over. The
    session's ChannelId still names the dead dialer: a third must not take it over as well."""
    w = await factory.world(pool)
    for number in ("0355552001", "0355552002", "0355552003"):
        await factory.household(pool, w.campaign_id, number)
        sim.script(number, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    pop = await _killed_mid_call(settings, tmp_path, w.campaign_id)
    rung = _sessions(sim, w.operator.id)
    fast = dataclasses.replace(settings, heartbeat_s=0.5)
    async with runtime.started(fast) as second:
        op = PageClient(second.url)
        try:
            await op.open_as("op1")
            state = await op.wait(lambda m: m["type"] == "agent" and m["state"] == "talking")
            assert state["attempt_id"] == pop["attempt_id"]
            async with runtime.started(fast) as third:
                elsewhere = PageClient(third.url)
                try:
                    await elsewhere.open_as("op1")
                    status, body = await elsewhere.post("/api/agent/ready", {"campaign_id": w.campaign_id})
                    assert (status, body["error"]) == (409, "error.phone_elsewhere"), body
                    await asyncio.sleep(1.0)  # the third's sweeps do not take it either
                    assert not [m for m in elsewhere.messages if m["type"] == "record"]
                finally:
                    await elsewhere.close()
            await op.hang_up()
            await op.save(pop["attempt_id"], "refused", then_pause="1")
            await op.wait_state("paused")
        finally:
            await op.close()
    assert _sessions(sim, w.operator.id) == rung  # op1's phone was never rung again
    assert await pool.fetchval("select count(*) from attempt") == 1  # nobody else put through to op1


async def test_a_claim_that_outlived_its_session_is_taken_once_a_minute_old(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The release failed (the database away at the logout): a live dialer still claims op1's
    phone, though Asterisk has no session of it. Ready takes it, unless it was claimed just now
    (its session may be ringing, not yet at Asterisk)."""
    w = await factory.world(pool)
    await pool.execute(
        "insert into dialer_process (owner, host, pid, link) values ('dialer-elsewhere-1-0badc0de', 'elsewhere', 1, 'pbx1')"
    )
    await pool.execute(
        "insert into operator_phone (user_id, owner) values ($1, 'dialer-elsewhere-1-0badc0de')",
        w.operator.id,
    )
    op = PageClient(product.url)
    try:
        await op.open_as("op1")
        status, body = await op.post("/api/agent/ready", {"campaign_id": w.campaign_id})
        assert (status, body["error"]) == (409, "error.phone_elsewhere")  # claimed just now
        await pool.execute("update operator_phone set since = now() - interval '2 minutes'")
        assert (await op.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
        assert await pool.fetchval("select owner from operator_phone") == product.engine.owner
        assert len(_sessions(sim, w.operator.id)) == 1
    finally:
        await op.close()
