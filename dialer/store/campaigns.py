"""Campaigns as the engine and the pages read them."""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import asyncpg

from campaigns.pacer import OFCOM_LIMIT
from dialer.store import db
from dialer.store.db import Conn, from_jsonb
from dialer.store.pacing import LIVE


@dataclass(frozen=True)
class CampaignInfo:
    id: int
    department_id: str
    name: str
    dial_mode: str
    caller_id: str
    status: str
    calling_window: dict[str, Any] | None = None  # as written (campaigns.windows.parse reads it)
    retry_policy: dict[str, Any] | None = None  # as written (campaigns.retry.parse reads it)
    pacing: dict[str, Any] | None = None  # as written (campaigns.pacer.Settings.parse reads it)
    segment: dict[str, Any] | None = None  # as written (campaigns.segments.parse reads it)
    operators: tuple[int, ...] = ()  # assigned operators' user ids; none: every operator of the department
    machine_message: str | None = None  # sound file left on answering machines; None: hang up
    script: str = ""  # the talk script operators read (campaigns/scripts.py); "": none

    def open_to(self, user_id: int) -> bool:
        """Whether this operator may take the campaign's calls."""
        return not self.operators or user_id in self.operators


_COLUMNS = (
    "id, department_id, name, dial_mode, caller_id, status, calling_window, retry_policy, pacing, segment, "
    "machine_message, script, "
    "array(select o.user_id from campaign_operator o where o.campaign_id = campaign.id order by 1) as operators"
)
_JSONB = ("calling_window", "retry_policy", "pacing", "segment")


def _info(row: asyncpg.Record) -> CampaignInfo:
    return CampaignInfo(
        id=row["id"],
        department_id=row["department_id"],
        name=row["name"],
        dial_mode=row["dial_mode"],
        caller_id=row["caller_id"],
        status=row["status"],
        calling_window=from_jsonb(row["calling_window"]),
        retry_policy=from_jsonb(row["retry_policy"]),
        pacing=from_jsonb(row["pacing"]),
        segment=from_jsonb(row["segment"]),
        operators=tuple(row["operators"]),
        machine_message=row["machine_message"],
        script=row["script"],
    )


async def get(conn: Conn, campaign_id: int, department_id: str | None) -> CampaignInfo | None:
    row = await conn.fetchrow(
        f"select {_COLUMNS} from campaign where id = $1 and department_id = $2", campaign_id, department_id
    )
    return _info(row) if row else None


async def by_id(conn: Conn, campaign_id: int) -> CampaignInfo | None:
    """Any department's campaign (an administrator's command)."""
    row = await conn.fetchrow(f"select {_COLUMNS} from campaign where id = $1", campaign_id)
    return _info(row) if row else None


async def listed(conn: Conn, department_id: str | None = None) -> list[CampaignInfo]:
    """Every campaign (of one department, or all of them for an administrator's command)."""
    rows = await conn.fetch(
        f"select {_COLUMNS} from campaign where $1::text is null or department_id = $1 order by id",
        department_id,
    )
    return [_info(r) for r in rows]


