"""Data out: the staff's export page (contact results and 経過記録 back to the delinquency system).

Municipal staff only; the file is made by the store (dialer/store/exports.py), in the
department's encoding, and every export is audit-logged there.
"""

from __future__ import annotations

from datetime import date, datetime

import aiohttp_jinja2
from aiohttp import web

from campaigns.hours import TOKYO
from dialer.imports.dates import FIRST, LAST
from dialer.store import exports
from web.auth import current, require
from web.keys import POOL
from web.pages import context


@require("staff")
async def exports_page(request: web.Request) -> web.StreamResponse:
    today = datetime.now(TOKYO).date()  # the municipality's day, whatever the server's zone
    return _exports_form(request, "results", today.replace(day=1).isoformat(), today.isoformat())


def _exports_form(request: web.Request, kind: str, first: str, last: str, error: str = "") -> web.Response:
    """The export form, with what was entered and why it cannot be exported (422) if it cannot."""
    ctx = context(request, kind=kind, first=first, last=last, error=error)
    response = aiohttp_jinja2.render_template("exports.html", request, ctx)
    response.set_status(422 if error else 200)
    return response


@require("staff")
async def download(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = current(request).user
    kind, typed_first, typed_last = (str(form.get(k, ""))[:20] for k in ("kind", "from", "to"))
    try:
        first, last = date.fromisoformat(typed_first), date.fromisoformat(typed_last)
    except ValueError:
        return _exports_form(request, kind, typed_first, typed_last, "export.bad_dates")
    if (
        not FIRST <= first <= last <= LAST
    ):  # (1868–2200, as imports read dates: 0001-01-01 or 9999-12-31 was a 500)
        return _exports_form(
            request, kind, typed_first, typed_last, "export.bad_order" if last < first else "export.bad_dates"
        )
    if kind not in exports.KINDS or (last - first).days > 366 or user.department_id is None:
        return _exports_form(request, kind, typed_first, typed_last, "export.bad_request")
    out = await exports.export(
        request.app[POOL],
        kind=kind,
        department_id=user.department_id,
        first=first,
        last=last,
        user_id=user.id,
        via="web",
        remote_addr=request.remote or "",
    )
    return csv_download(out.data, out.encoding, out.filename)


def csv_download(data: bytes, encoding: str, filename: str) -> web.Response:
    """A CSV file for the delinquency system, downloaded as made (its encoding named for the browser)."""
    return web.Response(
        body=data,
        content_type="text/csv",
        charset=encoding.replace("utf-8-sig", "utf-8"),  # the BOM is in the bytes already
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def routes(app: web.Application) -> None:
    app.router.add_get("/staff/exports", exports_page)
    app.router.add_post("/staff/exports", download)
