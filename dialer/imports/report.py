"""The error report of an import, as a CSV staff can open in Excel (UTF-8 with a BOM), and as text."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from typing import Any

from dialer.csvsafe import cell
from dialer.store.imports import RunInfo

HEADER = ("行", "列", "種別", "内容", "値")
SEVERITY = {"error": "エラー(取り込まず)", "warning": "警告(取り込み済み)"}
WARNING_ON_REJECTED = "警告(この行はエラーのため取り込まず)"  # a warning on a line an error kept out


async def stream(page: Callable[[int], Awaitable[Sequence[Any]]]) -> AsyncIterator[bytes]:
    """The report file a page at a time. `page(after_line)` gives the problems of the lines after
    that one (store.imports.problem_page); memory holds one page whatever the report's size."""
    yield "\ufeff".encode() + _lines([], header=True)  # the BOM: Excel then reads UTF-8
    after = 0
    while rows := await page(after):
        yield _lines(rows)
        after = rows[-1]["line"]


def _lines(rows: Iterable[Any], header: bool = False) -> bytes:
    """Lines of the report for some rows of import_problem; a report is streamed a chunk at a time."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    if header:
        w.writerow(HEADER)
    rows = list(rows)
    rejected = {r["line"] for r in rows if r["severity"] == "error"}  # a page holds whole lines
    for r in rows:
        rejected_too = r["severity"] == "warning" and r["line"] in rejected
        label = WARNING_ON_REJECTED if rejected_too else SEVERITY[r["severity"]]
        w.writerow((r["line"], r["column_name"], label, r["message"], cell(r["value"])))
    return buf.getvalue().encode("utf-8")


# how each table's counts are listed
_ORDER = {"inserted": 0, "updated": 1, "unchanged": 2, "removed": 3, "already_imported": 4}


def summary(info: RunInfo) -> str:
    c = info.counts
    lines = [
        f"import #{info.id} ({info.kind}, {info.department_id}) {info.file_name}: {info.status}",
        f"  encoding {info.encoding or '?'}, mapping {info.mapping}",
        f"  rows read {info.rows_read}, stored {info.rows_stored}, rejected {info.rows_rejected}, "
        f"stored with warnings {info.rows_warned}",
    ]
    for table in ("households", "persons", "phones", "debts", "payments", "plans", "plan_dues", "contacts"):
        if isinstance(c.get(table), dict):
            t = c[table]  # (as stored: jsonb keeps its keys in an order of its own)
            extra = ", ".join(f"{k} {t[k]}" for k in sorted(t, key=lambda k: _ORDER.get(k, len(_ORDER))))
            lines.append(f"  {table.replace('_', ' ')}: {extra}")
    for key in (
        "households_paid_off",
        "targets_excluded",
        "phones_set_aside",
        "debts_closed",
        "debts_applied",
        "yen_applied",
        "payments_in_export",
        "payments_over_assessed",
        "plans_older",
        "contacts_older",
        "blank_lines",
    ):
        if c.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {c[key]}")
    if c.get("debts_not_closed"):
        lines.append(
            f"  no debt closed: {c['debts_not_closed']} rejected line(s) name no 宛名番号, so what the file"
            " no longer lists cannot be told (correct them and import again)"
        )
    if c.get("debts_not_closed_too_many"):
        closing, open_ = c["debts_not_closed_too_many"].split("/")
        lines.append(
            f"  no debt closed: the file leaves out {closing} of the {open_} open debts its layout gave, more"
            " than its complete_closes_at_most allows (a file cut short, or one district's?)"
        )
    if c.get("plan_dues_not_removed"):
        lines.append(
            f"  no instalment removed: {c['plan_dues_not_removed']} rejected line(s) name no plan, so what the"
            " file no longer lists cannot be told (correct them and import again)"
        )
    if c.get("older_than"):
        lines.append(
            f"  older than the export of {c['older_than']} already imported: its residents, households and"
            " numbers were added where new, none changed"
        )
    if info.message:
        lines.append(f"  {info.message}")
    return "\n".join(lines)
