"""The whole pipe at the level a user sees it, over real HTTP and WebSocket, with the simulated PBX
on a real TCP port and a real PostgreSQL: ready -> originate -> screen-pop -> disposition -> row."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, timedelta

import asyncpg
import pytest

from campaigns import retry, windows
from dialer import runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from tests import factory
from tests.client import PageClient, until


async def _timeline(pool: asyncpg.Pool, attempt_id: int) -> list[str]:
    rows = await pool.fetch("select kind from attempt_event where attempt_id = $1 order by id", attempt_id)
    return [r["kind"] for r in rows]


async def test_progressive_answer_screen_pop_disposition_and_operator_hangup(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, hid = await factory.world_with_callee(
        pool, sim, "0355550123", Behaviour("answer", ring_s=0.3, talk_s=None, amd_s=0.2), name="見本 太郎"
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait_state("ready")  # the operator's phone session joined its bridge
    pop = await operator.wait(lambda m: m["type"] == "record")
    assert pop["reason"] == "screen_pop"
    assert pop["record"]["name_kanji"] == "見本 太郎"
    assert pop["record"]["display"]["phone"] == "03-5555-0123"
    attempt_id = pop["attempt_id"]
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")

    body = {
        "attempt_id": attempt_id,
        "token": str(uuid.uuid4()),
        "code": "promise",
        "promise_date": "2099-01-01",
        "promise_amount": "12,000",
        "note": "月末に払うとのこと",
    }
    status, reply = await operator.post("/api/dispositions", body)
    assert (status, reply["error"]) == (422, "error.invalid")  # more than a year ahead
    assert reply["fields"] == {"promise_date": "error.promise_date_range"}

    today = await pool.fetchval("select (now() at time zone 'Asia/Tokyo')::date")
    body["promise_date"] = today.isoformat()
    status, reply = await operator.post("/api/dispositions", body)
    assert status == 200, reply
    assert reply["created"] is True
    status, reply = await operator.post("/api/dispositions", body)  # the page resends: stored once
    assert (status, reply["created"]) == (200, False)

    operator.forget()
    status, _ = await operator.post("/api/agent/hangup")
    assert status == 200
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"]) == ("connected", "operator")
    await operator.wait_state("ready")  # saved during the call: no wrap-up

    row = await pool.fetchrow("select * from attempt where id = $1", attempt_id)
    assert (row["household_id"], row["outcome"], row["hangup_by"]) == (hid, "connected", "operator")
    assert row["ringing_at"] <= row["answered_at"] <= row["connected_at"] <= row["ended_at"]
    assert 0.25 <= row["ring_s"] < 2  # the resident let it ring 0.3 s
    assert row["talk_s"] > 0
    assert row["channel_id"] == f"dlr-a{attempt_id}"
    assert await _timeline(pool, attempt_id) == [
        "originated",
        "channel",
        "ringing",
        "answered",
        "amd",
        "connected",
        "ended",
    ]
    disp = await pool.fetchrow("select * from disposition where attempt_id = $1", attempt_id)
    assert (disp["code"], disp["promise_amount_yen"], disp["note"]) == (
        "promise",
        12000,
        "月末に払うとのこと",
    )
    assert disp["promise_date"] == today
    target = await pool.fetchrow(
        "select state, last_outcome, next_attempt_at, preferred_operator_id from campaign_target where household_id = $1",
        hid,
    )
    # checked on after the promised day (and 3 days' grace for the payment to be reported), by the same operator
    assert (target["state"], target["last_outcome"], target["preferred_operator_id"]) == (
        "pending",
        "promise",
        w.operator.id,
    )
    assert target["next_attempt_at"].astimezone(windows.TOKYO).date() >= today + timedelta(days=4)
    views = await pool.fetchval(
        "select count(*) from audit_log where action = 'record.view' and object_id = $1", str(hid)
    )
    assert views >= 1
    saved = await pool.fetchval("select remote_addr from audit_log where action = 'disposition.save'")
    assert saved == "127.0.0.1"  # from where (the operator's page)
    originate = sim.actions("Originate")[-1]
    assert originate["ChannelId"] == f"dlr-a{attempt_id}"
    assert f"DIALER_ATTEMPT={attempt_id}" in originate["Variable"]


async def test_resident_hangs_up_then_wrap_up_then_ready(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550124", Behaviour("answer", ring_s=0.2, talk_s=0.8, amd_s=0.2)
    )
    await operator.ready_as("op1", w.campaign_id)
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert (ended["outcome"], ended["hangup_by"], ended["needs_disposition"]) == (
        "connected",
        "resident",
        True,
    )
    await operator.wait_state("wrap_up")
    operator.forget()
    status, _ = await operator.post(
        "/api/dispositions",
        {
            "attempt_id": ended["attempt_id"],
            "token": str(uuid.uuid4()),
            "code": "callback",
            "callback_at": "2099-01-01T10:00",
            "note": "",
        },
    )
    assert status == 422
    status, reply = await operator.post(
        "/api/dispositions",
        {"attempt_id": ended["attempt_id"], "token": str(uuid.uuid4()), "code": "refused", "then_pause": "1"},
    )
    assert status == 200, reply
    await operator.wait_state("paused")


async def test_a_pause_asked_for_with_an_outcome_saved_during_the_call_is_shown_at_once(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """保存後に休憩 with an outcome saved mid-call: the page (and the wallboard) says at once that a
    pause comes after the call, as pressing 休憩 does (QA: nothing was shown until the hang-up)."""
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550127", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record")
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    operator.forget()
    body = {"attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "refused", "then_pause": "1"}
    status, reply = await operator.post("/api/dispositions", body)
    assert status == 200, reply
    state = await operator.wait(lambda m: m["type"] == "agent" and m["pause_after_call"], within=3)
    assert state["state"] == "talking"
    await operator.hang_up()
    await operator.wait_state("paused")


async def test_a_hang_up_pressed_for_a_call_just_ended_does_not_cut_off_the_next(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """QA: 切断 pressed as a machine ended the call cancelled the next call 0.8 s after it was placed."""
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550125", Behaviour("machine", ring_s=0.2, amd_s=0.2), priority=1
    )
    await factory.household(pool, w.campaign_id, "0355550126", priority=2)
    sim.script("0355550126", Behaviour("answer", ring_s=1.5, talk_s=None, amd_s=0.2))
    await operator.ready_as("op1", w.campaign_id)
    first = await operator.wait(lambda m: m["type"] == "call_ended")
    assert first["outcome"] == "machine"
    # the operator's phone, the first call, then the next one, ringing
    await until(lambda: len(sim.actions("Originate")) == 3)
    status, reply = await operator.post("/api/agent/hangup", {"attempt_id": first["attempt_id"]})
    assert (status, reply["error"]) == (409, "error.no_call")
    # put through, not cancelled
    pop = await operator.wait(lambda m: m["type"] == "record" and m["attempt_id"] != first["attempt_id"], 15)
    assert await pool.fetchval("select count(*) from attempt where outcome = 'cancelled'") == 0
    status, reply = await operator.post("/api/agent/hangup", {"attempt_id": "1; drop"})
    assert status == 400
    status, _ = await operator.post("/api/agent/hangup", {"attempt_id": pop["attempt_id"]})
    assert status == 200


async def test_unanswered_calls_are_recorded_without_the_operator(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool)
    cases = {
        "0355550201": ("busy", "busy"),
        "0355550202": ("noanswer", "no_answer"),
        "0355550203": ("congestion", "congestion"),
        "0355550204": ("machine", "machine"),
    }
    for i, (number, (behaviour, _)) in enumerate(cases.items()):
        await factory.household(pool, w.campaign_id, number, priority=i)
        sim.script(number, Behaviour(behaviour, ring_s=0.2, amd_s=0.2))  # type: ignore[arg-type]
    await operator.ready_as("op1", w.campaign_id)
    # Told once every household has been tried; each attempt is stored before the next is dialled.
    await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=20)
    rows = await pool.fetch(
        """select p.number, a.outcome, a.hangup_cause, a.talk_s, t.state, t.next_attempt_at > now() as later,
                  t.next_attempt_at, a.originated_at
           from attempt a join phone p on p.id = a.phone_id join campaign_target t on t.id = a.target_id"""
    )
    got = {r["number"]: r["outcome"] for r in rows}
    assert got == {n: outcome for n, (_, outcome) in cases.items()}
    assert all(r["state"] == "pending" and r["later"] for r in rows)
    # each comes back under the retry policy, inside the campaign's (default) calling window
    again = {r["outcome"]: r["next_attempt_at"] for r in rows}
    called = {r["outcome"]: r["originated_at"] for r in rows}
    assert all(windows.DEFAULT.is_open(at) for at in again.values()), again
    assert again["no_answer"] - called["no_answer"] >= timedelta(hours=3)
    # busy: ten minutes later, or when the window next opens (the call itself took under a minute)
    soonest = called["busy"] + retry.DEFAULT.busy_after
    first, last = (
        windows.DEFAULT.next_open(soonest),
        windows.DEFAULT.next_open(soonest + timedelta(minutes=1)),
    )
    assert first is not None
    assert last is not None
    assert first <= again["busy"] <= last
    assert again["busy"] <= again["no_answer"]
    assert [r["talk_s"] for r in rows if r["outcome"] != "machine"] == [None, None, None]
    assert await pool.fetchval("select count(*) from disposition") == 0
    _, text = await operator.get("/metrics")
    assert f'dialer_calls_originated_total{{campaign="{w.campaign_id}"}} 4.0' in text
    assert f'dialer_call_outcomes_total{{campaign="{w.campaign_id}",outcome="busy"}} 1.0' in text
    assert 'dialer_agents{state="ready"} 1.0' in text
    assert 'dialer_ami_link_up{link="pbx1"} 1.0' in text


async def test_a_call_a_machine_answered_takes_no_outcome_that_needs_a_person(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550205", Behaviour("machine", ring_s=0.2, amd_s=0.2)
    )
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=20)
    row = await pool.fetchrow("select id, outcome, amd_status, operator_id from attempt")
    assert (row["outcome"], row["amd_status"], row["operator_id"]) == ("machine", "MACHINE", w.operator.id)
    for code, extra in [
        ("other_party", {}),  # 本人以外応答: nobody answered but a machine
        ("refused", {}),
        (
            "promise",
            {"promise_date": (date.today() + timedelta(days=30)).isoformat(), "promise_amount": "1000"},
        ),
    ]:
        body = {"attempt_id": row["id"], "token": str(uuid.uuid4()), "code": code, **extra}
        status, reply = await operator.post("/api/dispositions", body)
        assert (status, reply["error"]) == (409, "error.machine_answered"), code
    assert await pool.fetchval("select count(*) from disposition") == 0
    assert await pool.fetchval("select count(*) from contact_history") == 0
    # what a machine's greeting can tell: the number is someone else's
    await operator.save(row["id"], "wrong_number")
    assert (
        await pool.fetchval("select code from disposition where attempt_id = $1", row["id"]) == "wrong_number"
    )


async def test_an_outcome_that_needs_a_person_waits_until_the_call_is_put_through(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    """The record shows on answer, while answering-machine detection still listens: a promise
    typed that fast is refused (a machine may have answered), 番号誤り is not."""
    w, _ = await factory.world_with_callee(
        pool, sim, "0355550206", Behaviour("machine", ring_s=0.2, amd_s=3.0)
    )
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record")
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "answered")
    promise = {"promise_date": (date.today() + timedelta(days=30)).isoformat(), "promise_amount": "1000"}
    body = {"attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "promise", **promise}
    status, reply = await operator.post("/api/dispositions", body)
    assert (status, reply["error"]) == (409, "error.not_put_through")
    assert await pool.fetchval("select count(*) from promise") == 0
    await operator.save(pop["attempt_id"], "wrong_number")  # what a greeting can tell: allowed at once
    await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=20)
    row = await pool.fetchrow("select outcome, (select code from disposition) as code from attempt")
    assert (row["outcome"], row["code"]) == ("machine", "wrong_number")


async def test_preview_shows_the_record_before_the_operator_dials(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w = await factory.world(pool, mode="preview")
    await factory.household(pool, w.campaign_id, "0355550301", name="先頭 一郎", priority=1)
    await factory.household(pool, w.campaign_id, "0355550302", name="次点 二郎", priority=2)
    sim.script("0355550302", Behaviour("answer", ring_s=0.2, talk_s=0.5))
    await operator.ready_as("op1", w.campaign_id)
    first = await operator.wait(lambda m: m["type"] == "record")
    assert (first["reason"], first["record"]["name_kanji"]) == ("preview", "先頭 一郎")
    assert sim.actions("Originate")[-1]["Context"] == "dialer-agent"  # only the phone session so far
    operator.forget()
    assert (await operator.post("/api/agent/skip"))[0] == 200
    second = await operator.wait(lambda m: m["type"] == "record")
    assert second["record"]["name_kanji"] == "次点 二郎"
    assert (await operator.post("/api/agent/dial"))[0] == 200
    ended = await operator.wait(lambda m: m["type"] == "call_ended")
    assert ended["outcome"] == "connected"
    originate = sim.actions("Originate")[-1]
    assert "DIALER_AMD=off" in originate["Variable"]


@pytest.mark.parametrize("change", ["paused", "window_closed"])
async def test_a_preview_is_not_dialled_once_its_campaign_is_paused_or_its_window_closed(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx, change: str
) -> None:
    """The record was on screen when the supervisor paused the campaign (or closed today's window):
    発信 then places no call. Before, the campaign as read when the record was shown was dialled."""
    w = await factory.world(pool, mode="preview")
    hid = await factory.household(pool, w.campaign_id, "0355550311", name="先頭 一郎")
    sim.script("0355550311", Behaviour("answer", ring_s=0.2, talk_s=0.5))
    await operator.ready_as("op1", w.campaign_id)
    await operator.wait(lambda m: m["type"] == "record")
    if change == "paused":
        await pool.execute("update campaign set status = 'paused' where id = $1", w.campaign_id)
    else:
        closed = {day: [] for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday")}
        await pool.execute(
            "update campaign set calling_window = $2::jsonb where id = $1", w.campaign_id, json.dumps(closed)
        )
    status, body = await operator.post("/api/agent/dial")
    if change == "paused":
        assert status == 200
        await operator.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.campaign_stopped")
        lease = await pool.fetchrow(
            "select state, lease_owner from campaign_target where household_id = $1", hid
        )
        assert tuple(lease) == ("pending", None)  # given back, for when the campaign runs again
    else:
        assert (status, body["error"]) == (409, "error.outside_hours")
    await asyncio.sleep(0.5)
    assert [a["Context"] for a in sim.actions("Originate")] == ["dialer-agent"]  # the phone session only
    assert await pool.fetchval("select count(*) from attempt") == 0


async def test_the_campaign_list_tells_untried_from_due_again_and_an_admin_sees_every_department(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355552001")
    tried = await factory.household(pool, w.campaign_id, "0355552002")
    await pool.execute(
        "update campaign_target set attempts = 1 where household_id = $1", tried
    )  # a retry due
    await factory.department(pool, "tax")
    tax = await factory.campaign(pool, "tax", name="住民税催告")
    await pool.execute(
        "update campaign set caller_id = '' where id = $1", tax
    )  # active from before it was needed
    await factory.user(pool, "admin1", "admin", None)
    for login, page, names in (
        ("sv1", "/supervisor", ["テスト催告"]),
        ("admin1", "/admin", ["テスト催告", "住民税催告"]),
    ):
        client = PageClient(product.url)
        try:
            assert await client.login(login, factory.PASSWORD, page=page) == 200
            status, body = await client.get("/api/floor")
            assert status == 200
            floor = json.loads(body)
            listed = floor["campaigns"]
            team = {a["display_name"]: a["state"] for a in floor["agents"]}
            assert team == (
                {"テスト op1": "offline"} if login == "sv1" else {}
            )  # never logged in: still listed
            assert [c["name"] for c in listed] == names
            assert (listed[0]["untried"], listed[0]["retrying"]) == (1, 1)
            _, html = await client.get("/supervisor")
            assert ("tax: 住民税催告" in html) == (login == "admin1")  # which department, when several
            assert [c["no_caller_id"] for c in listed] == [False, True][: len(listed)]
            assert html.count('data-testid="no-caller-id"') == (login == "admin1")  # it calls nobody: said so
            # active with no household on it (住民税催告): its operators would only wait (QA)
            assert [c["no_households"] for c in listed] == [False, True][: len(listed)]
            assert html.count('data-testid="no-households"') == (login == "admin1")
            assert ("内線番号の登録が必要です" in html) == (login == "sv1")  # why there is no 聞く button
        finally:
            await client.close()
