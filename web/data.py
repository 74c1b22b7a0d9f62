"""Data in: the administrators' import page (the staff's export page is web/exports.py).

Uploads are streamed to a file under DIALER_VAR_DIR (never held in memory), checked (encoding,
header, mapped columns: a file that cannot be read is refused at once), and imported in the
background through the same path as `dialer import`; the upload answers 202 with the run's id and
the page follows its progress until it is done. The file is deleted afterwards. A million
households take minutes: no request (or proxy in front of us) waits that long. One upload per
department at a time (409 for a second one): an import waiting for its turn would hold one of the
web app's database connections. When the app stops, a running import is cancelled and recorded as
failed (its transaction stores nothing).

The page sends the file as the request body with the CSRF token in a header (no multipart: the
session check never has to read the body). Error reports are streamed a page of problems at a
time, each page its own short query.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from dialer import logs
from dialer.errors import ConfigError, DialerError, ImportFileError
from dialer.imports import mapping, report
from dialer.imports.dates import DateProblem, parse_date
from dialer.imports.run import ImportRequest, Progress, check_as_of, check_file, import_file
from dialer.imports.values import clean
from dialer.store import audit, db, imports
from web.auth import current, require
from web.i18n import CATALOG, translate
from web.keys import POOL, SETTINGS
from web.pages import ID, context, departments, lang_of

log = logs.get("web.data")

MAX_UPLOAD = 2 * 1024**3  # 2 GiB: several million households


@dataclass(eq=False)
class _Job:
    """An import running in this process, started from the page."""

    department: str
    progress: Progress
    task: asyncio.Task[None] | None = None
    error: BaseException | None = None  # why it ended before its run was recorded


@dataclass
class _Imports:
    """This process's background imports: at most one per department (another one waiting in
    PostgreSQL for its turn would hold a connection of the web app's pool all that time)."""

    jobs: set[_Job] = field(default_factory=set)
    stopping: bool = False


IMPORTS = web.AppKey("imports", _Imports)


@require("admin")
@aiohttp_jinja2.template("imports.html")
async def imports_page(request: web.Request) -> dict[str, Any]:
    all_departments = await departments(request)
    runs = []
    for d in all_departments:  # each department's runs in its own scope (RLS)
        async with db.department(request.app[POOL], d["id"]) as conn:
            await imports.close_interrupted(conn, d["id"])  # never 実行中 for a run whose importer is gone
            runs += await imports.recent(conn, d["id"], limit=10)
    runs.sort(key=lambda r: r.id, reverse=True)
    return context(
        request,
        departments=all_departments,
        mappings=[mapping.load(name) for name in mapping.shipped()],
        runs=runs[:20],
        catalog=CATALOG[lang_of(request)],
    )


