"""The staff's list of cases handed to them (職員への引継ぎ, dialer/store/handovers.py).

The list names nobody; a case opened shows the household's minimal record for a payment
consultation (names, address, numbers, what is owed, the operator's note) and is written to the
audit log as a view of that record. Staff take a case and close it with what was agreed, which
goes into the household's 経過記録. Municipal staff only, their own department.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from dialer.store import db, handovers
from web.auth import current, require
from web.i18n import CATALOG
from web.keys import POOL
from web.pages import ID, context, lang_of

PARTIES = ("本人", "家族", "その他")


@require("staff")
@aiohttp_jinja2.template("handovers.html")
async def list_page(request: web.Request) -> dict[str, Any]:
    user = current(request).user
    assert user.department_id is not None
    async with db.department(request.app[POOL], user.department_id) as conn:
        cases = await handovers.listed(conn, user.department_id)
        waiting = await handovers.open_count(conn, user.department_id)
    cut = len(cases) > handovers.LISTED_AT_MOST
    return context(request, cases=cases[: handovers.LISTED_AT_MOST], cut=cut, waiting=waiting)


@require("staff")
async def case_page(request: web.Request) -> web.StreamResponse:
    return await _case(request, int(request.match_info["id"]))


async def _case(request: web.Request, case_id: int, error: str = "", typed: str = "") -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None
    try:
        async with db.department(request.app[POOL], user.department_id) as conn:
            case = await handovers.opened(conn, user.department_id, case_id, user, request.remote or "")
    except handovers.HandoverError as exc:
        raise web.HTTPNotFound() from exc
    ctx = context(
        request, case=case, error=error, typed=typed, methods=handovers.METHODS, parties=PARTIES,
        catalog=CATALOG[lang_of(request)],
    )  # fmt: skip
    response = aiohttp_jinja2.render_template("handover.html", request, ctx)
    response.set_status(409 if error == "ho.err.done" else 422 if error else 200)
    return response


@require("staff")
async def take(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None
    case_id = int(request.match_info["id"])
    others = _shown_with(await request.post())
    try:
        async with db.department(request.app[POOL], user.department_id) as conn:
            await handovers.take(conn, user.department_id, case_id, user, request.remote or "", others)
    except handovers.HandoverError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound() from exc
        return await _case(request, case_id, exc.key)
    raise web.HTTPFound(f"/staff/handovers/{case_id}")


@require("staff")
async def finish(request: web.Request) -> web.StreamResponse:
    user = current(request).user
    assert user.department_id is not None
    case_id = int(request.match_info["id"])
    form = await request.post()
    method, party = str(form.get("method", ""))[:20], str(form.get("party", ""))[:20]
    result = str(form.get("result", "")).replace("\r\n", "\n")[: handovers.RESULT_MAX + 1]
    if party not in PARTIES:
        return await _case(request, case_id, "error.invalid", result)
    try:
        async with db.department(request.app[POOL], user.department_id) as conn:
            await handovers.finish(
                conn, user.department_id, case_id, user, method, party, result, request.remote or "",
                _shown_with(form),
            )  # fmt: skip
    except handovers.HandoverError as exc:
        if exc.status == 404:
            raise web.HTTPNotFound() from exc
        return await _case(request, case_id, exc.key, result)
    raise web.HTTPFound("/staff/handovers")


def _shown_with(form: Any) -> tuple[int, ...]:
    """The household's other cases the page showed (hidden fields): taken and closed with this one."""
    shown = [str(v) for v in form.getall("with", [])][:50]
    return tuple(int(v) for v in shown if v.isdigit() and len(v) < 19)


def routes(app: web.Application) -> None:
    app.router.add_get("/staff/handovers", list_page)
    app.router.add_get(f"/staff/handovers/{ID}", case_page)
    app.router.add_post(f"/staff/handovers/{ID}/take", take)
    app.router.add_post(f"/staff/handovers/{ID}/done", finish)
