"""Retention: data past its time is deleted (households, error reports, the audit log, sessions,
orphan uploads), calls stay as anonymous statistics, and every deletion leaves a record.

Runs the product's purge (as dialer_app, under row-level security) against the embedded
PostgreSQL; the test's own setup ages the data as the database owner."""

from __future__ import annotations

import asyncio
import os
import time as clock
import uuid
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest

from dialer import purging, retention
from dialer.errors import ConfigError
from dialer.retention import TOKYO, Policy
from dialer.store import db, purge
from dialer.store import retention as store
from tests import factory
from tests.test_cli import _env, _run

OLD = timedelta(days=400)  # past the default 365 days


# ---- the pure parts ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "closed", "audit"),
    [
        # counted back from the start of the day in Tokyo, whatever the hour of the run
        (
            datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO),
            datetime(2025, 12, 5, tzinfo=TOKYO),
            datetime(2021, 12, 5, tzinfo=TOKYO),
        ),
        (
            datetime(2026, 12, 5, 23, 59, tzinfo=TOKYO),
            datetime(2025, 12, 5, tzinfo=TOKYO),
            datetime(2021, 12, 5, tzinfo=TOKYO),
        ),
        # 2026-12-04 16:00 UTC is already the 5th in Tokyo
        (
            datetime(2026, 12, 4, 16, 0, tzinfo=UTC),
            datetime(2025, 12, 5, tzinfo=TOKYO),
            datetime(2021, 12, 5, tzinfo=TOKYO),
        ),
        (
            datetime(2026, 12, 4, 14, 59, tzinfo=UTC),
            datetime(2025, 12, 4, tzinfo=TOKYO),
            datetime(2021, 12, 4, tzinfo=TOKYO),
        ),
        # a leap day inside the window
        (
            datetime(2028, 3, 1, 9, 0, tzinfo=TOKYO),
            datetime(2027, 3, 2, tzinfo=TOKYO),
            datetime(2023, 3, 2, tzinfo=TOKYO),
        ),
    ],
)
def test_cutoffs_count_days_back_from_midnight_in_tokyo(
    now: datetime, closed: datetime, audit: datetime
) -> None:
    c = Policy().cutoffs(now)
    assert (c.closed, c.audit) == (closed, audit)
    assert c.import_report == datetime.combine(now.astimezone(TOKYO).date(), time(0), TOKYO) - timedelta(
        days=90
    )


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"closed_days": 29}, "closed data is kept between 30 and 3650 days, got 29"),
        ({"closed_days": 3651}, "between 30 and 3650"),
        ({"import_report_days": 6}, "import_report data is kept between 7 and 3650 days, got 6"),
        ({"audit_days": 364}, "audit data is kept between 365 and 3650 days, got 364"),
    ],
)
def test_a_policy_out_of_bounds_is_refused(kwargs: dict[str, int], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Policy(**kwargs)


@pytest.mark.parametrize(
    ("at", "now", "expected"),
    [
        (time(3, 30), datetime(2026, 12, 5, 1, 0, tzinfo=TOKYO), datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO)),
        (time(3, 30), datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO), datetime(2026, 12, 6, 3, 30, tzinfo=TOKYO)),
        (time(3, 30), datetime(2026, 12, 31, 22, 0, tzinfo=TOKYO), datetime(2027, 1, 1, 3, 30, tzinfo=TOKYO)),
        # a UTC clock: 18:00 UTC on the 4th is 03:00 on the 5th in Tokyo
        (time(3, 30), datetime(2026, 12, 4, 18, 0, tzinfo=UTC), datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO)),
        (time(0, 0), datetime(2026, 12, 5, 0, 0, 1, tzinfo=TOKYO), datetime(2026, 12, 6, 0, 0, tzinfo=TOKYO)),
    ],
)
def test_the_daily_purge_runs_next_at_its_hour_in_tokyo(at: time, now: datetime, expected: datetime) -> None:
    assert retention.next_run(at, now) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("03:30", time(3, 30)), ("3:05", time(3, 5)), ("23:59", time(23, 59)), ("off", None), (" OFF ", None)],
)
def test_purge_at_is_read(raw: str, expected: time | None) -> None:
    assert retention.parse_purge_at(raw) == expected


@pytest.mark.parametrize("raw", ["24:00", "3", "03:60", "soon", "03:30:00", ""])
def test_a_bad_purge_at_is_refused(raw: str) -> None:
    with pytest.raises(ConfigError, match="PURGE_AT must be HH:MM"):
        retention.parse_purge_at(raw)


