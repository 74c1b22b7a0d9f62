"""Fictitious exports in the shipped sample layouts (nhi-sample, payments-sample).

Used by the demo, the tests and the import benchmark. The people are made up (見本市, "sample
city"); their numbers are valid in form and dialled only through the simulated PBX. Files are
written as they are generated, so a million households take no more memory than ten.
"""

from __future__ import annotations

import csv
import random
from collections.abc import Iterator
from dataclasses import astuple, dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from campaigns.hours import TOKYO
from dialer.jpformat import ERAS

NHI_HEADER = (
    "世帯番号",
    "宛名番号",
    "氏名",
    "カナ氏名",
    "生年月日",
    "性別",
    "続柄",
    "死亡日",
    "区民となった日",
    "区民でなくなった日",
    "郵便番号",
    "住所",
    "電話番号1",
    "電話番号2",
    "携帯電話番号",
    "年度",
    "相当年度",
    "期別",
    "通知書番号",
    "調定額",
    "収納額",
    "未納額",
    "納期限",
    "延滞金",
    "最終納付日",
    "口座振替",
    "滞納区分",
)
PAYMENTS_HEADER = ("収納番号", "宛名番号", "年度", "相当年度", "期別", "収納額", "収納日", "収納区分")

SURNAMES = (
    ("佐藤", "ｻﾄｳ"),
    ("鈴木", "ｽｽﾞｷ"),
    ("高橋", "ﾀｶﾊｼ"),
    ("田中", "ﾀﾅｶ"),
    ("伊藤", "ｲﾄｳ"),
    ("渡辺", "ﾜﾀﾅﾍﾞ"),
    ("山本", "ﾔﾏﾓﾄ"),
    ("中村", "ﾅｶﾑﾗ"),
    ("小林", "ｺﾊﾞﾔｼ"),
    ("加藤", "ｶﾄｳ"),
)
GIVEN = (("翔太", "ｼｮｳﾀ"), ("美咲", "ﾐｻｷ"), ("健一", "ｹﾝｲﾁ"), ("陽菜", "ﾋﾅ"), ("誠", "ﾏｺﾄ"), ("恵子", "ｹｲｺ"))
TOWNS = ("見本町", "試験台", "架空が丘", "模擬野", "仮設本町", "例示川")


@dataclass(frozen=True)
class Installment:
    fiscal_year: int
    installment: int
    due: date


def overdue_installments(today: date, *, per_year: int = 10) -> list[Installment]:
    """The instalments (期別) of the last two fiscal years that are past due on `today` and still far
    from their limitation period (保険料 2 years): due between 700 and 14 days ago, oldest first.

    Sample data follows the calendar, so a demo started years from now still shows debts a
    campaign would call about (fixed years would all be time-barred by then). Instalment k of
    fiscal year Y is due on 30 June + 31·(k−1) days, never after 31 March of Y+1.
    """
    fy = today.year if today.month >= 4 else today.year - 1
    found = []
    for year in (fy - 2, fy - 1, fy):
        for k in range(1, per_year + 1):
            due = min(date(year, 6, 30) + timedelta(days=31 * (k - 1)), date(year + 1, 3, 31))
            if today - timedelta(days=700) < due < today - timedelta(days=14):
                found.append(Installment(year, k, due))
    return found


def wareki_short(d: date) -> str:
    """R05.07.31 / H30.04.01 / S55.04.01: the commonest 和暦 form in exports."""
    for era in ERAS:
        if d >= era.start:
            return f"{era.letter}{d.year - era.start.year + 1:02d}.{d.month:02d}.{d.day:02d}"
    return d.strftime("%Y/%m/%d")


def household_rows(
    count: int, seed: int = 1, start: int = 1, *, today: date | None = None
) -> Iterator[list[str]]:
    """Rows in the nhi-sample layout: each household a head and (for one in five) a spouse, 1–3 debts
    overdue on `today` (default: today in Tokyo; see `overdue_installments`)."""
    rng = random.Random(seed)
    recent = overdue_installments(today or datetime.now(TOKYO).date())
    for i in range(start, start + count):
        hh = f"{i:09d}"
        surname = rng.choice(SURNAMES)
        address = f"見本県見本市{rng.choice(TOWNS)}{rng.randint(1, 5)}丁目{rng.randint(1, 30)}番{rng.randint(1, 20)}号"
        postal = f"{rng.randint(100, 999)}-{rng.randint(0, 9999):04d}"
        landline = f"03-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}" if rng.random() < 0.6 else ""
        mobile = f"090-{rng.randint(1000, 9999)}-{rng.randint(0, 9999):04d}" if rng.random() < 0.7 else ""
        members = [("世帯主", 1)] + ([("妻", 2)] if rng.random() < 0.2 else [])
        for n, (relationship, sex) in enumerate(members):
            given = rng.choice(GIVEN)
            atena = f"{i:09d}{n}"
            birth = date(1950, 1, 1) + timedelta(days=rng.randint(0, 365 * 50))
            debts = 1 + (rng.random() < 0.3) + (rng.random() < 0.1) if n == 0 else 1
            for k in range(debts):
                fy, inst, due = astuple(recent[-1 - 3 * k])
                assessed = rng.randint(3, 60) * 1000
                paid = 0 if rng.random() < 0.8 else assessed // 2
                yield [
                    hh,
                    atena,
                    f"{surname[0]}　{given[0]}",
                    f"{surname[1]} {given[1]}",
                    wareki_short(birth),
                    str(sex),
                    relationship,
                    "",
                    "",
                    "",
                    postal,
                    address,
                    landline,
                    "",
                    mobile if n == 0 else "",
                    f"R{fy - 2018:02d}",
                    str(fy),
                    str(inst),
                    f"N{fy}{i:09d}{n}{inst:02d}",
                    f"{assessed:,}",
                    str(paid),
                    str(assessed - paid),
                    wareki_short(due),
                    "0",
                    "",
                    "0",
                    "A",
                ]


def write_households(
    path: Path, count: int, *, encoding: str = "cp932", seed: int = 1, today: date | None = None
) -> int:
    """Write a sample export of `count` households; returns the number of data rows."""
    with open(path, "w", encoding=encoding, newline="") as f:
        return _write(f, NHI_HEADER, household_rows(count, seed, today=today))


def _write(f: TextIO, header: tuple[str, ...], rows: Iterator[list[str]]) -> int:
    w = csv.writer(f, lineterminator="\r\n")
    w.writerow(header)
    n = 0
    for row in rows:
        w.writerow(row)
        n += 1
    return n
