"""Predictive pacing: how many calls to place now. Pure: a snapshot in, a decision out.

The rule, in one sentence: place one more call only while the chance that it would find no
operator free, were it answered by a person, stays under a threshold; the threshold comes from
the abandon budget still left in the rolling hour and day.

Why that keeps the abandon rate down. Let X be the number of live answers the calls in flight
(and the calls decided in this step) will bring, and Y the operators free to take them. Abandoned
calls are max(0, X − Y). Adding one more call, answered by a person with probability p, raises
the expected abandons by exactly p · P(X ≥ Y): it is abandoned only if every free operator is
already taken. So if every call is placed only while P(X ≥ Y) ≤ θ, then every live answer the
pacer ever adds carries at most θ expected abandons, and the abandon rate over any stretch of
time is at most θ (less, as most calls are placed far below it). The model errs (answers and
releases are forecast, not known), so θ is not fixed: it shrinks as the abandons already counted
in the rolling hour and 24 hours use up their 3 % budget, down to zero, where the rule becomes
progressive dialling (no more calls in flight than operators ready) and cannot abandon at all.

How X and Y are forecast (from the floor as it is and the campaign's recent calls) is told in
`campaigns/forecast.py`; X and Y are sums of independent yes/no chances, whose exact
distributions are convolved here.

With too little history (start of the day, a new campaign) the pacer dials progressively, and so
it does while one more abandon would take the rolling 24 hours over the target (`_room_for_one`:
the first ~38 live calls of a campaign's day at 3 %, whatever the budget floors allow). It
never places more calls than ``max_lines_per_operator`` × operators logged in, in flight.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from campaigns.forecast import Busy, Call, Model, Operator

OFCOM_LIMIT = 0.03  # abandoned / live answered, per campaign, over any 24 hours
HOUR_FLOOR = 60  # live calls a rolling hour is judged on, at least (one early abandon is not 100 %)
DAY_FLOOR = 200


class PacerError(ValueError):
    """A pacing setting out of range; `key` names it."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class Settings:
    """What a supervisor sets. The defaults are the one setting for every campaign."""

    target_abandon: float = OFCOM_LIMIT  # ≤ 3 %
    max_lines_per_operator: float = 3.0
    # The marginal risk allowed while the rolling budget is untouched, as a share of the target.
    # Calibrated with `make bench` (bench/pacing/) across the shipped scenarios.
    boldness: float = 1.0
    # The share of people answering-machine detection takes for machines. They are hung up on, so
    # they count as abandoned (PACING.md), yet nothing the dialer sees tells them from machines:
    # the budget is charged with them by this estimate (measure it by listening to a sample of
    # calls AMD hung up on; 0.5 % is what the shipped scenarios assume).
    amd_false_machine: float = 0.005

    def __post_init__(self) -> None:
        if not 0 <= self.target_abandon <= OFCOM_LIMIT:
            raise PacerError(
                f"target_abandon must be between 0 and {OFCOM_LIMIT}, got {self.target_abandon}",
                "target_abandon",
            )
        if not 1 <= self.max_lines_per_operator <= 10:
            raise PacerError(
                f"max_lines_per_operator must be between 1 and 10, got {self.max_lines_per_operator}",
                "max_lines_per_operator",
            )
        if not 0 <= self.boldness <= 5:
            raise PacerError(f"boldness must be between 0 and 5, got {self.boldness}", "boldness")
        if not 0 <= self.amd_false_machine <= 0.2:
            raise PacerError(
                f"amd_false_machine must be between 0 and 0.2, got {self.amd_false_machine}",
                "amd_false_machine",
            )

    @classmethod
    def parse(cls, raw: dict[str, Any] | None) -> Settings:
        raw = raw or {}
        unknown = set(raw) - {f.name for f in fields(cls)}
        if unknown:
            raise PacerError(f"unknown pacing setting: {', '.join(sorted(unknown))}", sorted(unknown)[0])
        values: dict[str, float] = {}
        for key, value in raw.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise PacerError(f"{key} must be a number", key)
            values[key] = float(value)
        return cls(**values)


# ---- the live state ------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    """Live answered and abandoned calls counted in a rolling window (hour or 24 hours)."""

    live: int = 0
    abandoned: int = 0


@dataclass(frozen=True)
class Snapshot:
    operators: Sequence[Operator]
    calls: Sequence[Call]
    hour: Window = Window()
    day: Window = Window()
    waiting: int = 0  # the campaign's share of the residents calling in who wait (`share`)


_FREED_ORDER = {None: 0, Busy.WRAP_UP: 1, Busy.TALKING: 2}


def share(waiting: int, groups: Sequence[Sequence[Operator]]) -> list[int]:
    """How many of each group's operators the residents calling in who wait will take (a group:
    a predictive campaign's operators, or the department's others). A caller takes the first of
    the department's operators to be free, whichever group it is in (campaigns.inbound): the
    callers are given the operators in the order they are expected to be free (ready, then
    wrapping up, then talking; the longest in that state first; a tie to the earlier group), and
    callers beyond the operators take them again in that order. The shares add up to `waiting`:
    one caller holds back one operator, the one most likely to be freed first."""
    order = sorted(((_FREED_ORDER[op.busy], -op.elapsed_s, g) for g, ops in enumerate(groups) for op in ops))
    shares = [0] * len(groups)
    if order:
        for k in range(max(0, waiting)):
            shares[order[k % len(order)][2]] += 1
    return shares


