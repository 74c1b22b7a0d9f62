"""Residents calling in: which department's line they called, who they may be, what they heard.

A caller ID proves nothing (it can be forged), so the lookup only points the operator to a
household; nothing about the debt is ever said to a caller by the machine.
"""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from dialer.store import db
from dialer.store.db import Conn
from dialer.store.processes import seen_within


async def department_for_line(conn: Conn, digits: str) -> str | None:
    """The department whose call-back number is this line (digits only, as dialled)."""
    if not digits:
        return None
    value = await conn.fetchval(
        """select id from department
           where regexp_replace(callback_number, '[^0-9]', '', 'g') = $1 order by id limit 1""",
        digits,
    )
    return str(value) if value is not None else None


async def department_exists(conn: Conn, department_id: str) -> bool:
    return bool(await conn.fetchval("select exists (select 1 from department where id = $1)", department_id))


async def households_with_number(pool: asyncpg.Pool, department_id: str, number: str) -> list[int]:
    """Households of this department with this number (national digits), seen as the department."""
    async with db.department(pool, department_id) as conn:
        rows = await conn.fetch(
            """select distinct household_id from phone
               where department_id = $1 and number = $2 order by household_id limit 10""",
            department_id,
            number,
        )
    return [r["household_id"] for r in rows]


async def record_call_in(
    pool: asyncpg.Pool, department_id: str, household_id: int, number: str, content: str
) -> None:
    """The call in the household's contact history (経過記録): method phone_in, source ivr (not a
    contact: a caller ID proves nobody, and nobody spoke to the caller)."""
    async with db.department(pool, department_id) as conn:
        await conn.execute(
            """insert into contact_history (department_id, household_id, at, method, place, content, source)
               values ($1, $2, now(), 'phone_in', $3, $4, 'ivr')""",
            department_id,
            household_id,
            number,
            content,
        )


async def open_call(
    pool: asyncpg.Pool,
    *,
    department_id: str,
    household_id: int | None,
    caller_number: str | None,
    uniqueid: str,
    operator_id: int,
    link: str,
    owner: str,
) -> int:
    """A caller put through to an operator: an 'inbound' attempt, already answered (its timeline
    starts with 'inbound' and 'assigned'). Returns its id. A household id that is not the
    department's (a forged argument) is not kept: the operator then asks who is calling."""
    async with db.department(pool, department_id) as conn, conn.transaction():
        attempt_id = await conn.fetchval(
            """insert into attempt (department_id, household_id, operator_id, dial_mode, channel_id, link,
                                    owner, caller_number, phase, answered_at)
               select $1, (select id from household where id = $2 and department_id = $1), $3, 'inbound',
                      $4, $5, $6, $7, 'answered', now()
               returning id""",
            department_id,
            household_id,
            operator_id,
            uniqueid,
            link,
            owner,
            caller_number,
        )
        await conn.execute(
            """insert into attempt_event (attempt_id, kind, detail)
               values ($1, 'inbound', '{}'), ($1, 'assigned', jsonb_build_object('operator_id', $2::bigint))""",
            attempt_id,
            operator_id,
        )
    return int(attempt_id)


async def close_calls_of_dead(
    conn: Conn, *, owner: str, dead_after_s: float, link: str | None, live_channels: set[str] | None
) -> list[int]:
    """Inbound calls handled by a dialer that is gone, and over at our Asterisk: closed as lost."""
    rows = await conn.fetch(
        f"""update attempt a set phase = 'ended', outcome = coalesce(outcome, 'lost'), ended_at = now()
           where a.target_id is null and a.ended_at is null and a.owner is distinct from $1
             and not exists (select 1 from dialer_process p where p.owner = a.owner
                               and {seen_within("$2", "p")})
             and a.link = $3 and $4::text[] is not null and not (a.channel_id = any($4::text[]))
           returning a.id""",
        owner,
        dead_after_s,
        link,
        sorted(live_channels) if live_channels is not None else None,
    )
    return [r["id"] for r in rows]


