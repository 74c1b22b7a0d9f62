"""日報・月報 on a page: a department's calls over a period (dialer/store/reports.py), as a table and
as CSV for Excel. Supervisors and municipal staff, for their own department."""

from __future__ import annotations

from datetime import date, datetime

import aiohttp_jinja2
from aiohttp import web

from campaigns.hours import TOKYO
from dialer import report_format
from dialer.store import db, reports
from web.auth import current, require
from web.keys import POOL
from web.pages import context, lang_of


def _period(request: web.Request) -> tuple[date, date, str, str]:
    """(first, last, by, error key or ''): the query's, or today by day."""
    q = request.query
    today = datetime.now(TOKYO).date()
    by = q.get("by", "day")
    try:
        first = date.fromisoformat(q["from"]) if q.get("from") else today
        last = date.fromisoformat(q["to"]) if q.get("to") else first
    except ValueError:
        return today, today, "day", "rep.bad_dates"
    if by not in reports.BY:  # (a hand-written url: what is wrong is the grouping, not the dates)
        return first, last, "day", "rep.bad_by"
    return first, last, by, reports.period_problem(first, last, today)


async def _made(request: web.Request) -> tuple[reports.Report | None, date, date, str, str]:
    """The report the query asks for, of the user's department: (report or None, first, last, by,
    error key or ''). A long period on a busy database is said (rep.too_slow), never a 500."""
    user = current(request).user
    assert user.department_id is not None  # supervisors and staff belong to a department
    first, last, by, error = _period(request)
    if error:
        return None, first, last, by, error
    try:
        async with db.department(request.app[POOL], user.department_id) as conn:
            return await reports.report(conn, user.department_id, first, last, by), first, last, by, ""
    except TimeoutError:
        return None, first, last, by, "rep.too_slow"


def _status(error: str) -> int:
    return 503 if error == "rep.too_slow" else 422 if error else 200


@require("supervisor", "staff")
async def reports_page(request: web.Request) -> web.StreamResponse:
    made, first, last, by, error = await _made(request)
    lang = lang_of(request)
    ctx = context(
        request, first=first.isoformat(), last=last.isoformat(), by=by, error=error, report=made,
        columns=report_format.COLUMNS[lang], rows=[report_format.cells(r, by, lang, shown=True) for r in made.rows] if made else [],
        summary=report_format.summary(made, lang) if made else [], choices=report_format.BY[lang],
    )  # fmt: skip
    response = aiohttp_jinja2.render_template("reports.html", request, ctx)
    response.set_status(_status(error))
    return response


@require("supervisor", "staff")
async def reports_csv(request: web.Request) -> web.StreamResponse:
    made, first, last, by, error = await _made(request)
    if made is None:
        return web.json_response({"error": error}, status=_status(error))
    name = f"report-{made.department_id}-{first.isoformat()}-{last.isoformat()}-{by}.csv"
    return web.Response(
        body=report_format.to_csv(made, lang_of(request)),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def routes(app: web.Application) -> None:
    app.router.add_get("/supervisor/reports", reports_page)
    app.router.add_get("/supervisor/reports.csv", reports_csv)
