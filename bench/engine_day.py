"""The whole product through a scenario's calling day, beside the day simulation.

`bench.pacing` runs the pacer through hours of simulated time in seconds, but the dial loop
around it there is the benchmark's own model of the engine. This benchmark checks that model:
the product itself (engine, database, AMI link, web pages: `runtime.started`, as `dialer run`
starts it) works one scenario (bench/scenarios/*.toml) against the simulated PBX, whose callees
follow the scenario (answers, machines, busy lines, ring times, answering-machine detection's
time and mistakes, talk times), with one operator page per operator (HTTP + WebSocket) that
saves an outcome after the scenario's wrap-up time.

`--virtual` (what `make bench` runs): the scenario's whole day in virtual time. The product, the
PBX and the pages share one process whose event loop skips idle time (bench/virtual.py); the
wall clock here and in PostgreSQL follows it (libfaketime), starting on a calling morning, so
calling windows, leases and rolling abandon counts all see scenario time. Work runs at its real
speed: the engine's reaction time counts once, as on a real floor.

Without it, time is compressed: every duration of the scenario is divided by `--scale` (10: an
hour's calling in six minutes), the product runs in a process of its own, and the figures are
multiplied back. The engine's own clocks are not compressed, so against the scenario it is slower
than it really is (a 10 ms database round trip counts as 100 ms), its forecast is learnt every
100 simulated seconds instead of 10, and its rolling "hour" spans the whole run; the Originate's
timeout is rounded to whole seconds.

Both modes are then run by the day simulation on the same scenario (same length, same timeout),
so the two can be compared figure by figure.

    .venv/bin/python -m bench.engine_day [SCENARIO.toml] --virtual [--hours H]
    .venv/bin/python -m bench.engine_day [SCENARIO.toml] [--hours 1] [--scale 10]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from functools import partial
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import engine, log, virtual
from bench.pacing import scenario
from bench.pacing.day import Day
from bench.pacing.report import summarise
from bench.pacing.scenario import SCENARIOS, Scenario
from campaigns import pacer, windows
from campaigns.hours import TOKYO
from dialer import config, logs, runtime
from dialer.simpbx import Behaviour, SimConfig, SimulatedPbx
from dialer.store import pacing
from dialer.store.embedded import EmbeddedPostgres

DEFAULT_SCENARIO = SCENARIOS / "ops20-answer30-talk3.toml"
MODES = ("progressive", "predictive")


def _now() -> float:
    """The event loop's clock (virtual under --virtual), which everything here is timed by."""
    return asyncio.get_running_loop().time()


@dataclass
class ScenarioCallees:
    """The scenario's residents, for the simulated PBX (times divided by `scale`)."""

    sc: Scenario
    scale: float
    no_answer_s: float  # the Originate's timeout, in scenario seconds
    started: float = 0.0  # the event loop's clock when calling starts
    people_hung_up: int = 0  # people answering-machine detection took for machines

    @property
    def seed(self) -> int:
        return self.sc.seed

    def pick(self, rng: Any) -> Behaviour:
        sc, k = self.sc, self.scale
        u = rng.random()
        answer = sc.answer_at((_now() - self.started) * k)
        if u < sc.busy:
            return Behaviour("busy", ring_s=sc.busy_s.draw(rng) / k)
        if u >= sc.busy + answer:
            return Behaviour("noanswer")  # rings until the Originate's timeout
        ring = min(sc.ring.draw(rng), self.no_answer_s - 0.5) / k
        if rng.random() < sc.machine:
            detect = sc.detect_machine.draw(rng)
            if rng.random() < sc.false_person:  # passed on: the operator hangs up on it
                talk = (detect + sc.machine_talk_s) / k
                return Behaviour("machine", ring_s=ring, talk_s=talk, amd_s=detect / k, amd_status="HUMAN")
            return Behaviour("machine", ring_s=ring, amd_s=detect / k)
        detect = sc.detect_human.draw(rng)
        talk = (detect + sc.talk.draw(rng)) / k  # the resident hangs up after the conversation
        if rng.random() < sc.false_machine:
            self.people_hung_up += 1
            return Behaviour("answer", ring_s=ring, talk_s=talk, amd_s=detect / k, amd_status="MACHINE")
        return Behaviour("answer", ring_s=ring, talk_s=talk, amd_s=detect / k)


@dataclass
class Work:
    """One operator's conversations: screen-pop → outcome saved (talk + wrap-up), in real time."""

    ready_since: float = 0.0
    popped: float | None = None
    busy: list[tuple[float, float]] = field(default_factory=list)
    waits: list[float] = field(default_factory=list)

    def pop(self, _attempt_id: int) -> None:
        self.popped = _now()
        self.waits.append(self.popped - self.ready_since)

    def saved(self) -> None:
        now = _now()
        if self.popped is not None:
            self.busy.append((self.popped, now))
        self.popped, self.ready_since = None, now


