"""Predictive dialling: calls placed for nobody in particular, each person given to a free operator.

Each turn of the dialling loop asks the pacer (campaigns.pacer, pure) how many calls each
predictive campaign should place now. It is shown the floor (operators ready, talking or wrapping
up, and for how long), the campaign's calls in flight (ringing, in answering-machine detection),
what was learnt from the campaign's recent calls, and its abandons over the rolling hour and 24
hours. The calls go to the dialplan's dialer-predictive context, where answering-machine
detection hangs up on machines and reports a person (UserEvent DialerAMD, HUMAN or NOTSURE). The
person is then Redirected at once to the ready operator who has waited longest (dialer-join), or
to the abandon message (dialer-abandon) when nobody is free; should no Redirect come within a
second (the AMI link is down), the dialplan plays the message by itself.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from campaigns import forecast, pacer
from campaigns.agent import Action, AgentState
from campaigns.callflow import STORE_ERRORS
from campaigns.dialing import Dialing, call_variables
from campaigns.floor import Slot
from campaigns.learnt import Learnt
from dialer import logs
from dialer.ami.link import OriginateRequest
from dialer.calls.state import CallState, Milestone, Outcome, Party
from dialer.calls.tracker import CallChange
from dialer.errors import AmiActionError
from dialer.store import attempts, campaigns, targets
from dialer.store.campaigns import CampaignInfo
from dialer.store.targets import Lease

log = logs.get("campaigns.predictive")

_WORKING = (AgentState.READY, AgentState.TALKING, AgentState.WRAP_UP)
_BUSY = {AgentState.TALKING: forecast.Busy.TALKING, AgentState.WRAP_UP: forecast.Busy.WRAP_UP}


@dataclass
class InFlight:
    """A predictive call, from its Originate to its end (the operator it went to: Floor.by_attempt)."""

    attempt_id: int
    campaign: CampaignInfo
    lease: Lease
    since: float  # monotonic: when the current phase began
    phase: forecast.Phase = forecast.Phase.RINGING
    settled: bool = False  # no operator will be wanted: a machine, or the abandon message
    unwritten: bool = False  # given to an operator, not yet written to the attempt


def _takes_callers(slot: Slot, department_id: str) -> bool:
    """An operator a department's callers are given to now or when free (as `Inbound._free`):
    ready with the phone up, talking or wrapping up."""
    return (
        slot.user.department_id == department_id
        and bool(slot.user.extension)
        and slot.state in _WORKING
        and (slot.state is not AgentState.READY or slot.phone_ready)
    )


class Predictive:
    def __init__(self, dialing: Dialing, callers_waiting: Callable[[str], int]) -> None:
        """Places its calls through `dialing` (its pool, link, floor, call flow and tracker);
        `callers_waiting`: how many residents calling in wait for an operator of a department."""
        self.dialing = dialing
        self.callers_waiting = callers_waiting
        self.pool, self.link, self.settings, self.metrics = (
            dialing.pool,
            dialing.link,
            dialing.settings,
            dialing.metrics,
        )
        self.floor, self.flow, self.tracker, self.owner = (
            dialing.floor,
            dialing.flow,
            dialing.tracker,
            dialing.owner,
        )
        self.calls: dict[int, InFlight] = {}
        self.clock: Callable[[], float] = asyncio.get_running_loop().time  # the engine's clock
        self.learnt = Learnt(self.pool, self.metrics, lambda: self.clock())

    def held(self) -> list[int]:
        """Households leased for calls in flight (their leases are renewed)."""
        return [c.lease.target_id for c in self.calls.values() if self._given_to(c) is None]

    def _given_to(self, c: InFlight) -> int | None:
        """The operator a call was given to (None: nobody yet)."""
        return self.floor.by_attempt.get(c.attempt_id)

    # ---- the pacer's turn --------------------------------------------------------------------
    async def tick(self) -> None:
        """Place what the pacer decides, for every predictive campaign someone is working on."""
        if not self.link.up:
            return
        working: dict[int, list[Slot]] = {}
        for slot in self.floor.slots.values():
            c = slot.campaign
            if c is not None and c.dial_mode == "predictive" and slot.state in _WORKING:
                working.setdefault(c.id, []).append(slot)
        waiting = self._waiting_shares(working)
        paced: set[int] = set()
        for campaign_id, slots in working.items():
            try:
                if await self._pace(campaign_id, slots, waiting.get(campaign_id, 0)):
                    paced.add(campaign_id)
            except STORE_ERRORS as exc:  # no calls this turn; the next turn tries again
                log.warning("pacer.store_failed", campaign=campaign_id, error=type(exc).__name__)
                await self.dialing.flow.failed(exc, "pacer")
                paced.add(campaign_id)
        for campaign_id in self.learnt.gauged - paced:
            try:
                await self.learnt.no_longer_paced(campaign_id)
            except STORE_ERRORS as exc:
                log.warning("pacer.store_failed", campaign=campaign_id, error=type(exc).__name__)

    async def _pace(self, campaign_id: int, slots: list[Slot], waiting: int) -> bool:
        """The pacer's decision for one campaign, placed; False when it was not asked for one."""
        ready = [s for s in slots if s.state is AgentState.READY]
        assert slots[0].campaign is not None
        fresh = await campaigns.get(self.pool, campaign_id, slots[0].campaign.department_id)
        if fresh is None or fresh.status != "active":
            for s in ready:
                await self.floor.tell(s, "notice.campaign_stopped")
            return False
        for s in slots:  # a supervisor's change applies now (a new mode is served by the next turn)
            moved, s.campaign = s.campaign is not None and s.campaign.dial_mode != fresh.dial_mode, fresh
            if moved:  # the page's list says the mode
                await self.floor.publish(s)
        if fresh.dial_mode != "predictive":
            return False
        for s in [s for s in ready if not fresh.open_to(s.user.id)]:  # taken off the campaign
            async with s.lock:
                await self.dialing.taken_off(s)
        slots = [s for s in slots if fresh.open_to(s.user.id)]
        ready = [s for s in ready if fresh.open_to(s.user.id)]
        if not fresh.caller_id:  # active from before the console required one: never 非通知
            for s in ready:
                await self.floor.tell(s, "notice.no_caller_id")
            return False
        if not self.dialing.may_call_residents(fresh):
            for s in ready:
                await self.floor.tell(s, "notice.outside_hours")
            return False
        hour, day = await self.learnt.windows(campaign_id)
        snapshot = pacer.Snapshot(
            operators=[_operator(s) for s in slots if _counted(s)],
            calls=self._calls(campaign_id),
            hour=hour,
            day=day,
            waiting=waiting,
        )
        decision = pacer.decide(snapshot, await self.learnt.model(campaign_id), _settings(fresh))
        label = str(campaign_id)
        self.metrics.pacer_threshold.labels(label).set(decision.threshold)
        self.metrics.pacer_decisions.labels(label, decision.mode.value, decision.reason).inc()
        placed = 0
        while placed < decision.place:
            if not await self._place(fresh, ready):
                break
            placed += 1
        if placed:
            for s in ready:
                if not s.pause_after_call:  # (their notice says the pause waits)
                    await self.floor.tell(s, None)
        return True

    def _waiting_shares(self, working: dict[int, list[Slot]]) -> dict[int, int]:
        """Each predictive campaign's share of its department's residents calling in who wait:
        they are given a ready operator of the department with a phone, whichever campaign that
        operator works on, but not one a predictive campaign's calls in flight count on
        (campaigns.inbound `_take_operator`), so the department's callers are split once across
        its campaigns and its other operators (pacer.share), an estimate of who frees first."""
        by_department: dict[str, list[int]] = {}
        for campaign_id, slots in working.items():
            assert slots[0].campaign is not None
            by_department.setdefault(slots[0].campaign.department_id, []).append(campaign_id)
        shares: dict[int, int] = {}
        for department_id, ids in by_department.items():
            waiting = self.callers_waiting(department_id)
            if not waiting:
                continue
            groups = [[_operator(s) for s in working[i] if _takes_callers(s, department_id)] for i in ids]
            mine = {id(s) for i in ids for s in working[i]}
            others = [
                _operator(s)
                for s in self.floor.slots.values()
                if id(s) not in mine and _takes_callers(s, department_id)
            ]
            split = pacer.share(waiting, [*groups, others])
            shares.update(zip(ids, split[:-1], strict=True))
        return shares

    def counted_on(self, campaign_id: int) -> int:
        """The campaign's ready operators its calls in flight count on: a person who answers one is
        given to one of them at once (a resident calling in waits for another, or for the next
        operator freed, rather than leave a person who answers with nobody: an abandoned call)."""
        return len(self._calls(campaign_id))

    def _calls(self, campaign_id: int) -> list[forecast.Call]:
        now = self.clock()
        return [
            forecast.Call(c.phase, now - c.since)
            for c in self.calls.values()
            if c.campaign.id == campaign_id and self._given_to(c) is None and not c.settled
        ]

    async def _place(self, campaign: CampaignInfo, ready: list[Slot]) -> bool:
        """Lease the next household and call it; False when nothing more can be placed now."""
        if self.dialing.flow.calls_held():  # the PBX fails every call now: not the next household
            for s in ready:
                await self.floor.tell(s, "notice.pbx_failing")
            return False
        lease = await targets.lease_next(self.pool, campaign.id, self.owner, self.settings.lease_s)
        if lease is None:
            if not any(c.campaign.id == campaign.id for c in self.calls.values()):
                for s in ready:
                    await self.floor.tell(s, "notice.no_targets")
            return False
        got = await self.dialing.new_attempt(lease, operator_id=None, dial_mode="predictive")
        if not isinstance(got, attempts.NewAttempt):
            return got != "not_stored"  # the next household, unless the database is failing
        assert lease.number is not None
        self.calls[got.id] = InFlight(got.id, campaign, lease, since=self.clock())
        self.floor.campaign_of[got.id] = campaign.id
        self.tracker.track_call(got.id, got.channel_id)
        if not self.dialing.may_call_residents(campaign) or not self.link.up:
            await self.tracker.end_with(got.id, Outcome.CANCELLED, Party.SYSTEM)
            return False
        log.info("engine.originate", attempt=got.id, campaign=campaign.id, operator=None)
        await self.dialing.send(
            got.id, campaign, self._request(campaign, lease.number, got), under_lock=False
        )
        return True

    def _request(self, campaign: CampaignInfo, number: str, attempt: attempts.NewAttempt) -> OriginateRequest:
        plan = self.settings.dialplan
        return OriginateRequest(
            channel=plan.trunk_template.format(number=number),
            context=plan.predictive_context,
            exten="s",
            channel_id=attempt.channel_id,
            caller_id=campaign.caller_id,
            timeout_ms=plan.ring_timeout_s * 1000,
            variables=call_variables(campaign, attempt.id),
        )

    # ---- a call's progress --------------------------------------------------------------------
    async def on_change(self, change: CallChange) -> None:
        """Before CallFlow stores the change: a person is given to an operator at once."""
        c = self.calls.get(change.attempt_id)
        if c is None:
            return
        received = self.clock()
        for m in change.milestones:
            if m is Milestone.ANSWERED:
                c.phase, c.since = forecast.Phase.DETECTING, received
            elif m is Milestone.AMD and self._given_to(c) is None and c.phase is not forecast.Phase.WAITING:
                if change.state.amd_status == "MACHINE":
                    c.settled = True  # the dialplan hangs up; never an operator, never abandoned
                else:
                    c.phase, c.since = forecast.Phase.WAITING, received
                    await self._give(c, change.state, received)
            elif m is Milestone.ABANDONED:
                c.settled = True

    async def after(self, change: CallChange) -> None:
        """After CallFlow stored the change: the operator it went to (after the verdict, on the
        timeline); an ended call frees its line, and an abandon counts."""
        c = self.calls.get(change.attempt_id)
        if c is None:
            return
        operator = self._given_to(c)
        if c.unwritten and operator is not None:
            c.unwritten = False
            write = partial(attempts.assign_operator, self.pool, c.attempt_id, operator)
            await self.flow.store(write, "assign", c.attempt_id)
        if Milestone.ENDED not in change.milestones:
            return
        del self.calls[c.attempt_id]
        if change.state.abandoned:
            self.learnt.forget_windows(c.campaign.id)  # read again, with this one, by the next turn
        self.floor.wake.set()  # a line is free: the pacer may place another

    async def _give(self, c: InFlight, state: CallState, received: float) -> None:
        """A person is on the line: to the longest-waiting ready operator, or to the abandon message."""
        slot = await self._take_operator(c)
        plan = self.settings.dialplan
        where = (plan.join_context, slot.user.extension or "") if slot else (plan.abandon_context, "s")
        try:
            sent = await self.link.redirect(state.channel or state.channel_id, *where)
        except AmiActionError as exc:
            # The dialplan plays the abandon message by itself 0.5 s after the verdict: the operator is free.
            log.warning("predictive.redirect_failed", attempt=c.attempt_id, error=exc.message)
            c.settled = True
            if slot is not None:
                await self._return_operator(slot, c)
            return
        self.metrics.connect_delay.observe(self.clock() - received)
        if slot is None:
            c.settled = True
            log.info("predictive.abandon", attempt=c.attempt_id, campaign=c.campaign.id, sent=sent)
            return
        log.info("predictive.connect", attempt=c.attempt_id, operator=slot.user.id, sent=sent)
        c.unwritten = True
        if not sent:
            return  # gone already (hung up): its Hangup ends the call and frees the operator
        async with slot.lock:
            if slot.attempt_id == c.attempt_id:
                await self.flow.pop_record(slot, c.lease, reason="screen_pop", attempt_id=c.attempt_id)
                self.metrics.screen_pop.observe(self.clock() - received)

    def held_operators(self, campaign_id: int) -> set[int]:
        """The ready operators the campaign's calls in flight would be given to, were they all
        answered now (as `_take_operator` gives them): a campaign switched away from predictive
        keeps them waiting for those calls (Dialing.serve)."""
        waiting = [
            c for c in self.calls.values()
            if c.campaign.id == campaign_id and self._given_to(c) is None and not c.settled
        ]  # fmt: skip
        if not waiting:  # the usual case, asked for every ready operator at every turn: no floor walk
            return set()
        free = [s for s in self.floor.slots.values() if _free(s, campaign_id)]
        held: set[int] = set()
        for c in waiting:
            left = [s for s in free if s.user.id not in held]
            if left:
                held.add(min(left, key=partial(_first, c)).user.id)
        return held

    async def _take_operator(self, c: InFlight) -> Slot | None:
        for slot in sorted(
            (s for s in self.floor.slots.values() if _free(s, c.campaign.id)), key=partial(_first, c)
        ):
            async with slot.lock:
                if not _free(slot, c.campaign.id):  # taken or paused while we waited for the lock
                    continue
                slot.lease, slot.attempt_id, slot.call_phase = c.lease, c.attempt_id, "answered"
                self.floor.by_attempt[c.attempt_id] = slot.user.id
                await self.floor.move(slot, Action.CONNECT)
                return slot
        return None

    async def _return_operator(self, slot: Slot, c: InFlight) -> None:
        async with slot.lock:
            if slot.attempt_id != c.attempt_id:
                return
            self.floor.by_attempt.pop(c.attempt_id, None)
            await self.flow.back_to_work(slot)


