"""What the pacer forecasts from: the floor as it is (operators, calls in flight) and what the
campaign's recent calls taught (`Model`). Pure. The rule that uses it is in `campaigns/pacer.py`.

The pacer weighs X, the people the calls in flight (and those it places now) will bring, against
Y, the operators free to take them. From the campaign's own recent calls:
- X: each ringing call is answered by a person with the probability that calls still ringing at
  its age were (busy lines and dead numbers end early, so the chance falls as a call rings on);
  a call answered and in answering-machine detection is a person with the observed share; each
  new call is a person with the observed hit rate.
- Y: operators ready now, plus each busy operator with the probability that a call of their
  talk time so far ends, with wrap-up, before a new call would be answered (the horizon: the
  time from dialling to a person's verdict, taken at a low quantile so that releases are
  counted late rather than early), less the campaign's share of the residents calling in who
  wait for an operator: they are given the first operators freed, before any call (`pacer.share`).
When the latest 150 calls were answered clearly more often than all the recent ones (2.5 spreads:
people came home, the weather changed), the forecast is learnt from those 150 alone; a fall is
not followed as fast, as the older calls then err on the safe side.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

MIN_DIALED = 40  # finished calls before forecasting from them
MIN_HANDLED = 10  # conversations (talk + wrap-up) before forecasting releases

# ---- the floor as it is --------------------------------------------------------------------


class Busy(StrEnum):
    TALKING = "talking"
    WRAP_UP = "wrap_up"


@dataclass(frozen=True)
class Operator:
    """A logged-in, unpaused operator: ready (``busy`` None) or busy for ``elapsed_s``."""

    busy: Busy | None = None
    elapsed_s: float = 0.0


class Phase(StrEnum):
    RINGING = "ringing"  # dialled, not answered yet
    DETECTING = "detecting"  # answered, answering-machine detection running
    WAITING = "waiting"  # a person, not yet given to an operator


@dataclass(frozen=True)
class Call:
    phase: Phase
    elapsed_s: float = 0.0  # in this phase


# ---- what has been learnt ------------------------------------------------------------------


@dataclass(frozen=True)
class Dialed:
    """A finished call: seconds from dialling to answer (or to its end when not answered), whether
    it was answered, and whether by a person; ``detect_s``: the machine detection's time."""

    ring_s: float
    answered: bool
    live: bool
    detect_s: float = 0.0


@dataclass(frozen=True)
class Handled:
    """A conversation: talk and wrap-up seconds."""

    talk_s: float
    wrap_s: float


@dataclass(frozen=True)
class Model:
    """Distributions learnt from the campaign's recent calls (build it every few seconds)."""

    dialed: int
    hit_rate: float  # live answers per call placed
    person_share: float  # of answered calls, the share that were people
    horizon_s: float  # dialling → a person's verdict, low quantile
    ring_all: tuple[float, ...]  # sorted: every finished call's ring time
    ring_live: tuple[float, ...]  # sorted: the live ones'
    talk: npt.NDArray[np.float64] = field(repr=False)
    total: npt.NDArray[np.float64] = field(repr=False)  # talk + wrap-up, same order as talk
    wraps: tuple[float, ...] = ()  # sorted

    @classmethod
    def learn(
        cls, dialed: Sequence[Dialed], handled: Sequence[Handled], horizon_quantile: float = 0.2
    ) -> Model:
        """From the recent calls, oldest first, and the recent conversations."""
        dialed = _since_a_rise(dialed)
        answered = [d for d in dialed if d.answered]
        live = [d for d in dialed if d.live]
        to_verdict = sorted(d.ring_s + d.detect_s for d in live)
        horizon = to_verdict[int(horizon_quantile * (len(to_verdict) - 1))] if to_verdict else 0.0
        return cls(
            dialed=len(dialed),
            hit_rate=len(live) / len(dialed) if dialed else 0.0,
            person_share=len([d for d in answered if d.live]) / len(answered) if answered else 1.0,
            horizon_s=horizon,
            ring_all=tuple(sorted(d.ring_s for d in dialed)),
            ring_live=tuple(sorted(d.ring_s for d in live)),
            talk=np.array([h.talk_s for h in handled], dtype=np.float64),
            total=np.array([h.talk_s + h.wrap_s for h in handled], dtype=np.float64),
            wraps=tuple(sorted(h.wrap_s for h in handled)),
        )

    @property
    def thin(self) -> bool:
        return self.dialed < MIN_DIALED or len(self.talk) < MIN_HANDLED or not self.ring_live

    def live_chance(self, call: Call) -> float:
        """The chance that a call in flight brings a person who needs an operator."""
        if call.phase is Phase.WAITING:
            return 1.0
        if call.phase is Phase.DETECTING:
            return self.person_share
        still = len(self.ring_all) - bisect.bisect_right(self.ring_all, call.elapsed_s)
        if still == 0:
            return 0.0  # rang longer than any call ever answered or given up: ending
        return (len(self.ring_live) - bisect.bisect_right(self.ring_live, call.elapsed_s)) / still

    def release_chance(self, op: Operator, within_s: float) -> float:
        """The chance that a busy operator is free again within ``within_s``."""
        if op.busy is Busy.WRAP_UP:
            w = self.wraps
            longer = len(w) - bisect.bisect_right(w, op.elapsed_s)
            if longer == 0:
                return 0.0  # wrapping up longer than ever seen: no forecast, count them busy
            done = bisect.bisect_right(w, op.elapsed_s + within_s) - bisect.bisect_right(w, op.elapsed_s)
            return done / longer
        talking = self.talk > op.elapsed_s
        n = int(talking.sum())
        if n == 0:
            return 0.0
        return float((self.total[talking] <= op.elapsed_s + within_s).sum()) / n


RECENT = 150  # the latest calls, compared with the rest to notice the answer rate rising
RISE_Z = 2.5


def _since_a_rise(dialed: Sequence[Dialed]) -> Sequence[Dialed]:
    """The calls to learn from: all of them, or only the latest when people have clearly started
    answering more (learning from the older calls would then send too many)."""
    if len(dialed) < 2 * RECENT:
        return dialed
    recent = dialed[-RECENT:]
    p_all = sum(d.live for d in dialed) / len(dialed)
    p_recent = sum(d.live for d in recent) / RECENT
    spread = (max(p_all * (1 - p_all), 0.01) / RECENT) ** 0.5
    return recent if p_recent > p_all + RISE_Z * spread else dialed
