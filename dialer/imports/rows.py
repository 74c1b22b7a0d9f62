"""From a CSV row to the values we store, with every problem found on the way. Pure.

A row with an error is not stored (and is listed in the error report with its line, column and
reason); a warning is listed too, but the row is stored. `Converter.convert` never raises for
bad input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, time
from operator import attrgetter
from typing import Any

from dialer.errors import ConfigError, ImportFileError
from dialer.imports.columns import column_texts, parse_column
from dialer.imports.csvfile import REPLACEMENT, Row
from dialer.imports.dates import DateProblem, OutOfRange, parse_date, parse_fiscal_year
from dialer.imports.mapping import Mapping
from dialer.imports.phones import Parsed, parse_phone, parse_phones
from dialer.imports.values import (
    ValueProblem,
    Warned,
    clean,
    parse_contact_method,
    parse_flag,
    parse_installment,
    parse_key,
    parse_plan_status,
    parse_seq,
    parse_time,
    parse_yen,
)
from dialer.jpformat import DASHES

_FIELDS = attrgetter("fields")


@dataclass
class Columns:
    """A batch converted column by column (`Converter.columns_of`)."""

    rows: list[Row]  # the rows converted here, in file order
    values: dict[str, list[Any]]  # per field, one value per row
    phones: list[tuple[str, list[Parsed | None]]]  # per phone column: its label and one number per row
    slow: list[Row]  # rows for the row path (`Converter.fields`)


@dataclass(frozen=True)
class Problem:
    line: int
    column: str  # the source column as the file names it ('' for the whole row)
    severity: str  # error | warning
    message: str
    value: str = ""
    # whose row it is (世帯番号, 宛名番号 as read, '' when not): a deletion request finds its lines
    household_no: str = ""
    atena_no: str = ""


_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CODE = re.compile(r"[a-z][a-z0-9_]{1,31}")
_SEX = {
    **dict.fromkeys(("1", "男", "男性", "m", "male"), "male"),
    **dict.fromkeys(("2", "女", "女性", "f", "female"), "female"),
    **dict.fromkeys(("0", "9", "不明", "その他", "other"), "other"),
}
HEAD_RELATIONSHIPS = frozenset({"世帯主", "本人"})


def _date(s: str) -> date | None:
    try:
        parsed = parse_date(s)
    except OutOfRange as exc:  # a placeholder for "none": empty (a required date is then missing)
        raise Warned(None, f"{exc}: 空欄として読みました") from None
    if parsed.warning:
        raise Warned(parsed.value, parsed.warning)
    return parsed.value


_DATE_TIME = re.compile(r"(.+?)(?:\s+|T)((?:午前|午後)?\d{1,2}[:時].*)")


def _when(s: str) -> tuple[date, time | None] | None:
    """A date, or a date and a time in one cell (2026/12/01 10:30, R08.12.01 10時30分)."""
    m = _DATE_TIME.fullmatch(s)
    at = parse_time(m[2]) if m else None
    try:
        day = _date(m[1] if m else s)
    except Warned as w:
        raise Warned(None if w.value is None else (w.value, at), w.message) from None
    return None if day is None else (day, at)


def _code(s: str) -> str:
    if not _CODE.fullmatch(s):
        raise ValueProblem(
            f"コードとして読めません: {s!r}(このレイアウトの変換表にないコードです。コードは英小文字で始まる"
            f'英小文字・数字・_ です。レイアウトの[values.<項目>]に "{s}" = "resident_tax" のように加えてください)'
        )
    return s


def _sex(s: str) -> str | None:
    sex = _SEX.get(s.lower())
    if sex is None:
        raise Warned(None, f"性別のコードが分かりません([values.sex]で変換できます): {s!r}")
    return sex


def _postal(s: str) -> str:
    digits = re.sub(f"[〒 \\-{DASHES}]", "", s)  # 123−4567 with a minus sign or a long vowel mark too (QA)
    if len(digits) == 7 and digits.isdigit():
        return f"{digits[:3]}-{digits[3:]}"
    raise Warned(s, f"郵便番号は7桁です: {s!r}")


def _text(s: str) -> str:
    return s


PARSERS: dict[str, Callable[[str], Any]] = {
    "key": parse_key,
    "text": _text,
    "name": _text,
    "note": _text,  # free text whose symbols are kept (values.nfkc)
    "date": _date,
    "when": _when,
    "fy": parse_fiscal_year,
    "inst": parse_installment,
    "yen": parse_yen,
    "flag": parse_flag,
    "sex": _sex,
    "postal": _postal,
    "code": _code,
    "seq": parse_seq,
    "plan_status": parse_plan_status,
    "time": parse_time,
    "method": parse_contact_method,
}


def _constant(mapping: Mapping, name: str, value: str) -> Any:
    try:
        return PARSERS[mapping.fields[name][0]](clean(value)[0])
    except ValueError as exc:  # ValueProblem, DateProblem: the reason, in Japanese
        raise ConfigError(f"{mapping.source}: [constants] {name} = {value!r} cannot be used: {exc}") from None


class Converter:
    """Turns rows of one file into field values; built once per file (columns resolved)."""

    def __init__(
        self, mapping: Mapping, header: list[str], index_of: Callable[[str | int], int | None]
    ) -> None:
        self.mapping = mapping
        self.width = len(header)
        missing = [f"{ref}" for ref in [*mapping.columns.values(), *mapping.phones] if index_of(ref) is None]
        if missing:
            columns = ", ".join(f"「{m}」" for m in missing)
            raise ImportFileError(
                f"The file has no column {columns} (mapping {mapping.name}). Its first line has {len(header)} "
                "cells, none of them named so (a file without a header line? Its values are not shown: they "
                "may be a resident's)",
                "no_columns",
                columns=columns,
                mapping=mapping.name,
            )

        def label(ref: str | int) -> str:
            idx = index_of(ref)
            return header[idx] if idx is not None and idx < len(header) else str(ref)

        def position(ref: str | int) -> int:
            idx = index_of(ref)
            assert idx is not None  # checked above: every mapped column is in the file
            return idx

        # (field, column index, column label, parser, required, value table)
        self.columns = [
            (
                name,
                position(ref),
                label(ref),
                PARSERS[mapping.fields[name][0]],
                mapping.fields[name][1],
                mapping.values.get(name),
            )
            for name, ref in mapping.columns.items()
        ]
        self.phones = [(position(ref), label(ref)) for ref in mapping.phones]
        self.constants = {name: _constant(mapping, name, value) for name, value in mapping.constants.items()}
        self.defaults: dict[str, Any] = {**dict.fromkeys(mapping.fields), **self.constants}
        self.kinds = {name: kind for name, (kind, _) in mapping.fields.items()}
        self._memo: dict[str, dict[str, Any]] = {name: {} for name in mapping.columns}
        self.last_index = max([i for _, i, *_ in self.columns] + [i for i, _ in self.phones] + [-1])

    def fields(self, row: Row) -> tuple[dict[str, Any], list[Problem]]:
        """The mapped fields of a row (None for empty cells) and the problems met, cell by cell, so
        that each broken, 外字 or failing cell is reported under its own column. (Whole batches go
        through `columns_of`, which sends here only the rows that need this.)"""
        problems: list[Problem] = []
        f = row.fields
        if self.width and len(f) != self.width:
            if len(f) > self.width and any(f[self.width :]):
                reason = f"列数が多すぎます({len(f)}列、見出しは{self.width}列): 引用符のないカンマがないか確認してください"
                return {}, [Problem(row.line, "", "error", reason)]
            if len(f) <= self.last_index:
                reason = f"列数が足りません({len(f)}列、見出しは{self.width}列): 行が途中で切れています"
                return {}, [Problem(row.line, "", "error", reason)]
            if len(f) < self.width:
                problems.append(
                    Problem(
                        row.line, "", "warning", f"列数が見出しより少ない({len(f)}列、見出しは{self.width}列)"
                    )
                )
        if len(f) <= self.last_index:
            f = f + [""] * (self.last_index + 1 - len(f))
        out = dict(self.defaults)
        for name, idx, column, parse, required, table in self.columns:
            value = self._cell(row.line, column, f[idx], parse, table, problems, self.kinds[name] == "note")
            if (
                value is None
                and required
                and not any(p.column == column and p.severity == "error" for p in problems)
            ):
                problems.append(Problem(row.line, column, "error", "必須項目が空です"))
            out[name] = value
        return out, problems

    def keys_of(self, row: Row) -> tuple[str, str]:
        """The row's (世帯番号, 宛名番号) as read (normalised, not checked; '' where it has no such
        cell): the problems found in the row keep them (`Problem.household_no`, `atena_no`).
        A row with more cells than the header reads them where the header puts them: its keys
        may be another column's text, which only links the report line to a wrong household."""
        return self.key_of(row, "household_no"), self.key_of(row, "atena_no")

    def key_of(self, row: Row, name: str) -> str:
        """One key of the row as read, however broken the rest of the row is ('' if none)."""
        for field, idx, _, _, _, table in self.columns:
            if field == name and idx < len(row.fields):
                key = clean(row.fields[idx])[0]
                key = (key if table is None else table.get(key, key))[:64]  # as `_cell` reads it
                if not (REPLACEMENT in key or _CONTROL.search(key)):  # (no NUL reaches PostgreSQL)
                    return key
        return ""

    def columns_of(self, rows: list[Row]) -> Columns:
        """The batch's rows that convert column by column, their values per field, and the rest.

        The rest (odd width, undecodable bytes, control characters, 外字, a value that fails or
        warns, an empty required field) go through `fields` row by row, which reports each problem.
        """
        if any(kind == "note" for kind in self.kinds.values()):  # (one NFKC over a column would spell ① out)
            return Columns([], {}, [], list(rows))
        fast: list[Row] = []
        slow: list[Row] = []
        width, last = self.width, self.last_index
        widths = list(map(len, map(_FIELDS, rows)))
        if (widths.count(width) == len(widths)) if width else (min(widths, default=last + 1) > last):
            fast = list(rows)  # the usual batch: every row as wide as the header
        else:
            for r, n in zip(rows, widths, strict=True):
                (fast if (n == width if width else n > last) else slow).append(r)
        cells = list(zip(*map(_FIELDS, fast), strict=False))  # one tuple per column
        values: dict[str, list[Any]] = {}
        redo: set[int] = set()

        def texts_of(idx: int) -> list[str]:
            texts, odd = column_texts(cells[idx]) if fast else ([], set())
            redo.update(odd)
            return texts

        for name, idx, _, parse, required, table in self.columns:
            vals, failed = parse_column(texts_of(idx), self.kinds[name], parse, table, self._memo[name])
            redo.update(failed)
            if required:
                redo.update(i for i, v in enumerate(vals) if v is None)
            values[name] = vals
        phones = [(column, parse_phones(texts_of(idx))) for idx, column in self.phones]
        if redo:
            keep = [i for i in range(len(fast)) if i not in redo]
            slow += [fast[i] for i in sorted(redo)]
            fast = [fast[i] for i in keep]
            values = {k: [v[i] for i in keep] for k, v in values.items()}
            phones = [(column, [p[i] for i in keep]) for column, p in phones]
        for name, value in self.constants.items():
            values[name] = [value] * len(fast)
        return Columns(fast, values, phones, slow)

    def _cell(
        self,
        line: int,
        column: str,
        raw: str,
        parse: Callable[[str], Any],
        table: dict[str, str] | None,
        problems: list[Problem],
        note: bool = False,
    ) -> Any:
        if not raw:
            return None
        if REPLACEMENT in raw:
            problems.append(
                Problem(
                    line,
                    column,
                    "error",
                    "文字コードとして読めない文字があります(ファイルの文字コードを確認してください)",
                )
            )
            return None
        if _CONTROL.search(raw):
            problems.append(
                Problem(
                    line,
                    column,
                    "error",
                    "制御文字(NULなど)が含まれています",
                    raw.encode("unicode_escape").decode()[:100],
                )
            )
            return None
        s, gaiji = clean(raw, note)
        if gaiji:
            problems.append(
                Problem(
                    line,
                    column,
                    "warning",
                    f"外字{gaiji}文字を〓に置き換えました(元のシステムで修正してください)",
                    s[:100],
                )
            )
        if not s:
            return None
        if table is not None:
            s = table.get(s, s)
        try:
            return parse(s)
        except Warned as w:  # (the report's 値: the cell as it was in the file, not as read)
            problems.append(Problem(line, column, "warning", w.message, raw.strip()[:100]))
            return w.value
        except (ValueProblem, DateProblem) as exc:
            problems.append(Problem(line, column, "error", str(exc), raw.strip()[:100]))
            return None

    def phones_of(
        self, row: Row, problems: list[Problem]
    ) -> list[tuple[int, str, str, str, bool, str | None]]:
        """(position, raw, number, kind, valid, reason) of each non-empty phone cell."""
        out = []
        for position, (idx, column) in enumerate(self.phones, start=1):
            raw = row.fields[idx] if idx is not None and idx < len(row.fields) else ""
            if not raw.strip():
                continue
            s, _ = clean(raw)
            if REPLACEMENT in s or _CONTROL.search(s):
                problems.append(Problem(row.line, column, "error", "電話番号に読めない文字があります"))
                continue
            out.append(_phone(row.line, column, position, s, problems))
        return out


def _phone(line: int, column: str, position: int, s: str, problems: list[Problem]) -> tuple[Any, ...]:
    """A phone cell as staged (position, raw, number, kind, valid, reason); an undialable one is a warning."""
    p = parse_phone(s)
    if not p.valid:
        problems.append(undialable(line, column, s, p.reason))
    return (position, p.raw, p.number, p.kind, p.valid, p.reason)


def undialable(line: int, column: str, text: str, reason: str | None) -> Problem:
    """The warning for a phone number kept but never dialled."""
    return Problem(line, column, "warning", f"架電できない番号として登録しました: {reason}", text[:40])
