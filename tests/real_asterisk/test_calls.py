"""The product end to end on a real Asterisk: progressive and predictive calls, AMD, the abandon message."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import asyncpg

from dialer import runtime
from tests import factory
from tests.client import PageClient, fetched
from tests.real_asterisk import kit

pytestmark = kit.MARKS


async def test_progressive_call_end_to_end_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0355550120")
    pop = await kit.talk_and_hang_up(product, w.campaign_id)
    assert pop["record"]["household_id"] == hid
    row = await pool.fetchrow("select amd_status, hangup_cause from attempt where id = $1", pop["attempt_id"])
    assert row["amd_status"] == "HUMAN"
    kinds = [
        r["kind"]
        for r in await pool.fetch(
            "select kind from attempt_event where attempt_id = $1 order by id", pop["attempt_id"]
        )
    ]
    # Asterisk raises the AMD UserEvent before the bridge join, but the two reach AMI on different
    # internal topics and arrive in either order (seen here); every other step is in sequence.
    assert kinds.count("amd") == 1, kinds
    assert [k for k in kinds if k != "amd"] == [
        "originated",
        "channel",
        "ringing",
        "answered",
        "connected",
        "ended",
    ]
    assert kinds.index("amd") > kinds.index("answered")


async def test_resident_hangs_up_on_real_asterisk(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550129")  # ends in 9: talks 2 s, then hangs up
    op = PageClient(product.url)
    try:
        await op.open_as("op1")
        assert (await op.post("/api/agent/ready", {"campaign_id": w.campaign_id}))[0] == 200
        ended = await op.wait(lambda m: m["type"] == "call_ended", within=30)
        assert (ended["outcome"], ended["hangup_by"]) == ("connected", "resident")
        await op.wait_state("wrap_up")
    finally:
        await op.close()


async def test_predictive_person_is_redirected_to_the_operator_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """dialer-predictive on the real thing: AMD's UserEvent, then our Redirect by channel name
    into dialer-join and the operator's ConfBridge."""
    w = await factory.world(pool, mode="predictive")
    hid = await factory.household(pool, w.campaign_id, "0355550130")
    pop = await kit.talk_and_hang_up(product, w.campaign_id)
    assert (pop["reason"], pop["record"]["household_id"]) == ("screen_pop", hid)
    row = await pool.fetchrow(
        "select amd_status, dial_mode, operator_id from attempt where id = $1", pop["attempt_id"]
    )
    assert dict(row) == {"amd_status": "HUMAN", "dial_mode": "predictive", "operator_id": w.operator.id}
    kinds = await kit.kinds(pool, pop["attempt_id"])
    assert kinds == ["originated", "channel", "ringing", "answered", "amd", "assigned", "connected", "ended"]


async def test_predictive_person_with_nobody_free_gets_the_message_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.user(pool, "op2", "operator", "nhi", "1002")
    await factory.household(pool, w.campaign_id, "0355550137", priority=1)  # both ring 4 s
    await factory.household(pool, w.campaign_id, "0355550147", priority=2)
    op1, op2 = PageClient(product.url), PageClient(product.url)
    try:
        await op1.ready_as("op1", w.campaign_id)
        await op1.wait_state("ready")
        await op2.ready_as("op2", w.campaign_id)
        await op2.wait_state("ready")
        # both placed (one per ready operator: the pacer has no history yet), and still ringing
        await fetched(pool, "select count(*) = 2 from attempt")
        # op2 leaves (a pause would wait for the call counting on them: tests/test_predictive_engine.py)
        assert (await op2.post("/logout", {}))[0] == 302
        pop = await op1.wait(lambda m: m["type"] == "record", within=20)
        abandoned = await fetched(pool, "select id from attempt where outcome = 'abandoned'")
        assert abandoned != pop["attempt_id"]
        assert "abandoned" in await kit.kinds(pool, abandoned)  # dialer-abandon's UserEvent
        # after the hang-up, the h extension tells the FastAGI service what was played (here the
        # message is not installed: Playback's status FAILED, marked message_failed for the admin)
        played = await fetched(
            pool,
            "select detail from attempt_event where kind = 'message_failed' and attempt_id = $1",
            abandoned,
        )
        assert json.loads(played) == {"message": "abandon", "status": "FAILED"}
        row = await pool.fetchrow("select operator_id, hangup_by from attempt where id = $1", abandoned)
        assert (row["operator_id"], row["hangup_by"]) == (None, "system")
        assert not [m for m in op2.messages if m["type"] == "record"]
    finally:
        await op1.close()
        await op2.close()


