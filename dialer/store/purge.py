"""Deleting personal data past its retention, each run with its record (dialer/store/retention.py).

Per department, in its own RLS scope:
  * closed households (nothing owed, no activity since the cut-off, no open promise, no kept plan,
    no call queued or up): the household row is deleted and PostgreSQL's cascades take its
    residents, numbers, debts, payments, plans, promises, 経過記録 and campaign rows. Its calls
    stay, for the daily reports and the abandon rate, made anonymous first: no household, target
    or number, the operator's note emptied;
  * calls from numbers that matched no household (inbound), past the same cut-off: number and note;
  * import error reports (they quote the rejected cells) past theirs;
  * the department's audit log past its own.
Server-wide (a record with no department): expired sessions, the audit log of actions outside any
department (kept as long as the longest department keeps its own), upload files orphaned by an
import killed with its process.

Which households are closed, and what a household's deletion takes with it, are in
dialer/store/closing.py (shared with the erase on request below). Households go in batches, each
batch one transaction that also adds its counts to the run's record: whatever happens mid-way,
the record says exactly what was deleted. The record names no resident and cannot be deleted
by the product (dialer_app has no DELETE on purge_run).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import asyncpg

from dialer import logs, retention
from dialer.errors import ConfigError
from dialer.retention import Cutoffs, Policy
from dialer.store import audit, closing, db, processes
from dialer.store.db import Connection
from dialer.store.retention import fail_record, save_counts, start_record

log = logs.get("dialer.purge")

BATCH = 1000
WAIT_S = closing.WAIT_S  # also for a table to be vacuumed


@dataclass
class Outcome:
    """What one purge did (or, dry, would do) for one department or the server-wide part."""

    department_id: str | None
    counts: Counter[str] = field(default_factory=Counter)
    run_id: int | None = None  # None: a dry run, or not purged (unconfirmed): nothing recorded
    unconfirmed: bool = False  # no administrator has confirmed the department's retention yet


async def purge_department(
    pool: asyncpg.Pool,
    department_id: str,
    policy: Policy,
    *,
    now: datetime,
    trigger: str,
    user_name: str = "",
    dry_run: bool = False,
    batch: int = BATCH,
) -> Outcome:
    cutoffs = policy.cutoffs(now)
    out = Outcome(department_id)
    keep = not dry_run  # a dry run: the same statements, each batch rolled back at once, no record
    if keep:
        async with db.department(pool, department_id) as conn:
            out.run_id = await start_record(
                conn, department_id, trigger, user_name, policy.as_dict(), cutoffs.as_dict()
            )
    try:
        after = 0
        while True:
            async with _transaction(pool, department_id, keep=keep) as conn:
                after = await _closed_batch(conn, department_id, cutoffs, after, batch, out.counts)
                if keep:
                    await save_counts(conn, out.run_id, dict(out.counts))
            if after == 0:
                break
        async with _transaction(pool, department_id, keep=keep) as conn:
            await _the_rest(conn, department_id, cutoffs, out.counts)
            if keep:
                assert out.run_id is not None
                await save_counts(conn, out.run_id, dict(out.counts))
                await audit.record(
                    conn, action="purge", user_id=None, department_id=department_id,
                    object_type="purge_run", object_id=out.run_id, detail=dict(out.counts),
                )  # fmt: skip
        if not keep:
            return out
        vacuumed = await _vacuum(pool, out.counts)
        async with db.department(pool, department_id) as conn:
            await conn.execute(
                "update purge_run set status = 'done', finished_at = now(), vacuumed = $2 where id = $1",
                out.run_id,
                vacuumed,
            )
    except BaseException as exc:
        if keep:
            await asyncio.shield(fail_record(pool, department_id, out.run_id, exc))
        raise
    log.info("purge.done", department=department_id, run=out.run_id, **out.counts)
    return out


async def _closed_batch(
    conn: Connection, department_id: str, cutoffs: Cutoffs, after: int, limit: int, counts: Counter[str]
) -> int:
    """Up to `limit` closed households with ids above `after`, deleted. Returns the last id when
    there may be more, else 0 (each batch goes on from the last: the whole run reads the
    department's households once)."""
    await _after_imports(conn, department_id)
    rows = await conn.fetch(closing.CLOSED, department_id, cutoffs.closed, limit, after, timeout=WAIT_S)
    if not rows:
        return 0
    last = rows[-1]["id"]
    ids = [r["id"] for r in await conn.fetch(closing.RECHECK, [r["id"] for r in rows], cutoffs.closed)]
    if ids:
        await closing.delete_households(conn, department_id, ids, counts)
    return last if len(rows) == limit else 0


async def erase_households(
    pool: asyncpg.Pool, department_id: str, household_nos: list[str], *, reason: str, user_name: str
) -> Outcome:
    """Delete these households now, whatever they owe (a deletion request, data given by mistake),
    in one transaction with its record (trigger 'request', the reason: the municipality's own
    reference, which is where the link to the person is kept; the record names no household).
    Refused as a whole if a number is unknown or one of them is being called right now."""
    if not reason.strip():
        raise ConfigError("Give the reason (the request's reference) with --reason.")
    out = Outcome(department_id)
    async with db.department(pool, department_id) as conn:
        await _after_imports(conn, department_id)
        rows = await conn.fetch(
            """select h.household_no, h.id,
                      exists (select 1 from attempt a where a.household_id = h.id and a.ended_at is null)
                      or exists (select 1 from campaign_target t where t.household_id = h.id and t.state = 'leased')
                      as busy
               from household h where h.department_id = $1 and h.household_no = any($2::text[])
               for update of h""",
            department_id,
            household_nos,
        )
        unknown = sorted(set(household_nos) - {r["household_no"] for r in rows})
        if unknown:
            raise ConfigError(f"No household {', '.join(unknown)} in {department_id}; nothing was deleted.")
        if busy := sorted(r["household_no"] for r in rows if r["busy"]):
            raise ConfigError(
                f"{', '.join(busy)}: a call is up or queued now; nothing was deleted, try again."
            )
        out.run_id = await start_record(
            conn, department_id, "request", user_name, {}, {}, message=reason.strip()[:200]
        )
        await closing.delete_households(conn, department_id, [r["id"] for r in rows], out.counts)
        await save_counts(conn, out.run_id, dict(out.counts))
        await conn.execute(
            "update purge_run set status = 'done', finished_at = now() where id = $1", out.run_id
        )
        await audit.record(
            conn, action="erase", user_id=None, department_id=department_id,
            object_type="purge_run", object_id=out.run_id, detail={"os_user": user_name, **out.counts},
        )  # fmt: skip
    await _vacuum_recorded(pool, out)
    return out


async def _after_imports(conn: Connection, department_id: str) -> None:
    """Wait for the department's import, if one runs (dialer/imports/run.py takes this lock for its
    whole transaction): a household it is about to update is never deleted under it."""
    await conn.execute(
        "select pg_advisory_xact_lock(hashtext('dialer.import.' || $1))", department_id, timeout=WAIT_S
    )


async def _the_rest(conn: Connection, department_id: str, cutoffs: Cutoffs, counts: Counter[str]) -> None:
    """Inbound calls matched to no household, import error reports, the audit log."""
    await closing.anonymise(
        conn, counts,
        """department_id = $1 and household_id is null and purged_at is null and dial_mode = 'inbound'
           and ended_at < $2""",
        department_id, cutoffs.closed,
    )  # fmt: skip
    counts["import_problems"] += await conn.fetchval(
        """with r as (update import_run set problems_purged_at = now()
                      where department_id = $1 and problems_purged_at is null and status <> 'running'
                        and coalesce(finished_at, started_at) < $2
                        and exists (select 1 from import_problem p where p.import_id = import_run.id)
                      returning id),
                p as (delete from import_problem where import_id in (select id from r) returning 1)
           select count(*) from p""",
        department_id,
        cutoffs.import_report,
    )
    counts["audit_entries"] += await conn.fetchval(
        "select dialer_purge_audit($1, $2)",  # the log is append-only for the product (sql/0021)
        department_id,
        cutoffs.audit,
    )


async def purge_server(
    pool: asyncpg.Pool,
    audit_days: int | None,
    uploads: Path,
    *,
    now: datetime,
    trigger: str,
    user_name: str = "",
    dry_run: bool = False,
) -> Outcome:
    """The server-wide part: expired sessions, orphan uploads, and the audit log outside any
    department (unless audit_days is None: not every department has confirmed its retention)."""
    cutoff = Policy(audit_days=audit_days).cutoffs(now).audit if audit_days is not None else None
    policy = {"audit": audit_days} if cutoff is not None else {}
    cutoffs = {"audit": cutoff.isoformat()} if cutoff is not None else {}
    out = Outcome(None)
    async with _transaction(pool, None, keep=not dry_run) as conn:
        if not dry_run:
            out.run_id = await start_record(conn, None, trigger, user_name, policy, cutoffs)
        sessions = await conn.fetchval(
            "with d as (delete from web_session where expires_at < $1 returning 1) select count(*) from d",
            now,
        )
        entries = 0
        if cutoff is not None:
            entries = await conn.fetchval("select dialer_purge_audit(null, $1)", cutoff)
        out.counts.update(expired_sessions=sessions, audit_entries=entries)
        orphans = await asyncio.to_thread(_orphan_uploads, uploads, now)
        out.counts["upload_files"] = len(orphans)
        if not dry_run:
            for path in orphans:
                path.unlink(missing_ok=True)
            await conn.execute(
                "update purge_run set counts = $2::jsonb, status = 'done', finished_at = now() where id = $1",
                out.run_id,
                json.dumps(dict(out.counts)),
            )
    if not dry_run:
        await _vacuum_recorded(pool, out)
    return out


@contextlib.asynccontextmanager
async def _transaction(
    pool: asyncpg.Pool, department_id: str | None, *, keep: bool
) -> AsyncIterator[Connection]:
    """A transaction (in the department's scope, if one is named) committed at the end if `keep`,
    else rolled back (a dry run: every statement ran, nothing changed)."""
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            if department_id is not None:
                await db.narrow(conn, department_id)
            yield conn
        except BaseException:
            await tx.rollback()
            raise
        await (tx.commit() if keep else tx.rollback())


def _orphan_uploads(folder: Path, now: datetime) -> list[Path]:
    """Uploads no import will finish: left by a process that is gone (named `<pid>-…`), or a day old."""
    if not folder.is_dir():
        return []
    oldest = (now - retention.ORPHAN_UPLOAD_AGE).timestamp()
    return [
        p for p in folder.glob("*.csv") if p.is_file() and (p.stat().st_mtime < oldest or _left_by_dead(p))
    ]


def _left_by_dead(path: Path) -> bool:
    pid = path.name.split("-", 1)[0]
    return pid.isdigit() and int(pid) != os.getpid() and not processes.running(int(pid))


def remove_uploads_of_dead(folder: Path) -> int:
    """At start: the residents' files uploads of a killed process left (its import died with it) go
    now, not at the next purge; how many."""
    if not folder.is_dir():
        return 0
    gone = [p for p in folder.glob("*.csv") if p.is_file() and _left_by_dead(p)]
    for path in gone:
        path.unlink(missing_ok=True)
    return len(gone)


# The tables each count's rows were deleted from (or, for calls and notes, rewritten in).
_TABLES = {
    "households": ("household",), "persons": ("person",), "related_parties": ("related_party",),
    "phones": ("phone",), "debts": ("debt",), "payments": ("payment",),
    "installment_plans": ("installment_plan", "installment_due"), "promises": ("promise",),
    "contact_history": ("contact_history",), "campaign_targets": ("campaign_target",),
    "calls_made_anonymous": ("attempt",), "notes_emptied": ("disposition",),
    "import_problems": ("import_problem",), "audit_entries": ("audit_log",), "handovers": ("handover",),
}  # fmt: skip


async def _vacuum_recorded(pool: asyncpg.Pool, out: Outcome) -> None:
    """VACUUM after a run already recorded as done, and say in its record whether it could."""
    vacuumed = await _vacuum(pool, out.counts)
    await pool.execute("update purge_run set vacuumed = $2 where id = $1", out.run_id, vacuumed)


async def _vacuum(pool: asyncpg.Pool, counts: Counter[str]) -> bool:
    """VACUUM the tables that lost rows (or old versions of rewritten ones): the deleted data is then
    gone from the tables, not only hidden from queries. Needs PostgreSQL 17's MAINTAIN privilege
    (sql/0018); on older servers autovacuum does it later and the record says vacuumed = false."""
    tables = sorted({t for kind, n in counts.items() if n for t in _TABLES.get(kind, ())})
    if not tables:
        return True
    async with pool.acquire() as conn:
        if int(await conn.fetchval("show server_version_num")) < 170000:
            return False
        allowed = await conn.fetchval(
            "select bool_and(has_table_privilege(t, 'MAINTAIN')) from unnest($1::text[]) t", tables
        )
        if not allowed:
            return False
        try:
            await conn.execute("vacuum " + ", ".join(tables), timeout=WAIT_S)
        except (asyncpg.PostgresError, TimeoutError) as exc:  # the deletion stands; autovacuum follows
            log.warning("purge.vacuum_failed", error=type(exc).__name__)
            return False
    return True
