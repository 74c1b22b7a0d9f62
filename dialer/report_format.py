"""A report (dialer/store/reports.py) as text for a terminal and as CSV for Excel, in Japanese or
English. Pure."""

from __future__ import annotations

import csv
import io

from dialer import csvsafe
from dialer.store.reports import Report, Row

COLUMNS = {
    "ja": ("区分", "架電件数", "応答(本人・家族等)", "オペレーター接続", "接触件数", "接触率(%)", "納付約束件数",
           "納付約束額(円)", "職員への引継ぎ", "放棄呼", "放棄率(%)", "通話時間(分)"),
    "en": ("group", "calls", "answered (a person)", "connected", "reached", "reach rate (%)", "promises",
           "promised (yen)", "handed to staff", "abandoned", "abandon rate (%)", "talk (min)"),
}  # fmt: skip
TOTAL = {"ja": "合計", "en": "total"}
NOBODY = {"ja": "(オペレーター未接続)", "en": "(no operator)"}
BY = {
    "ja": {"day": "日別", "hour": "時間帯別", "campaign": "キャンペーン別", "operator": "オペレーター別"},
    "en": {"day": "by day", "hour": "by hour", "campaign": "by campaign", "operator": "by operator"},
}


def _pct(value: float | None, none: str = "") -> str:
    return none if value is None else f"{value:.1f}"


def cells(row: Row, by: str, lang: str = "ja", *, shown: bool = False) -> list[str]:
    """A row's cells: for CSV plain numbers (Excel reads them as numbers); `shown` (the page, the
    terminal) with thousands separators, and — for a rate of nothing."""
    if row.key is None:
        label = TOTAL[lang]
    elif row.key == "" and by in ("operator", "campaign"):
        label = NOBODY[lang] if by == "operator" else "—"
    else:
        label = row.key

    def n(value: float) -> str:
        return f"{value:,.0f}" if shown else f"{value:.0f}"

    none = "—" if shown else ""

    def minutes(seconds: float) -> str:  # one decimal: whole minutes rounded per row did not add up (QA)
        return f"{seconds / 60:,.1f}" if shown else f"{seconds / 60:.1f}"

    return [
        label, n(row.calls), n(row.answered), n(row.connected), n(row.reached), _pct(row.reach_pct, none),
        n(row.promises), n(row.promise_yen), n(row.to_staff), n(row.abandoned), _pct(row.abandon_pct, none),
        minutes(row.talk_s),
    ]  # fmt: skip


def summary(report: Report, lang: str = "ja") -> list[tuple[str, str]]:
    """The period's figures that are not per row (— for a rate of no promise due)."""
    if lang == "ja":
        return [
            ("約束履行率(%)", f"{_pct(report.kept_pct, '—')} ({report.promises_kept}/{report.promises_due})"),
            ("接触後の収納", f"{report.paid_households}世帯 {report.paid_yen:,}円"),
            ("催告書", f"{report.letters:,}件"),
        ]
    return [
        ("promises kept (%)", f"{_pct(report.kept_pct, '—')} ({report.promises_kept}/{report.promises_due})"),
        ("paid after contact", f"{report.paid_households} households, ¥{report.paid_yen:,}"),
        ("reminder letters", f"{report.letters:,}"),
    ]


def to_csv(report: Report, lang: str = "ja") -> bytes:
    """UTF-8 with a BOM (Excel reads it as such); no cell starts a formula (labels are names)."""
    buf = io.StringIO(newline="")
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(COLUMNS[lang])
    w.writerows([csvsafe.cell(c) for c in cells(row, report.by, lang)] for row in report.rows)
    w.writerow([])
    w.writerows([csvsafe.cell(label), csvsafe.cell(value)] for label, value in summary(report, lang))
    return buf.getvalue().encode("utf-8-sig")


def to_text(report: Report) -> str:
    title = (
        f"{report.department_id} {report.first.isoformat()}〜{report.last.isoformat()} {BY['ja'][report.by]}"
    )
    table = [list(COLUMNS["ja"]), *(cells(r, report.by, shown=True) for r in report.rows)]
    widths = [max(_width(row[i]) for row in table) for i in range(len(table[0]))]
    lines = [title]
    for row in table:
        lines.append(
            "  ".join(_pad(c, w, left=i == 0) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        )
    lines += [f"{label}: {value}" for label, value in summary(report)]
    return "\n".join(lines)


def _width(text: str) -> int:
    """Columns on a terminal: full-width characters take two."""
    return sum(2 if ord(ch) > 0x2E7F else 1 for ch in text)


def _pad(text: str, width: int, left: bool) -> str:
    space = " " * (width - _width(text))
    return text + space if left else space + text
