"""After the call: a dead or wrong number is stopped and the household's next one tried; a call-back
or a promise follow-up comes back at its time, to the operator who spoke to the resident first."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from campaigns import retry, windows
from campaigns.hours import TOKYO
from dialer import runtime
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.store import retries, targets
from tests import factory
from tests.client import PageClient


@pytest.mark.parametrize(
    ("promised", "checked"),
    [
        (
            date(2026, 11, 20),
            datetime(2026, 11, 24, 9, 0, tzinfo=TOKYO),
        ),  # Fri: 3 days after Sat 0:00 → Tue 9:00
        (date(2026, 11, 16), datetime(2026, 11, 20, 9, 0, tzinfo=TOKYO)),  # Mon → Fri
        (date(2026, 12, 26), datetime(2027, 1, 4, 9, 0, tzinfo=TOKYO)),  # into the year-end closure → Jan 4
        (
            date(2027, 4, 25),
            datetime(2027, 4, 29, 9, 0, tzinfo=TOKYO),
        ),  # 昭和の日: the holiday hours (9:00-17:00)
    ],
)
def test_a_promise_is_checked_on_after_the_grace(promised: date, checked: datetime) -> None:
    assert retry.follow_up(promised, windows.DEFAULT) == checked


def test_no_follow_up_when_the_window_never_opens() -> None:
    closed = windows.parse({d: [] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun", "holiday")})
    assert retry.follow_up(date(2026, 11, 20), closed) is None


async def _second_phone(pool: asyncpg.Pool, hid: int, number: str) -> int:
    pid: int = await pool.fetchval(
        """insert into phone (household_id, person_id, department_id, number, kind, priority)
           select household_id, id, department_id, $2, 'mobile', 5 from person where household_id = $1
           returning id""",
        hid,
        number,
    )
    return pid


async def _call(pool: asyncpg.Pool, campaign_id: int, outcome: str) -> tuple[int, targets.Lease]:
    """Lease the next household and record a finished call to it (as the engine does)."""
    lease = await targets.lease_next(pool, campaign_id, "test", 300)
    assert lease is not None
    attempt = await pool.fetchval(
        """insert into attempt (campaign_id, target_id, household_id, department_id, phone_id, dial_mode,
                                channel_id, dialed_number, outcome, ended_at)
           values ($1, $2, $3, 'nhi', $4, 'progressive', 'dlr-t' || $2::bigint || '-' || $4::bigint, $5, $6, now()) returning id""",
        campaign_id,
        lease.target_id,
        lease.household_id,
        lease.phone_id,
        lease.number,
        outcome,
    )
    return attempt, lease


async def test_a_dead_number_is_stopped_and_the_next_one_tried(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0355550901")
    second = await _second_phone(pool, hid, "09012340901")
    attempt, lease = await _call(pool, w.campaign_id, "unavailable")
    assert lease.number == "0355550901"
    await retries.reschedule(pool, attempt, retry.Why.WRONG_NUMBER, "unavailable")
    phone = await pool.fetchrow("select stopped_at, stopped_reason from phone where number = '0355550901'")
    assert phone["stopped_at"] is not None
    assert phone["stopped_reason"] == "wrong_number"
    target = await pool.fetchrow("select state, next_attempt_at from campaign_target")
    assert target["state"] == "pending"
    expected = windows.DEFAULT.next_open(datetime.now(TOKYO) + timedelta(minutes=1))  # the policy's minute
    assert expected is not None
    assert abs(target["next_attempt_at"] - expected) < timedelta(seconds=30)
    await pool.execute("update campaign_target set next_attempt_at = now()")
    attempt, lease = await _call(pool, w.campaign_id, "unavailable")
    assert (lease.phone_id, lease.number) == (second, "09012340901")
    await retries.reschedule(pool, attempt, retry.Why.WRONG_NUMBER, "unavailable")
    done = await pool.fetchrow("select state, last_outcome from campaign_target")
    assert tuple(done) == ("done", "unavailable")  # no number left
    assert await pool.fetchval("select dialable from household where id = $1", hid) is False
    # another campaign never dials a stopped number either
    other = await factory.campaign(pool, "nhi", "progressive", name="別")
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
        other,
        hid,
    )
    found = await targets.lease_next(pool, other, "test", 300)
    assert found is None
    assert (
        await pool.fetchval("select last_outcome from campaign_target where campaign_id = $1", other)
        == "no_phone"
    )


async def test_a_call_back_or_follow_up_waits_for_its_operator_first(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    op2 = await factory.user(pool, "op2", "operator", "nhi", "1002")
    mine = await factory.household(pool, w.campaign_id, "0355550911", priority=100)
    await factory.household(pool, w.campaign_id, "0355550912", priority=1)
    await pool.execute(
        """update campaign_target set preferred_operator_id = $2, preferred_until = now() + interval '2 hours'
           where household_id = $1""",
        mine,
        w.operator.id,
    )
    first = await targets.lease_next(pool, w.campaign_id, "test", 300, operator_id=w.operator.id)
    assert first is not None
    assert (first.household_id, first.preferred_operator) == (mine, w.operator.id)  # before a higher priority
    await targets.release(pool, first.target_id, "test", done=False)  # released: the hold is over
    await pool.execute(
        """update campaign_target set preferred_operator_id = $2, preferred_until = now() + interval '2 hours'
           where household_id = $1""",
        mine,
        w.operator.id,
    )
    other = await targets.lease_next(pool, w.campaign_id, "test", 300, operator_id=op2.id)
    assert other is not None
    assert other.household_id != mine
    assert (
        await targets.lease_next(pool, w.campaign_id, "test", 300, operator_id=op2.id) is None
    )  # held for op1
    predictive = await targets.lease_next(
        pool, w.campaign_id, "test", 300
    )  # for nobody: taken, op1 preferred
    assert predictive is not None
    assert (predictive.household_id, predictive.preferred_operator) == (mine, w.operator.id)
    await targets.release(pool, predictive.target_id, "test", done=False)
    await pool.execute(
        "update campaign_target set preferred_operator_id = $1, preferred_until = now()", w.operator.id
    )
    late = await targets.lease_next(pool, w.campaign_id, "test", 300, operator_id=op2.id)
    assert late is not None  # the hold ran out: anyone
    assert (late.household_id, late.preferred_operator) == (mine, None)


async def test_operators_outcomes_go_through_the_policy(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, hid, pop = await _in_a_call(operator, pool, sim, "0355550921")
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    callback_at = (datetime.now(TOKYO) + timedelta(days=2)).replace(
        hour=10, minute=30, second=0, microsecond=0
    )
    body = {
        "attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "callback",
        "callback_at": callback_at.strftime("%Y-%m-%dT%H:%M"),
    }  # fmt: skip
    status, reply = await operator.post("/api/dispositions", body)
    assert status == 200, reply
    assert (await operator.post("/api/agent/hangup"))[0] == 200
    await operator.wait(lambda m: m["type"] == "call_ended")
    target = await _until_settled(pool, hid)
    assert target["state"] == "pending"
    assert target["next_attempt_at"] == callback_at
    assert target["preferred_operator_id"] == w.operator.id
    assert target["preferred_until"] == callback_at + timedelta(hours=2)


async def test_a_call_back_outside_the_campaigns_hours_is_refused_with_a_reason(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    w, hid, pop = await _in_a_call(operator, pool, sim, "0355550925")
    one_hour = windows.parse({key: ["09:00-10:00"] for key in windows.KEYS})
    await pool.execute(
        "update campaign set calling_window = $2::jsonb where id = $1",
        w.campaign_id,
        json.dumps(one_hour.to_dict()),
    )
    day = (datetime.now(TOKYO) + timedelta(days=2)).date()

    def callback(hhmm: str) -> dict[str, Any]:
        return {
            "attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "callback",
            "callback_at": f"{day.isoformat()}T{hhmm}",
        }  # fmt: skip

    status, reply = await operator.post("/api/dispositions", callback("15:00"))  # 8-21 h, but not 9-10
    assert status == 422
    assert reply["fields"] == {"callback_at": "error.callback_window"}
    hours = ", ".join(map(str, one_hour.spans_on(day))) or "-"  # 09:00-10:00 (none in 年末年始)
    assert reply["details"] == {"callback_at": hours}  # the page says the hours it may take (QA)
    assert await pool.fetchval("select count(*) from disposition") == 0
    status, reply = await operator.post("/api/dispositions", callback("09:30"))
    assert status == 200, reply
    assert (await operator.post("/api/agent/hangup"))[0] == 200
    target = await _until_settled(pool, hid)
    assert target["next_attempt_at"] == datetime.fromisoformat(f"{day.isoformat()}T09:30").replace(
        tzinfo=TOKYO
    )


async def test_a_wrong_number_recorded_by_the_operator_is_never_dialled_again(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx
) -> None:
    _, hid, pop = await _in_a_call(operator, pool, sim, "0355550931")
    # Saved and hung up at once, before the resident reached the bridge (the call ends as dropped):
    # the operator's outcome still decides, not the retry for a dropped line.
    body = {"attempt_id": pop["attempt_id"], "token": str(uuid.uuid4()), "code": "wrong_number"}
    assert (await operator.post("/api/dispositions", body))[0] == 200
    assert (await operator.post("/api/agent/hangup"))[0] == 200
    target = await _until_settled(pool, hid)
    assert (target["state"], target["last_outcome"]) == ("done", "wrong_number")  # its only number
    phone = await pool.fetchrow("select stopped_reason from phone where household_id = $1", hid)
    assert phone["stopped_reason"] == "wrong_number"


async def _in_a_call(
    operator: PageClient, pool: asyncpg.Pool, sim: SimulatedPbx, number: str
) -> tuple[factory.World, int, dict[str, Any]]:
    """op1 is Ready and talking to the household at `number`: the record has popped and the call
    is put through (an outcome that needs a person is refused before, during AMD)."""
    w, hid = await factory.world_with_callee(
        pool, sim, number, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1)
    )
    await operator.ready_as("op1", w.campaign_id)
    pop = await operator.wait(lambda m: m["type"] == "record")
    await operator.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
    return w, hid, pop


async def _until_settled(pool: asyncpg.Pool, hid: int) -> asyncpg.Record:
    for _ in range(100):
        row = await pool.fetchrow(
            "select state, last_outcome, next_attempt_at, preferred_operator_id, preferred_until "
            "from campaign_target where household_id = $1",
            hid,
        )
        if row is not None and row["state"] != "leased":
            return row
        await asyncio.sleep(0.1)
    raise AssertionError("the household was not settled")
