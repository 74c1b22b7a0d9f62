"""What the engine does when calls and operator sessions change: store, push, move the operator.

Receives the tracker's changes (already typed and interpreted), writes each milestone to the
attempt's timeline, pushes the operator's page, and settles the household when the call ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import asyncpg

from campaigns import retry
from campaigns.agent import Action, AgentState
from campaigns.floor import Floor, Slot
from dialer import logs
from dialer.calls.session import SessionPhase
from dialer.calls.state import CallState, Milestone, Outcome, Party, Phase
from dialer.calls.tracker import CallChange, SessionChange
from dialer.config import Settings
from dialer.metrics import Metrics
from dialer.store import attempts, records, targets
from dialer.store.targets import Lease

if TYPE_CHECKING:
    from dialer.calls.tracker import CallTracker

log = logs.get("campaigns.callflow")

# Outcomes after which the operator records what was said.
NEEDS_DISPOSITION = frozenset({Outcome.CONNECTED})


class CallFlow:
    skip_delay = timedelta(minutes=30)
    no_delay = timedelta(0)

    def __init__(
        self, pool: asyncpg.Pool, floor: Floor, settings: Settings, metrics: Metrics, owner: str
    ) -> None:
        self.pool, self.floor, self.settings, self.metrics, self.owner = pool, floor, settings, metrics, owner
        self.tracker: CallTracker | None = None
        self.cancel: Callable[[str], Awaitable[None]] = _no_cancel  # hangs a call up (set by the engine)
        self._started: dict[int, float] = {}  # attempt -> monotonic time tracked (for the watchdog)

    async def on_call(self, change: CallChange) -> None:
        attempt_id, state = change.attempt_id, change.state
        received = time.monotonic()
        self._started.setdefault(attempt_id, received)
        user_id = self.floor.by_attempt.get(attempt_id)
        slot = self.floor.slots.get(user_id) if user_id is not None else None
        campaign = str(slot.campaign.id) if slot and slot.campaign else ""
        for m in change.milestones:
            if m is Milestone.ENDED:
                await self._ended(attempt_id, state, slot, campaign)
                continue
            detail = {"amd": state.amd_status} if m is Milestone.AMD else None
            await attempts.milestone(self.pool, attempt_id, m.value, detail)
            if m is Milestone.ANSWERED:
                self.metrics.answered.labels(campaign).inc()
            if m is Milestone.ABANDONED:
                self.metrics.abandoned.labels(campaign).inc()
            if slot is None or slot.attempt_id != attempt_id:
                continue
            slot.call_phase = m.value if m is not Milestone.AMD else slot.call_phase
            if m is Milestone.ANSWERED and slot.state is AgentState.DIALING:
                await self.floor.move(slot, Action.ANSWERED)
                if slot.campaign and slot.campaign.dial_mode != "preview" and slot.lease is not None:
                    await self.pop_record(slot, slot.lease, reason="screen_pop", attempt_id=attempt_id)
                    self.metrics.screen_pop.observe(time.monotonic() - received)
            else:
                await self.floor.publish(slot)

    async def _ended(self, attempt_id: int, state: CallState, slot: Slot | None, campaign: str) -> None:
        outcome = state.outcome or Outcome.FAILED
        self._started.pop(attempt_id, None)
        await attempts.finish(
            self.pool,
            attempt_id,
            outcome=outcome.value,
            hangup_by=state.hangup_by.value if state.hangup_by else None,
            cause=state.cause,
            amd_status=state.amd_status,
        )
        self.metrics.outcomes.labels(campaign, outcome.value).inc()
        log.info(
            "call.ended",
            attempt=attempt_id,
            outcome=outcome.value,
            hangup_by=state.hangup_by.value if state.hangup_by else None,
            cause=state.cause,
        )
        user_id = self.floor.by_attempt.pop(attempt_id, None)
        lease = slot.lease if slot is not None and slot.attempt_id == attempt_id else None
        if outcome not in NEEDS_DISPOSITION:
            if lease is not None:
                nxt = retry.after_unreached(outcome, lease.attempts + 1, datetime.now(UTC))
                await targets.release(
                    self.pool,
                    lease.target_id,
                    self.owner,
                    done=nxt.done,
                    next_at=nxt.at,
                    outcome=outcome.value,
                )
            elif user_id is None:
                await self._settle_orphan(attempt_id, outcome)
        if slot is None or slot.attempt_id != attempt_id:
            return
        slot.call_phase = "ended"
        await self.floor.notifier.to_user(
            slot.user.id,
            {
                "type": "call_ended",
                "attempt_id": attempt_id,
                "outcome": outcome.value,
                "hangup_by": state.hangup_by.value if state.hangup_by else None,
                "needs_disposition": outcome in NEEDS_DISPOSITION,
            },
        )
        if outcome in NEEDS_DISPOSITION:
            if slot.state is AgentState.TALKING:
                await self.floor.move(slot, Action.ENDED)
            if slot.disposed:
                await self.finish_wrap_up(slot)
            return  # in wrap-up (also when the phone dropped mid-call) until the disposition comes
        slot.attempt_id, slot.lease, slot.call_phase, slot.disposed = None, None, None, False
        if slot.state in (AgentState.DIALING, AgentState.TALKING):
            await self.floor.move(slot, Action.UNANSWERED)
            if slot.pause_after_call:
                slot.pause_after_call = False
                await self.floor.move(slot, Action.PAUSE)

    async def finish_wrap_up(self, slot: Slot) -> None:
        """The disposition is stored: the operator takes the next call, or pauses if asked."""
        pause = slot.pause_after_call
        slot.attempt_id, slot.lease, slot.call_phase = None, None, None
        slot.pause_after_call = slot.disposed = False
        if slot.session_channel_id is None:  # the phone dropped during the call: no calls without it
            await self.floor.move(slot, Action.LOGOUT, notice="notice.phone_disconnected")
            return
        await self.floor.move(slot, Action.DISPOSED_PAUSE if pause else Action.DISPOSED)

    async def _settle_orphan(self, attempt_id: int, outcome: Outcome) -> None:
        """A call whose operator left the floor: give its household back under the retry rule."""
        row = await self.pool.fetchrow(
            """select t.id, t.attempts from attempt a join campaign_target t on t.id = a.target_id
               where a.id = $1""",
            attempt_id,
        )
        if row is not None:
            nxt = retry.after_unreached(outcome, row["attempts"], datetime.now(UTC))
            await targets.release(
                self.pool, row["id"], None, done=nxt.done, next_at=nxt.at, outcome=outcome.value
            )

    async def on_session(self, change: SessionChange) -> None:
        slot = self.floor.slots.get(change.user_id)
        if slot is None or slot.session_channel_id != change.state.channel_id:
            return
        log.info("session.phase", operator=change.user_id, phase=change.entered.value)
        if change.entered is SessionPhase.JOINED and slot.state is AgentState.CONNECTING:
            await self.floor.move(slot, Action.SESSION_UP)
        elif change.entered is SessionPhase.ENDED:
            await self._phone_lost(slot)

    async def _phone_lost(self, slot: Slot) -> None:
        """The operator's phone session ended. In a conversation: the resident leaves with the
        operator (end_marked) and the disposition is still wanted. Still ringing: the call is
        cancelled now, rather than answered into an empty bridge (an abandoned call)."""
        slot.session_channel_id = None
        call = self.tracker.calls.get(slot.attempt_id) if self.tracker and slot.attempt_id else None
        if slot.state is AgentState.PREVIEW and slot.lease is not None:
            await targets.release(self.pool, slot.lease.target_id, self.owner, done=False)
            slot.lease = None
        if call is not None and call.phase is Phase.CONNECTED:
            assert self.tracker is not None and slot.attempt_id is not None
            self.tracker.request_hangup(slot.attempt_id, Party.OPERATOR)
            await self.floor.move(slot, Action.SESSION_DOWN, notice="notice.phone_disconnected")
            return
        if call is not None and call.phase in (Phase.ORIGINATING, Phase.RINGING):
            assert self.tracker is not None and slot.attempt_id is not None
            self.tracker.request_hangup(slot.attempt_id, Party.SYSTEM)
            await self.cancel(call.channel_id)
        await self.floor.move(slot, Action.LOGOUT, notice="notice.phone_disconnected")

    async def pop_record(
        self, slot: Slot, lease: Lease, *, reason: str, attempt_id: int | None = None
    ) -> None:
        """Read the household's minimal record (audit-logged) and push it to the operator's page."""
        record = await records.read_for_operator(
            self.pool,
            household_id=lease.household_id,
            department_id=lease.department_id,
            phone_id=lease.phone_id,
            user_id=slot.user.id,
            reason=reason,
            attempt_id=attempt_id,
        )
        if record is not None:
            await self.floor.notifier.to_user(
                slot.user.id,
                {"type": "record", "reason": reason, "attempt_id": attempt_id, "record": record.as_json()},
            )

    async def close_stale_calls(self) -> None:
        """Close calls that never got past ringing and have gone silent (events lost with a link)."""
        if self.tracker is None:
            return
        limit = self.settings.dialplan.ring_timeout_s + 60
        now = time.monotonic()
        for attempt_id, state in list(self.tracker.calls.items()):
            started = self._started.setdefault(attempt_id, now)
            if state.phase in (Phase.ORIGINATING, Phase.RINGING) and now - started > limit:
                log.warning("call.stale", attempt=attempt_id, phase=state.phase.value)
                await self.tracker.end_lost(attempt_id)


async def _no_cancel(channel_id: str) -> None:
    raise RuntimeError("CallFlow.cancel was not wired to the AMI link")
