"""bench.virtual: the clock the whole-product benchmark runs on skips idle time, and only idle time."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import asyncpg

from bench import virtual

ROOT = Path(__file__).resolve().parents[1]


def _run(main: object) -> object:
    with asyncio.Runner(loop_factory=virtual.new_loop) as runner:
        return runner.run(main)  # type: ignore[arg-type]


def test_an_idle_hour_is_skipped() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        v0, r0 = loop.time(), time.monotonic()
        await asyncio.sleep(3600)
        return loop.time() - v0, time.monotonic() - r0

    virtual_s, real_s = _run(main())  # type: ignore[misc]
    assert virtual_s >= 3600
    assert real_s < 60  # not waited for: nothing was happening


def test_time_stands_still_while_a_query_is_out(pg_admin_dsn: str) -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        conn = await asyncpg.connect(pg_admin_dsn)
        try:
            sleeper = asyncio.ensure_future(asyncio.sleep(100))
            v0 = loop.time()
            await conn.execute("select pg_sleep(0.5)")
            elapsed, done = loop.time() - v0, sleeper.done()
            sleeper.cancel()
            return elapsed, done
        finally:
            await conn.close()

    elapsed, sleeper_done = _run(main())  # type: ignore[misc]
    assert not sleeper_done  # PostgreSQL's half second did not let 100 s pass
    assert 0.5 <= elapsed < 50


def test_time_stands_still_while_a_thread_works() -> None:
    async def main() -> tuple[float, bool]:
        loop = asyncio.get_running_loop()
        sleeper = asyncio.ensure_future(asyncio.sleep(100))
        v0 = loop.time()
        await asyncio.to_thread(time.sleep, 0.3)  # a password check, a file read
        elapsed, done = loop.time() - v0, sleeper.done()
        sleeper.cancel()
        return elapsed, done

    elapsed, sleeper_done = _run(main())  # type: ignore[misc]
    assert not sleeper_done
    assert 0.3 <= elapsed < 50


def test_the_wall_clock_follows_the_loop_under_libfaketime(tmp_path: Path) -> None:
    """Re-executed under libfaketime, datetime.now() starts where asked and moves with the loop."""
    script = """
import asyncio, sys
from datetime import UTC, datetime
from bench import virtual
virtual.reexec(datetime(2030, 1, 7, 0, 0, tzinfo=UTC).timestamp(), sys.argv[1:])

async def main():
    print(datetime.now(UTC).isoformat(), flush=True)
    await asyncio.sleep(5400)
    print(datetime.now(UTC).isoformat(), flush=True)

with asyncio.Runner(loop_factory=virtual.new_loop) as r:
    r.run(main())
"""
    path = tmp_path / "clock.py"
    path.write_text(script)
    done = subprocess.run(
        [sys.executable, str(path), str(path)], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.split()
    assert first.startswith("2030-01-07T00:00:0")
    assert second.startswith("2030-01-07T01:30:0")


def test_the_whole_product_works_a_scenario_in_virtual_time(tmp_path: Path) -> None:
    """bench.engine_day --virtual, shortened: the engine, PostgreSQL, the simulated PBX and the
    pages through a few scenario minutes. A clock the product reads that does not follow the loop
    shows here: calls it takes for stale are closed as lost, leases lapse, windows shut."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.engine_day", "--virtual", "--hours", "0.1"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "TMPDIR": str(tmp_path)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["time"] == "virtual"
    for mode in ("progressive", "predictive"):
        engine = result["modes"][mode]["engine"]
        assert engine["placed"] > 50
        assert engine["connected"] > 5
        assert "lost" not in engine["outcomes"]
        assert set(engine["outcomes"]) <= {"no_answer", "connected", "busy", "machine", "abandoned", "none"}
    assert "call.stale" not in done.stderr
