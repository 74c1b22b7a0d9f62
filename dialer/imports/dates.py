"""Dates and fiscal years as municipal exports write them: 和暦 in its usual forms, and 西暦. Pure.

Accepted (after NFKC, so full-width digits and letters are fine):
  西暦   2023-04-01 · 2023/4/1 · 2023.04.01 · 20230401 · 2023年4月1日
  和暦   R05.04.01 · R5/4/1 · r5-4-1 · 令和5年4月1日 · 令和元年5月1日 · 令5.4.1 · R050401
  code  5050401 (7 digits: era code 1 明治 · 2 大正 · 3 昭和 · 4 平成 · 5 令和, then YYMMDD)

The era boundary (平成31年4月30日 → 令和元年5月1日): a date before its era began is refused
(令和1年4月30日). Systems that were not updated in time kept printing the old era's last year for
the rest of that calendar year (平成31年5月1日); such a date is accepted as the same day with a
warning. A year the old era never reached (平成32年, 昭和65年) or year 0 (令和0年) is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from dialer.jpformat import ERAS, Era

_BY_KEY = {k: e for e in ERAS for k in (e.name, e.name[0], e.letter, e.code)}
FIRST, LAST = date(1868, 1, 1), date(2200, 12, 31)  # a date outside is a placeholder or a typing error


class DateProblem(ValueError):
    """The text is not a date we can read; the message says why (for the error report)."""


class OutOfRange(DateProblem):
    """A real date, but not one a resident's record can hold (0001-01-01, 9999-12-31: a system's
    way of writing "none"): an optional date column reads it as empty, with a warning."""


@dataclass(frozen=True)
class ParsedDate:
    value: date
    warning: str | None = None


_WESTERN = re.compile(r"(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?")
_WESTERN_COMPACT = re.compile(r"(\d{4})(\d{2})(\d{2})")
_ERA = re.compile(
    r"(令和|平成|昭和|大正|明治|[令平昭大明]|[RHSTMrhstm])\s*(元|\d{1,2})[-/.年](\d{1,2})[-/.月](\d{1,2})日?"
)
_ERA_COMPACT = re.compile(r"([RHSTMrhstm])(\d{2})(\d{2})(\d{2})")
_ERA_CODE = re.compile(r"([1-5])(\d{2})(\d{2})(\d{2})")


def parse_date(text: str) -> ParsedDate:
    """One date; raises DateProblem. `text` is already NFKC-normalised and stripped."""
    s = text.replace(" ", "")
    if m := _WESTERN.fullmatch(s) or _WESTERN_COMPACT.fullmatch(s):
        return ParsedDate(_calendar(int(m[1]), int(m[2]), int(m[3]), text))
    if m := _ERA.fullmatch(s) or _ERA_COMPACT.fullmatch(s) or _ERA_CODE.fullmatch(s):
        era = _BY_KEY[m[1].upper() if m[1].isascii() else m[1]]
        year = 1 if m[2] == "元" else int(m[2])
        return _era_date(era, year, int(m[3]), int(m[4]), text)
    raise DateProblem(f"日付として読めません: {text!r}")


def _calendar(year: int, month: int, day: int, text: str) -> date:
    try:
        d = date(year, month, day)
    except ValueError:
        raise DateProblem(f"存在しない日付です: {text!r}") from None
    if not FIRST <= d <= LAST:
        # 0001-01-01 and 9999-12-31 stand for "none" in some systems (区民でなくなった日 9999/12/31:
        # still a resident): never stored as a date (asyncpg would write ±infinity)
        raise OutOfRange(f"日付が範囲外です({FIRST.year}〜{LAST.year}年): {text!r}")
    return d


def _era_date(era: Era, year: int, month: int, day: int, text: str) -> ParsedDate:
    if year == 0:
        raise DateProblem(f"{era.name}0年はありません: {text!r}")
    gregorian_year = era.start.year + year - 1
    if era.end is not None and gregorian_year > era.end.year:
        raise DateProblem(
            f"{era.name}{year}年はありません({era.name}は{era.end.year - era.start.year + 1}年まで): {text!r}"
        )
    d = _calendar(gregorian_year, month, day, text)
    if d < era.start:
        raise DateProblem(
            f"{era.name}が始まる前の日付です({era.name}は{era.start.isoformat()}から): {text!r}"
        )
    if era.end is not None and d > era.end:
        return ParsedDate(d, f"{era.name}の終了後の日付として読みました({d.isoformat()}): {text!r}")
    return ParsedDate(d)


_FY_WESTERN = re.compile(r"(\d{4})(?:年度?)?")
_FY_ERA = re.compile(r"(令和|平成|昭和|[令平昭]|[RHSrhs])\s*(元|\d{1,2})(?:年度?)?")
_FY_CODE = re.compile(r"([345])(\d{2})")


def parse_fiscal_year(text: str) -> int:
    """A 年度 as 西暦: '2023', '2023年度', 'R5', 'R05', '令和5年度', '令和元年度', 'H30', '505'.

    The era must hold 1 April of that year: 平成31年度 and 令和元年度 are both 2019 (April 2019
    was still 平成), 平成32年度 does not exist. Raises DateProblem.
    """
    s = text.replace(" ", "")
    if m := _FY_WESTERN.fullmatch(s):
        year = int(m[1])
    elif m := _FY_ERA.fullmatch(s) or _FY_CODE.fullmatch(s):
        era = _BY_KEY[m[1].upper() if m[1].isascii() else m[1]]
        n = 1 if m[2] == "元" else int(m[2])
        if n == 0:
            raise DateProblem(f"{era.name}0年度はありません: {text!r}")
        year = era.start.year + n - 1
        # the era must hold 1 April of that year (or begin within that fiscal year)
        if year < era.start.year or (era.end is not None and date(year, 4, 1) > era.end):
            raise DateProblem(f"{era.name}{n}年度はありません: {text!r}")
    else:
        raise DateProblem(f"年度として読めません: {text!r}")
    if not 1989 <= year <= 2200:
        raise DateProblem(f"年度が範囲外です(1989〜2200): {text!r}")
    return year
