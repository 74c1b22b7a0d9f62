"""Calls a campaign must not place: outside its calling window, once a supervisor stopped it, or
without a caller ID. Over real HTTP/WebSocket with the simulated PBX and the embedded PostgreSQL."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import SimulatedPbx
from dialer.store import campaigns
from tests import factory
from tests.client import PageClient, until


@pytest.mark.parametrize("simulated", [False, True], ids=["real-callees", "demo"])
async def test_no_resident_is_called_outside_the_campaigns_window(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, simulated: bool
) -> None:
    """As with a real Asterisk and real residents; and in the demo (whose simulated callees may be
    called at any hour) once a campaign is given a window of its own, so a trainee sees it work."""
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550905")
    # The campaign opens at 9:30 on Tuesdays (the default would be 9:00; the floor 8:00).
    await pool.execute(
        """update campaign set calling_window = '{"tue": ["09:30-12:00"]}' where id = $1""", w.campaign_id
    )
    real = replace(settings, simulated_callees=simulated)
    async with runtime.started(real) as running:
        running.engine.dialing.clock = lambda: datetime.fromisoformat("2026-11-23T21:00:00+09:00")
        page = PageClient(running.url)
        try:
            await page.ready_as("op1", w.campaign_id)
            state = await page.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.outside_hours")
            assert state["state"] == "ready"
            await asyncio.sleep(1.5)
            assert [a for a in sim.actions("Originate") if a["Context"] == "dialer-connect"] == []
            running.engine.dialing.clock = lambda: datetime.fromisoformat("2026-11-24T09:29:00+09:00")
            running.engine.floor.wake.set()
            await asyncio.sleep(1.5)
            assert [a for a in sim.actions("Originate") if a["Context"] == "dialer-connect"] == []
            running.engine.dialing.clock = lambda: datetime.fromisoformat("2026-11-24T09:30:00+09:00")
            running.engine.floor.wake.set()
            await page.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "ringing")
        finally:
            await page.close()


async def test_a_campaign_stopped_by_a_supervisor_places_no_more_calls_at_once(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    async with runtime.started(settings) as running:
        page = PageClient(running.url)
        try:
            await page.ready_as("op1", w.campaign_id)
            await page.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets")
            # `dialer campaign set ID --status paused` while the operator waits, then a household arrives
            await campaigns.update(pool, w.campaign_id, {"status": "paused"})
            await factory.household(pool, w.campaign_id, "0355550906")
            running.engine.floor.wake.set()
            state = await page.wait(
                lambda m: m["type"] == "agent" and m["notice"] == "notice.campaign_stopped"
            )
            assert state["state"] == "ready"
            await asyncio.sleep(1.5)
            assert [a for a in sim.actions("Originate") if a["Context"] == "dialer-connect"] == []
            await campaigns.update(pool, w.campaign_id, {"status": "active"})
            running.engine.floor.wake.set()
            await page.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "ringing")
        finally:
            await page.close()


RESIDENT_CONTEXTS = ("dialer-connect", "dialer-predictive")


@pytest.mark.parametrize("mode", ["progressive", "predictive"])
async def test_an_active_campaign_without_a_caller_id_calls_nobody(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, mode: str
) -> None:
    """A campaign made active before a caller ID was required (or changed in SQL) is not dialled
    with a withheld number (非通知, which residents do not answer and cannot call back)."""
    w = await factory.world(pool, mode)
    await pool.execute("update campaign set caller_id = '' where id = $1", w.campaign_id)
    await factory.household(pool, w.campaign_id, "0355550907")
    async with runtime.started(settings) as running:
        page = PageClient(running.url)
        try:
            await page.ready_as("op1", w.campaign_id)
            state = await page.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_caller_id")
            assert state["state"] == "ready"
            await asyncio.sleep(1.5)
            assert [a for a in sim.actions("Originate") if a["Context"] in RESIDENT_CONTEXTS] == []
            await campaigns.update(pool, w.campaign_id, {"caller_id": "0312340001"})
            running.engine.floor.wake.set()
            await until(lambda: [a for a in sim.actions("Originate") if a["Context"] in RESIDENT_CONTEXTS])
        finally:
            await page.close()
