"""Calling windows (pure): weekdays, Japanese public holidays, the year end, and the 21:00–8:00 floor."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from campaigns.windows import DEFAULT, WindowError, parse

TOKYO = ZoneInfo("Asia/Tokyo")
UTC = ZoneInfo("UTC")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=TOKYO)


@pytest.mark.parametrize(
    ("when", "is_open", "why"),
    [
        ("2026-11-30 08:59", False, "Monday before 9:00"),
        ("2026-11-30 09:00", True, "Monday 9:00 opens"),
        ("2026-11-30 19:59", True, "Monday until 20:00"),
        ("2026-11-30 20:00", False, "Monday closes at 20:00"),
        ("2026-11-28 16:59", True, "Saturday until 17:00"),
        ("2026-11-28 17:00", False, "Saturday closes at 17:00"),
        ("2026-11-29 10:00", True, "Sunday 9:00-17:00"),
        ("2026-11-23 16:59", True, "勤労感謝の日 (a Monday) keeps holiday hours"),
        ("2026-11-23 18:00", False, "勤労感謝の日: not weekday hours"),
        ("2026-09-22 17:30", False, "国民の休日 between 敬老の日 and 秋分の日"),
        ("2026-05-06 18:00", False, "振替休日 for 憲法記念日 on a Sunday"),
        ("2026-05-07 18:00", True, "the Thursday after Golden Week is a weekday again"),
        ("2026-12-28 19:00", True, "the last working day of the year"),
        ("2026-12-29 10:00", False, "年末年始 closed"),
        ("2027-01-01 10:00", False, "元日"),
        ("2027-01-03 10:00", False, "年末年始 until 3 January"),
        ("2027-01-04 10:00", True, "offices open on 4 January"),
    ],
)
def test_default_window(when: str, is_open: bool, why: str) -> None:
    assert DEFAULT.is_open(at(when)) is is_open, why
    assert DEFAULT.is_open(at(when).astimezone(UTC)) is is_open, "whatever zone the clock reports in"


@pytest.mark.parametrize(
    ("when", "next_open"),
    [
        ("2026-11-30 10:00", "2026-11-30 10:00"),  # open now
        ("2026-11-30 07:00", "2026-11-30 09:00"),
        ("2026-11-27 20:30", "2026-11-28 09:00"),  # Friday evening → Saturday morning
        ("2026-11-22 18:00", "2026-11-23 09:00"),  # Sunday evening → the Monday holiday
        ("2026-12-28 20:30", "2027-01-04 09:00"),  # over the year end
    ],
)
def test_next_open(when: str, next_open: str) -> None:
    assert DEFAULT.next_open(at(when)) == at(next_open)


def test_closes_at() -> None:
    assert DEFAULT.closes_at(at("2026-11-28 10:00")) == at("2026-11-28 17:00")
    assert DEFAULT.closes_at(at("2026-11-28 18:00")) is None


def test_never_before_8_or_from_21_whatever_is_configured() -> None:
    w = parse({"mon": ["00:00-24:00"], "tue": ["06:00-07:30"], "holiday": ["07:00-22:00"]})
    assert w.clipped == ("mon", "tue", "holiday")
    assert w.to_dict()["mon"] == ["08:00-21:00"]
    assert w.to_dict()["tue"] == []  # wholly inside the closed hours
    assert not w.is_open(at("2026-11-30 07:59"))
    assert w.is_open(at("2026-11-30 08:00"))
    assert w.is_open(at("2026-11-30 20:59"))
    assert not w.is_open(at("2026-11-30 21:00"))
    assert not w.is_open(at("2026-12-01 07:00"))
    assert w.next_open(at("2026-11-30 21:00")) == at("2026-12-02 09:00")  # Tuesday closed, Wednesday default


def test_a_holiday_only_narrows_its_weekday() -> None:
    w = parse({"sun": [], "holiday": ["10:00-16:00"]})
    assert not w.is_open(at("2026-05-03 11:00")), "憲法記念日 on a Sunday: Sunday is closed"
    assert w.is_open(at("2026-05-06 11:00")), "振替休日 (Wednesday): 10-16"
    assert not w.is_open(at("2026-05-06 09:30"))
    assert parse({"mon": ["09:00-12:00", "13:00-20:00"]}).spans_on(at("2026-11-23").date()) == parse(
        {"holiday": ["09:00-12:00", "13:00-17:00"]}
    ).spans_on(at("2026-11-23").date())


def test_split_day_and_round_trip() -> None:
    w = parse({"mon": ["13:00-20:00", "9:00-12:00"], "year_end": "10:00〜12:00"})
    assert w.to_dict()["mon"] == ["09:00-12:00", "13:00-20:00"]
    assert not w.is_open(at("2026-11-30 12:30"))
    assert w.is_open(at("2026-12-30 11:00"))
    assert parse(w.to_dict()) == w
    assert parse(None) == DEFAULT == parse({})


@pytest.mark.parametrize(
    ("data", "key", "says"),
    [
        ({"mon": ["25:00-26:00"]}, "mon", "not a time of day"),
        ({"tue": ["10:00-09:00"]}, "tue", "ends before it starts"),
        ({"tue": ["09:00-09:00"]}, "tue", "starts and ends at the same time"),  # not "past midnight" (review)
        ({"wed": ["09:00-12:00", "11:00-13:00"]}, "wed", "overlap"),
        ({"thu": ["nine to five"]}, "thu", "not a span"),
        ({"fri": [900]}, "fri", "not a span"),
        ({"fri": {"from": "9"}}, "fri", "list of spans"),
        ({"monday": ["09:00-20:00"]}, "monday", "Unknown day"),
        (["09:00-20:00"], "", "table of days"),
    ],
)
def test_bad_windows_are_refused_with_the_reason(data: object, key: str, says: str) -> None:
    with pytest.raises(WindowError) as err:
        parse(data)  # type: ignore[arg-type]
    assert says in str(err.value)
    assert err.value.key == key


@pytest.mark.parametrize("dash", ["-", "‐", "‒", "–", "—", "−", "ー", "~", "〜", "～"])
def test_a_span_is_read_whatever_dash_was_typed(dash: str) -> None:
    """The minus sign (U+2212) is what many IMEs give for a full-width hyphen."""
    assert str(parse({"mon": [f"10:00{dash}12:00"]}).days[0][0]) == "10:00-12:00"
