"""Is PostgreSQL there? One answer for the whole process.

Any part that meets an outage (a call record that could not be written, a lease that could not be
taken, a page's session that could not be looked up) reports it with `down()`. From then on the
engine places no new call; it probes (`select 1`) about once a second, writes the call records it
held meanwhile, and only then reports `back()`, and dialling resumes. Pages are told both ways
({"type": "database", "up": ...}) and `dialer_database_up` follows.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import asyncpg
import structlog

from dialer.aio import within
from dialer.metrics import Metrics
from dialer.store.db import UNAVAILABLE

log = structlog.get_logger("dialer.store")

PROBE_TIMEOUT_S = 2.0

Listener = Callable[[bool], Awaitable[None]]


class DatabaseWatch:
    def __init__(self, pool: asyncpg.Pool, metrics: Metrics) -> None:
        self.pool, self.metrics = pool, metrics
        self.up = True
        self._down_since = 0.0
        self._back_at = time.monotonic()  # when it was last back (or watched from)
        self._listeners: list[Listener] = []
        metrics.database_up.set(1)

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    async def down(self, exc: BaseException, where: str) -> None:
        """An outage met in `where`; the first report of one is logged and pushed."""
        if not self.up:
            return
        self.up = False
        self._down_since = time.monotonic()
        self.metrics.database_up.set(0)
        log.error("database.down", where=where, error=type(exc).__name__, detail=str(exc)[:200])
        await self._tell(False)

    async def back(self) -> None:
        """Called by the engine once a probe succeeded and the held call records are written."""
        if self.up:
            return
        self.up = True
        self._back_at = time.monotonic()
        self.metrics.database_up.set(1)
        log.info("database.back", down_s=round(time.monotonic() - self._down_since, 1))
        await self._tell(True)

    def dead_after(self, dead_after_s: float) -> float:
        """How long a dialer may go without a heartbeat before it is taken for dead, as this one
        can judge it: for `dead_after_s` after the database came back (or this dialer started), no
        dialer could have beaten meanwhile, so none is judged by its heartbeat (one whose row is
        gone, a process of this machine no longer running, is still dead at once)."""
        settled = self.up and time.monotonic() - self._back_at >= dead_after_s
        return dead_after_s if settled else 1e9

    async def probe(self) -> bool:
        """Does the database answer now (within 2 s)? Does not change `up` by itself on success."""
        try:
            await within(PROBE_TIMEOUT_S, self.pool.fetchval("select 1"))
        except Exception as exc:  # whatever stops "select 1" means not back yet (never a crash)
            if not isinstance(exc, UNAVAILABLE):
                log.warning("database.probe_failed", error=type(exc).__name__)
            return False
        return True

    async def _tell(self, up: bool) -> None:
        for listener in self._listeners:
            try:
                await listener(up)
            except Exception:
                log.exception("database.listener_failed")