MAX_LOOKUPS = 5  # per call: enough for a mistyped number, not for browsing the register


class IdentifyRefused(Exception):
    """The lookup cannot be made: `key` is a message key, `status` the HTTP status."""

    def __init__(self, key: str, status: int) -> None:
        super().__init__(key)
        self.key, self.status = key, status


KEYS = ("atena_no", "household_no")


async def identify(
    pool: asyncpg.Pool,
    *,
    attempt_id: int,
    user_id: int,
    department_id: str,
    key: str,
    by: str = "atena_no",
    remote_addr: str = "",
) -> int | None:
    """The household a caller matched to none (or to several) gives by its 宛名番号 or 世帯番号 (`by`:
    two separate series, and one number may be in both), on the operator's own call: attached to
    the call (its outcome then goes to the household's 経過記録, a promise to pay too), or None if
    the department has no such number. A wrong one can be looked up again until the outcome is
    saved. Each lookup is in the audit log, found or not; at most MAX_LOOKUPS a call."""
    assert by in KEYS
    household_id: int | None = None
    async with db.department(pool, department_id) as conn, conn.transaction():
        call = await conn.fetchrow(
            "select operator_id, dial_mode, household_id from attempt where id = $1 for update", attempt_id
        )
        if call is None or call["dial_mode"] != "inbound":
            raise IdentifyRefused("error.attempt", 404)
        if call["operator_id"] != user_id:
            raise IdentifyRefused("error.not_your_call", 403)
        if call["household_id"] is not None and await conn.fetchval(
            "select exists (select 1 from disposition where attempt_id = $1)", attempt_id
        ):
            raise IdentifyRefused("error.identified_already", 409)  # its outcome is filed under it
        tried = await conn.fetchval(
            """select count(*) from audit_log
               where object_type = 'attempt' and object_id = $1 and action = 'inbound.identify'""",
            str(attempt_id),
        )
        refused = tried >= MAX_LOOKUPS
        if refused:  # kept on record (the transaction commits: the refusal is raised after it)
            await conn.execute(
                """insert into audit_log (user_id, department_id, action, object_type, object_id, detail, remote_addr)
                   values ($1, $2, 'inbound.identify_refused', 'attempt', $3, $4::jsonb, $5)""",
                user_id,
                department_id,
                str(attempt_id),
                json.dumps({"by": by, "reason": "too_many_lookups"}),
                remote_addr,
            )
        else:
            household_id = await _look_up(
                conn, attempt_id, user_id, department_id, key, by, call, remote_addr
            )
    if refused:
        raise IdentifyRefused("error.too_many_lookups", 429)
    return household_id


async def _look_up(
    conn: db.Connection,
    attempt_id: int,
    user_id: int,
    department_id: str,
    key: str,
    by: str,
    call: Any,
    remote_addr: str,
) -> int | None:
    """One lookup on a call (its row locked): the household attached if found, audit-logged either
    way (not the number typed: a 宛名番号 would outlive its resident's erasure in the log)."""
    household_id: int | None = await conn.fetchval(
        "select household_id from person where department_id = $1 and atena_no = $2"
        if by == "atena_no"
        else "select id from household where department_id = $1 and household_no = $2",
        department_id,
        key,
    )
    if household_id is not None:
        await conn.execute("update attempt set household_id = $2 where id = $1", attempt_id, household_id)
    await conn.execute(
        """insert into audit_log (user_id, department_id, action, object_type, object_id, detail, remote_addr)
           values ($1, $2, 'inbound.identify', 'attempt', $3, $4::jsonb, $5)""",
        user_id,
        department_id,
        str(attempt_id),
        json.dumps(
            {"found": household_id is not None, "by": by, "household_id": household_id,
             "replaced": call["household_id"]}
        ),
        remote_addr,
    )  # fmt: skip
    return household_id
