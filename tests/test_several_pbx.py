"""Several Asterisk servers (AMI_SERVERS): two simulated PBXes on their own TCP ports, one product.
Each operator's calls go through the server their phone is on; one server down stops only its
own operators; no household is called twice."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import asyncpg
import pytest

from dialer import runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, CalleeModel, SimConfig, SimulatedPbx
from tests import factory
from tests.browser import log_in
from tests.client import PageClient, fetched

FAST = {"ping_interval_s": 1.0, "ping_timeout_s": 1.0, "reconnect_min_s": 0.1}


@pytest.fixture
async def sim2() -> AsyncIterator[SimulatedPbx]:
    nobody = CalleeModel(answer_p=0.0, machine_p=0.0, busy_p=0.0, congestion_p=0.0)
    pbx = SimulatedPbx(SimConfig(host="127.0.0.1", port=0, operator_answer_s=0.1, callees=nobody))
    await pbx.start()
    yield pbx
    await pbx.stop()


@pytest.fixture
async def product(
    settings: Settings, sim: SimulatedPbx, sim2: SimulatedPbx
) -> AsyncIterator[runtime.Running]:
    two = replace(
        settings,
        ami=sim.ami_settings(name="pbx1", **FAST),
        more_ami=(sim2.ami_settings(name="pbx2", **FAST),),
        dialplan=replace(settings.dialplan, ring_timeout_s=5),
    )
    async with runtime.started(two) as running:
        yield running


def _originated(pbx: SimulatedPbx) -> list[str]:
    return [str(a.get("ChannelId", "")) for a in pbx.actions("Originate")]


async def test_each_operator_calls_through_their_own_server_and_one_down_stops_only_its_own(
    product: runtime.Running, sim: SimulatedPbx, sim2: SimulatedPbx, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await factory.user(pool, "op2", "operator", "nhi", "1002", pbx="pbx2")
    numbers = [f"035555018{i}" for i in range(1, 5)]
    for n in numbers:
        await factory.household(pool, w.campaign_id, n)
        for pbx in (sim, sim2):
            pbx.script(n, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    op1, op2 = PageClient(product.url), PageClient(product.url)
    try:
        await op1.ready_as("op1", w.campaign_id)
        pop1 = await op1.wait(lambda m: m["type"] == "record", within=15)
        await op2.ready_as("op2", w.campaign_id)
        pop2 = await op2.wait(lambda m: m["type"] == "record", within=15)
        a1, a2 = pop1["attempt_id"], pop2["attempt_id"]
        for op in (op1, op2):
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        _, text = await op1.get("/metrics")
        assert 'dialer_agents{state="talking"} 2.0' in text  # both servers' floors counted
        # Sessions and residents' calls each through the operator's own server.
        assert (f"dlr-a{a1}" in _originated(sim), f"dlr-a{a1}" in _originated(sim2)) == (True, False)
        assert (f"dlr-a{a2}" in _originated(sim2), f"dlr-a{a2}" in _originated(sim)) == (True, False)
        links = dict(await pool.fetch("select id, link from attempt"))  # type: ignore[arg-type]
        assert links == {a1: "pbx1", a2: "pbx2"}
        assert pop1["record"]["household_id"] != pop2["record"]["household_id"]

        sup = PageClient(product.url)
        try:
            assert await sup.login("sv1", factory.PASSWORD, page="/supervisor") == 200
            status, body = await sup.get("/api/floor")
            assert (status, json.loads(body)["pbx"]) == (200, {"pbx1": True, "pbx2": True})
        finally:
            await sup.close()

        await sim.stop()  # pbx1 goes away: op1's call ends with it
        await op1.wait(lambda m: m == {"type": "pbx", "up": False, "pbx": "pbx1"}, within=10)
        status, body = await op1.get("/healthz")  # degraded, still serving pbx2's operators
        health = json.loads(body)
        assert (status, health["status"], health["ami"]) == (200, "degraded", {"pbx1": "down", "pbx2": "up"})

        # op2 goes on through pbx2: hang up, record the outcome, and the next household comes.
        nxt = await op2.next_call(a2)
        assert f"dlr-a{nxt['attempt_id']}" in _originated(sim2)
        assert not [m for m in op2.messages if m["type"] == "pbx" and not m["up"]]
    finally:
        await op1.close()
        await op2.close()
    twice = await pool.fetchval(
        "select count(*) from (select household_id from attempt group by household_id having count(*) > 1) x"
    )
    assert twice == 0
    assert await fetched(pool, "select link from attempt where id = $1", nxt["attempt_id"]) == "pbx2"


async def test_an_operator_on_a_server_not_configured_is_told_so(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await pool.execute("update app_user set pbx = 'pbx9' where login = 'op1'")
    op = PageClient(product.url)
    try:
        await op.open_as("op1")
        status, body = await op.post("/api/agent/ready", {"campaign_id": w.campaign_id})
        assert (status, body["error"]) == (409, "error.unknown_pbx")
    finally:
        await op.close()


def test_ami_servers_are_read_from_the_environment() -> None:
    from dialer import config
    from dialer.errors import ConfigError

    env = {"AMI_SERVERS": "pbx1=10.0.0.1:5038, pbx2=10.0.0.2", "AMI_SECRET": "s", "AMI_SECRET_PBX2": "t"}
    s = config.load(env)
    assert [(a.name, a.host, a.port, a.secret) for a in s.servers] == [
        ("pbx1", "10.0.0.1", 5038, "s"),
        ("pbx2", "10.0.0.2", 5038, "t"),
    ]
    for bad in ("pbx1=a,pbx1=b", "PBX=a", "pbx1=a:70000", "pbx1", "pbx1=a b"):
        with pytest.raises(ConfigError):
            config.load({"AMI_SERVERS": bad, "AMI_SECRET": "s"})
    with pytest.raises(ConfigError):
        config.load({"AMI_SERVERS": "pbx1=a", "AMI_HOST": "b", "AMI_SECRET": "s"})


async def test_a_supervisor_cannot_listen_in_across_servers(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """ChanSpy works only on the server the operator's call is on; the refusal is audit-logged."""
    w = await factory.world(pool)
    await factory.user(pool, "op2", "operator", "nhi", "1002", pbx="pbx2")
    await pool.execute("update app_user set extension = '9001' where login = 'sv1'")  # on pbx1
    op2, sup = PageClient(product.url), PageClient(product.url)
    try:
        await op2.ready_as("op2", w.campaign_id)
        await op2.wait_state("ready")
        assert await sup.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        op2_id = await pool.fetchval("select id from app_user where login = 'op2'")
        status, body = await sup.post("/api/supervisor/listen", {"operator_id": op2_id, "mode": "listen"})
        assert (status, body["error"]) == (409, "error.other_pbx")
    finally:
        await sup.close()
        await op2.close()
    refused = await pool.fetchval("select detail ->> 'refused' from audit_log where action = 'listen'")
    assert refused == "error.other_pbx"


