"""PostgreSQL crashes and comes back while the product runs (issue 5, database faults).

A server of the test's own (the embedded PostgreSQL in a temporary directory) is stopped with
`pg_ctl -m immediate`, which is a crash as far as its clients can tell (sessions cut, no
checkpoint, WAL recovery on the next start), then started again on the same data directory.
Over real HTTP and WebSocket, with the simulated PBX on a real TCP port.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from playwright.async_api import Browser, expect

from dialer import config, runtime
from dialer.config import Settings
from dialer.simpbx import Behaviour, SimulatedPbx
from dialer.store import migrate
from dialer.store.embedded import EmbeddedPostgres
from tests import dialer_process, factory
from tests.browser import log_in
from tests.client import PageClient, logged_in, until


class CrashablePostgres:
    """An embedded PostgreSQL this test may crash and start again."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.server = EmbeddedPostgres(pgdata)
        self.dsn = ""

    async def start(self) -> None:
        self.server = EmbeddedPostgres(self.pgdata)
        self.dsn = await asyncio.to_thread(self.server.start)

    async def crash(self) -> None:
        await asyncio.to_thread(self.server.stop, "immediate")

    async def query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        """As the database owner, on a connection of its own (pools do not outlive a crash)."""
        conn = await asyncpg.connect(self.dsn, server_settings={"timezone": "Asia/Tokyo"})
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()


@pytest.fixture
async def pg(tmp_path: Path) -> AsyncIterator[CrashablePostgres]:
    server = CrashablePostgres(tmp_path / "pgdata")
    await server.start()
    conn = await asyncpg.connect(server.dsn)
    try:
        await migrate.migrate(conn)
    finally:
        await conn.close()
    try:
        yield server
    finally:
        await asyncio.to_thread(server.server.stop)


@pytest.fixture
def crash_settings(pg: CrashablePostgres, sim: SimulatedPbx, tmp_path: Path) -> Settings:
    base = config.load({"DIALER_VAR_DIR": str(tmp_path / "var")})
    ami = sim.ami_settings(ping_interval_s=1.0, ping_timeout_s=1.0, reconnect_min_s=0.1)
    return replace(
        base,
        database_url=pg.dsn,
        ami=ami,
        http_port=0,
        agi_port=0,
        simulated_callees=True,
        dialplan=replace(base.dialplan, ring_timeout_s=2),
    )


