"""Placing calls for operators: their phone sessions, the next household, the Originate.

Every method here is called with the operator's slot lock held, so a call is never placed for
an operator whose state changed meanwhile; the last checks happen right before the Originate.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import partial

import asyncpg

from campaigns import hours, windows
from campaigns.agent import Action, AgentState
from campaigns.callflow import STORE_ERRORS, CallFlow
from campaigns.floor import Floor, Slot
from campaigns.previews import Previews
from dialer import logs
from dialer.ami.link import AmiLink, OriginateRequest
from dialer.calls.state import Outcome, Party
from dialer.calls.tracker import CallTracker
from dialer.config import Settings
from dialer.errors import AmiActionError, DialerError
from dialer.metrics import Metrics
from dialer.store import attempts, campaigns, processes, targets
from dialer.store.campaigns import CampaignInfo
from dialer.store.targets import Lease

log = logs.get("campaigns.dialing")
PAUSE_PENDING = "notice.pause_pending"  # 休憩 asked for, waiting for the calls that count on them

NOT_STORED_DELAY = timedelta(minutes=1)
_MARKED = re.compile(r"([0-9a-f]{8})-[0-9a-f]+")


class EngineError(DialerError):
    """A command the operator cannot do now; `key` is a message key for the page."""

    error_id = "engine_refused"

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def call_variables(campaign: CampaignInfo, attempt_id: int) -> dict[str, str]:
    """What the dialplan is told about a resident's call (asterisk-conf/extensions.conf)."""
    variables = {
        "DIALER_ATTEMPT": str(attempt_id),
        "DIALER_CAMPAIGN": str(campaign.id),
        "DIALER_AMD": "off" if campaign.dial_mode == "preview" else "on",
    }
    if campaign.machine_message:
        variables["DIALER_MACHINE_PROMPT"] = campaign.machine_message
    return variables


def session_id(prefix: str, user_id: int, owner: str) -> str:
    """An operator session's ChannelId: `<prefix>-s<user>-<mark of the dialer>-<ms, hex>`."""
    return f"{prefix}-s{user_id}-{processes.mark(owner)}-{int(time.time() * 1000):x}"


def session_mark(channel_id: str, prefix: str, user_id: int) -> str | None:
    """The mark of the dialer that opened a session (None: not this operator's session, or one
    opened before sessions were marked, `<prefix>-s<user>-<ms, hex>`)."""
    head = f"{prefix}-s{user_id}-"
    found = _MARKED.fullmatch(channel_id[len(head) :]) if channel_id.startswith(head) else None
    return found.group(1) if found else None


