"""One simulated calling day of one scenario in one dial mode (discrete events, simulated time).

Progressive places one call per ready operator; preview lets the operator read the record first
and runs without answering-machine detection, as the product does; predictive asks
`campaigns.pacer.decide` every second and whenever a call or an operator frees, with the snapshot
the engine builds and a `Model` learnt from the calls so far.
"""

from __future__ import annotations

import heapq
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from bench.pacing.scenario import Scenario
from campaigns import forecast, pacer

TICK_S = 1.0  # the engine's pacing tick
LEARN_EVERY_S = 10.0  # the model is rebuilt this often
KEEP_DIALED = 600  # the recent calls the model learns from
KEEP_HANDLED = 200
MODES = ("preview", "progressive", "predictive")
# Baselines a supervisor could set by hand (PACING.md), each with one number tuned per scenario:
# "ratio": calls in flight ≤ round(ratio × ready operators); "level": VICIdial's fixed dial level,
# calls in flight + conversations ≤ round(level × logged-in operators). Not product modes.
BASELINES = ("ratio", "level")


@dataclass
class Op:
    id: int
    busy: forecast.Busy | None = None
    since: float = 0.0
    reserved: bool = False  # progressive/preview: a call is being placed for this operator
    ready_since: float = 0.0
    handled_s: float = 0.0
    handled_in_day_s: float = 0.0  # the same, cut at the end of the day


@dataclass
class SimCall:
    id: int
    placed: float
    kind: str  # person, machine, busy, no_answer
    ring_s: float
    op: Op | None = None  # reserved operator (progressive, preview)
    phase: forecast.Phase = forecast.Phase.RINGING
    phase_since: float = 0.0


@dataclass
class Result:
    placed: int = 0
    connected: int = 0
    abandoned: int = 0
    machines_hung_up: int = 0
    waits: list[float] = field(default_factory=list)
    live_times: list[tuple[float, bool]] = field(default_factory=list)  # (verdict time, abandoned)
    pacer_cpu_s: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)  # the pacer's decisions by "mode/reason"

    @property
    def decisions(self) -> int:
        return sum(self.reasons.values())

    def share(self, mode: str) -> float:
        """The share of the pacer's decisions made in `mode`."""
        n = sum(v for k, v in self.reasons.items() if k.startswith(f"{mode}/"))
        return n / self.decisions if self.decisions else 0.0


