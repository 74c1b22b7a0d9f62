"""Pacing benchmark: a discrete-event simulation of a calling day, in simulated time.

Simulated residents (answer or not, busy, answering machines, ring times) and operators (talk and
wrap-up times) from the scenario files in bench/scenarios/; the dialling decisions are the
product's own: the predictive mode asks `campaigns.pacer.decide` with the same snapshot the engine
builds (operators ready/talking/wrapping and for how long, calls ringing or in detection, the
rolling hour's and day's live and abandoned counts) and a `Model` learnt from the calls so far.
Progressive places one call per ready operator; preview lets the operator read the record first
and runs without answering-machine detection, as the product does.

Definitions are PACING.md's: abandon rate = abandoned / live answered (connected + abandoned;
a person taken for a machine counts as abandoned, a machine passed on counts as live); occupancy
= (talk + wrap-up) / logged-in time; wait between calls = ready → next connect.

    python -m bench.pacing [SCENARIO.toml ...] [--modes predictive,progressive] [--hours H]
"""

from __future__ import annotations

import argparse
import heapq
import json
import math
import random
import statistics
import sys
import time
import tomllib
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

from campaigns import pacer

SCENARIOS = Path(__file__).parent / "scenarios"
TICK_S = 1.0  # the engine's pacing tick
LEARN_EVERY_S = 10.0  # the model is rebuilt this often
KEEP_DIALED = 600  # the recent calls the model learns from
KEEP_HANDLED = 200
MODES = ("preview", "progressive", "predictive")


# ---- scenario --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dist:
    median: float
    sigma: float

    def draw(self, rng: random.Random) -> float:
        return self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0)) if self.sigma else self.median


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    operators: int
    hours: float
    seed: int
    answer: float
    answer_from_hour: tuple[tuple[float, float], ...]
    machine: float
    busy: float
    ring: Dist
    no_answer_s: float
    busy_s: Dist
    detect_human: Dist
    detect_machine: Dist
    false_machine: float
    false_person: float
    talk: Dist
    wrap: Dist
    machine_talk_s: float
    preview_s: float

    @classmethod
    def load(cls, path: Path) -> Scenario:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        title = path.read_text(encoding="utf-8").splitlines()[0].lstrip("# ").strip()
        r, o = raw["residents"], raw["operators_time"]

        def dist(d: dict[str, float]) -> Dist:
            return Dist(float(d["median"]), float(d.get("sigma", 0.0)))

        changes = tuple(sorted((float(h), float(a)) for h, a in r.get("answer_from_hour", {}).items()))
        return cls(
            name=path.stem, title=title, operators=int(raw["operators"]), hours=float(raw["hours"]),
            seed=int(raw.get("seed", 1)), answer=float(r["answer"]), answer_from_hour=changes,
            machine=float(r["machine"]), busy=float(r["busy"]), ring=dist(r["ring_s"]),
            no_answer_s=float(r["no_answer_s"]), busy_s=dist(r["busy_s"]),
            detect_human=dist(r["detect_human_s"]), detect_machine=dist(r["detect_machine_s"]),
            false_machine=float(r["false_machine"]), false_person=float(r["false_person"]),
            talk=dist(o["talk_s"]), wrap=dist(o["wrap_s"]), machine_talk_s=float(o["machine_talk_s"]),
            preview_s=float(o["preview_s"]),
        )  # fmt: skip

    def answer_at(self, t_s: float) -> float:
        rate = self.answer
        for hour, a in self.answer_from_hour:
            if t_s >= hour * 3600:
                rate = a
        return rate


# ---- the simulated floor ---------------------------------------------------------------------
@dataclass
class Op:
    id: int
    busy: pacer.Busy | None = None
    since: float = 0.0
    reserved: bool = False  # progressive/preview: a call is being placed for this operator
    ready_since: float = 0.0
    handled_s: float = 0.0


@dataclass
class SimCall:
    id: int
    placed: float
    kind: str  # person, machine, busy, no_answer
    ring_s: float
    op: Op | None = None  # reserved operator (progressive, preview)
    phase: pacer.Phase = pacer.Phase.RINGING
    phase_since: float = 0.0


@dataclass
class Result:
    placed: int = 0
    connected: int = 0
    abandoned: int = 0
    machines_hung_up: int = 0
    waits: list[float] = field(default_factory=list)
    live_times: list[tuple[float, bool]] = field(default_factory=list)  # (verdict time, abandoned)
    decisions: int = 0
    pacer_cpu_s: float = 0.0
    modes: dict[str, int] = field(default_factory=dict)


