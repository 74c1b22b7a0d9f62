"""Predictive campaigns through the whole product: the pacer places calls for nobody in particular,
a person is Redirected to a ready operator's bridge, or to the abandon message when none is free;
machines are hung up on. Real HTTP/WebSocket, the simulated PBX on TCP, the embedded PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.store import pacing
from tests import factory
from tests.client import PageClient, fetched, until


async def _timeline(pool: asyncpg.Pool, attempt_id: int) -> list[str]:
    rows = await pool.fetch("select kind from attempt_event where attempt_id = $1 order by id", attempt_id)
    return [r["kind"] for r in rows]


async def test_a_person_is_given_to_the_ready_operator_with_the_record(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550801", name="予測 花子")
    sim.script("0355550801", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2))
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record")
    assert (pop["reason"], pop["record"]["name_kanji"]) == ("screen_pop", "予測 花子")
    attempt_id = pop["attempt_id"]
    await operator.wait(lambda m: m["type"] == "agent" and m["state"] == "talking")
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")

    originate = [a for a in sim.actions("Originate") if a["Context"] == "dialer-predictive"]
    assert len(originate) == 1
    assert originate[0]["Exten"] == "s"
    assert "DIALER_AMD=on" in originate[0]["Variable"]
    redirect = sim.actions("Redirect")
    assert [(r["Context"], r["Exten"]) for r in redirect] == [("dialer-join", "1001")]
    # the verdict is stored at once, not when the call ends: the pacer learns from it meanwhile
    assert await pool.fetchval("select amd_status from attempt where id = $1", attempt_id) == "HUMAN"

    status, reply = await operator.post(
        "/api/dispositions", {"attempt_id": attempt_id, "token": str(uuid.uuid4()), "code": "refused"}
    )
    assert status == 200, reply
    operator.forget()
    assert (await operator.post("/api/agent/hangup"))[0] == 200
    await operator.wait_state("ready")
    row = await pool.fetchrow("select operator_id, dial_mode, outcome from attempt where id = $1", attempt_id)
    assert dict(row) == {"operator_id": w.operator.id, "dial_mode": "predictive", "outcome": "connected"}
    assert await _timeline(pool, attempt_id) == [
        "originated", "channel", "ringing", "answered", "amd", "assigned", "connected", "ended"
    ]  # fmt: skip
    audit = await pool.fetch(
        "select remote_addr from audit_log where action = 'record.view' and user_id = $1", w.operator.id
    )
    assert [r["remote_addr"] for r in audit] == ["127.0.0.1"]  # where the page that showed it is


async def test_a_person_with_no_operator_free_hears_the_message_and_is_counted(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.user(pool, "op2", "operator", "nhi", "1002")
    await factory.household(pool, w.campaign_id, "0355550811", priority=1)
    await factory.household(pool, w.campaign_id, "0355550812", priority=2)
    # Both answer; by then one of the two operators who were ready has logged out (a pause would
    # wait for the call counting on them: test_a_pause_waits_for_the_predictive_call_ringing…).
    sim.script("0355550811", Behaviour("answer", ring_s=1.0, talk_s=None, amd_s=0.2))
    sim.script("0355550812", Behaviour("answer", ring_s=1.5, talk_s=None, amd_s=0.2))
    op1, op2 = PageClient(product.url), PageClient(product.url)
    try:
        await op1.ready_as("op1", w.campaign_id)
        await op1.wait_state("ready")
        await op2.ready_as("op2", w.campaign_id)
        await op2.wait_state("ready")
        await until(lambda: len(factory.predictive_originates(sim)) == 2)
        assert (await op2.post("/logout", {}))[0] == 302
        pop = await op1.wait(lambda m: m["type"] == "record")
        abandoned = await fetched(pool, "select id from attempt where outcome = 'abandoned'")
        assert pop["attempt_id"] != abandoned
        assert "abandoned" in await _timeline(pool, abandoned)  # the dialplan's UserEvent: message played
        contexts = sorted(r["Context"] for r in sim.actions("Redirect"))
        assert contexts == ["dialer-abandon", "dialer-join"]
        row = await pool.fetchrow("select operator_id, hangup_by from attempt where id = $1", abandoned)
        assert (row["operator_id"], row["hangup_by"]) == (None, "system")
        _, text = await op1.get("/metrics")
        assert f'dialer_calls_abandoned_total{{campaign="{w.campaign_id}"}} 1.0' in text
        # The pacer's next turns see the abandon: one in one live call in the last hour
        await _until_text(op1, f'dialer_abandon_ratio{{campaign="{w.campaign_id}",window="hour"}} 0.5')
        # Switched to progressive: no pacer decision is shown any more, but the rate stays true as
        # the calls age (not frozen at its last value, which would keep an alert firing): moved
        # two hours back they leave the hour, not the day; 25 hours back, the day too.
        await pool.execute("update campaign set dial_mode = 'progressive' where id = $1", w.campaign_id)
        await pool.execute(
            "update attempt set originated_at = originated_at - interval '2 hours',"
            " answered_at = answered_at - interval '2 hours'"
        )
        await _until_text(op1, f'dialer_abandon_ratio{{campaign="{w.campaign_id}",window="hour"}} 0.0')
        text = (await op1.get("/metrics"))[1]
        assert f'dialer_abandon_ratio{{campaign="{w.campaign_id}",window="day"}} 0.5' in text
        assert f'dialer_pacer_risk_allowed{{campaign="{w.campaign_id}"}}' not in text
        await pool.execute(
            "update attempt set originated_at = originated_at - interval '25 hours',"
            " answered_at = answered_at - interval '25 hours'"
        )
        await _until_text(op1, "dialer_abandon_ratio{campaign", absent=True)
        assert not [m for m in op2.messages if m["type"] == "record"]  # nothing shown to the one gone
    finally:
        await op1.close()
        await op2.close()


async def test_a_machine_is_hung_up_on_and_the_operator_keeps_waiting(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550821")
    sim.script("0355550821", Behaviour("machine", ring_s=0.2, amd_s=0.2))
    await pool.execute(
        "update campaign set machine_message = 'custom/nhi-call-back'"
    )  # left after the greeting
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=20)
    assert "DIALER_MACHINE_PROMPT=custom/nhi-call-back" in sim.actions("Originate")[-1]["Variable"]
    row = await pool.fetchrow("select outcome, operator_id, amd_status from attempt")
    assert dict(row) == {"outcome": "machine", "operator_id": None, "amd_status": "MACHINE"}
    assert sim.actions("Redirect") == []
    assert not [m for m in operator.messages if m["type"] == "record"]
    states = [m["state"] for m in operator.messages if m["type"] == "agent"]
    assert set(states[states.index("ready") :]) == {"ready"}  # never taken from waiting


async def test_a_paused_predictive_campaign_places_nothing(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550831")
    await pool.execute("update campaign set status = 'paused' where id = $1", w.campaign_id)
    status, body = await _ready(operator, w.campaign_id)
    assert (status, body["error"]) == (409, "error.campaign")
    await pool.execute("update campaign set status = 'active' where id = $1", w.campaign_id)
    assert (await operator.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
    await operator.wait_state("ready")
    await until(lambda: len(factory.predictive_originates(sim)) == 1)
    await pool.execute("update campaign set status = 'paused' where id = $1", w.campaign_id)
    await factory.household(pool, w.campaign_id, "0355550832")
    await operator.wait(
        lambda m: m["type"] == "agent" and m["notice"] == "notice.campaign_stopped", within=15
    )
    await asyncio.sleep(1.5)  # turns of the dialling loop
    assert len(factory.predictive_originates(sim)) == 1


@contextlib.asynccontextmanager
async def _ringing_for_op1(
    settings: Settings, sim: SimulatedPbx, w: factory.World
) -> AsyncIterator[PageClient]:
    """The product (rings of up to 10 s: turns of the dialling loop), op1 ready on the campaign and
    the pacer's first call ringing, counting on them: their page."""
    slow_ring = replace(settings, dialplan=replace(settings.dialplan, ring_timeout_s=10))
    async with runtime.started(slow_ring) as product:
        operator = PageClient(product.url)
        try:
            await operator.ready_as("op1", w.campaign_id)
            await until(lambda: len(factory.predictive_originates(sim)) == 1)
            yield operator
        finally:
            await operator.close()


