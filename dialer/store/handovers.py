"""Cases handed to municipal staff (職員への引継ぎ): the staff's list, a case opened, taken, done.

An operator's outcome marked to_staff (分納相談希望 by default; `dialer codes add --to-staff`)
opens a case (dialer/store/dispositions.py). The list names no resident (世帯番号, when, why, who
has it): a case is opened to see who it is, and that is a view of the resident's record, written
to the audit log like an operator's. Taking a case and closing it are in the audit log too; what
was agreed goes into the household's 経過記録, which goes back to the delinquency system.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from campaigns.dispositions import clean_note
from dialer.store import audit, records
from dialer.store.db import Conn, Connection
from dialer.store.users import User

METHODS = ("phone_out", "counter", "visit", "other")  # how staff spoke with the resident (経過記録)
RESULT_MAX = 2000


class HandoverError(Exception):
    """A case that is not there (404) or not in a state for this (409); `key` is the message's."""

    def __init__(self, key: str, status: int = 409) -> None:
        super().__init__(key)
        self.key, self.status = key, status


@dataclass(frozen=True)
class Case:
    """One case as the list shows it: nobody's name."""

    id: int
    created_at: Any
    household_no: str
    reason: str  # the outcome's label (Japanese)
    reason_en: str
    operator: str
    status: str
    taken_by: str
    taken_by_id: int | None
    done_at: Any
    others: list[int]  # the household's other unfinished cases, 6 at most (taken and closed with this one)


LISTED_AT_MOST = 500


async def listed(conn: Conn, department_id: str, done_days: int = 30) -> list[Case]:
    """Open and taken cases, oldest first; then those done in the last `done_days` days. At most
    LISTED_AT_MOST + 1 (one more says the list is cut)."""
    rows = await conn.fetch(
        """select c.id, c.created_at, h.household_no, coalesce(dc.label_ja, c.reason) as reason,
                  coalesce(dc.label_en, c.reason) as reason_en, coalesce(o.display_name, '') as operator,
                  c.status, coalesce(s.display_name, '') as taken_by, c.taken_by as taken_by_id, c.done_at,
                  case when c.status = 'done' then '{}'::bigint[] else
                      array(select same.id from handover same where same.household_id = c.household_id and same.id <> c.id
                              and same.status <> 'done' order by same.id limit 6) end as others
           from handover c
           join household h on h.id = c.household_id
           left join app_user o on o.id = c.operator_id
           left join app_user s on s.id = c.taken_by
           left join lateral (select x.label_ja, x.label_en from disposition_code x
                              where x.code = c.reason and (x.department_id = c.department_id or x.department_id is null)
                              order by x.department_id nulls last limit 1) dc on true
           where c.department_id = $1 and (c.status <> 'done' or c.done_at > now() - make_interval(days => $2))
           order by c.status = 'done', c.created_at, c.id
           limit $3""",
        department_id,
        done_days,
        LISTED_AT_MOST + 1,
    )
    return [Case(**dict(r)) for r in rows]


async def opened(
    conn: Connection, department_id: str, case_id: int, user: User, remote: str
) -> dict[str, Any]:
    """A case with whom it is about (the household's minimal record, the operator's note), and that
    view in the audit log."""
    row = await conn.fetchrow(
        """select c.id, c.status, c.created_at, c.result, c.done_at, c.household_id, c.taken_by, h.household_no,
                  h.address, coalesce(o.display_name, '') as operator,
                  coalesce(d.note, '') as note, d.attempt_id, coalesce(s.display_name, '') as taken_by_name
           from handover c join household h on h.id = c.household_id
           left join disposition d on d.id = c.disposition_id
           left join app_user o on o.id = c.operator_id
           left join app_user s on s.id = c.taken_by
           where c.id = $1 and c.department_id = $2""",
        case_id,
        department_id,
    )
    if row is None:
        raise HandoverError("error.not_found", 404)
    people = await conn.fetch(
        """select name_kanji, name_kana, birth_date, is_head from person
           where household_id = $1 and death_date is null order by is_head desc, id""",
        row["household_id"],
    )
    phones = await conn.fetch(
        """select number, kind from phone where household_id = $1 and valid and not do_not_call
           and stopped_at is null order by priority, id""",
        row["household_id"],
    )
    # the household's other unfinished cases (two calls, two operators): one consultation for them all
    others = await conn.fetch(
        """select o.id, o.created_at, o.status, coalesce(u.display_name, '') as operator,
                  coalesce(dc.label_ja, o.reason) as reason, coalesce(dc.label_en, o.reason) as reason_en,
                  coalesce(d.note, '') as note
           from handover o
           left join disposition d on d.id = o.disposition_id
           left join app_user u on u.id = o.operator_id
           left join lateral (select x.label_ja, x.label_en from disposition_code x
                              where x.code = o.reason and (x.department_id = o.department_id or x.department_id is null)
                              order by x.department_id nulls last limit 1) dc on true
           where o.household_id = $1 and o.id <> $2 and o.status <> 'done' and $3 <> 'done'
           order by o.id""",
        row["household_id"],
        case_id,
        row["status"],
    )
    # as the operator saw it: a debt past its limitation period (時効) marked, and not in the total
    debts = await records.debt_lines(
        conn, row["household_id"], department_id, row["attempt_id"], None, by_period=True
    )
    await audit.record(
        conn, action="record.view", user_id=user.id, department_id=department_id, object_type="household",
        object_id=row["household_id"], detail={"via": "handover", "handover_id": case_id}, remote_addr=remote,
    )  # fmt: skip
    owed = sum(d.unpaid_yen for d in debts if not d.time_barred)
    return {**dict(row), "people": [dict(p) for p in people], "phones": [dict(p) for p in phones],
            "debts": debts, "owed_yen": owed, "others": [dict(o) for o in others]}  # fmt: skip


