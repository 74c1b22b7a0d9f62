"""Japanese first, English available. Message catalogues (web/messages/*.toml) and the formats the pages need.

和暦 for dates of birth and fiscal years, yen with thousands separators, Japanese phone numbers
in national format (03-1234-5678, 090-1234-5678).
"""

from __future__ import annotations

import tomllib
from datetime import date
from pathlib import Path
from typing import Any

import jinja2

from dialer.jpformat import phone_display, tokyo_time, wareki, wareki_fiscal_year, yen

__all__ = [
    "CATALOG",
    "LANGS",
    "date_for_page",
    "fiscal_year_for_page",
    "phone_display",
    "tokyo_time",
    "translate",
    "translate_count",
    "wareki",
    "wareki_fiscal_year",
    "yen",
    "yen_for_page",
]

LANGS = ("ja", "en")

MESSAGES = Path(__file__).parent / "messages"  # one TOML file per language: translators edit those


def _load(lang: str) -> dict[str, str]:
    with (MESSAGES / f"{lang}.toml").open("rb") as f:
        return {str(k): str(v) for k, v in tomllib.load(f).items()}


CATALOG: dict[str, dict[str, str]] = {lang: _load(lang) for lang in LANGS}


def translate(lang: str, key: str) -> str:
    return CATALOG.get(lang, CATALOG["ja"]).get(key) or CATALOG["ja"].get(key) or key


def translate_count(lang: str, key: str, n: int) -> str:
    """The message for a count: `key + "_one"` for exactly one, where the language has such a form
    (English: "1 household matches", not "1 households match")."""
    return (
        translate(lang, key + "_one")
        if n == 1 and f"{key}_one" in CATALOG.get(lang, {})
        else translate(lang, key)
    )


@jinja2.pass_context
def yen_for_page(page: Any, amount: int) -> str:
    """An amount as the page's reader writes it: 24,000円 on a Japanese page, ¥24,000 on an English
    one (as the English reports and operator page do)."""
    return f"¥{amount:,}" if page.get("lang") == "en" else yen(amount)


@jinja2.pass_context
def date_for_page(page: Any, day: date) -> str:
    """A date as the page's reader writes it: 令和3年3月31日 on a Japanese page, 2021-03-31 on an
    English one (as the English operator page shows them; QA)."""
    return day.isoformat() if page.get("lang") == "en" else wareki(day)


@jinja2.pass_context
def fiscal_year_for_page(page: Any, fiscal_year: int) -> str:
    """令和2年度 on a Japanese page, FY2020 on an English one."""
    return f"FY{fiscal_year}" if page.get("lang") == "en" else wareki_fiscal_year(fiscal_year)
