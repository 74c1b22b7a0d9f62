"""Japanese phone numbers as an import reads them: one at a time, a column at a time, and as phonenumbers says."""

from __future__ import annotations

import random

import phonenumbers
import pytest

from dialer.imports.phones import classify, parse_phone, parse_phones
from dialer.imports.values import clean


@pytest.mark.parametrize(
    ("raw", "number", "kind", "valid"),
    [
        ("03-1234-5678", "0312345678", "landline", True),
        ("0463-12-3456", "0463123456", "landline", True),
        ("03(1234)5678", "0312345678", "landline", True),
        ("090-1234-5678", "09012345678", "mobile", True),
        ("060-1234-5678", "06012345678", "mobile", True),  # the mobile range added after 070
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
        ("+1 212 555 1234", "", "other", False),  # abroad: not called
    ],
)
def test_phone_numbers(raw: str, number: str, kind: str, valid: bool) -> None:
    p = parse_phone(clean(raw)[0])
    assert (p.number, p.kind, p.valid) == (number, kind, valid)
    assert (p.reason is None) is valid


def test_a_number_abroad_says_so() -> None:
    assert parse_phone(clean("+1 212 555 1234")[0]).reason == "海外の電話番号です(架電しません)"
    assert parse_phone(clean("＋４４ ２０ ７９４６ ０９５８")[0]).reason == "海外の電話番号です(架電しません)"


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
