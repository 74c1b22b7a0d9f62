"""The supervisor's campaign console over real HTTP: create, tune with Japanese input, count a
segment before it is stored, fill, and stay inside the supervisor's department (bad values:
test_campaign_console_refusals.py)."""

from __future__ import annotations

import html
import json
import re

import asyncpg

from dialer import runtime
from tests import factory
from tests.client import PageClient
from tests.console_forms import everything, post_form, supervisor, value_of


async def test_create_and_tune_a_campaign_in_the_console(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    await factory.world(pool)
    sv = await supervisor(product)
    try:
        status, page = await sv.get("/supervisor")
        assert status == 200
        assert 'href="/supervisor/campaigns/1"' in page
        status, where, _ = await post_form(
            sv, "/supervisor/campaigns", [("name", "国保 繰越"), ("dial_mode", "preview")]
        )
        assert status == 303
        cid = int(where.rsplit("/", 1)[1])
        status, page = await sv.get(where)
        assert status == 200
        assert "キャンペーン設定: 国保 繰越" in page

        status, where, _ = await post_form(sv, where, [*everything(), ("action", "save")])
        assert (status, where) == (303, f"/supervisor/campaigns/{cid}?saved=segment")
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
        assert value_of(page, "target_abandon_pct") == "2.5"
        assert value_of(page, "machine_message") == "custom/nhi-call-back"
        assert value_of(page, "caller_id") == "03-1234-5678"  # as people write it (stored as digits)
        assert value_of(page, "s_unpaid_max_yen") == "100000"
        assert value_of(page, "w_sat") == "-"
        assert value_of(page, "s_exclude_classes") == "執行停止、破産"
        assert re.search(r'name="s_debt_types" value="nhi" checked', page)
        assert re.search(r'<option value="never" selected>', page)
    finally:
        await sv.close()


async def test_spans_cut_back_are_said_after_saving_and_on_the_saved_form(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    late = everything(w_mon="21:00-23:00", w_tue="13:00〜22:00")
    try:
        status, _, page = await post_form(sv, path, [*late, ("action", "preview")])
        assert status == 200
        assert _clipped(page) == "21時〜翌8時にかかる時間帯は切り詰めました: 月曜（終日発信しません）、火曜"
        status, where, _ = await post_form(sv, path, [*late, ("action", "save")])
        assert (status, where) == (303, f"{path}?saved=segment")  # (its first rules)
        _, page = await sv.get(where)
        assert "保存しました" in page
        assert _clipped(page) == "21時〜翌8時にかかる時間帯は切り詰めました: 月曜（終日発信しません）、火曜"
        _, page = await sv.get(path)  # opened again later: the form shows 21:00-23:00 as written
        assert value_of(page, "w_mon") == "21:00-23:00"
        assert _clipped(page) == "21時〜翌8時にかかる時間帯は切り詰めました: 月曜（終日発信しません）、火曜"
        assert (await post_form(sv, path, [*everything(w_mon="09:00-20:00"), ("action", "save")]))[0] == 303
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
    sv = await supervisor(product)
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
    sv = await supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        rules = everything(s_unpaid_min_yen="100000", s_unpaid_max_yen="", status="draft", s_order="unpaid")
        status, _, page = await post_form(sv, path, [*rules, ("action", "preview")])
        assert status == 200
        assert re.search(r"<strong>2</strong> 世帯が該当.*370,000円.*うち登録済み 0 世帯", page, re.S)
        assert "うち他の実施中キャンペーンでも架電予定 2 世帯" in page
        assert await pool.fetchval("select segment from campaign where id = $1", w.campaign_id) is None
        assert value_of(page, "s_unpaid_min_yen") == "100000"  # the rules stay on the page to be saved

        assert (await post_form(sv, path, [*rules, ("action", "save")]))[0] == 303
        status, _, page = await post_form(sv, path, [("action", "fill")])
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

        # Narrower rules on a campaign already filled: the count says who a fill would set aside,
        # and the save says the list changes only with a fill, offered there (QA: "applies from
        # the next call" while the old list went on being called).
        narrower = everything(
            s_unpaid_min_yen="200000", s_unpaid_max_yen="", status="draft", s_order="unpaid"
        )
        _, _, page = await post_form(sv, path, [*narrower, ("action", "preview")])
        assert re.search(r"<strong>1</strong> 世帯が該当", page)
        assert "この条件で保存して登録すると対象外になる未発信の世帯 1 世帯" in page
        status, where, _ = await post_form(sv, path, [*narrower, ("action", "save")])
        assert (status, where) == (303, f"{path}?saved=segment")
        _, page = await sv.get(where)
        assert "抽出条件の変更は、対象世帯の登録をするまで架電リストに反映されません" in page
        assert 'data-testid="fill-now"' in page
        pending = "select count(*) from campaign_target where campaign_id = $1 and state = 'pending'"
        assert await pool.fetchval(pending, w.campaign_id) == 2  # (not yet)
        status, _, page = await post_form(sv, path, [("action", "fill")])
        assert re.search(r"該当 1 · 新規登録 0 · 対象外にした世帯 1</p>", page)
        assert await pool.fetchval(pending, w.campaign_id) == 1
        # the wider rules again: the household set aside comes back, and the fill says so (QA)
        assert (await post_form(sv, path, [*rules, ("action", "save")]))[0] == 303
        status, _, page = await post_form(sv, path, [("action", "fill")])
        assert re.search(r"該当 2 · 新規登録 0 · 対象外にした世帯 0 · 対象に戻した世帯 1</p>", page)
        assert await pool.fetchval(pending, w.campaign_id) == 2
        assert (await post_form(sv, path, [*narrower, ("action", "save")]))[0] == 303
        renamed = everything(
            s_unpaid_min_yen="200000",
            s_unpaid_max_yen="",
            status="draft",
            s_order="unpaid",
            name="国保 20万円以上",
        )
        status, where, _ = await post_form(sv, path, [*renamed, ("action", "save")])
        assert (status, where) == (303, f"{path}?saved=1")  # (the rules unchanged: the usual word)
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
    sv = await supervisor(product)
    other = await supervisor(product, "sv-tax")
    staff, op = PageClient(product.url), PageClient(product.url)
    try:
        assert (await sv.get(f"/supervisor/campaigns/{tax}"))[0] == 404
        status, _, _ = await post_form(
            sv, f"/supervisor/campaigns/{tax}", [*everything(), ("action", "save")]
        )
        assert status == 404
        assert (await other.get(f"/supervisor/campaigns/{w.campaign_id}"))[0] == 404
        status, page = await other.get("/supervisor")
        assert "テスト催告" not in page
        assert await staff.login("staff1", factory.PASSWORD, page="/supervisor") == 200
        assert (await staff.get(f"/supervisor/campaigns/{w.campaign_id}"))[0] == 403
        assert await op.login("op1", factory.PASSWORD) == 200
        assert (await post_form(op, "/supervisor/campaigns", [("name", "x"), ("dial_mode", "preview")]))[
            0
        ] == 403
        async with sv.http.post(  # no CSRF field: refused
            f"{sv.base}/supervisor/campaigns/{w.campaign_id}", data=everything(), allow_redirects=False
        ) as r:
            assert r.status == 403
        assert (
            await post_form(sv, "/supervisor/campaigns", [("name", "テスト催告"), ("dial_mode", "preview")])
        )[1] == ("/supervisor?error=camp.err.name_taken")
        status, page = await sv.get("/supervisor?error=camp.err.name_taken")
        assert "同じ名前のキャンペーンがあります" in page
        status, page = await sv.get("/supervisor?error=<script>")
        assert "<script>" not in page
    finally:
        for c in (sv, other, staff, op):
            await c.close()


def _base(page: str) -> str:
    m = re.search(r'name="base" value="([^"]*)"', page)
    assert m is not None
    return html.unescape(m.group(1))


async def test_a_page_left_open_changes_only_what_was_changed_on_it(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    """sv1's page was opened before the campaign was paused elsewhere: saving a change of the lines
    per operator on it must not set the campaign active again. A setting both changed differently
    is refused and shown as it is now."""
    w = await factory.world(pool)
    await factory.user(pool, "sv2", "supervisor", "nhi")
    sv1, sv2 = await supervisor(product), await supervisor(product, "sv2")
    where = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        assert (await post_form(sv1, where, [*everything(), ("action", "save")]))[0] == 303
        _, page = await sv1.get(where)
        opened = _base(page)
        await pool.execute("update campaign set status = 'paused' where id = $1", w.campaign_id)  # the CLI
        fields = [*everything(max_lines="3"), ("base", opened), ("action", "save")]
        assert (await post_form(sv1, where, fields))[0] == 303
        row = await pool.fetchrow("select status, pacing from campaign where id = $1", w.campaign_id)
        assert (row["status"], json.loads(row["pacing"])["max_lines_per_operator"]) == ("paused", 3.0)

        await pool.execute("update campaign set status = 'active' where id = $1", w.campaign_id)
        _, page = await sv1.get(where)
        opened = _base(page)  # sv1's page: active
        _, other = await sv2.get(where)
        fields = [*everything(status="paused", max_lines="4"), ("base", _base(other)), ("action", "save")]
        assert (await post_form(sv2, where, fields))[0] == 303  # sv2 pauses it and sets 4 lines
        fields = [*everything(max_lines="2", name="国保 繰越 改"), ("base", opened), ("action", "save")]
        status, _, page = await post_form(sv1, where, fields)
        assert (status, 'data-testid="clash"' in page, "ペース配分" in page) == (409, True, True)
        assert value_of(page, "max_lines") == "4"  # as it is now
        assert value_of(page, "name") == "国保 繰越 改"  # what sv1 changed (and nobody else) stays
        assert re.search(r'<option value="paused" selected', page)  # sv2's pause, not sv1's old "active"
        row = await pool.fetchrow("select name, status, pacing from campaign where id = $1", w.campaign_id)
        assert (row["name"], row["status"]) == ("国保 繰越 10万円未満", "paused")
        # Saved again from that page (what it shows, the lines typed again): sv1's changes apply and
        # sv2's pause stays.
        fields = [*everything(status="paused", max_lines="2", name="国保 繰越 改"), ("base", _base(page)),
                  ("action", "save")]  # fmt: skip
        assert (await post_form(sv1, where, fields))[0] == 303
        row = await pool.fetchrow("select name, status, pacing from campaign where id = $1", w.campaign_id)
        assert (row["name"], row["status"], json.loads(row["pacing"])["max_lines_per_operator"]) == (
            "国保 繰越 改", "paused", 2.0,
        )  # fmt: skip
    finally:
        await sv1.close()
        await sv2.close()