def test_the_audit_log_outside_departments_is_kept_as_long_as_the_longest_department_keeps_its_own() -> None:
    assert retention.server_audit_days([Policy(audit_days=400), Policy(audit_days=2000)]) == 2000
    assert retention.server_audit_days([]) == 1826


def test_the_certificate_names_the_rule_the_cutoff_and_the_counts() -> None:
    text = retention.certificate(
        run_id=7, department="国民健康保険課 / NHI (nhi)", started=datetime(2026, 12, 5, 3, 30, tzinfo=TOKYO),
        finished=datetime(2026, 12, 5, 3, 31, tzinfo=TOKYO), status="done", trigger="schedule", user_name="",
        policy={"closed": 365}, cutoffs={"closed": "2025-12-05T00:00:00+09:00"}, counts={"households": 1234},
        vacuumed=True,
    )  # fmt: skip
    assert "No. 7" in text
    assert "完納・活動なしの世帯 / closed households: 365 日 / days, 2025-12-05 00:00:00 より前" in text
    assert "世帯 / households: 1,234" in text
    assert "2026-12-05 03:30:00 – 2026-12-05 03:31:00" in text
    assert "定時消去" in text
    assert "VACUUM: 実施済み" in text


# ---- against PostgreSQL --------------------------------------------------------------------


async def _confirm(pool: asyncpg.Pool, dept: str) -> None:
    """An administrator confirms the department's retention as it is (until then it is not purged)."""
    current = (await store.policies(pool))[dept]
    await store.set_policy(pool, dept, current)


async def _age(pool: asyncpg.Pool, hid: int, ago: timedelta) -> None:
    """Everything about this household happened `ago`."""
    at = datetime.now(UTC) - ago
    for table, column in (
        ("household", "id"),
        ("person", "household_id"),
        ("phone", "household_id"),
        ("debt", "household_id"),
    ):
        await pool.execute(f"update {table} set updated_at = $2 where {column} = $1", hid, at)
    await pool.execute("update household set created_at = $2 where id = $1", hid, at)
    await pool.execute(
        "update campaign_target set state = 'done', next_attempt_at = $2 where household_id = $1", hid, at
    )


async def _pay_off(pool: asyncpg.Pool, hid: int) -> None:
    await pool.execute("update debt set paid_yen = assessed_yen where household_id = $1", hid)


async def _call(pool: asyncpg.Pool, hid: int, operator_id: int, ago: timedelta, note: str) -> int:
    """A call to the household `ago`, answered, with the operator's note, its 経過記録 and a promise."""
    at = datetime.now(UTC) - ago
    attempt_id: int = await pool.fetchval(
        """insert into attempt (campaign_id, target_id, household_id, department_id, phone_id, operator_id,
                                dial_mode, channel_id, outcome, dialed_number, originated_at, answered_at, ended_at)
           select t.campaign_id, t.id, t.household_id, t.department_id, p.id, $2, 'progressive', $3, 'connected',
                  p.number, $4::timestamptz, $4::timestamptz, $4::timestamptz + interval '3 minutes'
           from campaign_target t join phone p on p.household_id = t.household_id
           where t.household_id = $1 limit 1 returning id""",
        hid, operator_id, f"old-{uuid.uuid4().hex[:8]}", at,
    )  # fmt: skip
    did = await pool.fetchval(
        """insert into disposition (attempt_id, client_token, operator_id, department_id, code, note,
                                    promise_date, promise_amount_yen, created_at)
           select $1, gen_random_uuid(), $2, department_id, 'promise', $3, $4::timestamptz::date, 5000, $4
           from attempt where id = $1 returning id""",
        attempt_id, operator_id, note, at,
    )  # fmt: skip
    await pool.execute(
        """insert into promise (department_id, household_id, disposition_id, operator_id, promised_on, amount_yen,
                                status, created_at)
           select department_id, $1, $2, $3, $4::timestamptz::date, 5000, 'kept', $4 from disposition where id = $2""",
        hid, did, operator_id, at,
    )  # fmt: skip
    await pool.execute(
        """insert into contact_history (department_id, household_id, at, method, place, party, content,
                                        disposition_id, recorded_by, created_at)
           select department_id, $1, $4, 'phone_out', '0312345678', '本人', $3, $2, $5, $4
           from disposition where id = $2""",
        hid, did, note, at, operator_id,
    )  # fmt: skip
    return attempt_id


async def _residents_of(pool: asyncpg.Pool, dept: str) -> set[str]:
    rows = await pool.fetch("select household_no from household where department_id = $1", dept)
    return {r["household_no"] for r in rows}


