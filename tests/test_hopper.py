"""The hopper against a real PostgreSQL: leases two dialers never share, leases that expire, one household
across campaigns, households with nothing to dial, call-backs due first."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import asyncpg

from dialer.store import targets
from tests import factory


async def test_two_dialers_never_lease_the_same_household(db_dsn: str, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    for i in range(40):
        await factory.household(pool, w.campaign_id, f"03{5000_0000 + i}")
    # Two processes' worth of pools, leasing as fast as they can, concurrently.
    pools = [await asyncpg.create_pool(db_dsn, min_size=4, max_size=4) for _ in range(2)]
    try:

        async def drain(p: asyncpg.Pool, owner: str) -> list[int]:
            got = []
            while (lease := await targets.lease_next(p, w.campaign_id, owner, 600)) is not None:
                got.append(lease.household_id)
            return got

        results = await asyncio.gather(
            *(drain(p, f"dialer-{i}-{j}") for i, p in enumerate(pools) for j in range(4))
        )
    finally:
        for p in pools:
            await p.close()
    leased = [h for r in results for h in r]
    assert len(leased) == 40
    assert len(set(leased)) == 40
    assert sum(1 for r in results if r) > 1  # the work really was shared


async def test_expired_leases_come_back_and_open_attempts_close(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355550001")
    lease = await targets.lease_next(pool, w.campaign_id, "dead-dialer", 600)
    assert lease is not None
    from dialer.store import attempts

    attempt = await attempts.create(
        pool, lease, operator_id=w.operator.id, dial_mode="progressive", link="pbx1"
    )
    assert await targets.lease_next(pool, w.campaign_id, "other", 600) is None
    await pool.execute("update campaign_target set lease_expires_at = now() - interval '1 second'")
    assert await targets.sweep_expired(pool) == targets.Swept(1, [attempt.id])
    row = await pool.fetchrow("select outcome, ended_at from attempt where id = $1", attempt.id)
    assert row["outcome"] == "lost"
    assert row["ended_at"] is not None
    await pool.execute("update campaign_target set next_attempt_at = now()")
    again = await targets.lease_next(pool, w.campaign_id, "other", 600)
    assert again is not None
    assert again.household_id == lease.household_id


async def test_a_household_abandoned_by_one_campaign_waits_72_hours_for_any_predictive_one(
    pool: asyncpg.Pool,
) -> None:
    """Ofcom: a call abandoned is not repeated within 72 hours unless an operator is guaranteed.
    Before, another predictive campaign rang the same household minutes later (QA)."""
    from dialer.store import attempts

    w = await factory.world(pool, mode="predictive")
    predictive = await factory.campaign(pool, "nhi", "predictive", name="別の予測発信")
    progressive = await factory.campaign(pool, "nhi", "progressive", name="別の順次発信")
    hid = await factory.household(pool, w.campaign_id, "0355550045")
    for cid in (predictive, progressive):
        await pool.execute(
            "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
            cid,
            hid,
        )
    lease = await targets.lease_next(pool, w.campaign_id, "d1", 600)
    assert lease is not None
    a = await attempts.create(pool, lease, operator_id=None, dial_mode="predictive", link="pbx1")
    await pool.execute(
        """update attempt set answered_at = now() - interval '1 hour', ended_at = now(), outcome = 'abandoned'
           where id = $1""",
        a.id,
    )
    await targets.release(pool, lease.target_id, "d1", done=False, next_at=None)
    assert await targets.lease_next(pool, predictive, "d2", 600) is None
    row = await pool.fetchrow(
        "select state, next_attempt_at - now() as wait, last_outcome from campaign_target where campaign_id = $1",
        predictive,
    )
    assert (row["state"], row["last_outcome"]) == ("pending", "abandoned_elsewhere")
    assert timedelta(hours=70) < row["wait"] <= timedelta(hours=71)  # 72 hours after the abandon
    again = await targets.lease_next(pool, progressive, "d2", 600)  # an operator waits on each call
    assert again is not None
    assert again.household_id == hid


async def test_a_household_is_one_household_across_campaigns(pool: asyncpg.Pool) -> None:
    """What another campaign did with a household today holds this one back: a conversation (or a
    promise to pay by a date) there, or that campaign's calls using up the calls a day."""
    from dialer.store import attempts

    w = await factory.world(pool)
    other = await factory.campaign(pool, "nhi", name="別のキャンペーン")
    hid = await factory.household(pool, w.campaign_id, "0355550041")
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
        other,
        hid,
    )
    tomorrow = await pool.fetchval(
        "select ((now() at time zone 'Asia/Tokyo')::date + 1)::timestamp at time zone 'Asia/Tokyo'"
    )

    async def call_in_first(answered: bool, code: str = "refused") -> int:
        lease = await targets.lease_next(pool, w.campaign_id, "d1", 600)
        assert lease is not None
        a = await attempts.create(
            pool, lease, operator_id=w.operator.id, dial_mode="progressive", link="pbx1"
        )
        await pool.execute("update attempt set ended_at = now(), outcome = 'no_answer' where id = $1", a.id)
        if answered:
            await pool.execute(
                """insert into disposition (attempt_id, client_token, operator_id, department_id, code)
                   values ($1, gen_random_uuid(), $2, 'nhi', $3)""",
                a.id,
                w.operator.id,
                code,
            )
        await targets.release(pool, lease.target_id, "d1", done=False)
        return a.id

    async def in_other() -> tuple[str, object, str | None]:
        lease = await targets.lease_next(pool, other, "d2", 600)
        row = await pool.fetchrow(
            "select state, next_attempt_at, last_outcome from campaign_target where campaign_id = $1", other
        )
        if lease is not None:
            await targets.release(pool, lease.target_id, "d2", done=False)
        return ("leased" if lease else row["state"], row["next_attempt_at"], row["last_outcome"])

    await call_in_first(answered=False)  # one unanswered call there: no reason to wait here
    assert (await in_other())[0] == "leased"
    await call_in_first(answered=True, code="other_party")  # someone else answered: nobody was spoken to
    assert (await in_other())[0] == "leased"
    await pool.execute("delete from disposition")
    await call_in_first(answered=False)
    await call_in_first(answered=False)  # three today there: the calls a day (3) are used up
    assert await in_other() == ("pending", tomorrow, "day_cap_elsewhere")
    await pool.execute("update attempt set originated_at = originated_at - interval '1 day'")  # yesterday's
    await pool.execute("update campaign_target set next_attempt_at = now()")
    assert (await in_other())[0] == "leased"
    answered = await call_in_first(answered=True)  # spoken with there today: here tomorrow
    assert await in_other() == ("pending", tomorrow, "reached_elsewhere")
    # a call-back the resident asked this campaign for is kept, whatever the other one did
    await pool.execute(
        """update campaign_target set next_attempt_at = now(), preferred_until = now() + interval '2 hours'
           where campaign_id = $1""",
        other,
    )
    assert (await in_other())[0] == "leased"
    await pool.execute("update campaign_target set preferred_until = null where campaign_id = $1", other)
    in_a_week = await pool.fetchval("select (now() at time zone 'Asia/Tokyo')::date + 7")
    await pool.execute(
        """insert into promise (department_id, household_id, disposition_id, operator_id, promised_on, amount_yen)
           select 'nhi', $1, id, $2, $3, 10000 from disposition where attempt_id = $4""",
        hid,
        w.operator.id,
        in_a_week,
        answered,
    )
    await pool.execute("update campaign_target set next_attempt_at = now()")
    after_promise = await pool.fetchval(
        "select ($1::date + 1)::timestamp at time zone 'Asia/Tokyo'", in_a_week
    )
    assert await in_other() == ("pending", after_promise, "promised_elsewhere")
    # the campaign the promise was made to follows its own rules (its follow-up after the date)
    assert await targets.lease_next(pool, w.campaign_id, "d1", 600) is not None


