"""Import benchmark: a generated export of 1,000,000 households into the embedded PostgreSQL.

Reports rows/second (wall clock, the whole import: parse, COPY, merge, commit), the importer's
own CPU time (it runs on one core), its peak memory after a small and after the large file (flat
means the memory does not grow with the file), the re-import of the same file (no change), and
the time to select the next 100 targets of a 1,000,000-household campaign by segment, with the
query plan, and the purge of a tenth of the households once they are past their retention. The file is generated on the fly into var/bench/ and deleted afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import shutil
import statistics
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg

from campaigns import segments
from campaigns.hours import TOKYO
from dialer import logs
from dialer.imports import mapping
from dialer.imports.run import ImportRequest, import_file
from dialer.imports.sample import write_households
from dialer.retention import Policy
from dialer.store import db, purge, targets
from dialer.store import segments as segment_store
from dialer.store.embedded import EmbeddedPostgres
from dialer.store.migrate import migrate

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench"
DATABASE = "bench_import"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def fresh_database(server: EmbeddedPostgres, name: str = DATABASE) -> str:
    """A new database on the bench's server, migrated, with the NHI department; its DSN."""
    admin = await asyncpg.connect(server.dsn("postgres"))
    try:
        await admin.execute(f"drop database if exists {name} with (force)")
        await admin.execute(f"create database {name}")
    finally:
        await admin.close()
    dsn = server.dsn(name)
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
        await conn.execute(
            "insert into department (id, name_ja, name_en) values ('nhi', '国民健康保険課', 'NHI')"
        )
    finally:
        await conn.close()
    return dsn


async def _import(pool: asyncpg.Pool, path: Path) -> dict[str, Any]:
    cpu0, t0 = time.process_time(), time.perf_counter()
    info = await import_file(
        pool, ImportRequest(path=path, department_id="nhi", mapping=mapping.load("nhi-sample"))
    )
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return {
        "rows": info.rows_read,
        "rejected": info.rows_rejected,
        "seconds": round(wall, 2),
        "rows_per_s": round(info.rows_read / wall),
        "importer_cpu_s": round(cpu, 2),
        "importer_rows_per_cpu_s": round(info.rows_read / cpu),
        "peak_rss_mb": round(_peak_rss_mb(), 1),
        "counts": info.counts,
    }


async def _next_targets(pool: asyncpg.Pool) -> dict[str, Any]:
    """A campaign filled from a segment (arrears under ¥100,000, largest first) of every household:
    the segment's preview count and the fill timed, then the hopper's read of the next 100, 200 times."""
    # The generated file's debts fall due 14-700 days before the day it is made (dialer/imports/sample.py),
    # so none is past the 2-year limitation and the same households match on any date.
    segment = segments.parse({"unpaid_max_yen": 100_000})
    today = datetime.now(TOKYO).date()
    async with pool.acquire() as conn:
        cid = await conn.fetchval(
            "insert into campaign (department_id, name, dial_mode) values ('nhi', 'bench', 'progressive') returning id"
        )
        t0 = time.perf_counter()
        seen = await segment_store.preview(conn, cid, "nhi", segment, today)
        preview_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        filled = await segment_store.fill(conn, cid, "nhi", segment, today)
        build_s = time.perf_counter() - t0
        assert filled.added == seen.households
        await conn.execute("update campaign_target set priority = (household_id % 5) * 10", timeout=600)
        await conn.execute("vacuum analyze campaign_target", timeout=600)
        households = await conn.fetchval("select count(*) from household")
    timings = []
    for _ in range(200):
        t0 = time.perf_counter()
        batch = await targets.next_batch(pool, "nhi", cid, 100)
        timings.append((time.perf_counter() - t0) * 1000)
        assert len(batch) == 100
        # the hopper takes them; the next read must go past them
        await pool.execute(
            "update campaign_target set state = 'leased', lease_owner = 'bench' where id = any($1::bigint[])",
            [t.target_id for t in batch],
        )
    async with db.department(pool, "nhi") as conn:  # as next_batch reads it
        plan = await conn.fetch("explain (analyze, buffers, costs off) " + targets.NEXT_BATCH, cid, 100)
    timings.sort()
    return {
        "households": households,
        "campaign_households": filled.added,
        "segment_preview_s": round(preview_s, 2),
        "segment_fill_s": round(build_s, 2),
        "reads": len(timings),
        "p50_ms": round(statistics.median(timings), 2),
        "p99_ms": round(timings[int(len(timings) * 0.99) - 1], 2),
        "max_ms": round(timings[-1], 2),
        "plan": [r[0] for r in plan],
    }


