"""`dialer report`: 日報・月報, a department's calls over a period (dialer/store/reports.py)."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

from campaigns.hours import TOKYO
from dialer.config import Settings
from dialer.errors import ConfigError


def register(sub: Any) -> None:
    rep = sub.add_parser("report", help="日報・月報: calls, contacts, promises, abandons over a period")
    rep.add_argument("--department", required=True)
    rep.add_argument("--from", dest="first", help="first day (YYYY-MM-DD or 和暦); default today")
    rep.add_argument("--to", dest="last", help="last day, inclusive; default the first")
    rep.add_argument("--by", choices=["day", "hour", "campaign", "operator"], default="day")
    rep.add_argument("--output", type=Path, help="write it as CSV (UTF-8, for Excel) instead of a table")
    rep.add_argument("--lang", choices=["ja", "en"], default="ja", help="the CSV's headings")
    rep.set_defaults(func=_report)


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    from dialer import report_format
    from dialer.cli import with_pool
    from dialer.cli_data import _date_arg, _output
    from dialer.store import db, departments, reports

    today = datetime.now(TOKYO).date()
    first = _date_arg(args.first) or today
    last = _date_arg(args.last) or first
    problem = reports.period_problem(first, last, today)
    if problem:
        raise ConfigError(
            {
                "rep.bad_order": "--to is before --from.",
                "rep.too_long": "A report covers at most 367 days (a year): give a shorter period.",
            }.get(problem, "The period must lie between 2000 and next year.")
        )
    out = _output(args.output) if args.output else None

    async def body(pool: Any) -> None:
        await departments.require(pool, args.department)
        async with db.department(pool, args.department) as conn:
            made = await reports.report(conn, args.department, first, last, args.by)
        if out is not None:
            out.write(report_format.to_csv(made, args.lang))
            print(f"{len(made.rows) - 1} rows and the total written to {args.output}")
        else:
            print(report_format.to_text(made))

    try:
        await with_pool(settings, body)
    finally:
        if out is not None:
            out.close()
    return 0
