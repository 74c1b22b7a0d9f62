"""日報・月報: the department's calls over a period, counted from the calls themselves; as a page, a
CSV and a command. The embedded PostgreSQL, the product over real HTTP."""

from __future__ import annotations

import csv
import io
from datetime import datetime, timedelta
from pathlib import Path

import asyncpg

from campaigns.hours import TOKYO
from dialer import runtime
from dialer.store import db, reports
from tests import factory
from tests.client import logged_in
from tests.test_cli import _env, _run

TODAY = datetime.now(TOKYO).date()
WEEK = (TODAY - timedelta(days=6), TODAY)


async def _calls(pool: asyncpg.Pool) -> factory.World:
    """nhi: 20 calls five days ago, 5 put through (each a conversation, 拒否, 2 minutes), 1 abandoned,
    the rest unanswered; one of the conversations a promise of ¥12,000 since paid, one handed to
    staff. tax: calls of its own, never in nhi's report."""
    w = await factory.world(pool)
    await factory.call_history(
        pool,
        w.campaign_id,
        w.operator.id,
        dialed=20,
        live=5,
        abandoned=1,
        talk_s=120,
        morning=0,
        hours_ago=120,
    )
    talked = [
        r["id"] for r in await pool.fetch("select id from attempt where outcome = 'connected' order by id")
    ]
    await pool.execute(
        "update disposition set code = 'promise', promise_amount_yen = 12000, promise_date = $2 where attempt_id = $1",
        talked[0],
        TODAY - timedelta(days=4),
    )
    await pool.execute("update disposition set code = 'installment' where attempt_id = $1", talked[1])
    await pool.execute(
        """insert into handover (department_id, household_id, disposition_id, reason)
           select 'nhi', a.household_id, d.id, 'installment' from attempt a join disposition d on d.attempt_id = a.id
           where a.id = $1""",
        talked[1],
    )  # as saving it would have opened
    hid = await pool.fetchval("select household_id from attempt where id = $1", talked[0])
    await pool.execute(
        """insert into promise (department_id, household_id, promised_on, amount_yen, created_at)
           values ('nhi', $1, $2, 12000, now() - interval '120 hours')""",
        hid, TODAY - timedelta(days=4),
    )  # fmt: skip
    await pool.execute(
        """insert into debt (household_id, department_id, debt_type, fiscal_year, assessed_year, installment,
                             assessed_yen, paid_yen, due_date)
           values ($1, 'nhi', 'nhi', 2025, 2025, 1, 12000, 0, '2025-07-31')""",
        hid,
    )
    debt = await pool.fetchval("select id from debt where household_id = $1", hid)
    await pool.execute(
        """insert into payment (department_id, debt_id, household_id, receipt_key, paid_on, amount_yen)
           values ('nhi', $1, $2, 'R-1', $3, 12000)""",
        debt, hid, TODAY - timedelta(days=3),  # by the day promised
    )  # fmt: skip
    await factory.department(pool, "tax")
    tax = await factory.campaign(pool, "tax", "progressive")
    await pool.execute(
        """with h as (insert into household (department_id, household_no) select 'tax', 'TAX-' || g
                      from generate_series(1, 7) g returning id),
                t as (insert into campaign_target (campaign_id, household_id, department_id, state)
                      select $1, id, 'tax', 'done' from h returning id, household_id)
           insert into attempt (campaign_id, target_id, household_id, department_id, dial_mode, channel_id,
                                outcome, originated_at, ended_at)
           select $1, t.id, t.household_id, 'tax', 'progressive', 'tax-' || t.id, 'no_answer',
                  now() - interval '1 hour', now() - interval '59 minutes' from t""",
        tax,
    )
    return w


