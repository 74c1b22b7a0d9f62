"""One import, start to finish: read the file, stage its rows, merge them, record the run.

The file is parsed in batches in a worker thread while the previous batch is COPYed, so the
event loop (and the web app sharing it) stays responsive and PostgreSQL works while Python
parses. Memory holds one batch at a time, whatever the file's size.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import asyncpg

from campaigns.hours import TOKYO
from dialer import logs
from dialer.errors import ConfigError, DialerError, ImportFileError
from dialer.imports.csvfile import BadRow, CsvFile, Row
from dialer.imports.mapping import Mapping, check_department
from dialer.imports.records import contact_row, household_batch, payment_row, plan_row, unreadable_plan_line
from dialer.imports.rows import Converter, Problem
from dialer.store import audit, contacts, db, merge, payments, plans
from dialer.store import imports as store

log = logs.get("dialer.imports")

BATCH = 5000


@dataclass(frozen=True)
class ImportRequest:
    path: Path
    department_id: str
    mapping: Mapping
    file_name: str = ""  # as the user named it (an upload is stored under another name)
    user_id: int | None = None
    as_of: date | None = None  # the export's 抽出日; today when not given
    os_user: str = ""  # who ran the command (an import from the command line has no login of ours)


@dataclass
class Progress:
    """How far an import has got, for a page that watches it (the run's row shows it only at the end:
    the whole import is one transaction). Written by the import, read by anyone."""

    run_id: int | None = None
    phase: str = "starting"  # starting → waiting → reading → merging → done | failed
    rows_read: int = 0
    bytes_read: int = 0
    total_bytes: int = 0
    step: str = ""  # while merging: households, persons, phones, debts, summary (payments: payments)
    started: asyncio.Event = field(default_factory=asyncio.Event)  # set once the run is recorded


@dataclass
class _Batch:
    rows: list[tuple[Any, ...]]
    phones: list[tuple[Any, ...]]
    problems: list[Problem]
    read: int
    position: int = 0  # bytes of the file read once this batch was


def digest(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    try:
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
                size += len(chunk)
    except OSError as exc:
        raise ImportFileError(f"Cannot read {path}: {exc.strerror}.", "cannot_open") from None
    return h.hexdigest(), size


async def import_file(
    pool: asyncpg.Pool, req: ImportRequest, progress: Progress | None = None
) -> store.RunInfo:
    """Import one file; returns the run's record. Raises ImportFileError when the file as a whole is unreadable."""
    progress = progress or Progress()
    if not await pool.fetchval("select exists (select 1 from department where id = $1)", req.department_id):
        raise ImportFileError(
            f"No department {req.department_id!r} (`dialer departments add` adds one).",
            "no_department",
            department=req.department_id,
        )
    check_department(req.mapping, req.department_id)
    sha, size = await asyncio.to_thread(digest, req.path)
    progress.total_bytes = size
    check_as_of(req.as_of)
    as_of = req.as_of or datetime.now(TOKYO).date()
    # One connection for the whole run: it holds the run's lock from the moment the run is
    # recorded until it ends (see store.close_interrupted), and then stages and merges the file.
    async with pool.acquire() as conn:
        async with conn.transaction():
            await db.narrow(conn, req.department_id)
            if closed := await store.close_interrupted(conn, req.department_id):
                log.warning("import.interrupted_runs_closed", department=req.department_id, runs=closed)
            run_id = await store.begin(
                conn,
                department_id=req.department_id,
                kind=req.mapping.kind,
                file_name=req.file_name or req.path.name,
                sha256=sha,
                size=size,
                mapping=req.mapping.name,
                as_of=as_of if req.mapping.kind in ("households", "plans", "contacts") else None,
                user_id=req.user_id,
            )
            # residents' data loaded (the councils' "data setup"), by whom: in the audit log too
            await audit.record(
                conn, action="import", user_id=req.user_id, department_id=req.department_id,
                object_type="import_run", object_id=run_id,
                detail={"kind": req.mapping.kind, "mapping": req.mapping.name, "bytes": size,
                        **({"os_user": req.os_user} if req.os_user else {})},
            )  # fmt: skip
        log.info(
            "import.started", run=run_id, kind=req.mapping.kind, department=req.department_id, bytes=size
        )
        progress.run_id, progress.phase = run_id, "waiting"  # for another import of this department
        progress.started.set()
        try:
            info = await _run(conn, req, run_id, as_of, progress)
        except BaseException as exc:
            reason = exc.message if isinstance(exc, DialerError) else f"interrupted: {type(exc).__name__}"
            await asyncio.shield(_fail(pool, req.department_id, run_id, reason))
            progress.phase = "failed"
            log.warning("import.failed", run=run_id, error=getattr(exc, "error_id", type(exc).__name__))
            raise
    progress.phase = "done"
    log.info(
        "import.done", run=run_id, read=info.rows_read, stored=info.rows_stored, rejected=info.rows_rejected
    )
    return info