def _free(s: Slot, campaign_id: int) -> bool:
    """Ready for a person one of the campaign's calls brings. One a supervisor has just taken off
    the campaign still is, for the calls already ringing that counted on them (the pacer places
    no new one for them): else a person who answers one would find nobody (an abandoned call)."""
    return (
        s.state is AgentState.READY
        and s.phone_ready
        and s.attempt_id is None
        and s.campaign is not None
        and s.campaign.id == campaign_id
    )


def _counted(s: Slot) -> bool:
    """An operator the pacer may place new calls for: not a ready one without a phone, nor one
    who asked for a pause (kept ready only for the calls already counting on them)."""
    if s.state is AgentState.READY:
        return s.phone_ready and not s.pause_after_call
    return True


def _first(c: InFlight, s: Slot) -> tuple[bool, bool, datetime]:
    """Who gets the person: the operator a call-back or promise follow-up is for, when free; else
    who waited longest; one who asked for a pause, or was taken off the campaign, only when nobody
    else is free."""
    leaving = s.pause_after_call or (s.campaign is not None and not s.campaign.open_to(s.user.id))
    return (leaving, s.user.id != c.lease.preferred_operator, s.since)


def _operator(slot: Slot) -> forecast.Operator:
    busy = _BUSY.get(slot.state)
    if busy is None:
        return forecast.Operator()
    return forecast.Operator(busy, (datetime.now(UTC) - slot.since).total_seconds())


def _settings(campaign: CampaignInfo) -> pacer.Settings:
    try:
        return pacer.Settings.parse(campaign.pacing)
    except pacer.PacerError as exc:  # written around `dialer campaign set`: never risk more than asked
        log.error("pacer.bad_settings", campaign=campaign.id, key=exc.key)
        return pacer.Settings(target_abandon=0.0)
