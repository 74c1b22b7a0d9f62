"""Table tests of the pure parts of an import: dates, years, amounts, installments, flags, keys, text."""

from __future__ import annotations

from datetime import date, time

import pytest

from dialer.imports.dates import DateProblem, parse_date, parse_fiscal_year
from dialer.imports.rows import _postal, _when
from dialer.imports.values import (
    ValueProblem,
    Warned,
    clean,
    parse_contact_method,
    parse_flag,
    parse_installment,
    parse_key,
    parse_time,
    parse_yen,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2023-04-01", date(2023, 4, 1)),
        ("2023/4/1", date(2023, 4, 1)),
        ("2023.04.01", date(2023, 4, 1)),
        ("20230401", date(2023, 4, 1)),
        ("2023年4月1日", date(2023, 4, 1)),
        ("R05.04.01", date(2023, 4, 1)),
        ("R5.4.1", date(2023, 4, 1)),
        ("r5/4/1", date(2023, 4, 1)),
        ("R050401", date(2023, 4, 1)),
        ("令和5年4月1日", date(2023, 4, 1)),
        ("令和 5年 4月 1日", date(2023, 4, 1)),
        ("令5.4.1", date(2023, 4, 1)),
        ("令和元年5月1日", date(2019, 5, 1)),
        ("R01.05.01", date(2019, 5, 1)),
        ("平成31年4月30日", date(2019, 4, 30)),
        ("H31.04.30", date(2019, 4, 30)),
        ("H01.01.08", date(1989, 1, 8)),
        ("昭和64年1月7日", date(1989, 1, 7)),
        ("S55.04.01", date(1980, 4, 1)),
        ("大正15年12月24日", date(1926, 12, 24)),
        ("5050401", date(2023, 4, 1)),  # era code 5 = 令和
        ("4310430", date(2019, 4, 30)),  # era code 4 = 平成
        ("3550401", date(1980, 4, 1)),
        ("R06.02.29", date(2024, 2, 29)),  # a leap year
        ("1868-01-01", date(1868, 1, 1)),  # the first and last dates read
        ("2200-12-31", date(2200, 12, 31)),
    ],
)
def test_dates_in_the_forms_exports_use(text: str, expected: date) -> None:
    parsed = parse_date(clean(text)[0])
    assert parsed.value == expected
    assert parsed.warning is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("平成31年5月1日", date(2019, 5, 1)),  # printed by systems not yet updated to 令和
        ("H31.12.31", date(2019, 12, 31)),
        ("昭和64年1月8日", date(1989, 1, 8)),
    ],
)
def test_old_era_past_its_end_within_the_same_year_is_read_with_a_warning(text: str, expected: date) -> None:
    parsed = parse_date(text)
    assert parsed.value == expected
    assert parsed.warning is not None
    assert "終了後" in parsed.warning


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("令和0年4月1日", "令和0年"),
        ("R00.04.01", "令和0年"),
        ("平成32年1月1日", "平成32年はありません"),
        ("H32.01.01", "平成32年はありません"),
        ("昭和65年1月1日", "昭和65年はありません"),
        ("令和1年4月30日", "始まる前"),
        ("平成1年1月7日", "始まる前"),
        ("R05.02.29", "存在しない日付"),
        ("2023-02-30", "存在しない日付"),
        ("2023-13-01", "存在しない日付"),
        ("0001-01-01", "範囲外"),  # a placeholder for "none" (asyncpg would store -infinity)
        ("9999-12-31", "範囲外"),
        ("99991231", "範囲外"),
        ("1867-12-31", "範囲外"),
        ("2201-01-01", "範囲外"),
        ("R05.04", "読めません"),
        ("昨日", "読めません"),
        ("X05.04.01", "読めません"),
        ("6050401", "読めません"),  # no era 6
        ("", "読めません"),
    ],
)
def test_impossible_dates_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(DateProblem, match=reason):
        parse_date(text)


@pytest.mark.parametrize(
    ("text", "year"),
    [
        ("2023", 2023),
        ("2023年度", 2023),
        ("R5", 2023),
        ("R05", 2023),
        ("令和5年度", 2023),
        ("令和元年度", 2019),
        ("平成31年度", 2019),  # April 2019 was still 平成
        ("H30", 2018),
        ("505", 2023),  # era code + 2 digits
        ("430", 2018),
    ],
)
def test_fiscal_years(text: str, year: int) -> None:
    assert parse_fiscal_year(clean(text)[0]) == year


@pytest.mark.parametrize(
    "text", ["令和0年度", "平成32年度", "H32", "R0", "1988", "2201", "二〇二三", "5", ""]
)
def test_impossible_fiscal_years(text: str) -> None:
    with pytest.raises(DateProblem):
        parse_fiscal_year(text)


@pytest.mark.parametrize(
    ("text", "yen"),
    [
        ("12345", 12345),
        ("12,345", 12345),
        ("¥12,345", 12345),
        ("12345円", 12345),
        ("0", 0),
        ("1,234,567", 1234567),
    ],
)
def test_amounts(text: str, yen: int) -> None:
    assert parse_yen(clean(text)[0]) == yen


def test_full_width_amounts_after_nfkc() -> None:
    assert parse_yen(clean("１２，３４５")[0]) == 12345
    assert parse_yen(clean("￥１２，３４５")[0]) == 12345


@pytest.mark.parametrize("text", ["-100", "12.5", "1,23", "abc", "12 345 678 901 234", "1e5"])
def test_bad_amounts(text: str) -> None:
    with pytest.raises(ValueProblem):
        parse_yen(text)


@pytest.mark.parametrize(
    ("text", "n"), [("3", 3), ("03", 3), ("第3期", 3), ("3期", 3), ("随時", 0), ("12", 12)]
)
def test_installments(text: str, n: int) -> None:
    assert parse_installment(text) == n


