"""Retention: data past its time is deleted (households, error reports, the audit log, sessions,
orphan uploads), calls stay as anonymous statistics, and every deletion leaves a record.

Runs the product's purge (as dialer_app, under row-level security) against the embedded
PostgreSQL; the test's own setup ages the data as the database owner."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time as clock
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from dialer import purging
from dialer.retention import TOKYO, Policy
from dialer.store import purge
from dialer.store import retention as store
from tests import factory
from tests.retention_data import OLD, age, call, closed_household, confirm, pay_off, residents_of


async def test_a_closed_household_goes_with_everything_about_it_and_its_calls_stay_as_statistics(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    await confirm(pool, "nhi")
    tax_campaign = await factory.campaign(pool, "tax")
    gone = await factory.household(pool, w.campaign_id, "0311110001", no="GONE")
    await pool.execute(
        """insert into related_party (person_id, department_id, kind, name)
           select id, 'nhi', 'workplace', '見本商事' from person where household_id = $1""",
        gone,
    )
    await pool.execute(
        """insert into payment (department_id, debt_id, household_id, receipt_key, paid_on, amount_yen, created_at)
           select 'nhi', id, household_id, 'R-GONE', '2025-09-01', 24000, now() - interval '400 days'
           from debt where household_id = $1""",
        gone,
    )
    called = await call(pool, gone, w.operator.id, OLD, "本人と話し、来月払うとのこと")
    kept = {  # each is closed and old but for one thing, or owes
        "RECENT-CONTACT": await factory.household(pool, w.campaign_id, "0311110002", no="RECENT-CONTACT"),
        "OWES": await factory.household(pool, w.campaign_id, "0311110003", no="OWES"),
        "OPEN-PROMISE": await factory.household(pool, w.campaign_id, "0311110004", no="OPEN-PROMISE"),
        "QUEUED": await factory.household(pool, w.campaign_id, "0311110005", no="QUEUED"),
        "RECENT-PAYMENT": await factory.household(pool, w.campaign_id, "0311110006", no="RECENT-PAYMENT"),
    }
    tax_gone = await factory.household(pool, tax_campaign, "0311110007", dept="tax", no="TAX-GONE")
    for hid in (gone, tax_gone, *kept.values()):
        if hid != kept["OWES"]:
            await pay_off(pool, hid)
        await age(pool, hid, OLD)
    await call(pool, kept["RECENT-CONTACT"], w.operator.id, timedelta(days=20), "先月の話")
    await pool.execute(
        """insert into promise (department_id, household_id, promised_on, amount_yen, status, created_at)
           values ('nhi', $1, '2025-10-01', 5000, 'open', now() - interval '400 days')""",
        kept["OPEN-PROMISE"],
    )
    await pool.execute("update campaign_target set state = 'pending' where household_id = $1", kept["QUEUED"])
    await pool.execute(
        """insert into payment (department_id, debt_id, household_id, receipt_key, paid_on, amount_yen)
           select 'nhi', id, household_id, 'R-NEW', current_date, 100 from debt where household_id = $1""",
        kept["RECENT-PAYMENT"],
    )
    calls_before = await pool.fetchval("select count(*) from attempt where campaign_id = $1", w.campaign_id)

    outcomes = await purging.purge_all(app_pool, tmp_path / "uploads", trigger="command", department="nhi")

    (nhi,) = outcomes
    assert nhi.department_id == "nhi"
    assert nhi.run_id is not None
    assert {k: v for k, v in nhi.counts.items() if v} == {
        "households": 1, "persons": 1, "related_parties": 1, "phones": 1, "debts": 1, "payments": 1,
        "promises": 1, "contact_history": 1, "campaign_targets": 1, "calls_made_anonymous": 1, "notes_emptied": 1,
    }  # fmt: skip
    assert await residents_of(pool, "nhi") == set(kept)
    assert await residents_of(pool, "tax") == {"TAX-GONE"}  # another department's purge: not touched
    for table in ("person", "phone", "debt", "payment", "promise", "contact_history", "campaign_target"):
        assert await pool.fetchval(f"select count(*) from {table} where household_id = $1", gone) == 0, table
    assert await pool.fetchval("select count(*) from related_party where name = '見本商事'") == 0
    # the call stays for the daily reports and the abandon rate, without who or what was said
    row = await pool.fetchrow("select * from attempt where id = $1", called)
    assert (row["campaign_id"], row["outcome"], row["operator_id"]) == (
        w.campaign_id,
        "connected",
        w.operator.id,
    )
    assert (row["household_id"], row["target_id"], row["phone_id"], row["dialed_number"]) == (None,) * 4
    assert row["purged_at"] is not None
    assert row["answered_at"] is not None
    assert (
        await pool.fetchval("select count(*) from attempt where campaign_id = $1", w.campaign_id)
        == calls_before
    )
    disposition = await pool.fetchrow(
        "select code, note, promise_amount_yen from disposition where attempt_id = $1", called
    )
    assert tuple(disposition) == ("promise", "", 5000)
    # the record, and the audit log's entry for it
    run = await store.get(pool, nhi.run_id)
    assert run is not None
    assert run.status == "done"
    assert run.trigger == "command"
    assert run.counts == dict(nhi.counts)
    assert run.policy == {
        "closed": 365,
        "import_report": 90,
        "audit": 1826,
    }
    assert run.vacuumed is (int(await pool.fetchval("show server_version_num")) >= 170000)
    assert datetime.fromisoformat(run.cutoffs["closed"]).date() == datetime.now(TOKYO).date() - timedelta(
        days=365
    )
    entry = await pool.fetchrow(
        "select action, object_id, detail from audit_log where action = 'purge' order by id limit 1"
    )
    assert entry["object_id"] == str(nhi.run_id)
    # again: nothing left to delete
    (again,) = await purging.purge_all(app_pool, tmp_path / "uploads", trigger="command", department="nhi")
    assert not any(again.counts.values())


async def test_a_dry_run_counts_the_same_and_changes_nothing(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    w = await factory.world(pool)
    hids = [await factory.household(pool, w.campaign_id, f"03222200{i:02d}", no=f"D{i}") for i in range(5)]
    for hid in hids:
        await pay_off(pool, hid)
        await age(pool, hid, OLD)
        await call(pool, hid, w.operator.id, OLD, "メモ")
    dry = await purging.purge_all(app_pool, tmp_path / "uploads", trigger="command", dry_run=True)
    assert all(o.run_id is None for o in dry)
    assert await pool.fetchval("select count(*) from household") == 5
    assert await pool.fetchval("select count(*) from purge_run") == 0
    assert await pool.fetchval("select count(*) from attempt where purged_at is not null") == 0
    # batches of 2: three transactions, the same counts as the dry run's one
    (real,) = [
        await purge.purge_department(
            app_pool, "nhi", Policy(), now=datetime.now(UTC), trigger="command", batch=2
        )
    ]
    assert real.counts == dry[0].counts
    assert real.counts["households"] == 5
    assert await pool.fetchval("select count(*) from household") == 0


async def test_error_reports_and_the_audit_log_go_at_their_own_retention(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await factory.department(pool, "nhi")
    await factory.department(pool, "tax")
    await confirm(pool, "tax")
    await store.set_policy(pool, "nhi", Policy(import_report_days=7, audit_days=365))
    runs = {}
    for dept, days_ago in (("nhi", 10), ("nhi", 3), ("tax", 10)):
        run_id = await pool.fetchval(
            """insert into import_run (department_id, kind, file_name, file_sha256, file_bytes, mapping, status,
                                       started_at, finished_at, rows_rejected)
               values ($1, 'households', 'x.csv', 'x', 1, 'nhi-sample', 'done', now() - make_interval(days => $2),
                       now() - make_interval(days => $2), 2) returning id""",
            dept, days_ago,
        )  # fmt: skip
        await pool.execute(
            """insert into import_problem (import_id, line, column_name, severity, message, value)
               values ($1, 2, '氏名', 'error', 'empty', '見本 花子'), ($1, 3, '電話番号1', 'warning', 'bad', '03-1')""",
            run_id,
        )
        runs[(dept, days_ago)] = run_id
    for dept, days in (("nhi", 400), ("nhi", 300), ("tax", 400), (None, 400), (None, 3000)):
        await pool.execute(
            "insert into audit_log (department_id, action, at) values ($1, 'record.view', now() - make_interval(days => $2))",
            dept, days,
        )  # fmt: skip
    outcomes = {
        o.department_id: o for o in await purging.purge_all(app_pool, tmp_path / "uploads", trigger="command")
    }
    assert outcomes["nhi"].counts["import_problems"] == 2
    assert outcomes["tax"].counts["import_problems"] == 0  # tax keeps reports 90 days
    left = {r["import_id"] for r in await pool.fetch("select distinct import_id from import_problem")}
    assert left == {runs[("nhi", 3)], runs[("tax", 10)]}
    purged = await pool.fetchval("select problems_purged_at from import_run where id = $1", runs[("nhi", 10)])
    assert purged is not None
    assert outcomes["nhi"].counts["audit_entries"] == 1  # 400 days: past nhi's 365, tax keeps 1826
    assert outcomes["tax"].counts["audit_entries"] == 0
    # outside any department: as long as the longest department (tax, 1826 days)
    assert outcomes[None].counts["audit_entries"] == 1
    ages = sorted(
        (r["department_id"] or "", r["days"])
        for r in await pool.fetch(
            "select department_id, extract(day from now() - at)::int as days from audit_log where action = 'record.view'"
        )
    )
    assert ages == [("", 400), ("nhi", 300), ("tax", 400)]


async def test_expired_sessions_and_orphaned_uploads_go(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await factory.department(pool, "nhi")
    u = await factory.user(pool, "op1", "operator", "nhi", "1001")
    for hours in (-1, 5):
        await pool.execute(
            """insert into web_session (token_hash, user_id, csrf_token, expires_at)
               values (decode(md5(random()::text), 'hex'), $1, 'x', now() + make_interval(hours => $2))""",
            u.id, hours,
        )  # fmt: skip
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    dead = await asyncio.create_subprocess_exec("true")
    await dead.wait()  # a process that has ended: what it uploaded, its import died with it
    orphan, fresh, other = uploads / "a.csv", uploads / "b.csv", uploads / "notes.txt"
    killed, mine = uploads / f"{dead.pid}-c.csv", uploads / f"{os.getpid()}-d.csv"
    for f in (orphan, fresh, other, killed, mine):
        f.write_text("世帯番号,氏名\nH1,見本 太郎\n", encoding="utf-8")
    two_days_ago = clock.time() - 2 * 86400
    os.utime(orphan, (two_days_ago, two_days_ago))
    os.utime(other, (two_days_ago, two_days_ago))
    outcomes = await purging.purge_all(app_pool, uploads, trigger="schedule")
    server = outcomes[-1]
    assert server.department_id is None
    assert (server.counts["expired_sessions"], server.counts["upload_files"]) == (1, 2)
    assert not orphan.exists()
    assert not killed.exists()  # at once, not a day later (its process is gone)
    assert mine.exists()  # (this process's own: an import may be reading it)
    assert fresh.exists()
    assert other.exists()
    assert await pool.fetchval("select count(*) from web_session") == 1
    run = await store.get(pool, server.run_id or 0)
    assert run is not None
    assert run.trigger == "schedule"
    assert run.department_id is None


async def test_a_purge_waits_for_the_departments_import_and_one_process_purges_at_a_time(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    w = await factory.world(pool)
    await confirm(pool, "nhi")
    await closed_household(pool, w.campaign_id, "0333330001", "LOCKED")
    importer = await asyncpg.connect(db_dsn)
    try:
        async with importer.transaction():  # an import of nhi holds this for its whole transaction
            await importer.execute("select pg_advisory_xact_lock(hashtext('dialer.import.' || 'nhi'))")
            purge = asyncio.ensure_future(
                purging.purge_all(app_pool, tmp_path, trigger="command", department="nhi")
            )
            await asyncio.sleep(0.5)
            assert not purge.done()
            with pytest.raises(purging.PurgeBusy):  # a second purge meanwhile does not start
                await purging.purge_all(app_pool, tmp_path, trigger="command")
            assert await pool.fetchval("select count(*) from household") == 1
        (outcome,) = await asyncio.wait_for(purge, 10)
    finally:
        await importer.close()
    assert outcome.counts["households"] == 1


async def test_the_record_of_a_purge_cannot_be_deleted_by_the_product(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await factory.department(pool, "nhi")
    await confirm(pool, "nhi")
    (run, _) = await purging.purge_all(app_pool, tmp_path, trigger="command")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_pool.execute("delete from purge_run where id = $1", run.run_id)
    with pytest.raises(asyncpg.RaiseError, match="is finished and is never changed"):
        await app_pool.execute(
            """update purge_run set counts = '{"households": 0}' where id = $1""", run.run_id
        )
    assert await pool.fetchval("select count(*) from purge_run") == 2


async def test_a_payment_for_a_debt_that_moved_to_another_household_stays(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The person moved: a newer export put their debt under household B, but the payment made while
    they lived in A is still filed under A. Deleting A keeps the payment, now under B."""
    w = await factory.world(pool)
    await confirm(pool, "nhi")
    a = await factory.household(pool, w.campaign_id, "0399990001", no="MOVED-FROM")
    b = await factory.household(pool, w.campaign_id, "0399990002", no="MOVED-TO")
    await pool.execute(
        """insert into payment (department_id, debt_id, household_id, receipt_key, paid_on, amount_yen, created_at)
           select 'nhi', id, household_id, 'R-MOVED', '2025-09-01', 1000, now() - interval '400 days'
           from debt where household_id = $1""",
        a,
    )
    await pool.execute(
        "update debt set household_id = $2, updated_at = now() - interval '400 days' where household_id = $1",
        a,
        b,
    )
    await age(pool, a, OLD)
    (nhi,) = await purging.purge_all(app_pool, tmp_path, trigger="command", department="nhi")
    assert await residents_of(pool, "nhi") == {"MOVED-TO"}
    assert nhi.counts["payments"] == 0
    assert await pool.fetchval("select household_id from payment where receipt_key = 'R-MOVED'") == b


def test_a_process_started_after_a_crash_removes_the_uploads_the_dead_one_left(tmp_path: Path) -> None:
    uploads = tmp_path / "uploads"
    assert purge.remove_uploads_of_dead(uploads) == 0  # (no folder yet)
    uploads.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()
    left, mine, old_style = uploads / f"{dead.pid}-a.csv", uploads / f"{os.getpid()}-b.csv", uploads / "c.csv"
    for f in (left, mine, old_style):
        f.write_text("世帯番号,氏名\nH1,見本 太郎\n", encoding="utf-8")
    assert purge.remove_uploads_of_dead(uploads) == 1
    assert (left.exists(), mine.exists(), old_style.exists()) == (False, True, True)
