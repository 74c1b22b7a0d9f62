"""The administrators' retention page: how long each department keeps its data, the records of
past purges, and each record as text (消去記録) for the council's file.

The purge itself runs daily (PURGE_AT) or by `dialer retention purge`: a first purge can delete
tens of thousands of households, which no page request should wait for. A change of retention is
written to the audit log with who made it and the values before and after.
"""

from __future__ import annotations

from typing import Any

import aiohttp_jinja2
from aiohttp import web

from dialer import retention
from dialer.errors import ConfigError
from dialer.store import db
from dialer.store import retention as store
from web.auth import current, require
from web.keys import POOL
from web.pages import ID, context, departments


@require("admin")
@aiohttp_jinja2.template("retention.html")
async def page(request: web.Request) -> dict[str, Any]:
    pool = request.app[POOL]
    all_departments = await departments(request)
    policies = await store.policies(pool)  # department settings: no resident in them
    confirmed = await store.confirmed(pool)
    runs: dict[int, store.PurgeRun] = {}
    # each department's records in its own scope (RLS); the server-wide ones are seen in every scope
    for d in all_departments:
        async with db.department(pool, d["id"]) as conn:
            runs.update((r.id, r) for r in await store.history(conn, d["id"], limit=30))
    error = request.query.get("error", "")
    return context(
        request,
        departments=all_departments,
        policies=policies,
        confirmed=confirmed,
        bounds=retention.BOUNDS,
        runs=sorted(runs.values(), key=lambda r: r.id, reverse=True)[:30],
        labels=retention.KIND_LABELS,
        nonzero=retention.nonzero,
        saved=request.query.get("saved", ""),
        error=error if error in ("ret.err.bounds", "ret.err.number") else "",
    )


@require("admin")
async def change(request: web.Request) -> web.Response:
    department = request.match_info["department"]
    pool = request.app[POOL]
    if department not in await store.policies(pool):
        raise web.HTTPNotFound()
    form = await request.post()
    try:
        days = {kind: int(str(form.get(kind, "")).strip()) for kind in retention.BOUNDS}
    except ValueError:
        raise web.HTTPSeeOther("/admin/retention?error=ret.err.number") from None
    try:
        await store.change_policy(
            pool, department, days, user_id=current(request).user.id, remote_addr=request.remote or ""
        )
    except ConfigError:
        raise web.HTTPSeeOther("/admin/retention?error=ret.err.bounds") from None
    raise web.HTTPSeeOther(f"/admin/retention?saved={department}")


@require("admin")
async def record(request: web.Request) -> web.Response:
    """One purge's record as plain text (UTF-8), to print or file."""
    run_id = int(request.match_info["id"])
    pool = request.app[POOL]
    for scope in [None, *(d["id"] for d in await departments(request))]:  # None: server-wide records
        async with db.department(pool, scope) as conn:
            run = await store.get(conn, run_id)
        if run is not None:
            break
    else:
        raise web.HTTPNotFound()
    async with db.department(pool, run.department_id) as conn:
        text = await store.certificate(conn, run)
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def routes(app: web.Application) -> None:
    app.router.add_get("/admin/retention", page)
    app.router.add_post("/admin/retention/{department}", change)
    app.router.add_get(f"/admin/retention/records/{ID}.txt", record)
