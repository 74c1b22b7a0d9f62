"""Table tests of the pure parts of an import: dates, years, amounts, phones, text, mappings."""

from __future__ import annotations

import io
import random
from datetime import date

import phonenumbers
import pytest

from dialer.errors import ConfigError
from dialer.imports import mapping
from dialer.imports.csvfile import detect_encoding
from dialer.imports.dates import DateProblem, parse_date, parse_fiscal_year
from dialer.imports.phones import classify, parse_phone, parse_phones
from dialer.imports.values import ValueProblem, clean, parse_flag, parse_installment, parse_key, parse_yen


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
        ("渡\ue000辺", "渡〓辺", 1),  # 外字 (private use) replaced, counted
        ("\ue001\ue002", "〓〓", 2),
    ],
)
def test_text_is_normalised_and_gaiji_replaced(raw: str, text: str, gaiji: int) -> None:
    assert clean(raw) == (text, gaiji)


@pytest.mark.parametrize(
    ("raw", "number", "kind", "valid"),
    [
        ("03-1234-5678", "0312345678", "landline", True),
        ("0463-12-3456", "0463123456", "landline", True),
        ("03(1234)5678", "0312345678", "landline", True),
        ("090-1234-5678", "09012345678", "mobile", True),
        ("080 1234 5678", "08012345678", "mobile", True),
        ("070-1234-5678", "07012345678", "mobile", True),
        ("050-1234-5678", "05012345678", "ip", True),
        ("090ー1234ー5678", "09012345678", "mobile", True),  # 長音符 typed for a hyphen
        ("090-1234-5678(携帯)", "09012345678", "mobile", True),
        ("+81 90 1234 5678", "09012345678", "mobile", True),
        ("090-1234-567", "0901234567", "other", False),  # 10 digits for a mobile
        ("03-1234-567", "031234567", "other", False),
        ("0120-123-456", "0120123456", "other", False),  # free dial
        ("0570-123-456", "0570123456", "other", False),  # ナビダイヤル
        ("0990-123-456", "0990123456", "other", False),  # premium
        ("1234-5678", "12345678", "other", False),  # no area code
        ("不明", "", "other", False),
        ("03-1234-5678 内線12", "", "other", False),
    ],
)
def test_phone_numbers(raw: str, number: str, kind: str, valid: bool) -> None:
    p = parse_phone(clean(raw)[0])
    assert (p.number, p.kind, p.valid) == (number, kind, valid)
    assert (p.reason is None) is valid


def test_full_width_phone_after_nfkc() -> None:
    p = parse_phone(clean("０９０－１２３４－５６７８")[0])
    assert (p.number, p.valid) == ("09012345678", True)


def test_fast_classification_agrees_with_phonenumbers() -> None:
    """Our compiled JP patterns give phonenumbers' own answer, on 30,000 random numbers."""
    kinds = {
        phonenumbers.PhoneNumberType.FIXED_LINE: "landline",
        phonenumbers.PhoneNumberType.MOBILE: "mobile",
        phonenumbers.PhoneNumberType.VOIP: "ip",
        phonenumbers.PhoneNumberType.TOLL_FREE: "toll_free",
        phonenumbers.PhoneNumberType.PREMIUM_RATE: "premium",
        phonenumbers.PhoneNumberType.UAN: "uan",
        phonenumbers.PhoneNumberType.PAGER: "pager",
        phonenumbers.PhoneNumberType.PERSONAL_NUMBER: "personal",
    }
    rng = random.Random(7)
    for _ in range(30_000):
        length = rng.choice((8, 9, 10, 11))
        national = str(rng.randint(1, 9)) + "".join(rng.choice("0123456789") for _ in range(length - 1))
        expected = kinds.get(
            phonenumbers.number_type(phonenumbers.PhoneNumber(country_code=81, national_number=int(national)))
        )
        assert classify(national) == expected, national


def test_a_column_of_numbers_gets_the_verdicts_one_number_gets() -> None:
    """parse_phones (the import's column path) agrees with parse_phone on every written form."""
    rng = random.Random(8)
    forms = [
        "{0}-{1}-{2}",
        "{0}{1}{2}",
        "({0}){1}-{2}",
        "{0} {1} {2}",
        "{0}-{1}-{2}(携帯)",
        "+81 {0}-{1}-{2}",
        "{0}-{1}-{2} 内線1",
        "{0}ー{1}ー{2}",
        "",
    ]
    cells = []
    for _ in range(20_000):
        digits = str(rng.choice((0, 0, 0, 1))) + "".join(
            rng.choice("0123456789") for _ in range(rng.choice((9, 10, 11)))
        )
        a, b = rng.randint(2, 4), rng.randint(6, 8)
        cells.append(clean(rng.choice(forms).format(digits[:a], digits[a:b], digits[b:]))[0])
    whole = parse_phones(cells)
    for cell, got in zip(cells, whole, strict=True):
        one = parse_phone(cell) if cell else None
        assert got == (None if one is None else (one.raw, one.number, one.kind, one.valid, one.reason)), cell
    assert sum(1 for p in whole if p and p[3]) > 2000  # dialable numbers took the column's shortcut
    assert sum(1 for p in whole if p and not p[3]) > 2000


