"""Department separation enforced by PostgreSQL row-level security, tried with an attacker's queries.

NHI and tax share one server. Every query here runs on a connection the product would use (the
web pool, acting as dialer_app) inside an NHI user's scope, and is written the way a bug or an
attacker would write it: no department filter, the other department named outright, joins and
subqueries around the filter, writes into the other department. None may reach a tax resident.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from dialer.imports import mapping
from dialer.imports.run import ImportRequest, import_file
from dialer.store import db, records
from tests import factory
from tests.test_imports import row, write

RESIDENT_TABLES = (
    "household",
    "person",
    "phone",
    "debt",
    "payment",
    "campaign",
    "campaign_target",
    "attempt",
    "disposition",
    "contact_history",
    "promise",
    "import_run",
)


@pytest.fixture
async def shared_server(pool: asyncpg.Pool, db_dsn: str, tmp_path: Path) -> AsyncIterator[asyncpg.Pool]:
    """Both departments imported, each with a campaign, a call and a payment; yields the web pool."""
    for dept in ("nhi", "tax"):
        await factory.department(pool, dept)
        path = write(
            tmp_path / f"{dept}.csv", [row(世帯番号=f"{dept}-H1", 宛名番号=f"{dept}-A1", 氏名=f"{dept} 太郎")]
        )
        layout = dataclasses.replace(mapping.load("nhi-sample"), departments=())  # one layout for both
        await import_file(pool, ImportRequest(path=path, department_id=dept, mapping=layout))
        hid = await pool.fetchval("select id from household where department_id = $1", dept)
        cid = await factory.campaign(pool, dept)
        tid = await pool.fetchval(
            "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, $3) returning id",
            cid,
            hid,
            dept,
        )
        aid = await pool.fetchval(
            """insert into attempt (campaign_id, target_id, household_id, department_id, dial_mode, channel_id)
               values ($1, $2, $3, $4, 'preview', $5) returning id""",
            cid,
            tid,
            hid,
            dept,
            f"dlr-{dept}",
        )
        await pool.execute("insert into attempt_event (attempt_id, kind) values ($1, 'originated')", aid)
        debt = await pool.fetchval("select id from debt where department_id = $1", dept)
        await pool.execute(
            """insert into payment (department_id, debt_id, household_id, receipt_key, paid_on, amount_yen)
               values ($1, $2, $3, 'R1', current_date, 100)""",
            dept,
            debt,
            hid,
        )
        op = await factory.user(pool, f"op-{dept}", "operator", dept)
        disp = await pool.fetchval(
            """insert into disposition (attempt_id, client_token, operator_id, department_id, code)
               values ($1, gen_random_uuid(), $2, $3, 'promise') returning id""",
            aid,
            op.id,
            dept,
        )
        await pool.execute(
            """insert into promise (department_id, household_id, disposition_id, promised_on, amount_yen)
               values ($1, $2, $3, current_date + 7, 5000)""",
            dept,
            hid,
            disp,
        )
        await pool.execute(
            """insert into contact_history (department_id, household_id, at, method, content)
               values ($1, $2, now(), 'phone_out', '納付約束')""",
            dept,
            hid,
        )
    web = await db.create_pool(db_dsn, scope=db.NONE, name="attacker-test")
    yield web
    await web.close()


async def test_the_product_connects_as_a_role_that_cannot_bypass_rls(shared_server: asyncpg.Pool) -> None:
    role = await shared_server.fetchrow(
        "select current_user, r.rolsuper, r.rolbypassrls from pg_roles r where r.rolname = current_user"
    )
    assert tuple(role) == ("dialer_app", False, False)


async def test_outside_a_department_scope_nothing_is_visible(shared_server: asyncpg.Pool) -> None:
    for table in RESIDENT_TABLES:
        assert await shared_server.fetchval(f"select count(*) from {table}") == 0, table


@pytest.mark.parametrize(
    ("query", "sees"),
    [
        ("select count(*) from {t}", "own"),
        ("select count(*) from {t} where department_id = 'tax'", "nothing"),
        ("select count(*) from {t} where department_id <> 'nhi' or true", "own"),
        ("select count(*) from {t} where 1 = 1 union all select 0", "own"),
    ],
)
async def test_nhi_scope_never_returns_a_tax_row(shared_server: asyncpg.Pool, query: str, sees: str) -> None:
    async with db.department(shared_server, "nhi") as conn:
        for table in RESIDENT_TABLES:
            depts = await conn.fetch(f"select distinct department_id from {table}")
            assert {r[0] for r in depts} == {"nhi"}, table
            total = await conn.fetchval(f"select sum(c) from ({query.format(t=table)}) x(c)")
            own = await conn.fetchval(f"select count(*) from {table} where department_id = 'nhi'")
            assert own >= 1, table
            assert total == (own if sees == "own" else 0), (table, query)


async def test_joins_and_subqueries_around_the_filter_find_nothing(shared_server: asyncpg.Pool) -> None:
    async with db.department(shared_server, "nhi") as conn:
        leaked = await conn.fetch(
            """select p.name_kanji from person p
               join household h on h.id = p.household_id
               where h.id in (select household_id from campaign_target)
                  or p.id in (select person_id from debt where department_id = 'tax')
                  or p.atena_no like 'tax%'"""
        )
        assert all(not r[0].startswith("tax") for r in leaked)
        assert await conn.fetchval("select count(*) from attempt_event") == 1  # its own call's only
        assert (
            await conn.fetchval(
                "select count(*) from person where household_id in (select id from household where household_no = 'tax-H1')"
            )
            == 0
        )
        # even by id, learned some other way
        tax_ids = await conn.fetchval(
            "select count(*) from household where id in (select generate_series(1, 1000))"
        )
        assert tax_ids == 1


async def test_writes_into_another_department_are_refused_or_touch_nothing(
    shared_server: asyncpg.Pool,
) -> None:
    async with db.department(shared_server, "nhi") as conn:
        assert (
            await conn.execute("update household set address = '漏えい' where department_id = 'tax'")
            == "UPDATE 0"
        )
        assert await conn.execute("delete from debt where department_id = 'tax'") == "DELETE 0"
        own_phones = await conn.fetchval("select count(*) from phone where department_id = 'nhi'")
        assert (
            await conn.execute("update phone set do_not_call = true") == f"UPDATE {own_phones}"
        )  # its own only
    async with db.department(shared_server, "nhi") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # WITH CHECK
            await conn.execute(
                "insert into household (department_id, household_no) values ('tax', 'planted')"
            )
    async with db.department(shared_server, "nhi") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # moving a resident across departments
            await conn.execute("update household set department_id = 'tax'")
    async with db.department(shared_server, "tax") as conn:
        assert await conn.fetchval("select address from household") != "漏えい"
        assert not await conn.fetchval("select bool_or(do_not_call) from phone")


@pytest.mark.parametrize(
    ("table", "insert"),
    [
        ("contact_history", "insert into contact_history (department_id, household_id, at, method, content) "
                            "values ('nhi', $1, now(), 'other', 'x')"),
        ("promise", "insert into promise (department_id, household_id, promised_on, amount_yen) "
                    "values ('nhi', $1, current_date + 7, 100)"),
        ("handover", "insert into handover (department_id, household_id, reason) values ('nhi', $1, 'x')"),
        ("installment_plan", "insert into installment_plan (department_id, household_id, agreed_on, total_yen) "
                             "values ('nhi', $1, current_date, 100)"),
        ("attempt", "insert into attempt (household_id, department_id, dial_mode, channel_id) "
                    "values ($1, 'nhi', 'inbound', 'dlr-planted')"),
    ],
)  # fmt: skip
async def test_a_row_of_one_department_cannot_name_anothers_household_nor_tell_it_exists(
    shared_server: asyncpg.Pool, pool: asyncpg.Pool, table: str, insert: str
) -> None:
    """Row-level security checks a row's own department; its key checks the household's (sql/0039).
    The refusal for the tax department's household is the one for a household that does not exist."""
    tax_household = await pool.fetchval("select id from household where department_id = 'tax'")
    refusals = []
    for household in (tax_household, 999_999_999):
        async with db.department(shared_server, "nhi") as conn:
            with pytest.raises(asyncpg.ForeignKeyViolationError) as refused:
                await conn.execute(insert, household)
            refusals.append(refused.value.constraint_name)
    assert refusals[0] == refusals[1]
    assert await pool.fetchval(f"select count(*) from {table} where household_id = $1 and department_id = 'nhi'",
                               tax_household) == 0  # fmt: skip


