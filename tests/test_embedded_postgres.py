"""The embedded PostgreSQL can be stopped and started again in one process (the benchmarks run
one server after another; `make demo` and the tests keep theirs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import asyncpg

from dialer.store.embedded import EmbeddedPostgres


async def test_a_stopped_server_starts_again_in_the_same_process(tmp_path: Path) -> None:
    pgdata = tmp_path / "pgdata"
    for _ in range(2):  # the second start used to get the stopped server's handle back and fail
        server = EmbeddedPostgres(pgdata)
        dsn = server.start()
        try:
            conn = await asyncpg.connect(dsn)
            assert await conn.fetchval("select 1") == 1
            await conn.close()
        finally:
            server.stop()
        assert not (pgdata / "postmaster.pid").exists()
        shutil.rmtree(pgdata)


async def test_a_command_beside_a_running_server_joins_it_and_leaves_it_running(tmp_path: Path) -> None:
    """`dialer campaign list` while `dialer demo` runs: it uses the demo's server and must neither
    stop it nor log that it did (QA: db.embedded_stopped after every command looked alarming)."""
    pgdata = tmp_path / "pgdata"
    first = EmbeddedPostgres(pgdata)
    first.start()
    try:
        second = EmbeddedPostgres(pgdata)
        dsn = second.start()
        assert (first.joined, second.joined) == (False, True)
        second.stop()
        conn = await asyncpg.connect(dsn)  # still running
        assert await conn.fetchval("select 1") == 1
        await conn.close()
    finally:
        first.stop()
