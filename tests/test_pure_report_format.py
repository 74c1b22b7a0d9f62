"""The report's cells as the page, the terminal and the CSV show them (dialer/report_format.py)."""

from __future__ import annotations

import pytest

from dialer.report_format import COLUMNS, cells
from dialer.store.reports import Row


def _row(key: str | None, talk_s: float, calls: int = 1200) -> Row:
    return Row(key, calls, 3, 2, 2, 1, 12_000, 0, 1, talk_s)


@pytest.mark.parametrize(
    ("talk_s", "shown", "csv"),
    [
        (26, "0.4", "0.4"),  # (whole minutes: 0 for each of two operators, 1 for both: QA)
        (52, "0.9", "0.9"),
        (0, "0.0", "0.0"),
        (3600 * 30 + 6, "1,800.1", "1800.1"),
    ],
)
def test_talk_minutes_have_one_decimal(talk_s: float, shown: str, csv: str) -> None:
    assert cells(_row("op1", talk_s), "operator", shown=True)[-1] == shown
    assert cells(_row("op1", talk_s), "operator")[-1] == csv


@pytest.mark.parametrize(
    ("key", "by", "lang", "label"),
    [(None, "day", "ja", "合計"), (None, "day", "en", "total"), ("", "operator", "ja", "(オペレーター未接続)"),
     ("", "campaign", "en", "—"), ("2026-12-07", "day", "en", "2026-12-07")],
)  # fmt: skip
def test_the_first_cell_names_the_row(key: str | None, by: str, lang: str, label: str) -> None:
    assert cells(_row(key, 60), by, lang, shown=True)[0] == label
    assert cells(_row(key, 60), by, lang, shown=True)[1] == "1,200"  # (thousands separated on the page)
    assert cells(_row(key, 60), by, lang)[1] == "1200"  # (plain for Excel)


def test_every_row_has_a_cell_per_column_headed_in_each_language() -> None:
    assert COLUMNS["en"][0] == "group"  # (QA: "by" read as a stray word)
    assert all(len(cells(_row("x", 1), "day", lang)) == len(COLUMNS[lang]) for lang in COLUMNS)
