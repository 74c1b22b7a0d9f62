"""Segment rules: the pure parts by table, then each rule compiled to SQL against PostgreSQL with
households made to fall on either side of it; filling a campaign from its segment."""

from __future__ import annotations

import json
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest

from campaigns import segments
from campaigns.segments import Segment, SegmentError, Years
from dialer.store import inbound
from dialer.store import segments as store
from tests import factory

TODAY = date(2026, 11, 23)  # fiscal 2026; fiscal 2025 carried over since June 1


@pytest.mark.parametrize(
    ("today", "year"),
    [
        (date(2026, 11, 23), 2026),
        (date(2027, 3, 31), 2026),
        (date(2027, 4, 1), 2026),  # fiscal 2027 has begun, fiscal 2026 is still closing: both current
        (date(2027, 5, 31), 2026),
        (date(2027, 6, 1), 2027),  # fiscal 2026's unpaid amounts are now 滞納繰越分
    ],
)
def test_current_year_follows_the_closing_period(today: date, year: int) -> None:
    assert segments.accounting_year(today) == year


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"colour": "red"}, "colour"),
        ({"years": "last"}, "years"),
        ({"unpaid_min_yen": "10万"}, "unpaid_min_yen"),
        ({"unpaid_min_yen": 0}, "unpaid_min_yen"),  # nobody is called who owes nothing
        ({"unpaid_min_yen": 100_000, "unpaid_max_yen": 100_000}, "unpaid_max_yen"),
        ({"overdue_months": -1}, "overdue_months"),
        ({"overdue_months": 601}, "overdue_months"),  # 99999 months was a 500 ('unreachable')
        ({"overdue_months": 999_999_999_999}, "overdue_months"),
        ({"not_contacted_days": 36501}, "not_contacted_days"),
        ({"not_contacted_days": 3_000_000}, "not_contacted_days"),  # timestamp out of range in SQL
        ({"exclude_classes": ["執行\x00停止"]}, "exclude_classes"),  # PostgreSQL text holds no NUL
        ({"promise_broken": "yes"}, "promise_broken"),
        ({"debt_types": [1]}, "debt_types"),
        ({"debt_types": [""]}, "debt_types"),
        ({"order": "random"}, "order"),
        ({"limitation_years": {"nhi": 0}}, "limitation_years"),
        ({"limitation_years": {"nhi": "2"}}, "limitation_years"),
        ({"unpaid_max_yen": True}, "unpaid_max_yen"),
    ],
)
def test_bad_rules_are_named(raw: dict[str, Any], key: str) -> None:
    with pytest.raises(SegmentError) as caught:
        segments.parse(raw)
    assert caught.value.key == key


@pytest.mark.parametrize(("key", "value"), [("overdue_months", 600), ("not_contacted_days", 36500)])
def test_the_longest_periods_still_give_a_date(key: str, value: int) -> None:
    q = segments.query(segments.parse({key: value}), "nhi", date(2026, 3, 31))
    assert q.params


def test_rules_read_and_print_back() -> None:
    seg = segments.parse(
        {
            "debt_types": "nhi",
            "years": "carried_over",
            "unpaid_max_yen": 100_000,
            "limitation_years": {"kaigo": 2},
        }
    )
    assert (seg.debt_types, seg.years, seg.unpaid_min_yen) == (("nhi",), Years.CARRIED_OVER, 1)
    printed = segments.to_dict(seg)
    assert printed["limitation_years"] == {"nhi": 2, "kaigo": 2}
    assert segments.parse(printed) == seg
    assert segments.parse(None) == segments.parse({}) == segments.DEFAULT


async def _household(
    pool: asyncpg.Pool,
    no: str,
    debts: list[tuple[str, int, date, int]],  # type, fiscal year, due date, unpaid
    *,
    klass: str = "",
    phone_valid: bool = True,
    head: dict[str, Any] | None = None,
) -> int:
    hid: int = await pool.fetchval(
        "insert into household (department_id, household_no, address) values ('nhi', $1, '見本') returning id",
        no,
    )
    pid = await pool.fetchval(
        """insert into person (household_id, department_id, atena_no, name_kanji, is_head, death_date, resident_until)
           values ($1, 'nhi', $2, '見本', true, $3, $4) returning id""",
        hid,
        f"A-{no}",
        (head or {}).get("death_date"),
        (head or {}).get("resident_until"),
    )
    await pool.execute(
        "insert into phone (household_id, person_id, department_id, number, kind, valid) values ($1, $2, 'nhi', $3, 'landline', $4)",
        hid,
        pid,
        f"03{hid:08d}",
        phone_valid,
    )
    for i, (kind, year, due, unpaid) in enumerate(debts):
        await pool.execute(
            """insert into debt (household_id, person_id, department_id, debt_type, fiscal_year, installment,
                                 assessed_yen, paid_yen, due_date, delinquency_class)
               values ($1, $2, 'nhi', $3, $4, $5, $6, 0, $7, $8)""",
            hid,
            pid,
            kind,
            year,
            i + 1,
            unpaid,
            due,
            klass,
        )
    return hid


