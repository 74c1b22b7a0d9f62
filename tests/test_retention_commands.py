"""Retention from the outside: the commands, the daily schedule and its metrics, deletion on
request, and the confirmation an administrator gives before anything is purged."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import asyncpg
import pytest

from dialer import purging, retention
from dialer.errors import ConfigError
from dialer.imports import mapping
from dialer.imports.run import ImportRequest, import_file
from dialer.store import db, purge
from dialer.store import retention as store
from tests import factory
from tests.retention_data import OLD, age, call, closed_household, confirm, pay_off, residents_of
from tests.test_cli import _env, _run
from tests.test_imports import row, write


async def test_retention_from_the_command_line(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await closed_household(pool, w.campaign_id, "0344440001", "CLI", ago=timedelta(days=40))
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
    code, _, err = await _run(
        env, "retention", "certificate", run_id, "--output", str(tmp_path / "no" / "dir.txt")
    )
    assert (code, "Traceback" in err) == (2, False)
    assert "Cannot write" in err
    code, _, err = await _run(env, "retention", "history", "--limit", "-1")
    assert (code, "Traceback" in err) == (2, False)
    assert "1 or more, got -1" in err
    await factory.household(pool, w.campaign_id, "0344440002", no="CLI-2")  # owes, recent
    code, out, err = await _run(  # typed full-width, as the request's paper gives it
        env, "retention", "erase", "--department", "nhi", "--reason", "削除請求 第3号", "ＣＬＩ－２"
    )
    assert code == 0, err
    assert out.startswith("nhi: households 1, persons 1")
    code, out, err = await _run(env, "retention", "erase", "--department", "nhi", "--reason", "x", "CLI-2")
    assert code == 2
    assert "No household CLI-2 in nhi; nothing was deleted" in err
    code, _, err = await _run(env, "retention", "certificate", "99999")
    assert code == 2
    assert "No purge record #99999" in err


def _sample(metrics: object, name: str, **labels: str) -> float:
    value = metrics.registry.get_sample_value(name, labels)  # type: ignore[attr-defined]
    assert value is not None, name
    return float(value)


async def test_the_daily_purge_records_itself_and_tells_prometheus(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, db_dsn: str, tmp_path: Path
) -> None:
    from dialer.metrics import Metrics

    w = await factory.world(pool)
    await confirm(pool, "nhi")
    await closed_household(pool, w.campaign_id, "0366660001", "DAILY")
    metrics = Metrics()
    daily = purging.DailyPurge(app_pool, tmp_path, time(3, 30), metrics)
    before = datetime.now(UTC).timestamp()
    await daily.start()  # nothing on record yet: a new install has missed nothing
    assert _sample(metrics, "dialer_purge_last_success_timestamp_seconds") > before - 86400  # set up today
    # installed three days ago and never purged: a restart does not hide it (it did: QA)
    await pool.execute("update schema_migration set applied_at = now() - interval '3 days'")
    await daily.stop()
    await daily.start()
    assert (
        _sample(metrics, "dialer_purge_last_success_timestamp_seconds")
        < datetime.now(UTC).timestamp() - 2 * 86400
    )
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


async def test_a_purge_run_by_hand_clears_the_alert_of_the_running_process(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """The alert DialerPurgeNotRunning tells the admin to run `dialer retention purge` by hand; the
    running dialer reads the record again between its own runs, so the alert clears (before: only
    after its next 03:30 run or a restart)."""
    from dialer.metrics import Metrics

    metrics = Metrics()
    await pool.execute(
        "insert into purge_run (trigger, status, finished_at) values ('schedule', 'done', now() - interval '3 days')"
    )
    daily = purging.DailyPurge(app_pool, tmp_path, time(3, 30), metrics, look_every_s=0.1)
    await daily.start()
    try:
        assert (
            _sample(metrics, "dialer_purge_last_success_timestamp_seconds")
            < datetime.now(UTC).timestamp() - 86400
        )
        by_hand = await pool.fetchval(
            "insert into purge_run (trigger, status, finished_at) values ('command', 'done', now()) returning finished_at"
        )
        for _ in range(50):
            if _sample(metrics, "dialer_purge_last_success_timestamp_seconds") == by_hand.timestamp():
                break
            await asyncio.sleep(0.05)
        assert _sample(metrics, "dialer_purge_last_success_timestamp_seconds") == by_hand.timestamp()
    finally:
        await daily.stop()


async def test_named_households_are_erased_at_once_on_request_whatever_they_owe(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    owes = await factory.household(pool, w.campaign_id, "0377770001", no="REQ-1")
    await call(pool, owes, w.operator.id, timedelta(days=3), "本人から削除の申出")
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
    assert await residents_of(pool, "nhi") == {"REQ-1", "REQ-2"}
    with pytest.raises(ConfigError, match="No household REQ-1 in tax"):  # another department's household
        await purge.erase_households(app_pool, "tax", ["REQ-1"], reason="x", user_name="ops")
    out = await purge.erase_households(app_pool, "nhi", ["REQ-1"], reason="削除請求 第12号", user_name="ops")
    assert await residents_of(pool, "nhi") == {"REQ-2"}
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


async def test_erasing_a_household_deletes_the_error_report_lines_that_quote_its_rows(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    await factory.department(pool, "nhi")
    path = write(
        tmp_path / "export.csv",
        [
            row(世帯番号="E1", 宛名番号="EA1", 電話番号1="03-1234", 携帯電話番号=""),  # 2: number flagged
            row(世帯番号="E1", 宛名番号="EA1"),  # 3: the same debt as line 2
            row(世帯番号="K1", 宛名番号="KA1", 電話番号1="03-9999", 携帯電話番号=""),  # 4: someone else's
            row(世帯番号="E9", 宛名番号="EA1"),  # 5: EA1 is in household E1 (line 2)
            row(世帯番号="E1", 宛名番号="EA2", 生年月日="平成32年1月1日"),  # 6: an impossible date
        ],
    )
    info = await import_file(
        app_pool, ImportRequest(path=path, department_id="nhi", mapping=mapping.load("nhi-sample"))
    )
    lines = "select line from import_problem where import_id = $1 order by line"
    assert [r["line"] for r in await pool.fetch(lines, info.id)] == [2, 3, 4, 5, 6]
    out = await purge.erase_households(app_pool, "nhi", ["E1"], reason="削除請求 第13号", user_name="ops")
    assert [r["line"] for r in await pool.fetch(lines, info.id)] == [4]
    assert out.counts["import_problems"] == 4
    run = await store.get(pool, out.run_id or 0)
    assert run is not None
    assert run.counts["import_problems"] == 4


async def test_a_closed_household_purged_takes_the_error_report_lines_that_quote_its_rows(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    """Reports kept ten years, households a year after they close: the household's lines go with
    it, not ten years later; a household a recent export named in a rejected row is not closed."""
    await factory.department(pool, "nhi")
    await store.set_policy(pool, "nhi", retention.Policy(import_report_days=3650))

    async def load(name: str, rows: list[list[str]]) -> int:
        path = write(tmp_path / name, rows)
        req = ImportRequest(path=path, department_id="nhi", mapping=mapping.load("nhi-sample"))
        return (await import_file(app_pool, req)).id

    old = await load(
        "old.csv",
        [
            row(世帯番号="C1", 宛名番号="CA1", 電話番号1="03-1234", 携帯電話番号=""),  # 2: number flagged
            row(世帯番号="K1", 宛名番号="KA1", 電話番号1="03-9999", 携帯電話番号=""),  # 3: someone else's
            row(世帯番号="C1", 宛名番号="CA2", 生年月日="平成32年1月1日"),  # 4: an impossible date
            row(世帯番号="C2", 宛名番号="CB1"),
        ],
    )
    await pool.execute("update import_run set started_at = started_at - interval '400 days'")
    recent = await load("recent.csv", [row(世帯番号="C2", 宛名番号="CB1", 納期限="令和0年4月1日")])
    for no in ("C1", "C2"):
        hid = await pool.fetchval("select id from household where household_no = $1", no)
        await pay_off(pool, hid)
        await age(pool, hid, OLD)
    out = await purge.purge_department(
        app_pool, "nhi", await _policy(pool), now=datetime.now(UTC), trigger="command"
    )
    assert (out.counts["households"], out.counts["import_problems"]) == (1, 2)
    assert await residents_of(pool, "nhi") == {"C2", "K1"}
    lines = "select line from import_problem where import_id = $1 order by line"
    assert [r["line"] for r in await pool.fetch(lines, old)] == [3]
    assert [r["line"] for r in await pool.fetch(lines, recent)] == [2]


async def _policy(pool: asyncpg.Pool) -> retention.Policy:
    return (await store.policies(pool))["nhi"]


async def test_nothing_is_purged_until_an_administrator_confirms_the_departments_retention(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path, db_dsn: str
) -> None:
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    await closed_household(pool, w.campaign_id, "0388880001", "WAIT")
    await pool.execute("insert into audit_log (action, at) values ('login', now() - interval '3000 days')")
    outcomes = {o.department_id: o for o in await purging.purge_all(app_pool, tmp_path, trigger="schedule")}
    assert outcomes["nhi"].unconfirmed
    assert outcomes["nhi"].run_id is None
    assert outcomes[None].counts["audit_entries"] == 0  # not every department has confirmed
    assert await residents_of(pool, "nhi") == {"WAIT"}
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
