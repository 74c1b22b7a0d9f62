"""Attempts (one dialled call each) and their timelines."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dialer.store.db import Conn
from dialer.store.targets import Lease

# Milestones that stamp a column of the attempt row (first time only).
_STAMP = {"ringing": "ringing_at", "answered": "answered_at", "connected": "connected_at"}


class NumberInCall(Exception):
    """Another live attempt is dialling this number right now (the database refused a second)."""


class TargetWithdrawn(Exception):
    """The household left the campaign after it was leased (it paid): it must not be dialled."""


@dataclass(frozen=True)
class NewAttempt:
    id: int
    channel_id: str


async def create(
    pool: asyncpg.Pool,
    lease: Lease,
    *,
    operator_id: int | None,
    dial_mode: str,
    link: str,
    channel_prefix: str = "dlr",
    owner: str | None = None,
) -> NewAttempt:
    """Insert the attempt before dialling; its id names the channel (ChannelId <prefix>-a<id>).

    Raises NumberInCall when another open attempt holds the same number, TargetWithdrawn when
    the household is no longer leased (a payment took it out of every campaign meanwhile) or, with
    `owner`, no longer leased by it (given back while this process was taken for dead).
    """
    async with pool.acquire() as conn, conn.transaction():  # all of it, or nothing
        try:
            row = await _insert(conn, lease, operator_id, dial_mode, link, channel_prefix, owner)
        except asyncpg.UniqueViolationError as exc:
            if exc.constraint_name == "attempt_one_live_call_per_number":
                raise NumberInCall() from None
            raise
        if row is None:
            raise TargetWithdrawn()
        await conn.execute(
            """with e as (insert into attempt_event (attempt_id, kind) values ($1, 'originated'))
               update campaign_target set attempts = attempts + 1 where id = $2""",
            row["id"],
            lease.target_id,
        )
    return NewAttempt(id=row["id"], channel_id=row["channel_id"])


async def _insert(
    conn: Conn,
    lease: Lease,
    operator_id: int | None,
    dial_mode: str,
    link: str,
    prefix: str,
    owner: str | None,
) -> Any:
    return await conn.fetchrow(
        """
        with s as (select nextval(pg_get_serial_sequence('attempt', 'id')) as id)
        insert into attempt (id, channel_id, campaign_id, target_id, household_id, department_id,
                             phone_id, operator_id, dial_mode, link, dialed_number)
        overriding system value
        select s.id, $10 || '-a' || s.id, $1, $2, $3, $4, $5, $6, $7, $8, $9 from s
        where exists (select 1 from campaign_target t where t.id = $2 and t.state = 'leased'
                        and ($11::text is null or t.lease_owner = $11) for share)
        returning id, channel_id
        """,
        lease.campaign_id,
        lease.target_id,
        lease.household_id,
        lease.department_id,
        lease.phone_id,
        operator_id,
        dial_mode,
        link,
        lease.number,
        prefix,
        owner,
    )


async def milestone(
    conn: Conn,
    attempt_id: int,
    kind: str,
    detail: Mapping[str, Any] | None = None,
    at: datetime | None = None,
) -> None:
    """Append to the timeline, and stamp the attempt row for ringing/answered/connected (and the
    answering-machine verdict as soon as it is known: the pacer learns from it before the call ends).
    `at`: when it happened (a write held while the database was away keeps its true time)."""
    column = _STAMP.get(kind)
    stamp = f", {column} = coalesce({column}, $4::timestamptz)" if column else ""
    if kind == "amd":
        stamp = ", amd_status = coalesce(nullif($3::jsonb ->> 'amd', ''), amd_status)"
    await conn.execute(
        f"""with w as (select coalesce($4::timestamptz, clock_timestamp()) as at),
                 e as (insert into attempt_event (attempt_id, kind, detail, at) select $1, $2, $3::jsonb, w.at from w)
            update attempt set phase = case when $2 in ('ringing', 'answered', 'connected') and ended_at is null
                                            then $2 else phase end
            {stamp.replace("$4::timestamptz", "(select at from w)")} where id = $1""",
        attempt_id,
        kind,
        json.dumps(dict(detail or {}), ensure_ascii=False),
        at,
    )


async def finish(
    conn: Conn,
    attempt_id: int,
    *,
    outcome: str,
    hangup_by: str | None,
    cause: int | None,
    amd_status: str | None,
    answered: bool = False,
    at: datetime | None = None,
) -> None:
    """The call ended (`at`, if given: a write held while the database was away keeps its time).

    A call closed as `lost` by another dialer (this one was dead, or the database away, when it
    ended) takes the end this one held on disk instead: it is what happened.

    A call closed as `lost` (its channel gone while the AMI link was down) that the dialplan put to
    the abandon message meanwhile (the FastAGI `played` route recorded it: FastAGI does not need the
    AMI link) was answered by a person with no operator free: it is `abandoned` (answered at the
    latest when the message was reported), and counts against the abandoned-call limit. The other
    way round, `abandoned_when_lost`."""
    detail = {"outcome": outcome, "hangup_by": hangup_by, "cause": cause}
    await conn.execute(
        """with w as (select coalesce($8::timestamptz, clock_timestamp()) as at),
                m as (select min(at) as at from attempt_event where attempt_id = $1
                      and kind in ('message_played', 'message_failed') and detail ->> 'message' = 'abandon'),
                o as (select case when $2 = 'lost' and (select at from m) is not null then 'abandoned'
                                  else $2 end as outcome),
                e as (insert into attempt_event (attempt_id, kind, detail, at)
                      select $1, 'ended', $6::jsonb || jsonb_build_object('outcome', (select outcome from o)), w.at from w)
           update attempt set phase = 'ended', outcome = (select outcome from o),
                  hangup_by = case when (select outcome from o) <> $2 then 'system' else $3 end, hangup_cause = $4,
                  amd_status = coalesce($5, amd_status), ended_at = (select at from w),
                  -- consistent even if the "answered" milestone could not be written
                  answered_at = coalesce(answered_at, case when $7 then (select at from w) end, (select at from m))
           where id = $1 and (ended_at is null or (outcome = 'lost' and $2 <> 'lost'))""",
        attempt_id,
        outcome,
        hangup_by,
        cause,
        amd_status,
        json.dumps(detail),
        answered,
        at,
    )


async def abandoned_when_lost(conn: Conn, attempt_id: int) -> bool:
    """The abandon message was reported for a call already closed as `lost` (the AMI link was down):
    abandoned after all (see `finish`). True when it changed."""
    changed = await conn.fetchval(
        """update attempt a set outcome = 'abandoned', hangup_by = 'system',
                  answered_at = coalesce(a.answered_at, (select min(at) from attempt_event e where e.attempt_id = a.id
                                                         and e.kind in ('message_played', 'message_failed')))
           where a.id = $1 and a.outcome = 'lost' returning a.id""",
        attempt_id,
    )
    return changed is not None


@dataclass(frozen=True)
class OpenCall:
    """An operator's call still open in the database (for a dialer taking over after a crash)."""

    id: int
    channel_id: str
    campaign_id: int | None
    lease: Lease | None  # None: an inbound call
    disposed: bool  # the operator already saved its outcome
    connected: bool = False  # its connected_at is stamped (the dead dialer may not have written it)
    answered: bool = False  # its answered_at is stamped (answered while no dialer was looking)


