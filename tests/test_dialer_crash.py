"""A dialer dies mid-campaign (kill -9) and another one carries on (issue 5, fault injection).

The households the dead dialer held come back once it has not been seen alive for six
heartbeats, except while their call is still up at Asterisk; a disposition the operator saved
during the call still decides what happens to the household. Against the embedded PostgreSQL
and the simulated PBX on a real TCP port; the first dialer is a real process killed with SIGKILL.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.store import attempts, targets
from tests import dialer_process, factory
from tests.client import PageClient, fetched


# ---- a real process killed mid-call ---------------------------------------------------------
async def _killed_mid_call(
    settings: Settings, tmp_path: Path, campaign_id: int, saved: str | None = None
) -> dict[str, Any]:
    """A dialer in a process of its own: op1 is put through to a resident (and, with `saved`,
    records that outcome during the call); then the process is SIGKILLed, no clean-up of any
    kind. Returns the record pushed to op1's page."""
    proc, url = await dialer_process.spawn(settings, tmp_path / "first")
    try:
        op = PageClient(url)
        try:
            await op.ready_as("op1", campaign_id)
            pop = await op.wait(lambda m: m["type"] == "record")
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
            if saved is not None:
                await op.save(pop["attempt_id"], saved)
            return pop
        finally:
            await op.close()
    finally:
        proc.kill()
        await proc.wait()


