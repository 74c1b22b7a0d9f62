"""When things go wrong around a call: the operator's phone drops, the page closes, the PBX link
drops, the dialer restarts. Over real HTTP and WebSocket, the simulated PBX and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient, fetched, until


async def test_an_operator_whose_page_closed_is_paused(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    product.engine.page_grace_s = 0.3
    first = PageClient(product.url)
    await first.ready_as("op1", w.campaign_id)
    await first.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets")
    await first.close()  # the browser is closed while Ready: nobody would see a screen-pop
    await factory.household(pool, w.campaign_id, "0355550401")
    sim.script("0355550401", Behaviour("answer", ring_s=0.2))
    again = PageClient(product.url)
    try:
        await asyncio.sleep(0.6)
        await again.open_as("op1")
        state = await again.wait(lambda m: m["type"] == "agent")
        assert (state["state"], state["notice"]) == ("paused", "notice.page_closed")
        assert [a for a in sim.actions("Originate") if a["Context"] == "dialer-connect"] == []
    finally:
        await again.close()


async def test_phone_drops_while_ringing_the_call_is_cancelled_not_abandoned(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(pool, sim, "0355550501", Behaviour("answer", ring_s=5.0))
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "ringing")
    operator.forget()
    await sim.hangup_from_phone("1001")
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"]) == ("cancelled", "system")
    state = await operator.wait_state("offline")
    assert state["notice"] == "notice.phone_disconnected"
    assert [a for a in sim.actions("Hangup") if a["Channel"] == f"dlr-a{ended['attempt_id']}"]
    _, text = await operator.get("/metrics")
    assert f'dialer_calls_abandoned_total{{campaign="{w.campaign_id}"}}' not in text


async def test_phone_drops_during_detection_the_resident_hears_the_message(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550502", Behaviour("answer", ring_s=0.2, amd_s=1.0)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "answered")
    operator.forget()
    await sim.hangup_from_phone("1001")  # AMD is still listening: nobody will be in the bridge
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"], ended["needs_disposition"]) == (
        "abandoned",
        "system",
        False,
    )
    await operator.wait_state("offline")
    _, text = await operator.get("/metrics")
    assert f'dialer_calls_abandoned_total{{campaign="{w.campaign_id}"}} 1.0' in text
    target = await pool.fetchrow(
        "select state, next_attempt_at > now() + interval '71 hours' as later from campaign_target"
    )
    assert (target["state"], target["later"]) == ("pending", True)  # no repeat call within 72 h


async def test_phone_drops_mid_conversation_wrap_up_then_offline(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550503", Behaviour("answer", ring_s=0.2, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    await sim.hangup_from_phone("1001")
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"], ended["needs_disposition"]) == (
        "connected",
        "operator",
        True,
    )
    await operator.wait_state("wrap_up")
    operator.forget()
    status, _ = await operator.post(
        "/api/dispositions",
        {"attempt_id": ended["attempt_id"], "token": str(uuid.uuid4()), "code": "refused"},
    )
    assert status == 200
    state = await operator.wait_state("offline")  # not "ready": there is no phone to ring
    assert state["notice"] == "notice.phone_disconnected"
    await asyncio.sleep(1.5)
    assert len([a for a in sim.actions("Originate") if a["Context"] == "dialer-connect"]) == 1


async def test_a_disposition_sent_after_a_dialer_restart_is_stored(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, hid = await factory.world_with_callee(
        pool, sim, "0355550601", Behaviour("answer", ring_s=0.2, talk_s=0.5, amd_s=0.1)
    )
    async with runtime.started(settings) as first:
        op = PageClient(first.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            ended = await op.wait(lambda m: m["type"] == "call_ended")
            await op.wait_state("wrap_up")
        finally:
            await op.close()
    # The dialer stopped (or crashed) before the page sent the outcome; a new one starts.
    async with runtime.started(settings) as second:
        op = PageClient(second.url)
        try:
            assert await op.login("op1", factory.PASSWORD) == 200
            body = {
                "attempt_id": ended["attempt_id"],
                "token": str(uuid.uuid4()),
                "code": "installment",
                "note": "分納の相談を希望",
            }
            assert (await op.post("/api/dispositions", body))[0] == 200
            assert (await op.post("/api/dispositions", body))[1]["created"] is False
        finally:
            await op.close()
    disp = await pool.fetchrow("select code, operator_id from disposition")
    assert (disp["code"], disp["operator_id"]) == ("installment", w.operator.id)
    target = await pool.fetchrow(
        "select state, lease_owner from campaign_target where household_id = $1", hid
    )
    assert (target["state"], target["lease_owner"]) == ("done", None)


async def test_ready_pause_ready_while_the_phone_rings_waits_for_the_phone(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    sim.script("1001", Behaviour("answer", ring_s=2.0))  # the operator is slow to pick up the phone
    await factory.household(pool, w.campaign_id, "0355550901")
    sim.script("0355550901", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait_state("connecting")
    assert (await operator.post("/api/agent/pause"))[0] == 200
    await operator.wait_state("paused")
    operator.forget()
    assert (await operator.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
    first = await operator.wait(lambda m: m["type"] == "agent")
    assert first["state"] == "connecting"  # not "ready": the phone has not joined its bridge yet
    await operator.wait_state("ready", within=5)
    ended_or_connected = await operator.wait(
        lambda m: m["type"] == "call_ended" or (m["type"] == "agent" and m["call_phase"] == "connected")
    )
    assert ended_or_connected["type"] == "agent"  # the resident reached the operator, not the abandon message


async def test_a_failing_database_write_does_not_strand_the_operator(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550902", Behaviour("answer", ring_s=0.3, talk_s=0.6, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "ringing")
    await pool.execute("alter table attempt_event rename to attempt_event_away")  # every timeline write fails
    try:
        ended = await operator.wait(lambda m: m["type"] == "call_ended")
        await operator.wait_state("wrap_up")  # the operator moved on although nothing could be stored
    finally:
        await pool.execute("alter table attempt_event_away rename to attempt_event")
    body = {"attempt_id": ended["attempt_id"], "token": str(uuid.uuid4()), "code": "refused"}
    assert (await operator.post("/api/dispositions", body))[0] == 200
    await operator.wait_state("ready")
    # The writes that failed were kept and applied, in order, once the table was back.
    row = await pool.fetchrow(
        "select outcome, answered_at, ended_at from attempt where id = $1", ended["attempt_id"]
    )
    assert row["outcome"] == "connected"
    assert row["answered_at"] is not None
    assert row["ended_at"] is not None
    kinds = [
        r["kind"]
        for r in await pool.fetch(
            "select kind from attempt_event where attempt_id = $1 order by id", ended["attempt_id"]
        )
    ]
    assert kinds[-4:] == ["answered", "amd", "connected", "ended"]
    _, text = await operator.get("/metrics")
    assert "dialer_store_pending_writes 0.0" in text


async def test_two_flushes_at_once_run_each_held_write_once(product: runtime.Running) -> None:
    """The dialling loop (the database back?) and an operator's outcome both flush the held writes;
    at the same moment, each ran the first write and each took one off the queue: the second a
    write never run, or an empty queue (IndexError: the operator's save was a 500; seen in make test)."""
    flow = product.engine.flow
    ran: list[int] = []
    away = True

    def held(n: int) -> Callable[[], Awaitable[None]]:
        async def write() -> None:
            if away:
                raise OSError("the database is away")
            await asyncio.sleep(0.05)  # long enough for the other flush to start meanwhile
            ran.append(n)

        return write

    assert not await flow.store(held(1), "first")
    assert not await flow.store(held(2), "second")  # behind the first
    away = False
    assert await asyncio.gather(flow.flush_pending(), flow.flush_pending()) == [True, True]
    assert ran == [1, 2]
    assert flow.holding == 0


async def test_putting_the_phone_down_during_wrap_up_keeps_wrap_up(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550903", Behaviour("answer", ring_s=0.2, talk_s=0.5, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    await operator.wait_state("wrap_up")
    operator.forget()
    await sim.hangup_from_phone("1001")
    state = await operator.wait(lambda m: m["type"] == "agent")
    assert (state["state"], state["notice"]) == ("wrap_up", "notice.phone_disconnected")
    body = {"attempt_id": ended["attempt_id"], "token": str(uuid.uuid4()), "code": "refused"}
    assert (await operator.post("/api/dispositions", body))[0] == 200
    await operator.wait_state("offline")
    target = await pool.fetchrow("select state, lease_owner from campaign_target")
    assert (target["state"], target["lease_owner"]) == ("done", None)


async def test_a_disposition_saved_during_the_call_keeps_the_household_until_it_ends(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550904", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record")
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    body = {
        "attempt_id": pop["attempt_id"],
        "token": str(uuid.uuid4()),
        "code": "other_party",
    }  # keep calling
    assert (await operator.post("/api/dispositions", body))[0] == 200
    during = await pool.fetchrow("select state, lease_owner from campaign_target")
    assert during["state"] == "leased"  # the line is still up: nobody else may take this household
    assert during["lease_owner"] is not None
    assert (await operator.post("/api/agent/hangup"))[0] == 200
    await operator.wait(lambda m: m["type"] == "call_ended")
    after = await pool.fetchrow(
        "select t.state, t.last_outcome, t.next_attempt_at >= a.ended_at + interval '2 hours' as later"
        " from campaign_target t join attempt a on a.id = $1",
        pop["attempt_id"],
    )
    # 本人以外応答: the retry policy's 2 hours at the earliest, at another time of day
    assert (after["state"], after["last_outcome"], after["later"]) == ("pending", "other_party", True)


async def test_a_slow_write_at_the_end_of_a_long_ring_is_not_taken_for_a_stuck_operator(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The safety net frees an operator left dialling (over 10 s) on a call that no longer exists.
    A call whose end is still being written is not that: the operator is moved by the end itself,
    once the write is through (the net used to step in, logging an error for nothing)."""
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550481")
    sim.script("0355550481", Behaviour("busy", ring_s=1.0))
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait_state("dialing")
    dialling_since = time.monotonic()
    # the milestones that come while it rings are stored
    await fetched(pool, "select count(*) > 0 from attempt_event where kind = 'ringing'", within=5)
    blocker = await pool.acquire()
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("select id from attempt for no key update")  # the end's write waits
        await until(lambda: not [c for c in sim.live_channels() if c.uniqueid.startswith("dlr-a")], within=15)
        tracker = product.engine.flow.tracker
        assert tracker is not None
        await until(lambda: not tracker.calls, within=5)  # the call is over for the engine, its end unwritten
        # the watchdog looks every 5 s: one of its turns comes when the operator has been dialling
        # over 10 s (its limit) and the call is gone from the tracker
        await asyncio.sleep(dialling_since + 16.0 - time.monotonic())
        states = [m["state"] for m in operator.messages if m["type"] == "agent"]
        assert states[-1] == "dialing", states
        await tx.rollback()
    finally:
        await pool.release(blocker)
    await operator.wait_state("ready", within=10)
    # stored (a write that timed out meanwhile is retried, in order)
    assert await fetched(pool, "select outcome from attempt where outcome is not null", within=20) == "busy"


async def test_a_phone_that_cannot_be_reached_says_so_not_that_it_dropped(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx, caplog: Any
) -> None:
    """Asterisk QA: an unregistered phone gave 「電話機との接続が切れました」 though it never rang."""
    w = await factory.world(pool)
    sim.script("1001", Behaviour("congestion", ring_s=0))  # the operator's own phone: not reachable
    await operator.open_as("op1")
    assert (await operator.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
    state = await operator.wait(lambda m: m["type"] == "agent" and m["notice"] is not None)
    assert (state["state"], state["notice"]) == ("offline", "notice.phone_unreachable")
    assert any("session.phone_unreachable" in r.getMessage() for r in caplog.records)
