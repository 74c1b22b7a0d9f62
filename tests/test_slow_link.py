"""Slow AMI links: the simulated PBX writes everything late (in order). A link slower than usual
but inside our Ping deadline works as a fast one; one slower than the deadline is taken for dead,
reconnected, and the calls it carried are reconciled, not lost and not dialled twice."""

from __future__ import annotations

import asyncio

import asyncpg

from dialer import runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.simpbx.probe import AmiProbe
from tests import factory
from tests.client import PageClient


async def test_the_simulated_pbx_delays_everything_in_order(sim: SimulatedPbx) -> None:
    probe = await AmiProbe.connect("127.0.0.1", sim.port)
    try:
        assert (await probe.login("dialer", "dialer-secret"))["Response"] == "Success"
        sim.set_latency(0.3)
        loop = asyncio.get_running_loop()
        sent = loop.time()
        reply = await probe.response(await probe.action("Ping"))
        assert reply["Response"] == "Success"
        assert loop.time() - sent >= 0.3  # the fault is really there
        sim.script("0355550901", Behaviour("busy", ring_s=0.1))
        await probe.action(
            "Originate", ("Channel", "PJSIP/0355550901@trunk"), ("Context", "dialer-hold"),
            ("Exten", "s"), ("ChannelId", "slow-1"), ("Async", "true"),
        )  # fmt: skip
        hangup = await probe.until(lambda m: m.is_event("Hangup") and m.get("Uniqueid") == "slow-1", within=5)
        mine = [m.get("Event") for m in probe.log if m.get("Uniqueid") == "slow-1"]
        assert mine[0] == "Newchannel"
        assert mine[-1] == "Hangup"
        assert hangup["Cause"] == "17"
    finally:
        await probe.close()


async def test_a_slow_link_inside_the_ping_deadline_carries_a_whole_call(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, hid = await factory.world_with_callee(
        pool, sim, "0355550902", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.1)
    )
    sim.set_latency(0.4)  # the product's Ping deadline is 1 s here
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record", within=15)
    assert pop["record"]["household_id"] == hid
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=10)
    ended = await operator.hang_up(within=10)
    assert (ended["outcome"], ended["hangup_by"]) == ("connected", "operator")
    assert not [m for m in operator.messages if m["type"] == "pbx" and not m["up"]]  # never taken for dead


async def test_a_link_slower_than_the_deadline_is_reconnected_and_the_call_goes_on(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550903", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await factory.household(pool, w.campaign_id, "0355550904")
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record", within=15)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=10)
    sim.set_latency(2.5)  # Ping answers come after our 1 s deadline: the link is taken for dead
    await operator.wait(lambda m: m["type"] == "pbx" and not m["up"], within=10)
    sim.set_latency(0.0)
    await operator.wait(lambda m: m["type"] == "pbx" and m["up"], within=15)
    await asyncio.sleep(1.0)  # reconciled after the reconnect: the conversation is still on
    assert not [m for m in operator.messages if m["type"] == "call_ended"]
    ended = await operator.hang_up(within=10)
    assert (ended["attempt_id"], ended["outcome"]) == (pop["attempt_id"], "connected")
    await operator.save(pop["attempt_id"], "refused", then_pause="1")
    await operator.wait_state("paused")
    counts = await pool.fetch("select household_id, count(*) as n from attempt group by household_id")
    assert [r["n"] for r in counts] == [1]  # one call, never placed again
