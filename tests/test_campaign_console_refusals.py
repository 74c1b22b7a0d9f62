"""The supervisor's campaign console over real HTTP: bad values are refused, each named by its
field and in the page's language, and nothing is changed."""

from __future__ import annotations

import json
import re

import asyncpg

from dialer import runtime
from tests import factory
from tests.client import PageClient
from tests.console_forms import everything, post_form, supervisor, value_of


async def test_bad_values_are_shown_and_nothing_is_stored(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await supervisor(product)
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        bad = everything(
            w_mon="9時から",
            target_abandon_pct="5",
            s_unpaid_min_yen="たくさん",
            caller_id="電話",
            machine_message="../../etc/passwd",
        )
        status, _, page = await post_form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*bad, ("action", "save")]
        )
        assert status == 422
        for name in ("w_mon", "target_abandon_pct", "s_unpaid_min_yen", "caller_id", "machine_message"):
            assert f'data-testid="error-{name}"' in page, name  # marked at the field, in Japanese too
        assert '時間帯は「09:00-12:00」の形で入力してください。 <small class="muted">(9時から)' in page
        # overnight: said so, not "write it as 09:00-12:00" (QA); overlapping spans: said so
        for day, typed, said in (("w_tue", "21:00-8:00", "日をまたぐ時間帯は指定できません"),
                                 ("w_wed", "9:00-12:00, 11:00-13:00", "時間帯が重なっています")):  # fmt: skip
            status, _, other = await post_form(
                sv,
                f"/supervisor/campaigns/{w.campaign_id}",
                [*everything(**{day: typed}), ("action", "save")],
            )
            assert (status, said in other, f'data-testid="error-{day}"' in other) == (422, True, True)
        assert (
            '入力できる範囲外です（かっこ内の範囲で入力してください）。 <small class="muted">(0〜3)' in page
        )
        assert value_of(page, "w_mon") == "9時から"  # what was typed is shown again next to its error
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        odd = everything(s_unpaid_min_yen="0", s_unpaid_max_yen="99999999999999", max_lines="1_0")
        status, _, page = await post_form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*odd, ("action", "save")]
        )
        assert status == 422
        assert 'data-testid="error-max_lines"' in page  # Python's 1_0 is not how a person writes ten
        assert "数値（小数可）で、かっこ内の範囲で入力してください。" in page
        assert "0〜1,000,000,000,000" in page  # too large, not "not a whole number"
        assert "0以上の整数で入力してください" not in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        status, _, page = await post_form(
            sv,
            f"/supervisor/campaigns/{w.campaign_id}",
            [*everything(s_unpaid_min_yen="0"), ("action", "save")],
        )
        assert (status, "1円以上で入力してください" in page) == (422, True)
        assert 'data-testid="error-s_unpaid_min_yen"' in page
        inverted = everything(s_unpaid_min_yen="300000", s_unpaid_max_yen="100000")
        status, _, page = await post_form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*inverted, ("action", "save")]
        )
        assert (status, "下限より大きい金額を入力してください" in page) == (422, True)
        assert 'data-testid="error-s_unpaid_max_yen"' in page  # the field to correct is marked
        await sv.get("/lang?to=en")
        status, _, page = await post_form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*inverted, ("action", "save")]
        )
        assert "Enter an amount greater than the minimum" in page
        status, _, page = await post_form(
            sv,
            f"/supervisor/campaigns/{w.campaign_id}",
            [*everything(s_unpaid_min_yen="0"), ("action", "save")],
        )
        assert (status, "unpaid_min_yen must be" in page) == (422, False)  # the message alone, once (QA)
        await sv.get("/lang?to=ja")
        status, _, page = await post_form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*everything(r_max_total="-1"), ("action", "save")]
        )
        assert (status, 'data-testid="error-r_max_total"' in page) == (422, True)
        assert re.search(
            r'<input name="r_max_total" value="-1"[^>]* aria-invalid="true">', page
        )  # (QA: a11y)
        assert '<p class="notice danger" role="alert" data-testid="errors">' in page
        assert (
            '整数で、かっこ内の範囲で入力してください。 <small class="muted">(' in page
        )  # with the range it takes
        await sv.get("/lang?to=en")
        _, _, page = await post_form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*everything(r_max_total="x"), ("action", "save")]
        )
        assert re.search(
            r"A whole number, in the range in brackets\. <small class=\"muted\">\(\d+–\d+\)", page
        )
        await sv.get("/lang?to=ja")
        # every pacing mistake at once, each at its field (QA: one a save, the others only after)
        three = everything(amd_false_machine_pct="abc", target_abandon_pct="5", max_lines="0")
        status, _, page = await post_form(
            sv, f"/supervisor/campaigns/{w.campaign_id}", [*three, ("action", "save")]
        )
        assert status == 422
        for name in ("amd_false_machine_pct", "target_abandon_pct", "max_lines"):
            assert f'data-testid="error-{name}"' in page, name
        # a maximum of 0 with no minimum (¥1): said as what it is, at its field
        status, _, page = await post_form(
            sv,
            f"/supervisor/campaigns/{w.campaign_id}",
            [*everything(s_unpaid_max_yen="0"), ("action", "save")],
        )
        assert (status, "下限より大きい金額を入力してください" in page) == (422, True)
        assert 'data-testid="error-s_unpaid_max_yen"' in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
    finally:
        await sv.close()


