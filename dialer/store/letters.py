"""催告書: the households a campaign cannot reach by phone, listed for reminder letters.

DOMAIN: 電話番号不明者に対する催告書の出力 — the call centre sends a reminder letter to those it
cannot phone. A household is on a campaign's list when the campaign's segment selects it today
whatever its phones (it owes, in scope, head living and resident, no plan being kept, …), and

- it has no number that may be dialled (none known, all invalid or do-not-call), or the campaign
  found none when it came to call it (set aside, `no_phone`); or
- the campaign has finished with it (`done`: the calls its retry policy allows were used up, every
  number was wrong; not when its last calls never left the PBX: that is the PBX's fault),

and nobody reached the person owing since the campaign began (a contact as the segments count one:
an outcome with 本人, a member of staff's entry, an external 経過記録 of a call, visit or counter
visit), and no letter went to it in the last `again_days` days. A household in a call is not listed.

`count` says how many, naming nobody and recording nothing; `last_again` repeats the last list
without recording letters. `make` writes the list (one row per
household, sorted by postal code for the post, in the department's export encoding), a 経過記録
entry 'letter' for each household (exported to the delinquency system with the rest; a letter is
not a contact, so the household stays in its campaigns), and the audit log, in one transaction: a
list made is a list recorded. Two lists of one campaign made at once take turns, so no household
is on both. Staff only (the page and the CLI check).
"""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

import asyncpg

from campaigns import segments
from campaigns.hours import TOKYO
from dialer.campaign_settings import tokyo_today
from dialer.csvsafe import cell
from dialer.jpformat import wareki
from dialer.store import audit, campaigns, db
from dialer.store.exports import encode
from dialer.store.segments import campaign_query

AGAIN_DAYS = 30  # a household is not listed again within this many days of its last letter
MAX_AGAIN_DAYS = 3650
HEADER = ("郵便番号", "住所", "氏名", "氏名カナ", "世帯番号", "宛名番号", "未納額", "最も古い納期限", "理由",
          "架電回数", "キャンペーン")  # fmt: skip
NO_PHONE = "電話番号なし"
NOT_REACHED = "電話で接触できず"
_NO_NUMBER = ("no_phone", "wrong_number", "unavailable")  # why a finished household had no number to call


