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
from dialer.retention import Policy
from dialer.store import audit, db
from dialer.store import retention as store
from web.auth import current, require
from web.keys import POOL
from web.pages import context

_FIELDS = {"closed": "closed_days", "import_report": "import_report_days", "audit": "audit_days"}


async def _departments(request: web.Request) -> list[Any]:
    return list(await request.app[POOL].fetch("select id, name_ja, name_en from department order by id"))


@require("admin")
@aiohttp_jinja2.template("retention.html")
async def page(request: web.Request) -> dict[str, Any]:
    pool = request.app[POOL]
    departments = await _departments(request)
    policies = await store.policies(pool)  # department settings: no resident in them
    confirmed = await store.confirmed(pool)
    runs: dict[int, store.PurgeRun] = {}
    for d in departments:  # each department's records in its own scope (RLS); server-wide ones in every scope
        async with db.department(pool, d["id"]) as conn:
            runs.update((r.id, r) for r in await store.history(conn, d["id"], limit=30))
    error = request.query.get("error", "")
    return context(
        request,
        departments=departments,
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
    current_policy = (await store.policies(pool)).get(department)
    if current_policy is None:
        raise web.HTTPNotFound()
    form = await request.post()
    try:
        days = {_FIELDS[k]: int(str(form.get(k, "")).strip()) for k in _FIELDS}
    except ValueError:
        raise web.HTTPSeeOther("/admin/retention?error=ret.err.number") from None
    try:
        new = Policy(**days)
    except ConfigError:
        raise web.HTTPSeeOther("/admin/retention?error=ret.err.bounds") from None
    async with db.transaction(pool) as conn:
        await store.set_policy(conn, department, new)
        await audit.record(
            conn, action="retention.set", user_id=current(request).user.id, department_id=department,
            object_type="department", object_id=department,
            detail={"before": current_policy.as_dict(), "after": new.as_dict()},
            remote_addr=request.remote or "",
        )  # fmt: skip
    raise web.HTTPSeeOther(f"/admin/retention?saved={department}")


@require("admin")
async def record(request: web.Request) -> web.Response:
    """One purge's record as plain text (UTF-8), to print or file."""
    run_id = int(request.match_info["id"])
    pool = request.app[POOL]
    for scope in [None, *(d["id"] for d in await _departments(request))]:  # None: server-wide records
        async with db.department(pool, scope) as conn:
            run = await store.get(conn, run_id)
        if run is not None:
            break
    else:
        raise web.HTTPNotFound()
    name = "サーバー全体 / server-wide"
    if run.department_id is not None:
        d = next(x for x in await _departments(request) if x["id"] == run.department_id)
        name = f"{d['name_ja']} / {d['name_en']} ({run.department_id})"
    text = retention.certificate(
        run_id=run.id, department=name, started=run.started_at, finished=run.finished_at, status=run.status,
        trigger=run.trigger, user_name=run.user_name, policy=run.policy, cutoffs=run.cutoffs, counts=run.counts,
        vacuumed=run.vacuumed, message=run.message,
    )  # fmt: skip
    return web.Response(text=text, content_type="text/plain", charset="utf-8")


def routes(app: web.Application) -> None:
    app.router.add_get("/admin/retention", page)
    app.router.add_post("/admin/retention/{department}", change)
    app.router.add_get("/admin/retention/records/{id:\\d{1,18}}.txt", record)
