"""Imports in PostgreSQL: the run record, staging by COPY, the problems report.

Rows reach the database only through COPY into temporary staging tables (never row by row);
merge.py and payments.py then merge them with a few set-based statements. Everything of one
import happens in one transaction: a crash half-way stores nothing but the run's 'failed' record.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from typing import Any

import asyncpg

from dialer.imports.records import CONTACT_STAGE, HOUSEHOLD_STAGE, PAYMENT_STAGE, PHONE_STAGE, PLAN_STAGE
from dialer.imports.rows import Problem
from dialer.store.db import Conn, Connection

LONG = 3600.0  # seconds: a merge of a million rows is not a 15-second query

# The keys a staged row is stored under, as SQL over a staged household row `s` and phone row `sp`:
# a debt's source_key (宛名番号|税目|年度|相当年度|期別) and a number's phone.key (sql/0004). Where
# an import matches what it gives and what it no longer gives (merge.py, gone.py), it is these.
STAGED_DEBT_KEY = "concat_ws('|', s.atena_no, s.debt_type, s.fiscal_year, s.assessed_year, s.installment)"
STAGED_PHONE_KEY = "case when sp.number <> '' then sp.number else 'raw:' || sp.raw end"

_PROBLEM_COLUMNS = (
    "import_id",
    "line",
    "column_name",
    "severity",
    "message",
    "value",
    "household_no",
    "atena_no",
)


@dataclass(frozen=True)
class RunInfo:
    id: int
    department_id: str
    kind: str
    file_name: str
    status: str
    started_at: Any
    finished_at: Any
    rows_read: int
    rows_stored: int
    rows_rejected: int
    rows_warned: int
    counts: dict[str, Any]
    message: str
    encoding: str
    mapping: str
    problems_purged_at: Any = None  # the error report was deleted then (retention)


async def begin(
    conn: Conn,
    *,
    department_id: str,
    kind: str,
    file_name: str,
    sha256: str,
    size: int,
    mapping: str,
    as_of: date | None,
    user_id: int | None,
) -> int:
    """Record a run; the connection holds the run's lock until it is released (see close_interrupted)."""
    run_id: int = await conn.fetchval(
        f"""with run as (
                insert into import_run (department_id, kind, file_name, file_sha256, file_bytes, mapping, as_of, user_id)
                values ($1, $2, $3, $4, $5, $6, $7, $8) returning id)
            select id from run, pg_advisory_lock({_RUN_KEY}) as locked""",
        department_id,
        kind,
        file_name,
        sha256,
        size,
        mapping,
        as_of,
        user_id,
    )
    return run_id


# A run is locked by the connection that imports it (a session lock, taken by the statement that
# records the run, so it is held from the moment anyone can see the run until the run ends or the
# connection goes). A run marked 'running' whose lock nobody holds was cut off (the process was
# killed, the machine went down): close_interrupted records it as failed.
_RUN_KEY = "hashtext('dialer.import.run'), (id % 2147483647)::int"
INTERRUPTED = "interrupted: the importing process stopped before it finished (nothing of the file was stored)"


async def close_interrupted(conn: Conn, department_id: str) -> int:
    """Mark this department's runs whose importer is gone as failed; returns how many."""
    closed: str = await conn.execute(
        f"""update import_run set status = 'failed', finished_at = now(), message = $2
            where department_id = $1 and status = 'running' and pg_try_advisory_xact_lock_shared({_RUN_KEY})""",
        department_id,
        INTERRUPTED,
    )
    return int(closed.split()[-1])


async def fail(conn: Conn, run_id: int, message: str) -> None:
    await conn.execute(
        "update import_run set status = 'failed', finished_at = now(), message = $2 where id = $1",
        run_id,
        message.replace("\x00", "")[:2000],  # PostgreSQL text cannot hold NUL
    )