class LetterError(Exception):
    """Why no list can be made (a message key of web/messages)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


@dataclass(frozen=True)
class Count:
    households: int
    no_phone: int  # of them, with no number that may be dialled
    unpaid_yen: int
    # left off the list: no address to post a letter to (世帯番号)
    no_address: tuple[str, ...] = ()
    # on the list, a name or address the department's encoding cannot write (〓 in the file)
    unwritable: tuple[str, ...] = ()
    encoding: str = ""


@dataclass(frozen=True)
class Letters:
    campaign: str
    department_id: str
    rows: int
    encoding: str
    data: bytes
    made_on: date
    counted: Count | None = None  # what was picked (the list made again has none: its households are)

    @property
    def filename(self) -> str:
        return f"{self.department_id}-letters-{self.made_on:%Y%m%d}.csv"


_PICKED = """
with m as materialized ({segment}),
picked as (
    select m.household_id, m.unpaid_yen, m.oldest_due, h.household_no, h.postal_code, h.address,
           h.address = '' as no_address,  -- (left off the list: a letter needs somewhere to go)
           coalesce(t.attempts, 0) as attempts,
           not h.dialable or coalesce(t.last_outcome = any(${no_number}::text[]), false) as no_phone
    from m
    join household h on h.id = m.household_id
    left join campaign_target t on t.campaign_id = ${campaign} and t.household_id = m.household_id
    where ((t.state = 'done' and t.last_outcome is distinct from 'failed' and t.last_outcome is distinct from 'congestion')
           or (t.state = 'excluded' and t.last_outcome = 'no_phone') or not h.dialable)
      and not exists (select 1 from campaign_target o where o.household_id = m.household_id and o.state = 'leased')
      and not exists (select 1 from contact_history ch where ch.household_id = m.household_id
                      and {contact_entry} and ch.at >= ${since})
      and not exists (select 1 from attempt a where a.household_id = m.household_id
                      and {contact_call} and a.connected_at >= ${since})
      and not exists (select 1 from contact_history l where l.household_id = m.household_id
                      and l.method = 'letter' and l.at > now() - make_interval(days => ${again}))
)
"""


async def _selected(
    conn: db.Conn, campaign_id: int, department_id: str, today: date
) -> tuple[campaigns.CampaignInfo, segments.Query]:
    """The campaign and the query of the households its segment selects today, whatever their phones."""
    c = await campaigns.get(conn, campaign_id, department_id)
    if c is None:
        raise LetterError("let.err.campaign")
    try:
        segment = segments.parse(c.segment)
    except segments.SegmentError:
        raise LetterError("let.err.segment") from None
    return c, await campaign_query(conn, c.id, department_id, segment, today, phone=False)


async def _picked(
    conn: db.Conn, campaign_id: int, department_id: str, again_days: int, today: date
) -> tuple[str, tuple[object, ...], campaigns.CampaignInfo]:
    if not 0 <= again_days <= MAX_AGAIN_DAYS:
        raise LetterError("let.err.again")
    c, q = await _selected(conn, campaign_id, department_id, today)
    n = len(q.params)
    since = await conn.fetchval("select created_at from campaign where id = $1", c.id)
    sql = _PICKED.format(
        segment=q.sql, no_number=n + 1, campaign=n + 2, since=n + 3, again=n + 4,
        contact_entry=segments.CONTACT_ENTRY, contact_call=segments.CONTACT_CALL,
    )  # fmt: skip
    return sql, (*q.params, list(_NO_NUMBER), c.id, since, again_days), c


async def count(
    conn: db.Conn,
    campaign_id: int,
    department_id: str,
    again_days: int = AGAIN_DAYS,
    today: date | None = None,
) -> Count:
    """How many households the campaign's list would have now (nothing recorded), and which of them
    (by 世帯番号) are left off for want of an address, or have a name or address the department's
    encoding cannot write: staff see it before the list is made, not on an envelope."""
    sql, params, _ = await _picked(conn, campaign_id, department_id, again_days, today or tokyo_today())
    rows = await conn.fetch(sql + _WITH_HEAD, *params, timeout=600)
    encoding = await conn.fetchval("select export_encoding from department where id = $1", department_id)
    return _counted(rows, encoding)


def _counted(rows: list[asyncpg.Record], encoding: str) -> Count:
    """The count of the picked rows (`_WITH_HEAD`): the list is those with an address."""
    listed = [r for r in rows if not r["no_address"]]
    return Count(
        len(listed),
        sum(1 for r in listed if r["no_phone"]),
        sum(int(r["unpaid_yen"]) for r in listed),
        tuple(r["household_no"] for r in rows if r["no_address"]),
        tuple(r["household_no"] for r in listed if not _writable(r, encoding)),
        encoding,
    )


_WITH_HEAD = """select p.*, coalesce(head.atena_no, '') as atena_no, coalesce(head.name_kanji, '') as name,
                       coalesce(head.name_kana, '') as kana
                from picked p
                left join lateral (select atena_no, name_kanji, name_kana from person
                                   where household_id = p.household_id order by is_head desc, id limit 1) head on true
                order by p.postal_code, p.household_no"""


def _writable(row: asyncpg.Record, encoding: str) -> bool:
    """Whether the encoding writes the household's name, kana and address as they are (𠮷 is not
    in Shift_JIS: it would be 〓 on the envelope)."""
    text = "".join((row["name"], row["kana"], row["address"], row["postal_code"]))
    return "〓" not in text and "〓" not in encode(text, encoding).decode(encoding)


async def make(
    pool: asyncpg.Pool,
    *,
    campaign_id: int,
    department_id: str,
    user_id: int,
    via: str,
    again_days: int = AGAIN_DAYS,
    today: date | None = None,
    os_user: str | None = None,
    remote_addr: str = "",
    deliver: Callable[[bytes], None] | None = None,
) -> Letters:
    """The campaign's list as CSV, each household's letter in its 経過記録, the list in the audit log.

    `deliver` (the CLI: write the file and sync it) runs before anything is committed: a list that
    could not be written records no letter."""
    today = today or tokyo_today()
    async with db.department(pool, department_id) as conn:  # RLS: this department's residents only
        # one list of a campaign at a time: the second waits, then finds the first's households lettered
        await conn.execute("select pg_advisory_xact_lock(hashtext('dialer.letters'), $1::int)", campaign_id)
        sql, params, c = await _picked(conn, campaign_id, department_id, again_days, today)
        picked = await conn.fetch(sql + _WITH_HEAD, *params, timeout=600)
        rows = [r for r in picked if not r["no_address"]]
        reasons = [NO_PHONE if r["no_phone"] else NOT_REACHED for r in rows]
        await conn.execute(
            """insert into contact_history (department_id, household_id, at, method, content, recorded_by, source,
                                            campaign_id)
               select $1, h, now(), 'letter', left('催告書送付(' || why || ': ' || $4 || ')', 4000), $5, 'staff', $6
               from unnest($2::bigint[], $3::text[]) as x (h, why)""",
            department_id, [r["household_id"] for r in rows], reasons, c.name, user_id, c.id,
        )  # fmt: skip
        await audit.record(
            conn, action="export", user_id=user_id, department_id=department_id, object_type="letters",
            object_id=c.id, detail={"campaign": c.name, "rows": len(rows), "again_days": again_days, "via": via}
            | ({"os_user": os_user} if os_user else {}), remote_addr=remote_addr,
        )  # fmt: skip
        encoding = await conn.fetchval("select export_encoding from department where id = $1", department_id)
        data = encode(_csv(rows, reasons, c.name), encoding)
        if deliver is not None:
            await asyncio.to_thread(deliver, data)
    return Letters(c.name, department_id, len(rows), encoding, data, today, _counted(picked, encoding))


_LAST = """
with m as materialized ({segment}),
last as (select max(at) as at from contact_history where campaign_id = ${campaign} and method = 'letter')
select l.household_id, h.household_no, h.postal_code, h.address, m.unpaid_yen, m.oldest_due,
       coalesce(t.attempts, 0) as attempts, l.content like '催告書送付(' || ${no_phone} || '%' as no_phone,
       coalesce(head.atena_no, '') as atena_no, coalesce(head.name_kanji, '') as name,
       coalesce(head.name_kana, '') as kana, last.at as made_at, m.household_id is not null as owing