async def test_a_dialer_killed_mid_call_loses_no_outcome_and_calls_nobody_twice(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, tmp_path: Path
) -> None:
    w = await factory.world(pool)
    first_hh = await factory.household(pool, w.campaign_id, "0355551601")
    second_hh = await factory.household(pool, w.campaign_id, "0355551602", unpaid=5_000)
    for number in ("0355551601", "0355551602"):
        sim.script(number, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))

    pop = await _killed_mid_call(settings, tmp_path, w.campaign_id, saved="refused")
    called = await pool.fetchval("select household_id from attempt where id = $1", pop["attempt_id"])
    assert called in (first_hh, second_hh)
    other = second_hh if called == first_hh else first_hh

    fast = dataclasses.replace(
        settings, heartbeat_s=0.5, dialplan=dataclasses.replace(settings.dialplan, ring_timeout_s=2)
    )
    async with runtime.started(fast) as second:
        # Past six missed heartbeats and several sweeps: the dead dialer's call is still up at
        # Asterisk, so its household stays taken and nobody dials it again.
        await asyncio.sleep(fast.dead_after_s + 2)
        assert (
            await pool.fetchval("select state from campaign_target where household_id = $1", called)
            == "leased"
        )
        assert await pool.fetchval("select ended_at from attempt where id = $1", pop["attempt_id"]) is None

        assert await sim.hangup_remote(f"dlr-a{pop['attempt_id']}")  # the resident hangs up
        # The call is closed as lost and the outcome saved during it applies: 拒否 finishes the household.
        assert await fetched(
            pool, "select state = 'done' from campaign_target where household_id = $1", called, within=15
        )
        row = await pool.fetchrow("select outcome, ended_at from attempt where id = $1", pop["attempt_id"])
        assert (row["outcome"], row["ended_at"] is not None) == ("lost", True)
        assert await pool.fetchval("select count(*) from disposition") == 1

        # The operator logs in to the new dialer (their phone, still in its bridge, is taken over:
        # paused) and gets the other household, not the first again.
        op = PageClient(second.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            nxt = await op.wait(lambda m: m["type"] == "record", within=15)
            assert nxt["attempt_id"] != pop["attempt_id"]
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        finally:
            await op.close()
    per_household = await pool.fetch("select household_id, count(*) as n from attempt group by household_id")
    assert {r["household_id"]: r["n"] for r in per_household} == {called: 1, other: 1}
    assert await pool.fetchval("select count(*) from dialer_process") == 0  # the second one left cleanly


async def test_a_dialer_restarted_mid_call_takes_the_operator_and_the_call_over(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, tmp_path: Path
) -> None:
    """The operator's page comes back to the restarted dialer while the resident is still on the
    line: the phone is not rung again, the call is followed from where it is, the operator hangs
    up through the new dialer and records the outcome; then works on."""
    w = await factory.world(pool)
    for number in ("0355551701", "0355551702"):
        await factory.household(pool, w.campaign_id, number)
        sim.script(number, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    pop = await _killed_mid_call(settings, tmp_path, w.campaign_id)
    attempt_id = pop["attempt_id"]
    # the dead dialer's writes of "answered" and "put through" never reached the database
    await pool.execute("update attempt set connected_at = null, answered_at = null where id = $1", attempt_id)
    sessions_rung = len(
        [a for a in sim.actions("Originate") if str(a.get("ChannelId", "")).startswith("dlr-s")]
    )

    async with runtime.started(dataclasses.replace(settings, heartbeat_s=0.5)) as second:
        # Restarted on this machine: the first one's pid no longer runs, so it is gone at once.
        owners = await pool.fetch("select owner from dialer_process")
        assert [r["owner"] for r in owners] == [second.engine.owner]
        op = PageClient(second.url)
        try:
            await op.open_as("op1")
            state = await op.wait(lambda m: m["type"] == "agent")
            assert (state["state"], state["attempt_id"], state["call_phase"]) == (
                "talking",
                attempt_id,
                "connected",
            )
            again = await op.wait(lambda m: m["type"] == "record")
            assert (again["attempt_id"], again["record"]["household_id"]) == (
                attempt_id,
                pop["record"]["household_id"],
            )
            owner = await pool.fetchval(
                "select lease_owner from campaign_target where household_id = $1",
                pop["record"]["household_id"],
            )
            assert owner == second.engine.owner  # the household is held by the new dialer now
            # found in its bridge: answered and put through, so an outcome that needs a person may
            # be saved now, during the call (it was refused: 応答のなかった通話)
            stamped = "select answered_at is not null and connected_at is not null from attempt where id = $1"
            for _ in range(100):
                if await pool.fetchval(stamped, attempt_id):
                    break
                await asyncio.sleep(0.05)
            assert await pool.fetchval(stamped, attempt_id)
            body = {
                "attempt_id": attempt_id,
                "token": str(uuid.uuid4()),
                "code": "refused",
                "then_pause": "1",
            }
            status, reply = await op.post("/api/dispositions", body)
            assert status == 200, reply
            ended = await op.hang_up()
            assert (ended["outcome"], ended["hangup_by"], ended["needs_disposition"]) == (
                "connected",
                "operator",
                True,
            )
            await op.wait_state("paused")
            assert (await op.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
            nxt = await op.wait(lambda m: m["type"] == "record" and m["attempt_id"] != attempt_id, within=15)
            assert nxt["record"]["household_id"] != pop["record"]["household_id"]
        finally:
            await op.close()
    rung = [a for a in sim.actions("Originate") if str(a.get("ChannelId", "")).startswith("dlr-s")]
    assert len(rung) == sessions_rung  # the phone was never rung again: its session was taken over
    row = await pool.fetchrow("select outcome, hangup_by from attempt where id = $1", attempt_id)
    assert (row["outcome"], row["hangup_by"]) == ("connected", "operator")
    state = await pool.fetchval(
        "select state from campaign_target where household_id = $1", pop["record"]["household_id"]
    )
    assert state == "done"  # 拒否 finishes the household


@pytest.mark.parametrize("stale", [False, True], ids=["no_other_call", "an_earlier_call_left_open"])
async def test_a_predictive_resident_put_through_before_the_dialer_wrote_to_whom_is_taken_over(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, tmp_path: Path, stale: bool
) -> None:
    """Predictive: the dialer Redirected the resident into op1's bridge and died before writing
    that the call was op1's. Asterisk still has them there: the restarted dialer gives op1 that
    call (their outcome can be recorded), and puts nobody else into the bridge meanwhile (QA:
    the call went unrecorded and the next resident joined the same conversation). Also when the
    database still has an earlier call of op1's open, long over at Asterisk (review)."""
    w = await factory.world(pool, mode="predictive")
    for number in ("0355552001", "0355552002"):
        await factory.household(pool, w.campaign_id, number)
        sim.script(number, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    pop = await _killed_mid_call(settings, tmp_path, w.campaign_id)
    attempt_id = pop["attempt_id"]
    # the dead dialer's write of whom it was given to (and of its milestones) never reached the database
    await pool.execute(
        "update attempt set operator_id = null, connected_at = null, answered_at = null where id = $1",
        attempt_id,
    )
    if stale:  # op1's, open in the database, gone at Asterisk; held by a dialer alive elsewhere (no sweep)
        await factory.household(pool, w.campaign_id, "0355552003")
        await pool.execute(
            "insert into dialer_process (owner, host, pid, link, seen_at) values ('elsewhere', 'h', 1, 'pbx9', now() + interval '1 hour')"
        )
        lease = await targets.lease_next(pool, w.campaign_id, "elsewhere", 600)
        assert lease is not None
        await attempts.create(pool, lease, operator_id=w.operator.id, dial_mode="predictive", link="pbx9")
    async with runtime.started(settings) as second:
        op = PageClient(second.url)
        try:
            await op.open_as("op1")
            state = await op.wait(lambda m: m["type"] == "agent")
            assert (state["state"], state["attempt_id"]) == ("talking", attempt_id)
            again = await op.wait(lambda m: m["type"] == "record")
            assert again["record"]["household_id"] == pop["record"]["household_id"]
            await op.hang_up()
            await op.save(attempt_id, "refused", then_pause="1")
            await op.wait_state("paused")
        finally:
            await op.close()
    row = await pool.fetchrow(
        "select operator_id, outcome, (select code from disposition where attempt_id = a.id) as code "
        "from attempt a where id = $1",
        attempt_id,
    )
    assert dict(row) == {"operator_id": w.operator.id, "outcome": "connected", "code": "refused"}
    assert (
        await pool.fetchval(
            "select count(*) from attempt where id <> $1 and connected_at is not null", attempt_id
        )
        == 0
    )


async def test_an_incoming_call_is_taken_over_too_and_the_operator_paused_after_it(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, tmp_path: Path
) -> None:
    """An inbound call has no campaign: after the taken-over call the operator is paused, so that
    Ready names a campaign again (never ready on nothing)."""
    w = await factory.world(pool)
    await pool.execute("update department set callback_number = '03-1234-0001' where id = 'nhi'")
    proc, url = await dialer_process.spawn(settings, tmp_path / "first")
    try:
        sim.core.globals["DIALER_AGI"] = f"127.0.0.1:{proc.agi_port}"  # type: ignore[attr-defined]
        op = PageClient(url)
        try:
            await op.ready_as("op1", w.campaign_id)
            await op.wait_state("ready")
            sim.call_in("0312340001", "0355551801")
            caller = await op.wait(lambda m: m["type"] == "caller", within=15)
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        finally:
            await op.close()
    finally:
        proc.kill()
        await proc.wait()
    async with runtime.started(settings) as second:
        op = PageClient(second.url)
        try:
            await op.open_as("op1")
            state = await op.wait(lambda m: m["type"] == "agent")
            assert (state["state"], state["attempt_id"]) == ("talking", caller["attempt_id"])
            await op.hang_up()
            await op.wait_state("wrap_up")
            await op.save(
                caller["attempt_id"], "refused"
            )  # (no household: a case for staff would be refused)
            await op.wait_state("paused")
        finally:
            await op.close()
    row = await pool.fetchrow("select dial_mode, outcome, hangup_by from attempt")
    assert dict(row) == {"dial_mode": "inbound", "outcome": "connected", "hangup_by": "operator"}


@pytest.mark.parametrize("third", [False, True], ids=["two_dialers", "a_third_alive"])
async def test_an_operator_on_a_killed_dialers_call_gets_no_second_session_before_it_is_taken_over(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx, tmp_path: Path, third: bool
) -> None:
    """Two dialers share the Asterisk; the one op1 is talking through is killed. Until the other
    takes it for dead, Ready there is refused: no second session rings a phone in use, no resident
    is called for an operator already talking to one. Then the call comes over by itself, also
    while a third dialer on the same Asterisk lives on (the session names the dialer it is of)."""
    w = await factory.world(pool)
    for number in ("0355551901", "0355551902"):
        await factory.household(pool, w.campaign_id, number)
        sim.script(number, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    async with contextlib.AsyncExitStack() as stack:
        if third:
            proc, _ = await dialer_process.spawn(settings, tmp_path / "third")
            stack.push_async_callback(proc.wait)
            stack.callback(proc.kill)
        second = await stack.enter_async_context(
            runtime.started(dataclasses.replace(settings, heartbeat_s=1.0))
        )
        pop = await _killed_mid_call(settings, tmp_path, w.campaign_id)  # the first beats every 1 s too
        sessions = [a for a in sim.actions("Originate") if str(a.get("ChannelId", "")).startswith("dlr-s")]
        op = PageClient(second.url)
        try:
            await op.open_as("op1")
            await op.wait_state("offline")  # the killed dialer still counts as alive: not taken over
            status, body = await op.post("/api/agent/ready", {"campaign_id": w.campaign_id})
            assert (status, body["error"]) == (409, "error.phone_elsewhere"), body
            state = await op.wait(
                lambda m: m["type"] == "agent" and m["state"] == "talking",
                within=second.settings.dead_after_s + 10,
            )
            assert (state["attempt_id"], state["call_phase"]) == (pop["attempt_id"], "connected")
            again = await op.wait(lambda m: m["type"] == "record")
            assert again["attempt_id"] == pop["attempt_id"]
            await op.hang_up()
            await op.save(pop["attempt_id"], "refused", then_pause="1")
            await op.wait_state("paused")
        finally:
            await op.close()
    rung = [a for a in sim.actions("Originate") if str(a.get("ChannelId", "")).startswith("dlr-s")]
    assert rung == sessions  # op1's phone was never rung a second time
    assert await pool.fetchval("select count(*) from attempt") == 1  # nobody called for op1 meanwhile


async def test_an_outcome_owed_when_the_dialer_stopped_during_wrap_up_is_asked_for_again(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The dialer is stopped (an update, Ctrl-C) while op1 is in wrap-up: the next one gives the
    page that call again, ended, with its record, so the outcome is recorded and nothing is lost."""
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0355552101")
    sim.script("0355552101", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    async with runtime.started(settings) as first:
        op = PageClient(first.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            pop = await op.wait(lambda m: m["type"] == "record")
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
            await op.hang_up()
            await op.wait_state("wrap_up")
        finally:
            await op.close()
    async with runtime.started(settings) as second:
        op = PageClient(second.url)
        try:
            await op.open_as("op1")
            again = await op.wait(lambda m: m["type"] == "record")
            assert (again["attempt_id"], again["record"]["household_id"]) == (pop["attempt_id"], hid)
            owed = await op.wait(lambda m: m["type"] == "call_ended")
            assert (owed["attempt_id"], owed["needs_disposition"]) == (pop["attempt_id"], True)
            status, body = await op.post("/api/agent/ready", {"campaign_id": w.campaign_id})
            assert (status, body["error"]) == (409, "error.outcome_owed")  # that call's outcome first
            await op.save(pop["attempt_id"], "refused")
            op.forget()
            await op.close()
            op = PageClient(second.url)  # once recorded, a page that comes back is not asked again
            await op.open_as("op1")
            await op.wait(
                lambda m: m["type"] == "agent"
            )  # paused: its phone, still in its bridge, taken over
            await asyncio.sleep(0.5)
            assert not [m for m in op.messages if m["type"] in ("record", "call_ended")]
        finally:
            await op.close()
    assert (
        await pool.fetchval("select code from disposition where attempt_id = $1", pop["attempt_id"])
        == "refused"
    )
