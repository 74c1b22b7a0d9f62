"""`dialer import`, `import-payments`, `import-plans`, `import-contacts`, `dialer imports`: the data commands.

Exit codes: 0 every row stored; 1 the file was imported but some rows were rejected (see the
report); 7 the file as a whole could not be read (nothing stored); 2 a bad mapping or option.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, BinaryIO
from zoneinfo import ZoneInfo

from dialer.config import Settings
from dialer.errors import ConfigError, ImportFileError

TOKYO = ZoneInfo("Asia/Tokyo")


def register(sub: Any) -> None:
    imp = sub.add_parser("import", help="import a delinquency export (CSV) for a department")
    imp.add_argument("--department", required=True, help="department id, e.g. nhi or tax")
    imp.add_argument(
        "--mapping", help="a shipped mapping name or a .toml path (default: <department>-sample)"
    )
    imp.add_argument("--as-of", help="the export's 抽出日 (YYYY-MM-DD or 和暦); default today")
    imp.add_argument("--report", type=Path, help="write the error report (CSV) here")
    imp.add_argument("file", type=Path)
    imp.set_defaults(func=_import, kind="households")
    # the files that follow the delinquency data: (command, kind, help, default layout, has an 抽出日)
    for command, kind, what, layout, dated in (
        ("import-payments", "payments", "import a payments (収納) file: paid households stop being called",
         "payments-sample, NHI", False),
        ("import-plans", "plans", "import installment plans (分納) with their schedules: a plan kept keeps its "
         "household from being called", "plans-sample", True),
        ("import-contacts", "contacts", "import the delinquency system's 経過記録 (visits, counter, letters, "
         "calls): those that reached the resident count as last contact", "contacts-sample", True),
    ):  # fmt: skip
        p = sub.add_parser(command, help=what)
        p.add_argument("--department", required=True)
        p.add_argument(
            "--mapping",
            default=layout.split(",")[0],
            help=f"a shipped mapping name or a .toml path (default: {layout})",
        )
        if dated:
            p.add_argument("--as-of", help="the export's 抽出日 (YYYY-MM-DD or 和暦); default today")
        p.add_argument("--report", type=Path, help="write the error report (CSV) here")
        p.add_argument("file", type=Path)
        p.set_defaults(func=_import, kind=kind, **({} if dated else {"as_of": None}))
    runs = sub.add_parser("imports", help="past imports and their error reports")
    rsub = runs.add_subparsers(title="imports commands")
    ls = rsub.add_parser("list", help="the latest imports")
    ls.add_argument("--department")
    ls.set_defaults(func=_list)
    rep = rsub.add_parser("report", help="the error report of one import (CSV to stdout or --output)")
    rep.add_argument("id", type=int)
    rep.add_argument("--output", type=Path)
    rep.set_defaults(func=_report)
    maps = rsub.add_parser("mappings", help="the shipped column mappings")
    maps.set_defaults(func=_mappings)
    smp = rsub.add_parser(
        "sample", help="write a fictitious export in the nhi-sample layout (to try an import)"
    )
    smp.add_argument("--households", type=int, default=1000)
    smp.add_argument("--encoding", default="cp932", choices=["cp932", "utf-8", "utf-8-sig", "utf-16"])
    smp.add_argument("--output", type=Path, required=True)
    smp.set_defaults(func=_sample)
    exp = sub.add_parser("export", help="call results or 経過記録 as CSV for the delinquency system (staff)")
    exp.add_argument("--department", required=True)
    exp.add_argument("--kind", required=True, choices=["results", "history"])
    exp.add_argument("--from", dest="first", required=True, help="first day (YYYY-MM-DD or 和暦)")
    exp.add_argument("--to", dest="last", required=True, help="last day, inclusive")
    exp.add_argument("--user", required=True, help="the login of the staff member exporting (audit log)")
    exp.add_argument("--output", type=Path, required=True)
    exp.set_defaults(func=_export)


def _mapping_for(args: argparse.Namespace) -> Any:
    from dialer.imports import mapping

    name = args.mapping or f"{args.department}-sample"
    if args.mapping is None and name not in mapping.shipped():
        raise ConfigError(f"No shipped mapping for department {args.department!r}: give --mapping FILE.toml.")
    m = mapping.load(name)
    if m.kind != args.kind:
        raise ConfigError(f"The mapping {name} is for {m.kind} files, not {args.kind}.")
    return m


def _date_arg(text: str | None) -> date | None:
    """A date option in 西暦 or 和暦 (--as-of, --from, --to)."""
    from dialer.imports.dates import DateProblem, parse_date
    from dialer.imports.values import clean

    if text is None:
        return None
    try:
        return parse_date(clean(text)[0]).value
    except DateProblem as exc:
        raise ConfigError(f"Not a date: {exc}") from None


async def _import(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.imports import report
    from dialer.imports.run import ImportRequest, Progress, check_file, import_file
    from dialer.store import imports
    from dialer.who import os_user

    req = ImportRequest(
        path=args.file,
        department_id=args.department,
        mapping=_mapping_for(args),
        as_of=_date_arg(args.as_of),
        os_user=os_user(),
    )
    check_file(req.path, req.mapping)  # the mapping against the file's header: before a run is recorded
    report_file = _output(args.report) if args.report else None  # a wrong path: before the import
    code, written = 0, False

    async def body(pool: Any) -> None:
        nonlocal code, written
        progress = Progress()
        shown = asyncio.create_task(_show_progress(progress)) if sys.stderr.isatty() else None
        try:
            info = await import_file(pool, req, progress)
        except ImportFileError as exc:
            if exc.reason == "no_department":  # an option, not the file
                raise ConfigError(exc.message) from None
            raise
        finally:
            if shown:
                shown.cancel()
        print(report.summary(info))
        if info.rows_rejected or info.rows_warned:
            for r in await imports.problems(pool, info.id, limit=10):
                print(f"  line {r['line']} {r['column_name']}: {r['severity']}: {r['message']}")
            if (total := await imports.count_problems(pool, info.id)) > 10:
                print(f"  … {total - 10} more")
            if not args.report:
                print(f"  full report: dialer imports report {info.id} --output problems.csv")
        if report_file is not None:  # written even when empty: an old report is never left in its place
            await _write_report(pool, info.id, report_file)
            written = True
            print(f"  error report: {args.report}")
        code = 1 if info.rows_rejected else 0

    try:
        await with_pool(settings, body)
    finally:
        if report_file is not None:
            report_file.close()
            if not written and args.report.is_file():  # no import ran: no empty report (never /dev/…)
                args.report.unlink(missing_ok=True)
    return code


async def _list(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import imports

    async def body(pool: Any) -> None:
        for r in await imports.recent(pool, args.department):
            started = r.started_at.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")
            print(
                f"#{r.id:<5} {started} {r.department_id:<6} {r.kind:<10} {r.status:<7} "
                f"read {r.rows_read:>8} stored {r.rows_stored:>8} rejected {r.rows_rejected:>6}  {r.file_name}"
            )
            if r.status == "failed" and r.message:
                print(f"       {r.message}")  # why it stored nothing

    await with_pool(settings, body)
    return 0


async def _report(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import audit, imports
    from dialer.who import os_user

    async def body(pool: Any) -> None:
        info = await imports.get(pool, args.id, None)
        if info is None:
            raise ConfigError(f"No import #{args.id}.")
        # the rejected lines quote residents' values: read as on the admin page, in the audit log
        await audit.record(
            pool, action="import.report", user_id=None, department_id=info.department_id,
            object_type="import_run", object_id=args.id, detail={"via": "cli", "os_user": os_user()},
        )  # fmt: skip
        if info.problems_purged_at is not None:
            purged = info.problems_purged_at.astimezone(TOKYO).strftime("%Y-%m-%d")
            raise ConfigError(
                f"The error report of import #{args.id} was deleted on {purged} (past its retention)."
            )
        if info.status == "failed":  # nothing was stored: the reason, then whatever lines it had
            print(f"import #{args.id} failed: {info.message}", file=sys.stderr)
        await _write_report(pool, args.id, _output(args.output) if args.output else None)

    await with_pool(settings, body)
    return 0


async def _mappings(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.imports import mapping

    for name in mapping.shipped():
        m = mapping.load(name)
        print(f"{name:<20} {m.kind:<10} {m.source}")
    return 0


async def _export(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.cli import with_pool
    from dialer.store import exports
    from dialer.who import os_user

    first, last = _date_arg(args.first), _date_arg(args.last)
    assert first is not None and last is not None
    if last < first:
        raise ConfigError("--to is before --from.")

    async def body(pool: Any, target: BinaryIO) -> None:
        user_id = await staff_member(pool, args.user, args.department, "only staff export")
        out = await exports.export(
            pool, kind=args.kind, department_id=args.department, first=first, last=last, user_id=user_id,
            via="cli", os_user=os_user(),
        )  # fmt: skip
        target.write(out.data)
        print(f"{out.rows} rows ({out.encoding}) written to {args.output}")

    await write_whole(args.output, lambda target: with_pool(settings, partial(body, target=target)))
    return 0


async def staff_member(pool: Any, login: str, department_id: str, only: str) -> int:
    """The id of this active member of staff of the department, or a clear error."""
    user = await pool.fetchrow(
        "select id, role, department_id from app_user where login = $1 and active", login
    )
    if user is None or user["role"] != "staff" or user["department_id"] != department_id:
        raise ConfigError(f"{login!r} is not an active staff member of {department_id!r}: {only}.")
    return int(user["id"])


async def write_whole(final: Path, body: Callable[[BinaryIO], Awaitable[None]]) -> None:
    """Run `body` with the file to write. Written beside `final` and moved into place once whole:
    a failure leaves no file that looks like one, and an earlier file at that path stays as it was
    (a device or a pipe, such as /dev/stdout, is written directly). A path that cannot be written
    is refused before `body` runs (nothing exported or audited)."""
    part, direct = _beside(final)
    target = _output(part)
    try:
        await body(target)
    except BaseException:
        with contextlib.suppress(OSError):  # (what is still buffered cannot be written either)
            target.close()
        if not direct:
            part.unlink(missing_ok=True)
        raise
    target.close()
    if not direct:
        os.replace(part, final)


async def _sample(settings: Settings, args: argparse.Namespace) -> int:
    from dialer.imports.sample import write_households

    _output(args.output).close()
    rows = write_households(args.output, args.households, encoding=args.encoding)
    print(f"{args.households} households ({rows} rows, {args.encoding}) written to {args.output}")
    return 0


def _beside(final: Path) -> tuple[Path, bool]:
    """Where to write `final` (a file beside it, to be moved into place), or itself if it is not a
    regular file (a device, a pipe): then True."""
    if final.exists() and not final.is_file():
        return final, True
    return final.with_name(f".{final.name}.part"), False


def _output(path: Path) -> BinaryIO:
    """The file to write (created or emptied; a new one readable by its owner only: residents' data),
    or a clear error if it cannot be."""
    try:
        return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb")
    except OSError as exc:
        raise ConfigError(f"Cannot write {path}: {exc.strerror}.") from None


async def _write_report(pool: Any, run_id: int, out: BinaryIO | None) -> None:
    """The run's error report to a file (or stdout), a page at a time."""
    from dialer.imports import report
    from dialer.store import imports

    target = out or sys.stdout.buffer
    try:
        async for chunk in report.stream(partial(imports.problem_page, pool, run_id)):
            target.write(chunk)
    finally:
        if out:
            out.close()
        else:
            target.flush()


async def _show_progress(progress: Any) -> None:
    """Every few seconds on a terminal: how far the import has got (a million rows take minutes)."""
    while True:
        await asyncio.sleep(5)
        share = (
            f"{100 * progress.bytes_read // progress.total_bytes}%"
            if progress.phase == "reading" and progress.total_bytes
            else ""
        )
        where = " ".join(w for w in (progress.phase, share, progress.step) if w)
        print(f"  … {where}: {progress.rows_read:,} rows read", file=sys.stderr, flush=True)
