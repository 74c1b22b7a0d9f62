"""Login lockouts: failed logins counted per user ID and per computer (from the audit log), the
locks they set, and their lifting by an administrator or a new password."""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dialer.store import audit
from dialer.store.db import Conn, transaction


def address_of(remote: str) -> str:
    """A computer's address as the lockout counts it: an IPv4 address seen through an IPv6 socket
    (::ffff:10.0.0.7) is 10.0.0.7, and IPv6 is written compressed, so that the address typed to
    `dialer users unlock --address` is the one the failures were recorded under. Not an address
    (a Unix socket): as it is."""
    try:
        ip = ipaddress.ip_address(remote.strip())
    except ValueError:
        return remote
    mapped = ip.ipv4_mapped if isinstance(ip, ipaddress.IPv6Address) else None
    return str(mapped or ip)


LOCKOUT_FAILURES = 5  # failed logins to one user ID within LOCKOUT_WINDOW lock it for the rest of it
LOCKOUT_WINDOW = timedelta(minutes=15)


def _failed_since_unlocked(by: str, key: str) -> str:
    """SQL: the entry `f` is a failed login counted now against the lock of `key` (an SQL
    expression), a user ID (`by` login) or an address: in the window ($1), after the last lifting
    of that lock (`unlock`; a new password), if later."""
    return f"""f.action = 'login.failed' and f.at > now() - $1::interval
               and f.at > coalesce((select max(u.at) from audit_log u where u.action = 'login.unlocked'
                                    and u.detail ->> '{by}' = {key}), '-infinity')"""


async def recent_failures(conn: Conn, key: str, window: timedelta = LOCKOUT_WINDOW) -> int:
    """Failed logins under this key (`failure_key`) within the window, since an administrator last
    lifted its lock (from the audit log)."""
    count: int = await conn.fetchval(
        f"""select count(*) from audit_log f
            where f.detail ->> 'login' = $2 and {_failed_since_unlocked("login", "$2")}""",
        window,
        key,
    )
    return count


async def address_failures(conn: Conn, remote_addr: str, window: timedelta = LOCKOUT_WINDOW) -> int:
    """Failed logins from this address within the window, for user IDs that exist (from the audit
    log): one password tried against the staff's IDs; an ID mistyped is not counted (a floor behind
    one address mistypes IDs at every shift change). Counted since an administrator last lifted
    the address's lock."""
    count: int = await conn.fetchval(
        f"""select count(*) from audit_log f
            where f.remote_addr = $2 and f.detail ->> 'login' not like '?%'
              and {_failed_since_unlocked("address", "$2")}""",
        window,
        remote_addr,
    )
    return count


async def locked_logins(conn: Conn) -> set[str]:
    """The user IDs locked now by failed logins (for the administrators' list)."""
    rows = await conn.fetch(
        f"""select f.detail ->> 'login' as login from audit_log f
            where f.detail ->> 'login' not like '?%' and {_failed_since_unlocked("login", "f.detail ->> 'login'")}
            group by 1 having count(*) >= $2""",
        LOCKOUT_WINDOW,
        LOCKOUT_FAILURES,
    )
    return {r["login"] for r in rows}


async def locked_addresses(conn: Conn, per_address: int) -> list[str]:
    """The computers whose logins are refused now (LOGIN_FAILURES_PER_ADDRESS; 0: none ever)."""
    if per_address <= 0:
        return []
    rows = await conn.fetch(
        f"""select f.remote_addr from audit_log f
            where f.detail ->> 'login' not like '?%' and {_failed_since_unlocked("address", "f.remote_addr")}
            group by 1 having count(*) >= $2 order by 1""",
        LOCKOUT_WINDOW,
        per_address,
    )
    return [r["remote_addr"] for r in rows]


async def unlock(
    conn: Conn, *, login: str | None = None, address: str | None = None, via: Mapping[str, Any]
) -> int:
    """An administrator lifts the lock failed logins put on a user ID, or on an address (someone
    who mistyped their password five times need not wait 15 minutes). Recorded in the audit log,
    which the lockout counts from; the failures it set aside are returned (0: it was not locked)."""
    if (login is None) == (address is None):
        raise ValueError("a login or an address")
    from dialer.store.users import UserError, login_id  # (users imports this module)

    async with transaction(conn) as tx:
        if login is not None:
            login = login_id(login)
            if not await tx.fetchval("select exists (select 1 from app_user where login = $1)", login):
                raise UserError(f"no user {login!r} (`dialer users list` shows them)")
        counted = await lift(tx, login=login, address=address, via=via, always=True)
    return counted


async def lift(
    conn: Conn,
    *,
    login: str | None = None,
    address: str | None = None,
    via: Mapping[str, Any],
    always: bool = False,
) -> int:
    """Record the lifting of the ID's (or address's) lock (`login.unlocked`, which the counting
    starts from): the failures set aside. Not recorded when none were counted, unless `always`."""
    counted = await (
        recent_failures(conn, login) if login is not None else address_failures(conn, address or "")
    )
    if counted or always:
        await audit.record(
            conn, action="login.unlocked", user_id=None, department_id=None, object_type="app_user" if login else "",
            object_id=login or "", detail={**({"login": login} if login else {"address": address}),
                                           "failures": counted, **via},
        )  # fmt: skip
    return counted


async def failure_key(conn: Conn, login: str) -> str:
    """What the audit log keeps of a refused login, and counts the lockout by: the user ID when it
    is one; else one of 256 buckets of what was typed ("?" and two hex digits: no login ID starts
    with "?"). People type their password into the ID field, and the log is kept five years: a
    bucket tells nobody what it was, and an unknown ID is still locked out as a known one is (the
    lockout does not say which IDs exist)."""
    if await conn.fetchval("select exists (select 1 from app_user where login = $1)", login):
        return login
    return "?" + hashlib.sha256(("dialer.login:" + login).encode()).hexdigest()[:2]