# The case ($1) and those of the same household the page showed with it ($4), unfinished, locked in
# one order (two members of staff at once: one waits, never a deadlock).
_SHOWN = """department_id = $2 and status <> 'done' and (id = $1 or id = any($4::bigint[]))
            and household_id = (select household_id from handover where id = $1 and department_id = $2 and status <> 'done')"""


async def take(
    conn: Connection,
    department_id: str,
    case_id: int,
    user: User,
    remote: str = "",
    others: tuple[int, ...] = (),
) -> None:
    """A member of staff takes an open case (or one a colleague took: it moves to them), with the
    household's other unfinished cases the page showed them (`others`): one person speaks with the
    household (QA: two cases of one household could be taken by two people). One that came since
    stays as it is, for them to read first (review)."""
    taken = await conn.fetch(
        f"""update handover set status = 'taken', taken_by = $3, taken_at = now(), updated_at = now()
            where id in (select id from handover where {_SHOWN} order by id for update)
              and (id = $1 or taken_by is distinct from $3)
            returning id""",
        case_id,
        department_id,
        user.id,
        list(others),
    )
    if not any(r["id"] == case_id for r in taken):
        raise await _why_not(conn, department_id, case_id)
    await _logged(conn, "handover.take", [r["id"] for r in taken], case_id, user, department_id, remote)


async def finish(
    conn: Connection,
    department_id: str,
    case_id: int,
    user: User,
    method: str,
    party: str,
    result: str,
    remote: str = "",
    others: tuple[int, ...] = (),
) -> None:
    """Close a case with what was agreed; it goes into the household's 経過記録."""
    if method not in METHODS:
        raise HandoverError("error.invalid", 422)
    result = clean_note(result)  # as an operator's note: no control characters (NUL would be a 500)
    if not result.strip() or len(result) > RESULT_MAX:
        raise HandoverError("ho.err.result", 422)
    # with the household's other unfinished cases the page showed: one consultation settles them
    # (one 経過記録); one that came since stays open, its note not yet read (review)
    done = await conn.fetch(
        f"""update handover set status = 'done', done_at = now(), result = $5, updated_at = now(),
                   taken_by = $3, taken_at = case when taken_by = $3 then taken_at else now() end
            where id in (select id from handover where {_SHOWN} order by id for update)
            returning id, household_id""",
        case_id,
        department_id,
        user.id,
        list(others),
        result,
    )
    row = next((r for r in done if r["id"] == case_id), None)
    if row is None:
        raise await _why_not(conn, department_id, case_id)
    await conn.execute(
        """insert into contact_history (department_id, household_id, at, method, place, party, content, recorded_by,
                                        source)
           values ($1, $2, now(), $3, '', $4, $5, $6, 'staff')""",
        department_id, row["household_id"], method, party[:40], f"職員対応: {result}"[:4000], user.id,
    )  # fmt: skip
    await _logged(conn, "handover.done", [r["id"] for r in done], case_id, user, department_id, remote)


async def _logged(
    conn: Connection, action: str, ids: list[int], case_id: int, user: User, department_id: str, remote: str
) -> None:
    """One audit entry per case changed: the case itself first, the household's others saying `with` it."""
    for one in sorted(ids, key=lambda i: (i != case_id, i)):
        await audit.record(
            conn, action=action, user_id=user.id, department_id=department_id, object_type="handover",
            object_id=one, remote_addr=remote, detail=None if one == case_id else {"with": case_id},
        )  # fmt: skip


async def _why_not(conn: Connection, department_id: str, case_id: int) -> HandoverError:
    """Why a case could not be changed: not there, or done already."""
    status = await conn.fetchval(
        "select status from handover where id = $1 and department_id = $2", case_id, department_id
    )
    return HandoverError("error.not_found", 404) if status is None else HandoverError("ho.err.done", 409)


async def open_count(conn: Conn, department_id: str) -> int:
    n: int = await conn.fetchval(
        "select count(*) from handover where department_id = $1 and status <> 'done'", department_id
    )
    return n
