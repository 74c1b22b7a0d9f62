"""The staged shape of each kind of file: which values one row stages, checked as a whole. Pure.

`Converter` reads cells; these functions check what only the row as a whole can tell (a debt's
amounts agree, a debt row has its year and due date) and lay the values out in the staging
tables' column order.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, time
from operator import itemgetter
from typing import Any

from campaigns.hours import TOKYO
from dialer.imports.csvfile import Row
from dialer.imports.rows import HEAD_RELATIONSHIPS, Converter, Problem, undialable

PERSON_FIELDS = (
    "name_kanji",
    "name_kana",
    "birth_date",
    "sex",
    "relationship",
    "is_head",
    "death_date",
    "resident_from",
    "resident_until",
    "nationality",
)
HOUSEHOLD_STAGE = (
    "line",
    "household_no",
    "atena_no",
    *PERSON_FIELDS,
    "postal_code",
    "address",
    "debt_type",
    "fiscal_year",
    "assessed_year",
    "installment",
    "notice_no",
    "assessed_yen",
    "paid_yen",
    "due_date",
    "late_fee_yen",
    "last_paid_on",
    "account_transfer",
    "delinquency_class",
)
PHONE_STAGE = ("line", "household_no", "atena_no", "position", "raw", "number", "kind", "valid", "reason")
PAYMENT_STAGE = (
    "line",
    "receipt_no",
    "atena_no",
    "debt_type",
    "fiscal_year",
    "assessed_year",
    "installment",
    "notice_no",
    "amount_yen",
    "paid_on",
    "channel",
)
# a plan's lines; a rejected line is staged too, as (line, 計画番号 as read, None…, ok false): the
# plan it belongs to is then left as it was (dialer/store/plans.py)
PLAN_STAGE = (
    "line",
    "plan_no",
    "atena_no",
    "agreed_on",
    "status",
    "total_yen",
    "seq",
    "due_date",
    "amount_yen",
    "paid_yen",
    "paid_on",
    "ok",
)
# a 経過記録 entry: when (Tokyo) it happened, and whether it reached the resident (接触)
CONTACT_STAGE = ("line", "entry_no", "atena_no", "at", "method", "place", "party", "reached", "content")
CONTENT_MAX = 4000  # characters of an entry's 内容 (contact_history.content)
_HOUSEHOLD_VALUES = itemgetter(*HOUSEHOLD_STAGE[1:])
_PLAN_VALUES = itemgetter(*PLAN_STAGE[1:-1])
_PAYMENT_VALUES = itemgetter(*PAYMENT_STAGE[1:])
_DEBT_FIELDS = (
    "debt_type",
    "assessed_year",
    "installment",
    "notice_no",
    "assessed_yen",
    "paid_yen",
    "unpaid_yen",
    "due_date",
)


def household_row(
    conv: Converter, row: Row
) -> tuple[tuple[Any, ...] | None, list[tuple[Any, ...]], list[Problem]]:
    """(staged household row or None when rejected, its staged phones, problems)."""
    v, problems = conv.fields(row)
    if not v:
        return None, [], _about(conv, row, problems)
    phones = conv.phones_of(row, problems)
    if v.get("is_head") is None and v.get("relationship") is not None:
        v["is_head"] = v["relationship"] in HEAD_RELATIONSHIPS
    if v.get("fiscal_year") is not None:
        _check_debt(v, row, conv, problems)
    elif not _failed(conv, problems, "fiscal_year") and any(
        v.get(f) is not None for f in _DEBT_FIELDS if f not in conv.mapping.constants
    ):
        problems.append(
            Problem(
                row.line, _label(conv, "fiscal_year"), "error", "年度が空です(債権の行には年度が必要です)"
            )
        )
    if any(p.severity == "error" for p in problems):
        return None, [], _about(conv, row, problems)
    staged = (row.line, *_HOUSEHOLD_VALUES(v))
    hh, atena = v["household_no"], v["atena_no"]
    return staged, [(row.line, hh, atena, *p) for p in phones], _about(conv, row, problems)


def _about(conv: Converter, row: Row, problems: list[Problem]) -> list[Problem]:
    """The problems, each marked with whose row it is (a deletion request finds them)."""
    if not problems:
        return problems
    household_no, atena_no = conv.keys_of(row)
    return [replace(p, household_no=household_no, atena_no=atena_no) for p in problems]


def _failed(conv: Converter, problems: list[Problem], *fields: str) -> bool:
    """Whether one of these fields' cells was already reported as unreadable in this row."""
    columns = {_label(conv, f) for f in fields}
    return any(p.severity == "error" and p.column in columns for p in problems)


