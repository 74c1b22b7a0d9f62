"""The engine's own cost under load: the whole product in its own process, ~200 calls at once.

The product (engine, web app, AMI link: `runtime.started`, as `dialer run` starts it) runs in a
child process against the simulated PBX and the embedded PostgreSQL; 210 operators' pages
(HTTP + WebSocket clients, as the browser does) press Ready, take what comes and save an
outcome after a short wrap-up. Callees answer, ring out, are busy or are machines (a seeded
model). After a warm-up, one measured minute per dial mode reports:

- calls in flight (resident channels alive on the PBX, sampled): mean and peak;
- CPU of the product's process per 1,000 originated calls (and of PostgreSQL beside it);
- screen-pop time: from the event that lets the engine show the record (progressive: the answer;
  predictive: the answering-machine verdict) arriving on AMI, to the record arriving on the
  operator's WebSocket, p50/p99. The event's arrival is taken by a probe on its own AMI
  connection in this process, so the figure covers the engine reading the event, its database
  read and audit row, and the push; the simulated PBX and the pages share this process, so it is
  an upper bound.

Run alone: `.venv/bin/python -m bench.engine` (about 4 minutes); `make bench` runs it too.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

import bench
from bench.imports import fresh_database
from dialer import config, logs, runtime
from dialer.ami import events as ev
from dialer.ami.link import AmiLink, LinkEvent
from dialer.simpbx import CalleeModel, SimConfig, SimulatedPbx
from dialer.store import pacing
from dialer.store.embedded import EmbeddedPostgres
from dialer.store.passwords import hash_password

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "var" / "bench-engine"
DATABASE = "bench_engine"
OPERATORS = 210
HOUSEHOLDS = 30_000
PASSWORD = "bench-password"
WARMUP_S = float(os.environ.get("BENCH_WARMUP_S", "30"))
MEASURE_S = float(os.environ.get("BENCH_MEASURE_S", "60"))
CALLEES = CalleeModel(
    answer_p=0.35,
    machine_p=0.10,
    busy_p=0.10,
    congestion_p=0.02,
    ring_s=(3.0, 10.0),
    talk_s=(15.0, 45.0),
    seed=7,
)
WRAP_S = (1.0, 3.0)
TICK = os.sysconf("SC_CLK_TCK")


# ---- the product, in a process of its own ---------------------------------------------------
async def _child() -> None:
    """`python -m bench.engine child`: the product, until stdin closes; prints its URL."""
    logs.configure("warning")  # to stderr: stdout carries only the URL line
    settings = replace(config.load(), http_port=0, agi_port=0, simulated_callees=True, log_level="warning")
    ring = os.environ.get("BENCH_RING_TIMEOUT_S")  # bench.engine_day: time compressed below Ofcom's 15 s
    if ring:
        settings = replace(settings, dialplan=replace(settings.dialplan, ring_timeout_s=int(ring)))
    async with runtime.started(settings) as running:
        print(f"URL {running.url}", flush=True)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, sys.stdin.read)


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def _postgres_cpu_s() -> float:
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            text = stat.read_text()
            if "(postgres)" in text:
                total += cpu_s(int(stat.parent.name))
    return total


# ---- the data ------------------------------------------------------------------------------------
async def database(
    server: EmbeddedPostgres, mode: str, operators: int = OPERATORS, name: str = DATABASE
) -> tuple[str, int]:
    """A fresh database: `operators` operators op1…, one campaign in `mode`, its households."""
    dsn = await fresh_database(server, name)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(
            """insert into app_user (login, display_name, role, department_id, extension, password_hash)
               select 'op' || g, 'オペレータ ' || g, 'operator', 'nhi', (2000 + g)::text, $2
               from generate_series(1, $1) g""",
            operators,
            hash_password(PASSWORD),
        )
        cid = await conn.fetchval(
            """insert into campaign (department_id, name, dial_mode, caller_id)
               values ('nhi', '負荷測定', $1, '0312340001') returning id""",
            mode,
        )
        await conn.execute(
            """
            with h as (insert into household (department_id, household_no, postal_code, address)
                       select 'nhi', 'B' || g, '999-0001', '見本県見本市' from generate_series(1, $2) g
                       returning id, household_no),
                 p as (insert into person (household_id, department_id, atena_no, name_kanji, name_kana,
                                           birth_date, is_head)
                       select id, 'nhi', 'A' || household_no, '見本 太郎', 'ミホン タロウ', '1980-04-01', true
                       from h returning id, household_id),
                 ph as (insert into phone (household_id, person_id, department_id, number, kind)
                        select household_id, id, 'nhi', '03' || lpad((10000000 + household_id)::text, 8, '0'),
                               'landline' from p),
                 d as (insert into debt (household_id, person_id, department_id, debt_type, fiscal_year,
                                         installment, assessed_yen, paid_yen, due_date)
                       select household_id, id, 'nhi', 'nhi', 2025, 3, 24000, 0, '2025-08-31' from p)
            insert into campaign_target (campaign_id, household_id, department_id) select $1, id, 'nhi' from h
            """,
            cid,
            HOUSEHOLDS,
        )
        await conn.execute("analyze")
    finally:
        await conn.close()
    return dsn, cid


# ---- operators' pages -------------------------------------------------------------------------
class Operator:
    """One operator's page: log in, Ready, save an outcome after each conversation (after a
    wrap-up drawn by `wrap_s`). `on_record` hears of each screen-pop, `on_saved` of each outcome saved."""

    def __init__(
        self,
        base: str,
        login: str,
        campaign_id: int,
        on_record: Callable[[int], None],
        wrap_s: Callable[[random.Random], float] = lambda rng: rng.uniform(*WRAP_S),
        on_saved: Callable[[], None] = lambda: None,
    ) -> None:
        self.base, self.login, self.campaign_id, self.on_record = base, login, campaign_id, on_record
        self.wrap_s, self.on_saved = wrap_s, on_saved
        self.rng = random.Random(login)
        self.errors = 0
        self._wrapping: set[asyncio.Task[None]] = set()

    async def run(self, connected: Callable[[], None], ready: asyncio.Event) -> None:
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            await http.post(f"{self.base}/login", data={"login": self.login, "password": PASSWORD})
            async with http.get(f"{self.base}/operator") as r:
                m = re.search(r'data-csrf="([^"]+)"', await r.text())
            headers = {"X-CSRF-Token": m.group(1) if m else "", "Content-Type": "application/json"}
            async with http.ws_connect(f"{self.base}/ws") as ws:
                try:
                    await self._work(http, headers, ws, connected, ready)
                finally:
                    for task in list(self._wrapping):
                        task.cancel()

    async def _work(
        self,
        http: aiohttp.ClientSession,
        headers: dict[str, str],
        ws: aiohttp.ClientWebSocketResponse,
        connected: Callable[[], None],
        ready: asyncio.Event,
    ) -> None:
        connected()
        await ready.wait()
        body = json.dumps({"campaign_id": self.campaign_id})
        async with http.post(f"{self.base}/api/agent/ready", data=body, headers=headers) as r:
            if r.status != 200:
                raise RuntimeError(f"{self.login}: Ready refused: {await r.text()}")
        async for msg in ws:
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            if data["type"] == "record" and data["reason"] == "screen_pop":
                self.on_record(data["attempt_id"])
            elif data["type"] == "call_ended" and data["needs_disposition"]:
                task = asyncio.create_task(self._dispose(http, headers, data["attempt_id"]))
                self._wrapping.add(task)
                task.add_done_callback(self._wrapping.discard)

    async def _dispose(self, http: aiohttp.ClientSession, headers: dict[str, str], attempt_id: int) -> None:
        await asyncio.sleep(self.wrap_s(self.rng))
        body = json.dumps({"attempt_id": attempt_id, "token": str(uuid.uuid4()), "code": "refused"})
        async with http.post(f"{self.base}/api/dispositions", data=body, headers=headers) as r:
            if r.status != 200:
                self.errors += 1
            else:
                self.on_saved()


# ---- one mode -----------------------------------------------------------------------------------
class Probe:
    """When the events that let the engine pop a record reached AMI (its own connection)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.at: dict[str, float] = {}

    def __call__(self, event: LinkEvent) -> None:
        now = time.perf_counter()
        uid = None
        if self.mode == "predictive":
            if isinstance(event, ev.UserEvent) and event.user_event == "DialerAMD":
                uid = event.uniqueid
        elif isinstance(event, ev.DialEvent) and event.name == "DialEnd" and event.status == "ANSWER":
            uid = event.dest_uniqueid
        elif isinstance(event, ev.Newstate) and event.state_desc == "Up":
            uid = event.uniqueid
        if uid and uid.startswith("dlr-a"):
            self.at.setdefault(uid, now)


