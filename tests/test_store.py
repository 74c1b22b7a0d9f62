"""The store against a real PostgreSQL: migrations, the application role, audit-logged records,
last contact, limitation periods, sessions (the hopper's leases: test_hopper.py)."""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest

from campaigns.dispositions import DispositionInput
from campaigns.hours import TOKYO
from dialer.runtime import migrate_database
from dialer.store import db, dispositions, migrate, pacing, records, users
from dialer.store.migrate import MigrationError
from tests import factory


async def test_migrations_are_idempotent(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        assert await migrate.migrate(conn) == []  # the template already has them
        versions = await conn.fetch("select version from schema_migration order by version")
    assert [r["version"] for r in versions] == [m.version for m in migrate.discover()]


async def test_a_changed_migration_is_refused(pool: asyncpg.Pool, tmp_path: Path) -> None:
    for m in migrate.discover():
        (tmp_path / m.path.name).write_text(m.sql + "\n-- edited after release\n", encoding="utf-8")
    async with pool.acquire() as conn:
        with pytest.raises(MigrationError, match="changed after it was applied"):
            await migrate.migrate(conn, tmp_path)


async def test_a_failing_migration_rolls_back_and_says_which(pool: asyncpg.Pool, tmp_path: Path) -> None:
    for m in migrate.discover():
        (tmp_path / m.path.name).write_text(m.sql, encoding="utf-8")
    (tmp_path / "9999_broken.sql").write_text("create table ok_part (x int); select no_such_column;")
    async with pool.acquire() as conn:
        with pytest.raises(MigrationError, match="9999_broken"):
            await migrate.migrate(conn, tmp_path)
        assert await conn.fetchval("select to_regclass('ok_part')") is None


async def test_the_product_can_log_in_as_a_role_that_is_only_dialer_app(
    pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    """A production login that is a member of dialer_app and nothing more: the product starts with
    it (nothing to migrate), leaving dialer_app gains nothing, and a pending migration says who
    must apply it."""
    login = f"login_{uuid.uuid4().hex[:8]}"
    await pool.execute(f"create role {login} login; grant dialer_app to {login}")
    dsn = db_dsn.replace("postgres@", f"{login}@", 1)
    assert dsn != db_dsn
    try:
        owner_pool = await db.create_pool(db_dsn, scope=db.NONE, max_size=1)
        assert await db.login_is_privileged(owner_pool)  # the embedded server's superuser
        await owner_pool.close()
        assert await migrate_database(dsn) == []
        app = await db.create_pool(dsn, scope=db.NONE, max_size=1)
        try:
            assert not await db.login_is_privileged(app)
            async with app.acquire() as conn:
                await conn.execute("reset role")  # what SQL run through the product could do
                assert await conn.fetchval("select current_user") == login
                assert await conn.fetchval("select count(*) from household") == 0  # still under RLS
                with pytest.raises(asyncpg.InsufficientPrivilegeError):
                    await conn.execute("delete from audit_log")
        finally:
            await app.close()
        for m in migrate.discover():
            (tmp_path / m.path.name).write_text(m.sql, encoding="utf-8")
        (tmp_path / "9999_next.sql").write_text("create table next_release (x int);")
        conn = await db.connect_owner(dsn)
        try:
            with pytest.raises(MigrationError, match="owner's DATABASE_URL"):
                await migrate.migrate(conn, tmp_path)
        finally:
            await conn.close()
    finally:
        await pool.execute(f"drop owned by {login}; drop role {login}")


async def test_operator_record_is_minimal_and_audited(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0312345678", name="見本 花子", unpaid=31_500)
    phone_id = await pool.fetchval("select id from phone where household_id = $1", hid)
    rec = await records.read_for_operator(
        pool, household_id=hid, department_id="nhi", phone_id=phone_id, user_id=w.operator.id, reason="test"
    )
    assert rec is not None
    data = rec.as_json()
    assert data["name_kanji"] == "見本 花子"
    assert data["display"]["phone"] == "03-1234-5678"
    assert data["display"]["birth"] == "昭和55年4月1日"
    assert data["total_unpaid_yen"] == 31_500
    assert data["debts"][0]["fiscal_year_label"] == "令和7年度"
    assert "atena_no" not in str(data)
    audit = await pool.fetch("select action, object_id, user_id from audit_log where action = 'record.view'")
    assert [(r["object_id"], r["user_id"]) for r in audit] == [(str(hid), w.operator.id)]


async def test_last_contact_is_someone_reached_by_call_or_visit_on_tokyos_calendar(
    pool: asyncpg.Pool,
) -> None:
    """As a segment's not_contacted_days reads it: a machine that answered, a call put through
    whose outcome says nobody was reached (番号誤り, 本人以外応答) or a letter is not a contact; a
    visit at 00:30 in Tokyo is that Tokyo day (15:30 UTC the day before); the call on screen now
    is not its own last contact."""
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0312345601")
    midnight = "date_trunc('day', now() at time zone 'Asia/Tokyo') at time zone 'Asia/Tokyo'"

    async def call(days_ago: int, person: bool) -> int:
        attempt_id: int = await pool.fetchval(
            f"""insert into attempt (campaign_id, target_id, household_id, department_id, dial_mode, channel_id,
                                     outcome, originated_at, answered_at, connected_at, ended_at)
                select $1, (select id from campaign_target where household_id = $2), $2, 'nhi', 'progressive', 'lc-' || $3 || '-' || $4::text, o, t, t, case when $4 then t end, t
                from (select {midnight} - make_interval(days => $3) + interval '10 hours' as t,
                             case when $4 then 'connected' else 'machine' end as o) x returning id""",
            w.campaign_id, hid, days_ago, person,
        )  # fmt: skip
        return attempt_id

    async def disposed(days_ago: int, code: str) -> None:  # put through, its outcome saved as on the page
        attempt_id = await call(days_ago, person=True)
        await pool.execute("update attempt set operator_id = $1 where id = $2", w.operator.id, attempt_id)
        known = await dispositions.codes(pool, "nhi")
        inp = DispositionInput(attempt_id=attempt_id, token=uuid.uuid4(), code=code, note="")
        await dispositions.save(pool, w.operator, inp, known[code])

    async def entry(days_ago: int, method: str) -> None:
        await pool.execute(
            f"""insert into contact_history (department_id, household_id, at, method)
                values ('nhi', $1, {midnight} - make_interval(days => $2) + interval '30 minutes', $3)""",
            hid, days_ago, method,
        )  # fmt: skip

    async def last(attempt_id: int | None = None) -> date | None:
        rec = await records.read_for_operator(
            pool, household_id=hid, department_id="nhi", phone_id=None, user_id=w.operator.id, reason="test",
            attempt_id=attempt_id,
        )  # fmt: skip
        assert rec is not None
        return rec.last_contact

    today = datetime.now(TOKYO).date()
    await call(1, person=False)
    await entry(1, "letter")
    assert await last() is None
    await entry(5, "visit")
    assert await last() == today - timedelta(days=5)
    await call(3, person=True)
    assert await last() == today - timedelta(days=3)
    await disposed(2, "wrong_number")
    await disposed(1, "other_party")
    assert await last() == today - timedelta(days=3)
    now = await call(0, person=True)  # the call on screen, and the 経過記録 its AGI menu wrote
    await pool.execute("update attempt set originated_at = now() - interval '1 minute' where id = $1", now)
    await pool.execute(
        "insert into contact_history (department_id, household_id, at, method) values ('nhi', $1, now(), 'phone_in')",
        hid,
    )
    assert await last(now) == today - timedelta(days=3)


async def test_time_barred_debts_follow_the_campaigns_limitation_periods(pool: asyncpg.Pool) -> None:
    """A premium due 3 years ago: past the law's 2 years (保険料), not past the 5 years a campaign
    of a 国保税 municipality sets. A preview reads its campaign's; a call with none, the longest."""
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0312345600", unpaid=10_000)
    await pool.execute(
        """insert into debt (household_id, department_id, debt_type, fiscal_year, installment, assessed_yen,
                             paid_yen, due_date) values ($1, 'nhi', 'nhi', 2022, 1, 7000, 0, current_date - 1100)""",
        hid,
    )

    async def barred(campaign_id: int | None) -> list[bool]:
        rec = await records.read_for_operator(
            pool, household_id=hid, department_id="nhi", phone_id=None, user_id=w.operator.id, reason="test",
            campaign_id=campaign_id,
        )  # fmt: skip
        assert rec is not None
        assert rec.total_unpaid_yen == 10_000 + (0 if rec.debts[0].time_barred else 7_000)
        return [d.time_barred for d in rec.debts]

    assert await barred(w.campaign_id) == [True, False]  # the campaign keeps the law's periods
    assert await barred(None) == [True, False]
    tax_levy = await factory.campaign(pool, "nhi", name="国保税")
    await pool.execute(
        """update campaign set segment = '{"limitation_years": {"nhi": 5}}' where id = $1""", tax_levy
    )
    assert await barred(tax_levy) == [False, False]  # a preview in that campaign
    assert await barred(None) == [False, False]  # a resident calling in: what any campaign still asks for


async def test_another_departments_household_is_not_readable(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    tax_campaign = await factory.campaign(pool, "tax")
    hid = await factory.household(pool, tax_campaign, "0312349999", dept="tax")
    rec = await records.read_for_operator(
        pool, household_id=hid, department_id="nhi", phone_id=None, user_id=w.operator.id, reason="test"
    )
    assert rec is None
    assert await pool.fetchval("select count(*) from audit_log") == 0


async def test_sessions_and_passwords(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    assert await users.authenticate(pool, "op1", "wrong-password") is None
    assert await users.authenticate(pool, "nobody", factory.PASSWORD) is None
    user = await users.authenticate(pool, "op1", factory.PASSWORD)
    assert user == w.operator
    token = await users.open_session(pool, user, hours=1)
    session = await users.load_session(pool, token)
    assert session is not None
    assert session.user == user
    stored = await pool.fetchval("select count(*) from web_session where token_hash = $1", token.encode())
    assert stored == 0  # only a hash of the token is kept
    await users.close_session(pool, token)
    assert await users.load_session(pool, token) is None


async def test_the_pacer_learns_from_the_campaigns_own_recent_calls(pool: asyncpg.Pool) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.call_history(
        pool, w.campaign_id, w.operator.id, dialed=50, live=10, abandoned=2, live_ring_s=4.0, talk_s=60.0,
        morning=0,
    )  # fmt: skip
    other = await factory.campaign(pool, "nhi", "predictive", name="別")
    await factory.call_history(pool, other, w.operator.id, dialed=5, live=5)  # not this campaign's
    dialed, handled = await pacing.history(pool, w.campaign_id)
    assert len(dialed) == 50
    assert sum(d.live for d in dialed) == 12  # 10 conversations + 2 abandoned
    assert sum(d.answered for d in dialed) == 12
    assert sorted({round(d.ring_s, 1) for d in dialed}) == [4.0, 30.0]  # answered after 4 s; rang out
    assert [(round(h.talk_s, 1), round(h.wrap_s, 1)) for h in handled] == [(60.0, 20.0)] * 10
    hour, day = await pacing.rolling(pool, w.campaign_id)
    assert (hour.live, hour.abandoned, day.live, day.abandoned) == (12, 2, 12, 2)
    await pool.execute(
        "update attempt set originated_at = originated_at - interval '2 hours', "
        "answered_at = answered_at - interval '2 hours' where campaign_id = $1",
        w.campaign_id,
    )
    hour, day = await pacing.rolling(pool, w.campaign_id)
    assert (hour.live, hour.abandoned, day.live, day.abandoned) == (0, 0, 12, 2)
