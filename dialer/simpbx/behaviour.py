"""What called parties do: scripted behaviours, the random callee model, AMD verdicts."""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal, Protocol

Result = Literal["answer", "busy", "noanswer", "congestion", "machine", "unreachable"]


@dataclass(frozen=True)
class Behaviour:
    """What one called party does."""

    result: Result
    ring_s: float = 2.0  # seconds of ringing before answer/busy
    talk_s: float | None = None  # after answer the party hangs up (remote BYE); None = stays
    amd_s: float = 2.4  # answer -> AMD verdict (HUMAN for "answer", MACHINE for "machine")
    # AMD() gets it wrong: "MACHINE" for a person (hung up on), "HUMAN" for a machine (sent on)
    amd_status: Literal["HUMAN", "MACHINE"] | None = None


@dataclass(frozen=True)
class CalleeModel:
    """Behaviour of numbers without an explicit script; the rest of the probability is noanswer."""

    answer_p: float = 0.35
    machine_p: float = 0.08
    busy_p: float = 0.12
    congestion_p: float = 0.03
    ring_s: tuple[float, float] = (3.0, 12.0)
    talk_s: tuple[float, float] = (60.0, 240.0)
    seed: int | None = None

    def pick(self, rng: random.Random) -> Behaviour:
        roll = rng.random()
        ring = rng.uniform(*self.ring_s)
        talk = rng.uniform(*self.talk_s)
        edges: list[tuple[float, Result]] = [
            (self.answer_p, "answer"),
            (self.machine_p, "machine"),
            (self.busy_p, "busy"),
            (self.congestion_p, "congestion"),
        ]
        total = 0.0
        for p, result in edges:
            total += p
            if roll < total:
                return Behaviour(result, ring_s=ring, talk_s=talk if result == "answer" else None)
        return Behaviour("noanswer", ring_s=ring)


@dataclass(frozen=True)
class Verdict:
    """What AMD() reports for a party, and how long after answer."""

    status: str
    cause: str
    after_s: float


HUMAN = "HUMAN", "HUMAN-800-800"
MACHINE = "MACHINE", "LONGGREETING-1500-1500"
NOTSURE = "NOTSURE", "TOOLONG-4900"


class Callees(Protocol):
    """Who answers the numbers nobody scripted (CalleeModel, or a benchmark's own model)."""

    @property
    def seed(self) -> int | None: ...

    def pick(self, rng: random.Random) -> Behaviour: ...


def verdict_for(behaviour: Behaviour) -> Verdict:
    machine = (
        behaviour.result == "machine" if behaviour.amd_status is None else behaviour.amd_status == "MACHINE"
    )
    status, cause = MACHINE if machine else HUMAN
    return Verdict(status, cause, behaviour.amd_s)


@dataclass(frozen=True)
class FarScript:
    """The far half of a Local channel in the sim contexts (see extensions-added.conf)."""

    result: Result
    noop: str
    ring_s: float  # unscaled dialplan seconds
    talk_s: float | None
    verdict: Verdict | None
    sets: tuple[tuple[str, str], ...] = ()


def _num(variables: Mapping[str, str], name: str, default: float) -> float:
    try:
        return float(variables.get(name, "") or default)
    except ValueError:
        return default


def far_script(context: str, exten: str, variables: Mapping[str, str]) -> FarScript | None:
    """The scripted far party for ``Local/<exten>@<context>``; None = no such extension."""
    rs_default = 3.0 if context == "sim-callee" else 2.0
    rs = _num(variables, "RINGSEC", rs_default)
    ring, talk = variables.get("RINGSEC", ""), variables.get("TALKSEC", "")
    if context == "sim-resident" and exten == "human":
        ts = _num(variables, "TALKSEC", 5.0)
        sets = (("RS", _fmt(rs)), ("TS", _fmt(ts)))
        noop = f"sim-resident HUMAN ring={ring} talk={talk}"
        return FarScript("answer", noop, rs, 0.5 + ts, Verdict(*HUMAN, 2.4), sets)
    if context == "sim-resident" and exten == "machine":
        noop = f"sim-resident MACHINE ring={ring}"
        return FarScript("machine", noop, rs, 0.5 + 14.0, Verdict(*MACHINE, 2.3), (("RS", _fmt(rs)),))
    if context != "sim-callee":
        return None
    if exten == "answer":
        ts = _num(variables, "TALKSEC", 4.0)
        sets = (("RS", _fmt(rs)), ("TS", _fmt(ts)))
        noop = f"sim-callee ANSWER ring={ring} talk={talk}"
        # sim-callee sends no audio at all, so AMD gives up: NOTSURE after about 5 s.
        return FarScript("answer", noop, rs, 0.5 + ts, Verdict(*NOTSURE, 5.0), sets)
    scripts = {
        "busy": FarScript("busy", "sim-callee BUSY", 1.0, None, None),
        "congestion": FarScript("congestion", "sim-callee CONGESTION", 0.0, None, None),
        "noanswer": FarScript("noanswer", "sim-callee NO ANSWER", 120.0, None, None),
    }
    return scripts.get(exten)


def _fmt(value: float) -> str:
    return str(int(value)) if value == int(value) else str(value)