async def create_staging(conn: Connection, kind: str) -> None:
    # Sorts and hashes over a million staged rows: in memory, not in temp files (this transaction only).
    await conn.execute("select set_config('work_mem', '256MB', true)")
    await conn.execute(
        """create temp table stage_problem (import_id bigint, line int, column_name text, severity text,
                                             message text, value text, household_no text, atena_no text)
           on commit drop"""
    )
    if kind == "households":
        await conn.execute(
            """create temp table stage_household (
                   line int, household_no text, atena_no text, name_kanji text, name_kana text, birth_date date,
                   sex text, relationship text, is_head boolean, death_date date, resident_from date,
                   resident_until date, nationality text, postal_code text, address text, debt_type text,
                   fiscal_year int, assessed_year int, installment int, notice_no text, assessed_yen bigint,
                   paid_yen bigint, due_date date, late_fee_yen bigint, last_paid_on date, account_transfer boolean,
                   delinquency_class text) on commit drop;
               create temp table stage_phone (
                   line int, household_no text, atena_no text, position int, raw text, number text, kind text,
                   valid boolean, reason text) on commit drop"""
        )
    elif kind == "plans":
        await conn.execute(
            """create temp table stage_plan (
                   line int, plan_no text, atena_no text, agreed_on date, status text, total_yen bigint, seq int,
                   due_date date, amount_yen bigint, paid_yen bigint, paid_on date, ok boolean) on commit drop"""
        )
    elif kind == "contacts":
        await conn.execute(
            """create temp table stage_contact (
                   line int, entry_no text, atena_no text, at timestamptz, method text, place text, party text,
                   reached boolean, content text) on commit drop"""
        )
    else:
        await conn.execute(
            """create temp table stage_payment (
                   line int, receipt_no text, atena_no text, debt_type text, fiscal_year int, assessed_year int,
                   installment int, notice_no text, amount_yen bigint, paid_on date, channel text) on commit drop"""
        )


_STAGES = {
    "households": ("stage_household", HOUSEHOLD_STAGE),
    "payments": ("stage_payment", PAYMENT_STAGE),
    "plans": ("stage_plan", PLAN_STAGE),
    "contacts": ("stage_contact", CONTACT_STAGE),
}


async def stage(
    conn: Connection,
    run_id: int,
    kind: str,
    rows: list[tuple[Any, ...]],
    phones: list[tuple[Any, ...]],
    problems: list[Problem],
) -> None:
    """COPY one batch into the staging tables and its problems into the report."""
    if rows:
        table, columns = _STAGES[kind]
        await conn.copy_records_to_table(table, records=rows, columns=columns, timeout=LONG)
    if phones:
        await conn.copy_records_to_table("stage_phone", records=phones, columns=PHONE_STAGE, timeout=LONG)
    if problems:
        await add_problems(conn, run_id, problems)


async def add_problems(conn: Connection, run_id: int, problems: list[Problem]) -> None:
    # COPY cannot write into a table under row-level security: problems are COPYed into a
    # temporary table and moved over by one INSERT (flush_problems) before the merge.
    await conn.copy_records_to_table(
        "stage_problem",
        records=[
            (run_id, p.line, p.column, p.severity, p.message, p.value, p.household_no, p.atena_no)
            for p in problems
        ],
        columns=_PROBLEM_COLUMNS,
        timeout=LONG,
    )


async def flush_problems(conn: Connection) -> None:
    await conn.execute(
        f"""insert into import_problem ({", ".join(_PROBLEM_COLUMNS)})
            select {", ".join(_PROBLEM_COLUMNS)} from stage_problem;
            truncate stage_problem""",
        timeout=LONG,
    )


async def reject_staged(conn: Connection, run_id: int, table: str, query: str, *args: Any) -> int:
    """Move the staged rows `query` selects (line, message) into the report as errors (with whose
    rows they are: a deletion request finds them)."""
    household_no = "s.household_no" if table == "stage_household" else "''"
    rows = await conn.fetch(
        f"""with bad as ({query}),
                 reported as (insert into import_problem (import_id, line, severity, message, household_no, atena_no)
                              select $1, bad.line, 'error', bad.message, coalesce({household_no}, ''),
                                     coalesce(s.atena_no, '')
                              from bad join {table} s on s.line = bad.line),
                 gone as (delete from {table} s using bad where s.line = bad.line returning s.line)
            select count(*) from gone""",
        run_id,
        *args,
        timeout=LONG,
    )
    n: int = rows[0][0]
    if table == "stage_household" and n:
        await conn.execute(
            "delete from stage_phone p where not exists (select 1 from stage_household s where s.line = p.line)"
        )
    return n


async def reject_repeated(conn: Connection, run_id: int, table: str, column: str, label: str) -> int:
    """Reject every line whose `column` (a 収納番号; an expression: 宛名番号 and 経過番号) an earlier
    line of the file gives too."""
    return await reject_staged(
        conn,
        run_id,
        table,
        f"""select line, format('{label} %s が行 %s と重複しています', key, first_line) as message
            from (select line, {column} as key, first_value(line) over (partition by {column} order by line) as first_line
                  from {table} where {column} is not null) x
            where line <> first_line""",
    )


