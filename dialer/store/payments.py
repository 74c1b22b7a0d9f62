"""Payments (収納) import, in PostgreSQL: match each payment to its debt, store it once, apply it.

A payment is stored once by its receipt key: the file's 収納番号, or, when the layout has none,
the payment's identity (宛名番号, 税目, 年度, 相当年度, 期別, 収納日, 金額, and its occurrence
number among identical lines of the file). Importing the same file again adds nothing.

Applying a payment raises the debt's paid_yen, unless it is dated on or before the 抽出日 of the
export that gave the debt its 収納額 (it is in that figure already: the report says so, line by line). The household summary
triggers do the rest: a household whose arrears reach zero leaves every campaign at once. So does
one whose installment plan the payments keep again (a missed instalment paid: campaigns.segments.plan_kept).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.hours import TOKYO
from dialer.store import plans
from dialer.store.db import Connection
from dialer.store.imports import LONG, reject_repeated, reject_staged


async def merge(conn: Connection, run_id: int, department_id: str) -> dict[str, Any]:
    await conn.execute("analyze stage_payment", timeout=LONG)
    rejected = await reject_repeated(conn, run_id, "stage_payment", "receipt_no", "収納番号")
    await conn.execute(
        """create temp table matched on commit drop as
           select s.*, d.id as debt_id, d.household_id, count(d.id) over (partition by s.line) as candidates
           from stage_payment s
           left join person p on p.department_id = $1 and p.atena_no = s.atena_no
           left join debt d on d.department_id = $1 and d.person_id = p.id and d.debt_type = s.debt_type
                and d.fiscal_year = s.fiscal_year
                and (s.assessed_year is null or coalesce(d.assessed_year, d.fiscal_year) = s.assessed_year)
                and (s.installment is null or d.installment = s.installment)
                and (s.notice_no is null or d.notice_no = s.notice_no)""",
        department_id,
        timeout=LONG,
    )
    rejected += await reject_staged(
        conn,
        run_id,
        "stage_payment",
        """select distinct line, case
                   when candidates = 0 then '該当する債権がありません(宛名番号・税目・年度・期別を確認してください。滞納データの取込が先です)'
                   else format('債権が%s件該当し、特定できません(期別か相当年度を指定してください)', candidates) end as message
           from matched where candidates <> 1""",
    )
    before = await conn.fetchval(
        """select count(*) from household where id in (select household_id from matched where candidates = 1)
           and unpaid_yen = 0""",
        timeout=LONG,
    )
    row = await conn.fetchrow(
        """with keyed as (
               select m.*, coalesce(m.receipt_no, 'auto:' || concat_ws('|', m.atena_no, m.debt_type, m.fiscal_year,
                          m.assessed_year, m.installment, m.paid_on, m.amount_yen) || '#'
                          || row_number() over (partition by m.atena_no, m.debt_type, m.fiscal_year, m.assessed_year,
                                                m.installment, m.paid_on, m.amount_yen order by m.line)) as receipt_key
               from matched m where m.candidates = 1
           ), stored as (
               insert into payment (department_id, debt_id, household_id, receipt_key, paid_on, amount_yen, channel, import_id)
               select $1, debt_id, household_id, receipt_key, paid_on, amount_yen, coalesce(channel, ''), $2 from keyed
               on conflict (department_id, receipt_key) do nothing
               returning debt_id, paid_on, amount_yen
           ), applied as (
               update debt d set paid_yen = d.paid_yen + x.amount, last_paid_on = greatest(d.last_paid_on, x.last_on),
                                 updated_at = now()
               from (select s.debt_id, coalesce(sum(s.amount_yen) filter (
                                           where s.paid_on > coalesce(d2.reported_as_of, '-infinity')), 0) as amount, max(s.paid_on) as last_on
                     from stored s join debt d2 on d2.id = s.debt_id group by s.debt_id) x
               where d.id = x.debt_id
               returning d.id, x.amount
           )
           select (select count(*) from keyed) as matched, (select count(*) from stored) as stored,
                  (select count(*) from applied where amount > 0) as debts_applied,
                  (select coalesce(sum(amount), 0) from applied) as yen_applied""",
        department_id,
        run_id,
        timeout=LONG,
    )
    assert row is not None
    # Not applied, and said so: a payment the export's 収納額 already holds (dated on or before its
    # 抽出日). Without a word, a payment made the day an export was taken would seem lost.
    in_export = await conn.fetchval(
        """with said as (
               insert into import_problem (import_id, line, severity, message, household_no, atena_no)
               select $1, m.line, 'warning',
                      case when d.closed_on is not null
                           then format('収納日 %s の債権は抽出日 %s の滞納データ(全件)に載らず完結しているため、未納額は変えていません',
                                       to_char(m.paid_on, 'YYYY-MM-DD'), to_char(d.closed_on, 'YYYY-MM-DD'))
                           else format('収納日 %s は抽出日 %s の滞納データの収納額に含まれているものとし、未納額は変えていません',
                                       to_char(m.paid_on, 'YYYY-MM-DD'), to_char(d.reported_as_of, 'YYYY-MM-DD')) end,
                      h.household_no, m.atena_no
               from matched m join debt d on d.id = m.debt_id join household h on h.id = d.household_id
               where m.candidates = 1 and m.paid_on <= d.reported_as_of
                 and exists (select 1 from payment py where py.import_id = $1 and py.debt_id = m.debt_id
                             and py.paid_on = m.paid_on and py.amount_yen = m.amount_yen)  -- stored now, not before
               returning 1
           )
           select count(*) from said""",
        run_id,
        timeout=LONG,
    )
    # More paid than assessed (過誤納, or a keying slip in the file): stored as the file says, and said.
    overpaid = await conn.fetchval(
        """with said as (
               insert into import_problem (import_id, line, severity, message, household_no, atena_no)
               select $1, m.line, 'warning',
                      format('この債権の収納額 %s円が調定額 %s円を超えました(過誤納か入力誤りの可能性があります。収納は取り込みました)',
                             d.paid_yen, d.assessed_yen),
                      h.household_no, m.atena_no
               from matched m join debt d on d.id = m.debt_id join household h on h.id = d.household_id
               where m.candidates = 1 and d.paid_yen > d.assessed_yen
                 and exists (select 1 from payment py where py.import_id = $1 and py.debt_id = m.debt_id
                             and py.paid_on = m.paid_on and py.amount_yen = m.amount_yen)
               returning 1
           )
           select count(*) from said""",
        run_id,
        timeout=LONG,
    )
    after = await conn.fetchval(
        """select count(*) from household where id in (select household_id from matched where candidates = 1)
           and unpaid_yen = 0""",
        timeout=LONG,
    )
    # a payment of a missed instalment keeps its plan (campaigns.segments.plan_kept): out of campaigns at once
    paid_plans = await conn.fetchval(
        """select coalesce(array_agg(ip.id), '{}') from installment_plan ip
           where ip.status = 'active' and ip.household_id in (select household_id from matched where candidates = 1)""",
        timeout=LONG,
    )
    kept = await plans.set_aside_kept(conn, paid_plans, datetime.now(TOKYO).date())
    return {
        "rejected_in_merge": rejected,
        "payments": {"inserted": row["stored"], "already_imported": row["matched"] - row["stored"]},
        "debts_applied": row["debts_applied"],
        "yen_applied": int(row["yen_applied"]),
        "payments_in_export": in_export,  # dated on or before the 抽出日 of their debt's export
        "payments_over_assessed": overpaid,  # lines whose debt is now paid beyond its 調定額 (warned)
        "households_paid_off": after - before,
        "targets_excluded": kept,  # of households whose plan the payments keep
    }