@require("admin")
async def upload(request: web.Request) -> web.Response:
    q = request.query
    department = q.get("department", "")
    name = q.get("name", "upload.csv")[:200]
    if department not in {d["id"] for d in await departments(request)}:
        return _error("import.bad_department", 422)
    layout = _layout(q.get("mapping", ""))
    if layout is None:
        return _error("import.bad_mapping", 422)
    # The page says what is wrong in its own language; details only where they need no words.
    try:
        m = mapping.load(str(layout))
    except ConfigError as exc:
        log.warning("import.mapping_unreadable", mapping=str(layout), error=str(exc))
        return _error("import.bad_mapping", 422)
    try:
        mapping.check_department(m, department)
    except ImportFileError as exc:
        return _error("import.unreadable", 422, _reason(request, exc))
    typed = q.get("as_of", "")
    try:
        as_of = parse_date(clean(typed)[0]).value if typed else None
    except DateProblem:
        return _error("import.bad_as_of", 422, typed[:40])
    try:
        check_as_of(as_of)
    except ConfigError:
        return _error("import.as_of_future", 422, typed[:40])
    state = request.app[IMPORTS]
    if state.stopping:
        return _error("import.stopping", 503)
    if any(j.department == department for j in state.jobs):
        return _error("import.busy", 409)
    folder = request.app[SETTINGS].var_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    folder.chmod(0o700)  # residents' data: the product's user only (a folder made before stays so too)
    path = folder / f"{os.getpid()}-{uuid.uuid4().hex}.csv"  # (whose: left by a dead process, it goes)
    handed_over = False  # once the import has the file, it deletes it when it ends
    try:
        size = await _receive(request, path)
        if size == 0:
            return _error("import.empty", 422)
        if size > MAX_UPLOAD:
            return _error("import.too_large", 413)
        try:
            await asyncio.to_thread(check_file, path, m)
        except ImportFileError as exc:
            return _error("import.unreadable", 422, _reason(request, exc))
        except ConfigError as exc:  # a mapping whose constants cannot be used
            return _error("import.bad_request", 422, str(exc))
        if state.stopping or any(j.department == department for j in state.jobs):  # while we read
            return _error("import.stopping", 503) if state.stopping else _error("import.busy", 409)
        req = ImportRequest(
            path=path,
            department_id=department,
            mapping=m,
            file_name=name,
            user_id=current(request).user.id,
            as_of=as_of,
        )
        job = _Job(department, Progress())
        job.task = asyncio.create_task(_import_in_background(request.app, req, job))
        state.jobs.add(job)
        handed_over = True
    finally:
        if not handed_over:
            path.unlink(missing_ok=True)
    started = asyncio.ensure_future(job.progress.started.wait())
    try:
        await asyncio.wait({started, job.task}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        started.cancel()
    if job.progress.run_id is None:  # it ended before the run was recorded
        if isinstance(job.error, ImportFileError):
            return _error("import.unreadable", 422, _reason(request, job.error))
        return _error("import.unavailable", 503)
    run_id = job.progress.run_id
    return web.json_response(
        {
            "id": run_id,
            "department": department,
            "status": "running",
            "url": f"/api/admin/imports/{department}/{run_id}",
        },
        status=202,
    )


async def _receive(request: web.Request, path: Path) -> int:
    """Stream the request body to `path`; its size (stops reading once past MAX_UPLOAD)."""
    size = 0
    fd = await asyncio.to_thread(os.open, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    f = await asyncio.to_thread(os.fdopen, fd, "wb")
    try:
        async for chunk in request.content.iter_chunked(1 << 16):
            size += len(chunk)
            if size > MAX_UPLOAD:
                break
            await asyncio.to_thread(f.write, chunk)
    finally:
        await asyncio.to_thread(f.close)
    return size


async def _import_in_background(app: web.Application, req: ImportRequest, job: _Job) -> None:
    try:
        await import_file(app[POOL], req, job.progress)
    except asyncio.CancelledError:
        raise  # the app is stopping: import_file has recorded the run as interrupted
    except Exception as exc:  # a failed run is recorded with its reason, which the page shows
        job.error = exc
        if not isinstance(exc, DialerError):  # never the message: it may quote a resident's data
            log.error("import.background_failed", run=job.progress.run_id, error=type(exc).__name__)
    finally:
        req.path.unlink(missing_ok=True)
        app[IMPORTS].jobs.discard(job)


async def stop_imports(app: web.Application) -> None:
    """When the app stops (on_shutdown, and again on_cleanup for an upload that was still being
    received): no new import starts; those running are cancelled and record themselves as failed."""
    state = app[IMPORTS]
    state.stopping = True
    tasks = [j.task for j in state.jobs if j.task is not None]
    for t in tasks:
        t.cancel()
    if tasks:
        await asyncio.wait(tasks, timeout=10.0)


@require("admin")
async def import_status(request: web.Request) -> web.Response:
    """A run's state; while it runs in this process, how far it has got."""
    department, run_id = request.match_info["department"], int(request.match_info["id"])
    if department not in {d["id"] for d in await departments(request)}:
        raise web.HTTPNotFound()
    job = next((j for j in request.app[IMPORTS].jobs if j.progress.run_id == run_id), None)
    async with db.department(request.app[POOL], department) as conn:
        info = await imports.get(conn, run_id, department)
        # running elsewhere, or its process was killed: then nobody holds its lock any more
        running_elsewhere = info is not None and info.status == "running" and job is None
        if running_elsewhere and await imports.close_interrupted(conn, department):
            info = await imports.get(conn, run_id, department)
    if info is None:
        raise web.HTTPNotFound()
    body: dict[str, Any] = {"id": info.id, "department": department, "status": info.status}
    if info.status == "running":
        p = job.progress if job else None
        body["phase"] = p.phase if p else ""
        body["read"] = p.rows_read if p else None
        body["percent"] = int(100 * p.bytes_read / p.total_bytes) if p and p.total_bytes else None
        body["step"] = p.step if p else ""
        return web.json_response(body)
    body.update(
        kind=info.kind,
        read=info.rows_read,
        stored=info.rows_stored,
        rejected=info.rows_rejected,
        warned=info.rows_warned,
        message=info.message,
        counts=info.counts,
        summary=report.summary(info),
        report=f"/admin/imports/{department}/{info.id}/problems.csv"
        if info.problems_purged_at is None
        else None,
    )
    return web.json_response(body)


@require("admin")
async def problems(request: web.Request) -> web.StreamResponse:
    department, run_id = request.match_info["department"], int(request.match_info["id"])
    user = current(request).user
    pool = request.app[POOL]
    if department not in {d["id"] for d in await departments(request)}:  # '*' is a scope, not one
        raise web.HTTPNotFound()
    async with db.department(pool, department) as conn:
        info = await imports.get(conn, run_id, department)
        if info is None:
            raise web.HTTPNotFound()
        if info.problems_purged_at is not None:  # past its retention: deleted, say so
            return _error("import.report_purged", 410)
        await audit.record(
            conn,
            action="import.report",
            user_id=user.id,
            department_id=department,
            object_type="import_run",
            object_id=str(run_id),
            remote_addr=request.remote or "",
        )

    async def page(after_line: int) -> list[Any]:  # a short transaction per page
        async with db.department(pool, department) as conn:
            return await imports.problem_page(conn, run_id, after_line)

    response = web.StreamResponse(
        headers={
            "Content-Type": "text/csv; charset=utf-8",
            "Content-Disposition": f'attachment; filename="import-{run_id}-problems.csv"',
        }
    )
    await response.prepare(request)
    try:
        async for chunk in report.stream(page):
            await response.write(chunk)
    except ConnectionResetError:  # the browser went away: nothing to finish
        return response
    await response.write_eof()
    return response


def _layout(name: str) -> Path | None:
    """The file of a layout the page names: a shipped one, by name only; None for anything else.

    mapping.load also takes a path (for `dialer import --mapping FILE`, run by an administrator on
    the server); from the web that would make the server open and parse any file it can read
    (/etc/shadow), or import with a layout nobody chose. There is no mappings directory to
    configure: a municipality's own layout file is used from the command line.
    """
    return mapping.SHIPPED / f"{name}.toml" if name in mapping.shipped() else None


def _reason(request: web.Request, exc: ImportFileError) -> str:
    """Why a file was refused, in the page's language (the English message when there is no key)."""
    if not exc.reason:
        return exc.message
    return translate(lang_of(request), f"import.reason.{exc.reason}").format(**exc.params)


def _error(key: str, status: int, detail: str = "") -> web.Response:
    return web.json_response({"error": key, "detail": detail}, status=status)


def routes(app: web.Application) -> None:
    """The import pages, and the background imports they start (cancelled when the app stops)."""
    app[IMPORTS] = _Imports()
    app.on_shutdown.append(stop_imports)
    app.on_cleanup.append(stop_imports)
    app.router.add_get("/admin/imports", imports_page)
    app.router.add_post("/api/admin/imports", upload)
    app.router.add_get(f"/api/admin/imports/{{department}}/{ID}", import_status)
    app.router.add_get(f"/admin/imports/{{department}}/{ID}/problems.csv", problems)
