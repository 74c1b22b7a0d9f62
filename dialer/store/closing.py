"""Which households are closed, and deleting households with what goes with them (the scheduled
purge and the erase on request, dialer/store/purge.py, both delete through here).

A household's deletion counts what it takes, makes its calls anonymous (they stay for the reports
and the abandon rate), deletes the import error report lines that quote its rows, and deletes
the household: PostgreSQL's cascades take its residents, numbers, debts, payments, plans,
promises, 経過記録 and campaign rows.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from dialer.store.db import Connection

WAIT_S = 3600.0  # a statement's timeout: for an import of the department to finish, a large delete

# Who each closed household takes with it (counted before the delete, for the record).
_CHILDREN = {
    "persons": "select count(*) from person where household_id = any($1)",
    "related_parties": """select count(*) from related_party r join person p on p.id = r.person_id
                          where p.household_id = any($1)""",
    "phones": "select count(*) from phone where household_id = any($1)",
    "debts": "select count(*) from debt where household_id = any($1)",
    "payments": "select count(*) from payment where household_id = any($1)",
    "installment_plans": "select count(*) from installment_plan where household_id = any($1)",
    "promises": "select count(*) from promise where household_id = any($1)",
    "contact_history": "select count(*) from contact_history where household_id = any($1)",
    "campaign_targets": "select count(*) from campaign_target where household_id = any($1)",
    "handovers": "select count(*) from handover where household_id = any($1)",
}

# Closed: owes nothing (延滞金 included; a debt a complete export no longer lists owes nothing at
# all), and nothing about it changed or happened since the cut-off ($2). A row of a recent export that named it and was rejected (an error report line)
# counts as something: the delinquency system still lists it, and the line is the only trace of
# what did not load.
ELIGIBLE = """
h.unpaid_yen = 0 and h.updated_at < $2 and h.created_at < $2
  and not exists (select 1 from person p where p.household_id = h.id and p.updated_at >= $2)
  and not exists (select 1 from phone p where p.household_id = h.id and p.updated_at >= $2)
  and not exists (select 1 from debt d
                  where d.household_id = h.id and (d.unpaid_yen > 0 or (d.late_fee_yen > 0 and d.closed_on is null)
                                                   or d.updated_at >= $2))
  and not exists (select 1 from payment p where p.household_id = h.id and p.created_at >= $2)
  and not exists (select 1 from campaign_target t
                  where t.household_id = h.id and t.state in ('pending', 'leased'))
  and not exists (select 1 from attempt a
                  where a.household_id = h.id and (a.ended_at is null or a.originated_at >= $2))
  and not exists (select 1 from contact_history c where c.household_id = h.id and (c.at >= $2 or c.created_at >= $2))
  and not exists (select 1 from promise p where p.household_id = h.id and (p.status = 'open' or p.created_at >= $2))
  and not exists (select 1 from installment_plan p
                  where p.household_id = h.id and (p.status = 'active' or p.updated_at >= $2))
  and not exists (select 1 from handover p where p.household_id = h.id and (p.status <> 'done' or p.updated_at >= $2))
  and not exists (select 1 from import_problem q join import_run r on r.id = q.import_id
                  where q.household_no <> '' and q.household_no = h.household_no
                    and r.department_id = h.department_id and r.started_at >= $2)
  and not exists (select 1 from person p
                  join import_problem q on q.atena_no <> '' and q.atena_no = p.atena_no
                  join import_run r on r.id = q.import_id
                  where p.household_id = h.id and r.department_id = h.department_id and r.started_at >= $2)
"""
# The next batch, locked. Rows that took a reference while the scan ran are not seen by its
# snapshot: the recheck below, after the locks are held (nothing new can refer to them then),
# sees them.
CLOSED = f"""
select h.id from household h
where h.department_id = $1 and h.id > $4 and {ELIGIBLE}
order by h.id
limit $3
for update of h skip locked
"""
RECHECK = f"select h.id from household h where h.id = any($1::bigint[]) and {ELIGIBLE} order by h.id"


async def delete_households(
    conn: Connection, department_id: str, ids: list[int], counts: Counter[str]
) -> None:
    """Count what goes with them, make their calls anonymous, delete them (the cascades do the rest),
    and the lines of import error reports that quote their rows, whatever the reports' own
    retention (0019: lines written since then name the 世帯番号 and 宛名番号 their row gave).
    A payment filed under one of them for a debt that has since moved to another household (the
    person moved, and a newer export says so) follows its debt first, and stays."""
    keys = await conn.fetchrow(
        """select coalesce(array_agg(h.household_no), '{}'),
                  coalesce((select array_agg(p.atena_no) from person p where p.household_id = any($1)), '{}')
           from household h where h.id = any($1)""",
        ids,
        timeout=WAIT_S,
    )
    assert keys is not None  # (an aggregate: one row)
    household_nos, atena_nos = keys
    counts["import_problems"] += await conn.fetchval(
        """with p as (delete from import_problem
                      where import_id in (select id from import_run where department_id = $1)
                        and ((household_no <> '' and household_no = any($2::text[]))
                             or (atena_no <> '' and atena_no = any($3::text[])))  -- (0020's indexes)
                      returning 1)
           select count(*) from p""",
        department_id,
        household_nos,
        atena_nos,
        timeout=WAIT_S,
    )
    await conn.execute(
        """update payment p set household_id = d.household_id from debt d
           where p.household_id = any($1) and d.id = p.debt_id and d.household_id <> p.household_id""",
        ids,
        timeout=WAIT_S,
    )
    for kind, query in _CHILDREN.items():
        counts[kind] += await conn.fetchval(query, ids, timeout=WAIT_S)
    await anonymise(conn, counts, "household_id = any($1) and ended_at is not null", ids)
    counts["households"] += len(ids)
    await conn.execute("delete from household where id = any($1)", ids, timeout=WAIT_S)


async def anonymise(conn: Connection, counts: Counter[str], where: str, *args: Any) -> None:
    """Calls that stay for the statistics lose who and what: household, target, the numbers, the
    operator's note (their campaign, times, outcome and code stay)."""
    row = await conn.fetchrow(
        f"""with a as (update attempt set household_id = null, target_id = null, phone_id = null,
                              dialed_number = null, caller_number = null, purged_at = now()
                       where {where} returning id),
                 d as (update disposition set note = '' where attempt_id in (select id from a) and note <> ''
                       returning id)
            select (select count(*) from a) as calls, (select count(*) from d) as notes""",
        *args,
        timeout=WAIT_S,
    )
    assert row is not None
    counts["calls_made_anonymous"] += row["calls"]
    counts["notes_emptied"] += row["notes"]