async def reject_unknown_residents(conn: Connection, run_id: int, table: str, department_id: str) -> int:
    """Reject every line whose 宛名番号 the department's delinquency data never gave."""
    return await reject_staged(
        conn,
        run_id,
        table,
        f"""select s.line, format('宛名番号 %s の住民が登録されていません(滞納データの取込が先です)', s.atena_no) as message
            from {table} s
            where not exists (select 1 from person p where p.department_id = $2 and p.atena_no = s.atena_no)""",
        department_id,
    )


async def warn_staged(conn: Connection, run_id: int, query: str) -> int:
    """Report the staged rows `query` selects (line, message) as warnings: they are still imported."""
    n: int = await conn.fetchval(
        f"""with odd as ({query}),
                 reported as (insert into import_problem (import_id, line, severity, message, household_no, atena_no)
                              select $1, odd.line, 'warning', odd.message, s.household_no, s.atena_no
                              from odd join stage_household s on s.line = odd.line returning 1)
            select count(*) from reported""",
        run_id,
        timeout=LONG,
    )
    return n


async def finish(conn: Conn, run_id: int, *, encoding: str, read: int, counts: dict[str, Any]) -> RunInfo:
    """Close the run: its row counts come from the problems recorded (one row = one line)."""
    await conn.execute(
        """update import_run r set status = 'done', finished_at = now(), encoding = $2, rows_read = $3::int, counts = $4::jsonb, message = '',
                  rows_rejected = x.rejected, rows_warned = x.warned, rows_stored = $3::int - x.rejected
           from (select count(distinct line) filter (where severity = 'error') as rejected,
                        count(distinct line) filter (where severity = 'warning'
                              and line not in (select line from import_problem e where e.import_id = $1 and e.severity = 'error')) as warned
                 from import_problem where import_id = $1) x
           where r.id = $1""",
        run_id,
        encoding,
        read,
        json.dumps(counts),
        timeout=LONG,
    )
    info = await get(conn, run_id, None)
    assert info is not None
    return info


async def get(conn: Conn, run_id: int, department_id: str | None) -> RunInfo | None:
    row = await conn.fetchrow(
        f"select {_RUN_COLUMNS} from import_run where id = $1 and ($2::text is null or department_id = $2)",
        run_id,
        department_id,
    )
    return _run(row) if row else None


async def recent(conn: Conn, department_id: str | None, limit: int = 20) -> list[RunInfo]:
    rows = await conn.fetch(
        f"""select {_RUN_COLUMNS} from import_run where $1::text is null or department_id = $1
            order by id desc limit $2""",
        department_id,
        limit,
    )
    return [_run(r) for r in rows]


async def problems(conn: Conn, run_id: int, limit: int | None = None) -> list[asyncpg.Record]:
    """The run's problems in report order: all of them, or the first `limit`."""
    rows = await problem_page(conn, run_id, 0, size=limit or 2**31 - 1)
    return rows[:limit] if limit else rows


async def count_problems(conn: Conn, run_id: int) -> int:
    n: int = await conn.fetchval(
        "select count(*) from import_problem where import_id = $1", run_id, timeout=LONG
    )
    return n


async def problem_page(conn: Conn, run_id: int, after_line: int, size: int = 5000) -> list[asyncpg.Record]:
    """The problems of the lines after `after_line`, about `size` of them (whole lines), in report
    order; [] at the end. Each page is one short query: no cursor or connection is held between
    pages, however slowly a download is read."""
    return await conn.fetch(
        """select line, column_name, severity, message, value from import_problem
           where import_id = $1 and line > $2
             and line <= coalesce((select line from import_problem where import_id = $1 and line > $2
                                   order by line offset $3 limit 1), 2147483647)
           order by line, severity, column_name""",
        run_id,
        after_line,
        size - 1,
        timeout=LONG,
    )


_RUN_COLUMNS = """id, department_id, kind, file_name, status, started_at, finished_at, rows_read, rows_stored,
                  rows_rejected, rows_warned, counts, message, encoding, mapping, problems_purged_at"""


def _run(row: asyncpg.Record) -> RunInfo:
    data = dict(row)
    data["counts"] = json.loads(data["counts"]) if isinstance(data["counts"], str) else data["counts"]
    return RunInfo(**data)
