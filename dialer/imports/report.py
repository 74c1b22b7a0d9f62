"""The error report of an import, as a CSV staff can open in Excel (UTF-8 with a BOM), and as text."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Any

from dialer.csvsafe import cell
from dialer.store.imports import RunInfo

HEADER = ("行", "列", "種別", "内容", "値")
SEVERITY = {"error": "エラー(取り込まず)", "warning": "警告(取り込み済み)"}


def problems_csv(rows: Iterable[Any]) -> bytes:
    """Rows of import_problem (records or mappings) as the report file."""
    return report_head() + report_lines(rows)


def report_head() -> bytes:
    """The report file's start: the BOM (Excel then reads UTF-8) and the header line."""
    return "\ufeff".encode() + report_lines([], header=True)


def report_lines(rows: Iterable[Any], header: bool = False) -> bytes:
    """Lines of the report for some rows of import_problem; a report is streamed a chunk at a time."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    if header:
        w.writerow(HEADER)
    for r in rows:
        w.writerow((r["line"], r["column_name"], SEVERITY[r["severity"]], r["message"], cell(r["value"])))
    return buf.getvalue().encode("utf-8")


def summary(info: RunInfo) -> str:
    c = info.counts
    lines = [
        f"import #{info.id} ({info.kind}, {info.department_id}) {info.file_name}: {info.status}",
        f"  encoding {info.encoding or '?'}, mapping {info.mapping}",
        f"  rows read {info.rows_read}, stored {info.rows_stored}, rejected {info.rows_rejected}, "
        f"stored with warnings {info.rows_warned}",
    ]
    for table in ("households", "persons", "phones", "debts", "payments"):
        if isinstance(c.get(table), dict):
            t = c[table]
            extra = ", ".join(f"{k} {v}" for k, v in t.items())
            lines.append(f"  {table}: {extra}")
    for key in ("households_paid_off", "debts_applied", "yen_applied", "blank_lines"):
        if c.get(key):
            lines.append(f"  {key.replace('_', ' ')}: {c[key]}")
    if info.message:
        lines.append(f"  {info.message}")
    return "\n".join(lines)