async def test_department_settings_and_shared_codes_change_only_in_their_scope(
    shared_server: asyncpg.Pool, pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    """The tax department's callback number (read out to its residents) and retention (what its
    purge deletes) cannot be changed from NHI's scope or from none; the shared disposition codes
    and the users only by the `dialer` commands' all-departments scope."""
    settings = "select callback_number, retain_closed_days from department where id = 'tax'"
    before = tuple(await pool.fetchrow(settings))
    for scope in ("nhi", None):
        async with db.department(shared_server, scope) as conn:
            assert await conn.fetchval("select count(*) from department") == 2  # readable everywhere
            assert await conn.execute(
                "update department set callback_number = '0120000000', retain_closed_days = 30"
            ) == ("UPDATE 1" if scope else "UPDATE 0")  # its own row only
            assert await conn.execute("update disposition_code set label_ja = '改ざん'") == "UPDATE 0"
            # nobody is made an administrator, or let back in, from a web request
            assert (
                await conn.execute("update app_user set role = 'admin', department_id = null") == "UPDATE 0"
            )
            assert await conn.execute("delete from app_user") == "DELETE 0"
            assert (
                await conn.execute("delete from disposition_code where department_id is null") == "DELETE 0"
            )
            for attack in (
                "insert into department (id, name_ja, name_en) values ('planted', 'x', 'x')",
                "insert into disposition_code (department_id, code, label_ja, label_en) values (null, 'planted', 'x', 'x')",
                "insert into app_user (login, display_name, role, password_hash) values ('planted', 'x', 'admin', 'x')",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with conn.transaction():
                        await conn.execute(attack)
            assert await conn.execute("delete from department") == "DELETE 0"
    assert tuple(await pool.fetchrow(settings)) == before
    assert await pool.fetchval("select count(*) from disposition_code where label_ja = '改ざん'") == 0
    assert await pool.fetchval("select callback_number from department where id = 'nhi'") == "0120000000"
    # the `dialer` commands' scope may
    assert (
        await app_pool.execute("update department set name_en = 'Tax Division' where id = 'tax'")
        == "UPDATE 1"
    )
    assert (
        await app_pool.execute(
            "update disposition_code set sort = sort where department_id is null and code = 'promise'"
        )
        == "UPDATE 1"
    )


async def test_the_audit_log_is_append_only_for_the_product(
    shared_server: asyncpg.Pool, pool: asyncpg.Pool
) -> None:
    """Who looked at what cannot be rewritten or deleted by the product's role, in any scope; the
    purge's own function deletes only entries past the shortest retention, in its scope."""
    await pool.execute(
        """insert into audit_log (department_id, action, object_type, object_id, at) values
           ('nhi', 'record.view', 'household', '1', now() - interval '10 days'),
           ('nhi', 'record.view', 'household', '1', now() - interval '400 days'),
           ('tax', 'record.view', 'household', '2', now() - interval '400 days')"""
    )
    for scope in ("nhi", None):
        async with db.department(shared_server, scope) as conn:
            views = "select count(*) from audit_log where action = 'record.view'"  # (imports log too)
            # it reads its own department's entries only, none outside a scope (sql/0032)
            assert await conn.fetchval(views) == (2 if scope else 0)
            assert await conn.fetchval("select count(*) from audit_log where department_id = 'tax'") == 0
            if scope:  # and it cannot write into another department's log (sql/0033)
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with conn.transaction():
                        await conn.execute(
                            "insert into audit_log (department_id, action) values ('tax', 'export')"
                        )
            for attack in (
                "update audit_log set detail = '{}'",
                "delete from audit_log",
                "truncate audit_log",
            ):
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    async with conn.transaction():
                        await conn.execute(attack)
            # in nhi's scope: nhi's retention (the default: 5 years); outside it: not at all
            with pytest.raises(
                asyncpg.InsufficientPrivilegeError, match="kept 1826 days" if scope else "scope"
            ):
                async with conn.transaction():
                    await conn.fetchval("select dialer_purge_audit('nhi', now() - interval '366 days')")
    async with db.department(shared_server, "nhi") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="scope"):
            async with conn.transaction():
                await conn.fetchval("select dialer_purge_audit('tax', now() - interval '366 days')")
    await pool.execute(
        "update department set retain_audit_days = 365 where id = 'nhi'"
    )  # the shortest allowed
    async with db.department(shared_server, "nhi") as conn:
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="kept 365 days"):
            async with conn.transaction():
                await conn.fetchval("select dialer_purge_audit('nhi', now() - interval '300 days')")
        assert await conn.fetchval("select dialer_purge_audit('nhi', now() - interval '366 days')") == 1
    assert await pool.fetchval("select count(*) from audit_log where action = 'record.view'") == 2


