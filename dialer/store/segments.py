"""A campaign's segment against the data: how many households it matches, and filling the campaign.

The SQL comes from `campaigns.segments.query` (the rules); here it is counted, or merged into the
campaign's target list in one statement: households that match and are new are added in the
segment's order, pending ones are re-ranked, and pending ones that no longer match are set aside
(state `excluded`, last_outcome `segment`). A household set aside, by a fill or by the data (it
paid, its debts were closed, its head died or moved out, it had no number), comes back when it
matches again (it owes again, a newer export lists its debt, it has a number now). Households in a
call or finished are left as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

from campaigns import retry
from campaigns.segments import Query, Segment, query
from dialer.store.db import Conn, from_jsonb


@dataclass(frozen=True)
class Preview:
    households: int  # matching now
    unpaid_yen: int  # their arrears in scope, together
    in_campaign: int  # of them, already on the campaign's list
    elsewhere: int = 0  # of them, on another active campaign's list, not finished there (one household:
    # each campaign holds back after another spoke with it today, dialer/store/targets.py)
    leaving: int = 0  # waiting on the campaign's list and not matching: a fill sets them aside


@dataclass(frozen=True)
class Filled:
    matched: int
    added: int
    set_aside: int
    returned: int = 0  # set aside before (by a fill or by the data) and matching again: waiting once more


async def campaign_query(
    conn: Conn, campaign_id: int, department_id: str, segment: Segment, today: date, phone: bool = True
) -> Query:
    """The segment's SQL, a broken promise judged with the campaign's own grace (its follow-ups')."""
    stored = await conn.fetchval("select retry_policy from campaign where id = $1", campaign_id)
    grace = retry.of_campaign(from_jsonb(stored)).promise_grace  # as the engine reads it
    days = math.ceil(grace / timedelta(days=1))
    return query(segment, department_id, today, promise_grace_days=days, phone=phone)


async def preview(conn: Conn, campaign_id: int, department_id: str, segment: Segment, today: date) -> Preview:
    q = await campaign_query(conn, campaign_id, department_id, segment, today)
    n = len(q.params)
    row = await conn.fetchrow(
        f"""with m as materialized ({q.sql})
            select count(*) as households, coalesce(sum(m.unpaid_yen), 0) as unpaid_yen,
                   count(*) filter (where exists (select 1 from campaign_target t
                                                 where t.campaign_id = ${n + 1} and t.household_id = m.household_id))
                       as in_campaign,
                   count(*) filter (where exists (select 1 from campaign_target t join campaign c on c.id = t.campaign_id
                                                 where t.household_id = m.household_id and t.campaign_id <> ${n + 1}
                                                   and c.status = 'active' and t.state in ('pending', 'leased')))
                       as elsewhere,
                   (select count(*) from campaign_target t
                    where t.campaign_id = ${n + 1} and t.state = 'pending'
                      and not exists (select 1 from m m2 where m2.household_id = t.household_id)) as leaving
            from m""",
        *q.params,
        campaign_id,
        timeout=600,
    )
    assert row is not None
    return Preview(
        row["households"], int(row["unpaid_yen"]), row["in_campaign"], row["elsewhere"], row["leaving"]
    )


async def fill(conn: Conn, campaign_id: int, department_id: str, segment: Segment, today: date) -> Filled:
    q = await campaign_query(conn, campaign_id, department_id, segment, today)
    c, d = f"${len(q.params) + 1}", f"${len(q.params) + 2}"
    row = await conn.fetchrow(
        f"""
        with m as materialized ({q.sql}),
        back as (  -- (read before the update below: those it takes back from excluded)
            select count(*) as n from campaign_target t join m on m.household_id = t.household_id
            where t.campaign_id = {c} and t.state = 'excluded'),
        added as (
            insert into campaign_target (campaign_id, household_id, department_id, priority)
            select {c}, m.household_id, {d}, least(m.rank, 2000000000)::int from m
            on conflict (campaign_id, household_id) do nothing
            returning 1),
        kept as (
            update campaign_target t set priority = least(m.rank, 2000000000)::int, state = 'pending',
                   last_outcome = case when t.state = 'excluded' then null else t.last_outcome end
            from m
            where t.campaign_id = {c} and t.household_id = m.household_id
              and t.state in ('pending', 'excluded')  -- set aside by the data (segment, paid, closed…): it matches again
            returning 1),
        aside as (
            update campaign_target t set state = 'excluded', last_outcome = 'segment'
            where t.campaign_id = {c} and t.state = 'pending'
              and not exists (select 1 from m where m.household_id = t.household_id)
            returning 1)
        select (select count(*) from m) as matched, (select count(*) from added) as added,
               (select count(*) from aside) as set_aside, (select count(*) from kept) as kept,
               (select n from back) as returned
        """,
        *q.params,
        campaign_id,
        department_id,
        timeout=3600,
    )
    assert row is not None
    return Filled(row["matched"], row["added"], row["set_aside"], row["returned"])