async def test_talk_time_leaves_out_a_call_whose_end_was_not_seen(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    # A conversation closed as lost (the AMI link was down when it ended) has the time the link came
    # back as its end: hours, perhaps. It is still a conversation, but its length is not known.
    await _calls(pool)
    await pool.execute(
        """update attempt set outcome = 'lost', ended_at = connected_at + interval '3 hours'
           where id = (select max(id) from attempt where outcome = 'connected')"""
    )
    async with db.department(app_pool, "nhi") as conn:
        total = (await reports.report(conn, "nhi", *WEEK, "operator")).rows[-1]
    assert (total.connected, round(total.talk_s)) == (5, 4 * 120)


async def test_the_report_counts_calls_contacts_promises_and_abandons(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool
) -> None:
    await _calls(pool)
    async with db.department(app_pool, "nhi") as conn:
        by_operator = await reports.report(conn, "nhi", *WEEK, "operator")
    total = by_operator.rows[-1]
    assert total.key is None
    assert (total.calls, total.answered, total.connected, total.reached) == (20, 6, 5, 5)
    assert (total.promises, total.promise_yen, total.to_staff, total.abandoned) == (1, 12000, 1, 1)
    assert round(total.reach_pct or 0, 1) == 25.0
    assert round(total.abandon_pct or 0, 1) == 16.7  # 1 of the 6 people who answered
    assert round(total.talk_s) == 5 * 120
    rows = {r.key: r.calls for r in by_operator.rows[:-1]}
    assert rows == {"": 15, "op1": 5} or rows == {
        "": 15,
        await pool.fetchval("select display_name from app_user where login = 'op1'"): 5,
    }
    assert (by_operator.promises_due, by_operator.promises_kept) == (1, 1)
    assert (by_operator.paid_households, by_operator.paid_yen) == (1, 12000)  # after the contact
    async with db.department(app_pool, "tax") as conn:  # its own calls only
        tax = await reports.report(conn, "tax", *WEEK, "day")
    assert tax.rows[-1].calls == 7


async def test_supervisors_see_it_on_a_page_and_download_it_as_csv(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await _calls(pool)
    c = await logged_in(product, "sv1", "/supervisor")
    try:
        status, page = await c.get(f"/supervisor/reports?from={WEEK[0]}&to={WEEK[1]}&by=campaign")
        assert status == 200
        assert "接触率(%)" in page
        assert "合計" in page
        assert (
            '<td class="num">12,000</td>' in page
        )  # the promised amount as people read it (the CSV keeps 12000)
        async with c.http.get(
            f"{c.base}/supervisor/reports.csv", params={"from": str(WEEK[0]), "to": str(WEEK[1])}
        ) as r:
            assert r.status == 200
            assert "attachment" in r.headers["Content-Disposition"]
            lines = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        assert lines[0][:2] == ["区分", "架電件数"]
        total = next(line for line in lines if line and line[0] == "合計")
        assert total[1:5] == ["20", "6", "5", "5"]
        assert total[7] == "12000"
        await pool.execute(
            "update campaign set name = '=1+1' where department_id = 'nhi'"
        )  # no formula in Excel
        params = {"from": str(WEEK[0]), "to": str(WEEK[1]), "by": "campaign"}
        async with c.http.get(f"{c.base}/supervisor/reports.csv", params=params) as r:
            by_campaign = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        assert by_campaign[1][0] == "'=1+1"
        status, page = await c.get(f"/supervisor/reports?from={WEEK[1]}&to={WEEK[0]}")
        assert status == 422
        assert "終了日が開始日より前です" in page
        status, _ = await c.get("/supervisor/reports?from=2025-13-01")
        assert status == 422
        status, page = await c.get(f"/supervisor/reports?from={WEEK[0]}&by=%3Cscript%3E")  # hand-written
        assert (status, "集計の単位" in page, "期間を日付で" in page) == (
            422,
            True,
            False,
        )  # (QA: said the dates)
        status, page = await c.get("/supervisor/reports?from=9999-12-31")  # (was a 500)
        assert status == 422
        assert "2000年から来年まで" in page
        async with c.http.get(f"{c.base}/supervisor/reports.csv", params={"from": "1999-12-31"}) as r:
            assert r.status == 422
    finally:
        await c.close()
    op = await logged_in(product, "op1", "/operator")
    try:
        assert (await op.get("/supervisor/reports"))[0] == 403  # operators do not see colleagues' figures
    finally:
        await op.close()


async def test_the_report_from_the_command_line(tmp_path: Path, db_dsn: str, pool: asyncpg.Pool) -> None:
    await _calls(pool)
    env = _env(tmp_path, DATABASE_URL=db_dsn, LOG_LEVEL="warning")
    code, out, err = await _run(
        env, "report", "--department", "nhi", "--from", str(WEEK[0]), "--to", str(WEEK[1])
    )
    assert code == 0, err
    assert "架電件数" in out
    assert "約束履行率(%): 100.0 (1/1)" in out
    target = tmp_path / "月報.csv"
    code, out, err = await _run(
        env,
        "report",
        "--department",
        "nhi",
        "--by",
        "hour",
        "--from",
        str(WEEK[0]),
        "--to",
        str(WEEK[1]),
        "--output",
        str(target),
        "--lang",
        "en",
    )
    assert code == 0, err
    assert target.read_bytes().decode("utf-8-sig").startswith("group,calls,")
    code, out, err = await _run(env, "report", "--department", "nosuch")
    assert code == 2


async def test_an_abandon_rate_over_the_campaigns_target_is_flagged_on_the_floor(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool, mode="predictive")
    await factory.call_history(pool, w.campaign_id, w.operator.id, dialed=60, live=49, abandoned=1, morning=0)
    c = await logged_in(product, "sv1", "/supervisor")
    try:
        _, page = await c.get("/supervisor")
        assert 'data-testid="abandon-over"' not in page  # 1 in 50: 2.0 %, under the 3 % target
        await pool.execute(
            "update campaign set pacing = '{\"target_abandon\": 0.01}' where id = $1", w.campaign_id
        )
        _, page = await c.get("/supervisor")
        assert 'data-testid="abandon-over"' in page  # over the supervisor's own 1 %
        async with c.http.get(f"{c.base}/api/floor") as r:
            (campaign,) = (await r.json())["campaigns"]
        assert (campaign["abandon_rate"], campaign["target_abandon"]) == (0.02, 0.01)
    finally:
        await c.close()


async def test_the_floors_campaign_figures_are_read_once_for_every_page_asking(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """Every open supervisor page asks every 5 s: within a few seconds they share one reading
    (a million-household list is not counted for each); a page loaded reads afresh."""
    w = await factory.world(pool)
    await factory.household(pool, w.campaign_id, "0355553001")
    c = await logged_in(product, "sv1", "/supervisor")

    async def untried() -> int:
        async with c.http.get(f"{c.base}/api/floor") as r:
            (campaign,) = (await r.json())["campaigns"]
        return int(campaign["untried"])

    try:
        assert await untried() == 1
        await factory.household(pool, w.campaign_id, "0355553002")
        assert await untried() == 1  # the reading of a moment ago, shared
        await c.get("/supervisor")  # a page loaded: read now
        assert await untried() == 2
    finally:
        await c.close()