async def samples(http: aiohttp.ClientSession, base: str, name: str) -> list[Sample]:
    """One metric's samples on the product's /metrics (read with prometheus_client's parser)."""
    async with http.get(f"{base}/metrics") as r:
        text = await r.text()
    return [s for family in text_string_to_metric_families(text) for s in family.samples if s.name == name]


async def _originated(http: aiohttp.ClientSession, base: str) -> float:
    return sum(s.value for s in await samples(http, base, "dialer_calls_originated_total"))


@contextlib.asynccontextmanager
async def product(dsn: str, pbx: SimulatedPbx, **env: str) -> AsyncIterator[tuple[str, int]]:
    """The product in a process of its own (`python -m bench.engine child`): its URL and pid."""
    ami = pbx.ami_settings()
    env = {
        **os.environ,
        "DATABASE_URL": dsn,
        "AMI_HOST": ami.host,
        "AMI_PORT": str(ami.port),
        "AMI_USER": ami.username,
        "AMI_SECRET": ami.secret,
        "DIALER_VAR_DIR": str(WORK / "var"),
        "LOG_LEVEL": "warning",
        **env,
    }
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.engine", "child", cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    assert child.stdout is not None and child.stdin is not None
    try:
        line = (await asyncio.wait_for(child.stdout.readline(), 120)).decode()
        if not line.startswith("URL "):
            raise RuntimeError(f"the product did not start: {line!r}")
        yield line.split()[1], child.pid
    finally:
        child.stdin.close()
        try:
            await asyncio.wait_for(child.wait(), 30)
        except TimeoutError:
            child.kill()
            await child.wait()


