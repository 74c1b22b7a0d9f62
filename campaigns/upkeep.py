"""A dialer's upkeep, every few seconds whether or not it is calling: calls and operators stuck
past their deadlines are closed and released, held call records written, leases renewed, a
heartbeat recorded, operators whose login was switched off paused, and what dead dialers held
given back (the sweep).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from campaigns.agent import AgentState
from campaigns.callflow import STORE_ERRORS, CallFlow
from campaigns.floor import Floor, Slot
from campaigns.predictive import Predictive
from dialer import logs
from dialer.config import Settings
from dialer.errors import AmiActionError
from dialer.store import dispositions, inbound, processes, targets

log = logs.get("campaigns.engine")  # as before the split: operators' log queries stay the same

RENEW_EVERY_S = 60.0
SWEEP_EVERY_S = 30.0


class Upkeep:
    def __init__(
        self,
        flow: CallFlow,
        floor: Floor,
        predictive: Predictive,
        settings: Settings,
        owner: str,
        after_sweep: Callable[[], Awaitable[None]],
        pause: Callable[[Slot, str | None], Awaitable[None]],
    ) -> None:
        self.flow, self.floor, self.predictive, self.settings, self.owner = (
            flow,
            floor,
            predictive,
            settings,
            owner,
        )
        self.pool, self.link, self.db = flow.pool, flow.link, flow.db
        self.after_sweep = after_sweep  # operators whose phone was held elsewhere: taken over now?
        self.pause = pause  # (Dialing.pause: now, or after the call they are on)

    async def sweep(self) -> None:
        """Give back what dead dialers held; a call of theirs still up at our Asterisk keeps its
        household until it ends. A disposition already stored for a call closed here applies.

        What a dead dialer on this machine held on disk (its calls' ends during an outage) is
        written first: closed here unseen, they would all be `lost` (an abandoned call would be
        missing from the 3 % figure)."""
        if self.flow.adopt_orphans():
            await self.flow.flush_pending()
        # After an outage (or this dialer's start) every dialer's last beat may be old: none is
        # taken for dead by it until they have had the time to beat again (DatabaseWatch).
        dead_after = self.db.dead_after(self.settings.dead_after_s)
        live: set[str] | None = None
        if self.link.up:
            try:
                live = await self.link.live_channels()
            except AmiActionError as exc:
                log.warning("engine.channel_list_failed", error=exc.message)
        swept = await targets.sweep_expired(
            self.pool, owner=self.owner, dead_after_s=dead_after,
            link=self.link.name, live_channels=live,
        )  # fmt: skip
        for attempt_id in swept.closed:
            await dispositions.settle(self.pool, attempt_id)
        if live is not None:
            closed = await inbound.close_calls_of_dead(
                self.pool, owner=self.owner, dead_after_s=dead_after,
                link=self.link.name, live_channels=live,
            )  # fmt: skip
            if closed:
                log.info("engine.inbound_calls_closed", count=len(closed))
        if swept.returned:
            log.info("engine.leases_returned", count=swept.returned, calls_closed=len(swept.closed))
        for owner in await processes.forget_dead(self.pool, dead_after):
            log.warning("engine.dialer_gone", owner=owner)

    async def switched_off(self) -> None:
        """Operators whose login was switched off (`dialer users disable`, a leaver) take no more
        calls from now, not from their page's next session check (up to 30 s): a predictive call
        would be put through to them meanwhile (privacy QA)."""
        on_floor = [
            s.user.id
            for s in self.floor.slots.values()
            if s.state is not AgentState.PAUSED and s.notice != "notice.login_disabled"  # (told once)
        ]
        if not on_floor:
            return
        off = await self.pool.fetch("select id from app_user where id = any($1) and not active", on_floor)
        for row in off:
            if (slot := self.floor.slots.get(row["id"])) is not None:
                log.warning("engine.login_switched_off", operator=row["id"])
                await self.pause(slot, "notice.login_disabled")

    async def loop(self) -> None:
        last_renew = last_sweep = last_beat = 0.0
        beat_every = self.settings.heartbeat_s
        sweep_every = min(SWEEP_EVERY_S, self.settings.dead_after_s / 2)
        while True:
            await asyncio.sleep(min(5.0, beat_every))
            now = asyncio.get_running_loop().time()  # the clock asyncio.sleep follows
            try:
                # Calls and operators are looked after whether or not the database is there.
                await self.flow.close_stale_calls()
                await self.flow.release_stuck_operators()
                if not self.db.up:
                    continue  # the dial loop looks for it; leases are renewed once it is back
                await self.flow.flush_pending()
                if now - last_renew >= RENEW_EVERY_S:
                    held = [s.lease.target_id for s in self.floor.slots.values() if s.lease is not None]
                    held += self.predictive.held()
                    await targets.renew(self.pool, self.owner, held, self.settings.lease_s)
                    last_renew = now
                if now - last_beat >= beat_every:
                    await processes.beat(self.pool, self.owner, self.link.name, self.settings.dead_after_s)
                    await self.switched_off()
                    last_beat = now
                if now - last_sweep >= sweep_every:
                    await self.sweep()
                    await self.after_sweep()
                    last_sweep = now
            except STORE_ERRORS as exc:
                log.warning("engine.upkeep_failed", error=type(exc).__name__, detail=str(exc)[:200])
                await self.flow.failed(exc, "upkeep")
