"""A supervisor listens in on an operator's call (issue 5: listen-in): their own phone rings and
ChanSpy joins the operator's session. Over real HTTP, the simulated PBX on a real TCP port (an
AMI probe watches the wire for ChanSpyStart), and PostgreSQL for the audit log."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import asyncpg
import pytest

from dialer import runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.simpbx.probe import AmiProbe
from dialer.simpbx.wire import get_all
from tests import factory
from tests.client import PageClient, fetched


@pytest.fixture
async def watcher(sim: SimulatedPbx) -> AsyncIterator[AmiProbe]:
    """A second AMI client on the simulated PBX, reading the events on the wire."""
    probe = await AmiProbe.connect("127.0.0.1", sim.port)
    try:
        assert (await probe.login("dialer", "dialer-secret"))["Response"] == "Success"
        yield probe
    finally:
        await probe.close()


async def _operator_on_a_call(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> tuple[factory.World, PageClient, dict[str, object]]:
    w, _ = await factory.world_with_callee(
        pool, sim, "0355551701", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await pool.execute("update app_user set extension = '9001' where login = 'sv1'")
    op = PageClient(product.url)
    await op.ready_as("op1", w.campaign_id)
    record = await op.wait(lambda m: m["type"] == "record")
    await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    return w, op, record


async def test_a_supervisor_whispers_to_an_operator_on_a_call_and_it_is_audited(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx, watcher: AmiProbe
) -> None:
    w, op, record = await _operator_on_a_call(product, pool, sim)
    sup = PageClient(product.url)
    try:
        assert await sup.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        status, body = await sup.post(
            "/api/supervisor/listen", {"operator_id": w.operator.id, "mode": "whisper"}
        )
        (spy,) = [a for a in sim.actions("Originate") if a["Context"] == "dialer-listen"]
        assert (status, body) == (200, {"ok": True, "channel_id": spy["ChannelId"]})  # for 終了
        variables = dict(v.split("=", 1) for v in get_all(spy, "Variable"))
        session = next(c for c in sim.live_channels() if c.uniqueid.startswith("dlr-s"))
        assert spy["Channel"] == "PJSIP/9001"  # the supervisor's own phone
        assert (variables["SPY_TARGET"], variables["SPY_MODE"]) == (session.name, "whisper")
        assert variables["DIALER_SUPERVISOR"] == str(w.supervisor.id)
        start = await watcher.until(lambda m: m.is_event("ChanSpyStart"), within=5)
        assert start["SpyeeUniqueid"] == session.uniqueid
        assert start["SpyerContext"] == "dialer-listen"
        assert start["SpyerUniqueid"] == spy["ChannelId"]

        row = await pool.fetchrow(
            "select user_id, department_id, object_id, detail from audit_log where action = 'listen'"
        )
        assert (row["user_id"], row["department_id"], row["object_id"]) == (
            w.supervisor.id,
            "nhi",
            str(w.operator.id),
        )
        detail = json.loads(row["detail"])
        assert (detail["mode"], detail["attempt_id"], detail["channel_id"]) == (
            "whisper",
            record["attempt_id"],
            spy["ChannelId"],
        )

        # The operator's call ends: the listening leg's ChanSpy returns (option E) only when the
        # session ends; the supervisor hangs up their own phone.
        await sim.hangup_from_phone("9001")
        stop = await watcher.until(lambda m: m.is_event("ChanSpyStop"), within=5)
        assert stop["SpyerUniqueid"] == spy["ChannelId"]
    finally:
        await sup.close()
        await op.close()


async def test_every_call_heard_while_listening_is_in_the_audit_log(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx, watcher: AmiProbe
) -> None:
    w, op, first = await _operator_on_a_call(product, pool, sim)
    for n in (2, 3):
        await factory.household(pool, w.campaign_id, f"035555170{n}")
        sim.script(f"035555170{n}", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
    sup = PageClient(product.url)

    async def heard() -> list[tuple[int, str, int]]:
        rows = await pool.fetch(
            "select user_id, object_id, detail from audit_log where action = 'listen.call' order by id"
        )
        return [(r["user_id"], r["object_id"], json.loads(r["detail"])["operator_id"]) for r in rows]

    try:
        assert await sup.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        status, started = await sup.post(
            "/api/supervisor/listen", {"operator_id": w.operator.id, "mode": "listen"}
        )
        assert status == 200
        await watcher.until(lambda m: m.is_event("ChanSpyStart"), within=5)
        other = await factory.user(pool, "sv2", "supervisor", "nhi", "9002")
        nosy = PageClient(product.url)
        try:  # another supervisor cannot end it
            assert await nosy.login(other.login, factory.PASSWORD, page="/supervisor") == 200
            status, body = await nosy.post(
                "/api/supervisor/listen/stop", {"channel_id": started["channel_id"]}
            )
            assert (status, body["error"]) == (409, "error.no_listen")
        finally:
            await nosy.close()
        second = await op.next_call(first["attempt_id"])  # the supervisor still listens: heard too
        # written as the call connects (the page may hear of it first)
        await fetched(pool, "select true from audit_log where action = 'listen.call'")
        assert await heard() == [(w.supervisor.id, str(second["attempt_id"]), w.operator.id)]
        await sim.hangup_from_phone("9001")  # the supervisor stops listening
        await watcher.until(lambda m: m.is_event("Hangup") and m["Uniqueid"].startswith("dlr-l"), within=5)
        await op.hang_up()
        await op.wait_state("wrap_up")
        await op.save(second["attempt_id"], "refused")
        earlier = (first["attempt_id"], second["attempt_id"])
        third = await op.wait(lambda m: m["type"] == "record" and m["attempt_id"] not in earlier, 20)
        since = op.messages.index(third)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", 20, since=since)
        await op.hang_up()  # its events come after the connection's: all handled by now
        assert len(await heard()) == 1  # nobody listened to the third call
    finally:
        await sup.close()
        await op.close()


async def test_listen_in_is_refused_outside_the_supervisors_reach(
    product: runtime.Running, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, op, _ = await _operator_on_a_call(product, pool, sim)
    await factory.department(pool, "tax")
    other = await factory.user(pool, "sv-tax", "supervisor", "tax", "9002")
    await factory.user(pool, "sv-nophone", "supervisor", "nhi", None)
    try:
        cases = [
            ("sv-tax", {"operator_id": w.operator.id}, 409, "error.no_operator"),  # another department
            ("sv-nophone", {"operator_id": w.operator.id}, 409, "error.no_extension"),
            ("sv1", {"operator_id": w.operator.id, "mode": "record"}, 409, "error.invalid"),
            ("sv1", {"operator_id": 999_999}, 409, "error.no_operator"),
            ("sv1", {"operator_id": "1"}, 400, "error.invalid"),
        ]
        for login, body, status, key in cases:
            client = PageClient(product.url)
            try:
                assert await client.login(login, factory.PASSWORD, page="/supervisor") == 200
                got, reply = await client.post("/api/supervisor/listen", body)
                assert (got, reply["error"]) == (status, key), login
            finally:
                await client.close()
        got, _ = await op.post("/api/supervisor/listen", {"operator_id": w.operator.id})
        assert got == 403  # an operator cannot listen to anyone
        assert [a for a in sim.actions("Originate") if a["Context"] == "dialer-listen"] == []
        refused = await pool.fetch(
            "select user_id, detail from audit_log where action = 'listen' order by id"
        )
        assert [json.loads(r["detail"])["refused"] for r in refused] == [
            "error.no_operator",
            "error.no_extension",
            "error.invalid",
            "error.no_operator",
        ]
        assert refused[0]["user_id"] == other.id
    finally:
        await op.close()