# ---- the decision --------------------------------------------------------------------------


class Mode(StrEnum):
    PREDICTIVE = "predictive"
    PROGRESSIVE = "progressive"  # too little known, or the abandon budget spent


@dataclass(frozen=True)
class Decision:
    place: int
    mode: Mode
    reason: str
    threshold: float = 0.0  # marginal risk allowed this step
    risk: float = 0.0  # P(no operator free) for the next call not placed (or the last allowed)
    lines_cap: int = 0


def _poisson_binomial(chances: Sequence[float]) -> npt.NDArray[np.float64]:
    """The distribution of a sum of independent yes/no events."""
    pmf = np.ones(1)
    for p in chances:
        if p <= 0.0:
            continue
        nxt = np.zeros(len(pmf) + 1)
        nxt[:-1] = pmf * (1.0 - p)
        nxt[1:] += pmf * p
        pmf = nxt
    return pmf


def threshold(snapshot: Snapshot, settings: Settings) -> float:
    """The marginal abandon risk allowed now, from the budget left in the rolling hour and day."""
    target = settings.target_abandon
    if target <= 0:
        return 0.0
    if not _room_for_one(snapshot.day, settings):
        return 0.0
    return _budget_left(snapshot, settings)


def _budget_left(snapshot: Snapshot, settings: Settings) -> float:
    used = max(_used(snapshot.hour, settings, HOUR_FLOOR), _used(snapshot.day, settings, DAY_FLOOR))
    return settings.boldness * settings.target_abandon * max(0.0, 1.0 - used)


def _room_for_one(window: Window, settings: Settings) -> bool:
    """One more abandon now would leave the 24 hours at or under the target. The floors above
    spread the budget over a day's calls, but the rule is judged on the calls there are: with 32
    live calls in the day one abandon is 3.03 %. So the first abandon of a day (a new campaign,
    a morning after a quiet night) waits for enough live calls to carry it, about 38 at 3 %."""
    unseen = _unseen(window, settings)
    return window.abandoned + unseen + 1.0 <= settings.target_abandon * (window.live + unseen + 1.0)


def _used(window: Window, settings: Settings, floor: int) -> float:
    """The share of a window's abandon budget spent, with the people AMD hung up on (estimated)."""
    unseen = _unseen(window, settings)
    return (window.abandoned + unseen) / (settings.target_abandon * max(window.live + unseen, floor))


def _unseen(window: Window, settings: Settings) -> float:
    """People among the "machines" AMD hung up on, estimated for the `live` people seen."""
    f = settings.amd_false_machine
    return f * window.live / (1.0 - f)


def decide(snapshot: Snapshot, model: Model, settings: Settings) -> Decision:
    operators = snapshot.operators
    in_flight = len(snapshot.calls)
    cap = int(settings.max_lines_per_operator * len(operators) + 1e-9)
    room = cap - in_flight
    if not operators:
        return Decision(0, Mode.PROGRESSIVE, "no_operators", lines_cap=cap)
    # operators free for the campaign's calls: those ready, less the callers waiting for them
    ready = sum(1 for op in operators if op.busy is None) - snapshot.waiting
    theta = threshold(snapshot, settings)
    if model.thin or theta <= 0.0 or model.hit_rate <= 0.0:
        if model.thin or model.hit_rate <= 0.0:
            reason = "thin_history"
        elif settings.target_abandon > 0 and _budget_left(snapshot, settings) > 0:
            reason = "few_live_calls"  # the day cannot carry one more abandon yet
        else:
            reason = "budget_spent"
        place = max(0, min(ready - in_flight, room))
        return Decision(place, Mode.PROGRESSIVE, reason, threshold=theta, lines_cap=cap)
    if room <= 0:
        return Decision(0, Mode.PREDICTIVE, "lines_cap", threshold=theta, lines_cap=cap)

    coming = _poisson_binomial([model.live_chance(c) for c in snapshot.calls])
    freed = _poisson_binomial(
        [model.release_chance(op, model.horizon_s) for op in operators if op.busy is not None]
    )
    # Z = X − (Y − ready), index k ↔ value k − (len(freed) − 1); a call is abandoned when Z ≥ ready
    # (ready may be below 0 while callers wait: then every Z is at or above it unless enough are freed).
    z = np.convolve(coming, freed[::-1])
    offset = len(freed) - 1
    p = model.hit_rate
    place, risk = 0, 0.0
    while place < room:
        at = max(0, ready + offset)  # index of Z == ready (all of Z when ready is below its least value)
        risk = float(z[at:].sum()) if at < len(z) else 0.0
        if risk > theta:
            break
        place += 1
        nxt = np.zeros(len(z) + 1)
        nxt[:-1] = z * (1.0 - p)
        nxt[1:] += z * p
        z = nxt
    reason = "lines_cap" if place == room else "risk"
    return Decision(place, Mode.PREDICTIVE, reason, threshold=theta, risk=risk, lines_cap=cap)
