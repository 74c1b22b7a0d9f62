"""When a household comes back after an attempt that did not reach anyone. Pure.

A first, simple policy (issue 4 brings the full one: day parts, weekends, per-day caps).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from dialer.calls.state import Outcome

MAX_ATTEMPTS = 6

_DELAY: dict[Outcome, timedelta] = {
    Outcome.BUSY: timedelta(minutes=10),
    Outcome.NO_ANSWER: timedelta(hours=3),
    Outcome.MACHINE: timedelta(hours=3),
    Outcome.DROPPED: timedelta(hours=1),
    Outcome.ABANDONED: timedelta(hours=72),  # Ofcom: no repeat within 72 h unless an operator is sure
    Outcome.CONGESTION: timedelta(minutes=30),
    Outcome.FAILED: timedelta(minutes=30),
    Outcome.LOST: timedelta(minutes=30),
    Outcome.CANCELLED: timedelta(minutes=30),
}


@dataclass(frozen=True)
class Next:
    done: bool
    at: datetime | None = None


def after_unreached(outcome: Outcome, attempts: int, now: datetime) -> Next:
    """The next step for a target whose attempt ended without a conversation."""
    if outcome is Outcome.UNAVAILABLE or attempts >= MAX_ATTEMPTS:
        return Next(done=True)
    return Next(done=False, at=now + _DELAY.get(outcome, timedelta(hours=1)))
