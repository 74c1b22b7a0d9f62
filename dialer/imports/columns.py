"""Batch conversion, column by column: the fast path of an import. Pure.

Python spends most of an import in per-cell overhead, so a batch of rows is turned into columns
and each column is handled in one go: one NFKC call over the whole column, whitespace tidied by
two regular expressions over the joined text (only when it needs tidying), a column of keys or amounts validated by one
expression, and repeated values (years, 期別, dates) parsed once each. A row that needs attention
(an undecodable byte, a control character, 外字, a value that fails) is handed to the row-by-row
path (`Converter.fields`), which reports each problem under its own column; so both paths give
the same result, and tests/test_import_layouts.py checks that they do.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from dialer.imports.csvfile import REPLACEMENT
from dialer.imports.dates import DateProblem
from dialer.imports.values import PUA, ValueProblem, Warned, clean, nfkc

SEP = "\x07"
_WS = re.compile(r"[^\S\x07]+")
_OTHER_SPACE = re.compile(r"[^\S ]")  # whitespace other than a plain space (tabs, NBSP left by NFKC...)
_SEP_SPACES = re.compile(r" ?\x07 ?")
_CONTROL = re.compile("[\x00-\x06\x08\x0b\x0c\x0e-\x1f\x7f]")  # \x07 is our separator: counted
_PLAIN_ASCII = bytes(range(0x20, 0x7F)) + SEP.encode()  # neither _CONTROL nor _OTHER_SPACE matches these
_KEYS = re.compile(r"(?:(?:[0-9A-Za-z][0-9A-Za-z_.-]{0,31})?\x07)*(?:[0-9A-Za-z][0-9A-Za-z_.-]{0,31})?")
_POSTALS = re.compile(r"(?:(?:\d{3}-\d{4})?\x07)*(?:\d{3}-\d{4})?")
_FAILED = object()
MEMO_LIMIT = 50_000  # distinct values remembered per column (memory stays flat)
_INTS = re.compile(r"(?:(?:\d{1,12})?\x07)*(?:\d{1,12})?")


def column_texts(cells: Sequence[str]) -> tuple[list[str], set[int]]:
    """One column of a batch, NFKC-normalised and trimmed, and the positions of the cells that need
    the row path (an undecodable byte, a control character, 外字: it reports each under its column)."""
    joined = SEP.join(cells)
    if joined.isascii():
        # most columns (keys, dates, amounts): one pass over bytes tells whether any control
        # character or whitespace other than a space is there at all (then the checks below run)
        plain = not joined.encode("ascii").translate(None, _PLAIN_ASCII)
        odd = False
    else:
        joined = nfkc(joined)
        plain = False
        odd = REPLACEMENT in joined or PUA.search(joined) is not None
    if odd or (not plain and _CONTROL.search(joined)) or joined.count(SEP) != len(cells) - 1:
        odd_cells = {i for i, c in enumerate(cells) if needs_row_path(c)}
        # their rows take the row path; blanked here, a cell holding our separator cannot
        # upset the column's checks below
        return [("" if i in odd_cells else clean(c)[0]) for i, c in enumerate(cells)], odd_cells
    if (
        " " in joined
        and (
            "  " in joined
            or " \x07" in joined
            or "\x07 " in joined
            or joined[:1] == " "
            or joined[-1:] == " "
        )
    ) or (not plain and _OTHER_SPACE.search(joined)):
        joined = _SEP_SPACES.sub(SEP, _WS.sub(" ", joined)).strip(" ")
    return joined.split(SEP), set()


def needs_row_path(cell: str) -> bool:
    """Whether a cell needs the row path's report (undecodable, control characters, 外字)."""
    return (
        REPLACEMENT in cell
        or "\x07" in cell
        or _CONTROL.search(cell) is not None
        or PUA.search(cell) is not None
    )


def parse_column(
    texts: list[str],
    kind: str,
    parse: Callable[[str], Any],
    table: dict[str, str] | None,
    memo: dict[str, Any] | None = None,
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
    # each distinct text parsed once (a column of years, 期別 or due dates holds few), and
    # remembered for the next batches (birth dates repeat across a file)
    if memo is None:
        memo = {}
    elif len(memo) > MEMO_LIMIT:
        memo.clear()
    for t in set(texts).difference(memo):
        try:
            memo[t] = parse(t) if t else None
        except (ValueProblem, DateProblem, Warned):  # the row path reports it under its column
            memo[t] = _FAILED
    values = [memo[t] for t in texts]
    failed = [i for i, v in enumerate(values) if v is _FAILED]
    for i in failed:
        values[i] = None
    return values, failed
