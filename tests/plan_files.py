"""Installment plans files as a delinquency system writes them (the plans-sample layout) and two
residents who owe, for the plans tests (tests/test_plan_imports.py, tests/test_plan_campaigns.py;
a pytest plugin: the `owing` fixture)."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from campaigns.hours import TOKYO
from dialer.imports import mapping
from dialer.imports.run import ImportRequest, import_file
from dialer.store import imports
from tests import factory
from tests.test_imports import row, write
from tests.test_payments_import import import_export

PLANS = mapping.load("plans-sample")
HEADER = (
    "分納番号",
    "宛名番号",
    "承認日",
    "状態",
    "分納総額",
    "回",
    "納付予定日",
    "予定額",
    "納付済額",
    "納付日",
)
TODAY = datetime.now(TOKYO).date()
AGREED = TODAY - timedelta(days=60)


def instalment(**values: str) -> dict[str, str]:
    """One line of the plans-sample layout: plan P1 of A001, agreed 60 days ago, ¥10,000 an instalment."""
    base = {
        "分納番号": "P1",
        "宛名番号": "A001",
        "承認日": AGREED.isoformat(),
        "状態": "履行中",
        "分納総額": "",
        "回": "1",
        "納付予定日": (AGREED + timedelta(days=30)).isoformat(),
        "予定額": "10,000",
        "納付済額": "0",
        "納付日": "",
    }
    base.update(values)
    return base


def schedule(plan: str = "P1", atena: str = "A001", paid_to: int = 0, **values: str) -> list[dict[str, str]]:
    """A plan of three monthly instalments from 30 days after it was agreed; the first `paid_to` paid."""
    return [
        instalment(
            分納番号=plan,
            宛名番号=atena,
            回=f"第{n}回",
            納付予定日=(AGREED + timedelta(days=30 * n)).isoformat(),
            納付済額="10000" if n <= paid_to else "0",
            納付日=(AGREED + timedelta(days=30 * n - 2)).isoformat() if n <= paid_to else "",
            **values,
        )
        for n in (1, 2, 3)
    ]


def plans_file(path: Path, lines: list[dict[str, str]], encoding: str = "cp932") -> Path:
    return csv_file(path, HEADER, lines, encoding)


def csv_file(
    path: Path, header: tuple[str, ...], lines: list[dict[str, str]], encoding: str = "cp932"
) -> Path:
    """A CSV file as a delinquency system writes it: the header, then each line's cells by name."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(header)
    w.writerows([line.get(h, "") for h in header] for line in lines)
    path.write_bytes(buf.getvalue().encode(encoding))
    return path


async def import_plans(pool: asyncpg.Pool, path: Path, as_of: date | None = None) -> imports.RunInfo:
    return await import_file(pool, ImportRequest(path=path, department_id="nhi", mapping=PLANS, as_of=as_of))


async def stored(pool: asyncpg.Pool) -> dict[str, list[tuple[Any, ...]]]:
    """Every stored value of the plans (timestamps included: an unchanged plan keeps its updated_at)."""
    return {
        "plan": [tuple(r) for r in await pool.fetch("select * from installment_plan order by plan_no")],
        "due": [tuple(r) for r in await pool.fetch("select * from installment_due order by plan_id, seq")],
    }


async def in_a_campaign(pool: asyncpg.Pool, household_no: str) -> tuple[int, int]:
    """A progressive campaign with this household on its list: (campaign id, household id)."""
    cid = await factory.campaign(pool, "nhi", "progressive")
    hid: int = await pool.fetchval("select id from household where household_no = $1", household_no)
    await pool.execute(
        "insert into campaign_target (campaign_id, household_id, department_id) values ($1, $2, 'nhi')",
        cid,
        hid,
    )
    return cid, hid


@pytest.fixture
async def owing(pool: asyncpg.Pool, app_pool: asyncpg.Pool, tmp_path: Path) -> asyncpg.Pool:
    """A001 (household H001) and B001 (household H002) owe; imports run as the product (dialer_app)."""
    await factory.department(pool, "nhi")
    lines = [row(), row(世帯番号="H002", 宛名番号="B001", 電話番号1="03-2222-3333")]
    await import_export(app_pool, write(tmp_path / "d.csv", lines), TODAY - timedelta(days=1))
    return app_pool
