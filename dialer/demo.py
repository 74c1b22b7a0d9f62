"""`dialer demo`: sample data and the simulated PBX, then the product as `dialer run` runs it.

The sample households are fictitious (見本市, a "sample city"; names drawn from common surnames)
and are only ever dialled through the simulated PBX: the demo refuses to start with AMI_HOST set.
"""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import astuple, dataclass
from datetime import date, datetime, timedelta

import asyncpg

from campaigns import scripts, segments
from campaigns.hours import TOKYO
from dialer import logs
from dialer.imports.sample import overdue_installments
from dialer.store import segments as segment_store
from dialer.store import users
from dialer.store.db import Connection

log = logs.get("dialer.demo")


@dataclass(frozen=True)
class DemoUser:
    login: str
    password: str
    display_name: str
    role: str
    department_id: str | None
    extension: str | None


DEMO_USERS = (
    DemoUser("op1", "demo-op1-pass", "山田 花子", "operator", "nhi", "1001"),
    DemoUser("op2", "demo-op2-pass", "佐藤 一郎", "operator", "nhi", "1002"),
    DemoUser("op3", "demo-op3-pass", "鈴木 美咲", "operator", "tax", "1003"),
    DemoUser("sv1", "demo-sv1-pass", "高橋 健 (SV)", "supervisor", "nhi", "2001"),  # a phone: to listen in
    DemoUser("sv2", "demo-sv2-pass", "伊藤 恵 (SV)", "supervisor", "tax", "2002"),
    DemoUser("staff1", "demo-staff1-pass", "中村 修 (職員)", "staff", "nhi", None),
    DemoUser("admin", "demo-admin-pass", "管理者", "admin", None, None),
)

_SURNAMES = [
    ("佐藤", "サトウ"),
    ("鈴木", "スズキ"),
    ("高橋", "タカハシ"),
    ("田中", "タナカ"),
    ("伊藤", "イトウ"),
    ("渡辺", "ワタナベ"),
    ("山本", "ヤマモト"),
    ("中村", "ナカムラ"),
    ("小林", "コバヤシ"),
    ("加藤", "カトウ"),
    ("吉田", "ヨシダ"),
    ("山田", "ヤマダ"),
    ("佐々木", "ササキ"),
    ("山口", "ヤマグチ"),
    ("松本", "マツモト"),
    ("井上", "イノウエ"),
    ("木村", "キムラ"),
    ("林", "ハヤシ"),
    ("斎藤", "サイトウ"),
    ("清水", "シミズ"),
]
_GIVEN = [
    ("翔太", "ショウタ"),
    ("大輔", "ダイスケ"),
    ("健一", "ケンイチ"),
    ("誠", "マコト"),
    ("浩二", "コウジ"),
    ("陽菜", "ヒナ"),
    ("美咲", "ミサキ"),
    ("由美子", "ユミコ"),
    ("恵子", "ケイコ"),
    ("さくら", "サクラ"),
    ("蓮", "レン"),
    ("結衣", "ユイ"),
    ("隆", "タカシ"),
    ("直美", "ナオミ"),
    ("修", "オサム"),
]
_TOWNS = ["見本町", "試験台", "架空が丘", "模擬野", "仮設本町", "例示川"]


async def seed(pool: asyncpg.Pool, households: int = 300, rng_seed: int = 2026) -> bool:
    """Load the sample data set once; False if the database already has departments (then only the
    demo users a newer version added are created)."""
    if await pool.fetchval("select count(*) from department"):
        known = {r["login"] for r in await pool.fetch("select login from app_user")}
        for u in DEMO_USERS:
            if u.login not in known and (
                u.department_id is None or await _has_department(pool, u.department_id)
            ):
                await users.create_user(
                    pool, login=u.login, password=u.password, display_name=u.display_name, role=u.role,
                    department_id=u.department_id, extension=u.extension,
                )  # fmt: skip
        return False
    rng = random.Random(rng_seed)
    async with pool.acquire() as conn, conn.transaction():
        await conn.executemany(
            "insert into department (id, name_ja, name_en, callback_number) values ($1, $2, $3, $4)",
            [
                ("nhi", "国民健康保険課", "National Health Insurance", "0312340001"),
                ("tax", "税務課", "Tax", "0312340002"),
            ],
        )
        for u in DEMO_USERS:
            await users.create_user(
                conn,
                login=u.login,
                password=u.password,
                display_name=u.display_name,
                role=u.role,
                department_id=u.department_id,
                extension=u.extension,
            )
        campaigns = [
            ("nhi", "国保 現年度分 電話催告", "progressive", CURRENT),
            ("nhi", "国保 滞納繰越 3万円未満", "preview", CARRIED_UNDER_30K),
            ("nhi", "国保 滞納繰越 3万円以上 プレディクティブ", "predictive", CARRIED_FROM_30K),
            ("tax", "住民税 現年度分 電話催告", "progressive", CURRENT),
        ]
        for i in range(households):
            dept = "nhi" if i % 5 < 3 else "tax"
            hid = await _household(conn, rng, dept, i)
            if dept == "nhi" and i % 20 == 0:  # now and then a 分納, kept or broken
                await _plan(conn, hid, kept=i % 40 == 0)
            elif dept == "nhi" and i % 20 == 10 and i < 100:  # and a few cases waiting for staff
                await conn.execute(
                    """insert into handover (department_id, household_id, operator_id, reason, created_at)
                       select 'nhi', $1, id, 'installment', now() - interval '1 day' from app_user where login = 'op1'""",
                    hid,
                )
        # each campaign holds the households its segment selects, as 保存済みの条件で登録する
        # fills it (QA: spread at random, a campaign called households its name and count did not)
        today = datetime.now(TOKYO).date()
        for dept, name, mode, segment in campaigns:
            cid = await _campaign(conn, dept, name, mode, segment)
            await segment_store.fill(conn, cid, dept, segments.parse(segment), today)
    log.info("demo.seeded", households=households)
    return True