async def _scene(pg: CrashablePostgres, sim: SimulatedPbx, numbers: list[str]) -> factory.World:
    pool = await asyncpg.create_pool(
        pg.dsn, min_size=1, max_size=2, server_settings={"timezone": "Asia/Tokyo"}
    )
    assert pool is not None
    try:
        w = await factory.world(pool)
        for number in numbers:
            await factory.household(pool, w.campaign_id, number)
            sim.script(number, Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
        return w
    finally:
        await pool.close()


def _after(op: PageClient, msg: dict[str, Any]) -> int:
    """Where to look from for what came after this message (a page is told "up" when it attaches too)."""
    return next(i for i, m in enumerate(op.messages) if m is msg) + 1


def _calls_to_residents(sim: SimulatedPbx) -> list[dict[str, Any]]:
    return [a for a in sim.actions("Originate") if a["Context"] == "dialer-connect"]


async def test_an_outcome_saved_while_postgres_is_down_is_written_once_when_it_is_back(
    pg: CrashablePostgres, sim: SimulatedPbx, crash_settings: Settings
) -> None:
    w = await _scene(pg, sim, ["0355551101", "0355551102"])
    async with runtime.started(crash_settings) as product:
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            first = await op.wait(lambda m: m["type"] == "record")
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")

            await pg.crash()  # mid-call: the conversation goes on
            assert (await op.post("/api/agent/hangup"))[0] == 200
            ended = await op.wait(lambda m: m["type"] == "call_ended")
            assert (ended["attempt_id"], ended["outcome"]) == (first["attempt_id"], "connected")
            await op.wait_state("wrap_up")
            went = await op.wait(lambda m: m == {"type": "database", "up": False})

            body = {"attempt_id": first["attempt_id"], "token": str(uuid.uuid4()), "code": "refused"}
            status, reply = await op.post("/api/dispositions", body)
            assert (status, reply["error"]) == (503, "error.database")  # the page holds it and resends
            _, metrics = await op.get("/metrics")
            assert "dialer_database_up 0.0" in metrics
            placed = len(_calls_to_residents(sim))
            await asyncio.sleep(2.5)
            assert len(_calls_to_residents(sim)) == placed  # no call while the database is away

            await pg.start()
            await op.wait(lambda m: m == {"type": "database", "up": True}, within=15, since=_after(op, went))
            status, reply = await op.post("/api/dispositions", body)  # the page's resend
            assert (status, reply.get("created")) == (200, True), reply
            status, reply = await op.post("/api/dispositions", body)  # sent twice: stored once
            assert (status, reply.get("created")) == (200, False), reply

            # Dialling resumes by itself: the operator is Ready again and gets the next household.
            second = await op.wait(
                lambda m: m["type"] == "record" and m["attempt_id"] != first["attempt_id"], within=15
            )
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
        finally:
            await op.close()

    rows = await pg.query(
        """select a.id, a.outcome, a.hangup_by, a.ended_at is not null as ended, t.state,
                  (select count(*) from disposition d where d.attempt_id = a.id) as dispositions,
                  (select code from disposition d where d.attempt_id = a.id) as code
           from attempt a join campaign_target t on t.id = a.target_id order by a.id"""
    )
    assert dict(rows[0]) == {
        "id": first["attempt_id"],
        "outcome": "connected",
        "hangup_by": "operator",  # the end written while the database was away was kept
        "ended": True,
        "state": "done",
        "dispositions": 1,
        "code": "refused",
    }
    assert [r["id"] for r in rows] == [first["attempt_id"], second["attempt_id"]]  # nobody called twice


async def test_a_ready_operator_gets_calls_again_once_postgres_is_back(
    pg: CrashablePostgres, sim: SimulatedPbx, crash_settings: Settings
) -> None:
    w = await _scene(pg, sim, [])
    async with runtime.started(crash_settings) as product:
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            # a page is told the database is up when it attaches, not only when it comes back: one
            # kept open while the dialer restarted still showed the outage it had seen (QA)
            await op.wait(lambda m: m == {"type": "database", "up": True})
            await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets")
            await pg.crash()
            went = await op.wait(lambda m: m == {"type": "database", "up": False}, within=15)
            _, health = await op.get("/healthz")
            assert '"database": "unreachable"' in health
            await asyncio.sleep(6)  # long enough for the upkeep loop to meet the dead database too
            await pg.start()
            await op.wait(lambda m: m == {"type": "database", "up": True}, within=15, since=_after(op, went))
            await _add_household(pg, w.campaign_id, "0355551201")
            sim.script("0355551201", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
            product.engine.floor.wake.set()
            record = await op.wait(lambda m: m["type"] == "record", within=15)
            assert record["attempt_id"] > 0
            state = await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
            assert state["state"] == "talking"
            await until(lambda: len(_calls_to_residents(sim)) == 1)
        finally:
            await op.close()


async def test_a_database_refusing_connections_is_an_outage_and_the_dialler_comes_back(
    pg: CrashablePostgres, sim: SimulatedPbx, crash_settings: Settings
) -> None:
    """PostgreSQL up but refusing new connections to the database (ALLOW_CONNECTIONS false, as an
    administrator might during maintenance): an outage like any other, and dialling resumes once it
    accepts them again. Before, the probe's error killed the dialling loop for good (the page
    stayed red, no call was placed again) and every request was a 500."""
    w = await _scene(pg, sim, [])
    admin = await asyncpg.connect(pg.server.dsn("postgres"))
    async with runtime.started(crash_settings) as product:
        op = PageClient(product.url)
        try:
            await op.ready_as("op1", w.campaign_id)
            await op.wait(lambda m: m["type"] == "agent" and m["notice"] == "notice.no_targets")
            await admin.execute("alter database dialer allow_connections false")
            await admin.execute(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = 'dialer' and pid <> pg_backend_pid()"
            )
            went = await op.wait(lambda m: m == {"type": "database", "up": False}, within=15)
            status, _ = await op.get("/api/agent/campaigns")
            assert status == 503  # said so, not a 500
            await asyncio.sleep(3)  # turns of the dialling loop probing a database that refuses
            await admin.execute("alter database dialer allow_connections true")
            await op.wait(lambda m: m == {"type": "database", "up": True}, within=15, since=_after(op, went))
            await _add_household(pg, w.campaign_id, "0355551202")
            sim.script("0355551202", Behaviour("answer", ring_s=0.2, talk_s=None, amd_s=0.1))
            product.engine.floor.wake.set()
            record = await op.wait(lambda m: m["type"] == "record", within=15)
            assert record["attempt_id"] > 0
        finally:
            await op.close()
            await admin.execute("alter database dialer allow_connections true")
            await admin.close()


async def _add_household(pg: CrashablePostgres, campaign_id: int, number: str) -> None:
    pool = await asyncpg.create_pool(pg.dsn, min_size=1, max_size=1)
    assert pool is not None
    try:
        await factory.household(pool, campaign_id, number)
    finally:
        await pool.close()


@pytest.mark.browser
async def test_the_page_keeps_an_outcome_while_postgres_is_down_and_sends_it_when_back(
    pg: CrashablePostgres, sim: SimulatedPbx, crash_settings: Settings, browser: Browser
) -> None:
    await _scene(pg, sim, ["0355551301"])
    async with runtime.started(crash_settings) as product:
        page = await browser.new_page(locale="ja-JP")
        try:
            await log_in(page, product.url, "op1")
            await page.get_by_test_id("ready").click()
            await expect(page.get_by_test_id("agent-state")).to_have_text("通話中")

            await pg.crash()
            await page.get_by_test_id("hangup").click()  # still works: the call is the PBX's
            await expect(page.get_by_test_id("agent-state")).to_have_text("後処理")
            await expect(page.get_by_test_id("db-down")).to_be_visible()
            await page.get_by_label("拒否").check()
            await page.get_by_test_id("note").fill("障害中に保存")
            await page.get_by_test_id("save").click()
            await expect(page.get_by_test_id("disp-msg")).to_have_text("未送信の結果を再送しています…")
            assert await page.evaluate("Object.values(localStorage).map(v => JSON.parse(v).length)") == [1]
            # corrected while the first is still waiting: the correction takes its place (QA: both
            # were kept, the first stored and the correction refused without a word)
            await page.get_by_label("納付済(申出)").check()
            await page.get_by_test_id("note").fill("訂正: 既に納付済み")
            await page.get_by_test_id("save").click()
            await expect(page.get_by_test_id("disp-msg")).to_have_text("未送信の結果を再送しています…")
            assert await page.evaluate("Object.values(localStorage).map(v => JSON.parse(v).length)") == [1]

            await pg.start()
            await expect(page.get_by_test_id("db-down")).to_be_hidden(timeout=20_000)
            await expect(page.get_by_test_id("disp-msg")).to_have_text("保存しました。", timeout=20_000)
            assert await page.evaluate("Object.values(localStorage).map(v => JSON.parse(v).length)") == [0]
        finally:
            await page.close()
    rows = await pg.query("select d.code, d.note from disposition d")
    assert [tuple(r) for r in rows] == [("already_paid", "訂正: 既に納付済み")]


async def test_call_records_held_by_a_dialer_that_dies_during_the_outage_are_written_by_the_next(
    pg: CrashablePostgres, sim: SimulatedPbx, crash_settings: Settings
) -> None:
    w = await _scene(pg, sim, ["0355551401"])
    # The next dialer starts with the same var dir (its spool).
    proc, url = await dialer_process.spawn(
        replace(crash_settings, database_url=pg.dsn), crash_settings.var_dir
    )
    try:
        op = PageClient(url)
        try:
            await op.ready_as("op1", w.campaign_id)
            pop = await op.wait(lambda m: m["type"] == "record")
            await op.wait(lambda m: m["type"] == "agent" and m["call_phase"] == "connected")
            await pg.crash()
            assert (await op.post("/api/agent/hangup"))[0] == 200
            await op.wait(lambda m: m["type"] == "call_ended")
            await op.wait(lambda m: m == {"type": "database", "up": False})
            ended_before = datetime.now(UTC)
            spool = crash_settings.var_dir / "spool"
            (held,) = spool.glob("held-*.jsonl")
            kinds = [json.loads(line).get("fn") for line in held.read_text().splitlines()]
            assert "attempts.finish" in kinds  # on disk, not only in the dying process's memory
        finally:
            await op.close()
    finally:
        proc.kill()  # dies with the records still held
        await proc.wait()

    await pg.start()
    async with runtime.started(crash_settings):
        rows = await pg.query(
            "select outcome, hangup_by, ended_at from attempt where id = $1", pop["attempt_id"]
        )
        assert (rows[0]["outcome"], rows[0]["hangup_by"]) == ("connected", "operator")
        assert rows[0]["ended_at"] < ended_before  # the time the call really ended, not the write's
        assert not held.exists()  # taken over and written: nothing left to write twice
        assert all(p.stat().st_size == 0 for p in spool.glob("held-*.jsonl"))
        events = await pg.query(
            "select kind from attempt_event where attempt_id = $1 order by id", pop["attempt_id"]
        )
        assert [e["kind"] for e in events].count("ended") == 1


async def _reset(host: str, port: int, request: bytes) -> None:
    """Send the start of a request, then reset the connection (RST), as a browser killed mid-way."""
    _, writer = await asyncio.open_connection(host, port)
    writer.write(request)
    await writer.drain()
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
    await asyncio.sleep(0.5)


async def test_an_upload_cancelled_midway_is_not_the_database_going_away(staffed: runtime.Running) -> None:
    """An administrator cancels an upload (closes the tab) while the file is sent: the body ends
    with the browser's ConnectionResetError, which is not PostgreSQL going away."""
    admin = await logged_in(staffed, "admin1", "/admin/imports")
    try:
        cookie = "; ".join(f"{c.key}={c.value}" for c in admin.http.cookie_jar)
        host, port = staffed.url.removeprefix("http://").rsplit(":", 1)
        head = (
            f"POST /api/admin/imports?department=nhi&mapping=nhi-sample&name=x.csv HTTP/1.1\r\n"
            f"Host: {host}:{port}\r\nContent-Type: text/csv\r\nContent-Length: 50000000\r\n"
            f"X-CSRF-Token: {admin.csrf}\r\nCookie: {cookie}\r\n\r\n"
        ).encode()
        await _reset(host, int(port), head + "宛名番号,世帯番号\r\n".encode("cp932") * 20_000)
        assert staffed.engine.db.up
        _, text = await admin.get("/metrics")
        assert "dialer_database_up 1.0" in text
    finally:
        await admin.close()


async def test_a_disk_error_in_one_request_is_not_the_database_going_away(staffed: runtime.Running) -> None:
    """An upload whose folder cannot be made (here a file is in its way; a full disk alike) fails
    that request (500), and the floor goes on dialling."""
    (staffed.settings.var_dir / "uploads").write_text("in the way")
    admin = await logged_in(staffed, "admin1", "/admin/imports")
    try:
        async with admin.http.post(
            f"{admin.base}/api/admin/imports",
            params={"department": "nhi", "mapping": "nhi-sample", "name": "x.csv"},
            data="世帯番号\r\n".encode("cp932"),
            headers={"X-CSRF-Token": admin.csrf, "Content-Type": "text/csv"},
        ) as r:
            assert r.status == 500
        assert staffed.engine.db.up
    finally:
        await admin.close()


async def test_a_page_gone_before_its_socket_opens_is_not_the_database_going_away(
    product: runtime.Running, operator: PageClient, pool: asyncpg.Pool
) -> None:
    """A page reloaded or closed just as its WebSocket opens (a connection reset before the
    upgrade is answered): aiohttp's ConnectionResetError is the browser's, and must not be taken
    for PostgreSQL going away (that stops every campaign's dialling until a probe)."""
    await factory.world(pool)
    assert await operator.login("op1", factory.PASSWORD) == 200
    cookie = "; ".join(f"{c.key}={c.value}" for c in operator.http.cookie_jar)
    host, port = product.url.removeprefix("http://").rsplit(":", 1)
    for _ in range(3):  # reset while the server still looks the session up
        key = base64.b64encode(os.urandom(16)).decode()
        await _reset(host, int(port), (
            f"GET /ws HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nCookie: {cookie}\r\n\r\n"
        ).encode())  # fmt: skip
    assert product.engine.db.up
    _, text = await operator.get("/metrics")
    assert "dialer_database_up 1.0" in text
