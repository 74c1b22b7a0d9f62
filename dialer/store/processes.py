"""Which dialer processes are alive: each one writes `seen_at` every heartbeat (sql/0015).

A process not seen for `dead_after` (its own, or the looker's if longer: the looker's is endless
for a while after the database came back, watch.DatabaseWatch.dead_after) has died (a crash, a power cut, kill -9): its leases are
returned early by `targets.sweep` (never a household whose call is still up at Asterisk).
"""

from __future__ import annotations

import os
import socket

from dialer.store.db import Conn


def seen_within(looker: str, row: str = "") -> str:
    """SQL: the dialer_process row (`row`, an alias, or none) is alive: seen within its own
    `dead_after_s` or the looker's (the SQL parameter `looker`), whichever is longer (sql/0041)."""
    p = f"{row}." if row else ""
    return f"{p}seen_at > now() - make_interval(secs => greatest({looker}, {p}dead_after_s))"


async def register(conn: Conn, owner: str, link: str, dead_after_s: float) -> None:
    """This process is alive; it is taken for dead once not seen for its own `dead_after_s` (six
    of its heartbeats), whatever the others' heartbeats are (sql/0041)."""
    await conn.execute(
        """insert into dialer_process (owner, host, pid, link, marks_sessions, dead_after_s)
           values ($1, $2, $3, $4, true, $5)
           on conflict (owner) do update set seen_at = now(), dead_after_s = excluded.dead_after_s""",
        owner,
        socket.gethostname(),
        os.getpid(),
        link,
        dead_after_s,
    )


async def beat(conn: Conn, owner: str, link: str, dead_after_s: float) -> None:
    """Still here (registered again if someone removed the row, e.g. after a long outage)."""
    await register(conn, owner, link, dead_after_s)


async def leave(conn: Conn, owner: str) -> None:
    """A clean stop: the process's leases were handed back already."""
    await conn.execute("delete from operator_phone where owner = $1", owner)
    await conn.execute("delete from dialer_process where owner = $1", owner)


async def claim_phone(
    conn: Conn, user_id: int, owner: str, dead_after_s: float, *, force: bool = False
) -> bool:
    """This dialer drives the operator's phone session from now on (sql/0037): True unless another
    dialer that is alive holds it. Taken at once from one that is dead or gone; two claiming at
    the same moment cannot both win (the row is the operator's). `force`: taken whoever holds it
    (the caller found no session of the operator at Asterisk: the claim outlived it), once it is a
    minute old."""
    got: str | None = await conn.fetchval(
        f"""insert into operator_phone (user_id, owner) values ($1, $2)
           on conflict (user_id) do update set owner = excluded.owner, since = now()
           where ($4 and operator_phone.since < now() - interval '60 seconds')  -- (not one just made:
                                              -- its session may be ringing, not yet at Asterisk)
              or operator_phone.owner = excluded.owner
              or not exists (select 1 from dialer_process p where p.owner = operator_phone.owner
                             and {seen_within("$3", "p")})
           returning owner""",
        user_id,
        owner,
        dead_after_s,
        force,
    )
    return got == owner


async def release_phone(conn: Conn, user_id: int, owner: str) -> None:
    """The operator's session ended or they logged out: another dialer may take them."""
    await conn.execute("delete from operator_phone where user_id = $1 and owner = $2", user_id, owner)


def running(pid: int) -> bool:
    """A process of this machine with this pid runs (perhaps another one that reused it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it runs
        return True
    return True


async def forget_gone_here(conn: Conn) -> list[str]:
    """Processes of this machine whose pid no longer runs (restarted after a crash): dead now,
    without waiting for six missed heartbeats. A reused pid only delays this to the heartbeat rule."""
    rows = await conn.fetch(
        "select owner, pid from dialer_process where host = $1 and pid <> $2",
        socket.gethostname(),
        os.getpid(),
    )
    gone = [r["owner"] for r in rows if not running(r["pid"])]
    if gone:
        await conn.execute("delete from dialer_process where owner = any($1::text[])", gone)
    return gone


def mark(owner: str) -> str:
    """The random end of a process's name (`dialer-<host>-<pid>-<8 hex>`, campaigns/engine.py),
    carried in the operator sessions it opens: whoever finds one at Asterisk knows whose it is."""
    return owner.rsplit("-", 1)[-1]


async def alive(conn: Conn, mark: str, dead_after_s: float) -> bool:
    """The dialer process whose name ends in `mark` is alive (seen within `dead_after_s`)."""
    return bool(
        await conn.fetchval(
            f"""select exists (select 1 from dialer_process
                               where right(owner, length($1) + 1) = '-' || $1 and {seen_within("$2")})""",
            mark,
            dead_after_s,
        )
    )


async def unmarked_owner_alive(conn: Conn, owner: str, link: str, dead_after_s: float) -> bool:
    """A dialer of a version that opens sessions without its mark (before sql/0025) drives this
    Asterisk and is alive: a session without a mark may be its, and is not ours to take."""
    return bool(
        await conn.fetchval(
            f"""select exists (select 1 from dialer_process where link = $1 and owner <> $2 and not marks_sessions
                                and {seen_within("$3")})""",
            link,
            owner,
            dead_after_s,
        )
    )


async def forget_dead(conn: Conn, dead_after_s: float) -> list[str]:
    """Remove processes not seen for `dead_after_s`; their names, for the log."""
    rows = await conn.fetch(
        f"delete from dialer_process where not ({seen_within('$1')}) returning owner",
        dead_after_s,
    )
    return [r["owner"] for r in rows]
