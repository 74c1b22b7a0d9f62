"""Calling windows: when a campaign may phone residents, in Tokyo time. Pure.

A window gives, for each weekday, for Japanese public holidays and for the year-end closure
(年末年始, 12/29–1/3, when municipal offices are shut), the spans of the day in which calls may be
placed. Under every window lies the floor of `campaigns.hours`: never 21:00–8:00, whatever is
configured; a span reaching into those hours is cut back to them (and `parse` says so).

Holidays come from jpholiday (the 国民の祝日に関する法律 with 振替休日 and 国民の休日, kept up to date
by its maintainers). A holiday can only narrow its weekday: on a holiday, calls are placed in the
part of the weekday's spans that the holiday spans also allow (a Sunday closed stays closed when
it is a holiday too). Tokyo has no daylight saving time, so a day's spans are wall-clock times.

The defaults are what municipal specifications use: weekdays 9:00–20:00, Saturdays, Sundays and
holidays 9:00–17:00, closed over the year end.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

import jpholiday

from campaigns.hours import EARLIEST, LATEST, TOKYO
from dialer.jpformat import DASHES

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOLIDAY = "holiday"
YEAR_END = "year_end"
KEYS = (*DAYS, HOLIDAY, YEAR_END)

_SPAN = re.compile(rf"\s*([0-2]?\d):([0-5]\d)\s*[-~〜～{DASHES}]\s*([0-2]?\d):([0-5]\d)\s*")


@dataclass(frozen=True, order=True)
class Span:
    """Part of a day, from start up to (not including) end."""

    start: time
    end: time

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


Spans = tuple[Span, ...]


class WindowError(ValueError):
    """A window as written cannot be used; `key` names the day it is about ('' for the whole),
    `reason` what is wrong with it (a page says it in its language: camp.err.window_<reason>)."""

    def __init__(self, message: str, key: str = "", reason: str = "form") -> None:
        super().__init__(message)
        self.key, self.reason = key, reason


def _d(start: str, end: str) -> Spans:
    return (Span(time.fromisoformat(start), time.fromisoformat(end)),)


_WEEKDAY, _WEEKEND = _d("09:00", "20:00"), _d("09:00", "17:00")


@dataclass(frozen=True)
class CallingWindow:
    days: tuple[Spans, Spans, Spans, Spans, Spans, Spans, Spans] = (
        _WEEKDAY, _WEEKDAY, _WEEKDAY, _WEEKDAY, _WEEKDAY, _WEEKEND, _WEEKEND,
    )  # fmt: skip
    holiday: Spans = _WEEKEND
    year_end: Spans = ()
    clipped: tuple[str, ...] = field(default=(), compare=False)  # keys cut back to 8:00–21:00 by parse

    def spans_on(self, day: date) -> Spans:
        """The spans of this calendar day (Tokyo), already within 8:00–21:00."""
        if (day.month == 12 and day.day >= 29) or (day.month == 1 and day.day <= 3):
            return self.year_end
        weekday = self.days[day.weekday()]
        if jpholiday.is_holiday(day):
            return _intersect(weekday, self.holiday)
        return weekday

    def is_open(self, now: datetime) -> bool:
        local = _tokyo(now)
        t = local.time()
        return any(s.start <= t < s.end for s in self.spans_on(local.date()))

    def closes_at(self, now: datetime) -> datetime | None:
        """The end of the span `now` is in (Tokyo time), or None when the window is closed."""
        local = _tokyo(now)
        t = local.time()
        for s in self.spans_on(local.date()):
            if s.start <= t < s.end:
                return datetime.combine(local.date(), s.end, TOKYO)
        return None

    def next_open(self, now: datetime, *, within_days: int = 400) -> datetime | None:
        """The first moment at or after `now` inside the window (Tokyo time); None if it never opens."""
        local = _tokyo(now)
        for offset in range(within_days + 1):
            day = local.date() + timedelta(days=offset)
            for s in self.spans_on(day):
                start = datetime.combine(day, s.start, TOKYO)
                end = datetime.combine(day, s.end, TOKYO)
                if end > local:
                    return max(start, local)
        return None

    def to_dict(self) -> dict[str, list[str]]:
        """The form `parse` reads (and the console shows): {"mon": ["09:00-20:00"], ...}."""
        spans = {k: self.days[i] for i, k in enumerate(DAYS)} | {
            HOLIDAY: self.holiday,
            YEAR_END: self.year_end,
        }
        return {k: [str(s) for s in v] for k, v in spans.items()}


DEFAULT = CallingWindow()
CLOSED = CallingWindow(days=((),) * 7, holiday=(), year_end=())


def of_campaign(data: Mapping[str, Any] | None) -> CallingWindow:
    """The window a campaign stored; CLOSED (no calls) if what is stored cannot be read.

    The console and CLI refuse a bad window before storing it, so this only happens when the
    column was edited by hand; failing closed means nobody is called at a time nobody chose.
    """
    try:
        return parse(data)
    except WindowError:
        return CLOSED


def parse(data: Mapping[str, Any] | None) -> CallingWindow:
    """A window from {"mon": ["09:00-12:00", "13:00-20:00"], "sun": [], ...}.

    Keys left out keep the default's spans; [] closes that day. Spans must not overlap; times are
    HH:MM (24:00 allowed as an end). Spans reaching before 8:00 or after 21:00 are cut back to
    that floor, and the keys so cut are listed in `clipped` so the console can say so.
    """
    if data is None:
        return DEFAULT
    if not isinstance(data, Mapping):
        raise WindowError('A calling window is a table of days, e.g. mon = ["09:00-20:00"].')
    unknown = sorted(set(data) - set(KEYS))
    if unknown:
        raise WindowError(f"Unknown day {unknown[0]!r}: use {', '.join(KEYS)}.", unknown[0])
    base = DEFAULT.to_dict()
    spans: dict[str, Spans] = {}
    clipped: list[str] = []
    for key in KEYS:
        raw = data.get(key, base[key])
        parsed, was_clipped = _spans(key, raw)
        spans[key] = parsed
        if was_clipped:
            clipped.append(key)
    days = tuple(spans[k] for k in DAYS)
    assert len(days) == 7
    return CallingWindow(
        days=days,
        holiday=spans[HOLIDAY],
        year_end=spans[YEAR_END],
        clipped=tuple(clipped),
    )


def _spans(key: str, raw: Any) -> tuple[Spans, bool]:
    if isinstance(raw, str):
        raw = [raw] if raw.strip() else []
    if not isinstance(raw, Iterable) or isinstance(raw, (bytes, Mapping)):
        raise WindowError(f'{key}: give a list of spans such as "09:00-20:00".', key)
    out: list[Span] = []
    clipped = False
    for text in raw:
        if not isinstance(text, str):
            raise WindowError(f'{key}: {text!r} is not a span such as "09:00-20:00".', key)
        m = _SPAN.fullmatch(text)
        if m is None:
            raise WindowError(f'{key}: {text!r} is not a span such as "09:00-20:00".', key)
        h1, m1, h2, m2 = (int(g) for g in m.groups())
        if h1 > 23 or h2 > 24 or (h2 == 24 and m2 != 0):
            raise WindowError(f"{key}: {text!r} is not a time of day.", key)
        start, end = h1 * 60 + m1, h2 * 60 + m2
        if start == end:
            raise WindowError(f"{key}: {text!r} starts and ends at the same time.", key, "empty")
        if start > end:
            raise WindowError(
                f"{key}: {text!r} ends before it starts (a span cannot run past midnight).", key, "reversed"
            )
        lo, hi = EARLIEST.hour * 60 + EARLIEST.minute, LATEST.hour * 60 + LATEST.minute
        if start < lo or end > hi:
            clipped = True
            start, end = max(start, lo), min(end, hi)
            if start >= end:
                continue  # wholly inside the hours nobody is called
        out.append(Span(_time(start), _time(end)))
    out.sort()
    for a, b in itertools.pairwise(out):
        if b.start < a.end:
            raise WindowError(f"{key}: the spans {a} and {b} overlap.", key, "overlap")
    return tuple(out), clipped


def _intersect(a: Spans, b: Spans) -> Spans:
    out = []
    for x in a:
        for y in b:
            start, end = max(x.start, y.start), min(x.end, y.end)
            if start < end:
                out.append(Span(start, end))
    return tuple(sorted(out))


def _time(minutes: int) -> time:
    return time(minutes // 60, minutes % 60)


def _tokyo(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    return now.astimezone(TOKYO)
