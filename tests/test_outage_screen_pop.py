"""A resident put through while PostgreSQL is down: the operator's screen pop could not be read
then, and is pushed once the database is back (robustness QA: the operator talked on with no name,
date of birth or address until they reloaded the page). A crashed embedded PostgreSQL of the
test's own, the simulated PBX, real HTTP and WebSocket."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests.client import PageClient
from tests.test_database_faults import CrashablePostgres, _scene, crash_settings, pg  # noqa: F401 (fixtures)


async def test_a_record_the_database_could_not_give_is_pushed_when_it_is_back(
    pg: CrashablePostgres,  # noqa: F811
    sim: SimulatedPbx,
    crash_settings: Settings,  # noqa: F811
) -> None:
    w = await _scene(pg, sim, ["0355551601"])
    sim.script("0355551601", Behaviour("answer", ring_s=3.0, talk_s=None, amd_s=0.1))  # time to crash it
    (household,) = await pg.query("select id from household")
    slow_ring = replace(crash_settings, dialplan=replace(crash_settings.dialplan, ring_timeout_s=15))
    async with runtime.started(slow_ring) as running:
        op = PageClient(running.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "ringing")
            await pg.crash()
            await op.wait(lambda m: m == {"type": "database", "up": False}, within=10)
            await op.wait(lambda m: m["type"] == "agent" and m["state"] == "talking", within=10)
            assert [m for m in op.messages if m["type"] == "record"] == []  # not to be had now
            await asyncio.sleep(0.5)
            await pg.start()
            pop = await op.wait(lambda m: m["type"] == "record", within=20)
            assert pop["record"]["household_id"] == household["id"]
        finally:
            await op.close()