async def run_mode(
    server: EmbeddedPostgres, sc: Scenario, mode: str, hours: float, scale: float, timeout_s: int,
    log: Any, virtual: bool = False,
) -> dict[str, Any]:  # fmt: skip
    dsn, campaign_id = await engine.database(server, mode, operators=sc.operators, name="bench_engine_day")
    callees = ScenarioCallees(sc, scale, no_answer_s=timeout_s * scale)
    # Compressed, the dialplan's own waits (the abandon message, the 1 s a person waits for the
    # engine's Redirect before the message plays by itself) are compressed less: the engine's
    # reaction time is not compressed at all.
    time_scale = 1.0 if scale == 1 else 0.25
    pbx = SimulatedPbx(SimConfig(port=0, operator_answer_s=0.2, callees=callees, time_scale=time_scale))
    await pbx.start()
    work = [Work() for _ in range(sc.operators)]
    tasks: list[asyncio.Task[None]] = []
    product = (
        in_process(dsn, pbx, timeout_s)
        if virtual
        else engine.product(dsn, pbx, BENCH_RING_TIMEOUT_S=str(timeout_s))
    )
    try:
        async with product as (base, pid):
            ready, all_in, pages = asyncio.Event(), asyncio.Event(), 0

            def connected() -> None:
                nonlocal pages
                pages += 1
                if pages == sc.operators:
                    all_in.set()

            operators = [
                engine.Operator(
                    base,
                    f"op{i + 1}",
                    campaign_id,
                    w.pop,
                    wrap_s=lambda rng: sc.wrap.draw(rng) / scale,
                    on_saved=w.saved,
                )
                for i, w in enumerate(work)
            ]
            tasks = [asyncio.create_task(op.run(connected, ready)) for op in operators]
            await asyncio.wait_for(all_in.wait(), 120)
            cpu0 = engine.cpu_s(pid or os.getpid())
            t0 = _now()
            for w in work:
                w.ready_since = t0
            callees.started = t0
            ready.set()
            end = t0 + hours * 3600 / scale
            log(f"engine_day/{mode}: {sc.operators} operators, {hours} h in {(end - t0) / 60:.1f} min")
            await asyncio.sleep(end - _now())
            cpu = engine.cpu_s(pid or os.getpid()) - cpu0
            reasons = await _pacer_reasons(base)
            failed = [t for t in tasks if t.done() and t.exception() is not None]
            if failed:
                raise RuntimeError(f"{len(failed)} operators' pages failed: {failed[0].exception()!r}")
            conn = await asyncpg.connect(dsn)
            try:
                _, day = await pacing.rolling(conn, campaign_id)
                rows = await conn.fetch(
                    """select coalesce(outcome, 'none') as outcome, count(*) as n from attempt
                       where campaign_id = $1 group by 1 order by 2 desc""",
                    campaign_id,
                )
                outcomes = {r["outcome"]: r["n"] for r in rows}
                placed = sum(outcomes.values())
            finally:
                await conn.close()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await pbx.stop()
    busy = sum(min(b, end) - a for w in work for a, b in w.busy if a < end)
    busy += sum(end - w.popped for w in work if w.popped is not None and w.popped < end)
    waits = sorted(x * scale for w in work for x in w.waits)
    connects = sum(len(w.waits) for w in work)
    abandoned = day.abandoned + callees.people_hung_up  # PACING.md: people taken for machines count
    live = day.live + callees.people_hung_up
    return {
        "abandon_rate": round(abandoned / live, 4) if live else 0.0,
        "occupancy": round(busy / (sc.operators * (end - t0)), 3),
        "wait_between_calls_s": {
            "median": round(statistics.median(waits), 1) if waits else None,
            "p90": round(waits[int(0.9 * (len(waits) - 1))], 1) if waits else None,
        },
        "connects_per_operator_hour": round(connects / (sc.operators * hours), 2),
        "hit_rate": round(live / placed, 3) if placed else 0.0,
        "placed": placed,
        "outcomes": outcomes,
        "pacer_decisions": reasons,
        "connected": connects,
        "abandoned": abandoned,
        # in its own process; under --virtual, of this whole process (the PBX and the pages too)
        "engine_cpu_ms_per_1000_calls" if pid else "process_cpu_ms_per_1000_calls": (
            round(cpu / placed * 1e6) if placed else None
        ),
    }


async def _pacer_reasons(base: str) -> dict[str, int]:
    """The pacer's decisions by "mode/reason", from the product's /metrics."""
    async with aiohttp.ClientSession() as http:
        found = await engine.samples(http, base, "dialer_pacer_decisions_total")
    return {f"{s.labels['mode']}/{s.labels['reason']}": int(s.value) for s in found}


@contextlib.asynccontextmanager
async def in_process(dsn: str, pbx: SimulatedPbx, ring_timeout_s: int) -> AsyncIterator[tuple[str, None]]:
    """The product in this process (under --virtual, where its clocks must be this loop's)."""
    base = config.load({"DIALER_VAR_DIR": str(engine.WORK / "var"), "LOG_LEVEL": "warning"})
    settings = replace(
        base, database_url=dsn, ami=pbx.ami_settings(), http_port=0, agi_port=0, simulated_callees=True,
        dialplan=replace(base.dialplan, ring_timeout_s=ring_timeout_s),
    )  # fmt: skip
    async with runtime.started(settings) as running:
        yield running.url, None


