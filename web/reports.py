"""日報・月報 on a page: a department's calls over a period (dialer/store/reports.py), as a table and
as CSV for Excel. Supervisors and municipal staff, for their own department."""

from __future__ import annotations

from datetime import date, datetime, timedelta

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
    if by not in reports.BY:
        return first, last, "day", "rep.bad_dates"
    return first, last, by, reports.period_problem(first, last, today)


@require("supervisor", "staff")
async def reports_page(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None  # supervisors and staff belong to a department
    first, last, by, error = _period(request)
    made = None
    if not error:
        try:
            async with db.department(request.app[POOL], user.department_id) as conn:
                made = await reports.report(conn, user.department_id, first, last, by)
        except TimeoutError:  # a long period on a busy database: said, not a 500
            error = "rep.too_slow"
    lang = lang_of(request)
    ctx = context(
        request, first=first.isoformat(), last=last.isoformat(), by=by, error=error, report=made,
        columns=report_format.COLUMNS[lang], rows=[report_format.cells(r, by, lang) for r in made.rows] if made else [],
        summary=report_format.summary(made, lang) if made else [], choices=report_format.BY[lang],
        month_start=first.replace(day=1).isoformat(), yesterday=(datetime.now(TOKYO).date() - timedelta(days=1)).isoformat(),
    )  # fmt: skip
    response = aiohttp_jinja2.render_template("reports.html", request, ctx)
    response.set_status(503 if error == "rep.too_slow" else 422 if error else 200)
    return response


@require("supervisor", "staff")
async def reports_csv(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None
    first, last, by, error = _period(request)
    if error:
        return web.json_response({"error": error}, status=422)
    try:
        async with db.department(request.app[POOL], user.department_id) as conn:
            made = await reports.report(conn, user.department_id, first, last, by)
    except TimeoutError:
        return web.json_response({"error": "rep.too_slow"}, status=503)
    name = f"report-{user.department_id}-{first.isoformat()}-{last.isoformat()}-{by}.csv"
    return web.Response(
        body=report_format.to_csv(made, lang_of(request)),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def routes(app: web.Application) -> None:
    app.router.add_get("/supervisor/reports", reports_page)
    app.router.add_get("/supervisor/reports.csv", reports_csv)