@pytest.fixture
async def town(pool: asyncpg.Pool) -> dict[str, int]:
    """Households each on one side of one rule (TODAY = 2026-11-23)."""
    w = await factory.world(pool)
    await pool.execute("delete from campaign_target")
    op = w.operator.id
    nhi_now = ("nhi", 2026, date(2026, 7, 31), 20_000)
    h: dict[str, int] = {}
    h["current-small"] = await _household(pool, "current-small", [nhi_now])
    h["carried-small"] = await _household(pool, "carried-small", [("nhi", 2025, date(2025, 8, 31), 50_000)])
    h["carried-mid"] = await _household(
        pool, "carried-mid", [("nhi", 2024, date(2024, 12, 31), 150_000), nhi_now]
    )
    h["time-barred"] = await _household(pool, "time-barred", [("nhi", 2022, date(2023, 3, 31), 80_000)])
    h["tax-old"] = await _household(pool, "tax-old", [("resident_tax", 2022, date(2023, 1, 31), 90_000)])
    h["deceased"] = await _household(pool, "deceased", [nhi_now], head={"death_date": date(2026, 9, 1)})
    h["moved-out"] = await _household(
        pool, "moved-out", [nhi_now], head={"resident_until": date(2026, 10, 1)}
    )
    h["no-phone"] = await _household(pool, "no-phone", [nhi_now], phone_valid=False)
    h["stopped"] = await _household(pool, "stopped", [nhi_now], klass="執行停止")
    for name, due in (("plan-kept", date(2026, 12, 25)), ("plan-broken", date(2026, 10, 25))):
        h[name] = await _household(pool, name, [nhi_now])
        plan = await pool.fetchval(
            """insert into installment_plan (department_id, household_id, agreed_on, total_yen)
               values ('nhi', $1, '2026-09-01', 20000) returning id""",
            h[name],
        )
        await pool.execute(
            "insert into installment_due (plan_id, seq, due_date, amount_yen) values ($1, 1, $2, 10000)",
            plan,
            due,
        )
    h["promise-broken"] = await _household(pool, "promise-broken", [nhi_now])
    await pool.execute(
        """insert into promise (department_id, household_id, operator_id, promised_on, amount_yen)
           values ('nhi', $1, $2, '2026-11-01', 20000)""",
        h["promise-broken"],
        op,
    )
    h["contacted"] = await _household(pool, "contacted", [nhi_now])
    await pool.execute(
        """insert into contact_history (department_id, household_id, at, method, content)
           values ('nhi', $1, now() - interval '3 days', 'phone_out', '本人: 月末に納付')""",
        h["contacted"],
    )
    h["silent"] = await _household(pool, "silent", [nhi_now])  # a call put through, nobody spoke
    attempt = await pool.fetchval(
        """insert into attempt (household_id, department_id, dial_mode, channel_id, outcome, operator_id,
                                originated_at, answered_at, connected_at, ended_at)
           values ($1, 'nhi', 'inbound', 'seg-silent', 'connected', $2, now() - interval '3 days',
                   now() - interval '3 days', now() - interval '3 days', now() - interval '3 days') returning id""",
        h["silent"],
        op,
    )
    disposition = await pool.fetchval(
        """insert into disposition (attempt_id, client_token, operator_id, department_id, code)
           values ($1, gen_random_uuid(), $2, 'nhi', 'no_conversation') returning id""",
        attempt,
        op,
    )
    await pool.execute(  # as dispositions._record_contact writes it: nobody reached, no 相手
        """insert into contact_history (department_id, household_id, at, method, party, content, disposition_id,
                                        source)
           values ('nhi', $1, now() - interval '3 days', 'phone_in', '', '無言・通話不成立', $2, 'outcome')""",
        h["silent"],
        disposition,
    )
    h["menu"] = await _household(pool, "menu", [nhi_now])  # called in from its number, heard the menu only
    await inbound.record_call_in(pool, "nhi", h["menu"], f"03{h['menu']:08d}", "入電(自動応答)、途中で切断")
    return h