async def test_households_without_a_callable_phone_are_set_aside(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    bad = await factory.household(pool, w.campaign_id, "0355550002", priority=1)
    good = await factory.household(pool, w.campaign_id, "0355550003", priority=2)
    await pool.execute("update phone set do_not_call = true where household_id = $1", bad)
    lease = await targets.lease_next(pool, w.campaign_id, "me", 600)
    assert lease is not None
    assert lease.household_id == good
    state = await pool.fetchrow(
        "select state, last_outcome from campaign_target where household_id = $1", bad
    )
    assert (state["state"], state["last_outcome"]) == ("excluded", "no_phone")


async def test_a_call_back_due_comes_before_the_rest_of_the_list(pool: asyncpg.Pool) -> None:
    """A low-ranked household that asked to be called back at its time is called then, by anyone
    once the hold for the operator who spoke with it has run out, not after the campaign's whole
    list; while the hold runs it waits for that operator, and the list goes on meanwhile."""
    w = await factory.world(pool)
    op2 = await factory.user(pool, "op2", "operator", "nhi", "1002")
    first = [await factory.household(pool, w.campaign_id, f"031111000{i}", priority=1) for i in range(3)]
    asked = await factory.household(pool, w.campaign_id, "0322220000", priority=9)
    await pool.execute(
        """update campaign_target set preferred_operator_id = $2, next_attempt_at = now() - interval '1 minute',
                  preferred_until = now() + interval '1 hour'
           where household_id = $1""",
        asked,
        w.operator.id,
    )
    held = await targets.lease_next(pool, w.campaign_id, "d1", 600, operator_id=op2.id)
    assert held is not None
    assert held.household_id in first  # held for op1 an hour: op2 takes the list
    await targets.release(pool, held.target_id, "d1", done=False, delay=timedelta(hours=1))
    own = await targets.lease_next(pool, w.campaign_id, "d1", 600, operator_id=w.operator.id)
    assert own is not None
    assert (own.household_id, own.preferred_operator) == (asked, w.operator.id)
    await pool.execute(
        "update campaign_target set state = 'pending', lease_owner = null where household_id = $1", asked
    )
    await pool.execute(
        "update campaign_target set preferred_until = now() - interval '1 second' where household_id = $1",
        asked,
    )
    for operator_id in (op2.id, None, op2.id):  # the hold over: the next operator, or the pacer, first
        due = await targets.lease_next(pool, w.campaign_id, "d1", 600, operator_id=operator_id)
        assert due is not None
        assert due.household_id == asked, operator_id
        # given back uncalled (its number busy in another call, a preview skipped): still a call-back
        await targets.release(pool, due.target_id, "d1", done=False)
