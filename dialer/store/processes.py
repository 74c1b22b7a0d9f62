"""Which dialer processes are alive: each one writes `seen_at` every heartbeat (sql/0015).

A process not seen for `dead_after` has died (a crash, a power cut, kill -9): its leases are
returned early by `targets.sweep` (never a household whose call is still up at Asterisk).
"""

from __future__ import annotations

import os
import socket

from dialer.store.db import Conn


async def register(conn: Conn, owner: str, link: str) -> None:
    await conn.execute(
        """insert into dialer_process (owner, host, pid, link) values ($1, $2, $3, $4)
           on conflict (owner) do update set seen_at = now()""",
        owner,
        socket.gethostname(),
        os.getpid(),
        link,
    )


async def beat(conn: Conn, owner: str, link: str) -> None:
    """Still here (registered again if someone removed the row, e.g. after a long outage)."""
    await register(conn, owner, link)


async def leave(conn: Conn, owner: str) -> None:
    """A clean stop: the process's leases were handed back already."""
    await conn.execute("delete from dialer_process where owner = $1", owner)


async def forget_dead(conn: Conn, dead_after_s: float) -> list[str]:
    """Remove processes not seen for `dead_after_s`; their names, for the log."""
    rows = await conn.fetch(
        """delete from dialer_process where seen_at < now() - make_interval(secs => $1)
           returning owner""",
        dead_after_s,
    )
    return [r["owner"] for r in rows]
