"""The supervisor's campaign console over real HTTP: create, tune with Japanese input, refuse bad
values without changing anything, count a segment before it is stored, fill, and stay inside the
supervisor's department."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg

from dialer import runtime
from tests import factory
from tests.client import PageClient


async def _form(client: PageClient, path: str, fields: list[tuple[str, str]]) -> tuple[int, str, str]:
    """Post a form as the browser does (the CSRF field included); status, Location, body."""
    async with client.http.post(
        f"{client.base}{path}", data=[("csrf", client.csrf), *fields], allow_redirects=False
    ) as r:
        return r.status, r.headers.get("Location", ""), await r.text()


def _everything(**changes: str) -> list[tuple[str, str]]:
    fields = {
        "name": "国保 繰越 10万円未満", "status": "active", "dial_mode": "predictive",
        "caller_id": "０３−１２３４−５６７８", "machine_message": "custom/nhi-call-back",  # U+2212, as IMEs type it
        "w_mon": "09:30〜12:00、13:00−22:00", "w_sat": "なし",
        "r_busy_after_minutes": "１５",
        "target_abandon_pct": "2.5", "max_lines": "２", "amd_false_machine_pct": "１.５％",
        "s_years": "carried_over", "s_unpaid_max_yen": "１００,０００", "s_promise_broken": "never",
        "s_installment_broken": "", "s_exclude_classes": "執行停止、破産", "s_order": "oldest",
    }  # fmt: skip
    fields.update(changes)
    return [*fields.items(), ("s_debt_types", "nhi")]


async def _supervisor(product: runtime.Running, login: str = "sv1") -> PageClient:
    client = PageClient(product.url)
    assert await client.login(login, factory.PASSWORD, page="/supervisor") == 200
    return client


async def test_create_and_tune_a_campaign_in_the_console(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    sv = await _supervisor(product)
    try:
        status, page = await sv.get("/supervisor")
        assert status == 200
        assert 'href="/supervisor/campaigns/1"' in page
        status, where, _ = await _form(
            sv, "/supervisor/campaigns", [("name", "国保 繰越"), ("dial_mode", "preview")]
        )
        assert status == 303
        cid = int(where.rsplit("/", 1)[1])
        status, page = await sv.get(where)
        assert status == 200
        assert "キャンペーン設定: 国保 繰越" in page

        status, where, _ = await _form(sv, where, [*_everything(), ("action", "save")])
        assert (status, where) == (303, f"/supervisor/campaigns/{cid}?saved=1")
        row = await pool.fetchrow("select * from campaign where id = $1", cid)
        assert (row["name"], row["status"], row["dial_mode"], row["caller_id"]) == (
            "国保 繰越 10万円未満", "active", "predictive", "0312345678",
        )  # fmt: skip
        assert json.loads(row["calling_window"]) == {"mon": ["09:30-12:00", "13:00-22:00"], "sat": []}
        assert json.loads(row["retry_policy"]) == {"busy_after_minutes": 15}
        assert json.loads(row["pacing"]) == {
            "target_abandon": 0.025, "max_lines_per_operator": 2.0, "amd_false_machine": 0.015,
        }  # fmt: skip
        assert json.loads(row["segment"]) == {
            "debt_types": ["nhi"], "years": "carried_over", "unpaid_max_yen": 100_000,
            "promise_broken": False, "exclude_classes": ["執行停止", "破産"], "order": "oldest",
        }  # fmt: skip
        audit = await pool.fetchrow(
            "select user_id, detail from audit_log where action = 'campaign.update' and object_id = $1",
            str(cid),
        )
        assert json.loads(audit["detail"])["changed"] == [
            "caller_id", "calling_window", "dial_mode", "machine_message", "name", "pacing", "retry_policy",
            "segment", "status",
        ]  # fmt: skip

        status, page = await sv.get(where)
        assert "保存しました" in page
        assert _value(page, "target_abandon_pct") == "2.5"
        assert _value(page, "machine_message") == "custom/nhi-call-back"
        assert _value(page, "s_unpaid_max_yen") == "100000"
        assert _value(page, "w_sat") == "-"
        assert _value(page, "s_exclude_classes") == "執行停止、破産"
        assert re.search(r'name="s_debt_types" value="nhi" checked', page)
        assert re.search(r'<option value="never" selected>', page)
    finally:
        await sv.close()


async def test_bad_values_are_shown_and_nothing_is_stored(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await _supervisor(product)
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        bad = _everything(
            w_mon="9時から",
            target_abandon_pct="5",
            s_unpaid_min_yen="たくさん",
            caller_id="電話",
            machine_message="../../etc/passwd",
        )
        status, _, page = await _form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*bad, ("action", "save")]
        )
        assert status == 422
        for name in ("window", "pacing", "s_unpaid_min_yen", "caller_id", "machine_message"):
            assert f'data-testid="error-{name}"' in page, name
        assert "時間帯は「09:00-12:00」の形で" in page
        assert "放棄呼率は0〜3%" in page
        assert _value(page, "w_mon") == "9時から"  # what was typed is shown again next to its error
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        inverted = _everything(s_unpaid_min_yen="300000", s_unpaid_max_yen="100000")
        status, _, page = await _form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*inverted, ("action", "save")]
        )
        assert (status, "下限より大きい金額を入力してください" in page) == (422, True)
        assert 'data-testid="error-s_unpaid_max_yen"' in page  # the field to correct is marked
        await sv.get("/lang?to=en")
        status, _, page = await _form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*inverted, ("action", "save")]
        )
        assert "Enter an amount greater than the minimum" in page
    finally:
        await sv.close()


async def test_retry_settings_out_of_bounds_are_refused(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    sv = await _supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        unsafe = _everything(
            r_abandoned_after_minutes="0", r_busy_after_minutes="0", r_max_per_day="1000",
            r_max_total="1,000,000", r_no_answer_after_minutes="9999999999999",
        )  # fmt: skip
        status, _, page = await _form(sv, path, [*unsafe, ("action", "save")])
        assert status == 422
        for key in ("abandoned_after", "busy_after", "no_answer_after"):
            assert f'data-testid="error-r_{key}_minutes"' in page, key
        for key in ("max_per_day", "max_total"):
            assert f'data-testid="error-r_{key}"' in page, key
        assert "放棄呼の後は72時間（4320分）以上あけてください" in page
        assert "(1〜5)" in page  # the range allowed, next to the field
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        status, _, _ = await _form(
            sv, path, [*_everything(r_abandoned_after_minutes="4320"), ("action", "save")]
        )
        assert status == 303
        stored = await pool.fetchval("select retry_policy from campaign where id = $1", w.campaign_id)
        assert json.loads(stored) == {"busy_after_minutes": 15, "abandoned_after_minutes": 4320}
    finally:
        await sv.close()


async def test_a_campaign_cannot_be_active_without_a_caller_id(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    sv = await _supervisor(product)
    try:
        _, path, _ = await _form(
            sv, "/supervisor/campaigns", [("name", "番号なし"), ("dial_mode", "preview")]
        )
        cid = int(path.rsplit("/", 1)[1])
        assert await pool.fetchval("select caller_id from campaign where id = $1", cid) == ""
        status, _, page = await _form(sv, path, [*_everything(caller_id=""), ("action", "save")])
        assert status == 422
        assert 'data-testid="error-caller_id"' in page
        assert "実施中にするには発信者番号が必要です" in page
        assert await pool.fetchval("select status from campaign where id = $1", cid) == "draft"
        status, _, page = await _form(sv, path, [*_everything(caller_id="0000-00-0000"), ("action", "save")])
        assert status == 422
        assert "日本の電話番号（例: 03-1234-5678）を入力してください" in page
        # a draft may wait for its number; once it has one it can be started
        assert (await _form(sv, path, [*_everything(caller_id="", status="draft"), ("action", "save")]))[
            0
        ] == 303
        assert (await _form(sv, path, [*_everything(), ("action", "save")]))[0] == 303
        row = await pool.fetchrow("select status, caller_id from campaign where id = $1", cid)
        assert tuple(row) == ("active", "0312345678")
    finally:
        await sv.close()


async def test_segment_periods_out_of_bounds_are_refused(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await _supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        for action in ("preview", "save"):
            for key, value in [
                ("s_overdue_months", "99999"), ("s_overdue_months", "999999999999"),
                ("s_not_contacted_days", "3000000"),
            ]:  # fmt: skip
                status, _, page = await _form(sv, path, [*_everything(**{key: value}), ("action", action)])
                assert status == 422, (action, key, value)
                assert f'data-testid="error-{key}"' in page
                assert "入力できる範囲外です" in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        status, _, _ = await _form(sv, path, [*_everything(s_overdue_months="600"), ("action", "preview")])
        assert status == 200
        # a segment stored before the bounds existed is refused by name, not a 500 on every fill
        await pool.execute(
            """update campaign set segment = '{"overdue_months": 99999}' where id = $1""", w.campaign_id
        )
        status, _, page = await _form(sv, path, [("action", "fill")])
        assert (status, "抽出条件を確認してください" in page) == (422, True)
        await sv.get("/lang?to=en")
        status, _, page = await _form(sv, path, [("action", "fill")])
        assert "overdue_months must be at most 600" in page  # named on the English page
    finally:
        await sv.close()


async def test_a_name_taken_or_with_control_characters_is_refused(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    other = await factory.campaign(pool, "nhi", name="住民税 催告")
    sv = await _supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        status, _, page = await _form(sv, path, [*_everything(name="住民税 催告"), ("action", "save")])
        assert status == 422  # was a 500 (UniqueViolation)
        assert 'data-testid="error-name"' in page
        assert "同じ名前のキャンペーンがあります" in page
        for bad in ("国保\x00催告", "国保\n催告", "国保\x1b[31m"):
            status, _, page = await _form(sv, path, [*_everything(name=bad), ("action", "save")])
            assert status == 422, repr(bad)
            assert "制御文字を含めずに" in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        assert await pool.fetchval("select name from campaign where id = $1", other) == "住民税 催告"
        where = (await _form(sv, "/supervisor/campaigns", [("name", "新\x00規"), ("dial_mode", "preview")]))[
            1
        ]
        assert where == "/supervisor?error=camp.err.name"
        where = (await _form(sv, "/supervisor/campaigns", [("name", "新規"), ("dial_mode", "turbo")]))[1]
        assert where == "/supervisor?error=camp.err.choice"  # the mode was wrong, not the name
        assert await pool.fetchval("select count(*) from campaign") == 2
    finally:
        await sv.close()


async def test_ids_beyond_bigint_are_not_found(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    sv = await _supervisor(product)
    op = PageClient(product.url)
    try:
        huge = "99999999999999999999"
        assert (await sv.get(f"/supervisor/campaigns/{huge}"))[0] == 404  # was a 500
        assert (await _form(sv, f"/supervisor/campaigns/{huge}", [*_everything(), ("action", "save")]))[
            0
        ] == 404
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        path = f"/supervisor/campaigns/{w.campaign_id}"
        status, _, page = await _form(sv, path, [*_everything(), ("operators", huge), ("action", "save")])
        assert status == 422
        assert 'data-testid="error-operators"' in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        assert await op.login("op1", factory.PASSWORD) == 200
        status, body = await op.post("/api/agent/ready", {"campaign_id": int(huge)})
        assert (status, body["error"]) == (400, "error.campaign")
    finally:
        await sv.close()
        await op.close()


async def test_spans_cut_back_are_said_after_saving_and_on_the_saved_form(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await _supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    late = _everything(w_mon="21:00-23:00", w_tue="13:00〜22:00")
    try:
        status, _, page = await _form(sv, path, [*late, ("action", "preview")])
        assert status == 200
        assert _clipped(page) == "21時〜翌8時にかかる時間帯は切り詰めました: 月曜（終日発信しません）、火曜"
        status, where, _ = await _form(sv, path, [*late, ("action", "save")])
        assert (status, where) == (303, f"{path}?saved=1")
        _, page = await sv.get(where)
        assert "保存しました" in page
        assert _clipped(page) == "21時〜翌8時にかかる時間帯は切り詰めました: 月曜（終日発信しません）、火曜"
        _, page = await sv.get(path)  # opened again later: the form shows 21:00-23:00 as written
        assert _value(page, "w_mon") == "21:00-23:00"
        assert _clipped(page) == "21時〜翌8時にかかる時間帯は切り詰めました: 月曜（終日発信しません）、火曜"
        assert (await _form(sv, path, [*_everything(w_mon="09:00-20:00"), ("action", "save")]))[0] == 303
        _, page = await sv.get(path)
        assert 'data-testid="clipped"' not in page
    finally:
        await sv.close()


def _clipped(page: str) -> str:
    m = re.search(r'data-testid="clipped">([^<]*)</p>', page)
    assert m is not None, "no notice that spans were cut back"
    return " ".join(m.group(1).split())


async def test_refusals_are_pages_for_the_browser_and_json_for_scripts(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await _supervisor(product)
    op = PageClient(product.url)
    try:
        assert await op.login("op1", factory.PASSWORD) == 200
        async with op.http.get(f"{op.base}/supervisor") as r:
            assert (r.status, r.content_type) == (403, "text/html")  # was {"error": "error.forbidden"}
            assert "この操作の権限がありません。" in await r.text()
        status, body = await op.post("/api/supervisor/listen", {"operator_id": 1})
        assert (status, body) == (403, {"error": "error.forbidden"})  # the API stays JSON
        async with sv.http.post(  # a form whose session token is stale
            f"{sv.base}/supervisor/campaigns/{w.campaign_id}", data={"csrf": "old", "action": "save"}
        ) as r:
            assert (r.status, r.content_type) == (403, "text/html")
            assert "画面の有効期限が切れました" in await r.text()
        async with sv.http.get(f"{sv.base}/supervisor/campaigns/99999") as r:
            assert (r.status, r.content_type) == (404, "text/html")
            assert "ページが見つかりません" in await r.text()
    finally:
        await sv.close()
        await op.close()


async def test_count_before_storing_then_fill(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    await factory.households_for_a_segment(pool, w.campaign_id, "03555530", "C", (30_000, 120_000, 250_000))
    other = await factory.campaign(pool, "nhi", name="別の催告")  # active, with every household waiting
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) select $1, id, 'nhi' from household",
        other,
    )
    sv = await _supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        rules = _everything(s_unpaid_min_yen="100000", s_unpaid_max_yen="", status="draft", s_order="unpaid")
        status, _, page = await _form(sv, path, [*rules, ("action", "preview")])
        assert status == 200
        assert re.search(r"<strong>2</strong> 世帯が該当.*370,000円.*うち登録済み 0 世帯", page, re.S)
        assert "うち他の実施中キャンペーンでも架電予定 2 世帯" in page
        assert await pool.fetchval("select segment from campaign where id = $1", w.campaign_id) is None
        assert _value(page, "s_unpaid_min_yen") == "100000"  # the rules stay on the page to be saved

        assert (await _form(sv, path, [*rules, ("action", "save")]))[0] == 303
        status, _, page = await _form(sv, path, [("action", "fill")])
        assert status == 200
        assert re.search(r"該当 2 · 新規登録 2 · 対象外にした世帯 0", page)
        listed = await pool.fetch(
            "select h.household_no from campaign_target t join household h on h.id = t.household_id "
            "where t.campaign_id = $1 order by t.priority",
            w.campaign_id,
        )
        assert [r["household_no"] for r in listed] == ["C2", "C1"]
        actions = await pool.fetch("select action from audit_log where object_type = 'campaign' order by id")
        assert [r["action"] for r in actions] == ["campaign.preview", "campaign.update", "campaign.fill"]
    finally:
        await sv.close()


async def test_only_the_departments_supervisors_may_touch_a_campaign(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    await factory.department(pool, "tax")
    await factory.user(pool, "sv-tax", "supervisor", "tax")
    await factory.user(pool, "staff1", "staff", "nhi")
    tax = await factory.campaign(pool, "tax", "progressive", name="住民税")
    sv = await _supervisor(product)
    other = await _supervisor(product, "sv-tax")
    staff, op = PageClient(product.url), PageClient(product.url)
    try:
        assert (await sv.get(f"/supervisor/campaigns/{tax}"))[0] == 404
        status, _, _ = await _form(sv, f"/supervisor/campaigns/{tax}", [*_everything(), ("action", "save")])
        assert status == 404
        assert (await other.get(f"/supervisor/campaigns/{w.campaign_id}"))[0] == 404
        status, page = await other.get("/supervisor")
        assert "テスト催告" not in page
        assert await staff.login("staff1", factory.PASSWORD, page="/supervisor") == 200
        assert (await staff.get(f"/supervisor/campaigns/{w.campaign_id}"))[0] == 403
        assert await op.login("op1", factory.PASSWORD) == 200
        assert (await _form(op, "/supervisor/campaigns", [("name", "x"), ("dial_mode", "preview")]))[0] == 403
        async with sv.http.post(  # no CSRF field: refused
            f"{sv.base}/supervisor/campaigns/{w.campaign_id}", data=_everything(), allow_redirects=False
        ) as r:
            assert r.status == 403
        assert (await _form(sv, "/supervisor/campaigns", [("name", "テスト催告"), ("dial_mode", "preview")]))[
            1
        ] == ("/supervisor?error=camp.err.name_taken")
        status, page = await sv.get("/supervisor?error=camp.err.name_taken")
        assert "同じ名前のキャンペーンがあります" in page
        status, page = await sv.get("/supervisor?error=<script>")
        assert "<script>" not in page
    finally:
        for c in (sv, other, staff, op):
            await c.close()


def _value(page: str, name: str) -> Any:
    m = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert m is not None, name
    return m.group(1)
