"""Batch conversion, column by column: the fast path of an import. Pure.

Python spends most of an import in per-cell overhead, so a batch of rows is turned into columns
and each column is handled in one go: one NFKC call over the whole column, whitespace tidied by
two regular expressions over the joined text, a column of keys or amounts validated by one
expression, and repeated values (years, 期別, dates) parsed once each. A row that needs attention
(an undecodable byte, a control character, 外字, a value that fails) is handed to the row-by-row
path (`Converter.fields`), which reports each problem under its own column; so both paths give
the same result, and tests/test_import_values.py checks that they do.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from typing import Any

from dialer.imports.csvfile import REPLACEMENT
from dialer.imports.dates import DateProblem
from dialer.imports.values import PUA, ValueProblem, Warned

SEP = "\x07"
_WS = re.compile(r"[^\S\x07]+")
_SEP_SPACES = re.compile(r" ?\x07 ?")
_CONTROL = re.compile("[\x00-\x06\x08\x0b\x0c\x0e-\x1f\x7f]")  # \x07 is our separator: checked per row
_KEYS = re.compile(r"(?:(?:[0-9A-Za-z][0-9A-Za-z_.-]{0,31})?\x07)*(?:[0-9A-Za-z][0-9A-Za-z_.-]{0,31})?")
_POSTALS = re.compile(r"(?:(?:\d{3}-\d{4})?\x07)*(?:\d{3}-\d{4})?")
_INTS = re.compile(r"(?:(?:\d{1,12})?\x07)*(?:\d{1,12})?")


def column_texts(rows: list[list[str]], index: int) -> list[str] | None:
    """One column of a batch, NFKC-normalised and trimmed; None if a cell holds 外字 (row path)."""
    joined = SEP.join([r[index] for r in rows])
    if not joined.isascii():
        joined = unicodedata.normalize("NFKC", joined)
        if PUA.search(joined):
            return None
    if " " in joined or "\t" in joined or "\n" in joined or "\r" in joined or not joined.isascii():
        joined = _SEP_SPACES.sub(SEP, _WS.sub(" ", joined)).strip(" ")
    return joined.split(SEP)


def needs_row_path(fields: list[str]) -> bool:
    whole = "".join(fields)
    return REPLACEMENT in whole or "\x07" in whole or _CONTROL.search(whole) is not None


def parse_column(
    texts: list[str], kind: str, parse: Callable[[str], Any], table: dict[str, str] | None
) -> tuple[list[Any], list[int]]:
    """Values of one column (None for empty cells) and the positions whose cell failed or warned."""
    if table is not None:
        texts = [table.get(t, t) for t in texts]
    if kind in ("text", "name"):
        return [t or None for t in texts], []
    joined = SEP.join(texts)
    if kind == "key" and _KEYS.fullmatch(joined):
        return [t or None for t in texts], []
    if kind == "yen" and _INTS.fullmatch(joined):
        return [int(t) if t else None for t in texts], []
    if kind == "postal" and _POSTALS.fullmatch(joined):
        return [t or None for t in texts], []
    # each distinct text parsed once (a column of years, 期別 or due dates holds few)
    parsed: dict[str, Any] = {"": None}
    bad: set[str] = set()
    for t in set(texts):
        if t:
            try:
                parsed[t] = parse(t)
            except (ValueProblem, DateProblem, Warned):  # the row path reports it under its column
                parsed[t] = None
                bad.add(t)
    values = [parsed[t] for t in texts]
    failed = [i for i, t in enumerate(texts) if t in bad] if bad else []
    return values, failed
