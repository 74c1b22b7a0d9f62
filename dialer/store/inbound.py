"""Residents calling in: which department's line they called, who they may be, what they heard.

A caller ID proves nothing (it can be forged), so the lookup only points the operator to a
household; nothing about the debt is ever said to a caller by the machine.
"""

from __future__ import annotations

import asyncpg

from dialer.store import db
from dialer.store.db import Conn


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
    """The call in the household's contact history (経過記録): method phone_in."""
    async with db.department(pool, department_id) as conn:
        await conn.execute(
            """insert into contact_history (department_id, household_id, at, method, place, content)
               values ($1, $2, now(), 'phone_in', $3, $4)""",
            department_id,
            household_id,
            number,
            content,
        )
