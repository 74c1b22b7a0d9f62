"""Test data written through the same tables the product uses (no shortcuts around constraints)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from campaigns import segments
from campaigns.hours import TOKYO
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.store import users
from dialer.store.users import User

PASSWORD = "correct-horse-1"


@dataclass(frozen=True)
class World:
    operator: User
    supervisor: User
    campaign_id: int
    department: str


async def department(pool: asyncpg.Pool, dept: str = "nhi") -> None:
    await pool.execute(
        "insert into department (id, name_ja, name_en) values ($1, $2, $3) on conflict do nothing",
        dept,
        "国民健康保険課" if dept == "nhi" else "税務課",
        dept.upper(),
    )


async def user(
    pool: asyncpg.Pool,
    login: str,
    role: str = "operator",
    dept: str | None = "nhi",
    ext: str | None = None,
    pbx: str | None = None,
) -> User:
    return await users.create_user(
        pool,
        login=login,
        password=PASSWORD,
        display_name=f"テスト {login}",
        role=role,
        department_id=dept,
        extension=ext,
        pbx=pbx,
    )


async def campaign(
    pool: asyncpg.Pool, dept: str = "nhi", mode: str = "progressive", name: str = "テスト催告"
) -> int:
    cid: int = await pool.fetchval(
        "insert into campaign (department_id, name, dial_mode, caller_id) values ($1, $2, $3, '0312340001') returning id",
        dept,
        name,
        mode,
    )
    return cid


async def household(
    pool: asyncpg.Pool,
    campaign_id: int,
    number: str,
    *,
    dept: str = "nhi",
    no: str | None = None,
    name: str = "見本 太郎",
    kana: str = "ミホン タロウ",
    priority: int = 100,
    unpaid: int = 24_000,
) -> int:
    hid: int = await pool.fetchval(
        "insert into household (department_id, household_no, postal_code, address) values ($1, $2, '999-0001', $3) returning id",
        dept,
        no or f"H{number}",
        "見本県見本市見本町1丁目2番3号",
    )
    pid = await pool.fetchval(
        """insert into person (household_id, department_id, atena_no, name_kanji, name_kana, birth_date, is_head)
           values ($1, $2, $3, $4, $5, $6, true) returning id""",
        hid,
        dept,
        f"A{no or number}",
        name,
        kana,
        date(1980, 4, 1),
    )
    await pool.execute(
        "insert into phone (household_id, person_id, department_id, number, kind) values ($1, $2, $3, $4, 'landline')",
        hid,
        pid,
        dept,
        number,
    )
    await pool.execute(
        """insert into debt (household_id, person_id, department_id, debt_type, fiscal_year, installment,
                             assessed_yen, paid_yen, due_date) values ($1, $2, $3, 'nhi', 2025, 3, $4, 0, current_date - 100)""",
        hid,
        pid,
        dept,
        unpaid,
    )
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id, priority) values ($1, $2, $3, $4)",
        campaign_id,
        hid,
        dept,
        priority,
    )
    return hid


async def world_with_callee(
    pool: asyncpg.Pool, sim: SimulatedPbx, number: str, behaviour: Behaviour, **household_kw: Any
) -> tuple[World, int]:
    """The usual scene: a world, one household to call at `number`, and how that callee behaves."""
    w = await world(pool)
    hid = await household(pool, w.campaign_id, number, **household_kw)
    sim.script(number, behaviour)
    return w, hid


def predictive_originates(sim: SimulatedPbx) -> list[dict[str, object]]:
    """The predictive calls the product asked the simulated PBX to place."""
    return [a for a in sim.actions("Originate") if a.get("Context") == "dialer-predictive"]


async def world(pool: asyncpg.Pool, mode: str = "progressive") -> World:
    await department(pool, "nhi")
    op = await user(pool, "op1", "operator", "nhi", "1001")
    sv = await user(pool, "sv1", "supervisor", "nhi")
    cid = await campaign(pool, "nhi", mode)
    return World(operator=op, supervisor=sv, campaign_id=cid, department="nhi")


async def call_history(
    pool: asyncpg.Pool,
    campaign_id: int,
    operator_id: int,
    *,
    dialed: int = 120,
    live: int = 12,
    abandoned: int = 0,
    live_ring_s: float = 5.0,
    talk_s: float = 90.0,
    wrap_s: float = 20.0,
    hours_ago: int = 0,
    morning: int = 40,
) -> None:
    """A campaign's recent calls, as the pacer learns from them: `live` conversations (with their
    dispositions), `abandoned` people who heard the message, the rest rang 30 s unanswered; all
    within the last hour (or that hour `hours_ago` earlier), for households already done.

    With `morning`, that many conversations ten hours before too: too long ago to teach the pacer
    anything or count in the hour, they give the day the live calls one abandon needs to stay
    under 3 % (pacer._room_for_one), as in a campaign that has been calling since the morning."""
    if morning:
        await call_history(
            pool, campaign_id, operator_id, dialed=morning, live=morning, hours_ago=10, morning=0
        )
    await pool.execute(
        """
        with h as (insert into household (department_id, household_no, postal_code, address)
                   select 'nhi', 'HIST-' || $1::bigint || '-' || $9::int || '-' || g, '999-0001', '見本県' from generate_series(1, $2) g
                   returning id),
             t as (insert into campaign_target (campaign_id, household_id, department_id, state)
                   select $1, id, 'nhi', 'done' from h returning id, household_id),
             n as (select t.*, row_number() over (order by t.id) as n from t),
             a as (insert into attempt (campaign_id, target_id, household_id, department_id, operator_id, dial_mode,
                                        channel_id, outcome, amd_status, originated_at, answered_at, connected_at,
                                        ended_at)
                   select $1, n.id, n.household_id, 'nhi', case when n.n <= $3 then $5::bigint end, 'predictive',
                          'hist-' || n.id,
                          case when n.n <= $3 then 'connected' when n.n <= $3 + $4 then 'abandoned' else 'no_answer' end,
                          case when n.n <= $3 + $4 then 'HUMAN' end,
                          s.at, case when n.n <= $3 + $4 then s.at + make_interval(secs => $6) end,
                          case when n.n <= $3 then s.at + make_interval(secs => $6 + 2.4) end,
                          s.at + case when n.n <= $3 then make_interval(secs => $6 + 2.4 + $7)
                                      when n.n <= $3 + $4 then make_interval(secs => $6 + 4.4)
                                      else interval '30 seconds' end
                   from n, lateral (select now() - make_interval(hours => $9, mins => 50) + n.n * interval '10 seconds' as at) s
                   returning id, operator_id, ended_at)
        insert into disposition (attempt_id, client_token, operator_id, department_id, code, created_at)
        select a.id, gen_random_uuid(), a.operator_id, 'nhi', 'refused', a.ended_at + make_interval(secs => $8)
        from a where a.operator_id is not null
        """,
        campaign_id,
        dialed,
        live,
        abandoned,
        operator_id,
        live_ring_s,
        talk_s,
        wrap_s,
        hours_ago,
    )


async def households_for_a_segment(
    pool: asyncpg.Pool, campaign_id: int, number_prefix: str, no_prefix: str, amounts: tuple[int, ...]
) -> None:
    """Households owing these amounts, carried over from last fiscal year and due 200 days ago (inside
    the limitation period, whatever the date the test runs on), on no campaign's list: a segment decides."""
    for i, unpaid in enumerate(amounts):
        await household(pool, campaign_id, f"{number_prefix}{i:02d}", no=f"{no_prefix}{i}", unpaid=unpaid)
    await pool.execute("delete from campaign_target")
    today = datetime.now(TOKYO).date()
    await pool.execute(
        "update debt set fiscal_year = $1, due_date = current_date - 200", segments.accounting_year(today) - 1
    )