async def test_switched_to_progressive_the_operator_waits_for_the_predictive_call_still_ringing(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The pacer's call rings, counting on the one ready operator, when a supervisor switches the
    campaign to progressive: no second call is placed for that operator meanwhile (before, one was,
    and the person answering the first was abandoned); once the first is over, progressive dials."""
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550841", priority=1)
    await factory.household(pool, w.campaign_id, "0355550842", priority=2)
    sim.script("0355550841", Behaviour("answer", ring_s=4.0, talk_s=None, amd_s=0.2))  # turns of the loop
    sim.script("0355550842", Behaviour("answer", ring_s=0.2, talk_s=None))
    async with _ringing_for_op1(settings, sim, w) as operator:
        await pool.execute("update campaign set dial_mode = 'progressive' where id = $1", w.campaign_id)
        pop = await operator.wait(lambda m: m["type"] == "record", within=15)  # the first call's person
        assert pop["reason"] == "screen_pop"
        assert [a["Context"] for a in sim.actions("Originate")] == ["dialer-agent", "dialer-predictive"]
        assert await pool.fetchval("select count(*) from attempt where outcome = 'abandoned'") == 0
        await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        status, reply = await operator.post(
            "/api/dispositions",
            {"attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "refused"},
        )
        assert status == 200, reply
        assert (await operator.post("/api/agent/hangup"))[0] == 200
        await until(lambda: "dialer-connect" in [a["Context"] for a in sim.actions("Originate")], within=15)


async def test_a_pause_waits_for_the_predictive_call_ringing_for_the_operator(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The pacer's call rings, counting on the one ready operator, when they press 休憩: the person
    who answers is put through to them (before, the pause was at once and the person heard the
    abandon message: QA saw a floor pausing for lunch take a campaign to 5.3 %); after the call,
    the pause. A pause with nothing ringing for them is at once."""
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550851", priority=1)
    sim.script("0355550851", Behaviour("answer", ring_s=3.0, talk_s=None, amd_s=0.2))
    async with _ringing_for_op1(settings, sim, w) as operator:
        assert (await operator.post("/api/agent/pause"))[0] == 200
        pending = await operator.wait(lambda m: m["type"] == "agent" and m["pause_after_call"])
        assert (pending["state"], pending["notice"]) == ("ready", "notice.pause_pending")
        pop = await operator.wait(lambda m: m["type"] == "record", within=15)  # the call's person
        assert pop["reason"] == "screen_pop"
        await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        assert await pool.fetchval("select count(*) from attempt where outcome = 'abandoned'") == 0
        assert len(factory.predictive_originates(sim)) == 1  # nothing more placed for them
        status, reply = await operator.post(
            "/api/dispositions",
            {"attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "refused"},
        )
        assert status == 200, reply
        assert (await operator.post("/api/agent/hangup"))[0] == 200
        await operator.wait_state("paused")  # the pause they asked for, after the call
        operator.forget()
        assert (await operator.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
        await operator.wait_state("ready")
        assert (await operator.post("/api/agent/pause"))[0] == 200  # nothing rings: at once
        await operator.wait_state("paused")


async def test_a_pause_waiting_for_a_call_that_brings_nobody_is_taken_when_it_ends(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The call counting on the operator ends busy: they are paused then, not left ready for the
    next person (review: the pause waited for ever in a predictive campaign); 待機 pressed again
    while it waits calls it off."""
    w = await factory.world(pool, mode="predictive")
    for n in (1, 2):
        await factory.household(pool, w.campaign_id, f"035555087{n}", priority=n)
        sim.script(f"035555087{n}", Behaviour("busy", ring_s=2.0))
    operator = PageClient(product.url)
    try:
        await operator.ready_as("op1", w.campaign_id)
        await until(lambda: len(factory.predictive_originates(sim)) == 1)
        assert (await operator.post("/api/agent/pause"))[0] == 200
        pending = await operator.wait(lambda m: m["type"] == "agent" and m["pause_after_call"])
        since = operator.messages.index(pending) + 1
        assert (await operator.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
        called_off = await operator.wait(lambda m: m["type"] == "agent", since=since)
        assert (called_off["state"], called_off["pause_after_call"], called_off["notice"]) == (
            "ready",
            False,
            None,
        )
        assert (await operator.post("/api/agent/pause"))[0] == 200  # asked again: waits again
        await operator.wait_state("paused", within=10)  # the busy call ended: paused
        assert len(factory.predictive_originates(sim)) == 1  # nothing more placed for them
    finally:
        await operator.close()


async def test_an_operator_taken_off_the_campaign_still_gets_the_call_ringing_for_them(
    settings: Settings, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """A supervisor takes the one ready operator off a predictive campaign while its call rings:
    the person who answers is put through to them, not left with the abandon message; nothing
    more is placed for them."""
    w = await factory.world(pool, mode="predictive")
    op2 = await factory.user(pool, "op2", "operator", "nhi", "1002")
    await factory.household(pool, w.campaign_id, "0355550861", priority=1)
    await factory.household(pool, w.campaign_id, "0355550862", priority=2)
    sim.script("0355550861", Behaviour("answer", ring_s=3.0, talk_s=None, amd_s=0.2))
    async with _ringing_for_op1(settings, sim, w) as operator:
        await pool.execute(
            "insert into campaign_operator (campaign_id, user_id, department_id) values ($1, $2, 'nhi')",
            w.campaign_id,
            op2.id,
        )  # only op2 from now on
        await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.not_assigned")
        pop = await operator.wait(lambda m: m["type"] == "record", within=15)
        assert pop["reason"] == "screen_pop"
        await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        assert await pool.fetchval("select count(*) from attempt where outcome = 'abandoned'") == 0
        assert len(factory.predictive_originates(sim)) == 1


async def _ready(client: PageClient, campaign_id: int) -> tuple[int, dict[str, object]]:
    await client.open_as("op1")
    await client.wait_state("offline")
    status, body = await client.post("/api/agent/ready", {"campaign_id": campaign_id})
    return status, body


async def _until_text(client: PageClient, text: str, within: float = 15.0, *, absent: bool = False) -> None:
    for _ in range(int(within / 0.2)):
        if (text in (await client.get("/metrics"))[1]) != absent:
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} {'still' if absent else 'not'} in /metrics")


@pytest.mark.parametrize(
    ("abandoned", "lines", "reason"),
    [
        # 1 in 10 calls brings a person: 4 lines for 2 ready operators keep the chance that a person
        # finds nobody free under 3 % (P(2 or more of 4) = 2.8 %; of 5 it would be 5.2 %).
        (0, 4, "risk"),
        # 3 abandons in the last hour spend its budget: progressive, one line per ready operator.
        (3, 2, "budget_spent"),
    ],
)
async def test_the_pacer_dials_ahead_of_free_operators_within_the_abandon_budget(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx, abandoned: int, lines: int, reason: str
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.user(pool, "op2", "operator", "nhi", "1002")
    await factory.call_history(pool, w.campaign_id, w.operator.id, dialed=120, live=12, abandoned=abandoned)
    for i in range(12):  # nobody answers: each rings until the 2-s timeout, then the next is dialled
        await factory.household(pool, w.campaign_id, f"03555509{i:02d}", priority=i)
    op1, op2 = PageClient(product.url), PageClient(product.url)
    try:
        await op1.ready_as("op1", w.campaign_id)
        await op2.ready_as("op2", w.campaign_id)
        await op2.wait_state("ready")
        most = 0
        for _ in range(60):  # 3 s
            most = max(most, len([c for c in sim.live_channels() if c.uniqueid.startswith("dlr-a")]))
            await asyncio.sleep(0.05)
        assert most == lines
        _, text = await op1.get("/metrics")
        mode = "predictive" if reason == "risk" else "progressive"
        assert (
            f'dialer_pacer_decisions_total{{campaign="{w.campaign_id}",mode="{mode}",reason="{reason}"}}'
            in text
        )
        assert not [m for m in op1.messages + op2.messages if m["type"] == "record"]
    finally:
        await op1.close()
        await op2.close()


async def test_the_pacer_learns_from_the_calls_oldest_first(pool: asyncpg.Pool) -> None:
    """Model.learn compares the latest calls with the rest: the store must hand them over in order."""
    w = await factory.world(pool, mode="predictive")
    await factory.call_history(pool, w.campaign_id, w.operator.id, dialed=60, live=12)  # the live ones first
    async with pool.acquire() as conn:
        dialed, handled = await pacing.history(conn, w.campaign_id)
    assert [d.live for d in dialed] == [True] * 12 + [False] * 48
    assert len(handled) == 12
    # A conversation whose end was not seen (lost while the link was down) tells no talk time.
    await pool.execute(
        "update attempt set outcome = 'lost' where id = (select max(id) from attempt where connected_at is not null)"
    )
    async with pool.acquire() as conn:
        _, handled = await pacing.history(conn, w.campaign_id)
    assert len(handled) == 11
