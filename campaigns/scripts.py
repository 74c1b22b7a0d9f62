"""A campaign's talk script (トークスクリプト): what the operator says, with the resident's details
put in. Pure: the text as a supervisor writes it is checked here, and filled in for one record.

    お忙しいところ失礼いたします。{課名}の{担当者}と申します。{氏名}様でいらっしゃいますか。
    …国民健康保険料が{未納額}、未納となっております。

A placeholder names one of FIELDS, in Japanese or English (`{氏名}` or `{name}`): what the
operator's own record shows and may be said (the resident's name, kana, household number and the
total owed) and who is calling (the operator's name, the department and its call-back number). A
script never brings a field to the screen that the operator's role does not see, nor puts into the
operator's mouth the date of birth or address the resident is asked to state (本人確認).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

MAX_CHARS = 4000

# placeholder -> the value's name; the Japanese and English spellings of each
FIELDS: dict[str, str] = {
    "氏名": "name",
    "フリガナ": "kana",
    "世帯番号": "household_no",
    "未納額": "unpaid",
    "担当者": "operator",
    "課名": "department",
    "折り返し番号": "callback",
}
FIELDS.update({v: v for v in list(FIELDS.values())})

_PLACEHOLDER = re.compile(r"\{([^{}\n]{1,30})\}")
_FULL_WIDTH = re.compile(r"｛([^｛｝\n]{1,30})｝")
# Pasted along, unseen, and harmless: dropped (a zero-width space, a BOM, a soft hyphen, a word
# joiner). Joiners inside emoji (ZWJ, ZWNJ) are kept; other format characters (a bidi override
# shows the text reversed) and control characters are refused, named.
_DROPPED = dict.fromkeys(map(ord, "\u200b\ufeff\u00ad\u2060"))
_KEPT_FORMAT = "\u200c\u200d\n\t"


class ScriptError(ValueError):
    """A script that cannot be kept: `reason` is `long`, `control` or `unknown` (with `names`)."""

    def __init__(self, reason: str, names: tuple[str, ...] = ()) -> None:
        super().__init__(reason + (": " + ", ".join(names) if names else ""))
        self.reason = reason
        self.names = names


def clean(text: str) -> str:
    """The script as it is kept: line ends as \\n, trailing spaces and blank lines at the end gone;
    placeholders typed with full-width braces (｛氏名｝) read as braces. Raises ScriptError."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").translate(_DROPPED)
    # ｛氏名｝ as an IME types it; other full-width braces are the script's own text (｛間を置く｝)
    text = _FULL_WIDTH.sub(
        lambda m: "{" + m.group(1) + "}" if m.group(1).strip() in FIELDS else m.group(0), text
    )
    text = "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")
    if len(text) > MAX_CHARS:
        raise ScriptError("long")
    bad = [
        ch for ch in text if unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co") and ch not in _KEPT_FORMAT
    ]
    if bad:
        raise ScriptError("control", tuple(dict.fromkeys(f"U+{ord(ch):04X}" for ch in bad)))
    named = (m.strip() for m in _PLACEHOLDER.findall(text))
    unknown = tuple(dict.fromkeys(n for n in named if n and n not in FIELDS))  # ({ } is no placeholder)
    if unknown:
        raise ScriptError("unknown", unknown)
    return text


def fill(text: str, values: Mapping[str, str]) -> str:
    """The script for one record: each placeholder replaced by its value ("" when the record has
    none: a household with no kana). Plain text; the page shows it as text, never as HTML."""
    return _PLACEHOLDER.sub(lambda m: values.get(FIELDS.get(m.group(1).strip(), ""), m.group(0)), text)
