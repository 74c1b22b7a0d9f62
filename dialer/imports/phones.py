"""Japanese phone numbers from municipal records: parsed, classified, validated. Pure.

Validation is libphonenumber's (the `phonenumbers` package, region JP): a number is dialable only
when its metadata says fixed line (10 digits with the leading 0), mobile (060/070/080/090, 11) or
IP phone (050, 11). Anything else is kept, flagged invalid with the reason, and never dialled:
free dial (0120/0800), ナビダイヤル (0570), premium (0990), pagers (020), unassigned ranges, wrong
lengths, stray characters.

Speed: an import checks a million numbers, and `phonenumbers.parse` costs ~40 µs each. So the JP
patterns are taken from phonenumbers' own metadata once, in its own order of precedence, into one
compiled expression (~1 µs a number). tests/test_import_phones.py checks that the two agree.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from phonenumbers import PhoneMetadata, PhoneNumber, PhoneNumberType, number_type

# phonenumbers' precedence (phonenumberutil._number_type_helper); fixed line before mobile.
_TYPES = (
    ("premium_rate", "premium"),
    ("toll_free", "toll_free"),
    ("shared_cost", "shared_cost"),
    ("voip", "ip"),
    ("personal_number", "personal"),
    ("pager", "pager"),
    ("uan", "uan"),
    ("voicemail", "voicemail"),
    ("fixed_line", "landline"),
    ("mobile", "mobile"),
)
_SLOW = {
    PhoneNumberType.PREMIUM_RATE: "premium",
    PhoneNumberType.TOLL_FREE: "toll_free",
    PhoneNumberType.SHARED_COST: "shared_cost",
    PhoneNumberType.VOIP: "ip",
    PhoneNumberType.PERSONAL_NUMBER: "personal",
    PhoneNumberType.PAGER: "pager",
    PhoneNumberType.UAN: "uan",
    PhoneNumberType.VOICEMAIL: "voicemail",
    PhoneNumberType.FIXED_LINE: "landline",
    PhoneNumberType.MOBILE: "mobile",
}
DIALABLE = frozenset({"landline", "mobile", "ip"})
_REASONS = {
    "premium": "有料番号(0990)は架電しません",
    "toll_free": "フリーダイヤル等の事業者番号は架電しません",
    "shared_cost": "事業者番号は架電しません",
    "personal": "パーソナル番号は架電しません",
    "pager": "ポケベル番号は架電しません",
    "uan": "ナビダイヤル(0570)は架電しません",
    "voicemail": "留守番電話サービスの番号は架電しません",
}


def _compile() -> tuple[re.Pattern[str], dict[str, frozenset[int]], re.Pattern[str]]:
    md = PhoneMetadata.metadata_for_region("JP")
    assert md is not None and md.general_desc is not None
    parts, lengths = [], {}
    for attr, kind in _TYPES:
        desc = getattr(md, attr)
        if desc is None or not desc.national_number_pattern:
            continue
        parts.append(f"(?P<{kind}>{desc.national_number_pattern})")
        lengths[kind] = frozenset(desc.possible_length or md.general_desc.possible_length)
    general = md.general_desc.national_number_pattern or ".*"
    return re.compile("|".join(parts)), lengths, re.compile(general)


_PATTERN, _LENGTHS, _GENERAL = _compile()
_DROP = str.maketrans(dict.fromkeys(" \t\n\r\u3000-‐‑‒–—―−ー.()", None))
_NOTE = re.compile(r"\([^0-9()]*\)")  # "(携帯)", "(自宅)": a note, not part of the number
_SEP = "\x07"
_NOTE_IN_COLUMN = re.compile(r"\([^0-9()\x07]*\)")


@dataclass(frozen=True)
class Phone:
    raw: str
    number: str  # national digits with the leading 0 ('' when there were none)
    kind: str  # landline | mobile | ip | other
    valid: bool
    reason: str | None = None


def parse_phone(raw: str) -> Phone:
    """One number as written in a record (already NFKC-normalised, non-empty)."""
    s = _NOTE.sub("", raw) if "(" in raw else raw
    s = s.translate(_DROP)
    if s.startswith("+81"):
        s = "0" + s[3:].lstrip("0")
    elif s.startswith("+") and s[1:].isdigit():
        return Phone(raw, "", "other", False, "海外の電話番号です(架電しません)")
    if not s.isdigit() or not s.isascii():
        return Phone(raw, "", "other", False, "電話番号に数字以外の文字があります")
    if not s.startswith("0") or s.startswith("00"):
        return Phone(raw, s, "other", False, "市外局番(0から始まる番号)がありません")
    kind = classify(s[1:])
    if kind in DIALABLE:
        return Phone(raw, s, kind, True)
    if kind is None:
        return Phone(raw, s, "other", False, _length_reason(s) or "使われていない番号帯です")
    return Phone(raw, s, "other", False, _REASONS[kind])


Parsed = tuple[str, str, str, bool, str | None]  # (raw, number, kind, valid, reason), as Phone


def parse_phones(cells: Sequence[str]) -> list[Parsed | None]:
    """`parse_phone` over a column of cells (NFKC-normalised; '' for an empty cell, which gives None).

    The same verdict cell for cell (tests/test_import_phones.py checks), at a fraction of the cost:
    notes and separators are dropped from the whole column at once, and a plain dialable number
    takes one expression; anything else goes through `parse_phone`.
    """
    joined = _SEP.join(cells)
    if "(" in joined:
        joined = _NOTE_IN_COLUMN.sub("", joined)
    tidied = joined.translate(_DROP).split(_SEP)
    if len(tidied) != len(cells):  # a cell held the separator: one at a time
        tidied = [""] * len(cells)
    match, general, lengths = _PATTERN.fullmatch, _GENERAL.fullmatch, _LENGTHS
    out: list[Parsed | None] = []
    for raw, s in zip(cells, tidied, strict=True):
        if not raw:
            out.append(None)
            continue
        if s[:1] == "0" and s[1:2] != "0" and s.isdigit() and s.isascii():
            national = s[1:]
            m = match(national)
            kind = m.lastgroup if m is not None else None
            if kind in DIALABLE and len(national) in lengths[kind] and general(national):
                out.append((raw, s, kind, True, None))
                continue
        p = parse_phone(raw)
        out.append((p.raw, p.number, p.kind, p.valid, p.reason))
    return out


def classify(national: str) -> str | None:
    """The phonenumbers number type of a national significant number (no leading 0), or None."""
    if not _GENERAL.fullmatch(national):
        return None
    m = _PATTERN.fullmatch(national)
    if m is None:
        return None
    # the metadata's patterns have no capturing groups of their own, so the last group is the type
    kind = m.lastgroup or next(k for k, v in m.groupdict().items() if v is not None)
    if len(national) in _LENGTHS[kind]:
        return kind
    # a later type might match at this length: ask phonenumbers itself (rare; slow path)
    return _SLOW.get(number_type(PhoneNumber(country_code=81, national_number=int(national))))


def _length_reason(number: str) -> str | None:
    mobile_or_ip = number[:3] in ("070", "080", "090", "050")
    if mobile_or_ip and len(number) != 11:
        return f"携帯・IP電話は11桁です({len(number)}桁)"
    if not mobile_or_ip and len(number) != 10:
        return f"固定電話は市外局番から10桁です({len(number)}桁)"
    return None


def caller_number(callerid: str) -> str | None:
    """A caller ID as national digits ('0312345678'), or None (withheld, unknown, foreign, junk)."""
    s = re.sub(r"[^0-9+]", "", callerid or "")
    if s.startswith("81") and len(s) in (11, 12):  # 81 3 1234 5678: country code without '+'
        s = "+" + s
    if not s or (not s.startswith("0") and not s.startswith("+81")):
        return None
    phone = parse_phone(s)
    return phone.number if phone.valid else None
