"""Inbound calls through the FastAGI menu, and a supervisor's listen-in, on a real Asterisk."""

from __future__ import annotations

import uuid

import asyncpg

from dialer import runtime
from tests import factory
from tests.client import PageClient, fetched, until
from tests.real_asterisk import kit
from tests.real_asterisk.kit import Real

pytestmark = kit.MARKS


async def test_an_inbound_caller_is_recognised_and_put_through_on_real_asterisk(
    real: Real, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await pool.execute("update department set callback_number = '03-1234-0001' where id = 'nhi'")
    hid = await factory.household(pool, w.campaign_id, "0355550160")
    await kit.call_in(product, "0312340001", "0355550160")
    # no menu recordings installed here: the service sends the caller to a person at once
    content = await fetched(
        pool,
        "select content from contact_history where household_id = $1 and method = 'phone_in'",
        hid,
        within=20,
    )
    assert content == "入電(自動応答)、オペレーターを希望"
    assert "gave no answer" not in real.log()


async def test_with_the_fastagi_service_unreachable_the_caller_still_goes_somewhere(
    real: Real, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    set_global = {"Action": "Setvar", "Variable": "DIALER_AGI"}
    assert (await product.link.action({**set_global, "Value": "127.0.0.1:1"})).get("Response") == "Success"
    try:
        await kit.call_in(product, "0312340001", "0355550161")
        await until(lambda: "gave no answer (AGISTATUS=FAILURE)" in real.log(), within=20)
        assert await pool.fetchval("select count(*) from contact_history") == 0
    finally:
        await product.link.action({**set_global, "Value": "127.0.0.1:4573"})


async def test_a_supervisor_listens_in_on_real_asterisk(
    real: Real, product: runtime.Running, pool: asyncpg.Pool
) -> None:
    from dialer.simpbx.probe import AmiProbe

    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550130")
    await pool.execute("update app_user set extension = '9001' where login = 'sv1'")
    probe = await AmiProbe.connect(real.ami.host, real.ami.port)
    op, sup = PageClient(product.url), PageClient(product.url)
    try:
        assert (await probe.login(real.ami.username, real.ami.secret))["Response"] == "Success"
        await op.ready_as("op1", w.campaign_id)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=20)
        assert await sup.login("sv1", factory.PASSWORD, page="/supervisor") == 200
        status, body = await sup.post(
            "/api/supervisor/listen", {"operator_id": w.operator.id, "mode": "whisper"}
        )
        assert (status, body) == (200, {"ok": True})
        start = await probe.until(lambda m: m.is_event("ChanSpyStart"), within=20)
        assert (start["SpyerContext"], start["SpyeeContext"]) == ("dialer-listen", "dialer-agent")
        assert str(start["SpyerUniqueid"]).startswith("dlr-l")
        assert str(start["SpyeeUniqueid"]).startswith("dlr-s")
        assert "ChanSpy" in kit.cli("core show channels concise")
    finally:
        await sup.close()
        await op.close()
        await probe.close()


async def test_an_inbound_caller_who_wants_a_person_reaches_a_ready_operator_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """[dialer-inbound] raises DialerInbound after the menu; the dialer Redirects the caller into the
    free operator's bridge (dialer-inbound-join), and the operator gets the household's record."""
    w = await factory.world(pool)
    await pool.execute("update department set callback_number = '03-1234-0001' where id = 'nhi'")
    hid = await factory.household(pool, w.campaign_id, "0355550162")
    await pool.execute("update campaign_target set state = 'done'")  # nobody to dial: op1 waits
    op = PageClient(product.url)
    try:
        await op.ready_as("op1", w.campaign_id)
        await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=20)
        await kit.call_in(product, "0312340001", "0355550162")
        caller = await op.wait(lambda m: m["type"] == "caller", within=20)
        assert (caller["match"], caller["number"]) == ("known", "03-5555-0162")
        pop = await op.wait(lambda m: m["type"] == "record", within=5)
        assert (pop["reason"], pop["record"]["household_id"]) == ("inbound", hid)
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=10)
        ended = await op.hang_up(within=10)
        assert (ended["outcome"], ended["hangup_by"], ended["needs_disposition"]) == (
            "connected",
            "operator",
            True,
        )
        body = {
            "attempt_id": pop["attempt_id"],
            "token": str(uuid.uuid4()),
            "code": "installment",
            "note": "来週窓口へ",
        }
        status, reply = await op.post("/api/dispositions", body)
        assert status == 200, reply
    finally:
        await op.close()
    row = await pool.fetchrow("select * from attempt where id = $1", pop["attempt_id"])
    assert (row["dial_mode"], row["household_id"], row["campaign_id"], row["outcome"]) == (
        "inbound", hid, None, "connected",
    )  # fmt: skip
    assert row["caller_number"] == "0355550162"
    assert await kit.kinds(pool, pop["attempt_id"]) == ["inbound", "assigned", "connected", "ended"]
    history = await pool.fetch(
        "select method, place, content from contact_history where household_id = $1 order by id", hid
    )
    assert [tuple(r) for r in history][-1] == ("phone_in", "0355550162", "分納相談希望: 来週窓口へ")
