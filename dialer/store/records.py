"""The resident's record as an operator may see it: the minimum the call needs, audit-logged.

Operators get what the identity check (name, address, date of birth) and the reminder need:
the household head's name and kana, address, the number dialled, and the arrears by debt type
and fiscal year. Not 宛名番号, not other members' details, not workplace or nationality.
Every read goes into the audit log in the same transaction; no log, no record.

A debt past its limitation period (時効: by the call's campaign's segment, else 保険料 2 years and
taxes 5 years from the 納期限, as campaigns/segments.py counts them) is shown as such and left out
of the total the operator asks for: nobody may be asked to pay it.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import date, datetime
from typing import Any

import asyncpg

from campaigns import scripts, segments
from campaigns.hours import TOKYO
from dialer.jpformat import phone_display, wareki, wareki_fiscal_year, yen
from dialer.store import db


@dataclass(frozen=True)
class DebtLine:
    debt_type: str
    fiscal_year: int
    unpaid_yen: int
    earliest_due: date
    time_barred: bool = False  # 時効: shown, not asked for, not in the total
    installment: int | None = None  # 期別, when listed by period (staff's case page)


@dataclass(frozen=True)
class OperatorRecord:
    household_id: int
    household_no: str
    name_kanji: str
    name_kana: str
    birth_date: date | None
    postal_code: str
    address: str
    phone: str | None  # the number being dialled (national digits)
    phone_kind: str | None
    debts: list[DebtLine]
    total_unpaid_yen: int
    last_contact: date | None
    script: str = ""  # the campaign's talk script filled in for this household ("": none)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("birth_date", "last_contact"):
            data[key] = data[key].isoformat() if data[key] else None
        data["debts"] = [
            {
                **d,
                "earliest_due": d["earliest_due"].isoformat(),
                "earliest_due_label": wareki(d["earliest_due"]),
                "fiscal_year_label": wareki_fiscal_year(d["fiscal_year"]),
                "unpaid_label": yen(d["unpaid_yen"]),
            }
            for d in data["debts"]
        ]
        data["display"] = {
            "phone": phone_display(self.phone),
            "birth": wareki(self.birth_date) if self.birth_date else "",
            "total": yen(self.total_unpaid_yen),
            "last_contact": wareki(self.last_contact) if self.last_contact else "",
        }
        return data


async def read_for_operator(
    pool: asyncpg.Pool,
    *,
    household_id: int,
    department_id: str,
    phone_id: int | None,
    user_id: int,
    reason: str,
    attempt_id: int | None = None,
    campaign_id: int | None = None,
    caller_number: str | None = None,
    remote_addr: str = "",
    scripted: bool = True,
) -> OperatorRecord | None:
    """Read a household's minimal record and audit-log the view; None if not in this department,
    or if the operator's login has been switched off meanwhile (`dialer users disable`: their page
    closes within session_check_s, and no record reaches it before). The number shown is the one
    dialled (`phone_id`), or the one a resident calls in from when it is one of the household's
    (`caller_number`). `scripted`: False when the caller knows the campaign has no talk script
    (none is looked for)."""
    async with db.department(pool, department_id) as conn:  # RLS: never another department's resident
        head = await conn.fetchrow(
            """select h.household_no, h.postal_code, h.address, p.name_kanji, p.name_kana, p.birth_date
               from household h
               left join lateral (select * from person where household_id = h.id
                                  order by is_head desc, id limit 1) p on true
               where h.id = $1 and h.department_id = $2
                 and exists (select 1 from app_user u where u.id = $3 and u.active)""",
            household_id,
            department_id,
            user_id,
        )
        if head is None:
            return None
        phone = None
        if phone_id is not None:
            phone = await conn.fetchrow(
                "select number, kind from phone where id = $1 and household_id = $2", phone_id, household_id
            )
        elif caller_number:
            phone = await conn.fetchrow(
                "select number, kind from phone where number = $1 and household_id = $2 order by id limit 1",
                caller_number,
                household_id,
            )
        lines = await debt_lines(conn, household_id, department_id, attempt_id, campaign_id)
        last_contact = await conn.fetchval(
            f"""select (greatest(
                   (select max(a.connected_at) from attempt a
                    where a.household_id = $1 and {segments.CONTACT_CALL} and a.id is distinct from $2
                      and a.connected_at < coalesce((select originated_at from attempt where id = $2), 'infinity')),
                   (select max(ch.at) from contact_history ch
                    where ch.household_id = $1 and {segments.CONTACT_ENTRY}
                      and ch.at < coalesce((select originated_at from attempt where id = $2), 'infinity'))
                ) at time zone 'Asia/Tokyo')::date""",
            household_id,
            attempt_id,
        )  # as a segment's not_contacted_days reads it (segments.CONTACT_ENTRY): before this call
        await conn.execute(
            """insert into audit_log (user_id, department_id, action, object_type, object_id, detail, remote_addr)
               values ($1, $2, 'record.view', 'household', $3, $4::jsonb, $5)""",
            user_id,
            department_id,
            str(household_id),
            json.dumps({"reason": reason, "attempt_id": attempt_id}),
            remote_addr,
        )
        total = sum(d.unpaid_yen for d in lines if not d.time_barred)
        script = await _script(conn, campaign_id, department_id, user_id, head, total) if scripted else ""
    return OperatorRecord(
        household_id=household_id,
        household_no=head["household_no"],
        name_kanji=head["name_kanji"] or "",
        name_kana=head["name_kana"] or "",
        birth_date=head["birth_date"],
        postal_code=head["postal_code"],
        address=head["address"],
        phone=phone["number"] if phone else None,
        phone_kind=phone["kind"] if phone else None,
        debts=lines,
        total_unpaid_yen=total,
        last_contact=last_contact,
        script=script,
    )


async def _script(
    conn: db.Connection,
    campaign_id: int | None,
    department_id: str,
    user_id: int,
    head: asyncpg.Record,
    total: int,
) -> str:
    """The call's campaign's talk script, filled in with what this record shows and who is calling
    (a resident calling in, with no campaign: none)."""
    if campaign_id is None:
        return ""
    row = await conn.fetchrow(
        """select c.script, d.name_ja, d.callback_number, u.display_name
           from campaign c join department d on d.id = c.department_id join app_user u on u.id = $3
           where c.id = $1 and c.department_id = $2 and c.script <> ''""",
        campaign_id,
        department_id,
        user_id,
    )
    if row is None:
        return ""
    return scripts.fill(
        row["script"],
        {
            "name": head["name_kanji"] or "", "kana": head["name_kana"] or "", "household_no": head["household_no"],
            "unpaid": yen(total), "operator": row["display_name"], "department": row["name_ja"],
            "callback": phone_display(row["callback_number"]) if row["callback_number"] else "",
        },
    )  # fmt: skip


async def debt_lines(
    conn: db.Connection,
    household_id: int,
    department_id: str,
    attempt_id: int | None,
    campaign_id: int | None,
    by_period: bool = False,
) -> list[DebtLine]:
    """What the household owes, by debt type and fiscal year (`by_period`: each 期別 with its 納期限,
    as staff agreeing instalments need it), each past its limitation period (時効, as the call's
    campaign counts it: `_limitation`) marked as such."""
    limits, default_limit = await _limitation(conn, department_id, attempt_id, campaign_id)
    period = "installment" if by_period else "null::int"
    debts = await conn.fetch(
        f"""select debt_type, fiscal_year, sum(unpaid_yen)::bigint as unpaid, min(due_date) as due,
                   barred, {period} as installment
            from (select d.*, d.due_date <= $2::date - make_interval(years => coalesce(($3::jsonb ->> d.debt_type)::int, $4))
                              as barred
                  from debt d where d.household_id = $1 and d.unpaid_yen > 0) x  -- a closed debt: 0
            group by debt_type, fiscal_year, barred, {period}
            order by fiscal_year, debt_type, barred, min(due_date)""",
        household_id,
        datetime.now(TOKYO).date(),
        json.dumps(limits),
        default_limit,
    )
    return [
        DebtLine(r["debt_type"], r["fiscal_year"], r["unpaid"], r["due"], r["barred"], r["installment"])
        for r in debts
    ]


async def _limitation(
    conn: db.Connection, department_id: str, attempt_id: int | None, campaign_id: int | None
) -> tuple[dict[str, int], int]:
    """The limitation periods (years by debt type, and for the others) the record is shown with: the
    call's campaign's (a preview has its campaign before its call); a call with none (a resident
    calling in) takes the longest any active campaign of the department uses, so nothing one of them
    still asks for is shown as time-barred."""
    rows = await conn.fetch(
        """select c.segment from campaign c
           where c.id = coalesce((select campaign_id from attempt where id = $2), $3)
              or (coalesce((select campaign_id from attempt where id = $2), $3) is null
                  and c.department_id = $1 and c.status = 'active')""",
        department_id,
        attempt_id,
        campaign_id,
    )
    found = []
    for r in rows:
        try:
            found.append(segments.parse(db.from_jsonb(r["segment"])))
        except segments.SegmentError:  # written by hand, unreadable: the laws' periods
            found.append(segments.parse(None))
    if not found:
        found = [segments.parse(None)]
    types = {t for seg in found for t in seg.limitation_years}
    limits = {
        t: max(seg.limitation_years.get(t, seg.default_limitation_years) for seg in found) for t in types
    }
    return limits, max(seg.default_limitation_years for seg in found)