async def test_predictive_machine_is_hung_up_on_real_asterisk(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.household(pool, w.campaign_id, "0355550138")  # ends in 8: an answering machine
    op = PageClient(product.url)
    try:
        await op.ready_as("op1", w.campaign_id)
        await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets", within=30)
        row = await pool.fetchrow("select outcome, operator_id, amd_status from attempt")
        assert dict(row) == {"outcome": "machine", "operator_id": None, "amd_status": "MACHINE"}
        assert not [m for m in op.messages if m["type"] == "record"]
    finally:
        await op.close()


async def test_a_restarted_dialer_takes_over_the_call_on_real_asterisk(
    real: kit.Real, db_dsn: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    """The dialer stops with a resident on the line (a stop leaves calls and sessions up); the next
    one finds the operator's session and the call in CoreShowChannels and carries on with them."""
    from tests.real_asterisk.conftest import product_settings

    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0355550131")
    settings = product_settings(real, db_dsn, tmp_path)
    try:
        async with runtime.started(settings) as first:
            op = PageClient(first.url)
            try:
                await op.ready_as("op1", w.campaign_id)
                pop = await op.wait(lambda m: m["type"] == "record", within=20)
                await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=20)
            finally:
                await op.close()
        async with runtime.started(settings) as second:
            op = PageClient(second.url)
            try:
                await op.open_as("op1")
                state = await op.wait(lambda m: m["type"] == "agent", within=20)
                assert (state["state"], state["attempt_id"], state["call_phase"]) == (
                    "talking", pop["attempt_id"], "connected",
                )  # fmt: skip
                again = await op.wait(lambda m: m["type"] == "record", within=10)
                assert again["record"]["household_id"] == hid
                ended = await op.hang_up(within=20)
                assert (ended["outcome"], ended["hangup_by"]) == ("connected", "operator")
            finally:
                await op.close()
    finally:
        kit.cli("channel request hangup all")
    row = await pool.fetchrow("select outcome, hangup_by from attempt where id = $1", pop["attempt_id"])
    assert (row["outcome"], row["hangup_by"]) == ("connected", "operator")
    sessions = await pool.fetchval("select count(*) from attempt")  # one call, never placed again
    assert sessions == 1


async def test_a_phone_on_another_dialers_call_is_refused_then_taken_over_on_real_asterisk(
    real: kit.Real, db_dsn: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    """Two dialers on one Asterisk. While the first has op1 on a call, Ready on the second is
    refused (the call is found in the real CoreShowChannels); once the first has gone, the second
    takes the call over by itself and op1 ends it there."""
    from tests.real_asterisk.conftest import product_settings

    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550132")
    await factory.household(pool, w.campaign_id, "0355550133")
    # the first serves the kit's FastAGI port; the second's is not used by these calls
    fast = replace(product_settings(real, db_dsn, tmp_path / "second"), heartbeat_s=1.0, agi_port=0)
    try:
        async with runtime.started(fast) as second:
            async with runtime.started(product_settings(real, db_dsn, tmp_path / "first")) as first:
                op = PageClient(first.url)
                try:
                    await op.ready_as("op1", w.campaign_id)
                    pop = await op.wait(lambda m: m["type"] == "record", within=20)
                    await op.wait(
                        lambda m: m["type"] == "agent" and m["call_phase"] == "connected", within=20
                    )
                finally:
                    await op.close()
                other = PageClient(second.url)
                await other.open_as("op1")
                status, body = await other.post("/api/agent/ready", {"campaign_id": w.campaign_id})
                assert (status, body["error"]) == (409, "error.phone_elsewhere")
            try:  # the first has stopped (leaving the call up): the second follows it now
                state = await other.wait(
                    lambda m: m["type"] == "agent" and m["state"] == "talking", within=20
                )
                assert (state["attempt_id"], state["call_phase"]) == (pop["attempt_id"], "connected")
                ended = await other.hang_up(within=20)
                assert (ended["outcome"], ended["hangup_by"]) == ("connected", "operator")
            finally:
                await other.close()
    finally:
        kit.cli("channel request hangup all")
    assert await pool.fetchval("select count(*) from attempt") == 1  # nobody called for op1 meanwhile


async def test_a_misspelt_trunk_holds_the_dialling_on_real_asterisk(
    real: kit.Real, db_dsn: str, tmp_path: Path, pool: asyncpg.Pool
) -> None:
    """QA: `PJSIP/{number}@trnk` (no such endpoint) made Asterisk fail each Originate at once, and the
    dialer ran through the campaign. Now five failures in a row hold its calls (campaigns.breaker)."""
    from tests.real_asterisk.conftest import product_settings

    w = await factory.world(pool)
    for i in range(10):
        await factory.household(pool, w.campaign_id, f"03555501{40 + i}", no=f"M{i}", priority=i + 1)
    settings = product_settings(real, db_dsn, tmp_path)
    misspelt = replace(settings, dialplan=replace(settings.dialplan, trunk_template="PJSIP/{number}@trnk"))
    async with runtime.started(misspelt) as product:
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.pbx_failing", within=30)
        finally:
            await op.close()
    outcomes = [r["outcome"] for r in await pool.fetch("select outcome from attempt order by id")]
    assert outcomes == ["failed"] * 5
    assert await pool.fetchval("select count(*) from campaign_target where state <> 'pending'") == 0
