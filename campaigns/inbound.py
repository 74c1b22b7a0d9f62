"""Residents calling in who ask for a person: put through to a free operator, record popped.

The inbound line's dialplan (asterisk-conf [dialer-inbound]) asks the FastAGI service who may be
calling (agi/routes.py), runs the menu, and for a caller who wants a person raises
UserEvent DialerInbound (department, household if the number matched exactly one, the caller's
number, how long it will wait), then waits. Callers wait here, oldest first; each turn of the
dialling loop gives them, before any outbound call, to the department's ready operators (who
has waited longest first): the call becomes an 'inbound' attempt, the caller is Redirected into
the operator's bridge (dialer-inbound-join) and the record pops as for an outbound call. A
caller nobody takes before the wait runs out goes on to the desk by the dialplan itself, as do
all callers while the dialer, its AMI link or the database is away.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from campaigns.agent import Action, AgentState
from campaigns.callflow import STORE_ERRORS
from campaigns.dialing import Dialing, EngineError
from campaigns.floor import Slot
from dialer import logs
from dialer.ami import events as ev
from dialer.ami.link import LinkEvent, LinkStatus
from dialer.calls.state import Outcome, Party
from dialer.errors import AmiActionError
from dialer.imports.phones import caller_number
from dialer.jpformat import phone_display
from dialer.store import inbound, records
from dialer.store.db import is_id

log = logs.get("campaigns.inbound")

EVENT = "DialerInbound"
DEFAULT_WAIT_S = 20.0
MARGIN_S = 1.5  # stop offering a caller this long before the dialplan moves them on by itself
MATCHES = ("known", "several", "unknown")  # and "identified": by the number the caller gave


@dataclass
class Caller:
    """A caller waiting for an operator (personal data: the number is never logged)."""

    uniqueid: str
    channel: str
    department_id: str
    household_id: int | None
    match: str  # known | several | unknown
    number: str | None
    deadline: float  # by the engine's clock

    def view(self, attempt_id: int) -> dict[str, Any]:
        return {
            "type": "caller",
            "attempt_id": attempt_id,
            "match": self.match,
            "number": phone_display(self.number) if self.number else "",
        }


def caller_of(event: ev.UserEvent, now: float) -> Caller | None:
    """The waiting caller a DialerInbound event describes; None if it is malformed."""
    f = event.fields
    department = (f.get("Department") or "").strip()
    if not event.uniqueid or not event.channel or not department:
        return None
    household = (f.get("Household") or "").strip()
    match = (f.get("Caller") or "").strip()
    # ASCII digits of an id, or none ('²' passes isdigit(); 20 digits overflow a bigint): a known
    # caller the event names no household for is asked who they are
    household_id = (
        int(household) if household.isascii() and household.isdigit() and len(household) <= 18 else None
    )
    if not is_id(household_id):
        household_id, match = None, "unknown" if match == "known" else match
    try:
        wait = float(f.get("Wait") or DEFAULT_WAIT_S)
    except ValueError:
        wait = DEFAULT_WAIT_S
    return Caller(
        uniqueid=event.uniqueid,
        channel=event.channel,
        department_id=department,
        household_id=household_id if match == "known" else None,
        match=match if match in MATCHES else "unknown",
        number=caller_number(f.get("Number") or ""),
        deadline=now + max(0.0, min(wait, 600.0) - MARGIN_S),
    )


class Inbound:
    def __init__(self, dialing: Dialing) -> None:
        self.dialing = dialing
        self.pool, self.link, self.settings = dialing.pool, dialing.link, dialing.settings
        self.floor, self.flow, self.tracker, self.owner = (
            dialing.floor,
            dialing.flow,
            dialing.tracker,
            dialing.owner,
        )
        self.waiting: dict[str, Caller] = {}  # by Uniqueid, oldest first
        self.callers: dict[int, Caller] = {}  # attempt -> the caller it was (for a page that reconnects)
        self.clock = asyncio.get_running_loop().time
        self.metrics = dialing.metrics
        # a predictive campaign's calls in flight (campaigns.predictive): the ready operators they
        # count on are not given to a caller
        self.counted_on: Callable[[int], int] = lambda campaign_id: 0

    async def on_event(self, event: LinkEvent) -> None:
        """From the AMI link: a caller starts waiting, or hangs up while waiting."""
        if isinstance(event, LinkStatus):
            if not event.up:
                self.waiting.clear()  # the dialplan sends them to the desk after their wait
                self._count()
            return
        if isinstance(event, ev.UserEvent) and event.user_event == EVENT:
            caller = caller_of(event, self.clock())
            if caller is None:
                log.warning("inbound.bad_event")
                return
            self.waiting[caller.uniqueid] = caller
            self._count()
            log.info("inbound.waiting", department=caller.department_id, match=caller.match,
                     household=caller.household_id, uniqueid=caller.uniqueid)  # fmt: skip
            self.floor.wake.set()
        elif isinstance(event, ev.Hangup) and (gone := self.waiting.pop(event.uniqueid, None)) is not None:
            log.info("inbound.hung_up_waiting", uniqueid=event.uniqueid)
            self._count(gone, "hung_up")

    async def serve(self) -> None:
        """Give waiting callers to free operators (called by the dialling loop before it dials)."""
        now = self.clock()
        for caller in list(self.waiting.values()):
            if caller.deadline <= now:
                del self.waiting[caller.uniqueid]
                log.info("inbound.to_desk", department=caller.department_id, uniqueid=caller.uniqueid)
                self._count(caller, "desk")
                continue
            await self._put_through(caller)  # nobody free: the next turn tries again

    def waiting_in(self, department_id: str) -> int:
        """Callers of a department waiting for an operator (the predictive pacer leaves them the
        first operators freed)."""
        now = self.clock()
        return sum(1 for c in self.waiting.values() if c.department_id == department_id and c.deadline > now)

    def _count(self, caller: Caller | None = None, result: str = "") -> None:
        if caller is not None:
            self.metrics.inbound.labels(caller.department_id, result).inc()
        self.metrics.inbound_waiting.labels(self.link.name).set(len(self.waiting))

    def _free(self, slot: Slot, department_id: str) -> bool:
        return (
            slot.state is AgentState.READY
            and slot.phone_ready
            and not slot.pause_after_call  # their 休憩 waits only for the predictive calls counting on them
            and slot.attempt_id is None
            and slot.user.department_id == department_id
            and bool(slot.user.extension)
        )

    async def _put_through(self, caller: Caller) -> Slot | None:
        slot = await self._take_operator(caller)
        if slot is None:
            return None
        attempt_id = slot.attempt_id
        assert attempt_id is not None
        plan = self.settings.dialplan
        refused = False
        try:
            sent = await self.link.redirect(
                caller.channel, plan.inbound_join_context, slot.user.extension or ""
            )
        except AmiActionError as exc:
            log.warning("inbound.redirect_failed", attempt=attempt_id, error=exc.message)
            sent, refused = False, exc.refused
        log.info("inbound.connect", attempt=attempt_id, operator=slot.user.id, sent=sent)
        if not sent:  # hung up meanwhile (before we followed its channel), Asterisk unreachable or refusing
            await self.tracker.end_with(
                attempt_id, Outcome.DROPPED, Party.SYSTEM if refused else Party.RESIDENT
            )
            return slot
        async with slot.lock:
            if slot.attempt_id == attempt_id:
                await self.pop(slot, attempt_id)
        return slot

    def _spare(self, free: list[Slot]) -> dict[int, int]:
        """Per campaign with predictive calls in flight (predictive now, or switched from it while
        they ring), its ready operators that none of those calls counts on (a campaign left out has
        none in flight: all its ready operators are spare)."""
        ready = Counter(s.campaign.id for s in free if s.campaign is not None)
        return {c: n - counted for c, n in ready.items() if (counted := self.counted_on(c))}

    async def _take_operator(self, caller: Caller) -> Slot | None:
        """The department's ready operator who has waited longest, now on this call (an attempt);
        not one a predictive campaign's calls in flight count on (the caller waits for the next)."""
        free = sorted(
            (s for s in self.floor.slots.values() if self._free(s, caller.department_id)),
            key=lambda s: s.since,
        )
        spare = self._spare(free)
        for slot in free:
            if slot.campaign is not None and spare.get(slot.campaign.id, 1) <= 0:
                continue
            async with slot.lock:
                if not self._free(slot, caller.department_id):
                    continue  # taken or paused while we waited for the lock
                try:
                    attempt_id = await inbound.open_call(
                        self.pool, department_id=caller.department_id, household_id=caller.household_id,
                        caller_number=caller.number, uniqueid=caller.uniqueid, operator_id=slot.user.id,
                        link=self.link.name, owner=self.owner,
                    )  # fmt: skip
                except STORE_ERRORS as exc:  # left waiting: the desk takes them if this goes on
                    log.error("inbound.store_failed", error=type(exc).__name__)
                    await self.flow.failed(exc, "inbound")
                    return None
                self.waiting.pop(caller.uniqueid, None)
                self._count(caller, "put_through")
                self.callers[attempt_id] = caller
                slot.lease, slot.attempt_id, slot.call_phase = None, attempt_id, "answered"
                slot.inbound = True
                self.floor.by_attempt[attempt_id] = slot.user.id
                self.tracker.track_answered(attempt_id, caller.uniqueid, caller.channel)
                await self.floor.move(slot, Action.CONNECT)
                return slot
        return None

    async def pop(self, slot: Slot, attempt_id: int) -> None:
        """Tell the operator who is calling; with one household matched, its record (audit-logged)."""
        caller = self.callers.get(attempt_id)
        if caller is None:
            return
        await self.floor.notifier.to_user(slot.user.id, caller.view(attempt_id))
        if caller.household_id is None:
            return
        try:
            record = await records.read_for_operator(
                self.pool, household_id=caller.household_id, department_id=caller.department_id,
                phone_id=None, user_id=slot.user.id, reason="inbound", attempt_id=attempt_id,
                caller_number=caller.number, remote_addr=slot.address,
            )  # fmt: skip
        except STORE_ERRORS as exc:
            log.error("store.record_failed", attempt=attempt_id, error=type(exc).__name__)
            await self.flow.failed(exc, "record")
            return
        if record is not None:
            await self.floor.notifier.to_user(
                slot.user.id,
                {"type": "record", "reason": "inbound", "attempt_id": attempt_id, "record": record.as_json()},
            )

    async def identify(self, slot: Slot, attempt_id: int, key: str, by: str, remote: str = "") -> bool:
        """The household a caller gives by its 宛名番号 or 世帯番号, on the operator's own call: kept
        with the call, and its record shown (audit-logged). False: the department has no such number."""
        assert slot.user.department_id is not None
        caller = self.callers.get(attempt_id)
        if caller is not None and caller.match == "known":  # its registered number named it: the
            raise EngineError("error.caller_known")  # page offers no look-up, nor does the API
        household_id = await inbound.identify(
            self.pool,
            attempt_id=attempt_id,
            user_id=slot.user.id,
            department_id=slot.user.department_id,
            key=key,
            by=by,
            remote_addr=remote,
        )
        if household_id is None:
            return False
        if caller is not None:  # a page that reconnects is shown the household again
            caller.household_id, caller.match = household_id, "identified"
            await self.pop(slot, attempt_id)
        return True

    def ended(self, attempt_id: int) -> None:
        """A call ended: its caller is kept while the operator is still on it (wrap-up: a page
        reloaded then is told again), and forgotten with the calls no operator holds any more."""
        held = {s.attempt_id for s in self.floor.slots.values()}
        for done in [a for a in self.callers if a not in held and a not in self.tracker.calls]:
            del self.callers[done]
