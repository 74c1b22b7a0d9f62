"""Data in and out: the administrators' import page and the staff's export page.

Uploads are streamed to a file under DIALER_VAR_DIR (never held in memory) and imported through
the same path as `dialer import`; the file is deleted afterwards. The page sends the file as the
request body with the CSRF token in a header (no multipart: the session check never has to read
the body). Exports are for municipal staff only and are audit-logged by the store.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import date
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from dialer.errors import ConfigError, ImportFileError
from dialer.imports import mapping, report
from dialer.imports.dates import DateProblem, parse_date
from dialer.imports.run import ImportRequest, import_file
from dialer.imports.values import clean
from dialer.store import audit, db, exports, imports
from web.auth import current, require
from web.i18n import CATALOG
from web.keys import POOL, SETTINGS
from web.pages import context, lang_of

MAX_UPLOAD = 2 * 1024**3  # 2 GiB: several million households


async def _departments(request: web.Request) -> list[Any]:
    return list(await request.app[POOL].fetch("select id, name_ja, name_en from department order by id"))


@require("admin")
@aiohttp_jinja2.template("imports.html")
async def imports_page(request: web.Request) -> dict[str, Any]:
    departments = await _departments(request)
    runs = []
    for d in departments:  # each department's runs in its own scope (RLS)
        async with db.department(request.app[POOL], d["id"]) as conn:
            runs += await imports.recent(conn, d["id"], limit=10)
    runs.sort(key=lambda r: r.id, reverse=True)
    return context(
        request,
        departments=departments,
        mappings=[(name, mapping.load(name).kind) for name in mapping.shipped()],
        runs=runs[:20],
        catalog=CATALOG[lang_of(request)],
    )


@require("admin")
async def upload(request: web.Request) -> web.Response:
    q = request.query
    department = q.get("department", "")
    name = q.get("name", "upload.csv")[:200]
    if department not in {d["id"] for d in await _departments(request)}:
        return _error("import.bad_department", 422)
    try:
        m = mapping.load(q.get("mapping", ""))
        as_of = parse_date(clean(q["as_of"])[0]).value if q.get("as_of") else None
    except (ConfigError, DateProblem) as exc:
        return _error("import.bad_request", 422, str(exc))
    folder = request.app[SETTINGS].var_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.csv"
    try:
        size = 0
        f = await asyncio.to_thread(path.open, "wb")
        try:
            async for chunk in request.content.iter_chunked(1 << 16):
                size += len(chunk)
                if size > MAX_UPLOAD:
                    return _error("import.too_large", 413)
                await asyncio.to_thread(f.write, chunk)
        finally:
            await asyncio.to_thread(f.close)
        if size == 0:
            return _error("import.empty", 422)
        user = current(request).user
        try:
            info = await import_file(
                request.app[POOL],
                ImportRequest(
                    path=path,
                    department_id=department,
                    mapping=m,
                    file_name=name,
                    user_id=user.id,
                    as_of=as_of,
                ),
            )
        except ImportFileError as exc:
            return _error("import.unreadable", 422, exc.message)
    finally:
        path.unlink(missing_ok=True)
    return web.json_response(
        {
            "id": info.id,
            "department": department,
            "read": info.rows_read,
            "stored": info.rows_stored,
            "rejected": info.rows_rejected,
            "warned": info.rows_warned,
            "summary": report.summary(info),
            "report": f"/admin/imports/{department}/{info.id}/problems.csv",
        }
    )


@require("admin")
async def problems(request: web.Request) -> web.Response:
    department, run_id = request.match_info["department"], int(request.match_info["id"])
    user = current(request).user
    async with db.department(request.app[POOL], department) as conn:
        if await imports.get(conn, run_id, department) is None:
            raise web.HTTPNotFound()
        rows = await imports.problems(conn, run_id)
        await audit.record(
            conn,
            action="import.report",
            user_id=user.id,
            department_id=department,
            object_type="import_run",
            object_id=str(run_id),
        )
    return web.Response(
        body=report.problems_csv(rows),
        content_type="text/csv",
        charset="utf-8",
        headers={"Content-Disposition": f'attachment; filename="import-{run_id}-problems.csv"'},
    )


@require("staff")
@aiohttp_jinja2.template("exports.html")
async def exports_page(request: web.Request) -> dict[str, Any]:
    today = date.today()
    return context(request, first=today.replace(day=1).isoformat(), last=today.isoformat())


@require("staff")
async def download(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    user = current(request).user
    kind = str(form.get("kind", ""))
    try:
        first = date.fromisoformat(str(form.get("from", "")))
        last = date.fromisoformat(str(form.get("to", "")))
    except ValueError:
        return _error("export.bad_dates", 422)
    if kind not in exports.KINDS or last < first or (last - first).days > 366 or user.department_id is None:
        return _error("export.bad_request", 422)
    out = await exports.export(
        request.app[POOL],
        kind=kind,
        department_id=user.department_id,
        first=first,
        last=last,
        user_id=user.id,
        via="web",
    )
    return web.Response(
        body=out.data,
        content_type="text/csv",
        charset=out.encoding.replace("utf-8-sig", "utf-8"),
        headers={"Content-Disposition": f'attachment; filename="{out.filename}"'},
    )


def _error(key: str, status: int, detail: str = "") -> web.Response:
    return web.json_response({"error": key, "detail": detail}, status=status)


def routes(app: web.Application) -> None:
    app.router.add_get("/admin/imports", imports_page)
    app.router.add_post("/api/admin/imports", upload)
    app.router.add_get("/admin/imports/{department}/{id:\\d+}/problems.csv", problems)
    app.router.add_get("/staff/exports", exports_page)
    app.router.add_post("/staff/exports", download)
