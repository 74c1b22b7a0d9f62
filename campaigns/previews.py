"""The preview records operators pass over without calling: a skip within its limits
(campaigns.previewing, the pure rule), and the record a pause or logout gave back, the operator's
again on their next Ready. Kept by operator, not by page: logging out and in again starts no new
hour and shows no new record."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg

from campaigns import previewing
from campaigns.floor import Slot
from dialer import logs
from dialer.config import Settings
from dialer.store import audit

log = logs.get("campaigns.previews")


class Previews:
    def __init__(self, pool: asyncpg.Pool, settings: Settings) -> None:
        self.pool, self.settings = pool, settings
        self.skipped: dict[int, list[datetime]] = {}  # skips in the last hour, by operator
        self.skip_refused: dict[int, datetime] = {}  # the last refusal audit-logged, by operator
        self.put_back: dict[tuple[int, int], int] = {}  # (operator, campaign) -> the record given back

    async def skip_refusal(self, slot: Slot) -> str | None:
        """Why this operator may not skip the record on their screen now (a message key), or None:
        then the skip counts. The first refusal of an hour for too many skips is audit-logged."""
        now, user = datetime.now(UTC), slot.user
        skipped = self.skipped[user.id] = previewing.recent(self.skipped.get(user.id, []), now)
        rule = previewing.SkipRule(
            timedelta(seconds=self.settings.preview_look_s), self.settings.preview_skips_per_hour
        )
        why = previewing.refusal(rule, slot.since, now, skipped)
        told = self.skip_refused.get(user.id)
        if why == "error.too_many_skips" and (told is None or now - told >= previewing.HOUR):
            log.warning("preview.skips_refused", operator=user.id, skips=len(skipped))
            await audit.record(  # the first refusal of an hour, in the audit log
                self.pool, action="preview.skips_refused", user_id=user.id, department_id=user.department_id,
                object_type="campaign", object_id=slot.campaign.id if slot.campaign else "",
                detail={"skips_last_hour": len(skipped)}, remote_addr=slot.address,
            )  # fmt: skip
            self.skip_refused[user.id] = now  # (once written: a database away does not hide the next)
        if why is None:
            skipped.append(now)
        return why

    def give_back(self, slot: Slot, target_id: int) -> None:
        """The record on the operator's screen goes back by their pause or logout: theirs again."""
        if slot.campaign is not None:
            self.put_back[(slot.user.id, slot.campaign.id)] = target_id

    def taken_again(self, slot: Slot, campaign_id: int) -> int | None:
        """The record to show first on this operator's Ready, if one was given back."""
        return self.put_back.pop((slot.user.id, campaign_id), None)
