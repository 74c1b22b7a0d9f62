"""The retry policy (pure): when a household that was not settled is called again."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from campaigns import retry
from campaigns.retry import Policy, Tried, Why, after, why_of
from campaigns.windows import DEFAULT as WINDOW
from campaigns.windows import parse as parse_window
from dialer.calls.state import Outcome

TOKYO = ZoneInfo("Asia/Tokyo")
NA, BUSY = Why.NO_ANSWER, Why.BUSY


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


def tries(*items: tuple[str, Why | None]) -> list[Tried]:
    return [Tried(at(t), w) for t, w in items]


# 2026-11-30 is a Monday; 2026-12-05/06 the weekend after it.
@pytest.mark.parametrize(
    ("why", "history", "expected", "reason"),
    [
        (BUSY, [("2026-11-30 10:00", BUSY)], "2026-11-30 10:10", "busy: minutes later"),
        (BUSY, [("2026-11-30 19:55", BUSY)], "2026-12-01 09:00", "busy just before closing: next morning"),
        (NA, [("2026-11-30 10:00", NA)], "2026-11-30 13:00", "no answer in the morning: the afternoon"),
        (Why.MACHINE, [("2026-11-30 15:00", Why.MACHINE)], "2026-11-30 18:00", "machine: 3 h on, evening"),
        (
            NA,
            [("2026-11-30 10:00", NA), ("2026-11-30 13:00", NA)],
            "2026-12-05 09:00",
            "two weekday misses: the weekend (no evening on Saturday: the morning, not the last part)",
        ),
        (
            NA,
            [("2026-11-29 10:00", NA), ("2026-11-30 13:00", NA)],
            "2026-11-30 17:00",
            "one weekday miss since the weekend: a new time of day today",
        ),
        (
            BUSY,
            [("2026-11-30 10:00", BUSY), ("2026-11-30 10:10", BUSY), ("2026-11-30 10:20", BUSY)],
            "2026-12-01 09:00",
            "three calls today: tomorrow",
        ),
        (
            Why.SOMEONE_ELSE,
            [("2026-11-30 10:00", Why.SOMEONE_ELSE)],
            "2026-11-30 12:00",
            "someone else: later",
        ),
        (Why.ABANDONED, [("2026-11-30 10:00", Why.ABANDONED)], "2026-12-03 10:00", "abandoned: 72 h"),
        (Why.NOT_PLACED, [("2026-11-30 10:00", Why.NOT_PLACED)], "2026-11-30 10:30", "congestion: 30 min"),
        (NA, [("2026-12-28 19:00", NA)], "2027-01-04 09:00", "over the year-end closure"),
        (NA, [("2026-11-27 18:30", NA)], "2026-11-28 09:00", "Friday evening miss: Saturday morning"),
    ],
)
def test_next_try(why: Why, history: list[tuple[str, Why]], expected: str, reason: str) -> None:
    h = tries(*history)
    nxt = after(why, h, h[-1].at, WINDOW)
    assert (nxt.done, nxt.at) == (False, at(expected)), reason
    assert WINDOW.is_open(nxt.at)


def test_wrong_number_moves_to_the_households_next_number() -> None:
    h = tries(("2026-11-30 10:00", Why.WRONG_NUMBER))
    nxt = after(Why.WRONG_NUMBER, h, h[-1].at, WINDOW)
    assert nxt.next_number
    assert nxt.at == at("2026-11-30 10:01")
    assert not after(NA, tries(("2026-11-30 10:00", NA)), at("2026-11-30 10:00"), WINDOW).next_number


def test_gives_up_after_max_total_tried_at_two_times_of_day() -> None:
    policy = Policy(max_total=3)
    mixed = tries(("2026-11-30 10:00", NA), ("2026-11-30 13:00", NA), ("2026-12-01 17:00", NA))
    assert after(NA, mixed, mixed[-1].at, WINDOW, policy).done
    mornings = tries(("2026-11-30 09:00", BUSY), ("2026-11-30 09:10", BUSY), ("2026-11-30 09:20", BUSY))
    extra = after(BUSY, mornings, mornings[-1].at, WINDOW, policy)
    assert not extra.done, "never given up before two different times of day"
    assert extra.at == at("2026-12-01 12:00")  # three today already; another time of day tomorrow
    assert retry.day_part(extra.at) != "morning"
    four = [*mornings, Tried(at("2026-12-01 12:00"), BUSY)]
    assert after(BUSY, four, four[-1].at, WINDOW, policy).done


def test_calls_that_failed_in_the_pbx_do_not_use_up_a_household_but_do_not_go_on_forever() -> None:
    """A misspelt trunk or a carrier down fails calls before they reach anyone (failed, congestion):
    those do not count against max_total; six such in a row finish it (reason not_placed). A call
    lost with the AMI link may have rung or been answered: it counts."""
    np, policy = Why.NOT_PLACED, Policy(max_total=2)
    failed = tries(("2026-11-30 10:00", NA), ("2026-11-30 13:00", np), ("2026-11-30 13:30", np))
    assert not after(np, failed, failed[-1].at, WINDOW, policy).done, "one real try so far"
    broken = tries(("2026-11-30 10:00", NA), *((f"2026-11-30 1{n}:00", np) for n in range(5)))
    assert not after(np, broken, broken[-1].at, WINDOW, policy).done
    six = [*broken, Tried(at("2026-11-30 16:00"), np)]
    assert (after(np, six, six[-1].at, WINDOW, policy).reason, retry.NOT_PLACED_MAX) == ("not_placed", 6)
    real = tries(("2026-11-30 10:00", NA), ("2026-11-30 11:00", np), ("2026-12-01 17:00", NA))
    assert after(NA, real, real[-1].at, WINDOW, policy).done, "two real tries at two times of day"
    lost = tries(("2026-11-30 10:00", NA), ("2026-12-01 17:00", Why.TECHNICAL))
    assert after(Why.TECHNICAL, lost, lost[-1].at, WINDOW, policy).done, "a lost call counts"
    assert (why_of(Outcome.FAILED), why_of(Outcome.CONGESTION), why_of(Outcome.LOST)) == (
        np,
        np,
        Why.TECHNICAL,
    )


def test_a_window_with_one_time_of_day_is_kept_to() -> None:
    mornings_only = parse_window(
        {d: ["09:00-11:00"] for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")}
    )
    h = tries(("2026-11-30 09:30", NA))
    nxt = after(NA, h, h[-1].at, mornings_only)
    assert nxt.at == at("2026-12-01 09:00")


def test_a_window_that_never_opens_ends_the_household() -> None:
    closed = parse_window({k: [] for k in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")})
    h = tries(("2026-11-30 10:00", NA))
    assert after(NA, h, h[-1].at, closed) == retry.Next(done=True, reason="window_never_opens")


@pytest.mark.parametrize(
    ("outcome", "disposition", "why"),
    [
        (Outcome.BUSY, None, Why.BUSY),
        (Outcome.UNAVAILABLE, None, Why.WRONG_NUMBER),
        (Outcome.CONGESTION, None, Why.NOT_PLACED),
        (Outcome.LOST, None, Why.TECHNICAL),
        (Outcome.CONNECTED, "other_party", Why.SOMEONE_ELSE),
        (Outcome.CONNECTED, "wrong_number", Why.WRONG_NUMBER),
        (Outcome.CONNECTED, "promise", None),
        (Outcome.CONNECTED, None, None),
    ],
)
def test_why_of(outcome: Outcome, disposition: str | None, why: Why | None) -> None:
    assert why_of(outcome, disposition) is why


def test_policy_settings() -> None:
    p = retry.parse({"busy_after_minutes": 5, "max_total": 4})
    assert (p.busy_after, p.max_total, p.max_per_day) == (timedelta(minutes=5), 4, 3)
    assert retry.parse(retry.to_dict(p)) == p
    assert retry.parse(None) == retry.DEFAULT
    for bad, says in [
        ({"busy_after": 5}, "unknown retry setting"),
        ({"max_total": True}, "whole number"),
        ({"max_total": "8"}, "whole number"),
        ({"max_total": 1}, "between 2 and 30"),
        ({"max_per_day": 0}, "between 1 and 5"),
        ({"busy_after_minutes": -1}, "between 5 and 1440"),
    ]:
        with pytest.raises(ValueError, match=says):
            retry.parse(bad)


@pytest.mark.parametrize(
    ("setting", "value", "accepted"),
    [
        ("abandoned_after_minutes", 4320, True),  # Ofcom: 72 hours at the earliest
        ("abandoned_after_minutes", 4319, False),
        ("abandoned_after_minutes", 0, False),
        ("abandoned_after_minutes", 43200, True),
        ("abandoned_after_minutes", 43201, False),
        ("busy_after_minutes", 0, False),
        ("busy_after_minutes", 5, True),
        ("busy_after_minutes", 9_999_999_999_999, False),  # was an OverflowError (a 500 on the console)
        ("technical_after_minutes", 1, False),
        ("wrong_number_after_minutes", 1, True),
        ("same_operator_for_minutes", 0, True),
        ("max_per_day", 1000, False),
        ("max_per_day", 5, True),
        ("max_total", 1_000_000, False),
        ("max_total", 30, True),
        ("weekend_within_minutes", 10**20, False),
    ],
)
def test_every_setting_has_bounds(setting: str, value: int, accepted: bool) -> None:
    if accepted:
        assert retry.to_dict(retry.parse({setting: value}))[setting] == value
    else:
        with pytest.raises(ValueError, match=rf"{setting} must be between \d+ and \d+"):
            retry.parse({setting: value})


def test_the_defaults_are_within_the_bounds() -> None:
    assert set(retry.LIMITS) == set(retry.to_dict(retry.DEFAULT))
    for key, value in retry.to_dict(retry.DEFAULT).items():
        low, high = retry.LIMITS[key]
        assert low <= value <= high, key