# The segments the sample campaigns' names say (QA: 「10万円未満」 had none); no household is in two.
CURRENT: dict[str, object] = {"years": "current_only"}
CARRIED_UNDER_30K: dict[str, object] = {"years": "carried_over", "unpaid_max_yen": 30_000}
CARRIED_FROM_30K: dict[str, object] = {"years": "carried_over", "unpaid_min_yen": 30_000}


# A talk script as 納付勧奨 call centres write them, for the sample campaigns (docs/supervisor.md).
SCRIPT = """お忙しいところ恐れ入ります。見本市役所 {課名}の{担当者}と申します。
{氏名}様はいらっしゃいますか。

（ご本人でなければ）改めてお電話いたします。用件は申し上げずに「本人以外応答」を記録します。
（ご本人と確認できたら: 氏名・住所・生年月日をご本人に述べていただく）
{税目}について、{未納額}のお支払いが確認できておりません。
お支払いのご予定をお伺いできますでしょうか。

・納付のご予定 → 日付と金額を確認して「納付約束」
・一度に納めるのが難しい → 「分納相談希望」（担当職員からご連絡します）
・お支払い済み → 納付日と場所を伺い、確認のうえご連絡すると伝える

ご不明な点は {折り返し番号} までお電話ください。失礼いたします。"""


async def _campaign(conn: Connection, dept: str, name: str, mode: str, segment: dict[str, object]) -> int:
    cid: int = await conn.fetchval(
        """insert into campaign (department_id, name, dial_mode, caller_id, segment, script)
           values ($1, $2, $3, $4, $5::jsonb, $6) returning id""",
        dept,
        name,
        mode,
        "0312340001" if dept == "nhi" else "0312340002",
        json.dumps(segment),
        scripts.clean(SCRIPT.replace("{税目}", "国民健康保険料" if dept == "nhi" else "住民税")),
    )
    return cid