class Day:
    """One calling day of one scenario in one dial mode."""

    def __init__(self, sc: Scenario, mode: str, settings: pacer.Settings) -> None:
        self.sc, self.mode, self.settings = sc, mode, settings
        self.rng = random.Random(f"{sc.seed}-{sc.name}")  # the same residents in every mode
        self.now = 0.0
        self.end = sc.hours * 3600
        self.ops = [Op(i) for i in range(sc.operators)]
        self.calls: dict[int, SimCall] = {}
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.res = Result()
        self.dialed: deque[pacer.Dialed] = deque(maxlen=KEEP_DIALED)
        self.handled: deque[pacer.Handled] = deque(maxlen=KEEP_HANDLED)
        self.model = pacer.Model.learn([], [])
        self.learnt_at = -LEARN_EVERY_S
        self.hour: deque[tuple[float, bool]] = deque()
        self.day_live = self.day_abandoned = 0
        self.wake = False

    # -- event plumbing
    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (t, self.seq, fn))

    def run(self) -> Result:
        if self.mode == "predictive":
            self.at(0.0, self.tick)
        for op in self.ops:
            self.at(0.0, partial(self.free, op))
        while self.queue:
            t, _, fn = heapq.heappop(self.queue)
            self.now = t
            fn()
            if self.wake and self.mode == "predictive" and self.now < self.end:
                self.wake = False
                self.pace()
        return self.res

    # -- residents
    def place(self, op: Op | None) -> None:
        sc, rng = self.sc, self.rng
        self.res.placed += 1
        u = rng.random()
        answer = sc.answer_at(self.now)
        if u < sc.busy:
            kind, ring = "busy", sc.busy_s.draw(rng)
        elif u < sc.busy + answer:
            kind = "machine" if rng.random() < sc.machine else "person"
            ring = min(sc.ring.draw(rng), sc.no_answer_s - 0.5)
        else:
            kind, ring = "no_answer", sc.no_answer_s
        call = SimCall(self.res.placed, self.now, kind, ring, op, phase_since=self.now)
        self.calls[call.id] = call
        if op is not None:
            op.reserved = True
        self.at(self.now + ring, lambda: self.rang(call))

    def rang(self, call: SimCall) -> None:
        if call.kind in ("busy", "no_answer"):
            self.dialed.append(pacer.Dialed(call.ring_s, answered=False, live=False))
            self.finish_call(call)
            if call.op is not None:
                self.dial_for(call.op)  # progressive: the operator's next call
            return
        if self.mode == "preview":  # no machine detection: whoever answers reaches the operator
            self.verdict(call, person=True, detect_s=0.0)
            return
        call.phase, call.phase_since = pacer.Phase.DETECTING, self.now
        human = call.kind == "person"
        d = (self.sc.detect_human if human else self.sc.detect_machine).draw(self.rng)
        wrong = self.rng.random() < (self.sc.false_machine if human else self.sc.false_person)
        self.at(self.now + d, lambda: self.verdict(call, person=human != wrong, detect_s=d))

    def verdict(self, call: SimCall, person: bool, detect_s: float) -> None:
        self.dialed.append(pacer.Dialed(call.ring_s, answered=True, live=person, detect_s=detect_s))
        if not person:
            self.finish_call(call)
            self.res.machines_hung_up += call.kind == "machine"
            if call.kind == "person":  # a person hung up on as a machine: abandoned (PACING.md)
                self.count_live(abandoned=True)
            if call.op is not None:
                self.dial_for(call.op)
            return
        op = call.op or self.free_operator()
        self.finish_call(call)
        if op is None:
            self.count_live(abandoned=True)  # the abandon message, then the call ends
            return
        self.count_live(abandoned=False)
        self.connect(op, call)

    def finish_call(self, call: SimCall) -> None:
        self.calls.pop(call.id, None)
        self.wake = True

    def count_live(self, abandoned: bool) -> None:
        self.res.live_times.append((self.now, abandoned))
        self.hour.append((self.now, abandoned))
        self.day_live += 1
        self.day_abandoned += abandoned
        if abandoned:
            self.res.abandoned += 1

    # -- operators
    def free_operator(self) -> Op | None:
        ready = [op for op in self.ops if op.busy is None and not op.reserved]
        return min(ready, key=lambda op: op.ready_since) if ready else None  # longest waiting first

    def connect(self, op: Op, call: SimCall) -> None:
        self.res.connected += 1
        self.res.waits.append(self.now - op.ready_since)
        op.reserved = False
        op.busy, op.since = pacer.Busy.TALKING, self.now
        machine = call.kind == "machine"
        talk = self.sc.machine_talk_s if machine else self.sc.talk.draw(self.rng)
        wrap = 5.0 if machine else self.sc.wrap.draw(self.rng)
        self.at(self.now + talk, lambda: self.wrap_up(op, talk, wrap))

    def wrap_up(self, op: Op, talk: float, wrap: float) -> None:
        op.busy, op.since = pacer.Busy.WRAP_UP, self.now
        self.at(self.now + wrap, lambda: self.done(op, talk, wrap))

    def done(self, op: Op, talk: float, wrap: float) -> None:
        op.handled_s += talk + wrap
        self.handled.append(pacer.Handled(talk, wrap))
        self.free(op)

    def free(self, op: Op) -> None:
        op.busy, op.since, op.ready_since, op.reserved = None, self.now, self.now, False
        self.wake = True
        if self.mode != "predictive":
            self.dial_for(op, first=True)

    def dial_for(self, op: Op, first: bool = False) -> None:
        op.reserved = False
        if self.now >= self.end:
            return
        if self.mode == "preview" and first:
            op.reserved = True
            self.at(self.now + self.sc.preview_s, lambda: self.place(op))
        else:
            self.place(op)

    # -- predictive
    def tick(self) -> None:
        if self.now < self.end:
            self.pace()
            self.at(self.now + TICK_S, self.tick)

    def pace(self) -> None:
        started = time.process_time()
        if self.now - self.learnt_at >= LEARN_EVERY_S:
            self.model = pacer.Model.learn(list(self.dialed), list(self.handled))
            self.learnt_at = self.now
        while self.hour and self.hour[0][0] <= self.now - 3600:
            self.hour.popleft()
        snap = pacer.Snapshot(
            operators=[pacer.Operator(op.busy, self.now - op.since) for op in self.ops],
            calls=[pacer.Call(c.phase, self.now - c.phase_since) for c in self.calls.values()],
            hour=pacer.Window(len(self.hour), sum(a for _, a in self.hour)),
            day=pacer.Window(self.day_live, self.day_abandoned),
        )
        decision = pacer.decide(snap, self.model, self.settings)
        self.res.decisions += 1
        self.res.modes[decision.mode.value] = self.res.modes.get(decision.mode.value, 0) + 1
        self.res.pacer_cpu_s += time.process_time() - started
        for _ in range(decision.place):
            self.place(None)


