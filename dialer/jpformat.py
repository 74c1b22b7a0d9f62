"""Japanese formats: 和暦 dates and fiscal years, yen, phone numbers in national format. Pure."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

import phonenumbers


@dataclass(frozen=True)
class Era:
    name: str
    letter: str  # R, H, S, T, M as exports abbreviate it
    code: str  # the era code of municipal systems (5 令和 … 1 明治)
    start: date
    end: date | None  # the last day; None for the current era


ERAS = (
    Era("令和", "R", "5", date(2019, 5, 1), None),
    Era("平成", "H", "4", date(1989, 1, 8), date(2019, 4, 30)),
    Era("昭和", "S", "3", date(1926, 12, 25), date(1989, 1, 7)),
    Era("大正", "T", "2", date(1912, 7, 30), date(1926, 12, 24)),
    Era("明治", "M", "1", date(1868, 10, 23), date(1912, 7, 29)),
)


def wareki(d: date) -> str:
    """date(1980, 4, 1) -> '昭和55年4月1日'; the first year of an era is 元年."""
    for era in ERAS:
        if d >= era.start:
            year = d.year - era.start.year + 1
            return f"{era.name}{'元' if year == 1 else year}年{d.month}月{d.day}日"
    return f"{d.year}年{d.month}月{d.day}日"


def wareki_fiscal_year(fiscal_year: int) -> str:
    """2024 -> '令和6年度'. A fiscal year starts on 1 April and takes that day's era, except the one
    the era changed in (1 May 2019): municipalities and the state call it 令和元年度, not 平成31年度."""
    label = wareki(date(fiscal_year, 5, 1) if fiscal_year == 2019 else date(fiscal_year, 4, 1))
    return label[: label.index("年") + 1] + "度"


def yen(amount: int) -> str:
    return f"{amount:,}円"


def phone_display(number: str | None) -> str:
    """National digits -> national format; unparseable input is shown as given."""
    if not number:
        return ""
    try:
        parsed = phonenumbers.parse(number, "JP")
    except phonenumbers.NumberParseException:
        return number
    if not phonenumbers.is_valid_number(parsed):  # formatting it would drop its leading 0
        return number
    formatted: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return formatted


# What people and word processors put between digits or times, NFKC aside: hyphens, dashes, the
# minus sign (U+2212, what an IME often gives for －) and the long vowel mark (ー).
DASHES = "‐‑‒–—―−ー"


def phone_digits(text: str) -> str | None:
    """A number as written by people ('０３-１２３４-５６７８', '03−1234−5678', '03 (1234) 5678') as
    digits, up to 15; None when it is not one. Empty stays empty (no number)."""
    digits = re.sub(f"[-{DASHES}()（） ]", "", unicodedata.normalize("NFKC", text).strip())
    return digits if re.fullmatch(r"[0-9]{0,15}", digits) else None


def is_japanese_number(digits: str) -> bool:
    """Whether national digits ('0312345678') are a number in Japan's numbering plan: a leading 0, 10
    or 11 digits, a range that is in use (phonenumbers' metadata). What a caller ID must be: residents
    see it and call it back, and the carrier may refuse a call whose caller ID is not one."""
    if not re.fullmatch(r"0[0-9]{9,10}", digits):
        return False
    try:
        return bool(phonenumbers.is_valid_number_for_region(phonenumbers.parse(digits, "JP"), "JP"))
    except phonenumbers.NumberParseException:
        return False


_TOKYO = ZoneInfo("Asia/Tokyo")


def tokyo_time(at: datetime | None) -> str:
    """An instant as the clock in Tokyo read it: '2026-12-05 03:30'; '' for none."""
    return at.astimezone(_TOKYO).strftime("%Y-%m-%d %H:%M") if at else ""