async def _household(conn: Connection, rng: random.Random, dept: str, i: int) -> int:
    town = rng.choice(_TOWNS)
    address = f"見本県見本市{town}{rng.randint(1, 5)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
    hid: int = await conn.fetchval(
        "insert into household (department_id, household_no, postal_code, address) values ($1, $2, $3, $4) returning id",
        dept,
        f"{dept[0].upper()}{100000 + i}",
        f"999-{rng.randint(0, 9999):04d}",
        address,
    )
    surname = rng.choice(_SURNAMES)
    members = rng.randint(1, 3)
    head_id = 0
    for m in range(members):
        given = rng.choice(_GIVEN)
        born = (
            date(1945, 1, 1) + timedelta(days=rng.randint(0, 365 * 55))
            if m == 0
            else date(1960, 1, 1) + timedelta(days=rng.randint(0, 365 * 60))
        )
        pid = await conn.fetchval(
            """insert into person (household_id, department_id, atena_no, name_kanji, name_kana, birth_date, is_head)
               values ($1, $2, $3, $4, $5, $6, $7) returning id""",
            hid,
            dept,
            f"{dept}-{i:06d}-{m}",
            f"{surname[0]} {given[0]}",
            f"{surname[1]} {given[1]}",
            born,
            m == 0,
        )
        head_id = head_id or pid
    if i % 25 == 7:  # now and then a number written wrong in the register: kept, never dialled (催告書)
        raw = f"03-{rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
        await conn.execute(
            """insert into phone (household_id, person_id, department_id, number, raw, kind, source, valid,
                                  invalid_reason)
               values ($1, $2, $3, $4, $5, 'other', 'sample', false, '固定電話は市外局番から10桁です(9桁)')""",
            hid, head_id, dept, raw.replace("-", ""), raw,
        )  # fmt: skip
    else:
        mobile = rng.random() < 0.5
        number = (
            f"0{rng.choice('789')}0{rng.randint(1000, 9999)}{rng.randint(1000, 9999)}"
            if mobile
            else f"03{rng.randint(5000, 6999)}{rng.randint(1000, 9999)}"
        )
        await conn.execute(
            """insert into phone (household_id, person_id, department_id, number, kind, source)
               values ($1, $2, $3, $4, $5, 'sample')""",
            hid, head_id, dept, number, "mobile" if mobile else "landline",
        )  # fmt: skip
    due_now = overdue_installments(datetime.now(TOKYO).date(), per_year=10 if dept == "nhi" else 4)
    for year, installment, due in (astuple(d) for d in rng.sample(due_now, rng.randint(1, 3))):
        assessed = rng.randint(5, 40) * 1000 if dept == "nhi" else rng.randint(10, 80) * 1000
        await conn.execute(
            """insert into debt (household_id, person_id, department_id, debt_type, fiscal_year, assessed_year,
                                 installment, assessed_yen, paid_yen, due_date)
               values ($1, $2, $3, $4, $5, $5, $6, $7, $8, $9)""",
            hid,
            head_id,
            dept,
            "nhi" if dept == "nhi" else "resident_tax",
            year,
            installment,
            assessed,
            rng.choice((0, 0, 0, assessed // 2)),
            due,
        )
    return hid


async def _plan(conn: Connection, hid: int, kept: bool) -> None:
    """A 分納 agreed 100 days ago: six monthly instalments of ¥5,000, those due paid when kept (its
    household is then in no segment), the first two unpaid when broken (a segment may call it)."""
    today = datetime.now(TOKYO).date()
    agreed = today - timedelta(days=100)
    plan_id = await conn.fetchval(
        """insert into installment_plan (department_id, household_id, person_id, status, agreed_on, total_yen, plan_no,
                                         reported_as_of)
           select 'nhi', $1, (select id from person where household_id = $1 and is_head), 'active', $2, 30000,
                  'DEMO-' || $1, $3
           returning id""",
        hid, agreed, today,
    )  # fmt: skip
    for n in range(1, 7):
        due = agreed + timedelta(days=30 * n)
        paid = 5000 if kept and due < today else 0
        await conn.execute(
            "insert into installment_due (plan_id, seq, due_date, amount_yen, paid_yen) values ($1, $2, $3, 5000, $4)",
            plan_id, n, due, paid,
        )  # fmt: skip


async def _has_department(pool: asyncpg.Pool, department_id: str) -> bool:
    return bool(await pool.fetchval("select exists (select 1 from department where id = $1)", department_id))


def logins_banner(url: str, ami: str) -> str:
    lines = [
        "",
        "  電話催告システム demo — everything here is simulated; no real telephone is ever dialled.",
        f"  Open {url}   (simulated PBX: AMI on {ami})",
        "",
        "  login     password          role        department  extension",
    ]
    for u in DEMO_USERS:
        lines.append(
            f"  {u.login:<9} {u.password:<17} {u.role:<11} {u.department_id or '(all)':<11} {u.extension or ''}"
        )
    lines += ["", "  Ctrl-C stops everything (the embedded PostgreSQL too).", ""]
    return "\n".join(lines)


async def residents_call_in(
    pool: asyncpg.Pool,
    call_in: Callable[[str, str, str], object],
    every_s: tuple[float, float],
    rng_seed: int = 7,
) -> None:
    """Now and then a sample resident calls a department's line back and asks for a person (menu
    key 2; sometimes 1, the payment information, first): inbound calls to practise on. Runs until
    cancelled; one caller in five is a number the sample data does not know."""
    rng = random.Random(rng_seed)
    while True:
        await asyncio.sleep(rng.uniform(*every_s))
        row = await pool.fetchrow(
            """select d.callback_number, p.number from phone p join department d on d.id = p.department_id
               where d.callback_number <> '' order by random() limit 1"""
        )
        if row is None:
            continue
        caller = (
            row["number"] if rng.random() < 0.8 else f"0{rng.randint(3, 9)}{rng.randint(10**7, 10**8 - 1)}"
        )
        call_in(row["callback_number"], caller, rng.choice(("2", "2", "12")))
