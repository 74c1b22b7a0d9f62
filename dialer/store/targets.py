"""The hopper: households leased for dialling with FOR UPDATE SKIP LOCKED and a lease expiry.

Two dialer processes never take the same household: a lease is taken in one statement that
skips rows another transaction holds. A live process renews its leases; a crashed process's
leases expire, or it stops being seen alive (dialer_process), and `sweep_expired` returns those
households (closing their calls that are over as lost).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta

import asyncpg

from campaigns import retry
from campaigns.hours import TOKYO
from dialer.store import db
from dialer.store.db import Conn
from dialer.store.processes import seen_within


@dataclass(frozen=True)
class Lease:
    target_id: int
    campaign_id: int
    household_id: int
    department_id: str
    attempts: int
    phone_id: int | None
    number: str | None  # personal data: never logged
    preferred_operator: int | None = None  # a call-back or promise follow-up: who spoke to them


async def lease_next(
    conn: Conn,
    campaign_id: int,
    owner: str,
    lease_s: int,
    operator_id: int | None = None,
    first: int | None = None,
) -> Lease | None:
    """Lease the next dialable household of a campaign; None if there is none now.

    For an operator (`operator_id`), a call-back or promise follow-up due for them comes first, and
    one held for another operator is skipped until its hold runs out; without one (predictive:
    calls for nobody in particular) every due household is taken in order.
    A household already leased in another campaign is skipped (and the database refuses a second
    live lease anyway). A household with no valid, callable phone is set aside ('excluded',
    last_outcome no_phone); one whose numbers are all in a live call (shared by another
    household) is put back for a few minutes. Either way the next one is tried.

    A household is one household across campaigns: one that another campaign (or a call it made
    to the department) already spoke with today (an outcome that reached the person owing), or that another campaign called so often today
    that this campaign's calls a day are used up, comes back tomorrow; one that promised another
    campaign to pay by a date comes back the day after it (`_ELSEWHERE`). The campaign's own calls
    follow its retry policy as before, and a call-back or promise follow-up comes at its time.

    `first`: a household to lease before any other if it may be called now (the preview record
    an operator's pause gave back: their next Ready shows it again, campaigns.dialing).
    """
    hold = timedelta(seconds=lease_s)
    while True:
        try:
            row = None
            today = datetime.combine(datetime.now(TOKYO).date(), time(0, 0), TOKYO)
            args = (campaign_id, owner, hold, operator_id, today, retry.DEFAULT.max_per_day)
            if first is not None:
                row = await conn.fetchrow(_LEASE_THIS, *args, first)
                first = None
            if row is None:
                row = await conn.fetchrow(_LEASE_FOLLOW_UP, *args)
            if row is None:
                row = await conn.fetchrow(_LEASE, *args)
        except asyncpg.UniqueViolationError:
            continue  # another dialer leased this household in another campaign a moment ago
        if row is None:
            return None
        if row["not_before"] is not None:
            await release(conn, row["id"], owner, done=False, next_at=row["not_before"], outcome=row["why"])
        elif row["phone_id"] is None:
            await release(conn, row["id"], owner, done=True, outcome="no_phone", state="excluded")
        elif row["in_call"]:
            await release(conn, row["id"], owner, done=False, next_at=None, delay=NUMBER_BUSY_DELAY)
        else:
            return Lease(
                target_id=row["id"],
                campaign_id=row["campaign_id"],
                household_id=row["household_id"],
                department_id=row["department_id"],
                attempts=row["attempts"],
                phone_id=row["phone_id"],
                number=row["number"],
                preferred_operator=row["preferred_operator"],
            )


NUMBER_BUSY_DELAY = timedelta(minutes=10)

_LEASE_TEMPLATE = """
with next as (
    select t.id from campaign_target t
    where t.campaign_id = $1 and t.state = 'pending' and t.next_attempt_at <= now() and {pick}
      and not exists (select 1 from campaign_target o where o.household_id = t.household_id and o.state = 'leased')
    order by {order}
    for update skip locked
    limit 1
), leased as (
    update campaign_target t
    set state = 'leased', lease_owner = $2, lease_expires_at = now() + $3::interval
    from next where t.id = next.id
    returning t.id, t.campaign_id, t.household_id, t.department_id, t.attempts,
              case when t.preferred_until > now() then t.preferred_operator_id end as preferred_operator,
              t.preferred_until is not null as follow_up  -- set by retries.come_back only
)
select l.*, p.id as phone_id, p.number, p.in_call, e.not_before, e.why
from leased l
cross join lateral ({elsewhere}) e
left join lateral (
    select ph.id, ph.number,
           exists (select 1 from attempt a where a.dialed_number = ph.number and a.ended_at is null) as in_call
    from phone ph
    where ph.household_id = l.household_id and ph.valid and not ph.do_not_call and ph.stopped_at is null
    order by 3, ph.priority, ph.id
    limit 1
) p on true
"""
# What other campaigns (and calls the resident made) did with the household: when it may be called
# again by this one ($5: today's start in Tokyo; $6: the default calls a day), and why not now.
_ELSEWHERE = """
    -- abandoned by another campaign: a predictive one (no operator guaranteed) waits 72 hours (Ofcom)
    select case when x.abandoned_at is not null then x.abandoned_at + interval '72 hours'
                when l.follow_up then null  -- a call-back the resident asked for, a promise checked on
                when x.promised >= ($5::timestamptz at time zone 'Asia/Tokyo')::date
                     then (x.promised + 1)::timestamp at time zone 'Asia/Tokyo'
                when x.spoken or (n.others > 0 and n.calls >= x.per_day) then $5::timestamptz + interval '1 day'
           end as not_before,
           case when x.abandoned_at is not null then 'abandoned_elsewhere'
                when x.promised >= ($5::timestamptz at time zone 'Asia/Tokyo')::date then 'promised_elsewhere'
                when x.spoken then 'reached_elsewhere' else 'day_cap_elsewhere' end as why
    from (select count(*) as calls, count(*) filter (where a.campaign_id <> l.campaign_id) as others
          from attempt a
          where a.household_id = l.household_id and a.originated_at >= $5 and a.dial_mode <> 'inbound') n,
         (select exists (select 1 from attempt a join disposition d on d.attempt_id = a.id
                         where a.household_id = l.household_id and a.campaign_id is distinct from l.campaign_id
                           and d.created_at >= $5
                           and exists (select 1 from disposition_code dc where dc.code = d.code and dc.reached
                                         and (dc.department_id = a.department_id or dc.department_id is null)))
                    as spoken,
                 (select max(pr.promised_on) from promise pr
                  left join disposition d on d.id = pr.disposition_id left join attempt a on a.id = d.attempt_id
                  where pr.household_id = l.household_id and pr.status = 'open'
                    and a.campaign_id is distinct from l.campaign_id) as promised,
                 coalesce((select case when jsonb_typeof(c.retry_policy -> 'max_per_day') = 'number'
                                       then (c.retry_policy ->> 'max_per_day')::int end
                           from campaign c where c.id = l.campaign_id), $6::int) as per_day,
                 (select max(coalesce(a.answered_at, a.originated_at)) from attempt a
                  where a.household_id = l.household_id and a.campaign_id is distinct from l.campaign_id
                    and a.outcome = 'abandoned' and a.originated_at > now() - interval '72 hours'
                    and (select c.dial_mode from campaign c where c.id = l.campaign_id) = 'predictive')
                    as abandoned_at) x
"""
# Not one held for another operator's call-back (predictive calls, for nobody in particular, take any).
_ANYONE_BUT_HELD = "$4::bigint is null or t.preferred_operator_id is null or t.preferred_operator_id = $4 or t.preferred_until <= now()"
# First, call-backs and follow-ups due (the small index campaign_target_follow_up), at their time,
# not behind the campaign's whole list: the operator's own while held for them, then any whose hold
# has run out or that no operator holds (one look, not one for the own and one for the rest).
_LEASE_FOLLOW_UP = _LEASE_TEMPLATE.format(
    elsewhere=_ELSEWHERE,
    pick="t.preferred_until is not null and (" + _ANYONE_BUT_HELD + ")",
    order="coalesce(t.preferred_operator_id = $4::bigint and t.preferred_until > now(), false) desc, "
    "t.next_attempt_at, t.id",
)
# One household by its id ($7), as any other would be leased.
_LEASE_THIS = _LEASE_TEMPLATE.format(
    elsewhere=_ELSEWHERE, pick="t.id = $7::bigint and (" + _ANYONE_BUT_HELD + ")", order="t.id"
)
# Then in priority order (the index campaign_target_next), skipping households held for another operator.
_LEASE = _LEASE_TEMPLATE.format(
    elsewhere=_ELSEWHERE,
    pick="(" + _ANYONE_BUT_HELD + ")",
    order="t.priority, t.next_attempt_at, t.id",
)


async def renew(conn: Conn, owner: str, target_ids: list[int], lease_s: int) -> None:
    if target_ids:
        await conn.execute(
            """update campaign_target set lease_expires_at = now() + $3::interval
               where id = any($2::bigint[]) and lease_owner = $1 and state = 'leased'""",
            owner,
            target_ids,
            timedelta(seconds=lease_s),
        )


async def release(
    conn: Conn,
    target_id: int,
    owner: str | None,
    *,
    done: bool,
    next_at: datetime | None = None,
    outcome: str | None = None,
    state: str | None = None,
    delay: timedelta | None = None,
    called: bool = False,
) -> None:
    """Give a leased household back: finished (done) or pending again from `next_at`.

    `owner` None releases whoever holds the lease (a disposition stored after a restart).
    A household taken out of the campaign meanwhile (it paid: state excluded) stays out.
    A call-back or promise follow-up stays one until it is `called` (given back uncalled: its
    number busy in another call, a preview skipped or its campaign paused, a dialer stopping).
    """
    await conn.execute(
        """update campaign_target
           set state = coalesce($7, case when $3 then 'done' else 'pending' end),
               next_attempt_at = coalesce($4, now() + coalesce($6::interval, interval '0')),
               last_outcome = coalesce($5, last_outcome),
               lease_owner = null, lease_expires_at = null,
               preferred_operator_id = case when $8 then null else preferred_operator_id end,
               preferred_until = case when $8 then null else preferred_until end
           where id = $1 and ($2::text is null or lease_owner = $2 or lease_owner is null)
             and state <> 'excluded'""",
        target_id,
        owner,
        done,
        next_at,
        outcome,
        delay,
        state,
        called,
    )


@dataclass(frozen=True)
class Swept:
    returned: int  # households given back to their campaigns
    closed: list[int]  # open attempts closed as lost (a disposition stored for one still applies)


async def take_over(conn: Conn, target_id: int, owner: str, lease_s: int) -> None:
    """A dialer adopting a dead one's call holds its household from now on."""
    await conn.execute(
        """update campaign_target set lease_owner = $2, lease_expires_at = now() + make_interval(secs => $3)
           where id = $1 and state = 'leased'""",
        target_id,
        owner,
        lease_s,
    )


async def sweep_expired(
    pool: asyncpg.Pool,
    *,
    owner: str = "",
    dead_after_s: float | None = None,
    link: str | None = None,
    live_channels: set[str] | None = None,
) -> Swept:
    """Give back the households whose dialer is gone, closing their calls that are over as lost.

    A lease is gone when it has expired, or (with `dead_after_s`) when its owner, another process,
    has not been seen alive for that long (dialer_process). A dead owner's household is kept
    while one of its calls may still be up: through another Asterisk than ours (`link`), or one
    whose channel is among the `live_channels` our Asterisk listed (None: not known, so any
    open call keeps it). An expired lease is given back in any case (10 minutes by default).
    """
    async with pool.acquire() as c, c.transaction():
        rows = await c.fetch(
            f"""with gone as (
                   select t.id from campaign_target t
                   where t.state = 'leased'
                     and (t.lease_expires_at < now()
                          or ($2::float8 is not null and t.lease_owner is distinct from $1
                              and not exists (select 1 from dialer_process p where p.owner = t.lease_owner
                                                and {seen_within("$2", "p")})
                              and not exists (select 1 from attempt a where a.target_id = t.id
                                                and a.ended_at is null
                                                and (a.link is distinct from $3 or $4::text[] is null
                                                     or a.channel_id = any($4::text[])))))
                   for update of t skip locked)
               update campaign_target t set state = 'pending', lease_owner = null, lease_expires_at = null,
                      next_attempt_at = now() + interval '30 minutes'
               from gone where t.id = gone.id returning t.id""",
            owner,
            dead_after_s,
            link,
            sorted(live_channels) if live_channels is not None else None,
        )
        ids = [r["id"] for r in rows]
        closed: list[int] = []
        if ids:
            closed = [
                r["id"]
                for r in await c.fetch(
                    """update attempt set phase = 'ended', outcome = coalesce(outcome, 'lost'), ended_at = now()
                       where target_id = any($1::bigint[]) and ended_at is null returning id""",
                    ids,
                )
            ]
        return Swept(len(ids), closed)


@dataclass(frozen=True)
class Due:
    target_id: int
    household_id: int
    priority: int


# The hopper's read: the next due households of a campaign in priority order. It walks
# campaign_target_next (campaign, priority, due, id; pending rows only) in order and checks each
# household by primary key (still owing, still dialable), so it reads about `limit` rows whatever
# the campaign's size. EXPLAIN in docs/data.md.
NEXT_BATCH = """
select t.id, t.household_id, t.priority
from campaign_target t
join household h on h.id = t.household_id
where t.campaign_id = $1 and t.state = 'pending' and t.next_attempt_at <= now()
  and h.dialable and h.unpaid_yen > 0
order by t.priority, t.next_attempt_at, t.id
limit $2
"""


async def next_batch(pool: asyncpg.Pool, department_id: str, campaign_id: int, limit: int) -> list[Due]:
    """The next `limit` due households of a campaign, read in its department's scope. There the
    row-level-security filter is estimated right (the planner evaluates current_setting at plan
    time: department_id = 'nhi' matches every row). In the all-departments scope it compares with
    '*', expects 0.5 % of the rows to pass, and sorts the whole campaign instead of walking the
    index: 2.5 s instead of 1 ms at a million households, once the table's statistics are current.
    (lease_next, which takes one row, walks the index in either scope.)"""
    async with db.department(pool, department_id) as conn:
        rows = await conn.fetch(NEXT_BATCH, campaign_id, limit)
    return [Due(r["id"], r["household_id"], r["priority"]) for r in rows]
