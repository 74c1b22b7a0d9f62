"""The AMI link drops, or goes half-open, around calls: pages are told, nothing is dialled meanwhile,
and what changed unseen (a phone put down, a resident hanging up) is found and closed on reconnect."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient, until


async def test_pages_are_told_when_the_pbx_link_drops_and_returns(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    await factory.world(pool)
    await operator.open_as("op1")
    await operator.wait(lambda m: m == {"type": "pbx", "up": True, "pbx": "pbx1"})
    operator.forget()
    await sim.drop_links()
    await operator.wait(lambda m: m == {"type": "pbx", "up": False, "pbx": "pbx1"})
    await operator.wait(lambda m: m == {"type": "pbx", "up": True, "pbx": "pbx1"})  # reconnected by itself
    status, body = await operator.get("/healthz")
    assert (status, '"pbx1": "up"' in body) == (200, True)


async def _half_open_then_back(sim: SimulatedPbx, page: PageClient, unseen: object) -> None:
    """Freeze the link, let something happen that AMI would have reported, then reconnect."""
    sim.freeze(True)
    await unseen  # type: ignore[misc]
    await page.wait(lambda m: m == {"type": "pbx", "up": False, "pbx": "pbx1"}, within=5)
    sim.freeze(False)
    await sim.drop_links()
    await page.wait(lambda m: m == {"type": "pbx", "up": True, "pbx": "pbx1"}, within=5)


async def test_a_phone_put_down_while_the_link_was_half_open_is_found(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait_state("ready")
    operator.forget()
    await _half_open_then_back(sim, operator, sim.hangup_from_phone("1001"))
    state = await operator.wait_state("offline", within=5)
    assert state["notice"] == "notice.phone_disconnected"
    await factory.household(pool, w.campaign_id, "0355550801")
    await asyncio.sleep(1.5)  # nothing is dialled for a phone that is gone
    assert [a for a in sim.actions("Originate") if a["Context"] == "dialer-connect"] == []


async def test_a_resident_who_hung_up_unseen_leaves_the_operator_in_wrap_up(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550802", Behaviour("answer", ring_s=0.2, talk_s=1.0, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    operator.forget()
    listed_before = len(sim.actions("CoreShowChannels"))  # one at login (a phone to take over?)
    await _half_open_then_back(sim, operator, asyncio.sleep(1.5))  # the resident hangs up meanwhile
    ended = await operator.wait(lambda m: m["type"] == "call_ended", within=5)
    assert (ended["outcome"], ended["needs_disposition"]) == ("lost", True)
    await operator.wait_state("wrap_up")
    body = {"attempt_id": ended["attempt_id"], "token": str(uuid.uuid4()), "code": "refused"}
    assert (await operator.post("/api/dispositions", body))[0] == 200
    await operator.wait_state("ready")
    # One CoreShowChannels after the reconnect told what was still up; no Getvar per channel.
    assert len(sim.actions("CoreShowChannels")) - listed_before == 1
    assert sim.actions("Getvar") == []


async def test_a_resident_who_answered_unseen_pops_up_on_reconnect(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, hid = await factory.world_with_callee(
        pool, sim, "0355550805", Behaviour("answer", ring_s=1.0, talk_s=None, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "ringing")
    operator.forget()
    # The resident answers and is put through to the operator while AMI reports nothing.
    await _half_open_then_back(sim, operator, asyncio.sleep(1.8))
    record = await operator.wait(lambda m: m["type"] == "record", within=5)
    assert record["record"]["household_id"] == hid
    state = await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    assert state["state"] == "talking"
    assert (await operator.post("/api/agent/hangup"))[0] == 200
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"], ended["needs_disposition"]) == (
        "connected",
        "operator",
        True,
    )


async def test_a_conversation_that_outlives_a_link_drop_goes_on(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550804", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    operator.forget()
    listed_before = len(sim.actions("CoreShowChannels"))
    await _half_open_then_back(sim, operator, asyncio.sleep(0.2))
    await until(lambda: len(sim.actions("CoreShowChannels")) == listed_before + 1)
    await asyncio.sleep(0.5)
    assert [m for m in operator.messages if m["type"] == "call_ended"] == []  # still talking
    state = await operator.wait(lambda m: m["type"] == "agent")
    assert (state["state"], state["call_phase"]) == ("talking", "connected")
    assert (await operator.post("/api/agent/hangup"))[0] == 200
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"]) == ("connected", "operator")


@pytest.fixture
async def patient(settings: Settings) -> AsyncIterator[runtime.Running]:
    """The product with a Ping deadline long enough that a short freeze keeps the link up."""
    assert settings.ami is not None
    ami = replace(settings.ami, ping_interval_s=30.0, ping_timeout_s=30.0)
    async with runtime.started(replace(settings, ami=ami)) as running:
        yield running


async def test_hanging_up_a_call_asterisk_no_longer_has_closes_it(
    patient: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550803", Behaviour("answer", ring_s=0.2, talk_s=0.5, amd_s=0.1)
    )
    page = PageClient(patient.url)
    try:
        await page.ready_as("op1", w.campaign_id)
        await page.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        sim.freeze(True)  # the resident hangs up now, and AMI's report of it is lost
        await asyncio.sleep(1.0)
        sim.freeze(False)
        page.forget()
        assert (await page.post("/api/agent/hangup"))[0] == 200
        ended = await page.wait(lambda m: m["type"] == "call_ended")
        assert (ended["outcome"], ended["needs_disposition"]) == ("lost", True)
        await page.wait_state("wrap_up")
        assert patient.link.up  # the link itself never dropped
    finally:
        await page.close()


async def test_each_deployment_sharing_an_asterisk_names_its_channels_with_its_own_prefix(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550804", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    own = replace(settings, dialplan=replace(settings.dialplan, channel_prefix="city2"))
    async with runtime.started(own) as running:
        page = PageClient(running.url)
        try:
            await page.ready_as("op1", w.campaign_id)
            pop = await page.wait(lambda m: m["type"] == "record")
            ids = [a["ChannelId"] for a in sim.actions("Originate")]
            assert ids[0].startswith("city2-s")  # the operator's session
            assert ids[1] == f"city2-a{pop['attempt_id']}"  # the resident's call
            stored = await pool.fetchval("select channel_id from attempt where id = $1", pop["attempt_id"])
            assert stored == ids[1]
        finally:
            await page.close()


async def test_a_conversation_ended_by_the_pbx_stopping_is_the_systems_hang_up(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    # The operator's leg ends first and the dialer hangs the resident up on the operator's
    # behalf; the report must still say that neither of them hung up (transcripts 10 and 10b).
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550805", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    await sim.restart(down_s=0.3)
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"]) == ("connected", "system")
    row = await pool.fetchrow("select outcome, hangup_by from attempt where id = $1", ended["attempt_id"])
    assert row is not None
    assert (row["outcome"], row["hangup_by"]) == ("connected", "system")
