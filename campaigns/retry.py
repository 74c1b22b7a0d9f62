"""When a household is called again after a call that did not settle it. Pure.

What municipal call centres do (DOMAIN.md): busy → again in a few minutes; no answer or an
answering machine → at another time of day, and at the weekend after weekday misses (answer
rates are far higher then); someone else answered → later, at another time; a wrong or dead
number → that number is not called again and the household's next number is tried. Each
household at most `max_per_day` calls a day and `max_total` in all, and never given up before it
has been tried at two different times of day. Abandoned calls wait 72 hours (Ofcom).

Times of day are three parts of the calling day in Tokyo: morning (until 12:00), afternoon
(12:00–17:00) and evening (from 17:00). A retry is placed in the calling window of the campaign
(`campaigns.windows`); the attempt history it is given is the household's in this campaign.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta
from enum import StrEnum
from typing import Any

import jpholiday

from campaigns.hours import TOKYO
from campaigns.windows import CallingWindow
from dialer.calls.state import Outcome


class Why(StrEnum):
    """What the last call came to, as far as retrying is concerned."""

    BUSY = "busy"
    NO_ANSWER = "no_answer"
    MACHINE = "machine"
    SOMEONE_ELSE = "someone_else"  # 本人以外応答: nothing said about the debt
    WRONG_NUMBER = "wrong_number"  # 番号誤り / not in service: stop this number
    ABANDONED = "abandoned"
    DROPPED = "dropped"  # answered, line closed before an operator
    TECHNICAL = "technical"  # lost link, cancelled by us
    NOT_PLACED = "not_placed"  # failed, congestion: the PBX or the network never got it to the household


_BY_OUTCOME = {
    Outcome.BUSY: Why.BUSY,
    Outcome.NO_ANSWER: Why.NO_ANSWER,
    Outcome.MACHINE: Why.MACHINE,
    Outcome.UNAVAILABLE: Why.WRONG_NUMBER,
    Outcome.ABANDONED: Why.ABANDONED,
    Outcome.DROPPED: Why.DROPPED,
    Outcome.CONGESTION: Why.NOT_PLACED,
    Outcome.FAILED: Why.NOT_PLACED,
    Outcome.LOST: Why.TECHNICAL,
    Outcome.CANCELLED: Why.TECHNICAL,
}
_BY_DISPOSITION = {
    "other_party": Why.SOMEONE_ELSE,
    "wrong_number": Why.WRONG_NUMBER,
    "no_answer": Why.NO_ANSWER,
    "no_conversation": Why.DROPPED,  # 無言・通話不成立
}


def why_of(outcome: Outcome, disposition: str | None = None) -> Why | None:
    """The retry reason of a finished call; None when it reached the resident (no retry rule applies)."""
    if disposition is not None and disposition in _BY_DISPOSITION:
        return _BY_DISPOSITION[disposition]
    return _BY_OUTCOME.get(outcome)


MORNING, AFTERNOON, EVENING = "morning", "afternoon", "evening"
_NOON, _FIVE = time(12, 0), time(17, 0)


def day_part(at: datetime) -> str:
    t = at.astimezone(TOKYO).time()
    return MORNING if t < _NOON else AFTERNOON if t < _FIVE else EVENING


def is_weekend(day: date) -> bool:
    return day.weekday() >= 5 or jpholiday.is_holiday(day)


@dataclass(frozen=True)
class Policy:
    busy_after: timedelta = timedelta(minutes=10)
    no_answer_after: timedelta = timedelta(hours=3)  # at the earliest; then another time of day
    someone_else_after: timedelta = timedelta(hours=2)
    wrong_number_after: timedelta = timedelta(minutes=1)  # the household's next number
    technical_after: timedelta = timedelta(minutes=30)
    dropped_after: timedelta = timedelta(hours=1)
    abandoned_after: timedelta = timedelta(hours=72)  # Ofcom: no repeat within 72 h
    max_per_day: int = 3
    max_total: int = 8
    weekend_after_weekday_misses: int = 2  # then the next try is on a Saturday, Sunday or holiday
    weekend_within: timedelta = timedelta(days=7)  # ... if one comes this soon
    # A promise to pay not kept: the household comes back this long after the promised day (a
    # payment at a convenience store reaches the municipality's records a few days later).
    promise_grace: timedelta = timedelta(days=3)
    # A call-back or a promise follow-up waits this long for the operator who spoke to the resident.
    same_operator_for: timedelta = timedelta(hours=2)

    def __post_init__(self) -> None:
        if self.max_per_day < 1:
            raise ValueError("max_per_day must be at least 1")
        if self.max_total < 2:
            raise ValueError("max_total must be at least 2 (two tries at different times)")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, timedelta) and value < timedelta(0):
                raise ValueError(f"{f.name} cannot be negative")


DEFAULT = Policy()


# What a campaign may set, inclusive (minutes, or calls). The lower bounds protect residents: a busy
# or failed line is not hammered, nobody abandoned is called again within 72 hours (Ofcom), nobody
# is called more than 5 times a day or 30 times in all. The upper bounds keep every setting
# meaningful (a retry is looked for over the next 21 days) and the arithmetic on dates finite.
_DAY, _WEEK = 24 * 60, 7 * 24 * 60
LIMITS: dict[str, tuple[int, int]] = {
    "busy_after_minutes": (5, _DAY),
    "no_answer_after_minutes": (60, _WEEK),
    "someone_else_after_minutes": (60, _WEEK),
    "wrong_number_after_minutes": (1, _DAY),
    "technical_after_minutes": (5, _DAY),
    "dropped_after_minutes": (30, _WEEK),
    "abandoned_after_minutes": (72 * 60, 30 * _DAY),  # Ofcom: no repeat call within 72 hours
    "max_per_day": (1, 5),
    "max_total": (2, 30),
    "weekend_after_weekday_misses": (1, 10),
    "weekend_within_minutes": (_DAY, 2 * _WEEK),
    "promise_grace_minutes": (_DAY, 30 * _DAY),
    "same_operator_for_minutes": (0, _DAY),
}


def parse(data: Mapping[str, Any] | None) -> Policy:
    """A policy from {"busy_after_minutes": 10, "max_total": 8, ...}; keys left out keep the default.
    Every value must lie within LIMITS."""
    if not data:
        return DEFAULT
    changes: dict[str, Any] = {}
    for key, value in data.items():
        name = _SETTINGS.get(key)
        if name is None:
            raise ValueError(f"unknown retry setting {key!r} (known: {', '.join(sorted(_SETTINGS))})")
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be a whole number")
        low, high = LIMITS[key]
        if not low <= value <= high:
            raise ValueError(f"{key} must be between {low} and {high}, not {value}")
        changes[name] = timedelta(minutes=value) if key.endswith("_minutes") else value
    return replace(DEFAULT, **changes)


def of_campaign(data: Mapping[str, Any] | None) -> Policy:
    """The policy a campaign stored; the default if what is stored cannot be read (see windows)."""
    try:
        return parse(data)
    except ValueError:
        return DEFAULT


def to_dict(policy: Policy) -> dict[str, int]:
    out: dict[str, int] = {}
    for key, name in _SETTINGS.items():
        value = getattr(policy, name)
        out[key] = value // timedelta(minutes=1) if isinstance(value, timedelta) else value
    return out


# setting as written in a campaign -> Policy field; durations are written in whole minutes
_SETTINGS = {
    (f"{f.name}_minutes" if isinstance(getattr(DEFAULT, f.name), timedelta) else f.name): f.name
    for f in fields(Policy)
}
assert set(LIMITS) == set(_SETTINGS), "every retry setting has its limits"


@dataclass(frozen=True)
class Tried:
    """One earlier call to the household in this campaign."""

    at: datetime
    why: Why | None  # None: it reached someone and was settled otherwise


@dataclass(frozen=True)
class Next:
    done: bool
    at: datetime | None = None
    next_number: bool = False  # stop the number just called; try the household's next one
    reason: str = ""


def after(
    why: Why, history: Sequence[Tried], now: datetime, window: CallingWindow, policy: Policy = DEFAULT
) -> Next:
    """The next step for a household whose call (the last of `history`) came to `why`."""
    if not history:
        raise ValueError("history must hold the call just made")
    if why is Why.NOT_PLACED and _not_placed_in_a_row(history) >= NOT_PLACED_MAX:
        return Next(done=True, reason="not_placed")  # this number never gets through: not forever
    # A call that failed in the PBX or the network never reached the household: it does not use up
    # its tries (a misspelt trunk once finished a campaign's households in a second). A lost call
    # may have rung, or been answered, while the link was down: it counts.
    tried = [t for t in history if t.why is not Why.NOT_PLACED]
    total = len(tried)
    parts = {day_part(t.at) for t in tried}
    if total >= policy.max_total and (len(parts) >= 2 or total > policy.max_total):
        return Next(done=True, reason="max_total")
    must_change_part = total >= policy.max_total  # the one extra try, at another time of day
    delay = {
        Why.BUSY: policy.busy_after,
        Why.NO_ANSWER: policy.no_answer_after,
        Why.MACHINE: policy.no_answer_after,
        Why.SOMEONE_ELSE: policy.someone_else_after,
        Why.WRONG_NUMBER: policy.wrong_number_after,
        Why.TECHNICAL: policy.technical_after,
        Why.NOT_PLACED: policy.technical_after,
        Why.DROPPED: policy.dropped_after,
        Why.ABANDONED: policy.abandoned_after,
    }[why]
    other_part = must_change_part or why in (Why.NO_ANSWER, Why.MACHINE, Why.SOMEONE_ELSE)
    weekend = (
        why in (Why.NO_ANSWER, Why.MACHINE)
        and _weekday_misses(history) >= policy.weekend_after_weekday_misses
    )
    at = _slot(history, now + delay, window, policy, other_part=other_part, weekend=weekend)
    if at is None:
        return Next(done=True, reason="window_never_opens")
    return Next(done=False, at=at, next_number=why is Why.WRONG_NUMBER, reason=why.value)


NOT_PLACED_MAX = 6  # calls in a row the PBX or network could not place, after which a household is finished


def _not_placed_in_a_row(history: Sequence[Tried]) -> int:
    n = 0
    for t in reversed(history):
        if t.why is not Why.NOT_PLACED:
            break
        n += 1
    return n


def _weekday_misses(history: Sequence[Tried]) -> int:
    """Unanswered calls on weekdays since the last one at a weekend."""
    n = 0
    for t in reversed(history):
        if is_weekend(t.at.astimezone(TOKYO).date()):
            break
        if t.why in (Why.NO_ANSWER, Why.MACHINE):
            n += 1
    return n


def _slot(
    history: Sequence[Tried],
    earliest: datetime,
    window: CallingWindow,
    policy: Policy,
    *,
    other_part: bool,
    weekend: bool,
) -> datetime | None:
    """The first moment from `earliest` in the window that satisfies the day cap and the preferences.

    Preferences, strongest first: a time of day not tried yet (else one other than the last call's),
    then a weekend day when asked for (given up if none comes within `weekend_within`).
    """
    per_day = Counter(t.at.astimezone(TOKYO).date() for t in history)
    # times of day to avoid, most demanding first: every one tried, then the last call's
    wanted = [{day_part(t.at) for t in history}, {day_part(history[-1].at)}] if other_part else [set()]
    plans = [(parts, True) for parts in wanted] if weekend else []
    plans += [(parts, False) for parts in wanted]
    if other_part:
        plans.append((set(), False))  # a window with one time of day only: keep to it
    candidates = _openings(earliest, window, days=21)
    for parts, weekend_only in plans:
        for at in candidates:
            if weekend_only and at - earliest > policy.weekend_within:
                break
            d = at.astimezone(TOKYO).date()
            if (
                per_day[d] < policy.max_per_day
                and (is_weekend(d) or not weekend_only)
                and day_part(at) not in parts
            ):
                return at
    return None


def _openings(earliest: datetime, window: CallingWindow, *, days: int) -> list[datetime]:
    """The earliest moment from `earliest` in each open stretch of each time of day, for `days` days."""
    local = earliest.astimezone(TOKYO)
    out: list[datetime] = []
    for offset in range(days + 1):
        day = local.date() + timedelta(days=offset)
        for span in window.spans_on(day):
            cuts = [span.start, *(m for m in (_NOON, _FIVE) if span.start < m < span.end), span.end]
            for a, b in itertools.pairwise(cuts):
                start, end = datetime.combine(day, a, TOKYO), datetime.combine(day, b, TOKYO)
                if end > local:
                    out.append(max(start, local))
    return out


def follow_up(promised_on: date, window: CallingWindow, policy: Policy = DEFAULT) -> datetime | None:
    """When a promise to pay is checked on by phone if no payment came: the first calling-window
    opening once `promise_grace` has passed after the promised day (None: the window never opens)."""
    after_day = datetime.combine(promised_on + timedelta(days=1), time(0, 0), TOKYO)
    return window.next_open(after_day + policy.promise_grace)
