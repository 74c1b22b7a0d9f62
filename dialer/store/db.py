"""The connection pool. Every query has a deadline (command_timeout); sessions run in Asia/Tokyo."""

from __future__ import annotations

import re
from typing import Any, TypeAlias

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from dialer.errors import DatabaseUnavailable

TIMEZONE = "Asia/Tokyo"

# Anything that runs queries: the pool, a connection, or a connection borrowed from the pool.
# (Strings: asyncpg's classes are generic only in its stubs.)
Conn: TypeAlias = "asyncpg.Pool[Any] | asyncpg.Connection[Any] | PoolConnectionProxy[Any]"
Connection: TypeAlias = "asyncpg.Connection[Any] | PoolConnectionProxy[Any]"


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    return re.sub(r"(://[^:/@]*:)[^@]*@", r"\1***@", dsn)


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    try:
        pool = await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            timeout=5,
            command_timeout=15,
            server_settings={"timezone": TIMEZONE, "application_name": "dialer"},
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        raise DatabaseUnavailable(
            f"Cannot connect to PostgreSQL at {redact(dsn)}: {exc}. Check DATABASE_URL and that the server runs."
        ) from None
    assert pool is not None
    return pool