def simulated(sc: Scenario, mode: str) -> dict[str, Any]:
    day = Day(sc, mode, pacer.Settings())
    day.run()
    full = summarise(day, 0.0)
    keys = ("abandon_rate", "wait_between_calls_s", "connects_per_operator_hour", "hit_rate")
    logged_in_s = sc.operators * sc.hours * 3600
    occupancy = sum(op.handled_in_day_s for op in day.ops) / logged_in_s  # cut at the end, as above
    return (
        {"occupancy": round(occupancy, 3)}
        | {k: full[k] for k in (*keys, "placed", "connected", "abandoned")}
        | {"pacer_decisions": dict(sorted(day.res.reasons.items()))}
    )


async def run(
    path: Path = DEFAULT_SCENARIO, hours: float = 1.0, scale: float = 10.0, log: Any = print,
    virtual: bool = False,
) -> dict[str, Any]:  # fmt: skip
    sc = Scenario.load(path)
    timeout_s = max(1, round(sc.no_answer_s / scale))
    sc = replace(sc, hours=hours, no_answer_s=timeout_s * scale)
    modes: dict[str, Any] = {}
    started = time.perf_counter()
    with engine.postgres() as server:
        for mode in MODES:
            real = await run_mode(server, sc, mode, hours, scale, timeout_s, log, virtual)
            modes[mode] = {"engine": real, "simulation": simulated(sc, mode)}
            log(f"engine_day/{mode}: {json.dumps(modes[mode])}")
    ratio = partial(_ratio, modes)
    how = "--virtual" if virtual else f"--scale {scale:g}"
    return {
        "scenario": sc.name,
        "hours": hours,
        "time": "virtual" if virtual else f"compressed {scale:g}x",
        "scale": scale,
        "no_answer_s": sc.no_answer_s,
        "modes": modes,
        "occupancy_predictive_over_progressive": {
            "engine": ratio("engine"),
            "simulation": ratio("simulation"),
        },
        "wall_clock_s": round(time.perf_counter() - started, 1),
        **({"virtual_clock": _clock_figures()} if virtual else {}),
        "command": f".venv/bin/python -m bench.engine_day {path.name} --hours {hours:g} {how}",
    }


def _clock_figures() -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    assert isinstance(loop, virtual.VirtualLoop)
    c = loop.clock
    return {"jumps": c.jumps, "skipped_s": round(c.skipped, 1), "quiet_s": virtual.QUIET_S}


def first_morning(hours: float, after: datetime) -> datetime:
    """09:00 Tokyo time on the first day after `after` whose default calling window stays open
    for `hours` from then (a weekday that is not a holiday)."""
    window = windows.of_campaign(None)
    day = after.astimezone(TOKYO).date()
    for _ in range(30):
        day += timedelta(days=1)
        start = datetime.combine(day, dtime(9, 0), TOKYO)
        closes = window.closes_at(start)
        if window.is_open(start) and closes is not None and closes - start >= timedelta(hours=hours):
            return start
    raise RuntimeError(f"no day in the next month has {hours} calling hours from 9:00")


def _ratio(modes: dict[str, Any], who: str) -> float | None:
    base = modes["progressive"][who]["occupancy"]
    return round(modes["predictive"][who]["occupancy"] / base, 2) if base else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenario", nargs="?", type=Path, default=DEFAULT_SCENARIO)
    ap.add_argument("--hours", type=float, help="scenario hours to run (default: 1, or all under --virtual)")
    ap.add_argument("--scale", type=float, default=10.0, help="time compression (default 10)")
    ap.add_argument(
        "--virtual", action="store_true",
        help="virtual time instead of compression: the product in this process, idle time skipped",
    )  # fmt: skip
    args = ap.parse_args(argv)
    found = scenario.find(args.scenario)
    if found is None:
        ap.error(f"no scenario {args.scenario}; shipped: {scenario.shipped()}")
    args.scenario = found
    if args.virtual:
        args.scale = 1.0
    hours = args.hours or (Scenario.load(args.scenario).hours if args.virtual else 1.0)
    if hours <= 0 or args.scale < 1:
        ap.error("--hours must be above 0 and --scale at least 1")
    if args.virtual:  # the wall clock (here and in PostgreSQL) starts on a calling morning
        start = first_morning(hours + 1, datetime.now(UTC))
        virtual.reexec(
            start.timestamp(), ["-m", "bench.engine_day", *(sys.argv[1:] if argv is None else argv)]
        )
    logs.configure("warning")
    if args.virtual:
        with asyncio.Runner(loop_factory=virtual.new_loop) as runner:
            result = runner.run(run(args.scenario, hours, 1.0, log, virtual=True))
    else:
        result = asyncio.run(run(args.scenario, hours, args.scale, log))
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
