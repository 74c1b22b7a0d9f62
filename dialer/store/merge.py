"""Merging staged households into the resident tables: a few set-based statements, counted.

Each statement touches a row only when a value differs (IS DISTINCT FROM), so the same file
imported twice changes nothing; columns the mapping does not provide keep their stored values.
The household summary is refreshed once at the end instead of once per table.

Residents, households and their numbers come from one register: the newest export (by its
抽出日, `as_of`) is right about them. An export older than one already imported for the
department adds households, persons and numbers it alone has, and changes none stored (a late
file never brings back an old address or number, or clears a 死亡日); its debts are merged as
any export's are (a debt keeps the figures of the newest export that gave it). In an export that
is not older, a person's numbers follow the file: one their rows no longer give is set aside (not
dialed) until an export gives it again. A household whose head the file reports deceased or
moved out leaves its campaigns at once, a queued call included. A person who moves takes all
their debts and installment plans along. A complete layout's export closes the debts it no longer lists. What an
export says is gone is handled in dialer/store/gone.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from campaigns.hours import TOKYO
from dialer import logs
from dialer.imports.records import PERSON_FIELDS
from dialer.store import gone, plans
from dialer.store.db import Connection
from dialer.store.imports import LONG, STAGED_DEBT_KEY, STAGED_PHONE_KEY, reject_staged, warn_staged

log = logs.get("dialer.imports")


async def merge_households(
    conn: Connection,
    run_id: int,
    department_id: str,
    as_of: date,
    mapped: set[str],
    step: Callable[[str], None] = lambda name: None,
    complete: bool = False,
    closes_at_most: float = 0.5,
) -> dict[str, Any]:
    """Upsert households, persons, phones and debts from the staging tables. Returns counts.
    `step(name)` is told which table is being merged (a page shows it); `complete`: the layout's
    files list every debt still owed (the debts an earlier file of it gave and this one does not
    are closed, unless that would close more than `closes_at_most` of them)."""
    await conn.execute("analyze stage_household; analyze stage_phone", timeout=LONG)
    rejected = await reject_staged(
        conn,
        run_id,
        "stage_household",
        """select line, format('宛名番号 %s は行 %s では世帯番号 %s です(同じ人が二つの世帯に)', atena_no, first_line, first_household) as message
           from (select line, atena_no, household_no,
                        first_value(household_no) over w as first_household, first_value(line) over w as first_line
                 from stage_household window w as (partition by atena_no order by line)) x
           where household_no <> first_household""",
    )
    rejected += await reject_staged(
        conn,
        run_id,
        "stage_household",
        """select line, format('同じ債権(宛名番号・税目・年度・相当年度・期別)が行 %s にもあります', first_line) as message
           from (select line, first_value(line) over (partition by atena_no, debt_type, fiscal_year, assessed_year, installment
                                                      order by line) as first_line
                 from stage_household where fiscal_year is not null) x
           where line <> first_line""",
    )
    # one person on several lines (one per debt): the first line's name and birth date are kept
    await warn_staged(
        conn,
        run_id,
        """select line, format('宛名番号 %s の氏名または生年月日が行 %s と違います(最初の行 %s の値を使います)',
                              atena_no, first_line, first_line) as message
           from (select line, atena_no, name_kanji, birth_date, first_value(line) over w as first_line,
                        first_value(name_kanji) over w as first_name, first_value(birth_date) over w as first_birth
                 from stage_household window w as (partition by atena_no order by line)) x
           where line <> first_line
             and (name_kanji is distinct from first_name or birth_date <> first_birth)""",  # a blank date: no news
    )
    counts: dict[str, Any] = {"duplicates_rejected": rejected}
    newest: date | None = await conn.fetchval(
        """select max(as_of) from import_run
           where department_id = $1 and kind = 'households' and status = 'done' and id <> $2""",
        department_id,
        run_id,
    )
    older = False
    if newest is not None and as_of < newest:
        older = True
        counts["older_than"] = newest.isoformat()  # the report says what was left alone, and why
    # the summary triggers would refresh each household once per table; do it once, at the end
    await conn.execute("select set_config('dialer.bulk', 'on', true)")
    step("households")
    counts["households"] = await _upsert(
        conn, "household", _HOUSEHOLDS, mapped, {"postal_code", "address"}, department_id, run_id, older
    )
    # households a person (and their debts) moves out of: their summary changes too
    left: list[int] = await conn.fetchval(
        """select coalesce(array_agg(distinct p.household_id), '{}')
           from stage_household s
           join person p on p.department_id = $1 and p.atena_no = s.atena_no
           join household h on h.id = p.household_id and h.household_no <> s.household_no""",
        department_id,
        timeout=LONG,
    )
    step("persons")
    counts["persons"] = await _upsert(
        conn, "person", _PERSONS, mapped, set(PERSON_FIELDS), department_id, run_id, older
    )
    # a person who moved takes all their debts along, those this file does not list too (the
    # households they left are in `left`, refreshed at the end)
    await conn.execute(
        """update debt d set household_id = p.household_id, updated_at = now()
           from person p
           where p.department_id = $1 and p.import_id = $2 and d.department_id = $1 and d.person_id = p.id
             and d.household_id <> p.household_id""",
        department_id,
        run_id,
        timeout=LONG,
    )
    # and their installment plans: a plan kept keeps the new household out of campaigns at once
    moved: list[int] = await conn.fetchval(
        """with moved as (
               update installment_plan ip set household_id = p.household_id, updated_at = now()
               from person p
               where p.department_id = $1 and p.import_id = $2 and ip.department_id = $1 and ip.person_id = p.id
                 and ip.household_id <> p.household_id
               returning ip.id)
           select coalesce(array_agg(id), '{}') from moved""",
        department_id,
        run_id,
        timeout=LONG,
    )
    plans_kept = await plans.set_aside_kept(conn, moved, datetime.now(TOKYO).date())
    # nobody to call about a household whose head the file reports deceased or moved out
    counts["targets_excluded"] = await gone.heads(conn, department_id, run_id) + plans_kept
    if counts["households"]["inserted"] + counts["persons"]["inserted"] > 1000:
        # The phones and debts steps find their household and person by joining these two. With
        # the statistics of the tables before this import (empty, at a municipality's first one)
        # the planner expects one match and checks each new phone and debt against every row
        # inserted before it: 16 s for 10,000 households, growing with the square of the file.
        await conn.execute("analyze household, person", timeout=LONG)
    step("phones")
    counts["phones"] = await _counted(conn, "phone", _PHONES, department_id, run_id, older)
    # the earlier imports of this layout (numbers and debts another layout gave are not its to judge)
    earlier: list[int] = await conn.fetchval(
        """select coalesce(array_agg(id), '{}') from import_run
           where department_id = $1 and id <> $2 and status = 'done'
             and mapping = (select mapping from import_run where id = $2)""",
        department_id,
        run_id,
    )
    if "phones" in mapped and not older:
        started = time.perf_counter()
        if earlier and counts["phones"]["inserted"] > 1000:
            await conn.execute("analyze phone", timeout=LONG)  # as for households and persons above
        counts["phones_set_aside"] = await gone.phones(conn, department_id, run_id, earlier) if earlier else 0
        log.info("import.merged", table="phones_set_aside", seconds=round(time.perf_counter() - started, 2))
    if "fiscal_year" in mapped:
        step("debts")
        counts["debts"] = await _counted(conn, "debt", _DEBTS, department_id, run_id, as_of)
        if complete and not older and earlier:
            left += await gone.debts(conn, department_id, run_id, as_of, earlier, counts, closes_at_most)
    await conn.execute("select set_config('dialer.bulk', 'off', true)")
    step("summary")
    started = time.perf_counter()
    if sum(c["inserted"] for c in counts.values() if isinstance(c, dict)) > 1000:
        # fresh statistics, or the planner takes a table it just saw grow by a million rows for empty
        await conn.execute("analyze household, person, phone, debt", timeout=LONG)
    await conn.execute(
        """select refresh_household_summary(array(
               select h.id from household h
               where h.department_id = $1 and h.household_no in (select household_no from stage_household)) || $2)""",
        department_id,
        left,
        timeout=LONG,
    )
    log.info("import.merged", table="household_summary", seconds=round(time.perf_counter() - started, 2))
    return counts


async def _upsert(
    conn: Connection,
    table: str,
    template: str,
    mapped: set[str],
    columns: set[str],
    department_id: str,
    run_id: int,
    older: bool,
) -> dict[str, int]:
    """Fill the template's {sets} and {changed} with the columns the mapping provides: the others keep
    their stored values (a layout without 性別 never blanks it). A person's household always follows
    the file (a person can move).
    """
    provided = sorted(c for c in columns if c in mapped or (c == "is_head" and "relationship" in mapped))
    always = ["household_id"] if table == "person" else []
    cols = always + provided
    sets = "".join(f"{c} = src.{c}, " for c in cols)  # a layout without address: none for households
    changed = (
        f"({', '.join(f't.{c}' for c in cols)}) is distinct from ({', '.join(f'src.{c}' for c in cols)})"
        if cols
        else "false"
    )
    query = template.replace("{sets}", sets).replace("{changed}", changed)
    return await _counted(conn, table, query, department_id, run_id, older)


async def _counted(conn: Connection, table: str, query: str, *args: Any) -> dict[str, int]:
    """Run a merge statement whose `updated` and `inserted` parts each return one row per row written.

    `updated` is counted (so run) first: it reads only rows stored before. Run second, its scan of the
    department's key range also met every row just inserted (in the index, invisible to it) and
    checked each one's visibility in the heap: 1.8 s for a million new debts, to update nothing.
    """
    started = time.perf_counter()
    row = await conn.fetchrow(
        f"""{query}
            select (select count(*) from updated) as updated, (select count(*) from inserted) as inserted""",
        *args,
        timeout=LONG,
    )
    assert row is not None
    log.info("import.merged", table=table, seconds=round(time.perf_counter() - started, 2))
    return {"inserted": row["inserted"], "updated": row["updated"]}


# Each table is merged by one statement: the file's rows (src, computed once) update the stored
# rows whose key they share, where a value differs, and are inserted where the key is new. Faster
# than INSERT … ON CONFLICT DO UPDATE: the existing keys are found by one join instead of a
# speculative insertion per row (measured: half the time when nothing changed, ~20 % less for new
# rows). The import holds its department's lock, so no other statement adds these keys meanwhile
# (if one did, the unique index would refuse the insert and the import would fail whole).
#
# A new household starts with its summary as the file gives it (debts and phones are merged after
# it): the refresh at the end then finds nothing to change for it, instead of rewriting every new
# household (and re-checking its foreign key) once more. Where the file is not the whole story (a
# debt that moved here from another household, payments already imported), the refresh corrects it.
_HOUSEHOLDS = """
    with debts as (
        select household_no, sum(greatest(assessed_yen - paid_yen, 0)) as unpaid,
               min(due_date) filter (where assessed_yen > paid_yen) as oldest
        from stage_household where fiscal_year is not null group by household_no
    ), phones as (
        select household_no, bool_or(valid) as dialable from stage_phone group by household_no
    ), src as (
        select distinct on (s.household_no) s.household_no, coalesce(s.postal_code, '') as postal_code,
               coalesce(s.address, '') as address, coalesce(d.unpaid, 0) as unpaid_yen, d.oldest as oldest_due_date,
               coalesce(p.dialable, false) as dialable
        from stage_household s
        left join debts d on d.household_no = s.household_no
        left join phones p on p.household_no = s.household_no
        order by s.household_no, s.is_head desc nulls last, s.line
    ), updated as (
        update household t set {sets}import_id = $2, updated_at = now()
        from src where t.department_id = $1 and t.household_no = src.household_no and {changed}
          and not $3::boolean
        returning 1
    ), inserted as (
        insert into household (department_id, household_no, postal_code, address, import_id,
                               unpaid_yen, oldest_due_date, dialable)
        select $1, household_no, postal_code, address, $2, unpaid_yen, oldest_due_date, dialable from src
        where not exists (select 1 from household t where t.department_id = $1 and t.household_no = src.household_no)
        returning 1
    )"""

_PERSONS = """
    with src as (
        select distinct on (s.atena_no) h.id as household_id, s.atena_no, s.name_kanji, coalesce(s.name_kana, '') as name_kana,
               s.birth_date, coalesce(s.is_head, false) as is_head, s.sex, coalesce(s.relationship, '') as relationship,
               s.death_date, s.resident_from, s.resident_until, coalesce(s.nationality, '') as nationality
        from stage_household s join household h on h.department_id = $1 and h.household_no = s.household_no
        order by s.atena_no, s.line
    ), updated as (
        update person t set {sets}import_id = $2, updated_at = now()
        from src where t.department_id = $1 and t.atena_no = src.atena_no and {changed}
          and not $3::boolean
        returning 1
    ), inserted as (
        insert into person (household_id, department_id, atena_no, name_kanji, name_kana, birth_date, is_head, sex,
                            relationship, death_date, resident_from, resident_until, nationality, import_id)
        select household_id, $1, atena_no, name_kanji, name_kana, birth_date, is_head, sex, relationship, death_date,
               resident_from, resident_until, nationality, $2 from src
        where not exists (select 1 from person t where t.department_id = $1 and t.atena_no = src.atena_no)
        returning 1
    )"""

# A number an operator or staff set aside (source other than import) keeps their verdict.
_PHONES = """
    with src as (
        select distinct on (p.household_id, k.key)
               p.household_id, p.id as person_id, sp.number, sp.raw, sp.kind, sp.valid, sp.reason as invalid_reason,
               sp.position as priority, k.key
        from stage_phone sp
        join person p on p.department_id = $1 and p.atena_no = sp.atena_no
        cross join lateral (select {phone_key} as key) k
        where not $3::boolean or p.import_id = $2  -- an older export: only the persons it added
        order by p.household_id, k.key, sp.line, sp.position
    ), updated as (
        update phone t set
            person_id = src.person_id, kind = src.kind, raw = src.raw, priority = src.priority,
            valid = case when t.source = 'import' then src.valid else t.valid end,
            invalid_reason = case when t.source = 'import' then src.invalid_reason else t.invalid_reason end,
            import_id = $2, updated_at = now()
        from src
        where t.household_id = src.household_id and t.key = src.key
          and (t.person_id, t.kind, t.raw, t.priority, t.valid, t.invalid_reason)
              is distinct from (src.person_id, src.kind, src.raw, src.priority,
                                case when t.source = 'import' then src.valid else t.valid end,
                                case when t.source = 'import' then src.invalid_reason else t.invalid_reason end)
        returning 1
    ), inserted as (
        insert into phone (household_id, person_id, department_id, number, raw, kind, source, valid, invalid_reason,
                           priority, import_id)
        select household_id, person_id, $1, number, raw, kind, 'import', valid, invalid_reason, priority, $2 from src
        where not exists (select 1 from phone t where t.household_id = src.household_id and t.key = src.key)
        returning 1
    )""".replace("{phone_key}", STAGED_PHONE_KEY)

# paid_yen = the export's 収納額 + payments imported since, dated after the export's 抽出日.
# An older export never overwrites a newer one's figures.
_DEBTS = """
    with src as (
        select p.household_id, p.id as person_id, s.debt_type, s.fiscal_year, s.assessed_year, s.installment,
               coalesce(s.notice_no, '') as notice_no, s.assessed_yen, s.paid_yen as reported_paid_yen,
               s.paid_yen + coalesce(later.yen, 0) as paid_yen, $3::date as reported_as_of, s.due_date,
               coalesce(s.late_fee_yen, 0) as late_fee_yen, s.last_paid_on,
               coalesce(s.account_transfer, false) as account_transfer,
               coalesce(s.delinquency_class, '') as delinquency_class, k.key as source_key
        from stage_household s
        join person p on p.department_id = $1 and p.atena_no = s.atena_no
        cross join lateral (select {debt_key} as key) k
        left join (select d.source_key, sum(py.amount_yen) as yen from payment py join debt d on d.id = py.debt_id
                   where py.department_id = $1 and py.paid_on > $3 group by d.source_key) later on later.source_key = k.key
        where s.fiscal_year is not null
    ), updated as (
        update debt t set
            household_id = src.household_id, person_id = src.person_id, notice_no = src.notice_no,
            assessed_yen = src.assessed_yen, reported_paid_yen = src.reported_paid_yen, paid_yen = src.paid_yen,
            reported_as_of = src.reported_as_of, due_date = src.due_date, late_fee_yen = src.late_fee_yen,
            last_paid_on = src.last_paid_on, account_transfer = src.account_transfer,
            delinquency_class = src.delinquency_class, closed_on = null, import_id = $2, updated_at = now()
        from src
        where t.department_id = $1 and t.source_key = src.source_key
          and (t.reported_as_of is null or t.reported_as_of <= src.reported_as_of)
          and (t.closed_on is not null  -- listed again: open again
               or (t.household_id, t.person_id, t.notice_no, t.assessed_yen, t.reported_paid_yen, t.paid_yen,
                   t.due_date, t.late_fee_yen, t.last_paid_on, t.account_transfer, t.delinquency_class)
                  is distinct from
                  (src.household_id, src.person_id, src.notice_no, src.assessed_yen, src.reported_paid_yen,
                   src.paid_yen, src.due_date, src.late_fee_yen, src.last_paid_on, src.account_transfer,
                   src.delinquency_class))
        returning 1
    ), inserted as (
        insert into debt (household_id, person_id, department_id, debt_type, fiscal_year, assessed_year, installment,
                          notice_no, assessed_yen, reported_paid_yen, paid_yen, reported_as_of, due_date, late_fee_yen,
                          last_paid_on, account_transfer, delinquency_class, source_key, import_id)
        select household_id, person_id, $1, debt_type, fiscal_year, assessed_year, installment, notice_no, assessed_yen,
               reported_paid_yen, paid_yen, reported_as_of, due_date, late_fee_yen, last_paid_on, account_transfer,
               delinquency_class, source_key, $2 from src
        where not exists (select 1 from debt t where t.department_id = $1 and t.source_key = src.source_key)
        returning 1
    )""".replace("{debt_key}", STAGED_DEBT_KEY)
