"""Two dialers on one database through a PostgreSQL outage (robustness QA). When it comes back,
neither takes the other for dead because neither could beat meanwhile; and a dialer killed during
the outage has the call ends it held on disk written, not its calls closed as `lost` (an abandoned
call would be missing from the 3 % figure, a no-answer retried as a technical failure). The
embedded PostgreSQL of the test's own, crashed with `pg_ctl -m immediate`; the simulated PBX."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import SimulatedPbx
from tests import dialer_process, factory
from tests.client import PageClient
from tests.test_database_faults import CrashablePostgres, _scene, crash_settings, pg  # noqa: F401 (fixtures)


async def test_a_dialer_alive_through_an_outage_is_not_taken_for_dead_when_it_ends(
    pg: CrashablePostgres,  # noqa: F811
    crash_settings: Settings,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    fast = replace(crash_settings, heartbeat_s=0.3)  # taken for dead after 1.8 s without a beat
    async with runtime.started(fast), runtime.started(fast):
        await asyncio.sleep(1.0)
        await pg.crash()
        await asyncio.sleep(3.0)  # longer than six beats
        caplog.clear()
        await pg.start()
        await asyncio.sleep(4.0)  # both back, beating, sweeping
        owners = await pg.query("select owner from dialer_process")
        assert len(owners) == 2
    gone = [r.getMessage() for r in caplog.records if "dialer_gone" in r.getMessage()]
    assert gone == []


async def test_call_ends_held_by_a_dialer_killed_in_an_outage_are_written_by_the_one_alive(
    pg: CrashablePostgres,  # noqa: F811
    sim: SimulatedPbx,
    crash_settings: Settings,  # noqa: F811
) -> None:
    w = await _scene(pg, sim, ["0355551501"])
    fast = replace(crash_settings, heartbeat_s=0.5)
    async with runtime.started(fast):  # the other dialer, on this machine and var dir
        proc, url = await dialer_process.spawn(fast, crash_settings.var_dir)
        try:
            op = PageClient(url)
            try:
                await op.ready_as("op1", w.campaign_id)
                pop = await op.wait(lambda m: m["type"] == "record")
                await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
                await pg.crash()
                assert (await op.post("/api/agent/hangup"))[0] == 200
                await op.wait(lambda m: m["type"] == "call_ended")
                await op.wait(lambda m: m == {"type": "database", "up": False})
            finally:
                await op.close()
        finally:
            proc.kill()  # dies with the call's end held on disk
            await proc.wait()
        await pg.start()
        query = "select outcome, hangup_by from attempt where id = $1"
        for _ in range(100):  # the one alive sweeps once the dead one's beats are old
            rows = await pg.query(query, pop["attempt_id"])
            if rows[0]["outcome"] is not None:
                break
            await asyncio.sleep(0.1)
        await asyncio.sleep(1.0)  # (and nothing changes it afterwards)
        rows = await pg.query(query, pop["attempt_id"])
        assert (rows[0]["outcome"], rows[0]["hangup_by"]) == ("connected", "operator")


async def test_a_call_closed_as_lost_elsewhere_takes_the_end_its_own_dialer_held(pool: asyncpg.Pool) -> None:
    """The dialer was on another machine (its disk not shared): its held end is written when it is
    started again, after the others closed the call as lost. What happened wins."""
    from dialer.store import attempts

    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355551502")
    attempt = await pool.fetchval(
        """insert into attempt (campaign_id, target_id, household_id, department_id, dial_mode, channel_id,
                                answered_at, connected_at)
           select campaign_id, id, household_id, department_id, 'progressive', 'dlr-a-x', now(), now()
           from campaign_target returning id"""
    )
    await attempts.finish(pool, attempt, outcome="lost", hangup_by=None, cause=None, amd_status=None)
    really = datetime.now(UTC) - timedelta(seconds=30)
    await attempts.finish(
        pool, attempt, outcome="connected", hangup_by="resident", cause=16, amd_status=None, at=really
    )
    row = await pool.fetchrow("select outcome, hangup_by, ended_at from attempt where id = $1", attempt)
    assert (row["outcome"], row["hangup_by"], row["ended_at"]) == ("connected", "resident", really)
    await attempts.finish(pool, attempt, outcome="lost", hangup_by=None, cause=None, amd_status=None)
    assert await pool.fetchval("select outcome from attempt where id = $1", attempt) == "connected"