async def _purge(pool: asyncpg.Pool) -> dict[str, Any]:
    """A tenth of the households paid off and quiet for 400 days: the purge deletes them (with
    their residents, numbers and debts) from the million, in batches, then VACUUMs."""
    old = "now() - interval '400 days'"
    async with pool.acquire() as conn:
        await conn.execute(
            f"update debt set paid_yen = assessed_yen, updated_at = {old} where household_id % 10 = 0",
            timeout=3600,
        )
        for table, key in (("household", "id"), ("person", "household_id"), ("phone", "household_id")):
            await conn.execute(f"update {table} set updated_at = {old} where {key} % 10 = 0", timeout=3600)
        await conn.execute(f"update household set created_at = {old} where id % 10 = 0", timeout=3600)
        await conn.execute("vacuum analyze household, person, phone, debt", timeout=3600)
    t0 = time.perf_counter()
    out = await purge.purge_department(pool, "nhi", Policy(), now=datetime.now(TOKYO), trigger="command")
    seconds = time.perf_counter() - t0
    return {
        "households": out.counts["households"],
        "seconds": round(seconds, 1),
        "households_per_s": round(out.counts["households"] / seconds),
        "counts": {k: v for k, v in out.counts.items() if v},
    }


async def run(households: int = 1_000_000, small: int = 100_000) -> dict[str, Any]:
    WORK.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(ROOT / "var" / "bench-pgdata")
    await asyncio.to_thread(server.start)
    try:
        dsn = await fresh_database(server)
        pool = await db.create_pool(dsn, scope=db.ALL, max_size=2, name="bench")
        try:
            results: dict[str, Any] = {}
            small_file = WORK / "small.csv"
            write_households(small_file, small, seed=11)
            results["small_file"] = {"households": small, **await _import(pool, small_file)}
            big = WORK / "households.csv"
            t0 = time.perf_counter()
            rows = await asyncio.to_thread(write_households, big, households, seed=12)
            results["generated"] = {
                "households": households,
                "rows": rows,
                "bytes": big.stat().st_size,
                "encoding": "cp932",
                "seconds": round(time.perf_counter() - t0, 1),
            }
            results["large_file"] = {"households": households, **await _import(pool, big)}
            results["reimport_unchanged"] = await _import(pool, big)
            results["next_100_targets"] = await _next_targets(pool)
            results["purge_closed_households"] = await _purge(pool)
            results["memory_flat"] = (
                results["large_file"]["peak_rss_mb"] <= results["small_file"]["peak_rss_mb"] * 1.25
            )
            results["goal_rows_per_s"] = 50_000
            results["goal_next_100_ms"] = 20
        finally:
            await pool.close()
        return results
    finally:
        shutil.rmtree(WORK, ignore_errors=True)
        await asyncio.to_thread(server.stop)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--households", type=int, default=1_000_000, help="the large file (default 1,000,000)")
    ap.add_argument("--small", type=int, default=100_000, help="the small file (default 100,000)")
    args = ap.parse_args()
    logs.configure("warning")
    if not 0 < args.small < args.households or args.households < 30_000:
        ap.error(
            "need 0 < --small < --households, and --households at least 30,000 (the next-100 query reads 200 times 100 of the segment's households)"
        )
    print(json.dumps(asyncio.run(run(args.households, args.small)), indent=2, ensure_ascii=False))
