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

from bench.pacing.plot import plot
from bench.pacing.report import run

__all__ = ["plot", "run"]