SETTABLE = ("name", "dial_mode", "caller_id", "status", "machine_message", "script", *_JSONB)
SOUND = re.compile(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*")  # a sound file as Asterisk names it (no ..)


NAME_MAX = 100


def clean_name(text: str) -> str | None:
    """A campaign's name as typed (NFKC, trimmed); None when it is empty, longer than NAME_MAX or
    holds a control character (a name is shown on every page; PostgreSQL text holds no NUL)."""
    name = unicodedata.normalize("NFKC", text).strip()
    if not 1 <= len(name) <= NAME_MAX or any(unicodedata.category(ch)[0] == "C" for ch in name):
        return None
    return name


async def name_taken(conn: Conn, department_id: str, name: str, but: int | None = None) -> bool:
    """Whether another campaign of the department (not `but`) has this name (names are unique)."""
    return bool(
        await conn.fetchval(
            "select 1 from campaign where department_id = $1 and name = $2 and id is distinct from $3",
            department_id,
            name,
            but,
        )
    )


async def create(conn: Conn, department_id: str, name: str, dial_mode: str, caller_id: str) -> int:
    sql = """insert into campaign (department_id, name, dial_mode, caller_id, status)
             values ($1, $2, $3, $4, 'draft') returning id"""
    return int(await conn.fetchval(sql, department_id, name, dial_mode, caller_id))


async def update(conn: Conn, campaign_id: int, changes: dict[str, Any]) -> CampaignInfo | None:
    """Change some settings (already checked by the caller); jsonb ones are written as given,
    None resets them to the defaults. The engine reads a campaign again before every call."""
    if not changes:
        return await by_id(conn, campaign_id)
    unknown = set(changes) - set(SETTABLE)
    if unknown:
        raise ValueError(f"not a campaign setting: {', '.join(sorted(unknown))}")
    names = list(changes)
    sets = ", ".join(
        f"{n} = ${i + 2}::jsonb" if n in _JSONB else f"{n} = ${i + 2}" for i, n in enumerate(names)
    )
    values = [
        json.dumps(changes[n], ensure_ascii=False) if n in _JSONB and changes[n] is not None else changes[n]
        for n in names
    ]
    row = await conn.fetchrow(
        f"update campaign set {sets}, updated_at = now() where id = $1 returning {_COLUMNS}",
        campaign_id,
        *values,
    )
    return _info(row) if row else None


class NotOperators(ValueError):
    """Some of the users to assign are not operators of the campaign's department."""


async def set_operators(conn: Conn, campaign_id: int, user_ids: list[int]) -> None:
    """Assign exactly these operators (none: the campaign is open to every operator of its department)."""
    async with db.transaction(conn) as tx:
        department = await tx.fetchval("select department_id from campaign where id = $1", campaign_id)
        found = await tx.fetch(
            "select id from app_user where id = any($1::bigint[]) and role = 'operator' and department_id = $2",
            user_ids,
            department,
        )
        if len(found) != len(set(user_ids)):
            raise NotOperators(sorted(set(user_ids) - {r["id"] for r in found}))
        await tx.execute("delete from campaign_operator where campaign_id = $1", campaign_id)
        await tx.execute(
            """insert into campaign_operator (campaign_id, user_id, department_id)
               select $1, u, $2 from unnest($3::bigint[]) u""",
            campaign_id,
            department,
            sorted(set(user_ids)),
        )


async def operators_of(conn: Conn, department_id: str | None) -> list[tuple[int, str, str]]:
    """A department's operators: id, login, display name."""
    rows = await conn.fetch(
        "select id, login, display_name from app_user where department_id = $1 and role = 'operator' and active "
        "order by login",
        department_id,
    )
    return [(r["id"], r["login"], r["display_name"]) for r in rows]


async def active(conn: Conn, department_id: str | None) -> list[CampaignInfo]:
    rows = await conn.fetch(
        f"select {_COLUMNS} from campaign where department_id = $1 and status = 'active' order by id",
        department_id,
    )
    return [_info(r) for r in rows]


async def open_to(conn: Conn, department_id: str | None, user_id: int) -> list[CampaignInfo]:
    """The active campaigns an operator may take calls for (the operator page's list)."""
    return [c for c in await active(conn, department_id) if c.open_to(user_id)]


async def progress_of(pool: asyncpg.Pool, department_id: str | None) -> list[dict[str, Any]]:
    """`progress` for a department's supervisor; for an administrator (no department), every
    department's, each read in that department's scope (a web request never sees them all at once)."""
    if department_id is not None:
        ids = [department_id]
    else:
        ids = [r["id"] for r in await pool.fetch("select id from department order by id")]
    listed: list[dict[str, Any]] = []
    for dept in ids:
        async with db.department(pool, dept) as conn:
            listed += await progress(conn, dept)
    return listed


async def progress(conn: Conn, department_id: str | None) -> list[dict[str, Any]]:
    """Per campaign: households by state and today's attempts by outcome (for the supervisor).
    Pending households are split: never called yet (untried) and due again (a retry, a call-back)."""
    rows = await conn.fetch(
        f"""select c.id, c.name, c.department_id, c.dial_mode, c.status,
                      c.status = 'active' and coalesce(c.caller_id, '') = '' as no_caller_id,
                      c.status = 'active' and count(t.id) = 0 as no_households,
                      count(t.id) filter (where t.state = 'pending' and t.attempts = 0) as untried,
                      count(t.id) filter (where t.state = 'pending' and t.attempts > 0) as retrying,
                      count(t.id) filter (where t.state = 'leased') as leased,
                      count(t.id) filter (where t.state = 'done') as done,
                      count(t.id) filter (where t.state = 'excluded') as excluded,
                      (select jsonb_object_agg(outcome, n) from (
                          select coalesce(a.outcome, 'in_progress') as outcome, count(*) as n from attempt a
                          where a.campaign_id = c.id
                            and a.originated_at >= date_trunc('day', now() at time zone 'Asia/Tokyo')
                                                   at time zone 'Asia/Tokyo'
                          group by 1) o) as today,
                      -- what the operators recorded on today's calls (a call ended before the
                      -- connection can still have an outcome: 番号誤り said at once, QA)
                      (select jsonb_agg(jsonb_build_object('code', r.code, 'ja', coalesce(dc.label_ja, r.code),
                                                           'en', coalesce(dc.label_en, r.code), 'n', r.n)
                                        order by r.n desc, r.code) from (
                          select d.code, count(*) as n
                          from attempt a join disposition d on d.attempt_id = a.id
                          where a.campaign_id = c.id
                            and a.originated_at >= date_trunc('day', now() at time zone 'Asia/Tokyo')
                                                   at time zone 'Asia/Tokyo'
                          group by d.code) r
                       left join lateral (select x.label_ja, x.label_en from disposition_code x  -- (once a code)
                                          where x.code = r.code and (x.department_id = c.department_id or x.department_id is null)
                                          order by x.department_id nulls last limit 1) dc on true) as recorded,
                      (select round(count(*) filter (where a.outcome = 'abandoned')::numeric
                                    / nullif(count(*) filter (where {LIVE}), 0), 4)
                       from attempt a where a.campaign_id = c.id and a.originated_at > now() - interval '25 hours'
                         and a.answered_at > now() - interval '24 hours') as abandon_rate,
                      case when jsonb_typeof(c.pacing -> 'target_abandon') = 'number'
                           then (c.pacing ->> 'target_abandon')::float end as target_abandon
               from campaign c left join campaign_target t on t.campaign_id = c.id
               where c.department_id = $1 group by c.id order by c.id""",
        department_id,
    )
    return [
        {
            **dict(r),
            "today": from_jsonb(r["today"]) or {},
            "recorded": from_jsonb(r["recorded"]) or [],
            "abandon_rate": None if r["abandon_rate"] is None else float(r["abandon_rate"]),
            # the supervisor's target (campaigns.pacer: at most the Ofcom 3 %), for the page to flag
            "target_abandon": OFCOM_LIMIT
            if r["target_abandon"] is None
            else min(r["target_abandon"], OFCOM_LIMIT),
        }
        for r in rows
    ]
