"""The administrators' retention page over real HTTP and in Chromium; an import's error report
past its retention answers that it was deleted."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from dialer import purging, runtime
from dialer.store import db
from tests import factory
from tests.browser import ARTIFACTS, log_in
from tests.client import PageClient
from tests.retention_data import closed_household, confirm


@pytest.fixture
async def admin(pool: asyncpg.Pool, product: runtime.Running) -> PageClient:
    for dept in ("nhi", "tax"):
        await factory.department(pool, dept)
        await confirm(pool, dept)
    await factory.user(pool, "admin1", "admin", None)
    await factory.user(pool, "sv1", "supervisor", "nhi")
    c = PageClient(product.url)
    assert await c.login("admin1", factory.PASSWORD, "/admin/retention") == 200
    return c


async def _save(c: PageClient, dept: str, **days: str) -> tuple[int, str]:
    form = {"closed": "365", "import_report": "90", "audit": "1826", **days, "csrf": c.csrf}
    async with c.http.post(f"{c.base}/admin/retention/{dept}", data=form, allow_redirects=False) as r:
        return r.status, r.headers.get("Location", "")


async def test_an_administrator_changes_a_departments_retention_and_it_is_audited(
    admin: PageClient, pool: asyncpg.Pool
) -> None:
    assert await _save(admin, "nhi", closed="４００") == (
        303,
        "/admin/retention?saved=nhi",
    )  # full-width digits
    row = await pool.fetchrow("select retain_closed_days, retain_audit_days from department where id = 'nhi'")
    assert tuple(row) == (400, 1826)
    entry = await pool.fetchrow(
        "select user_id, department_id, detail from audit_log where action = 'retention.set'"
    )
    assert entry["department_id"] == "nhi"
    assert db.from_jsonb(entry["detail"]) == {
        "before": {"closed": 365, "import_report": 90, "audit": 1826},
        "after": {"closed": 400, "import_report": 90, "audit": 1826},
    }
    # out of bounds or not a number: refused with the reason, nothing changed
    assert await _save(admin, "nhi", closed="10") == (303, "/admin/retention?error=ret.err.bounds")
    assert await _save(admin, "nhi", audit="ずっと") == (303, "/admin/retention?error=ret.err.number")
    assert await pool.fetchval("select retain_closed_days from department where id = 'nhi'") == 400
    status, text = await admin.get("/admin/retention?error=ret.err.bounds")
    assert status == 200
    assert "日数が範囲外です" in text
    assert await _save(admin, "nope") == (404, "")
    await admin.close()


async def test_only_administrators_see_the_retention_page_and_the_records(
    admin: PageClient, product: runtime.Running, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    (nhi, tax, server) = await purging.purge_all(app_pool, tmp_path, trigger="command", user_name="ops")
    status, text = await admin.get(f"/admin/retention/records/{nhi.run_id}.txt")
    assert status == 200
    assert "国民健康保険課" in text
    assert "コマンド (command) ops" in text
    status, text = await admin.get(f"/admin/retention/records/{server.run_id}.txt")
    assert status == 200
    assert "サーバー全体" in text
    assert (await admin.get("/admin/retention/records/99999.txt"))[0] == 404
    await admin.close()
    sv = PageClient(product.url)
    await sv.login("sv1", factory.PASSWORD, "/supervisor")
    assert (await sv.get("/admin/retention"))[0] == 403
    assert (await sv.get(f"/admin/retention/records/{tax.run_id}.txt"))[0] == 403
    async with sv.http.post(
        f"{sv.base}/admin/retention/nhi",
        data={"closed": "30", "import_report": "7", "audit": "365", "csrf": sv.csrf},
        allow_redirects=False,
    ) as r:
        assert r.status == 403
    await sv.close()


async def test_an_error_report_past_its_retention_says_it_was_deleted(
    admin: PageClient, pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path
) -> None:
    run_id = await pool.fetchval(
        """insert into import_run (department_id, kind, file_name, file_sha256, file_bytes, mapping, status,
                                   started_at, finished_at, rows_rejected)
           values ('nhi', 'households', '古い.csv', 'x', 1, 'nhi-sample', 'done', now() - interval '100 days',
                   now() - interval '100 days', 1) returning id"""
    )
    await pool.execute(
        "insert into import_problem (import_id, line, severity, message, value) values ($1, 2, 'error', 'x', '見本')",
        run_id,
    )
    assert (await admin.get(f"/admin/imports/nhi/{run_id}/problems.csv"))[0] == 200
    await purging.purge_all(app_pool, tmp_path, trigger="command")
    status, body = await admin.get(f"/admin/imports/nhi/{run_id}/problems.csv")
    assert status == 410
    assert "エラー一覧は保存期間を過ぎたため消去しました" in body  # a page, not {"error": …}
    status, page = await admin.get("/admin/imports")
    assert "エラー一覧は保存期間を過ぎて消去済み" in page
    await admin.close()


@pytest.mark.browser
async def test_retention_page_in_chromium(
    admin: PageClient, product: runtime.Running, pool: asyncpg.Pool, app_pool: asyncpg.Pool, browser: Browser
) -> None:
    await admin.close()
    w_campaign = await factory.campaign(pool, "nhi")
    await closed_household(pool, w_campaign, "0355550001", "PAGE")
    await purging.purge_all(app_pool, product.settings.var_dir / "uploads", trigger="schedule")
    page = await browser.new_page()
    await log_in(page, product.url, "admin1")
    await page.goto(f"{product.url}/admin")
    await page.click("a[href='/admin/retention']")
    runs = page.get_by_test_id("purge-runs")
    await expect(runs).to_contain_text("世帯 1")
    await expect(runs).to_contain_text("定時")
    await expect(runs).to_contain_text("サーバー全体")
    row = page.locator("tr[data-department=tax]")
    await row.locator("input[name=closed]").fill("730")
    await row.get_by_role("button").click()
    await expect(page.get_by_test_id("retention-saved")).to_contain_text("(tax)")
    await expect(page.locator("tr[data-department=tax] input[name=closed]")).to_have_value("730")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "admin-retention.png"), full_page=True)
    # the browser refuses a number below the bound before it is sent
    await row.locator("input[name=closed]").fill("5")
    await row.get_by_role("button").click()
    await expect(page.get_by_test_id("retention-saved")).to_be_visible()  # still the page it was
    assert await pool.fetchval("select retain_closed_days from department where id = 'tax'") == 730
    await page.close()
