"""The audit log: every view of a resident's record, every export, every login."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from dialer.store.db import Conn


async def record(
    conn: Conn,
    *,
    action: str,
    user_id: int | None,
    department_id: str | None,
    object_type: str = "",
    object_id: str | int = "",
    detail: Mapping[str, Any] | None = None,
    remote_addr: str = "",
    returning: bool = False,
) -> int | None:
    """Add an entry; with `returning`, its id (only for an entry the connection's department scope
    may read: RETURNING reads the row, and RLS refuses another scope's, e.g. a login's)."""
    entry: int | None = await conn.fetchval(
        """insert into audit_log (user_id, department_id, action, object_type, object_id, detail, remote_addr)
           values ($1, $2, $3, $4, $5, $6::jsonb, $7)"""
        + (" returning id" if returning else ""),
        user_id,
        department_id,
        action,
        object_type,
        str(object_id),
        json.dumps(dict(detail or {}), ensure_ascii=False),
        remote_addr,
    )
    return entry


@dataclass(frozen=True)
class Query:
    """What an administrator looks for in one department's log (`dialer audit`): a period (Tokyo
    days, inclusive), and optionally who did it, what about a household, which actions."""

    department_id: str
    first: date
    last: date
    user: tuple[int, str] | None = None  # (id, login ID): what they did
    household_ids: tuple[int, ...] | None = None  # None: any
    actions: tuple[str, ...] = ()  # each with those under it: record (record.view…), listen (listen.stop…)
    unscoped: bool = False  # also the entries of no department about the department's own users
    leave_out: int | None = None  # this reading's own audit.read entry


# A refused login names the person only by the ID typed (no user is logged in).
LOGIN_REFUSALS = ("login.failed", "login.locked", "login.busy", "login.address_locked")


def search_sql(q: Query) -> tuple[str, list[Any]]:
    """The select for the query's entries, oldest first, and its parameters. Entries about a
    household: its record views, lookups that found it, and what was done on or about its calls
    (an outcome saved, a supervisor listening in). Each arm can use an index (sql/0044)."""
    args: list[Any] = [q.department_id, q.first, q.last + timedelta(days=1)]
    # entries of no department: failed logins and lockouts of the department's users, changes to them
    unscoped = """ or (l.department_id is null and (u.department_id = $1 or l.detail ->> 'login' in
                        (select x.login from app_user x where x.department_id = $1)))"""
    where = [
        f"(l.department_id = $1{unscoped if q.unscoped else ''})",
        "l.at >= ($2::date::timestamp at time zone 'Asia/Tokyo')",
        "l.at < ($3::date::timestamp at time zone 'Asia/Tokyo')",
    ]
    if q.user is not None:
        args += [q.user[0], list(LOGIN_REFUSALS), q.user[1]]
        n = len(args)
        where.append(
            f"(l.user_id = ${n - 2} or (l.user_id is null and l.action = any(${n - 1}::text[])"
            f" and l.detail ->> 'login' = ${n}))"
        )
    if q.household_ids is not None:
        args.append(list(q.household_ids))
        n = len(args)
        calls = f"array(select a.id::text from attempt a where a.household_id = any(${n}::bigint[]))"
        where.append(
            f"""((l.object_type = 'household' and l.object_id = any(${n}::bigint[]::text[]))
                 or (l.detail ? 'household_id' and l.detail ->> 'household_id' = any(${n}::bigint[]::text[]))
                 or (l.object_type = 'attempt' and l.object_id = any({calls}))
                 or (l.detail ? 'attempt_id' and l.detail ->> 'attempt_id' = any({calls})))"""
        )
    if q.actions:
        args.append(list(q.actions))
        n = len(args)
        where.append(
            f"""exists (select 1 from unnest(${n}::text[]) w
                        where l.action = w or starts_with(l.action, rtrim(w, '.') || '.'))"""
        )
    if q.leave_out is not None:
        args.append(q.leave_out)
        where.append(f"l.id <> ${len(args)}")
    # The household an entry is about, by its 世帯番号 while it is kept: the one named in it (a
    # caller looked up), else its call's (an outcome, a listen-in), else the one viewed.
    number = "~ '^[0-9]{1,18}$'"
    sql = f"""select l.at, u.login, u.display_name as user_name, l.action, l.object_type, l.object_id,
                     (select h.household_no from household h where h.id = case
                         when l.detail ->> 'household_id' {number} then (l.detail ->> 'household_id')::bigint
                         when l.detail ->> 'attempt_id' {number}
                         then (select a.household_id from attempt a where a.id = (l.detail ->> 'attempt_id')::bigint)
                         when l.object_type = 'attempt' and l.object_id {number}
                         then (select a.household_id from attempt a where a.id = l.object_id::bigint)
                         when l.object_type = 'household' and l.object_id {number} then l.object_id::bigint
                     end) as household_no,
                     l.detail::text as detail, l.remote_addr
              from audit_log l left join app_user u on u.id = l.user_id
              where {" and ".join(where)}
              order by l.at, l.id"""
    return sql, args
