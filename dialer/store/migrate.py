"""Forward-only SQL migrations from sql/NNNN_name.sql, each applied once, in order, in a transaction.

Safe to run from several processes at once (an advisory lock serialises them) and safe to run
again (applied files are skipped). A file changed after it was applied is an error: ship a new one.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from dialer.errors import DialerError
from dialer.store.db import Connection

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x6469616C  # "dial"


class MigrationError(DialerError):
    error_id = "migration_failed"
    exit_code = 6


@dataclass(frozen=True)
class Migration:
    version: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def sql_dir() -> Path:
    configured = os.environ.get("DIALER_SQL_DIR")
    return Path(configured) if configured else Path(__file__).resolve().parents[2] / "sql"


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or sql_dir()
    if not directory.is_dir():
        raise MigrationError(f"No migrations directory at {directory} (set DIALER_SQL_DIR)")
    found = []
    for path in sorted(directory.iterdir()):
        if path.suffix == ".sql":
            match = _NAME.match(path.name)
            if not match:
                raise MigrationError(f"Migration file name must look like 0001_name.sql: {path.name}")
            found.append(Migration(path.name.removesuffix(".sql"), path))
    return found


async def migrate(conn: Connection, directory: Path | None = None) -> list[str]:
    """Apply pending migrations; return the versions applied now."""
    migrations = discover(directory)
    await conn.execute("select pg_advisory_lock($1)", _LOCK_KEY)
    try:
        if await conn.fetchval("select to_regclass('schema_migration') is null"):
            try:
                await conn.execute(
                    """create table if not exists schema_migration (
                           version text primary key, checksum text not null,
                           applied_at timestamptz not null default now())"""
                )
            except asyncpg.InsufficientPrivilegeError as exc:
                raise MigrationError(
                    f"The database has no tables yet and the user in DATABASE_URL may not create them ({exc}): "
                    "run `dialer migrate` with the database owner's DATABASE_URL first"
                ) from None
        done = {r["version"]: r["checksum"] for r in await conn.fetch("select * from schema_migration")}
        applied = []
        for m in migrations:
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(
                        f"Migration {m.version} was changed after it was applied; add a new migration instead"
                    )
                continue
            try:
                async with conn.transaction():
                    await conn.execute(m.sql)
                    await conn.execute(
                        "insert into schema_migration (version, checksum) values ($1, $2)",
                        m.version,
                        m.checksum,
                    )
            except asyncpg.InsufficientPrivilegeError as exc:
                raise MigrationError(
                    f"Migration {m.version} is pending and the user in DATABASE_URL may not apply it ({exc}): "
                    "run `dialer migrate` with the database owner's DATABASE_URL, then start again"
                ) from None
            except asyncpg.PostgresError as exc:
                raise MigrationError(f"Migration {m.version} failed: {exc}") from None
            applied.append(m.version)
        return applied
    finally:
        await conn.execute("select pg_advisory_unlock($1)", _LOCK_KEY)