async def test_retry_settings_out_of_bounds_are_refused(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    sv = await supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        unsafe = everything(
            r_abandoned_after_minutes="0", r_busy_after_minutes="0", r_max_per_day="1000",
            r_max_total="1,000,000", r_no_answer_after_minutes="9999999999999",
        )  # fmt: skip
        status, _, page = await post_form(sv, path, [*unsafe, ("action", "save")])
        assert status == 422
        for key in ("abandoned_after", "busy_after", "no_answer_after"):
            assert f'data-testid="error-r_{key}_minutes"' in page, key
        for key in ("max_per_day", "max_total"):
            assert f'data-testid="error-r_{key}"' in page, key
        assert "放棄呼の後は72時間（4320分）以上あけてください" in page
        assert "(1〜5)" in page  # the range allowed, next to the field
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        status, _, _ = await post_form(
            sv, path, [*everything(r_abandoned_after_minutes="4320"), ("action", "save")]
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
    sv = await supervisor(product)
    try:
        _, path, _ = await post_form(
            sv, "/supervisor/campaigns", [("name", "番号なし"), ("dial_mode", "preview")]
        )
        cid = int(path.rsplit("/", 1)[1])
        assert await pool.fetchval("select caller_id from campaign where id = $1", cid) == ""
        status, _, page = await post_form(sv, path, [*everything(caller_id=""), ("action", "save")])
        assert status == 422
        assert 'data-testid="error-caller_id"' in page
        assert "実施中にするには発信者番号が必要です" in page
        assert await pool.fetchval("select status from campaign where id = $1", cid) == "draft"
        status, _, page = await post_form(
            sv, path, [*everything(caller_id="0000-00-0000"), ("action", "save")]
        )
        assert status == 422
        assert "日本の電話番号（例: 03-1234-5678）を入力してください" in page
        # a draft may wait for its number; once it has one it can be started
        assert (await post_form(sv, path, [*everything(caller_id="", status="draft"), ("action", "save")]))[
            0
        ] == 303
        assert (await post_form(sv, path, [*everything(), ("action", "save")]))[0] == 303
        row = await pool.fetchrow("select status, caller_id from campaign where id = $1", cid)
        assert tuple(row) == ("active", "0312345678")
    finally:
        await sv.close()


async def test_segment_periods_out_of_bounds_are_refused(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    sv = await supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        for action in ("preview", "save"):
            for key, value in [
                ("s_overdue_months", "99999"), ("s_overdue_months", "999999999999"),
                ("s_not_contacted_days", "3000000"),
            ]:  # fmt: skip
                status, _, page = await post_form(sv, path, [*everything(**{key: value}), ("action", action)])
                assert status == 422, (action, key, value)
                assert f'data-testid="error-{key}"' in page
                assert "入力できる範囲外です" in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        status, _, _ = await post_form(sv, path, [*everything(s_overdue_months="600"), ("action", "preview")])
        assert status == 200
        # a segment stored before the bounds existed is refused by name, not a 500 on every fill
        await pool.execute(
            """update campaign set segment = '{"overdue_months": 99999}' where id = $1""", w.campaign_id
        )
        status, _, page = await post_form(sv, path, [("action", "fill")])
        assert (status, "抽出条件を確認してください" in page) == (422, True)
        await sv.get("/lang?to=en")
        status, _, page = await post_form(sv, path, [("action", "fill")])
        assert "overdue_months must be at most 600" in page  # named on the English page
    finally:
        await sv.close()


async def test_a_name_taken_or_with_control_characters_is_refused(
    product: runtime.Running, pool: asyncpg.Pool
) -> None:
    w = await factory.world(pool)
    other = await factory.campaign(pool, "nhi", name="住民税 催告")
    sv = await supervisor(product)
    path = f"/supervisor/campaigns/{w.campaign_id}"
    try:
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        status, _, page = await post_form(sv, path, [*everything(name="住民税 催告"), ("action", "save")])
        assert status == 422  # was a 500 (UniqueViolation)
        assert 'data-testid="error-name"' in page
        assert "同じ名前のキャンペーンがあります" in page
        for bad in ("国保\x00催告", "国保\n催告", "国保\x1b[31m"):
            status, _, page = await post_form(sv, path, [*everything(name=bad), ("action", "save")])
            assert status == 422, repr(bad)
            assert "制御文字を含めずに" in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        assert await pool.fetchval("select name from campaign where id = $1", other) == "住民税 催告"
        where = (
            await post_form(sv, "/supervisor/campaigns", [("name", "新\x00規"), ("dial_mode", "preview")])
        )[1]
        assert where == "/supervisor?error=camp.err.name"
        where = (await post_form(sv, "/supervisor/campaigns", [("name", "新規"), ("dial_mode", "turbo")]))[1]
        assert where == "/supervisor?error=camp.err.choice"  # the mode was wrong, not the name
        assert await pool.fetchval("select count(*) from campaign") == 2
    finally:
        await sv.close()


async def test_ids_beyond_bigint_are_not_found(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    sv = await supervisor(product)
    op = PageClient(product.url)
    try:
        huge = "99999999999999999999"
        assert (await sv.get(f"/supervisor/campaigns/{huge}"))[0] == 404  # was a 500
        assert (await post_form(sv, f"/supervisor/campaigns/{huge}", [*everything(), ("action", "save")]))[
            0
        ] == 404
        before = await pool.fetchrow("select * from campaign where id = $1", w.campaign_id)
        path = f"/supervisor/campaigns/{w.campaign_id}"
        status, _, page = await post_form(sv, path, [*everything(), ("operators", huge), ("action", "save")])
        assert status == 422
        assert 'data-testid="error-operators"' in page
        assert await pool.fetchrow("select * from campaign where id = $1", w.campaign_id) == before
        assert await op.login("op1", factory.PASSWORD) == 200
        status, body = await op.post("/api/agent/ready", {"campaign_id": int(huge)})
        assert (status, body["error"]) == (400, "error.campaign")
    finally:
        await sv.close()
        await op.close()