async def run_mode(server: EmbeddedPostgres, mode: str, log: Callable[[str], None]) -> dict[str, Any]:
    dsn, campaign_id = await database(server, mode)
    pbx = SimulatedPbx(SimConfig(port=0, operator_answer_s=0.2, callees=CALLEES))
    await pbx.start()
    probe = Probe(mode)
    link = AmiLink(pbx.ami_settings())
    link.subscribe(probe)
    tasks: list[asyncio.Task[None]] = []
    try:
        async with product(dsn, pbx) as (base, pid):
            await link.start()
            measuring = False
            pops: list[float] = []

            def on_record(attempt_id: int) -> None:
                at = probe.at.pop(f"dlr-a{attempt_id}", None)
                if measuring and at is not None:
                    pops.append(time.perf_counter() - at)

            ready, all_in, pages = asyncio.Event(), asyncio.Event(), 0

            def connected() -> None:
                nonlocal pages
                pages += 1
                if pages == OPERATORS:
                    all_in.set()

            operators = [Operator(base, f"op{i}", campaign_id, on_record) for i in range(1, OPERATORS + 1)]
            tasks = [asyncio.create_task(op.run(connected, ready)) for op in operators]
            await asyncio.wait_for(all_in.wait(), 300)  # every page logged in and connected
            ready.set()
            log(f"engine/{mode}: {OPERATORS} operators ready, warming up {WARMUP_S:.0f} s")
            await asyncio.sleep(WARMUP_S)
            async with aiohttp.ClientSession() as http:
                calls0, cpu0, pg0, t0 = (
                    await _originated(http, base),
                    cpu_s(pid),
                    _postgres_cpu_s(),
                    time.perf_counter(),
                )
                measuring = True
                in_flight: list[int] = []
                while time.perf_counter() - t0 < MEASURE_S:
                    in_flight.append(sum(1 for c in pbx.live_channels() if c.uniqueid.startswith("dlr-a")))
                    await asyncio.sleep(0.5)
                measuring = False
                calls, cpu = await _originated(http, base) - calls0, cpu_s(pid) - cpu0
                pg, wall = _postgres_cpu_s() - pg0, time.perf_counter() - t0
            conn = await asyncpg.connect(dsn)
            try:
                _, run = await pacing.rolling(conn, campaign_id)  # the whole run (warm-up included)
            finally:
                await conn.close()
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise RuntimeError(f"{len(failed)} operators' pages failed: {failed[0].exception()!r}")
            pops.sort()
            result = {
                "operators": OPERATORS,
                "measured_s": round(wall, 1),
                "calls_in_flight_mean": round(statistics.fmean(in_flight)),
                "calls_in_flight_peak": max(in_flight),
                "originated": int(calls),
                "calls_per_s": round(calls / wall, 1),
                "engine_cpu_ms_per_1000_calls": round(cpu / calls * 1e6) if calls else None,
                "engine_cpu_share_of_one_core": round(cpu / wall, 2),
                "postgres_cpu_ms_per_1000_calls": round(pg / calls * 1e6) if calls else None,
                "screen_pops": len(pops),
                "screen_pop_ms_p50": round(pops[len(pops) // 2] * 1000, 1) if pops else None,
                "screen_pop_ms_p99": round(pops[int(len(pops) * 0.99)] * 1000, 1) if pops else None,
                "disposition_errors": sum(op.errors for op in operators),
                "live_answered_whole_run": run.live,
                "abandoned_whole_run": run.abandoned,
                "abandon_rate_whole_run": round(run.abandoned / run.live, 4) if run.live else None,
            }
            log(f"engine/{mode}: {json.dumps(result)}")
            return result
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await link.close()
        await pbx.stop()


@contextlib.contextmanager
def postgres() -> Iterator[EmbeddedPostgres]:
    """A throw-away embedded PostgreSQL in var/bench-engine, removed afterwards."""
    WORK.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(WORK / "pgdata")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(WORK, ignore_errors=True)


async def run(log: Callable[[str], None] = print) -> dict[str, Any]:
    with postgres() as server:
        results = {mode: await run_mode(server, mode, log) for mode in ("progressive", "predictive")}
    return {**results, "command": ".venv/bin/python -m bench.engine"}


if __name__ == "__main__":
    if sys.argv[1:] == ["child"]:
        asyncio.run(_child())
    else:
        argparse.ArgumentParser(
            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
        ).parse_args()
        logs.configure("warning")
        print(json.dumps(asyncio.run(run(bench.log)), indent=2))