async def _run(
    conn: db.Connection, req: ImportRequest, run_id: int, as_of: date, progress: Progress
) -> store.RunInfo:
    kind = req.mapping.kind
    started = time.perf_counter()
    async with conn.transaction():
        await db.narrow(conn, req.department_id)  # RLS: this department's rows only
        # one import at a time per department: two would wait on each other's rows, or deadlock
        await conn.execute(
            "select pg_advisory_xact_lock(hashtext('dialer.import.' || $1))", req.department_id
        )
        progress.phase = "reading"
        await store.create_staging(conn, kind)
        with CsvFile(req.path, req.mapping) as f:
            conv = Converter(req.mapping, f.header, f.index_of)
            batches = _batches(f, conv, kind, datetime.now(TOKYO).date())
            read = 0
            batch = await asyncio.to_thread(next, batches, None)
            while batch is not None:
                following = asyncio.ensure_future(asyncio.to_thread(next, batches, None))
                try:
                    await store.stage(conn, run_id, kind, batch.rows, batch.phones, batch.problems)
                finally:
                    batch_after = await following  # never leave the thread reading a closed file
                read += batch.read
                progress.rows_read, progress.bytes_read = read, batch.position
                batch = batch_after
            blank = f.blank_lines
            encoding = f.encoding
        await store.flush_problems(conn)
        log.info("import.staged", run=run_id, rows=read, seconds=round(time.perf_counter() - started, 2))
        progress.phase, progress.bytes_read = "merging", progress.total_bytes
        if kind == "households":
            mapped = (
                set(req.mapping.columns)
                | set(req.mapping.constants)
                | ({"phones"} if req.mapping.phones else set())
            )

            def step(name: str) -> None:
                progress.step = name

            counts = await merge.merge_households(
                conn, run_id, req.department_id, as_of, mapped, step,
                complete=req.mapping.complete, closes_at_most=req.mapping.complete_closes_at_most,
            )  # fmt: skip
        elif kind == "plans":
            progress.step = "plans"
            counts = await plans.merge(conn, run_id, req.department_id, as_of, datetime.now(TOKYO).date())
        elif kind == "contacts":
            progress.step = "contacts"
            counts = await contacts.merge(conn, run_id, req.department_id, as_of)
        else:
            progress.step = "payments"
            counts = await payments.merge(conn, run_id, req.department_id)
        counts["blank_lines"] = blank
        return await store.finish(conn, run_id, encoding=encoding, read=read, counts=counts)


def check_as_of(as_of: date | None) -> None:
    """An export's 抽出日 cannot be after today in Tokyo: one typed a year ahead would make every
    later export older than it, and so unable to update anyone (dialer/store/merge.py)."""
    if as_of is not None and as_of > datetime.now(TOKYO).date():
        raise ConfigError(f"The export's date (--as-of {as_of.isoformat()}) is after today.")


def check_file(path: Path, mapping: Mapping) -> None:
    """Whether the file can be imported at all (encoding, header, the mapped columns), before a
    run is recorded: ImportFileError says why not. Reads the header only."""
    with CsvFile(path, mapping) as f:
        Converter(mapping, f.header, f.index_of)


async def _fail(pool: asyncpg.Pool, department_id: str, run_id: int, message: str) -> None:
    async with db.department(pool, department_id) as conn:
        await store.fail(conn, run_id, message)


def _batches(f: CsvFile, conv: Converter, kind: str, today: date) -> Iterator[_Batch]:
    pending: list[Row] = []
    unreadable: list[Problem] = []
    read = 0  # a local, not batch.read: this loop runs once per row of the file
    for r in f.rows():
        read += 1
        if r.__class__ is Row:
            pending.append(r)
        else:
            assert isinstance(r, BadRow)
            unreadable.append(Problem(r.line, "", "error", r.reason))
        if read == BATCH:
            yield _convert(conv, kind, today, pending, _Batch([], [], unreadable, read, f.position()))
            pending, unreadable, read = [], [], 0
    if read:
        yield _convert(conv, kind, today, pending, _Batch([], [], unreadable, read, f.position()))


def _convert(conv: Converter, kind: str, today: date, rows: list[Row], batch: _Batch) -> _Batch:
    if kind == "households":
        staged, phones, problems = household_batch(conv, rows)
        batch.rows += staged
        batch.phones += phones
        batch.problems += problems
        return batch
    if kind == "plans":
        batch.rows += [unreadable_plan_line(p.line) for p in batch.problems]  # (only those so far)
        for r in rows:
            line, problems = plan_row(conv, r, today)
            batch.rows.append(line)
            batch.problems += problems
        return batch
    one_row = contact_row if kind == "contacts" else payment_row
    for r in rows:
        one, problems = one_row(conv, r, today)
        if one is not None:
            batch.rows.append(one)
        batch.problems += problems
    return batch