EVERYONE = {"current-small", "carried-small", "carried-mid", "tax-old", "stopped", "plan-broken", "promise-broken", "contacted", "silent", "menu"}  # fmt: skip


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ({}, EVERYONE),  # never: time-barred, deceased, moved out, no valid phone, plan being kept
        ({"debt_types": ["resident_tax"]}, {"tax-old"}),
        ({"years": "current_only"}, EVERYONE - {"carried-small", "carried-mid", "tax-old"}),
        ({"years": "carried_over", "debt_types": ["nhi"]}, {"carried-small", "carried-mid"}),
        ({"unpaid_min_yen": 100_000, "unpaid_max_yen": 300_000}, {"carried-mid"}),  # 150,000 + 20,000
        (
            {"unpaid_max_yen": 50_000},
            EVERYONE - {"carried-small", "carried-mid", "tax-old"},
        ),  # 50,000 is not < 50,000
        ({"overdue_months": 12}, {"carried-small", "carried-mid", "tax-old"}),  # oldest due ≤ 2025-11-23
        ({"overdue_months": 24}, {"tax-old"}),  # ≤ 2024-11-23 (carried-mid's oldest is 2024-12-31)
        ({"promise_broken": True}, {"promise-broken"}),
        ({"promise_broken": False}, EVERYONE - {"promise-broken"}),
        ({"installment_broken": True}, {"plan-broken"}),
        ({"not_contacted_days": 14}, EVERYONE - {"contacted"}),
        ({"not_contacted_days": 2}, EVERYONE),
        ({"exclude_classes": ["執行停止"]}, EVERYONE - {"stopped"}),
        ({"classes": ["執行停止"]}, {"stopped"}),
        ({"limitation_years": {"nhi": 5}}, EVERYONE | {"time-barred"}),
        ({"default_limitation_years": 3}, EVERYONE - {"tax-old"}),
    ],
)
async def test_each_rule_selects_its_households(
    pool: asyncpg.Pool, town: dict[str, int], rules: dict[str, Any], expected: set[str]
) -> None:
    q = segments.query(segments.parse(rules), "nhi", TODAY)
    rows = await pool.fetch(q.sql, *q.params)
    names = {name for name, hid in town.items() if hid in {r["household_id"] for r in rows}}
    assert names == expected


async def test_another_departments_households_never_match(pool: asyncpg.Pool, town: dict[str, int]) -> None:
    await factory.department(pool, "tax")
    q = segments.query(Segment(), "tax", TODAY)
    assert await pool.fetch(q.sql, *q.params) == []


async def test_fill_adds_in_order_and_sets_aside_what_no_longer_matches(
    pool: asyncpg.Pool, town: dict[str, int]
) -> None:
    cid = await factory.campaign(pool, "nhi", "progressive", name="繰越分")
    carried = segments.parse({"years": "carried_over", "order": "unpaid"})
    seen = await store.preview(pool, cid, "nhi", carried, TODAY)
    assert (seen.households, seen.unpaid_yen, seen.in_campaign) == (3, 50_000 + 170_000 + 90_000, 0)
    filled = await store.fill(pool, cid, "nhi", carried, TODAY)
    assert (filled.matched, filled.added, filled.set_aside) == (3, 3, 0)
    rows = await pool.fetch(
        "select h.household_no from campaign_target t join household h on h.id = t.household_id "
        "where t.campaign_id = $1 and t.state = 'pending' order by t.priority",
        cid,
    )
    assert [r["household_no"] for r in rows] == ["carried-mid", "tax-old", "carried-small"]  # largest first
    assert (await store.preview(pool, cid, "nhi", carried, TODAY)).in_campaign == 3
    again = await store.fill(pool, cid, "nhi", carried, TODAY)
    assert (again.added, again.set_aside) == (0, 0)  # filling twice changes nothing

    narrower = segments.parse({"years": "carried_over", "debt_types": ["nhi"]})
    after = await store.fill(pool, cid, "nhi", narrower, TODAY)
    assert (after.matched, after.added, after.set_aside) == (2, 0, 1)
    state = await pool.fetchrow(
        "select state, last_outcome from campaign_target where campaign_id = $1 and household_id = $2",
        cid,
        town["tax-old"],
    )
    assert dict(state) == {"state": "excluded", "last_outcome": "segment"}
    back = await store.fill(pool, cid, "nhi", carried, TODAY)  # the wider rules again: it comes back
    assert (back.added, back.set_aside) == (0, 0)
    assert (
        await pool.fetchval(
            "select state from campaign_target where campaign_id = $1 and household_id = $2",
            cid,
            town["tax-old"],
        )
        == "pending"
    )


