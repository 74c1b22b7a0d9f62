"""Passwords kept from the product's own role: a query bug or an injection running as dialer_app,
in any department's scope or none, can neither copy users' digests nor test guesses at speed, and a
temporary table it makes never stands in for the product's (sql/0045, sql/0046, dialer/store/db.py)."""

from __future__ import annotations

import asyncpg
import pytest

from dialer.store import db
from dialer.store.passwords import digest_for, hash_password
from tests.test_department_separation import shared_server  # noqa: F401 (the fixture: both departments)


async def test_the_product_cannot_read_password_hashes(
    shared_server: asyncpg.Pool,  # noqa: F811
    pool: asyncpg.Pool,
    db_dsn: str,
) -> None:
    """A query bug or an injection as dialer_app, in any scope, cannot copy the users' digests to
    crack them offline, nor test a batch of guesses: the login gets a login's salt and parameters and
    asks whether a digest matches (sql/0045, sql/0046; review: a function that returned the hash
    gave every active user's to `select password_hash_of(login) from app_user`)."""
    stored = hash_password("correct horse")
    await pool.execute(
        "insert into app_user (login, display_name, role, department_id, password_hash, active) values "
        "('hashed', 'h', 'operator', 'nhi', $1, true), ('gone', 'g', 'operator', 'nhi', $1, false)",
        stored,
    )
    everywhere = await db.create_pool(db_dsn, scope=db.ALL, name="cli-test")  # as the CLI runs
    for scope in ("nhi", None, db.ALL):
        async with everywhere.acquire() if scope == db.ALL else db.department(shared_server, scope) as conn:
            assert await conn.fetchval("select current_user") == "dialer_app"
            for attack in (
                "select password_hash from app_user",
                "select * from app_user",
                "select u from app_user u",  # (the whole row)
                "select count(*) from app_user where password_hash like 'scrypt%'",
                "update app_user set display_name = display_name where password_hash is not null",
                "update app_user set password_hash = password_hash || ''",
                "select nextval('password_check_seq')",
                "select setval('password_check_seq', 1)",
                "select password_hash_of('hashed')",  # (0045's, dropped)
            ):
                with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedFunctionError)):
                    async with conn.transaction():
                        await conn.execute(attack)
            # the columns a page shows stay readable; of a password, the salt and parameters only
            assert await conn.fetchval("select display_name from app_user where login = 'hashed'") == "h"
            params = await conn.fetchval("select password_params_of('hashed')")
            assert params == stored.rsplit("$", 1)[0] + "$32"
            assert stored.rsplit("$", 1)[1] not in " ".join(
                r[0] or "" for r in await conn.fetch("select password_params_of(login) from app_user")
            )
            assert await conn.fetchval("select password_params_of('gone')") is None  # (switched off)
    async with everywhere.acquire() as conn:
        right, wrong = digest_for("correct horse", params), digest_for("wrong horse", params)
        assert await conn.fetchval("select password_matches('hashed', $1)", right) is True
        assert await conn.fetchval("select password_matches('hashed', $1)", wrong) is False
        assert await conn.fetchval("select password_matches('gone', $1)", right) is False
        # A batch of guesses is refused after 600 checks in a minute (1,500: whichever minute they
        # fall in, one has more than 600), and a rollback does not give them back (a sequence).
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="too many password checks"):
            await conn.fetchval(
                "select count(*) filter (where password_matches('hashed', d)) from unnest($1::text[]) d",
                [wrong] * 1500,
            )
    await everywhere.close()


async def test_a_temporary_table_never_stands_in_for_the_products(
    shared_server: asyncpg.Pool,  # noqa: F811
) -> None:
    """A temporary table outlives the request on a pooled connection: one an injection made with a
    table's name must not be what later requests read (pg_temp searched last; review)."""
    async with shared_server.acquire() as conn:
        await conn.execute("create temp table app_user (login text, active boolean)")
        await conn.execute("insert into pg_temp.app_user values ('planted', true)")
        assert await conn.fetchval("select count(*) from app_user where login = 'planted'") == 0
        assert await conn.fetchval("select count(*) from pg_temp.app_user") == 1
        await conn.execute("reset all")  # as the pool does when it takes the connection back
        assert await conn.fetchval("show search_path") == "public, pg_temp"
