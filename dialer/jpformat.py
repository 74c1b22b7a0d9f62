"""Japanese formats: 和暦 dates and fiscal years, yen, phone numbers in national format. Pure."""

from __future__ import annotations

from datetime import date

import phonenumbers

# (first day of the era, name)
_ERAS = (
    (date(2019, 5, 1), "令和"),
    (date(1989, 1, 8), "平成"),
    (date(1926, 12, 25), "昭和"),
    (date(1912, 7, 30), "大正"),
    (date(1868, 10, 23), "明治"),
)


def wareki(d: date) -> str:
    """date(1980, 4, 1) -> '昭和55年4月1日'; the first year of an era is 元年."""
    for start, name in _ERAS:
        if d >= start:
            year = d.year - start.year + 1
            return f"{name}{'元' if year == 1 else year}年{d.month}月{d.day}日"
    return f"{d.year}年{d.month}月{d.day}日"


def wareki_fiscal_year(fiscal_year: int) -> str:
    """2024 -> '令和6年度' (a fiscal year starts on 1 April, so its era is that of 1 April)."""
    label = wareki(date(fiscal_year, 4, 1))
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
    formatted: str = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
    return formatted