async def test_a_closed_household_goes_with_everything_about_it_and_its_calls_stay_as_statistics(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    await _confirm(pool, "nhi")
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
    called = await _call(pool, gone, w.operator.id, OLD, "本人と話し、来月払うとのこと")
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
            await _pay_off(pool, hid)
        await _age(pool, hid, OLD)
    await _call(pool, kept["RECENT-CONTACT"], w.operator.id, timedelta(days=20), "先月の話")
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
    assert await _residents_of(pool, "nhi") == set(kept)
    assert await _residents_of(pool, "tax") == {"TAX-GONE"}  # another department's purge: not touched
    for table in ("person", "phone", "debt", "payment", "promise", "contact_history", "campaign_target"):
        assert await pool.fetchval(f"select count(*) from {table} where household_id = $1", gone) == 0, table
    assert await pool.fetchval("select count(*) from related_party where name = '見本商事'") == 0
    # the call stays for the daily reports and the abandon rate, without who or what was said
    call = await pool.fetchrow("select * from attempt where id = $1", called)
    assert (call["campaign_id"], call["outcome"], call["operator_id"]) == (
        w.campaign_id,
        "connected",
        w.operator.id,
    )
    assert (call["household_id"], call["target_id"], call["phone_id"], call["dialed_number"]) == (None,) * 4
    assert call["purged_at"] is not None
    assert call["answered_at"] is not None
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
        await _pay_off(pool, hid)
        await _age(pool, hid, OLD)
        await _call(pool, hid, w.operator.id, OLD, "メモ")
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
    await _confirm(pool, "tax")
    await store.set_policy(pool, "nhi", Policy(import_report_days=7, audit_days=365))
    runs = {}
    for dept, age in (("nhi", 10), ("nhi", 3), ("tax", 10)):
        run_id = await pool.fetchval(
            """insert into import_run (department_id, kind, file_name, file_sha256, file_bytes, mapping, status,
                                       started_at, finished_at, rows_rejected)
               values ($1, 'households', 'x.csv', 'x', 1, 'nhi-sample', 'done', now() - make_interval(days => $2),
                       now() - make_interval(days => $2), 2) returning id""",
            dept, age,
        )  # fmt: skip
        await pool.execute(
            """insert into import_problem (import_id, line, column_name, severity, message, value)
               values ($1, 2, '氏名', 'error', 'empty', '見本 花子'), ($1, 3, '電話番号1', 'warning', 'bad', '03-1')""",
            run_id,
        )
        runs[(dept, age)] = run_id
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
    orphan, fresh, other = uploads / "a.csv", uploads / "b.csv", uploads / "notes.txt"
    for f in (orphan, fresh, other):
        f.write_text("世帯番号,氏名\nH1,見本 太郎\n", encoding="utf-8")
    two_days_ago = clock.time() - 2 * 86400
    os.utime(orphan, (two_days_ago, two_days_ago))
    os.utime(other, (two_days_ago, two_days_ago))
    outcomes = await purging.purge_all(app_pool, uploads, trigger="schedule")
    server = outcomes[-1]
    assert server.department_id is None
    assert (server.counts["expired_sessions"], server.counts["upload_files"]) == (1, 1)
    assert not orphan.exists()
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
    await _confirm(pool, "nhi")
    hid = await factory.household(pool, w.campaign_id, "0333330001", no="LOCKED")
    await _pay_off(pool, hid)
    await _age(pool, hid, OLD)
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
    await _confirm(pool, "nhi")
    (run, _) = await purging.purge_all(app_pool, tmp_path, trigger="command")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_pool.execute("delete from purge_run where id = $1", run.run_id)
    with pytest.raises(asyncpg.RaiseError, match="is finished and is never changed"):
        await app_pool.execute(
            """update purge_run set counts = '{"households": 0}' where id = $1""", run.run_id
        )
    assert await pool.fetchval("select count(*) from purge_run") == 2


async def test_retention_from_the_command_line(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0344440001", no="CLI")
    await _pay_off(pool, hid)
    await _age(pool, hid, timedelta(days=40))
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, err = await _run(env, "retention", "set", "--department", "nhi", "--closed-days", "10")
    assert code == 2
    assert "closed data is kept between 30 and 3650 days, got 10" in err
    code, out, err = await _run(env, "retention", "set", "--department", "nope", "--closed-days", "30")
    assert code == 2
    assert "No department 'nope'" in err
    code, out, err = await _run(env, "retention", "set", "--department", "nhi", "--closed-days", "30")
    assert code == 0, err
    code, out, _ = await _run(env, "retention", "show")
    assert "nhi      closed households    30 days" in out
    code, out, err = await _run(env, "retention", "purge", "--dry-run")
    assert code == 0, err
    assert "nhi       households 1" in out
    assert "dry run, nothing deleted" in out
    assert await pool.fetchval("select count(*) from household") == 1
    code, out, err = await _run(env, "retention", "purge", "--department", "nhi")
    assert code == 0, err
    run_id = out.split("record #", 1)[1].split(")")[0]
    code, out, _ = await _run(env, "retention", "history")
    assert f"#{run_id}" in out
    assert "households 1" in out
    cert = tmp_path / "消去記録.txt"
    code, out, err = await _run(env, "retention", "certificate", run_id, "--output", str(cert))
    assert code == 0, err
    text = cert.read_text(encoding="utf-8")
    assert "国民健康保険課" in text
    assert "世帯 / households: 1" in text
    assert "30 日 / days" in text
    await factory.household(pool, w.campaign_id, "0344440002", no="CLI-2")  # owes, recent
    code, out, err = await _run(
        env, "retention", "erase", "--department", "nhi", "--reason", "削除請求 第3号", "CLI-2"
    )
    assert code == 0, err
    assert out.startswith("nhi: households 1, persons 1")
    code, out, err = await _run(env, "retention", "erase", "--department", "nhi", "--reason", "x", "CLI-2")
    assert code == 2
    assert "No household CLI-2 in nhi; nothing was deleted" in err
    code, _, err = await _run(env, "retention", "certificate", "99999")
    assert code == 2
    assert "No purge record #99999" in err


def test_purge_at_comes_from_the_environment() -> None:
    from dialer import config

    assert config.load({}).purge_at == time(3, 30)
    assert config.load({"PURGE_AT": "off"}).purge_at is None
    assert config.load({"PURGE_AT": "22:15"}).purge_at == time(22, 15)
    with pytest.raises(ConfigError, match="PURGE_AT"):
        config.load({"PURGE_AT": "25:00"})


def _sample(metrics: object, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    assert value is not None, name
    return float(value)


async def test_the_daily_purge_records_itself_and_tells_prometheus(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    from dialer.metrics import Metrics

    w = await factory.world(pool)
    await _confirm(pool, "nhi")
    hid = await factory.household(pool, w.campaign_id, "0366660001", no="DAILY")
    await _pay_off(pool, hid)
    await _age(pool, hid, OLD)
    metrics = Metrics()
    daily = purging.DailyPurge(app_pool, tmp_path, time(3, 30), metrics)
    before = datetime.now(UTC).timestamp()
    await daily.start()  # nothing on record yet: a new install has missed nothing
    assert _sample(metrics, "dialer_purge_last_success_timestamp_seconds") >= before - 1
    await pool.execute(
        "insert into purge_run (trigger, status, finished_at) values ('command', 'done', now() - interval '3 days')"
    )
    await daily.stop()
    await daily.start()  # the last purge on record, by whichever process
    assert (
        _sample(metrics, "dialer_purge_last_success_timestamp_seconds")
        < datetime.now(UTC).timestamp() - 2 * 86400
    )
    await pool.execute(
        "insert into purge_run (department_id, trigger) values ('nhi', 'schedule')"
    )  # killed mid-way
    await daily.run_once()
    assert _sample(metrics, "dialer_purge_last_success_timestamp_seconds") >= before - 1
    interrupted = await pool.fetch(
        "select status, message from purge_run where finished_at is not null and trigger = 'schedule' and counts = '{}'"
    )
    assert [tuple(r) for r in interrupted] == [("failed", "interrupted")]
    assert _sample(metrics, "dialer_purge_deleted_total", kind="households") == 1
    assert (
        await pool.fetchval("select count(*) from purge_run where trigger = 'schedule' and status = 'done'")
        == 2
    )
    # another process purging: this one skips the day and stays up
    holder = await asyncpg.connect(db_dsn)
    try:
        await holder.execute("select pg_advisory_lock(hashtext('dialer.purge'))")
        await daily.run_once()
    finally:
        await holder.close()
    assert await pool.fetchval("select count(*) from purge_run where trigger = 'schedule'") == 3  # no new one
    await daily.stop()


async def test_named_households_are_erased_at_once_on_request_whatever_they_owe(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    owes = await factory.household(pool, w.campaign_id, "0377770001", no="REQ-1")
    await _call(pool, owes, w.operator.id, timedelta(days=3), "本人から削除の申出")
    busy = await factory.household(pool, w.campaign_id, "0377770002", no="REQ-2")
    await pool.execute(
        "update campaign_target set state = 'leased', lease_owner = 'x' where household_id = $1", busy
    )
    with pytest.raises(ConfigError, match="No household NOPE in nhi; nothing was deleted"):
        await purge.erase_households(
            app_pool, "nhi", ["REQ-1", "NOPE"], reason="削除請求 第12号", user_name="ops"
        )
    with pytest.raises(ConfigError, match="REQ-2: a call is up or queued now"):
        await purge.erase_households(
            app_pool, "nhi", ["REQ-1", "REQ-2"], reason="削除請求 第12号", user_name="ops"
        )
    with pytest.raises(ConfigError, match="--reason"):
        await purge.erase_households(app_pool, "nhi", ["REQ-1"], reason=" ", user_name="ops")
    assert await _residents_of(pool, "nhi") == {"REQ-1", "REQ-2"}
    with pytest.raises(ConfigError, match="No household REQ-1 in tax"):  # another department's household
        await purge.erase_households(app_pool, "tax", ["REQ-1"], reason="x", user_name="ops")
    out = await purge.erase_households(app_pool, "nhi", ["REQ-1"], reason="削除請求 第12号", user_name="ops")
    assert await _residents_of(pool, "nhi") == {"REQ-2"}
    assert (out.counts["households"], out.counts["debts"], out.counts["calls_made_anonymous"]) == (1, 1, 1)
    run = await store.get(pool, out.run_id or 0)
    assert run is not None
    assert (run.trigger, run.status, run.message, run.user_name) == (
        "request",
        "done",
        "削除請求 第12号",
        "ops",
    )
    text = retention.certificate(
        run_id=run.id, department="nhi", started=run.started_at, finished=run.finished_at, status=run.status,
        trigger=run.trigger, user_name=run.user_name, policy=run.policy, cutoffs=run.cutoffs, counts=run.counts,
        vacuumed=run.vacuumed, message=run.message,
    )  # fmt: skip
    assert "依頼の参照番号 / Reference: 削除請求 第12号" in text
    assert "REQ-1" not in text


async def test_nothing_is_purged_until_an_administrator_confirms_the_departments_retention(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path, db_dsn: str
) -> None:
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    hid = await factory.household(pool, w.campaign_id, "0388880001", no="WAIT")
    await _pay_off(pool, hid)
    await _age(pool, hid, OLD)
    await pool.execute("insert into audit_log (action, at) values ('login', now() - interval '3000 days')")
    outcomes = {o.department_id: o for o in await purging.purge_all(app_pool, tmp_path, trigger="schedule")}
    assert outcomes["nhi"].unconfirmed
    assert outcomes["nhi"].run_id is None
    assert outcomes[None].counts["audit_entries"] == 0  # not every department has confirmed
    assert await _residents_of(pool, "nhi") == {"WAIT"}
    # a dry run counts all the same: what confirming would delete
    dry = {
        o.department_id: o
        for o in await purging.purge_all(app_pool, tmp_path, trigger="command", dry_run=True)
    }
    assert dry["nhi"].counts["households"] == 1
    assert dry[None].counts["audit_entries"] == 1
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, _ = await _run(env, "retention", "show")
    assert "NOT CONFIRMED" in out
    code, out, err = await _run(env, "retention", "purge", "--department", "nhi")
    assert code == 0, err
    assert "nhi       not purged: nobody has confirmed its retention yet" in out
    code, out, err = await _run(env, "retention", "set", "--department", "nhi")  # as it is
    assert code == 0, err
    assert "(confirmed: purged by it from the next purge)" in out
    entry = await pool.fetchrow("select detail from audit_log where action = 'retention.set'")
    assert db.from_jsonb(entry["detail"])["after"] == {"closed": 365, "import_report": 90, "audit": 1826}
    outcomes = {o.department_id: o for o in await purging.purge_all(app_pool, tmp_path, trigger="schedule")}
    assert outcomes["nhi"].counts["households"] == 1
    assert outcomes["tax"].unconfirmed
    assert outcomes[None].counts["audit_entries"] == 0


async def test_a_payment_for_a_debt_that_moved_to_another_household_stays(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The person moved: a newer export put their debt under household B, but the payment made while
    they lived in A is still filed under A. Deleting A keeps the payment, now under B."""
    w = await factory.world(pool)
    await _confirm(pool, "nhi")
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
    await _age(pool, a, OLD)
    (nhi,) = await purging.purge_all(app_pool, tmp_path, trigger="command", department="nhi")
    assert await _residents_of(pool, "nhi") == {"MOVED-TO"}
    assert nhi.counts["payments"] == 0
    assert await pool.fetchval("select household_id from payment where receipt_key = 'R-MOVED'") == b