async def test_a_scope_ends_with_its_transaction(shared_server: asyncpg.Pool) -> None:
    async with db.department(shared_server, "nhi") as conn:
        assert await conn.fetchval("select count(*) from household") == 1
    async with shared_server.acquire() as conn:  # the same connection, back in the pool
        assert await conn.fetchval("select count(*) from household") == 0
    with pytest.raises(ValueError, match="one department"):
        async with db.department(shared_server, db.ALL):
            pass


async def test_an_administrator_sees_no_resident(shared_server: asyncpg.Pool) -> None:
    async with db.department(shared_server, None) as conn:
        assert await conn.fetchval("select count(*) from household") == 0


async def test_the_operator_record_cannot_be_read_across_departments(
    shared_server: asyncpg.Pool, pool: asyncpg.Pool, db_dsn: str
) -> None:
    """Even on the engine's all-department pool, a record is read in the operator's department only."""
    tax_household = await pool.fetchval("select id from household where department_id = 'tax'")
    op = await factory.user(pool, "op-nhi-2", "operator", "nhi", "1001")
    engine = await db.create_pool(db_dsn, scope=db.ALL, name="engine-test")
    try:
        record = await records.read_for_operator(
            engine,
            household_id=tax_household,
            department_id="nhi",
            phone_id=None,
            user_id=op.id,
            reason="test",
        )
        assert record is None
        # and the query itself, were its department filter forgotten, would still find nothing
        async with db.department(engine, "nhi") as conn:
            assert await conn.fetchval("select count(*) from household where id = $1", tax_household) == 0
    finally:
        await engine.close()