@pytest.mark.parametrize(
    ("data", "encoding"),
    [
        ("世帯番号,氏名\r\n1,山田\r\n".encode("cp932"), "cp932"),
        ("世帯番号,氏名\r\n1,山田\r\n".encode(), "utf-8-sig"),
        ("世帯番号,氏名\r\n1,山田\r\n".encode("utf-8-sig"), "utf-8-sig"),
        ("世帯番号,氏名\r\n1,山田\r\n".encode("utf-16"), "utf-16"),
        ("ab,cd\r\n".encode("utf-16-le"), "utf-16-le"),
        ("ab,cd\r\n".encode("utf-16-be"), "utf-16-be"),
        (b"a,b\r\n1,2\r\n", "utf-8-sig"),
        (b"a,b\r\n" + b"1,2\r\n" * 500_000 + "山田".encode("cp932"), "cp932"),  # past the first megabyte
        ("ｶﾅ,ﾃｽﾄ\r\n".encode("cp932"), "cp932"),  # half-width kana are single bytes in cp932
    ],
)
def test_encoding_detection(data: bytes, encoding: str) -> None:
    f = io.BytesIO(data)
    assert detect_encoding(f) == encoding
    assert f.tell() == 0


def test_shipped_mappings_load() -> None:
    names = mapping.shipped()
    assert {"nhi-sample", "tax-sample", "payments-sample"} <= set(names)
    for name in names:
        assert mapping.load(name).name == name


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"kind": "people"}, "kind must be one of"),
        (
            {"kind": "households", "columns": {"atena_no": "宛名番号", "name_kanji": "氏名"}},
            "household_no is required",
        ),
        ({"kind": "households", "columns": {"houshold_no": "世帯番号"}}, "houshold_no: not a field"),
        ({"kind": "households", "file": {"encoding": "euc-jp"}}, "encoding must be one of"),
        ({"kind": "households", "file": {"delimiter": "x"}}, "delimiter must be"),
        (
            {"kind": "households", "file": {"header": False}, "columns": {"household_no": "世帯番号"}},
            "position",
        ),
        (
            {"kind": "households", "columns": {"fiscal_year": "年度"}},
            "debt_type is required when fiscal_year",
        ),
        ({"kind": "households", "values": {"sex": {"1": "male"}}}, "not mapped"),
        ({"kind": "households", "columns": {"household_no": 0}}, "position"),
        ({"kind": "payments", "columns": {"atena_no": "宛名番号"}}, "amount_yen is required"),
        ({"kind": "households", "colums": {}}, "colums: unknown setting"),
    ],
)
def test_mapping_mistakes_are_all_reported(data: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        mapping.parse(data, "test.toml")


def test_unknown_mapping_name_lists_the_shipped_ones() -> None:
    with pytest.raises(ConfigError, match="nhi-sample"):
        mapping.load("no-such-layout")


def test_batch_conversion_gives_what_row_by_row_conversion_gives() -> None:
    """The column-by-column fast path and the row path agree, on good rows and on every kind of bad one."""
    from dialer.imports.csvfile import Row
    from dialer.imports.records import household_batch, household_row
    from dialer.imports.rows import Converter
    from dialer.imports.sample import NHI_HEADER, household_rows

    header = list(NHI_HEADER)
    col = {h: i for i, h in enumerate(header)}
    rng = random.Random(5)
    edits = [
        ("生年月日", "平成32年1月1日"),
        ("生年月日", "平成31年5月1日"),
        ("納期限", "令和0年4月1日"),
        ("調定額", "-5"),
        ("調定額", "１２，３４５"),
        ("未納額", "1"),
        ("氏名", ""),
        ("氏名", "渡\ue000辺"),
        ("氏名", "ﾔﾏﾀﾞ　ﾀﾛｳ"),
        ("住所", "  見本町  1-2 "),
        ("電話番号1", "03-1234"),
        ("電話番号1", "0120-123-456"),
        ("電話番号2", "０９０－１２３４－５６７８"),
        ("電話番号2", "+81 90 1234 5678"),
        ("電話番号1", "03-1234-5678(自宅)"),
        ("電話番号1", "(自宅)03\t1234 5678"),
        ("電話番号1", "03-1234-5678 内線12"),
        ("電話番号1", "0570-123-456"),
        ("携帯電話番号", "090-1234-567"),
        ("携帯電話番号", "携帯なし"),
        ("郵便番号", "1234"),
        ("性別", "X"),
        ("期別", "第3期"),
        ("期別", "13"),
        ("年度", ""),
        ("宛名番号", "a b"),
        ("口座振替", "有"),
        ("滞納区分", "\x00"),
        ("住所", "\ufffd"),
    ]
    rows = []
    for line, fields in enumerate(household_rows(600, seed=9), start=2):
        if rng.random() < 0.3:
            name, value = rng.choice(edits)
            fields[col[name]] = value
        if rng.random() < 0.02:
            fields = fields[:10]
        rows.append(Row(line, line, fields))
    conv = Converter(
        mapping.load("nhi-sample"), header, lambda ref: header.index(ref) if ref in header else None
    )
    one_by_one = [household_row(conv, r) for r in rows]
    staged, phones, problems = household_batch(conv, rows)

    def key(p: object) -> tuple[object, ...]:
        return (p.line, p.column, p.severity, p.message, p.value)  # type: ignore[attr-defined]

    assert sorted(staged) == sorted(s for s, _, _ in one_by_one if s is not None)
    assert sorted(phones) == sorted(p for _, ph, _ in one_by_one for p in ph)
    assert sorted(map(key, problems)) == sorted(key(p) for _, _, pr in one_by_one for p in pr)
    assert len(problems) > 50  # the edits did reach both paths