class Day:
    """One calling day of one scenario in one dial mode."""

    def __init__(self, sc: Scenario, mode: str, settings: pacer.Settings, *, ratio: float = 1.0) -> None:
        if mode not in (*MODES, *BASELINES):
            raise ValueError(f"unknown mode {mode!r}")
        self.sc, self.mode, self.settings, self.ratio = sc, mode, settings, ratio
        self.paced = mode == "predictive" or mode in BASELINES  # calls not tied to an operator
        self.rng = random.Random(f"{sc.seed}-{sc.name}")  # the same residents in every mode
        self.now = 0.0
        self.end = sc.hours * 3600
        self.ops = [Op(i) for i in range(sc.operators)]
        self.calls: dict[int, SimCall] = {}
        self.queue: list[tuple[float, int, Callable[[], None]]] = []
        self.seq = 0
        self.res = Result()
        self.dialed: deque[forecast.Dialed] = deque(maxlen=KEEP_DIALED)
        self.handled: deque[forecast.Handled] = deque(maxlen=KEEP_HANDLED)
        self.model = forecast.Model.learn([], [])
        self.learnt_at = -LEARN_EVERY_S
        self.hour: deque[tuple[float, bool]] = deque()
        self.day_live = self.day_abandoned = 0
        self.wake = False

    # -- event plumbing
    def at(self, t: float, fn: Callable[[], None]) -> None:
        self.seq += 1
        heapq.heappush(self.queue, (t, self.seq, fn))

    def run(self) -> Result:
        if self.paced:
            self.at(0.0, self.tick)
        for op in self.ops:
            self.at(0.0, partial(self.free, op))
        while self.queue:
            t, _, fn = heapq.heappop(self.queue)
            self.now = t
            fn()
            if self.wake and self.paced and self.now < self.end:
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
            self.dialed.append(forecast.Dialed(call.ring_s, answered=False, live=False))
            self.finish_call(call)
            if call.op is not None:
                self.dial_for(call.op)  # progressive: the operator's next call
            return
        if self.mode == "preview":  # no machine detection: whoever answers reaches the operator
            self.verdict(call, person=True, detect_s=0.0)
            return
        call.phase, call.phase_since = forecast.Phase.DETECTING, self.now
        human = call.kind == "person"
        d = (self.sc.detect_human if human else self.sc.detect_machine).draw(self.rng)
        wrong = self.rng.random() < (self.sc.false_machine if human else self.sc.false_person)
        self.at(self.now + d, lambda: self.verdict(call, person=human != wrong, detect_s=d))

    def verdict(self, call: SimCall, person: bool, detect_s: float) -> None:
        self.dialed.append(forecast.Dialed(call.ring_s, answered=True, live=person, detect_s=detect_s))
        if not person:
            self.finish_call(call)
            self.res.machines_hung_up += call.kind == "machine"
            if call.kind == "person":  # a person hung up on as a machine: abandoned (PACING.md),
                self.count_live(abandoned=True, seen=False)  # which the engine cannot know
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

    def count_live(self, abandoned: bool, seen: bool = True) -> None:
        """A live answer, in the day's figures and, when the engine would know of it, in the
        rolling counts the pacer is given."""
        self.res.live_times.append((self.now, abandoned))
        if abandoned:
            self.res.abandoned += 1
        if seen:
            self.hour.append((self.now, abandoned))
            self.day_live += 1
            self.day_abandoned += abandoned

    # -- operators
    def free_operator(self) -> Op | None:
        ready = [op for op in self.ops if op.busy is None and not op.reserved]
        return min(ready, key=lambda op: op.ready_since) if ready else None  # longest waiting first

    def connect(self, op: Op, call: SimCall) -> None:
        self.res.connected += 1
        self.res.waits.append(self.now - op.ready_since)
        op.reserved = False
        op.busy, op.since = forecast.Busy.TALKING, self.now
        machine = call.kind == "machine"
        talk = self.sc.machine_talk_s if machine else self.sc.talk.draw(self.rng)
        wrap = 5.0 if machine else self.sc.wrap.draw(self.rng)
        self.at(self.now + talk, lambda: self.wrap_up(op, talk, wrap))

    def wrap_up(self, op: Op, talk: float, wrap: float) -> None:
        op.busy, op.since = forecast.Busy.WRAP_UP, self.now
        self.at(self.now + wrap, lambda: self.done(op, talk, wrap))

    def done(self, op: Op, talk: float, wrap: float) -> None:
        op.handled_s += talk + wrap
        op.handled_in_day_s += max(0.0, min(self.now, self.end) - (self.now - talk - wrap))
        self.handled.append(forecast.Handled(talk, wrap))
        self.free(op)

    def free(self, op: Op) -> None:
        op.busy, op.since, op.ready_since, op.reserved = None, self.now, self.now, False
        self.wake = True
        if not self.paced:
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
        if self.mode in BASELINES:
            self.pace_fixed()
            return
        started = time.process_time()
        if self.now - self.learnt_at >= LEARN_EVERY_S:
            self.model = forecast.Model.learn(list(self.dialed), list(self.handled))
            self.learnt_at = self.now
        while self.hour and self.hour[0][0] <= self.now - 3600:
            self.hour.popleft()
        snap = pacer.Snapshot(
            operators=[forecast.Operator(op.busy, self.now - op.since) for op in self.ops],
            calls=[forecast.Call(c.phase, self.now - c.phase_since) for c in self.calls.values()],
            hour=pacer.Window(len(self.hour), sum(a for _, a in self.hour)),
            day=pacer.Window(self.day_live, self.day_abandoned),
        )
        decision = pacer.decide(snap, self.model, self.settings)
        why = f"{decision.mode.value}/{decision.reason}"
        self.res.reasons[why] = self.res.reasons.get(why, 0) + 1
        self.res.pacer_cpu_s += time.process_time() - started
        for _ in range(decision.place):
            self.place(None)

    def pace_fixed(self) -> None:
        ready = sum(op.busy is None for op in self.ops)
        if self.mode == "ratio":
            allowed = round(self.ratio * ready) - len(self.calls)
        else:
            talking = sum(op.busy is forecast.Busy.TALKING for op in self.ops)
            allowed = round(self.ratio * len(self.ops)) - len(self.calls) - talking
        for _ in range(max(0, allowed)):
            self.place(None)
