"""Skipping a household shown in preview (スキップ). Pure.

An operator reads the record before deciding not to call it; a script that skips through the
preview queue to read records in bulk is what the councils forbid (operators may not copy
resident data). So a record must have been on screen `look` before it can be skipped, and an
operator skips at most `per_hour` households in any hour; beyond that the skip is refused (the
operator calls the household, or pauses) and the first refusal of the hour is audit-logged for
the supervisor. Each record shown is in the audit log anyway (record.view).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class SkipRule:
    look: timedelta = timedelta(seconds=5)
    per_hour: int = 30


def refusal(rule: SkipRule, shown_at: datetime, now: datetime, skipped: Sequence[datetime]) -> str | None:
    """Why this skip is refused (a message key), or None. `skipped`: the operator's earlier skips."""
    if now - shown_at < rule.look:
        return "error.skip_too_soon"
    if sum(1 for at in skipped if now - at < HOUR) >= rule.per_hour:
        return "error.too_many_skips"
    return None


def recent(skipped: Sequence[datetime], now: datetime) -> list[datetime]:
    """The skips that still count (within the hour)."""
    return [at for at in skipped if now - at < HOUR]
