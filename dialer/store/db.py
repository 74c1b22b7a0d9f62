"""Connection pools. Every query has a deadline (command_timeout); sessions run in Asia/Tokyo.

The product's connections run as the role dialer_app, under PostgreSQL row-level security
(sql/0005): a connection sees a department's residents only inside a department scope
(`department(pool, id)`), or all of them when its pool was made for the engine (ALL).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import AsyncIterator
from typing import Any, TypeAlias, TypeGuard

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from dialer.errors import DatabaseUnavailable

TIMEZONE = "Asia/Tokyo"

# Anything that runs queries: the pool, a connection, or a connection borrowed from the pool.
# (Strings: asyncpg's classes are generic only in its stubs.)
Conn: TypeAlias = "asyncpg.Pool[Any] | asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


def from_jsonb(value: str | None) -> Any:
    """A jsonb column's value (asyncpg hands jsonb over as text); None stays None."""
    return json.loads(value) if value is not None else None


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


# The database is away (stopped, restarting, in recovery, unreachable, out of connections): a retry
# later may succeed. Anything else a query raises is a refusal (bad data or a bug), not an outage.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,  # among others "connection is closed" after the server went away
    asyncpg.PostgresConnectionError,  # connection does not exist / failure / cannot connect
    asyncpg.OperatorInterventionError,  # admin or crash shutdown, "the database system is starting up"
    asyncpg.InsufficientResourcesError,  # too many connections, disk full
    DatabaseUnavailable,  # a new connection could not take the application role
)


def unavailable(exc: BaseException) -> bool:
    return isinstance(exc, UNAVAILABLE)


# Every id is a bigint: a number beyond it names nothing (and asyncpg cannot even send it).
BIGINT_MAX = 2**63 - 1


def is_id(value: object) -> TypeGuard[int]:
    """Whether a value (from a request) can be an id: a whole number 1..BIGINT_MAX, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= BIGINT_MAX


APP_ROLE = "dialer_app"
ALL = "*"  # the engine's scope: every department (it narrows itself where it shows a resident)
NONE = ""  # the web app's scope: nothing, until a request opens its user's department


async def _as_app_role(conn: asyncpg.Connection[Any]) -> None:
    """Every connection runs as dialer_app (no superuser, no BYPASSRLS), whoever logged in."""
    try:
        await conn.execute(f"set role {APP_ROLE}")
    except asyncpg.PostgresError as exc:
        raise DatabaseUnavailable(
            f"Cannot act as the role {APP_ROLE} ({exc}). Run `dialer migrate` as the database owner, "
            f"and GRANT {APP_ROLE} TO the user in DATABASE_URL."
        ) from None


async def login_is_privileged(pool: asyncpg.Pool) -> bool:
    """Whether the user that logs in (not dialer_app, which it acts as) could do more than dialer_app:
    a superuser, a role that bypasses RLS, or one that may delete from the audit log (the owner)."""
    return bool(
        await pool.fetchval(
            """select rolsuper or rolbypassrls or has_table_privilege(session_user, 'audit_log', 'DELETE')
               from pg_roles where rolname = session_user"""
        )
    )


EMBEDDED_LOGIN = "dialer_login"


async def embedded_login(owner_dsn: str) -> str:
    """The DSN the product's pools use on the embedded server: a login that is only a member of
    dialer_app (made here once), not the superuser the server was set up with, from which SQL run
    through the product could leave dialer_app (RESET ROLE) and read every department. The server
    listens on its own Unix socket only (local trust); migrations keep the owner's DSN."""
    conn = await connect_owner(owner_dsn)
    try:
        await conn.execute(
            f"""do $$ begin
                    if not exists (select from pg_roles where rolname = '{EMBEDDED_LOGIN}') then
                        create role {EMBEDDED_LOGIN} login nosuperuser nobypassrls noinherit;
                    end if;
                end $$;
                grant {APP_ROLE} to {EMBEDDED_LOGIN}"""
        )
    finally:
        await conn.close()
    return re.sub(r"^postgresql://[^@/]*@", f"postgresql://{EMBEDDED_LOGIN}@", owner_dsn, count=1)


async def connect_owner(dsn: str) -> asyncpg.Connection[Any]:
    """One connection as the login user itself (migrations); no RLS role."""
    try:
        return await asyncpg.connect(
            dsn, timeout=5, command_timeout=300, server_settings={"timezone": TIMEZONE}
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(
            f"Cannot connect to PostgreSQL at {redact(dsn)}: {exc}. Check DATABASE_URL and that the server runs."
        ) from None


async def create_pool(
    dsn: str, *, scope: str = ALL, min_size: int = 1, max_size: int = 10, name: str = "dialer"
) -> asyncpg.Pool:
    """A pool whose connections act as dialer_app with `dialer.department` = scope by default."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=5,
            command_timeout=15,
            init=_as_app_role,
            connect=_connect,
            # a startup setting is also the value RESET ALL returns to when a connection is released
            # pg_temp last: a temporary table made through an injection (it outlives the request on a
            # pooled connection) never stands in for one of ours, app_user or web_session (review)
            server_settings={
                "timezone": TIMEZONE,
                "application_name": name,
                "dialer.department": scope,
                "search_path": "public, pg_temp",
            },
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(
            f"Cannot connect to PostgreSQL at {redact(dsn)}: {exc}. Check DATABASE_URL and that the server runs."
        ) from None
    assert pool is not None
    return pool


async def _connect(*args: Any, **kwargs: Any) -> asyncpg.Connection:
    """A new connection for a pool. PostgreSQL refusing one, whatever its reason (the database not
    accepting connections, dropped, the password changed), is the database being unavailable: the
    product holds what it must write and waits for it, as for a server that went away."""
    try:
        return await asyncpg.connect(*args, **kwargs)
    except asyncpg.PostgresError as exc:
        raise DatabaseUnavailable(f"PostgreSQL refused a new connection: {exc}") from exc


@contextlib.asynccontextmanager
async def department(pool: asyncpg.Pool, department_id: str | None) -> AsyncIterator[Connection]:
    """A connection in a transaction that sees (and may write) only this department's rows.

    None (an administrator, who belongs to no department) sees no resident at all.
    """
    async with pool.acquire() as conn, conn.transaction():
        await narrow(conn, department_id)
        yield conn


@contextlib.asynccontextmanager
async def transaction(conn: Conn) -> AsyncIterator[Connection]:
    """A transaction on this connection, or on one borrowed from this pool for the while."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as held, held.transaction():
            yield held
    else:
        async with conn.transaction():
            yield conn


async def narrow(conn: Connection, department_id: str | None) -> None:
    """Limit the current transaction to one department (SET LOCAL: undone at its end)."""
    if department_id == ALL:
        raise ValueError("a department scope names one department")
    await conn.execute("select set_config('dialer.department', $1, true)", department_id or NONE)