@pytest.mark.browser
async def test_the_supervisor_page_shows_each_server(
    browser: Any, product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool
) -> None:
    from playwright.async_api import expect

    await factory.world(pool)
    page = await browser.new_page(locale="ja-JP")
    await log_in(page, product.url, "sv1")
    await expect(page.locator("#pbx")).to_have_text("pbx1 OK・pbx2 OK", timeout=20_000)
    await sim.stop()
    await expect(page.locator("#pbx")).to_have_text("pbx1 ×・pbx2 OK", timeout=20_000)
    await page.close()


async def test_a_server_down_when_the_dialer_starts_stops_nothing_else_and_is_joined_later(
    settings: Settings, sim: SimulatedPbx, pool: asyncpg.Pool
) -> None:
    """With several servers, one that cannot be reached at start is not a start failure (it was:
    exit 4, every site's operators kept off by one site's Asterisk): the dialer runs, says the
    server is down, and joins it once it answers."""
    with socket.socket() as s:  # a port nothing listens on (yet)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    later = SimulatedPbx(SimConfig(host="127.0.0.1", port=port, operator_answer_s=0.1))
    two = replace(
        settings,
        ami=sim.ami_settings(name="pbx1", **FAST),
        more_ami=(replace(sim.ami_settings(name="pbx2", **FAST), port=port),),
    )
    async with runtime.started(two) as running:
        client = PageClient(running.url)
        try:
            status, body = await client.get("/healthz")
            health = json.loads(body)
            assert (status, health["status"], health["ami"]) == (
                200,
                "degraded",
                {"pbx1": "up", "pbx2": "down"},
            )
            await later.start()
            try:
                for _ in range(100):
                    status, body = await client.get("/healthz")
                    if json.loads(body)["status"] == "ok":
                        break
                    await asyncio.sleep(0.1)
                assert (status, json.loads(body)["ami"]) == (200, {"pbx1": "up", "pbx2": "up"})
            finally:
                await later.stop()
        finally:
            await client.close()
