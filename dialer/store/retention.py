"""Retention policies per department and the records of purges (purge_run).

The deletion itself is dialer/store/purge.py. A record names no resident, and the product cannot
delete one (dialer_app has no DELETE on purge_run).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from dialer import logs, retention
from dialer.errors import ConfigError
from dialer.retention import Policy
from dialer.store import audit, db
from dialer.store.db import Conn, Connection

log = logs.get("dialer.purge")


@dataclass(frozen=True)
class PurgeRun:
    id: int
    department_id: str | None
    started_at: datetime
    finished_at: datetime | None
    status: str
    trigger: str
    user_name: str
    policy: dict[str, int]
    cutoffs: dict[str, str]
    counts: dict[str, int]
    vacuumed: bool
    message: str


async def policies(conn: Conn) -> dict[str, Policy]:
    rows = await conn.fetch(
        "select id, retain_closed_days, retain_import_report_days, retain_audit_days from department order by id"
    )
    return {r["id"]: Policy(r[1], r[2], r[3]) for r in rows}


async def confirmed(conn: Conn) -> set[str]:
    """The departments whose retention an administrator has confirmed (only they are purged)."""
    rows = await conn.fetch("select id from department where retention_confirmed_at is not null")
    return {r["id"] for r in rows}


async def change_policy(
    pool: asyncpg.Pool,
    department_id: str,
    days: Mapping[str, int],
    *,
    user_id: int | None,
    via: Mapping[str, str] | None = None,
    remote_addr: str = "",
) -> Policy:
    """Change some kinds' days (none: confirm the policy as it is), in one transaction with the audit
    log's entry (before, after, and `via`: who outside the product's users, e.g. the OS user).
    It runs in the department's own scope: only there may its row be changed (sql/0022)."""
    async with db.department(pool, department_id) as conn:
        current = (await policies(conn)).get(department_id)
        if current is None:
            raise ConfigError(f"No department {department_id!r}.")
        new = current.with_days(days)
        await set_policy(conn, department_id, new)
        await audit.record(
            conn, action="retention.set", user_id=user_id, department_id=department_id,
            object_type="department", object_id=department_id,
            detail={"before": current.as_dict(), "after": new.as_dict(), **(via or {})}, remote_addr=remote_addr,
        )  # fmt: skip
    return new


async def set_policy(conn: Conn, department_id: str, policy: Policy) -> None:
    """Set (or confirm as they are) a department's retention; from now on it is purged by it."""
    done = await conn.execute(
        """update department set retain_closed_days = $2, retain_import_report_days = $3, retain_audit_days = $4,
                                 retention_confirmed_at = now()
           where id = $1""",
        department_id,
        policy.closed_days,
        policy.import_report_days,
        policy.audit_days,
    )
    if done == "UPDATE 0":
        raise ConfigError(f"No department {department_id!r}.")


async def start_record(
    conn: Connection,
    department_id: str | None,
    trigger: str,
    user_name: str,
    policy: Any,
    cutoffs: Any,
    *,
    message: str = "",
) -> int:
    run_id: int = await conn.fetchval(
        """insert into purge_run (department_id, trigger, user_name, policy, cutoffs, message)
           values ($1, $2, $3, $4::jsonb, $5::jsonb, $6) returning id""",
        department_id,
        trigger,
        user_name[:64],
        json.dumps(policy),
        json.dumps(cutoffs),
        message,
    )
    return run_id


async def save_counts(conn: Connection, run_id: int | None, counts: dict[str, int]) -> None:
    await conn.execute("update purge_run set counts = $2::jsonb where id = $1", run_id, json.dumps(counts))


async def fail_record(pool: asyncpg.Pool, department_id: str, run_id: int | None, exc: BaseException) -> None:
    try:
        async with db.department(pool, department_id) as conn:
            await conn.execute(
                "update purge_run set status = 'failed', finished_at = now(), message = $2 where id = $1",
                run_id,
                type(exc).__name__,  # never str(exc): it may quote a row
            )
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
        log.warning("purge.record_failed", run=run_id)


async def close_interrupted(conn: Conn) -> int:
    """Records left 'running' by a purge whose process died: failed, 'interrupted'. Call only while
    holding the purge lock (dialer/purging.py): then no purge is running anywhere. What such a run
    deleted is in its counts (each batch commits its counts with its deletions)."""
    done: str = await conn.execute(
        """update purge_run set status = 'failed', finished_at = now(), message = 'interrupted'
           where status = 'running'"""
    )
    return int(done.split()[-1])


async def certificate(conn: Conn, run: PurgeRun) -> str:
    """The record as text (消去記録), its department named in both languages."""
    name = "サーバー全体 / server-wide"
    if run.department_id is not None:
        row = await conn.fetchrow("select name_ja, name_en from department where id = $1", run.department_id)
        assert row is not None  # purge_run.department_id references department
        name = f"{row['name_ja']} / {row['name_en']} ({run.department_id})"
    return retention.certificate(
        run_id=run.id, department=name, started=run.started_at, finished=run.finished_at, status=run.status,
        trigger=run.trigger, user_name=run.user_name, policy=run.policy, cutoffs=run.cutoffs, counts=run.counts,
        vacuumed=run.vacuumed, message=run.message,
    )  # fmt: skip


async def history(conn: Conn, department_id: str | None = None, limit: int = 50) -> list[PurgeRun]:
    rows = await conn.fetch(
        f"""select {_RUN} from purge_run
            where ($1::text is null or department_id = $1 or department_id is null)
            order by id desc limit $2""",
        department_id,
        limit,
    )
    return [_run(r) for r in rows]


async def get(conn: Conn, run_id: int) -> PurgeRun | None:
    row = await conn.fetchrow(f"select {_RUN} from purge_run where id = $1", run_id)
    return _run(row) if row else None


_RUN = "id, department_id, started_at, finished_at, status, trigger, user_name, policy, cutoffs, counts, vacuumed, message"


def _run(r: Any) -> PurgeRun:
    return PurgeRun(
        id=r["id"], department_id=r["department_id"], started_at=r["started_at"], finished_at=r["finished_at"],
        status=r["status"], trigger=r["trigger"], user_name=r["user_name"], policy=db.from_jsonb(r["policy"]),
        cutoffs=db.from_jsonb(r["cutoffs"]), counts=db.from_jsonb(r["counts"]), vacuumed=r["vacuumed"],
        message=r["message"],
    )  # fmt: skip
