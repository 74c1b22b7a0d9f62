"""Residents calling in who ask for a person reach a ready operator of their department, with the
record on screen: the simulated PBX runs the product's inbound dialplan and its FastAGI requests
against the product's own FastAGI service, and the product Redirects the caller into a bridge."""

from __future__ import annotations

import uuid
from typing import Any

import asyncpg
import pytest

from dialer import runtime
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.client import PageClient, until

LINE = "0312340001"


@pytest.fixture
async def line(product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool) -> factory.World:
    return await open_line(product, sim, pool)


async def open_line(product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool) -> factory.World:
    """nhi's call-back line, the simulated PBX's FastAGI pointed at the product, nobody to dial."""
    w = await factory.world(pool)
    await pool.execute("update department set callback_number = '03-1234-0001' where id = 'nhi'")
    sim.core.globals["DIALER_AGI"] = f"127.0.0.1:{product.agi_port}"
    sim.core.globals["DIALER_INBOUND_WAIT"] = "20"
    return w


async def _ready(product: runtime.Running, login: str, campaign_id: int) -> PageClient:
    op = PageClient(product.url)
    await op.ready_as(login, campaign_id)
    await op.wait_state("ready")
    return op


def _kinds(rows: list[Any]) -> list[str]:
    return [r["kind"] for r in rows]


