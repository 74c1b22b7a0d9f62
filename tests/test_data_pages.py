"""The import page (administrators) and the export page (staff), over real HTTP and in Chromium."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import aiohttp
import asyncpg
import pytest
from playwright.async_api import Browser, expect

from campaigns.hours import TOKYO
from dialer import runtime
from dialer.config import Settings
from dialer.imports import mapping
from dialer.imports.sample import write_households
from dialer.store import imports
from tests import factory
from tests.browser import ARTIFACTS, log_in
from tests.client import PageClient, logged_in
from tests.test_imports import enc, row
from web.i18n import translate

_TAX_FILE = (
    "世帯コード,宛名コード,漢字氏名,ｶﾅ氏名,生年月日,世帯主区分,郵便番号,住所,自宅電話,携帯電話,"
    "税目コード,課税年度,期別,通知書番号,税額,未納額,納期限,延滞金\r\n"
    "T001,TA001,税務 花子,ｾﾞｲﾑ ﾊﾅｺ,S50.04.01,世帯主,160-0001,東京都新宿区1-1,03-5555-0101,,"
    "01,R07,1,N-1,30000,30000,R07.06.30,0\r\n"
).encode("cp932")


async def _upload(c: PageClient, body: bytes, **query: str) -> tuple[int, dict[str, object]]:
    q = {"department": "nhi", "mapping": "nhi-sample", "name": "滞納者一覧.csv", **query}
    async with c.http.post(
        f"{c.base}/api/admin/imports",
        params=q,
        data=body,
        headers={"X-CSRF-Token": c.csrf, "Content-Type": "text/csv"},
    ) as r:
        return r.status, await r.json()


async def _status(c: PageClient, url: str) -> dict[str, object]:
    async with c.http.get(f"{c.base}{url}") as r:
        assert r.status == 200
        body: dict[str, object] = await r.json()
        return body


async def _finished(c: PageClient, accepted: dict[str, object]) -> dict[str, object]:
    """Follow an accepted upload, as the page does, until its import has ended."""
    return await _until(c, accepted, lambda body: body["status"] != "running")


async def _until(
    c: PageClient,
    accepted: dict[str, object],
    done: Callable[[dict[str, object]], bool],
    within: float = 30.0,
) -> dict[str, object]:
    async with asyncio.timeout(within):
        while True:  # polled over HTTP, as the page does: there is nothing here to wait on
            body = await _status(c, str(accepted["url"]))
            if done(body):
                return body
            await asyncio.sleep(0.05)


async def test_an_administrator_uploads_an_export_and_downloads_its_error_report(
    staffed: runtime.Running, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    path = tmp_path / "f.csv"
    write_households(path, 20, encoding="cp932")
    broken = path.read_bytes() + enc(row(世帯番号="HX", 宛名番号="AX", 納期限="平成32年1月1日")) + b"\r\n"
    c = await logged_in(staffed, "admin1", "/admin/imports")
    try:
        status, accepted = await _upload(c, broken)
        assert status == 202, accepted
        body = await _finished(c, accepted)
        assert body["status"] == "done"
        assert body["rejected"] == 1
        assert body["stored"] == body["read"] - 1
        assert await pool.fetchval("select count(*) from household where department_id = 'nhi'") == 20
        async with c.http.get(f"{c.base}{body['report']}") as r:
            assert r.status == 200
            assert "attachment" in r.headers["Content-Disposition"]
            # streamed, and still with the headers every response gets (never cached: residents' data)
            assert (r.headers["Cache-Control"], r.headers["X-Content-Type-Options"]) == (
                "no-store",
                "nosniff",
            )
            assert "default-src 'self'" in r.headers["Content-Security-Policy"]
            report = list(csv.reader(io.StringIO((await r.read()).decode("utf-8-sig"))))
        assert report[1][1] == "納期限"
        assert "平成32年" in report[1][3]
        assert await pool.fetchval("select count(*) from audit_log where action = 'import.report'") == 1
        # no CSRF token: refused before a byte is stored
        async with c.http.post(f"{c.base}/api/admin/imports", params={"department": "nhi"}, data=b"x") as r:
            assert r.status == 403
        status, body = await _upload(c, b"", department="nhi")
        assert (status, body["error"]) == (422, "import.empty")
        status, body = await _upload(c, b"a,b\r\n1,2\r\n")
        assert (status, body["error"]) == (422, "import.unreadable")
        assert "見出し行に項目" in str(body["detail"])  # said in Japanese
        assert "宛名番号" in str(body["detail"])
        status, body = await _upload(c, broken, department="police")
        assert status == 422
        # an export date in the future or not a date: said in the page's words, not the CLI's
        assert await _upload(c, broken, as_of="R99.01.01") == (
            422,
            {"error": "import.as_of_future", "detail": "R99.01.01"},
        )
        assert await _upload(c, broken, as_of="来月") == (
            422,
            {"error": "import.bad_as_of", "detail": "来月"},
        )
        _, page = await c.get("/admin/imports")
        assert "滞納者一覧.csv" in page
        assert "<th>開始日時</th>" in page  # when, which layout, and the warnings, in the history
        assert "<td>nhi-sample</td>" in page
        uploads = staffed.settings.var_dir / "uploads"
        assert list(uploads.iterdir()) == []  # nothing left behind
        assert uploads.stat().st_mode & 0o777 == 0o700  # residents' files: the product's user only
    finally:
        await c.close()


async def test_an_upload_is_imported_in_the_background_and_its_progress_shown(
    staffed: runtime.Running, pool: asyncpg.Pool, tmp_path: Path
) -> None:
    path = tmp_path / "f.csv"
    write_households(path, 30, encoding="cp932")
    c = await logged_in(staffed, "admin1", "/admin/imports")
    try:
        async with pool.acquire() as other, other.transaction():
            # another import of the department holds its lock: this one is accepted and waits
            await other.execute("select pg_advisory_xact_lock(hashtext('dialer.import.' || 'nhi'))")
            status, accepted = await _upload(c, path.read_bytes())
            assert status == 202, accepted
            assert accepted["status"] == "running"
            body = await _status(c, str(accepted["url"]))
            assert (body["status"], body["phase"], body["read"]) == ("running", "waiting", 0)
            _, page = await c.get("/admin/imports")
            assert "実行中" in page  # the list shows it running
            # a second file for the same department is refused while this one is on its way
            # (it would sit on one of the web app's database connections); another department's is not
            status, refused = await _upload(c, path.read_bytes())
            assert (status, refused["error"]) == (409, "import.busy")
            status, wrong = await _upload(c, path.read_bytes(), department="tax")  # an NHI layout for tax
            assert (status, wrong["error"]) == (422, "import.unreadable")
            assert str(wrong["detail"]).startswith(
                "レイアウト nhi-sample は所管課 nhi のファイル用です。tax の"
            )
            status, other_dept = await _upload(c, _TAX_FILE, department="tax", mapping="tax-sample")
            assert status == 202, other_dept
            assert (await _finished(c, other_dept))["status"] == "done"
        lines = len(path.read_bytes().splitlines()) - 1  # a row per debt, under one header
        async with pool.acquire() as blocker, blocker.transaction():
            # its turn comes; the file is read, and the merge waits on a table lock held here
            await blocker.execute("lock table household in share mode")
            body = await _until(c, accepted, lambda b: b.get("step") == "households")  # blocked there
            assert (body["phase"], body["percent"], body["read"]) == ("merging", 100, lines)
        body = await _finished(c, accepted)
        assert (body["status"], body["read"], body["rejected"]) == ("done", lines, 0)
        assert "households: inserted 30, updated 0" in str(body["summary"])
        # another department's run is not found under this one
        async with c.http.get(f"{c.base}/api/admin/imports/tax/{body['id']}") as r:
            assert r.status == 404
        async with c.http.get(f"{c.base}/api/admin/imports/police/{body['id']}") as r:
            assert r.status == 404
    finally:
        await c.close()


async def test_an_import_cut_off_is_recorded_as_failed_and_stores_nothing(
    staffed: runtime.Running, pool: asyncpg.Pool, settings: Settings, tmp_path: Path
) -> None:
    path = tmp_path / "f.csv"
    write_households(path, 10, encoding="cp932")
    # the app stops while an import waits for its turn: it is cancelled and says so
    async with pool.acquire() as other, other.transaction():
        await other.execute("select pg_advisory_xact_lock(hashtext('dialer.import.' || 'nhi'))")
        async with runtime.started(settings) as second:
            c = await logged_in(second, "admin1", "/admin/imports")
            try:
                status, accepted = await _upload(c, path.read_bytes())
                assert status == 202
            finally:
                await c.close()
    run = await pool.fetchrow("select status, message from import_run where id = $1", accepted["id"])
    assert run is not None
    assert (run["status"], run["message"]) == ("failed", "interrupted: CancelledError")
    assert await pool.fetchval("select count(*) from household") == 0
    assert list((settings.var_dir / "uploads").iterdir()) == []

    # a process killed in the middle leaves its run 'running' with nobody holding its lock: the
    # next import of the department closes it, and so does the page asking about it; a run whose
    # importer is alive (it holds the run's lock) is left alone
    async def run_row(file_name: str) -> int:
        run_id: int = await pool.fetchval(
            """insert into import_run (department_id, kind, file_name, file_sha256, file_bytes, mapping)
               values ('nhi', 'households', $1, '', 0, 'nhi-sample') returning id""",
            file_name,
        )
        return run_id

    killed, alive = await run_row("killed.csv"), await run_row("alive.csv")
    lock_run = "select pg_advisory_lock(hashtext('dialer.import.run'), ($1::bigint % 2147483647)::int)"
    async with pool.acquire() as importer:
        await importer.execute(lock_run, alive)
        c = await logged_in(staffed, "admin1", "/admin/imports")  # the page closes what it finds cut off
        try:
            _, page = await c.get("/admin/imports")
            assert await pool.fetchval("select status from import_run where id = $1", killed) == "failed"
            assert "失敗" in page
            status, accepted = await _upload(c, path.read_bytes())
            assert status == 202
            assert (await _finished(c, accepted))["status"] == "done"
            rows = {r["id"]: r for r in await pool.fetch("select id, status, message from import_run")}
            assert (rows[killed]["status"], rows[killed]["message"]) == ("failed", imports.INTERRUPTED)
            assert rows[alive]["status"] == "running"
            assert (await _status(c, f"/api/admin/imports/nhi/{alive}"))["status"] == "running"
            await importer.execute("select pg_advisory_unlock_all()")  # the importer's process dies
            gone = await _status(c, f"/api/admin/imports/nhi/{alive}")
            assert (gone["status"], gone["message"]) == ("failed", imports.INTERRUPTED)
        finally:
            await c.close()


async def test_only_administrators_import_and_only_staff_export(staffed: runtime.Running) -> None:
    op = await logged_in(staffed, "op1", "/operator")
    staff = await logged_in(staffed, "staff1", "/staff/exports")
    try:
        assert (await op.get("/admin/imports"))[0] == 403
        assert (await op.get("/staff/exports"))[0] == 403
        status, _ = await _upload(op, b"x")
        assert status == 403
        assert (await staff.get("/admin/imports"))[0] == 403
        today = datetime.now(TOKYO).date()  # the form starts on this month in Tokyo, not the server's
        _, page = await staff.get("/staff/exports")
        assert f'name="from" value="{today.replace(day=1)}"' in page
        assert f'name="to" value="{today}"' in page
        async with op.http.post(
            f"{op.base}/staff/exports",
            data={"csrf": op.csrf, "kind": "history", "from": "2026-01-01", "to": "2026-12-31"},
        ) as r:
            assert r.status == 403
    finally:
        await op.close()
        await staff.close()


@pytest.mark.browser
async def test_import_page_in_chromium(staffed: runtime.Running, browser: Browser, tmp_path: Path) -> None:
    path = tmp_path / "見本.csv"
    write_households(path, 5, encoding="cp932")
    page = await browser.new_page()
    await log_in(page, staffed.url, "admin1")
    await page.goto(f"{staffed.url}/admin/imports")
    await page.select_option("select[name=department]", "tax")  # only the layouts of tax's files
    any_departments = [re.compile(f"^{name}-sample") for name in ("contacts", "plans")]
    await expect(page.locator("select[name=mapping] option:enabled")).to_have_text(
        [*any_departments, re.compile("^tax-sample")]
    )
    await expect(page.locator("select[name=mapping]")).to_have_value("tax-sample")
    await page.select_option("select[name=department]", "nhi")
    options = page.locator("select[name=mapping] option:enabled")
    await expect(options).to_have_count(4)  # households, payments, plans, contacts
    await page.select_option("select[name=mapping]", "nhi-sample")
    await page.set_input_files("input[name=file]", str(path))
    await page.click("#import-form button[type=submit]")
    result = page.get_by_test_id("import-result")
    await expect(result).to_contain_text("完了")  # in the page's language, not the CLI's summary
    await expect(result).to_contain_text("エラー行0")
    await expect(result).to_contain_text("世帯新規 5・更新 0")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "admin-imports.png"), full_page=True)
    await page.reload()
    await expect(page.get_by_test_id("import-runs")).to_contain_text("見本.csv")
    await page.close()


async def test_an_anonymous_upload_is_refused(staffed: runtime.Running) -> None:
    async with aiohttp.ClientSession() as s, s.post(f"{staffed.url}/api/admin/imports", data=b"x") as r:
        assert r.status == 401


@pytest.mark.parametrize("size", [1, 20_000], ids=["small", "over_a_forms_limit"])
async def test_an_upload_without_its_token_is_refused_as_such(staffed: runtime.Running, size: int) -> None:
    """A script that forgets X-CSRF-Token (curl --data-binary labels the CSV a form): 403 error.csrf,
    not a 500 for a body that does not decode, nor a 413 that reads as "file too large"."""
    admin = await logged_in(staffed, "admin1", "/admin/imports")
    try:
        body = "宛名番号,世帯番号\r\n".encode("cp932") * size
        async with admin.http.post(
            f"{admin.base}/api/admin/imports",
            params={"department": "nhi", "mapping": "nhi-sample", "name": "x.csv"},
            data=io.BytesIO(body),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        ) as r:
            assert (r.status, (await r.json())["error"]) == (403, "error.csrf")
    finally:
        await admin.close()


async def test_ids_beyond_bigint_are_not_found(staffed: runtime.Running) -> None:
    admin = await logged_in(staffed, "admin1", "/admin/imports")
    try:
        for path in (
            "/api/admin/imports/nhi/99999999999999999999",
            "/admin/imports/nhi/99999999999999999999/problems.csv",
            "/api/admin/imports/nhi/9223372036854775808",
            "/admin/retention/records/99999999999999999999.txt",
            "/admin/imports/*/1/problems.csv",  # a scope, not a department (was a 500)
            "/admin/imports/nosuch/1/problems.csv",
        ):
            assert (await admin.get(path))[0] == 404, path  # was a 500 (the id overflowed bigint)
        assert (await admin.get("/api/admin/imports/nhi/999999999999999999"))[0] == 404  # in range
    finally:
        await admin.close()


async def test_only_a_layout_name_is_taken_never_a_path(staffed: runtime.Running, tmp_path: Path) -> None:
    own = tmp_path / "own.toml"  # a valid layout, but not one the page offers
    own.write_bytes((Path(mapping.SHIPPED) / "nhi-sample.toml").read_bytes())
    data = tmp_path / "f.csv"
    write_households(data, 3, encoding="cp932")
    body = data.read_bytes()
    admin = await logged_in(staffed, "admin1", "/admin/imports")
    try:
        for bad in ("/etc/shadow", "/etc/passwd", str(own), "../mappings/nhi-sample", "nhi-sample.toml", ""):
            status, reply = await _upload(admin, body, mapping=bad)
            assert (status, reply["error"]) == (422, "import.bad_mapping"), bad
            assert "shadow" not in json.dumps(reply)
        assert translate("ja", "import.bad_mapping").startswith("取込レイアウトは一覧から選んでください")
        status, reply = await _upload(admin, body, mapping="nhi-sample")
        assert status == 202, reply
        assert (await _finished(admin, reply))["status"] == "done"
    finally:
        await admin.close()


@pytest.mark.browser
async def test_pages_refused_in_chromium_are_pages(staffed: runtime.Running, browser: Browser) -> None:
    page = await browser.new_page()
    await log_in(page, staffed.url, "op1")
    response = await page.goto(f"{staffed.url}/supervisor")
    assert response is not None
    assert response.status == 403
    await expect(page.get_by_test_id("error-title")).to_have_text("権限がありません")
    await expect(page.get_by_test_id("error-text")).to_have_text("この操作の権限がありません。")
    assert "{" not in await page.locator("body").inner_text()
    await page.get_by_test_id("lang-switch").click()  # and in the user's language
    await expect(page.get_by_test_id("error-title")).to_have_text("Not allowed")
    response = await page.goto(f"{staffed.url}/no/such/page")
    assert response is not None
    assert response.status == 404
    await expect(page.get_by_test_id("error-title")).to_have_text("Page not found")
    await page.close()
    page = await browser.new_page()
    await log_in(page, staffed.url, "staff1")
    await page.goto(f"{staffed.url}/staff/exports")
    await page.fill("input[name=from]", "2026-12-01")
    await page.fill("input[name=to]", "2026-11-01")
    await page.click("form[action='/staff/exports'] button[type=submit]")
    await expect(page.get_by_test_id("export-error")).to_have_text(
        "終了日は開始日と同じか、それより後の日付にしてください。"
    )
    await page.close()


async def test_the_admin_page_lists_users_and_departments_in_japanese(
    staffed: runtime.Running, pool: asyncpg.Pool
) -> None:
    await pool.execute("update department set callback_number = '0312340001' where id = 'nhi'")
    await factory.user(pool, "leaver", "operator", "nhi", "1099")
    await pool.execute("update app_user set active = false where login = 'leaver'")
    c = await logged_in(staffed, "admin1", "/admin")
    try:
        status, page = await c.get("/admin")
        assert status == 200
        assert "<th>ユーザーID</th>" in page
        assert "<th>役割</th>" in page
        assert ">Role<" not in page
        assert "03-1234-0001" in page  # the department's call-back number, as people write it
        assert "dialer departments add" in page
        assert re.search(r"<td>leaver</td>.*<td class=\"error\">停止中</td></tr>", page)
        assert "dialer users add / set / disable" in page
    finally:
        await c.close()