async def test_a_household_in_a_call_is_left_alone(pool: asyncpg.Pool, town: dict[str, int]) -> None:
    cid = await factory.campaign(pool, "nhi", "progressive", name="全件")
    await store.fill(pool, cid, "nhi", Segment(), TODAY)
    await pool.execute(
        "update campaign_target set state = 'leased', lease_owner = 'x', lease_expires_at = now() + interval '1 hour' "
        "where campaign_id = $1 and household_id = $2",
        cid,
        town["contacted"],
    )
    after = await store.fill(pool, cid, "nhi", segments.parse({"not_contacted_days": 14}), TODAY)
    assert after.set_aside == 0
    assert (
        await pool.fetchval(
            "select state from campaign_target where campaign_id = $1 and household_id = $2",
            cid,
            town["contacted"],
        )
        == "leased"
    )


async def test_a_promise_is_broken_once_the_follow_up_grace_has_passed(
    pool: asyncpg.Pool, town: dict[str, int]
) -> None:
    """As the campaign's follow-up counts it (a promise for the 16th is checked on the 20th with
    the default 3 days' grace): a payment still on its way is not yet a broken promise."""
    await pool.execute("update promise set promised_on = $1", TODAY - timedelta(days=3))
    broken = segments.parse({"promise_broken": True})

    async def matched(q: segments.Query) -> bool:
        return town["promise-broken"] in {r["household_id"] for r in await pool.fetch(q.sql, *q.params)}

    assert not await matched(segments.query(broken, "nhi", TODAY))  # the 3rd day of grace
    assert await matched(segments.query(broken, "nhi", TODAY + timedelta(days=1)))
    assert await matched(segments.query(broken, "nhi", TODAY, promise_grace_days=1))
    # the console's count and the fill use the campaign's own grace (retry_policy.promise_grace_minutes)
    cid = await factory.campaign(pool, "nhi", "progressive", name="約束確認")
    assert (await store.preview(pool, cid, "nhi", broken, TODAY)).households == 0
    await pool.execute(
        "update campaign set retry_policy = '{\"promise_grace_minutes\": 1440}' where id = $1", cid
    )
    assert (await store.preview(pool, cid, "nhi", broken, TODAY)).households == 1


async def test_the_sample_campaigns_select_what_their_names_say(pool: asyncpg.Pool) -> None:
    from dialer import demo

    assert await demo.seed(pool, households=300)
    rows = await pool.fetch("select id, department_id, name, segment from campaign order by id")
    read = {r["name"]: segments.parse(json.loads(r["segment"])) for r in rows}
    under, over = read["国保 滞納繰越 3万円未満"], read["国保 滞納繰越 3万円以上 プレディクティブ"]
    assert (under.years, under.unpaid_max_yen) == (segments.Years.CARRIED_OVER, 30_000)
    assert (over.years, over.unpaid_min_yen) == (segments.Years.CARRIED_OVER, 30_000)
    assert {s.years for name, s in read.items() if "現年度分" in name} == {segments.Years.CURRENT_ONLY}
    # each holds what its segment selects, as the console counts it (QA: households were spread at
    # random, and a campaign called households its name and count did not), and no household is in two
    for r in rows:
        counted = await store.preview(pool, r["id"], r["department_id"], read[r["name"]], date.today())
        held = await pool.fetchval(
            "select count(*) from campaign_target where campaign_id = $1 and state = 'pending'", r["id"]
        )
        assert counted.households == held > 0, r["name"]
    assert (
        await pool.fetchval(
            "select count(*) from (select household_id from campaign_target group by 1 having count(*) > 1) x"
        )
        == 0
    )
    # a 分納 being kept keeps its household off every campaign; a broken one may be called
    kept_on = """select count(*) from campaign_target t join installment_plan p on p.household_id = t.household_id
                 where not exists (select 1 from installment_due d where d.plan_id = p.id
                                   and d.due_date < current_date and d.paid_yen < d.amount_yen)"""
    assert await pool.fetchval("select count(*) from installment_plan") > 0
    assert await pool.fetchval(kept_on) == 0
    # a few households have no number that may be dialled: the 催告書 list has some to show
    assert await pool.fetchval("select count(*) from household where not dialable") > 0
    # each campaign has a talk script to show its operators, naming what its department collects
    scripts_of = {r["name"]: r["script"] for r in await pool.fetch("select name, script from campaign")}
    assert "国民健康保険料について、{未納額}" in scripts_of["国保 現年度分 電話催告"]
    assert "住民税について、{未納額}" in scripts_of["住民税 現年度分 電話催告"]
