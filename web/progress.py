"""The campaigns' figures on the supervisor page, read once per department every few seconds and
shared by every page that asks (each open supervisor or staff page asks every 5 s; counting a
campaign list of a million households for each would load the database for nothing)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import asyncpg
from aiohttp import web

from dialer.store import campaigns

FRESH_S = 4.0  # (the page asks every 5 s)


@dataclass
class Progress:
    read: dict[str | None, tuple[float, list[dict[str, Any]]]] = field(default_factory=dict)
    locks: dict[str | None, asyncio.Lock] = field(default_factory=dict)

    async def of(
        self, pool: asyncpg.Pool, department_id: str | None, fresh: bool = False
    ) -> list[dict[str, Any]]:
        """`campaigns.progress_of` for this department (None: every one, an administrator's);
        `fresh`: read now (a page loaded, after a change the supervisor expects to see)."""
        async with self.locks.setdefault(department_id, asyncio.Lock()):  # one read at a time
            seen = self.read.get(department_id)
            if not fresh and seen is not None and time.monotonic() - seen[0] < FRESH_S:
                return seen[1]
            listed = await campaigns.progress_of(pool, department_id)
            self.read[department_id] = (time.monotonic(), listed)
            return listed


PROGRESS = web.AppKey("progress", Progress)