# ---- figures ---------------------------------------------------------------------------------
def worst_hour(live: list[tuple[float, bool]], start: float, end: float) -> tuple[float, int, int]:
    """The highest abandon rate over any one-hour window ending inside the day (and its counts)."""
    worst, counts = 0.0, (0, 0)
    lo = 0
    abandoned = 0
    for hi, (t, a) in enumerate(live):
        abandoned += a
        while live[lo][0] <= t - 3600:
            abandoned -= live[lo][1]
            lo += 1
        if t < start + 3600 and end - start >= 3600:
            continue
        n = hi - lo + 1
        if abandoned / n > worst:
            worst, counts = abandoned / n, (abandoned, n)
    return worst, counts[0], counts[1]


def summarise(sc: Scenario, mode: str, res: Result, wall_s: float) -> dict[str, Any]:
    logged_in_s = sc.operators * sc.hours * 3600
    live = res.connected + res.abandoned
    waits = sorted(res.waits)
    worst, w_ab, w_live = worst_hour(res.live_times, 0.0, sc.hours * 3600)
    return {
        "abandon_rate": round(res.abandoned / live, 4) if live else 0.0,
        "worst_hour_abandon_rate": round(worst, 4),
        "worst_hour": f"{w_ab}/{w_live}",
        "occupancy": None,  # filled by the caller (needs the operators)
        "wait_between_calls_s": {
            "median": round(statistics.median(waits), 1) if waits else None,
            "p90": round(waits[int(0.9 * (len(waits) - 1))], 1) if waits else None,
        },
        "connects_per_operator_hour": round(res.connected / (sc.operators * sc.hours), 2),
        "hit_rate": round(live / res.placed, 3) if res.placed else 0.0,
        "placed": res.placed,
        "connected": res.connected,
        "abandoned": res.abandoned,
        "logged_in_h": round(logged_in_s / 3600, 1),
        "pacer": (
            {
                "decisions": res.decisions,
                "cpu_ms_per_decision": round(1000 * res.pacer_cpu_s / res.decisions, 3),
                "progressive_share": round(res.modes.get("progressive", 0) / res.decisions, 3),
            }
            if res.decisions
            else None
        ),
        "simulated_in_s": round(wall_s, 2),
    }


def run_one(sc: Scenario, mode: str, settings: pacer.Settings) -> dict[str, Any]:
    started = time.perf_counter()
    day = Day(sc, mode, settings)
    res = day.run()
    out = summarise(sc, mode, res, time.perf_counter() - started)
    logged_in = sc.operators * sc.hours * 3600
    handled = sum(op.handled_s for op in day.ops)
    out["occupancy"] = round(handled / logged_in, 3)
    out["busy_minutes_per_hour"] = round(60 * handled / logged_in, 1)
    return out