# an open call as a taking-over dialer reads it (OpenCall)
_OPEN_CALL = """select a.id, a.channel_id, a.campaign_id, a.target_id, a.household_id, a.department_id, a.phone_id,
                  a.dialed_number, coalesce(t.attempts, 0) as attempts,
                  exists (select 1 from disposition d where d.attempt_id = a.id) as disposed,
                  a.connected_at is not null as connected, a.answered_at is not null as answered
           from attempt a left join campaign_target t on t.id = a.target_id"""


async def open_for_operator(conn: Conn, operator_id: int) -> OpenCall | None:
    row = await conn.fetchrow(
        _OPEN_CALL
        + """
           where a.operator_id = $1 and a.ended_at is null order by a.id desc limit 1""",
        operator_id,
    )
    return None if row is None else _open_call(row)


async def put_through_unassigned(
    conn: Conn, channel_ids: list[str], department_id: str | None
) -> OpenCall | None:
    """A predictive call whose resident Asterisk holds in an operator's bridge (`channel_ids`: the
    channels in that bridge's context) but no operator in the database: its dialer died between
    putting the person through and writing to whom (campaigns/adoption.py)."""
    row = await conn.fetchrow(
        _OPEN_CALL
        + """
           where a.channel_id = any($1::text[]) and a.department_id = $2 and a.dial_mode = 'predictive'
             and a.operator_id is null and a.ended_at is null
           order by a.id desc limit 1""",
        channel_ids,
        department_id,
    )
    return None if row is None else _open_call(row)


