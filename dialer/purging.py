"""The purge of data past its retention: every department and the server-wide part, now
(`dialer retention purge`) or every day at PURGE_AT (Tokyo time) in `dialer run`.

Several dialer processes may share one database: a session advisory lock lets one of them purge
and the others skip that day's run (the next one is tomorrow's anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, time
from pathlib import Path

import asyncpg

from dialer import logs, retention
from dialer.errors import ConfigError, DialerError
from dialer.metrics import Metrics
from dialer.store import purge
from dialer.store import retention as store
from dialer.store.db import unavailable

log = logs.get("dialer.purge")

_LOCK = "select pg_try_advisory_lock(hashtext('dialer.purge'))"
_UNLOCK = "select pg_advisory_unlock(hashtext('dialer.purge'))"


class PurgeBusy(DialerError):
    error_id = "purge_busy"
    exit_code = 8


async def purge_all(
    pool: asyncpg.Pool,
    uploads_dir: Path,
    *,
    trigger: str,
    user_name: str = "",
    dry_run: bool = False,
    department: str | None = None,
    now: datetime | None = None,
) -> list[purge.Outcome]:
    """Purge each department (or the one named) by its policy, then the server-wide part. Raises
    PurgeBusy if another process is purging right now.

    A department whose retention no administrator has confirmed yet (`dialer retention set`, or
    保存 on the page) is not purged, only counted by a dry run: installing or upgrading the product
    never deletes anything on its first night. The server-wide audit log waits until every
    department is confirmed. A department that fails (its import holds the lock for an hour, the
    database goes away) does not stop the others; the first failure is raised at the end."""
    now = now or datetime.now(UTC)
    async with pool.acquire() as lock:
        if not await lock.fetchval(_LOCK):
            raise PurgeBusy("Another dialer process is purging right now; try again when it is done.")
        try:
            if not dry_run:
                await store.close_interrupted(lock)
            policies = await store.policies(lock)
            confirmed = await store.confirmed(lock)
            if department is not None and department not in policies:
                raise ConfigError(f"No department {department!r}.")
            outcomes: list[purge.Outcome] = []
            failures: list[BaseException] = []
            for dept, policy in policies.items():
                if department not in (None, dept):
                    continue
                if dept not in confirmed and not dry_run:
                    outcomes.append(purge.Outcome(dept, unconfirmed=True))
                    log.warning("purge.unconfirmed", department=dept)
                    continue
                try:
                    outcomes.append(
                        await purge.purge_department(
                            pool, dept, policy, now=now, trigger=trigger, user_name=user_name, dry_run=dry_run
                        )
                    )
                except _FAILURES as exc:
                    log.error("purge.department_failed", department=dept, error=type(exc).__name__)
                    failures.append(exc)
            if department is None:
                audit_days = retention.server_audit_days(list(policies.values()))
                every = confirmed >= set(policies)
                outcomes.append(
                    await purge.purge_server(
                        pool, audit_days if every or dry_run else None, uploads_dir, now=now, trigger=trigger,
                        user_name=user_name, dry_run=dry_run,
                    )
                )  # fmt: skip
            if failures:
                raise failures[0]
            return outcomes
        finally:
            await lock.fetchval(_UNLOCK)


_FAILURES = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError)


class DailyPurge:
    """The purge every day at `at` (Tokyo time), owned by the running process (start/stop)."""

    def __init__(
        self, pool: asyncpg.Pool, uploads_dir: Path, at: time, metrics: Metrics, look_every_s: float = 600.0
    ) -> None:
        self.pool, self.uploads_dir, self.at, self.metrics = pool, uploads_dir, at, metrics
        self.look_every_s = look_every_s  # the record read again between runs (a purge run by hand)
        self._since = datetime.now(UTC)
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self._last_success()
        self._task = asyncio.create_task(self._loop(), name="daily-purge")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            now = datetime.now(UTC)
            due = retention.next_run(self.at, now)
            await asyncio.sleep(min((due - now).total_seconds(), self.look_every_s))
            if datetime.now(UTC) < due:  # between runs: a purge run by hand (`dialer retention
                await self._last_success()  # purge`, as the alert says) clears the alert too
                continue
            try:
                await self.run_once()
            except Exception:  # never the end of the daily purge: tomorrow's run tries again
                log.exception("purge.crashed")

    async def run_once(self) -> None:
        """One scheduled purge; a failure is logged and the next day's run tries again."""
        try:
            outcomes = await purge_all(self.pool, self.uploads_dir, trigger="schedule")
        except PurgeBusy:
            log.info("purge.skipped", reason="another process purges")
            outcomes = []
        except _FAILURES as exc:
            log.error("purge.failed", error=type(exc).__name__, database_down=unavailable(exc))
            outcomes = []
        for o in outcomes:
            log.info("purge.summary", department=o.department_id or "(server)", run=o.run_id, **o.counts)
            for kind, n in o.counts.items():
                self.metrics.purge_deleted.labels(kind).inc(n)
        await self._last_success()

    async def _last_success(self) -> None:
        """The last purge on record that finished, by whichever process (one that skipped because
        another purged is not behind); with none yet, when the database was set up: a new install
        has missed nothing, and one whose purges never finish is told so in two days however often
        its dialer restarts (the time this process started would hide it from the alert)."""
        try:
            last = await self.pool.fetchval(
                """select coalesce((select max(finished_at) from purge_run where status = 'done'),
                                   (select min(applied_at) from schema_migration))"""
            )
        except _FAILURES:
            return
        self.metrics.purge_last_success.set((last or self._since).timestamp())