def run(
    paths: list[Path] | None = None, modes: tuple[str, ...] = MODES, settings: pacer.Settings | None = None,
    hours: float | None = None, log: Callable[[str], None] | None = None,
) -> dict[str, Any]:  # fmt: skip
    settings = settings or pacer.Settings()
    paths = paths or sorted(SCENARIOS.glob("*.toml"))
    scenarios: dict[str, Any] = {}
    for path in paths:
        sc = Scenario.load(path)
        if hours is not None:
            sc = replace(sc, hours=hours)
        per_mode = {mode: run_one(sc, mode, settings) for mode in modes}
        entry: dict[str, Any] = {"title": sc.title, "operators": sc.operators, "modes": per_mode}
        if "predictive" in per_mode and "progressive" in per_mode and per_mode["progressive"]["occupancy"]:
            entry["occupancy_predictive_over_progressive"] = round(
                per_mode["predictive"]["occupancy"] / per_mode["progressive"]["occupancy"], 2
            )
        scenarios[sc.name] = entry
        if log:
            log(_line(sc.name, entry))
    return {
        "settings": {
            "target_abandon": settings.target_abandon,
            "max_lines_per_operator": settings.max_lines_per_operator,
            "boldness": settings.boldness,
        },
        "scenarios": scenarios,
        "goals": _goals(scenarios),
        "command": "make bench (or: .venv/bin/python -m bench.pacing)",
    }


def _goals(scenarios: dict[str, Any]) -> dict[str, Any]:
    pred = {n: s["modes"]["predictive"] for n, s in scenarios.items() if "predictive" in s["modes"]}
    ratios = {
        n: s.get("occupancy_predictive_over_progressive")
        for n, s in scenarios.items()
        if s["operators"] >= 20 and "occupancy_predictive_over_progressive" in s
    }
    return {
        "predictive_abandon_at_most_3pct_every_scenario": all(
            p["abandon_rate"] <= 0.03 for p in pred.values()
        ),
        "predictive_worst_hour_at_most_3pct_every_scenario": all(
            p["worst_hour_abandon_rate"] <= 0.03 for p in pred.values()
        ),
        "occupancy_ratio_at_least_1_3_with_20_or_more_operators": all(
            r is not None and r >= 1.3 for r in ratios.values()
        ),
        "occupancy_ratios_20_or_more_operators": ratios,
    }


def _line(name: str, entry: dict[str, Any]) -> str:
    parts = [f"{name:28}"]
    for mode, m in entry["modes"].items():
        parts.append(
            f"{mode[:4]} occ {m['occupancy']:.3f} ab {100 * m['abandon_rate']:.2f}% "
            f"worst-h {100 * m['worst_hour_abandon_rate']:.2f}% wait p50 {m['wait_between_calls_s']['median']}s"
        )
    if "occupancy_predictive_over_progressive" in entry:
        parts.append(f"x{entry['occupancy_predictive_over_progressive']}")
    return " | ".join(parts)


def plot(results: dict[str, Any], path: Path) -> None:
    """Occupancy against abandon rate: one point per scenario and mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5.5), dpi=110)
    markers = {"preview": "s", "progressive": "o", "predictive": "^"}
    colours = {"preview": "#888888", "progressive": "#1f77b4", "predictive": "#d62728"}
    for name, entry in results["scenarios"].items():
        for mode, m in entry["modes"].items():
            ax.scatter(
                100 * m["abandon_rate"], m["occupancy"], marker=markers[mode], color=colours[mode],
                label=mode, s=40,
            )  # fmt: skip
            if mode == "predictive":
                ax.annotate(name, (100 * m["abandon_rate"], m["occupancy"]), fontsize=6, alpha=0.7)
    ax.axvline(3.0, color="black", linestyle="--", linewidth=1)
    ax.text(3.05, 0.95, "3 % (Ofcom)", fontsize=8)
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="lower center")
    ax.set_xlabel("abandon rate over the day (% of live answered calls)")
    ax.set_ylabel("operator occupancy ((talk + wrap-up) / logged-in)")
    ax.set_ylim(0, 1)
    ax.set_xlim(0, 3.6)
    ax.grid(alpha=0.3)
    ax.set_title("Pacing benchmark: occupancy against abandon rate, per scenario and mode")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("scenarios", nargs="*", type=Path)
    ap.add_argument("--modes", default=",".join(MODES))
    ap.add_argument("--hours", type=float)
    ap.add_argument("--boldness", type=float, default=pacer.Settings().boldness)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args(argv)
    settings = pacer.Settings(boldness=args.boldness)
    results = run(
        args.scenarios or None, tuple(args.modes.split(",")), settings, args.hours,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(json.dumps(results["goals"], indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