class Dialing:
    def __init__(
        self,
        pool: asyncpg.Pool,
        link: AmiLink,
        settings: Settings,
        metrics: Metrics,
        floor: Floor,
        flow: CallFlow,
        tracker: CallTracker,
        owner: str,
    ) -> None:
        self.pool, self.link, self.settings, self.metrics = pool, link, settings, metrics
        self.floor, self.flow, self.tracker, self.owner = floor, flow, tracker, owner
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        # the ready operators a campaign's predictive calls in flight count on (Predictive)
        self.held_operators: Callable[[int], set[int]] = lambda campaign_id: set()
        self._endings: set[asyncio.Task[None]] = set()  # calls never placed, ended after (end_unplaced)
        self.previews = Previews(pool, settings)  # records passed over: skips, and those a pause gave back

    def may_call_residents(self, campaign: CampaignInfo | None) -> bool:
        """Inside the campaign's calling window (and never 21:00–8:00), checked right before a call.

        The simulated PBX's callees are not residents: the demo and training run at any hour, except
        in a campaign given a window of its own (by a trainee, to see one work), which is kept.
        """
        now = self.clock()
        if self.settings.simulated_callees and (campaign is None or not campaign.calling_window):
            return True
        return (
            campaign is not None
            and hours.callable_now(now)
            and windows.of_campaign(campaign.calling_window).is_open(now)
        )

    async def current(self, slot: Slot, tell: bool = True) -> CampaignInfo | None:
        """The operator's campaign read again before a call (a supervisor's change to its status,
        mode, window, operators or caller ID applies now), or None when it may not call for them
        now: the reason is then the notice on their page (`tell`: shown now; else only set, for the
        state change that follows to show)."""
        assert slot.campaign is not None
        fresh = await campaigns.get(self.pool, slot.campaign.id, slot.campaign.department_id)
        if fresh is None or fresh.status != "active":
            notice = "notice.campaign_stopped"
        elif not fresh.open_to(slot.user.id):  # taken off the campaign by a supervisor
            notice = "notice.not_assigned"
        elif not fresh.caller_id:  # active from before the console required one: never 非通知
            notice = "notice.no_caller_id"
        else:
            return fresh
        if tell:
            await self.floor.tell(slot, notice)
        else:
            slot.notice = notice
        return None

    async def taken_off(self, slot: Slot) -> None:
        """Taken off their campaign by a supervisor while ready (caller holds the slot's lock):
        paused, to choose another campaign, and no longer counted as waiting for calls; told only
        while a predictive call counts on them (paused once none does: the next turn)."""
        if slot.state is AgentState.READY and not self.counted_on(slot):
            await self.floor.move(slot, Action.PAUSE, notice="notice.not_assigned")
        else:
            await self.floor.tell(slot, "notice.not_assigned")

    def counted_on(self, slot: Slot) -> bool:
        """A ready operator a predictive call in flight would be given to, were it answered now:
        pausing them at once would leave that person with nobody (an abandoned call)."""
        return (
            slot.state is AgentState.READY
            and slot.campaign is not None
            and slot.user.id in self.held_operators(slot.campaign.id)
        )

    async def pause(self, slot: Slot, notice: str | None) -> None:
        """Pause now, or after the call they are on; a predictive call ringing now is theirs if
        answered: their own 休憩 (notice None) waits for it, settle_pause; a page closed does not
        (a person put through to an empty desk is worse than the message)."""
        async with slot.lock:
            if slot.state in (AgentState.DIALING, AgentState.TALKING, AgentState.WRAP_UP):
                slot.pause_after_call, slot.notice, slot.pause_reason = True, notice, notice
                await self.floor.publish(slot)
                return
            if slot.state is AgentState.PREVIEW:
                await self.release_preview(slot, again=True)
            if notice is None and self.counted_on(slot):
                slot.pause_after_call, slot.notice = True, PAUSE_PENDING
                await self.floor.publish(slot)
                return
            if slot.state in (AgentState.READY, AgentState.PREVIEW, AgentState.CONNECTING):
                slot.pause_after_call = False  # (a 休憩 that was waiting: taken now)
                await self.floor.move(slot, Action.PAUSE, notice=notice)

    async def settle_pause(self, slot: Slot) -> None:
        """A pause asked for while predictive calls counted on a ready operator: taken once none
        does (every turn of the dialling loop, whatever the campaign's mode now)."""
        async with slot.lock:
            if slot.state is AgentState.READY and slot.pause_after_call and not self.counted_on(slot):
                slot.pause_after_call = False
                notice = None if slot.notice == PAUSE_PENDING else slot.notice
                await self.floor.move(slot, Action.PAUSE, notice=notice)

    async def serve(self, slot: Slot) -> None:
        async with slot.lock:
            if slot.state is AgentState.PREVIEW and slot.campaign is not None and slot.attempt_id is None:
                # the record shown stays only while its campaign may still call for them: taken off
                # it (or it stopped), the record goes at once, not at 発信 (QA: kept readable)
                if await self.current(slot, tell=False) is None:  # (shown with the move: one message)
                    notice = slot.notice
                    await self.release_preview(slot)
                    taken_off = notice == "notice.not_assigned"
                    await self.floor.move(slot, Action.PAUSE if taken_off else Action.RELEASE, notice=notice)
                return
            if slot.state is not AgentState.READY or slot.campaign is None or slot.pause_after_call:
                return  # (a pause waiting for calls that count on them: settle_pause)
            fresh = await self.current(slot)
            if fresh is None:
                if slot.notice == "notice.not_assigned":
                    await self.taken_off(slot)
                return
            moved, slot.campaign = fresh.dial_mode != slot.campaign.dial_mode, fresh
            if moved:  # a supervisor changed its mode: the page's list says it
                await self.floor.publish(slot)
            if fresh.dial_mode == "predictive":
                return  # the pacer places this campaign's calls (campaigns.predictive)
            if slot.user.id in self.held_operators(fresh.id):
                # Calls the pacer placed before a supervisor switched the campaign from predictive
                # still ring, each counting on one of its ready operators: those wait for them, or
                # a person who answers would find nobody free (an abandoned call).
                return
            if not self.may_call_residents(slot.campaign):
                await self.floor.tell(slot, "notice.outside_hours")
                return
            if self.flow.calls_held():  # the PBX fails every call now: not the next household
                await self.floor.tell(slot, "notice.pbx_failing")
                return
            lease = await targets.lease_next(
                self.pool, slot.campaign.id, self.owner, self.settings.lease_s, operator_id=slot.user.id,
                first=self.previews.taken_again(slot, slot.campaign.id),
            )  # fmt: skip
            if lease is None:
                await self.floor.tell(slot, "notice.no_targets")
                return
            slot.notice = None
            if slot.campaign.dial_mode == "preview":
                slot.lease = lease
                await self.floor.move(slot, Action.RESERVE)
                await self.flow.pop_record(slot, lease, reason="preview")
            else:
                await self.dial(slot, lease)

    async def dial(self, slot: Slot, lease: Lease) -> None:
        """Place one call for this operator (caller holds the slot's lock)."""
        campaign = slot.campaign
        assert campaign is not None and lease.number is not None and slot.user.extension
        got = await self.new_attempt(lease, operator_id=slot.user.id, dial_mode=campaign.dial_mode)
        if isinstance(got, attempts.NewAttempt):
            await self._originate(slot, lease, got)
            return
        slot.lease = None
        notice = "notice.target_withdrawn" if got == "withdrawn" else None
        if slot.state is AgentState.PREVIEW:
            await self.floor.move(slot, Action.RELEASE, notice=notice)
        elif notice:
            slot.notice = notice
            await self.floor.publish(slot)

    async def new_attempt(
        self, lease: Lease, *, operator_id: int | None, dial_mode: str
    ) -> attempts.NewAttempt | str:
        """Store the attempt before dialling, or say why not: the household is given back for a
        while (its number is in another household's call, or nothing could be stored) or dropped
        (it paid after it was leased: out of every campaign, nothing to give back)."""
        try:
            return await attempts.create(
                self.pool,
                lease,
                operator_id=operator_id,
                dial_mode=dial_mode,
                link=self.link.name,
                channel_prefix=self.settings.dialplan.channel_prefix,
                owner=self.owner,
            )
        except attempts.NumberInCall:  # shared with a household being called right now
            why, delay = "number_in_call", targets.NUMBER_BUSY_DELAY
        except attempts.TargetWithdrawn:
            log.info("engine.target_withdrawn", operator=operator_id, target=lease.target_id)
            return "withdrawn"
        except STORE_ERRORS as exc:  # nothing was stored, nothing is dialled: give the household back
            log.error("engine.attempt_not_stored", operator=operator_id, error=type(exc).__name__)
            await self.flow.failed(exc, "attempt")
            why, delay = "not_stored", NOT_STORED_DELAY
        await self.flow.store(
            partial(targets.release, self.pool, lease.target_id, self.owner, done=False, delay=delay),
            "release",
        )
        return why

    async def _originate(self, slot: Slot, lease: Lease, attempt: attempts.NewAttempt) -> None:
        campaign = slot.campaign
        assert campaign is not None and lease.number is not None
        self.tracker.track_call(attempt.id, attempt.channel_id)
        self.floor.by_attempt[attempt.id] = slot.user.id
        self.floor.campaign_of[attempt.id] = campaign.id
        slot.lease, slot.attempt_id, slot.call_phase = lease, attempt.id, "dialing"
        await self.floor.move(slot, Action.DIAL)
        if not self.may_call_residents(campaign):  # the window closed while we got ready
            self.end_unplaced(attempt.id, Outcome.CANCELLED)
            return
        if not slot.phone_ready or not self.link.up:  # lost while we got ready: never into an empty bridge
            self.end_unplaced(attempt.id, Outcome.CANCELLED)
            return
        log.info("engine.originate", attempt=attempt.id, campaign=campaign.id, operator=slot.user.id)
        await self.send(attempt.id, campaign, self._resident_call(slot, campaign, lease.number, attempt))

    async def send(
        self, attempt_id: int, campaign: CampaignInfo, req: OriginateRequest, *, under_lock: bool = True
    ) -> None:
        """Send a resident's Originate, once; a refusal ends the attempt, a doubt leaves it to its events.
        `under_lock`: the caller holds the operator's slot (not the pacer's calls, for nobody yet)."""
        self.flow.breaker.placed(asyncio.get_running_loop().time())  # after a hold: the one probe
        try:
            await self.link.originate(req)
        except AmiActionError as exc:
            if exc.definite:  # refused, or never sent: there is no call (nor one counted as placed)
                log.warning("engine.originate_refused", attempt=attempt_id, error=exc.message)
                if under_lock:
                    self.end_unplaced(attempt_id, Outcome.FAILED)
                else:  # ended now, so the hold on failing calls counts it before the next is placed
                    await self.tracker.end_with(attempt_id, Outcome.FAILED, Party.SYSTEM)
                return
            # may exist: never re-sent; its own events end it, or the watchdog closes it as lost
            log.warning("engine.originate_unconfirmed", attempt=attempt_id, error=exc.message)
        self.metrics.originated.labels(str(campaign.id)).inc()

    def end_unplaced(self, attempt_id: int, outcome: Outcome) -> None:
        """End a call that was never placed, once the caller has let go of the operator's slot:
        ending it takes that lock (the operator goes back to work), which is not re-entrant, and the
        caller holds it (a refused Originate waited on itself for good, and with it the whole dial
        loop: admin QA)."""
        task = asyncio.create_task(self.tracker.end_with(attempt_id, outcome, Party.SYSTEM))
        self._endings.add(task)
        task.add_done_callback(partial(self._ended, attempt_id))

    def _ended(self, attempt_id: int, task: asyncio.Task[None]) -> None:
        self._endings.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:  # (the watchdog closes it later)
            log.error("engine.end_failed", attempt=attempt_id, error=type(exc).__name__)

    def _resident_call(
        self, slot: Slot, campaign: CampaignInfo, number: str, attempt: attempts.NewAttempt
    ) -> OriginateRequest:
        plan = self.settings.dialplan
        assert slot.user.extension
        return OriginateRequest(
            channel=plan.trunk_template.format(number=number),
            context=plan.connect_context,
            exten=slot.user.extension,
            channel_id=attempt.channel_id,
            caller_id=campaign.caller_id,
            timeout_ms=plan.ring_timeout_s * 1000,
            variables=call_variables(campaign, attempt.id),
        )

    async def dial_preview(self, slot: Slot) -> None:
        """発信 on a preview record (caller holds the slot's lock)."""
        if slot.state is not AgentState.PREVIEW or slot.lease is None or slot.campaign is None:
            raise EngineError("error.nothing_to_dial")
        # read again, as before any call: paused, its window closed or the operator taken off
        # while the record was on their screen, nothing is dialled
        fresh = await self.current(slot)
        if fresh is None:  # the household goes back; the notice on the page says why
            await self.release_preview(slot)
            await self.floor.move(slot, Action.RELEASE, notice=slot.notice)
            return
        # a preview call, whatever the campaign's mode is now
        slot.campaign = replace(fresh, dial_mode=slot.campaign.dial_mode)
        if not self.may_call_residents(slot.campaign):
            raise EngineError("error.outside_hours")
        await self.dial(slot, slot.lease)

    async def skip(self, slot: Slot) -> None:
        """スキップ: the household shown in preview goes back for later, unless the operator skips too
        soon after it was shown or too often (campaigns.previews; caller holds the slot's lock)."""
        if why := await self.previews.skip_refusal(slot):
            raise EngineError(why)
        await self.release_preview(slot, later=True)

    async def release_preview(self, slot: Slot, later: bool = False, again: bool = False) -> None:
        """Give back the household shown in preview, uncalled: for later (skipped), or now. Given
        back by the operator's pause or logout (`again`), it is theirs again on their next Ready
        while nobody has taken it: pausing and coming back is no way round the skip limits
        (campaigns.previewing), a new record each time."""
        if slot.lease is not None and slot.attempt_id is None:
            if again:
                self.previews.give_back(slot, slot.lease.target_id)
            next_at = datetime.now(UTC) + self.flow.skip_delay if later else None
            await targets.release(self.pool, slot.lease.target_id, self.owner, done=False, next_at=next_at)
            slot.lease = None
