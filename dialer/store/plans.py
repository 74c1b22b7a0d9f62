"""Installment plans (分納) import, in PostgreSQL: each plan by its 計画番号, with its whole schedule.

Staff agree plans in the delinquency system; its plans file gives one line per instalment (回,
納付予定日, 予定額, 納付済額). A plan is stored once per department and 計画番号 and updated in
place; the file's lines are its whole schedule (an instalment a newer file no longer lists is
removed: a plan rescheduled). Importing the same file again changes nothing.

A plan is taken as the file gives it or not at all: when one of its lines is rejected, or its lines
disagree (two people, two 承認日, one 回 twice), none of its lines is used and it stays as it was.
A file older (by its 抽出日) than the one a plan was last reported by leaves that plan alone.

A plan being kept (active, no instalment overdue) takes its household out of its campaigns at once,
a queued call included: nobody is phoned about a debt they are paying by instalments as agreed.
A broken one brings the household back at the campaign's next fill (the segment rules read the
plans, campaigns/segments.py).
"""

from __future__ import annotations

from datetime import date
from typing import Any

from campaigns.segments import plans_keep_out
from dialer.store.db import Connection
from dialer.store.imports import LONG, reject_staged, reject_unknown_residents

# Lines that disagree with their plan's first line, and a 回 given twice: the plan is unsure.
_DISAGREE = """
    select line, plan_no, format('計画番号 %s の宛名番号・承認日・状態・分納総額が行 %s と違います',
                                 plan_no, first_line) as message
    from (select line, plan_no, atena_no, agreed_on, status, total_yen, first_value(line) over w as first_line,
                 first_value(atena_no) over w as atena0, first_value(agreed_on) over w as agreed0,
                 first_value(status) over w as status0, first_value(total_yen) over w as total0
          from stage_plan where ok window w as (partition by plan_no order by line)) x
    where line <> first_line
      and (atena_no, agreed_on, status, total_yen) is distinct from (atena0, agreed0, status0, total0)"""
_TWICE = """
    select line, plan_no, format('計画番号 %s の第%s回が行 %s にもあります', plan_no, seq, first_line) as message
    from (select line, plan_no, seq, first_value(line) over (partition by plan_no, seq order by line) as first_line
          from stage_plan where ok) x
    where line <> first_line"""