def _open_call(row: asyncpg.Record) -> OpenCall:
    return OpenCall(
        row["id"], row["channel_id"], row["campaign_id"], _lease_of(row), row["disposed"], row["connected"],
        row["answered"],
    )  # fmt: skip


def _lease_of(row: asyncpg.Record) -> Lease | None:
    """The household an operator's call was about, as a lease (None: a resident who called in)."""
    if row["target_id"] is None:
        return None
    return Lease(
        target_id=row["target_id"], campaign_id=row["campaign_id"], household_id=row["household_id"],
        department_id=row["department_id"], attempts=row["attempts"], phone_id=row["phone_id"],
        number=row["dialed_number"],
    )  # fmt: skip


async def awaiting_outcome(
    conn: Conn, operator_id: int, department_id: str | None
) -> tuple[OpenCall, str, bool] | None:
    """The operator's latest conversation in their department, ended in the last 12 hours with no
    outcome recorded (a dialer stopped or restarted during their wrap-up): the call and how it ended.
    Also one still open in the database that the caller does not follow (its dialer died and has
    not been swept yet): said `lost`, as the sweep will close it; otherwise Ready went through and
    the outcome was asked for only at some later reconnect. The last item: it is still open (the
    caller checks that its channel is gone at Asterisk)."""
    row = await conn.fetchrow(
        """select a.id, a.channel_id, a.campaign_id, a.target_id, a.household_id, a.department_id, a.phone_id,
                  a.dialed_number, coalesce(t.attempts, 0) as attempts, coalesce(a.outcome, 'lost') as outcome,
                  a.ended_at is null as open
           from attempt a left join campaign_target t on t.id = a.target_id
           where a.operator_id = $1 and a.department_id = $2 and a.connected_at is not null
             and ((a.outcome = 'connected' or a.outcome = 'lost')  -- as callflow.needs_disposition
                  and a.ended_at > now() - interval '12 hours'
                  or a.ended_at is null and a.connected_at > now() - interval '12 hours')
             and not exists (select 1 from disposition d where d.attempt_id = a.id)
           order by coalesce(a.ended_at, a.connected_at) desc limit 1""",
        operator_id,
        department_id,
    )
    if row is None:
        return None
    call = OpenCall(row["id"], row["channel_id"], row["campaign_id"], _lease_of(row), False)
    return call, str(row["outcome"]), bool(row["open"])


async def assign_operator(conn: Conn, attempt_id: int, operator_id: int) -> None:
    """Predictive: the person who answered was given to this operator (once; on the timeline too)."""
    await conn.execute(
        """with e as (insert into attempt_event (attempt_id, kind, detail)
                      values ($1, 'assigned', jsonb_build_object('operator_id', $2::bigint)))
           update attempt set operator_id = $2 where id = $1 and operator_id is null""",
        attempt_id,
        operator_id,
    )