async def test_a_known_caller_reaches_the_ready_operator_with_the_record(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    hid = await factory.household(pool, line.campaign_id, "0355550170", name="入電 花子")
    await pool.execute("update campaign_target set state = 'done'")
    op = await _ready(product, "op1", line.campaign_id)
    try:
        uid = sim.call_in(LINE, "0355550170")
        caller = await op.wait(lambda m: m["type"] == "caller", within=15)
        assert (caller["match"], caller["number"]) == ("known", "03-5555-0170")
        pop = await op.wait(lambda m: m["type"] == "record")
        assert (pop["reason"], pop["record"]["name_kanji"]) == ("inbound", "入電 花子")
        assert pop["record"]["display"]["phone"] == "03-5555-0170"  # the household's number they call from
        assert pop["attempt_id"] == caller["attempt_id"]
        talking = await op.wait(
            lambda m: m["type"] == "agent" and m["state"] == "talking" and m["call_phase"] == "connected"
        )
        assert talking["inbound"]  # the supervisor's floor shows 入電対応中, not the outbound campaign
        assert [c.uniqueid for c in sim.live_channels() if c.uniqueid == uid]  # in the bridge, not hung up
        ended = await op.hang_up()
        assert (ended["outcome"], ended["hangup_by"], ended["needs_disposition"]) == (
            "connected",
            "operator",
            True,
        )
        await op.wait_state("wrap_up")
        body = {"attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "promise",
                "promise_date": (await pool.fetchval("select current_date + 3")).isoformat(),
                "promise_amount": "5000", "note": "月末に"}  # fmt: skip
        status, reply = await op.post("/api/dispositions", body)
        assert status == 200, reply
        assert not (await op.wait_state("ready"))["inbound"]  # back to work on the campaign
        _, text = await op.get("/metrics")
        assert 'dialer_inbound_calls_total{department="nhi",result="put_through"} 1.0' in text
        # labelled as its outcome is: campaign "inbound", not an empty campaign
        assert 'dialer_call_outcomes_total{campaign="inbound",outcome="connected"} 1.0' in text
        assert 'dialer_dispositions_total{campaign="inbound",code="promise"} 1.0' in text
    finally:
        await op.close()
    row = await pool.fetchrow("select * from attempt where id = $1", pop["attempt_id"])
    assert (row["dial_mode"], row["campaign_id"], row["target_id"], row["household_id"]) == (
        "inbound",
        None,
        None,
        hid,
    )
    assert (row["channel_id"], row["caller_number"], row["outcome"]) == (uid, "0355550170", "connected")
    assert row["answered_at"] <= row["connected_at"] <= row["ended_at"]
    events = await pool.fetch("select kind from attempt_event where attempt_id = $1 order by id", row["id"])
    assert _kinds(events) == ["inbound", "assigned", "connected", "ended"]
    history = await pool.fetch(
        "select method, place, content from contact_history where household_id = $1 order by id", hid
    )
    assert [tuple(r) for r in history] == [
        ("phone_in", "0355550170", "入電(自動応答)、オペレーターを希望"),  # the menu's own entry
        ("phone_in", "0355550170", "納付約束: 月末に"),
    ]
    assert await pool.fetchval("select count(*) from promise where household_id = $1", hid) == 1
    viewed = await pool.fetch(
        "select remote_addr from audit_log where action = 'record.view' and object_id = $1", str(hid)
    )
    assert [r["remote_addr"] for r in viewed] == ["127.0.0.1"]  # audit-logged, with where the page is


async def test_an_unknown_caller_is_put_through_without_a_record(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    op = await _ready(product, "op1", line.campaign_id)
    try:
        uid = sim.call_in(LINE, "0355550999")
        caller = await op.wait(lambda m: m["type"] == "caller", within=15)
        assert (caller["match"], caller["number"]) == ("unknown", "03-5555-0999")
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        assert await sim.hangup_remote(uid)  # the caller hangs up
        ended = await op.wait(lambda m: m["type"] == "call_ended")
        assert (ended["outcome"], ended["hangup_by"]) == ("connected", "resident")
        promise = {"attempt_id": caller["attempt_id"], "token": str(uuid.uuid4()), "code": "promise",
                   "promise_date": (await pool.fetchval("select current_date + 3")).isoformat(),
                   "promise_amount": "5000"}  # fmt: skip
        status, reply = await op.post("/api/dispositions", promise)
        assert (status, reply["error"]) == (422, "error.no_household")  # it would be lost: look it up first
        body = {"attempt_id": caller["attempt_id"], "token": str(uuid.uuid4()), "note": "宛名番号不明",
                "code": "installment"}  # fmt: skip
        status, reply = await op.post("/api/dispositions", body)
        assert (status, reply["error"]) == (422, "error.no_household")  # a case staff could not find
        body = {**body, "token": str(uuid.uuid4()), "code": "refused"}
        status, reply = await op.post("/api/dispositions", body)
        assert status == 200, reply
        await op.wait_state("ready")
    finally:
        await op.close()
    assert not [m for m in op.messages if m["type"] == "record"]
    row = await pool.fetchrow("select household_id, caller_number, outcome from attempt")
    assert dict(row) == {"household_id": None, "caller_number": "0355550999", "outcome": "connected"}
    assert await pool.fetchval("select note from disposition") == "宛名番号不明"
    assert await pool.fetchval("select count(*) from contact_history") == 0  # no household to file it under


async def test_an_inbound_call_refuses_a_call_back_booking(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    await factory.household(pool, line.campaign_id, "0355550171")
    await pool.execute("update campaign_target set state = 'done'")
    op = await _ready(product, "op1", line.campaign_id)
    try:
        sim.call_in(LINE, "0355550171")
        caller = await op.wait(lambda m: m["type"] == "caller", within=15)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        at = (await pool.fetchval("select (now() + interval '2 days') at time zone 'Asia/Tokyo'")).replace(
            hour=10
        )
        body = {"attempt_id": caller["attempt_id"], "token": str(uuid.uuid4()), "code": "callback",
                "callback_at": at.strftime("%Y-%m-%dT%H:%M")}  # fmt: skip
        status, reply = await op.post("/api/dispositions", body)
        assert (status, reply["error"]) == (422, "error.inbound_callback"), reply
    finally:
        await op.close()
    assert await pool.fetchval("select count(*) from disposition") == 0


async def test_a_caller_waits_for_an_operator_who_becomes_ready(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    uid = sim.call_in(LINE, "0355550172")
    await until(lambda: uid in product.engine.inbound.waiting, within=15)
    op = await _ready(product, "op1", line.campaign_id)
    try:
        caller = await op.wait(lambda m: m["type"] == "caller", within=10)
        assert caller["match"] == "unknown"
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    finally:
        await op.close()


async def test_nobody_of_the_department_free_the_caller_goes_to_the_desk(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """A tax operator is ready, but the caller rang nhi's line: never given to another department."""
    sim.core.globals["DIALER_INBOUND_WAIT"] = "2"
    await factory.department(pool, "tax")
    await factory.user(pool, "tx1", "operator", "tax", "2001")
    tax_campaign = await factory.campaign(pool, "tax", "progressive")
    tax = await _ready(product, "tx1", tax_campaign)
    try:
        uid = sim.call_in(LINE, "0355550173")
        await until(lambda: uid in product.engine.inbound.waiting, within=15)
        await until(
            lambda: uid not in {c.uniqueid for c in sim.live_channels()}, within=10
        )  # busy prompt, hung up
        assert not product.engine.inbound.waiting
        assert not [m for m in tax.messages if m["type"] in ("caller", "record")]
        assert (await tax.wait_state("ready"))["attempt_id"] is None
        _, text = await tax.get("/metrics")
        assert 'dialer_inbound_calls_total{department="nhi",result="desk"} 1.0' in text
        assert 'dialer_inbound_waiting{link="pbx1"} 0.0' in text
    finally:
        await tax.close()
    assert await pool.fetchval("select count(*) from attempt") == 0
    assert not sim.actions("Redirect")  # nobody was Redirected anywhere


async def test_a_caller_who_hangs_up_while_waiting_is_forgotten(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    uid = sim.call_in(LINE, "0355550174")
    await until(lambda: uid in product.engine.inbound.waiting, within=15)
    assert await sim.hangup_remote(uid)
    await until(lambda: uid not in product.engine.inbound.waiting, within=5)
    op = await _ready(product, "op1", line.campaign_id)
    try:
        await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=10)
        _, text = await op.get("/metrics")
        assert 'dialer_inbound_calls_total{department="nhi",result="hung_up"} 1.0' in text
    finally:
        await op.close()
    assert not [m for m in op.messages if m["type"] == "caller"]
    assert await pool.fetchval("select count(*) from attempt") == 0


async def test_with_the_fastagi_service_unreachable_the_caller_goes_to_the_desk(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    sim.core.globals["DIALER_AGI"] = "127.0.0.1:1"
    op = await _ready(product, "op1", line.campaign_id)
    try:
        uid = sim.call_in(LINE, "0355550175")
        await until(lambda: uid not in {c.uniqueid for c in sim.live_channels()}, within=15)
    finally:
        await op.close()
    assert not [m for m in op.messages if m["type"] == "caller"]
    assert await pool.fetchval("select count(*) from attempt") == 0


@pytest.mark.browser
async def test_the_operator_page_shows_who_is_calling(
    browser: Any, product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """In Chromium: a known caller's banner and record; then an unknown caller's banner, no record."""
    from playwright.async_api import expect

    from tests.browser import ARTIFACTS, log_in

    await factory.household(pool, line.campaign_id, "0355550176", name="入電 次郎")
    await pool.execute("update campaign_target set state = 'done'")
    page = await browser.new_page(locale="ja-JP", viewport={"width": 1280, "height": 900})
    await log_in(page, product.url, "op1")
    await page.get_by_test_id("ready").click()
    await expect(page.get_by_test_id("agent-state")).to_have_text("待機中", timeout=20_000)

    sim.call_in(LINE, "0355550176")
    await expect(page.get_by_test_id("caller")).to_have_text(
        "入電: 登録番号からの着信　03-5555-0176", timeout=20_000
    )
    await expect(page.get_by_test_id("rec-name")).to_have_text("入電 次郎")
    await expect(page.get_by_test_id("call-phase")).to_have_text("オペレーター接続", timeout=10_000)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "operator-inbound-known.png"), full_page=True)
    await expect(page.get_by_label("折り返し希望")).to_be_hidden()  # no call-back after an incoming call
    await page.get_by_test_id("hangup").click()
    await page.get_by_label("分納相談希望").check()
    await page.get_by_test_id("save").click()
    await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。")
    await expect(page.get_by_test_id("agent-state")).to_have_text("待機中")
    await expect(page.get_by_test_id("caller")).to_be_hidden()
    await expect(page.get_by_label("折り返し希望")).to_be_visible()

    sim.call_in(LINE, "")  # number withheld
    await expect(page.get_by_test_id("caller")).to_contain_text("登録のない番号または非通知", timeout=20_000)
    await expect(page.get_by_test_id("record")).to_be_hidden()
    await page.screenshot(path=str(ARTIFACTS / "operator-inbound-unknown.png"), full_page=True)
    await page.close()


async def test_a_page_reloaded_during_wrap_up_is_told_who_called_again(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    await factory.household(pool, line.campaign_id, "0355550177", name="再表示 三郎")
    await pool.execute("update campaign_target set state = 'done'")
    op = await _ready(product, "op1", line.campaign_id)
    try:
        uid = sim.call_in(LINE, "0355550177")
        caller = await op.wait(lambda m: m["type"] == "caller", within=15)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        assert await sim.hangup_remote(uid)
        await op.wait_state("wrap_up")
    finally:
        await op.close()
    again = PageClient(product.url)
    try:
        await again.open_as("op1")
        told = await again.wait(lambda m: m["type"] == "caller")
        assert told["attempt_id"] == caller["attempt_id"]
        pop = await again.wait(lambda m: m["type"] == "record")
        assert (pop["reason"], pop["record"]["name_kanji"]) == ("inbound", "再表示 三郎")
    finally:
        await again.close()


async def test_inbound_calls_of_a_dead_dialer_are_closed_once_over_at_asterisk(pool: asyncpg.Pool) -> None:
    from dialer.store import inbound

    await factory.world(pool)
    op = await pool.fetchval("select id from app_user where login = 'op1'")
    await pool.execute(
        "insert into dialer_process (owner, host, pid, link, seen_at) values ('alive', 'h', 1, 'pbx1', now())"
    )
    ids = {}
    for owner, uid in (("dead", "1.1"), ("dead", "1.2"), ("alive", "1.3")):
        ids[uid] = await inbound.open_call(
            pool, department_id="nhi", household_id=None, caller_number=None, uniqueid=uid,
            operator_id=op, link="pbx1", owner=owner,
        )  # fmt: skip
    sweep = dict(owner="me", dead_after_s=60.0, link="pbx1")
    assert await inbound.close_calls_of_dead(pool, **sweep, live_channels=None) == []  # not known: kept
    assert await inbound.close_calls_of_dead(pool, **sweep, live_channels={"1.2"}) == [ids["1.1"]]
    row = await pool.fetchrow("select outcome, ended_at from attempt where id = $1", ids["1.1"])
    assert (row["outcome"], row["ended_at"] is not None) == ("lost", True)
    open_ = await pool.fetch("select channel_id from attempt where ended_at is null order by channel_id")
    assert [r["channel_id"] for r in open_] == ["1.2", "1.3"]  # still up; its dialer alive