def _check_debt(v: dict[str, Any], row: Row, conv: Converter, problems: list[Problem]) -> None:
    for name in ("debt_type", "due_date"):
        if v.get(name) is None and not _failed(conv, problems, name):
            problems.append(Problem(row.line, _label(conv, name), "error", "必須項目が空です(債権の行)"))
    if _failed(conv, problems, "assessed_yen", "paid_yen", "unpaid_yen"):
        return  # an amount that cannot be read is reported already: not also "empty" or "disagrees"
    try:
        assessed, paid = debt_amounts(v.get("assessed_yen"), v.get("paid_yen"), v.get("unpaid_yen"))
    except AmountProblem as exc:
        problems.append(_said(conv, row, exc.field, str(exc)))
        return
    v["assessed_yen"], v["paid_yen"] = assessed, paid
    if v.get("assessed_year") is None:
        v["assessed_year"] = v["fiscal_year"]
    if v.get("installment") is None:
        v["installment"] = 0


def payment_row(conv: Converter, row: Row, today: date) -> tuple[tuple[Any, ...] | None, list[Problem]]:
    """One payment, or None and why not. A 収納日 after `today` (Tokyo) is a mistake: stored, it
    would be added on top of every export until that day came (docs/data.md §4)."""
    v, problems = conv.fields(row)
    if not v or any(p.severity == "error" for p in problems):
        return None, _about(conv, row, problems)
    if v["amount_yen"] == 0:
        problems.append(_said(conv, row, "amount_yen", "収納額が0円です"))
        return None, _about(conv, row, problems)
    if v["paid_on"] > today:
        why = f"収納日 {v['paid_on'].isoformat()} が今日({today.isoformat()})より後です"
        problems.append(_said(conv, row, "paid_on", why))
        return None, _about(conv, row, problems)
    return (row.line, *_PAYMENT_VALUES(v)), _about(conv, row, problems)


def plan_row(conv: Converter, row: Row, today: date) -> tuple[tuple[Any, ...], list[Problem]]:
    """One instalment of a plan as staged (rejected: its line and 計画番号 only), and its problems.
    A date after `today` (Tokyo) is a mistake: a plan agreed or an instalment paid tomorrow."""
    v, problems = conv.fields(row)
    if v and not any(p.severity == "error" for p in problems):
        for name, what in (("agreed_on", "承認日"), ("paid_on", "納付日")):
            if v[name] is not None and v[name] > today:
                why = f"{what} {v[name].isoformat()} が今日({today.isoformat()})より後です"
                problems.append(_said(conv, row, name, why))
        for name, what in (("amount_yen", "納付予定額"), ("total_yen", "分納総額")):
            if v[name] == 0:
                problems.append(_said(conv, row, name, f"{what}が0円です"))
    if not v or any(p.severity == "error" for p in problems):
        # whose plan the line is: only a 計画番号 read as one, in a row of the header's shape (one
        # with a cell too many reads another column's text there: it could be any plan's)
        plan_no = (v.get("plan_no") or "") if v else ""
        return (row.line, plan_no, *([None] * (len(PLAN_STAGE) - 3)), False), _about(conv, row, problems)
    v["status"] = v["status"] or "active"
    v["paid_yen"] = v["paid_yen"] or 0
    return (row.line, *_PLAN_VALUES(v), True), _about(conv, row, problems)


def contact_row(conv: Converter, row: Row, today: date) -> tuple[tuple[Any, ...] | None, list[Problem]]:
    """One 経過記録 entry as staged, or None and why not. It reached the resident (接触) when the
    file's 接触 column says so, or, without one, when its 相手 is 本人 (reached_by_party); a date
    after `today` (Tokyo) is a mistake."""
    v, problems = conv.fields(row)
    if v and not any(p.severity == "error" for p in problems):
        day, at = v["contacted_on"]
        if day > today:
            why = f"経過日 {day.isoformat()} が今日({today.isoformat()})より後です"
            problems.append(_said(conv, row, "contacted_on", why))
        if v["content"] is not None and len(v["content"]) > CONTENT_MAX:
            why = f"内容が{CONTENT_MAX}文字を超えています({len(v['content'])}文字)"
            problems.append(_said(conv, row, "content", why))
    if not v or any(p.severity == "error" for p in problems):
        return None, _about(conv, row, problems)
    day, at = v["contacted_on"]
    if at is not None and v["contacted_at"] is not None and v["contacted_at"] != at:
        why = f"経過日の時刻 {at:%H:%M} と時刻 {v['contacted_at']:%H:%M} が違います: 時刻の列を使いました"
        problems.append(Problem(row.line, _label(conv, "contacted_at"), "warning", why))
    when = datetime.combine(day, v["contacted_at"] or at or time(0), TOKYO)
    party = v["party"] or ""
    reached = v["reached"] if v["reached"] is not None else reached_by_party(party)
    staged = (row.line, v["entry_no"], v["atena_no"], when, v["method"], v["place"] or "", party, reached)
    return (*staged, v["content"] or ""), _about(conv, row, problems)


def reached_by_party(party: str) -> bool:
    """Whether a 相手 says the resident themself was reached: 本人, or 本人 with a note in brackets
    (本人(世帯主)); not 本人不在 or 本人以外, which begin the same way and say the opposite."""
    return party == "本人" or party.startswith("本人(")


