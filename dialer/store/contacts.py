"""経過記録 import, in PostgreSQL: the delinquency system's contact history, each entry once.

Staff record visits (臨戸), counter consultations (窓口), letters and calls in the delinquency
system. Imported, they count towards a household's last contact (最終接触: a segment's
not_contacted_days, the operator's record) when they reached the resident, so that nobody is
phoned as "not contacted" the week after they came to the counter. They are never exported back
(`source = 'imported'`: they came from there).

An entry is found again by its key: the resident's 宛名番号 and the file's 経過番号 when the layout
has one (a newer file updates the entry in place; one resident's number never reaches another's
entry), or else the entry's own values and its occurrence among identical lines of the file (a
corrected entry is then a new one). Importing the same file again adds nothing, and a file older
(by its 抽出日, `--as-of`) than the one that last gave an entry leaves that entry alone. An entry belongs
to the household its person (宛名番号) is in when it is imported.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from dialer.store.db import Connection
from dialer.store.imports import LONG, reject_repeated, reject_unknown_residents

_FIELDS = ("household_id", "at", "method", "place", "party", "content", "reached")


async def merge(conn: Connection, run_id: int, department_id: str, as_of: date) -> dict[str, Any]:
    await conn.execute("analyze stage_contact", timeout=LONG)
    # a 経過番号 is the resident's entry: numbered per resident by some systems, per department by others
    rejected = await reject_repeated(
        conn, run_id, "stage_contact", "atena_no || ':' || entry_no", "宛名番号:経過番号"
    )
    rejected += await reject_unknown_residents(conn, run_id, "stage_contact", department_id)
    changed = " or ".join(f"c.{f} is distinct from excluded.{f}" for f in _FIELDS)
    await conn.execute(
        """create temp table contact_keyed on commit drop as
           select s.*, p.household_id,
                  coalesce('no:' || s.atena_no || ':' || s.entry_no,
                           'auto:' || md5(concat_ws('|', s.atena_no, s.at, s.method, s.place, s.party, s.reached,
                                                    s.content))
                           || '#' || row_number() over (partition by s.atena_no, s.at, s.method, s.place, s.party,
                                                                     s.reached, s.content order by s.line)
                  ) as entry_key
           from stage_contact s join person p on p.department_id = $1 and p.atena_no = s.atena_no""",
        department_id,
        timeout=LONG,
    )
    # given by a newer file already: left as that file says (last week's file again undoes nothing)
    older = await conn.fetchval(
        """select count(*) from contact_keyed k join contact_history o
           on o.department_id = $1 and o.entry_key = k.entry_key and o.reported_as_of > $2""",
        department_id,
        as_of,
        timeout=LONG,
    )
    # this file is the newest to give them, changed or not (as plans: an older one between cannot undo it)
    await conn.execute(
        """update contact_history c set reported_as_of = $2 from contact_keyed k
           where c.department_id = $1 and c.entry_key = k.entry_key
             and coalesce(c.reported_as_of, '-infinity') < $2""",
        department_id,
        as_of,
        timeout=LONG,
    )
    row = await conn.fetchrow(
        f"""with stored as (
                insert into contact_history as c (department_id, household_id, at, method, place, party, content,
                                                  source, entry_key, reached, import_id, reported_as_of)
                select $1, household_id, at, method, place, party, content, 'imported', entry_key, reached, $2, $3
                from contact_keyed
                on conflict (department_id, entry_key) where entry_key is not null do update
                    set household_id = excluded.household_id, at = excluded.at, method = excluded.method,
                        place = excluded.place, party = excluded.party, content = excluded.content,
                        reached = excluded.reached, import_id = excluded.import_id
                    where ({changed}) and c.reported_as_of = excluded.reported_as_of
                returning (xmax = 0) as inserted
            )
            select (select count(*) from contact_keyed) as entries,
                   count(*) filter (where inserted) as inserted, count(*) filter (where not inserted) as updated
            from stored""",
        department_id,
        run_id,
        as_of,
        timeout=LONG,
    )
    assert row is not None
    unchanged = row["entries"] - row["inserted"] - row["updated"]
    return {
        "contacts": {"inserted": row["inserted"], "updated": row["updated"], "unchanged": unchanged},
        "contacts_older": older,
        "rejected_in_merge": rejected,
    }
