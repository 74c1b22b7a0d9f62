"""The hours no resident is ever called, whatever a campaign says. Pure.

Municipal call centres follow the money-lending rule: never between 21:00 and 8:00. This is the
floor under every campaign's own calling window (per weekday and holiday, issue 4), checked
right before each call is placed, so that a call queued before 21:00 is not placed after it.
"""

from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

TOKYO = ZoneInfo("Asia/Tokyo")
EARLIEST = time(8, 0)
LATEST = time(21, 0)  # exclusive


def callable_now(now: datetime) -> bool:
    """True from 8:00 up to (not including) 21:00, Tokyo time. `now` must be timezone-aware."""
    if now.tzinfo is None:
        raise ValueError("now must carry a time zone")
    local = now.astimezone(TOKYO).time()
    return EARLIEST <= local < LATEST