def unreadable_plan_line(line: int) -> tuple[Any, ...]:
    """A line of a plans file that could not be read as CSV at all (a quote left open): staged as
    rejected and naming no plan, it could be any plan's (dialer/store/plans.py)."""
    return (line, "", *([None] * (len(PLAN_STAGE) - 3)), False)


def _said(conv: Converter, row: Row, name: str, message: str) -> Problem:
    """An error about one cell of the row, with the cell as it was in the file (the report's 値)."""
    raw = next((row.fields[i] for f, i, *_ in conv.columns if f == name and i < len(row.fields)), "")
    return Problem(row.line, _label(conv, name), "error", message, raw.strip()[:100])


def _label(conv: Converter, name: str) -> str:
    for field, _, column, *_ in conv.columns:
        if field == name:
            return column
    return name


def household_batch(
    conv: Converter, rows: list[Row]
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[Problem]]:
    """A batch of rows: what `household_row` gives for each, column by column where it can."""
    batch = conv.columns_of(rows)
    fast, v, slow = batch.rows, batch.values, batch.slow
    phones: list[tuple[Any, ...]] = []
    problems: list[Problem] = []
    n = len(fast)
    col = {name: v.get(name) or [None] * n for name in (*HOUSEHOLD_STAGE[1:], "unpaid_yen")}
    if v.get("is_head") is None and "relationship" in v:
        col["is_head"] = [None if r is None else r in HEAD_RELATIONSHIPS for r in col["relationship"]]
    redo: set[int] = set()
    debt_fields = [f for f in _DEBT_FIELDS if f not in conv.mapping.constants and f in v]
    debt_type, due, assessed, paid, unpaid, assessed_year, installment = (
        col[f]
        for f in (
            "debt_type",
            "due_date",
            "assessed_yen",
            "paid_yen",
            "unpaid_yen",
            "assessed_year",
            "installment",
        )
    )
    for i, year in enumerate(col["fiscal_year"]):
        if year is None:
            if any(col[f][i] is not None for f in debt_fields):
                redo.add(i)
            continue
        debt = _debt_amounts(debt_type[i], due[i], assessed[i], paid[i], unpaid[i])
        if debt is None:
            redo.add(i)
            continue
        assessed[i], paid[i] = debt
        if assessed_year[i] is None:
            assessed_year[i] = year
        if installment[i] is None:
            installment[i] = 0
    staged = list(zip([r.line for r in fast], *(col[c] for c in HOUSEHOLD_STAGE[1:]), strict=True))
    numbers = batch.phones
    if redo:
        keep = [i for i in range(n) if i not in redo]
        slow += [fast[i] for i in sorted(redo)]
        staged = [staged[i] for i in keep]
        numbers = [(column, [cells[i] for i in keep]) for column, cells in numbers]
    for position, (column, cells) in enumerate(numbers, start=1):
        phones += [
            (t[0], t[1], t[2], position, *p) for t, p in zip(staged, cells, strict=True) if p is not None
        ]
        problems += [
            replace(undialable(t[0], column, p[0], p[4]), household_no=t[1] or "", atena_no=t[2] or "")
            for t, p in zip(staged, cells, strict=True)
            if p and not p[3]
        ]
    for r in slow:
        s, ph, pr = household_row(conv, r)
        if s is not None:
            staged.append(s)
            phones.extend(ph)
        problems.extend(pr)
    return staged, phones, problems


def _debt_amounts(
    debt_type: Any, due: Any, assessed: int | None, paid: int | None, unpaid: int | None
) -> tuple[int, int] | None:
    """(assessed, paid) of a debt row that needs no report; None sends the row to the row path."""
    if debt_type is None or due is None:
        return None
    try:
        return debt_amounts(assessed, paid, unpaid)
    except AmountProblem:
        return None


class AmountProblem(ValueError):
    """A debt's amounts are missing or disagree; `field` is the one reported."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def debt_amounts(assessed: int | None, paid: int | None, unpaid: int | None) -> tuple[int, int]:
    """(調定額, 収納額) from whichever of 調定額, 収納額, 未納額 a row gives; they must agree."""
    if assessed is None and unpaid is None:
        raise AmountProblem("assessed_yen", "調定額(または未納額)が空です")
    if assessed is None:
        assert unpaid is not None
        return unpaid + (paid or 0), paid or 0
    if paid is None:
        paid = assessed - unpaid if unpaid is not None else 0
        if paid < 0:
            raise AmountProblem("unpaid_yen", f"未納額が調定額より大きい({unpaid}円 > {assessed}円)")
        return assessed, paid
    if unpaid is not None and max(assessed - paid, 0) != unpaid:
        raise AmountProblem("unpaid_yen", f"調定額−収納額({assessed}−{paid})が未納額({unpaid})と合いません")
    return assessed, paid
