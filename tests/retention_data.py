"""Households as the purge meets them: paid off, quiet for a long time, called long ago (written as
the database owner through the product's tables), and an administrator's confirmation."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg

from dialer.store import retention as store

OLD = timedelta(days=400)  # past the default 365 days


async def confirm(pool: asyncpg.Pool, dept: str) -> None:
    """An administrator confirms the department's retention as it is (until then it is not purged)."""
    current = (await store.policies(pool))[dept]
    await store.set_policy(pool, dept, current)


async def age(pool: asyncpg.Pool, hid: int, ago: timedelta) -> None:
    """Everything about this household happened `ago`."""
    at = datetime.now(UTC) - ago
    for table, column in (
        ("household", "id"),
        ("person", "household_id"),
        ("phone", "household_id"),
        ("debt", "household_id"),
    ):
        await pool.execute(f"update {table} set updated_at = $2 where {column} = $1", hid, at)
    await pool.execute("update household set created_at = $2 where id = $1", hid, at)
    await pool.execute(
        "update campaign_target set state = 'done', next_attempt_at = $2 where household_id = $1", hid, at
    )


async def pay_off(pool: asyncpg.Pool, hid: int) -> None:
    await pool.execute("update debt set paid_yen = assessed_yen where household_id = $1", hid)


async def call(pool: asyncpg.Pool, hid: int, operator_id: int, ago: timedelta, note: str) -> int:
    """A call to the household `ago`, answered, with the operator's note, its 経過記録 and a promise."""
    at = datetime.now(UTC) - ago
    attempt_id: int = await pool.fetchval(
        """insert into attempt (campaign_id, target_id, household_id, department_id, phone_id, operator_id,
                                dial_mode, channel_id, outcome, dialed_number, originated_at, answered_at, ended_at)
           select t.campaign_id, t.id, t.household_id, t.department_id, p.id, $2, 'progressive', $3, 'connected',
                  p.number, $4::timestamptz, $4::timestamptz, $4::timestamptz + interval '3 minutes'
           from campaign_target t join phone p on p.household_id = t.household_id
           where t.household_id = $1 limit 1 returning id""",
        hid, operator_id, f"old-{uuid.uuid4().hex[:8]}", at,
    )  # fmt: skip
    did = await pool.fetchval(
        """insert into disposition (attempt_id, client_token, operator_id, department_id, code, note,
                                    promise_date, promise_amount_yen, created_at)
           select $1, gen_random_uuid(), $2, department_id, 'promise', $3, $4::timestamptz::date, 5000, $4
           from attempt where id = $1 returning id""",
        attempt_id, operator_id, note, at,
    )  # fmt: skip
    await pool.execute(
        """insert into promise (department_id, household_id, disposition_id, operator_id, promised_on, amount_yen,
                                status, created_at)
           select department_id, $1, $2, $3, $4::timestamptz::date, 5000, 'kept', $4 from disposition where id = $2""",
        hid, did, operator_id, at,
    )  # fmt: skip
    await pool.execute(
        """insert into contact_history (department_id, household_id, at, method, place, party, content,
                                        disposition_id, recorded_by, created_at)
           select department_id, $1, $4, 'phone_out', '0312345678', '本人', $3, $2, $5, $4
           from disposition where id = $2""",
        hid, did, note, at, operator_id,
    )  # fmt: skip
    return attempt_id


async def residents_of(pool: asyncpg.Pool, dept: str) -> set[str]:
    rows = await pool.fetch("select household_no from household where department_id = $1", dept)
    return {r["household_no"] for r in rows}


async def closed_household(
    pool: asyncpg.Pool, campaign_id: int, number: str, no: str, ago: timedelta = OLD, dept: str = "nhi"
) -> int:
    """A household that paid everything and has been quiet for `ago` (by default: past retention)."""
    from tests import factory

    hid = await factory.household(pool, campaign_id, number, no=no, dept=dept)
    await pay_off(pool, hid)
    await age(pool, hid, ago)
    return hid
