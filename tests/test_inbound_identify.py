"""A caller the line matched to no household (or to several) gives the number on their papers: the
operator looks the household up, and the call, its outcome and any promise are filed under it."""

from __future__ import annotations

import json

import asyncpg
import pytest

from dialer import runtime
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.test_inbound_calls import LINE, _ready, open_line


@pytest.fixture
async def line(product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool) -> factory.World:
    return await open_line(product, sim, pool)


async def test_an_unknown_caller_is_found_by_the_number_they_give(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """A caller from an unregistered number gives their 宛名番号: the operator looks it up, the
    record is shown (audit-logged), and the promise they make is filed under their household."""
    hid = await factory.household(pool, line.campaign_id, "0355550172", no="00172", name="照会 花子")
    await pool.execute("update campaign_target set state = 'done'")
    op = await _ready(product, "op1", line.campaign_id)
    try:
        sim.call_in(LINE, "0355559998")
        caller = await op.wait(lambda m: m["type"] == "caller", within=15)
        attempt_id = caller["attempt_id"]
        assert caller["match"] == "unknown"
        await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        status, reply = await op.post("/api/inbound/identify", {"attempt_id": attempt_id, "key": "A99999"})
        assert (status, reply["found"]) == (200, False)
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": attempt_id, "key": "' or 1=1 --"}
        )
        assert (status, reply["fields"]) == (422, {"key": "error.identify_key"})
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": attempt_id, "key": "Ａ００１７２"}
        )
        assert (status, reply["found"]) == (200, True)  # its 宛名番号, typed full-width
        pop = await op.wait(lambda m: m["type"] == "record")
        assert (pop["reason"], pop["attempt_id"], pop["record"]["name_kanji"]) == (
            "inbound",
            attempt_id,
            "照会 花子",
        )
        # 宛名番号 and 世帯番号 are two series: the operator says which one the caller read out
        other = await factory.household(pool, line.campaign_id, "0355550173", no="A00172", name="別世帯 次郎")
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": attempt_id, "key": "A00172", "by": "household_no"}
        )
        assert (status, reply["found"]) == (200, True)  # a wrong household can be looked up again …
        pop = await op.wait(lambda m: m["type"] == "record" and m["record"]["name_kanji"] == "別世帯 次郎")
        assert await pool.fetchval("select household_id from attempt where id = $1", attempt_id) == other
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": attempt_id, "key": "Ａ００１７２"}
        )
        assert (status, reply["found"]) == (200, True)
        await op.save(
            attempt_id,
            "promise",
            promise_date=(await pool.fetchval("select current_date + 3")).isoformat(),
            promise_amount="5000",
        )
        status, reply = await op.post("/api/inbound/identify", {"attempt_id": attempt_id, "key": "00172"})
        assert (status, reply["error"]) == (409, "error.identified_already")  # … until the outcome is saved
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": attempt_id, "key": "1", "by": "name"}
        )
        assert (status, reply["fields"]) == (422, {"by": "error.identify_by"})
        await op.hang_up()
    finally:
        await op.close()
    assert await pool.fetchval("select household_id from attempt where id = $1", attempt_id) == hid
    assert await pool.fetchval("select count(*) from promise where household_id = $1", hid) == 1
    assert await pool.fetchval("select count(*) from contact_history where household_id = $1", hid) == 1
    lookups = await pool.fetch(
        "select detail from audit_log where action = 'inbound.identify' and object_id = $1 order by id",
        str(attempt_id),
    )
    assert [json.loads(r["detail"])["found"] for r in lookups] == [False, True, True, True]
    assert json.loads(lookups[2]["detail"])["replaced"] == hid
    assert (
        await pool.fetchval(
            "select count(*) from audit_log where action = 'record.view' and object_id = $1", str(hid)
        )
        == 2  # each time it was shown
    )


async def test_lookups_on_one_call_are_limited(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """Enough lookups for a mistyped number, not for browsing the register from one call; and only
    on one's own call."""
    op = await _ready(product, "op1", line.campaign_id)
    try:
        sim.call_in(LINE, "0355559997")
        caller = await op.wait(lambda m: m["type"] == "caller", within=15)
        for n in range(5):
            status, reply = await op.post(
                "/api/inbound/identify", {"attempt_id": caller["attempt_id"], "key": f"X{n}"}
            )
            assert (status, reply["found"]) == (200, False)
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": caller["attempt_id"], "key": "X9"}
        )
        assert (status, reply["error"]) == (429, "error.too_many_lookups")
        # each lookup on record, the refused one too (browsing from a call), without the number typed:
        # a 宛名番号 kept in the log would outlive its resident's erasure
        entries = await pool.fetch(
            "select action, detail, remote_addr from audit_log where action like 'inbound.identify%' order by id"
        )
        assert [e["action"] for e in entries] == ["inbound.identify"] * 5 + ["inbound.identify_refused"]
        assert {e["remote_addr"] for e in entries} == {"127.0.0.1"}  # from where (the operator's page)
        assert not any(f"X{n}" in e["detail"] for e in entries for n in (*range(5), 9))
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": caller["attempt_id"] + 1, "key": "X9"}
        )
        assert (status, reply["error"]) == (409, "error.not_your_call")
    finally:
        await op.close()


async def test_a_caller_known_by_their_registered_number_cannot_be_looked_up_as_another(
    product: runtime.Running, sim: SimulatedPbx, pool: asyncpg.Pool, line: factory.World
) -> None:
    """The page offers no look-up for a caller whose number named their household; the API does
    not either (it did: any household's record could be shown on any such call)."""
    await factory.household(pool, line.campaign_id, "0355550173", no="00173", name="登録 太郎")
    other = await factory.household(pool, line.campaign_id, "0355550174", no="00174", name="他人 次郎")
    await pool.execute("update campaign_target set state = 'done'")
    op = await _ready(product, "op1", line.campaign_id)
    try:
        sim.call_in(LINE, "0355550173")
        caller = await op.wait(lambda m: m["type"] == "caller", within=15)
        assert caller["match"] == "known"
        status, reply = await op.post(
            "/api/inbound/identify", {"attempt_id": caller["attempt_id"], "key": "00174"}
        )
        assert (status, reply["error"]) == (409, "error.caller_known")
        views = await pool.fetchval(
            "select count(*) from audit_log where action = 'record.view' and object_id = $1", str(other)
        )
        assert views == 0
    finally:
        await op.close()


@pytest.mark.parametrize(
    ("household", "match", "expected"),
    [
        ("42", "known", (42, "known")),
        ("²", "known", (None, "unknown")),  # isdigit() is true, int() fails: it raised, the caller dropped
        ("99999999999999999999999", "known", (None, "unknown")),  # beyond a bigint: retried for ever
        ("0", "known", (None, "unknown")),
        ("", "several", (None, "several")),
        ("7", "unknown", (None, "unknown")),
    ],
)
def test_the_household_a_dialplan_event_names_is_an_id_or_none(
    household: str, match: str, expected: tuple[int | None, str]
) -> None:
    from campaigns.inbound import caller_of
    from dialer.ami import events

    event = events.UserEvent(
        name="UserEvent", channel="PJSIP/trunk-1", uniqueid="in-1", linkedid="in-1", state_desc="Up",
        user_event="DialerInbound", fields={"Department": "nhi", "Household": household, "Caller": match},
    )  # fmt: skip
    caller = caller_of(event, 0.0)
    assert caller is not None
    assert (caller.household_id, caller.match) == expected