async def merge(
    conn: Connection, run_id: int, department_id: str, as_of: date, today: date
) -> dict[str, Any]:
    await conn.execute("analyze stage_plan", timeout=LONG)
    await conn.execute(
        """create temp table plan_unsure on commit drop as
           select distinct plan_no from stage_plan where not ok and plan_no <> ''""",
        timeout=LONG,
    )
    # a rejected line whose 計画番号 cannot be read may be any plan's: no instalment is removed
    unnamed: int = await conn.fetchval(
        "select count(*) from stage_plan where not ok and coalesce(plan_no, '') = ''", timeout=LONG
    )
    rejected = 0
    for query in (_DISAGREE, _TWICE):
        await conn.execute(f"insert into plan_unsure select plan_no from ({query}) q", timeout=LONG)
        rejected += await reject_staged(conn, run_id, "stage_plan", f"select line, message from ({query}) q")
    rejected += await reject_staged(
        conn,
        run_id,
        "stage_plan",
        """select s.line, format('計画番号 %s に取り込めない行があるため、この計画は変更していません', s.plan_no) as message
           from stage_plan s where s.ok and s.plan_no in (select plan_no from plan_unsure)""",
    )
    await conn.execute("delete from stage_plan where not ok", timeout=LONG)  # reported as they were read
    rejected += await reject_unknown_residents(conn, run_id, "stage_plan", department_id)
    # A file as new as a plan's last report (or newer) is right about it; the date moves on even
    # where nothing changed, so an export between the two cannot undo the newer one either.
    await conn.execute(
        """update installment_plan ip set reported_as_of = $2
           where ip.department_id = $1 and ip.reported_as_of < $2
             and ip.plan_no in (select plan_no from stage_plan)""",
        department_id,
        as_of,
        timeout=LONG,
    )
    plans = await conn.fetchrow(
        """with given as (
               select distinct on (s.plan_no) s.plan_no, p.id as person_id, p.household_id, s.agreed_on, s.status,
                      coalesce(s.total_yen, sum(s.amount_yen) over (partition by s.plan_no)
                               + case when $4 then kept.yen else 0 end) as total_yen
               from stage_plan s join person p on p.department_id = $1 and p.atena_no = s.atena_no
               -- no instalment removed ($4): the schedule is the stored one and the file's, together
               left join lateral (
                   select coalesce(sum(du.amount_yen), 0) as yen
                   from installment_plan ip join installment_due du on du.plan_id = ip.id
                   where ip.department_id = $1 and ip.plan_no = s.plan_no
                     and not exists (select 1 from stage_plan x where x.plan_no = s.plan_no and x.seq = du.seq)
               ) kept on true
               order by s.plan_no, s.line
           ), written as (
               insert into installment_plan (department_id, plan_no, household_id, person_id, status, agreed_on,
                                             total_yen, reported_as_of, import_id)
               select $1, plan_no, household_id, person_id, status, agreed_on, total_yen, $3, $2 from given
               on conflict (department_id, plan_no) where plan_no is not null do update
                   set household_id = excluded.household_id, person_id = excluded.person_id,
                       status = excluded.status, agreed_on = excluded.agreed_on, total_yen = excluded.total_yen,
                       import_id = excluded.import_id, updated_at = now()
                   where installment_plan.reported_as_of <= excluded.reported_as_of
                     and (installment_plan.household_id, installment_plan.person_id, installment_plan.status,
                          installment_plan.agreed_on, installment_plan.total_yen)
                         is distinct from (excluded.household_id, excluded.person_id, excluded.status,
                                           excluded.agreed_on, excluded.total_yen)
               returning id, xmax = 0 as inserted
           )
           select coalesce(array_agg(id) filter (where inserted), '{}') as inserted,
                  coalesce(array_agg(id) filter (where not inserted), '{}') as updated,
                  (select count(*) from given) as given
           from written""",
        department_id,
        run_id,
        as_of,
        unnamed > 0,
        timeout=LONG,
    )
    assert plans is not None
    await conn.execute(
        """create temp table plan_current on commit drop as
           select ip.id, ip.plan_no from installment_plan ip
           where ip.department_id = $1 and ip.reported_as_of = $2
             and ip.plan_no in (select plan_no from stage_plan)""",
        department_id,
        as_of,
        timeout=LONG,
    )
    older = plans["given"] - await conn.fetchval("select count(*) from plan_current")
    dues = await conn.fetchrow(
        """with staged as (
               select c.id as plan_id, s.seq, s.due_date, s.amount_yen, s.paid_yen, s.paid_on
               from stage_plan s join plan_current c on c.plan_no = s.plan_no
           ), written as (
               insert into installment_due (plan_id, seq, due_date, amount_yen, paid_yen, paid_on)
               select plan_id, seq, due_date, amount_yen, paid_yen, paid_on from staged
               on conflict (plan_id, seq) do update
                   set due_date = excluded.due_date, amount_yen = excluded.amount_yen,
                       paid_yen = excluded.paid_yen, paid_on = excluded.paid_on
                   where (installment_due.due_date, installment_due.amount_yen, installment_due.paid_yen,
                          installment_due.paid_on)
                         is distinct from (excluded.due_date, excluded.amount_yen, excluded.paid_yen,
                                           excluded.paid_on)
               returning plan_id, xmax = 0 as inserted
           ), removed as (
               delete from installment_due d using plan_current c
               where d.plan_id = c.id and not $2
                 and not exists (select 1 from stage_plan s where s.plan_no = c.plan_no and s.seq = d.seq)
               returning d.plan_id
           ), touched as (
               update installment_plan ip set updated_at = now(), import_id = $1
               where ip.id in (select plan_id from written union select plan_id from removed)
               returning ip.id
           )
           select (select count(*) filter (where inserted) from written) as inserted,
                  (select count(*) filter (where not inserted) from written) as updated,
                  (select count(*) from removed) as removed,
                  (select coalesce(array_agg(id), '{}') from touched) as touched""",
        run_id,
        unnamed > 0,
        timeout=LONG,
    )
    assert dues is not None
    plan_ids = [r["id"] for r in await conn.fetch("select id from plan_current")]
    excluded = await set_aside_kept(conn, plan_ids, today)
    inserted = set(plans["inserted"])
    updated = (set(plans["updated"]) | set(dues["touched"])) - inserted  # its schedule counts too
    counts: dict[str, Any] = {
        "rejected_in_merge": rejected,
        "plans": {
            "inserted": len(inserted),
            "updated": len(updated),
            "unchanged": plans["given"] - len(inserted) - len(updated) - older,
        },
        "plan_dues": {"inserted": dues["inserted"], "updated": dues["updated"], "removed": dues["removed"]},
        "targets_excluded": excluded,
    }
    if older:
        counts["plans_older"] = older  # reported by a newer file already: left as they were
    if unnamed:
        counts["plan_dues_not_removed"] = unnamed
    return counts


# As the segment rules read it (campaigns.segments.plans_keep_out): a household with a plan kept
# and none broken is never called.
_SET_ASIDE_KEPT = f"""
    with gone as (
        update campaign_target t set state = 'excluded', last_outcome = 'installment_plan',
               lease_owner = null, lease_expires_at = null
        where t.household_id in (select ip.household_id from installment_plan ip where ip.id = any($1::bigint[]))
          and t.state in ('pending', 'leased') and {plans_keep_out("t.household_id", "$2::date")}
        returning 1
    )
    select count(*) from gone"""


async def set_aside_kept(conn: Connection, plan_ids: list[int], today: date) -> int:
    """The households of these plans out of their campaigns where a plan is kept (a queued call
    taken back, as for a payment): how many campaign entries."""
    if not plan_ids:
        return 0
    n: int = await conn.fetchval(_SET_ASIDE_KEPT, plan_ids, today, timeout=LONG)
    return n
