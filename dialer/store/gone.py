"""What a newer export says is gone, each taken out of the calls in its own way: the numbers a
person's rows no longer give (set aside, never dialled), the heads it reports deceased or moved out
(their households leave every campaign), and the debts a complete export no longer lists (closed:
owed no more). Run by the merge (dialer/store/merge.py) in the import's transaction.
"""

from __future__ import annotations

import time
from datetime import date, datetime
from typing import Any

from campaigns.hours import TOKYO
from dialer import logs
from dialer.store.db import Connection
from dialer.store.imports import LONG, STAGED_DEBT_KEY, STAGED_PHONE_KEY

log = logs.get("dialer.imports")


async def phones(conn: Connection, department_id: str, run_id: int, earlier: list[int]) -> int:
    """Numbers the file's persons no longer have, given by `earlier` imports of its layout: set aside."""
    n: int = await conn.fetchval(_PHONES, department_id, run_id, earlier, timeout=LONG)
    return n


async def heads(conn: Connection, department_id: str, run_id: int) -> int:
    """Households whose head this import reports deceased or moved out: out of their campaigns."""
    n: int = await conn.fetchval(_HEADS, department_id, run_id, datetime.now(TOKYO).date(), timeout=LONG)
    return n


async def debts(
    conn: Connection,
    department_id: str,
    run_id: int,
    as_of: date,
    earlier: list[int],
    counts: dict[str, Any],
    at_most: float,
) -> list[int]:
    """A complete export: the debts an earlier export of its layout gave and it does not are closed
    as of its 抽出日 (not owed: paid, written off, reassessed). Never on the strength of a line that
    could not be read: a person with a rejected line keeps their debts open, and a rejected line
    whose 宛名番号 is unknown stops any closing. Nor when it would close more than `at_most` of the
    layout's open debts: a file cut short in transfer, or one district's, looks complete too.
    Returns the households whose arrears change."""
    started = time.perf_counter()
    unknown = await conn.fetchval(
        "select count(*) from import_problem where import_id = $1 and severity = 'error' and atena_no = ''",
        run_id,
    )
    if unknown:
        counts["debts_closed"] = 0
        counts["debts_not_closed"] = unknown  # the report's rejected lines without a 宛名番号
        return []
    await conn.execute(_CLOSING, department_id, run_id, as_of, earlier, timeout=LONG)
    row = await conn.fetchrow(
        """select (select count(*) from closing) as closing,
                  (select count(*) from debt where department_id = $1 and closed_on is null
                     and import_id = any($2::bigint[])) as open""",
        department_id,
        [*earlier, run_id],
        timeout=LONG,
    )
    assert row is not None
    if row["closing"] > at_most * row["open"]:
        counts["debts_closed"] = 0
        counts["debts_not_closed_too_many"] = f"{row['closing']}/{row['open']}"
        return []
    households: list[int] = await conn.fetchval(_CLOSE, as_of, run_id, timeout=LONG)
    counts["debts_closed"] = row["closing"]
    log.info("import.merged", table="debts_closed", seconds=round(time.perf_counter() - started, 2))
    return households


# The file's persons whose numbers it no longer gives (an export not older than any imported), as
# the phones step left them: set aside, with the reason. An operator's or staff's number is theirs.
_PHONES = """
    with gone as (
        update phone t set valid = false, invalid_reason = '最新の取込データにない番号です', import_id = $2,
                           updated_at = now()
        from person p
        where p.department_id = $1 and p.id = t.person_id and t.source = 'import' and t.valid
          and p.atena_no in (select atena_no from stage_household)
          and t.import_id = any($3::bigint[])  -- given by an earlier export of this layout
          and not exists (select 1 from stage_phone sp join person q on q.department_id = $1 and q.atena_no = sp.atena_no
                          where q.household_id = t.household_id
                            and {phone_key} = t.key)
        returning 1
    )
    select count(*) from gone""".replace("{phone_key}", STAGED_PHONE_KEY)

# As the segments read it (campaigns/segments.py): the head deceased, or no longer a resident.
# Only heads this import wrote; a queued call is taken back as a payment takes it.
_HEADS = """
    with gone as (
        update campaign_target t set state = 'excluded', lease_owner = null, lease_expires_at = null,
               last_outcome = case when x.death_date is not null then 'deceased' else 'moved_out' end
        from person x
        where x.department_id = $1 and x.import_id = $2 and x.is_head
          and (x.death_date is not null or x.resident_until <= $3)
          and t.household_id = x.household_id and t.state in ('pending', 'leased')
        returning 1
    )
    select count(*) from gone"""

# A complete export's debts gone (merge_households `complete`): those an earlier export of its layout
# gave (and no later one changed) that it does not list, of persons none of whose lines it rejected.
_CLOSING = """
    create temp table closing on commit drop as
    with listed as (
        select {debt_key} as key
        from stage_household s where s.fiscal_year is not null
    ), unsure as (
        select distinct atena_no from import_problem where import_id = $2 and severity = 'error'
    )
    select t.id from debt t join person p on p.id = t.person_id
    where t.department_id = $1 and t.closed_on is null and t.import_id = any($4::bigint[])
      and (t.reported_as_of is null or t.reported_as_of <= $3)
      and not exists (select 1 from unsure u where u.atena_no = p.atena_no)
      and not exists (select 1 from listed l where l.key = t.source_key)""".replace(
    "{debt_key}", STAGED_DEBT_KEY
)

_CLOSE = """
    with gone as (
        update debt t set closed_on = $1, reported_as_of = $1, import_id = $2, updated_at = now()
        from closing c where t.id = c.id
        returning t.household_id
    )
    select coalesce(array_agg(distinct household_id), '{}') from gone"""