@pytest.mark.parametrize("text", ["13", "第", "三期", "-1"])
def test_bad_installments(text: str) -> None:
    with pytest.raises(ValueProblem):
        parse_installment(text)


@pytest.mark.parametrize(
    ("text", "flag"), [("1", True), ("有", True), ("○", True), ("0", False), ("無", False), ("なし", False)]
)
def test_flags(text: str, flag: bool) -> None:
    assert parse_flag(text) is flag


def test_keys_keep_leading_zeros_and_refuse_odd_text() -> None:
    assert parse_key("000123") == "000123"
    assert parse_key(clean("０００１２３")[0]) == "000123"
    with pytest.raises(ValueProblem):
        parse_key("12 34")
    with pytest.raises(ValueProblem):
        parse_key("x" * 33)


@pytest.mark.parametrize(
    ("raw", "text", "gaiji"),
    [
        ("ﾔﾏﾀﾞ ﾀﾛｳ", "ヤマダ タロウ", 0),  # half-width kana become full-width; kana stay kana
        ("山田　太郎", "山田 太郎", 0),  # ideographic space
        ("  山田   太郎 ", "山田 太郎", 0),
        ("１２３ＡＢＣ", "123ABC", 0),
        ("髙橋", "髙橋", 0),  # an official variant kanji is kept as it is
        ("\ufa10本 ﾀﾛｳ", "\ufa10本 タロウ", 0),  # 塚 (IBM extension, a compatibility ideograph): kept
        ("\ufa19田 １", "\ufa19田 1", 0),  # 神: kept; the rest of the cell still normalised
        ("\U0002f80f", "\U0002f80f", 0),  # a supplementary compatibility ideograph
        ("渡\ue000辺", "渡〓辺", 1),  # 外字 (private use) replaced, counted
        ("\ue001\ue002", "〓〓", 2),
    ],
)
def test_text_is_normalised_and_gaiji_replaced(raw: str, text: str, gaiji: int) -> None:
    assert clean(raw) == (text, gaiji)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("9:05", time(9, 5)),
        ("09:05:30", time(9, 5, 30)),
        ("9時5分", time(9, 5)),
        ("9時", time(9, 0)),
        ("10時30分15秒", time(10, 30, 15)),
        ("0905", time(9, 5)),
        ("090530", time(9, 5, 30)),
        ("23:59", time(23, 59)),
        ("10:30:00.000", time(10, 30)),  # as SQL Server and Oracle exports write it
        ("10:30:00+09:00", time(10, 30)),
        ("午後3時30分", time(15, 30)),
        ("午前9時", time(9, 0)),
        ("午前12時", time(0, 0)),
        ("午後12時", time(12, 0)),
        ("3:30PM", time(15, 30)),
        ("9:05 am", time(9, 5)),
    ],
)
def test_times_of_day(text: str, expected: time) -> None:
    assert parse_time(text) == expected


@pytest.mark.parametrize("text", ["24:00", "9:5", "9", "25時", "12:60", "午後13時", "1260", "10:30+05:00"])
def test_impossible_times(text: str) -> None:
    with pytest.raises(ValueProblem, match="時刻"):
        parse_time(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026/12/01 10:30", (date(2026, 12, 1), time(10, 30))),
        ("R08.12.01 10時30分", (date(2026, 12, 1), time(10, 30))),
        ("2026-12-01T09:05:00", (date(2026, 12, 1), time(9, 5))),
        ("2026-12-01 10:30:00.000", (date(2026, 12, 1), time(10, 30))),
        ("2026/12/01 午後3時", (date(2026, 12, 1), time(15, 0))),
        ("令和8年12月1日", (date(2026, 12, 1), None)),
    ],
)
def test_a_date_with_or_without_its_time(text: str, expected: tuple[date, time | None]) -> None:
    assert _when(text) == expected


def test_a_date_with_a_time_that_cannot_be_read_is_refused_and_a_placeholder_date_is_empty() -> None:
    with pytest.raises(ValueProblem, match="時刻"):
        _when("2026/12/01 25:00")
    with pytest.raises(Warned) as placeholder:
        _when("0001-01-01")
    assert placeholder.value.value is None


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("電話", "phone_out"),
        (clean("電話（架電）")[0], "phone_out"),
        ("TEL", "phone_out"),
        ("入電", "phone_in"),
        ("臨戸", "visit"),
        ("窓口", "counter"),
        ("来庁", "counter"),
        ("催告書", "letter"),
        ("その他", "other"),
        ("visit", "visit"),
    ],
)
def test_contact_methods_as_delinquency_systems_word_them(text: str, method: str) -> None:
    assert parse_contact_method(text) == method


def test_an_unknown_contact_method_says_how_to_translate_it() -> None:
    with pytest.raises(ValueProblem, match=r"\[values.method\]"):
        parse_contact_method("FAX")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1230001", "123-0001"),
        ("123-0001", "123-0001"),
        ("〒123-0001", "123-0001"),
        (clean("１２３−０００１")[0], "123-0001"),  # a minus sign (U+2212), full-width digits (QA: refused)
        (clean("１２３ー０００１")[0], "123-0001"),  # the long vowel mark typed for a dash
        ("123 0001", "123-0001"),
    ],
)
def test_postal_codes_as_they_are_written(text: str, expected: str) -> None:
    assert _postal(text) == expected


@pytest.mark.parametrize("text", ["123-456", "12300011", "abc-defg", "123/0001"])
def test_postal_codes_that_are_not_seven_digits_are_warned_about(text: str) -> None:
    with pytest.raises(Warned, match="郵便番号は7桁です"):
        _postal(text)