from last
join contact_history l on l.campaign_id = ${campaign} and l.method = 'letter' and l.at = last.at
join household h on h.id = l.household_id
left join m on m.household_id = l.household_id
left join campaign_target t on t.campaign_id = ${campaign} and t.household_id = l.household_id
left join lateral (select atena_no, name_kanji, name_kana from person
                   where household_id = l.household_id order by is_head desc, id limit 1) head on true
order by h.postal_code, h.household_no
"""


async def last_again(
    pool: asyncpg.Pool,
    *,
    campaign_id: int,
    department_id: str,
    user_id: int,
    via: str,
    os_user: str | None = None,
    remote_addr: str = "",
    deliver: Callable[[bytes], None] | None = None,
    today: date | None = None,
) -> Letters:
    """The campaign's last list made again, for a file that was lost (a download that failed): the
    same households, with today's names and addresses and the arrears the campaign's segment counts
    today (in scope, nothing past 時効), so a household that has paid since is left out (the audit
    entry says how many). Nothing is added to the 経過記録; the audit log records it, with the time
    of the list it repeats. Households erased since are left out too."""
    today = today or tokyo_today()
    async with db.department(pool, department_id) as conn:
        c, q = await _selected(conn, campaign_id, department_id, today)
        n = len(q.params)
        sql = _LAST.format(segment=q.sql, campaign=n + 1, no_phone=n + 2)
        found = await conn.fetch(sql, *q.params, c.id, NO_PHONE, timeout=600)
        if not found:
            raise LetterError("let.err.no_last")
        made_at = found[0]["made_at"]
        rows = [r for r in found if r["owing"]]
        await audit.record(
            conn, action="export", user_id=user_id, department_id=department_id, object_type="letters",
            object_id=c.id, detail={"campaign": c.name, "rows": len(rows), "again_of": made_at.isoformat(),
                                    "no_longer_owing": len(found) - len(rows), "via": via}
            | ({"os_user": os_user} if os_user else {}), remote_addr=remote_addr,
        )  # fmt: skip
        encoding = await conn.fetchval("select export_encoding from department where id = $1", department_id)
        reasons = [NO_PHONE if r["no_phone"] else NOT_REACHED for r in rows]
        data = encode(_csv(rows, reasons, c.name), encoding)
        if deliver is not None:
            await asyncio.to_thread(deliver, data)
    return Letters(c.name, department_id, len(rows), encoding, data, made_at.astimezone(TOKYO).date())


def _csv(rows: list[asyncpg.Record], reasons: list[str], campaign: str) -> str:
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(HEADER)
    for r, why in zip(rows, reasons, strict=True):
        given = (r["postal_code"], r["address"], r["name"], r["kana"], r["household_no"], r["atena_no"])
        due = wareki(r["oldest_due"]) if r["oldest_due"] else ""
        w.writerow(
            [*map(cell, given), str(int(r["unpaid_yen"])), due, why, str(r["attempts"]), cell(campaign)]
        )
    return buf.getvalue()
