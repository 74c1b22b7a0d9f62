"""A dialer started after another one died (kill -9, a crash, a power cut) takes over its
operators where Asterisk says they are.

Asterisk keeps the operator's phone in their bridge, and the resident with them, when the dialer
that set the call up dies. When such an operator's page comes back (to this dialer, usually the
same service restarted), their session channel is looked for in CoreShowChannels: found in its
bridge, it is followed again instead of ringing the phone once more (the operator is paused, or
on the call they were on). Their open call, if still up, is adopted with its household's lease,
and its outcome is recorded as usual (an outcome saved before the crash still counts). So is a
predictive resident Asterisk holds in the operator's bridge whom the dead dialer had put through
but not yet written as theirs.

Only once the dialer that opened the session is dead: a session carries its dialer's mark in its
ChannelId (`dialing.session_id`), and one a live dialer opened is that dialer's, however many
share this Asterisk. A dialer restarted on the same machine knows at once that its predecessor is
gone (its pid no longer runs: processes.forget_gone_here); elsewhere after six missed heartbeats.
Until then the operator's phone is held elsewhere (`held_elsewhere`): Ready is refused rather
than ringing a phone that is on a call, and the takeover is tried again with each sweep. The mark
still names the dead dialer after a takeover, so a dialer also claims the operator's phone
(processes.claim_phone) before it takes a session over or opens one: a third dialer finds it held.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

from campaigns.agent import Action, AgentState
from campaigns.callflow import STORE_ERRORS, CallFlow
from campaigns.dialing import EngineError, session_mark
from campaigns.floor import Floor, Slot
from dialer import logs
from dialer.calls.tracker import CallTracker
from dialer.config import Settings
from dialer.errors import AmiActionError
from dialer.store import attempts, campaigns, processes, targets

log = logs.get("campaigns.adoption")

Channels = Mapping[str, Mapping[str, Any]]  # Asterisk's channels by Uniqueid (CoreShowChannels)


@dataclass(frozen=True)
class _Seen:
    """One look at Asterisk and the database for an operator (serves takeover and refusal alike)."""

    listing: Channels
    call: attempts.OpenCall | None
    session: str | None  # their session channel in its bridge, if any
    unassigned: bool = False  # `call` is a resident found in their bridge, not theirs in the database


class Adoption:
    def __init__(
        self, flow: CallFlow, floor: Floor, tracker: CallTracker, settings: Settings, owner: str
    ) -> None:
        self.flow, self.floor, self.tracker, self.settings, self.owner = flow, floor, tracker, settings, owner
        self.pool, self.link = flow.pool, flow.link

    async def adopt(self, slot: Slot) -> bool:
        """Take over an offline operator's live session (and call); True if there was one."""
        if not _untouched(slot):
            return False
        seen = await self._look(slot)
        return seen is not None and await self._ours_now(slot, seen) and await self._take(slot, seen)

    async def before_first_session(self, slot: Slot) -> bool:
        """Before an operator's first session: take over what a dead dialer left (True), or refuse
        while their phone is on a call another dialer still follows (until it is taken for dead)."""
        seen = await self._look(slot)  # one look at Asterisk and the database serves both
        if seen is None:  # Ready goes on as before; the session originate says if the phone is busy
            slot.held_elsewhere = False
            return False
        if await self._ours_now(slot, seen) and await self._take(slot, seen):
            slot.held_elsewhere = False
            return True
        slot.held_elsewhere = self._elsewhere(slot, seen)
        if slot.held_elsewhere:
            log.warning("engine.phone_elsewhere", operator=slot.user.id)
            raise EngineError("error.phone_elsewhere")
        return False

    async def owed(self, slot: Slot) -> tuple[attempts.OpenCall, str] | None:
        """The conversation whose outcome the operator still owes (attempts.awaiting_outcome), and
        how it ended. One still open in the database counts only once its channel is gone at
        Asterisk: up, it is another dialer's to follow (or to be taken over), not ended."""
        owed = await attempts.awaiting_outcome(self.pool, slot.user.id, slot.user.department_id)
        if owed is None:
            return None
        call, outcome, still_open = owed
        if still_open:
            try:
                if not self.link.up or call.channel_id in await self.link.live_channels():
                    return None
            except AmiActionError:
                return None
        return call, outcome

    async def retry(self, send_state: Callable[[Slot], Awaitable[None]]) -> None:
        """Operators refused for a phone held elsewhere get their call back once its dialer is
        taken for dead, without pressing anything (`send_state` shows it on their page)."""
        for slot in list(self.floor.slots.values()):
            if slot.held_elsewhere and slot.state is AgentState.OFFLINE and slot.pages > 0:
                if await self.adopt(slot):
                    slot.held_elsewhere = False
                    await send_state(slot)
            elif slot.state is not AgentState.OFFLINE:
                slot.held_elsewhere = False

    async def _ours_now(self, slot: Slot, seen: _Seen) -> bool:
        """The operator's session at Asterisk may be taken: it is this dialer's own (left by a
        logout whose hang-up failed), or the dialer that opened it is dead. A session opened
        before sessions were marked (an upgrade) is taken once no dialer of that version is alive."""
        if seen.session is None:
            return False
        mark = session_mark(seen.session, self.settings.dialplan.channel_prefix, slot.user.id)
        if mark == processes.mark(self.owner):
            return True
        try:
            if mark is None:
                alive = await processes.unmarked_owner_alive(
                    self.pool, self.owner, self.link.name, self.flow.db.dead_after(self.settings.dead_after_s)
                )
            else:
                alive = await processes.alive(
                    self.pool, mark, self.flow.db.dead_after(self.settings.dead_after_s)
                )
        except STORE_ERRORS as exc:
            log.warning("adoption.check_failed", operator=slot.user.id, error=type(exc).__name__)
            return False
        return not alive

    async def _look(self, slot: Slot) -> _Seen | None:
        """Asterisk's channels, the operator's session among them and their call still open in the
        database (None: no link, no phone, or either could not be read)."""
        if not self.link.up or not slot.user.extension:
            return None
        join, extension = self.settings.dialplan.join_context, slot.user.extension or ""
        try:
            listing = await self.link.channel_list()
            call = await attempts.open_for_operator(self.pool, slot.user.id)
            unassigned = False
            # A predictive resident put through to them just before the dialer died, which had not
            # yet written to whom: Asterisk has them in the operator's bridge (QA: the call went
            # unrecorded, and the next resident was put into the same bridge). Looked for also when
            # the call the database has for them is over at Asterisk (its end unwritten too).
            if (call is None or call.channel_id not in listing) and (
                waiting := _in_context(listing, join, extension)
            ):
                found = await attempts.put_through_unassigned(self.pool, waiting, slot.user.department_id)
                if found is not None:
                    call, unassigned = found, True
        except (AmiActionError, *STORE_ERRORS) as exc:
            log.warning("adoption.check_failed", operator=slot.user.id, error=type(exc).__name__)
            return None
        return _Seen(listing, call, self._session(slot, listing), unassigned)

    async def _take(self, slot: Slot, seen: _Seen) -> bool:
        """Follow the operator's session found in its bridge, and their call if it is still up."""
        listing, call, session = seen.listing, seen.call, seen.session
        extension = slot.user.extension
        if session is None or not extension:
            return False
        try:  # another live dialer took it over first (its ChannelId still names the dead one)
            if not await processes.claim_phone(
                self.pool, slot.user.id, self.owner, self.flow.db.dead_after(self.settings.dead_after_s)
            ):
                log.warning("adoption.taken_elsewhere", operator=slot.user.id)
                return False
        except STORE_ERRORS as exc:
            log.warning("adoption.check_failed", operator=slot.user.id, error=type(exc).__name__)
            return False
        async with slot.lock:
            if not _untouched(slot):
                return False  # Ready pressed meanwhile: that session is the one
            self.tracker.adopt_session(slot.user.id, session, extension, str(listing[session].get("Channel")))
            slot.session_channel_id, slot.phone_ready = session, True
            item = listing.get(call.channel_id) if call is not None else None
            if call is None or item is None:
                await self.floor.move(slot, Action.ADOPT)
                log.warning("adoption.session", operator=slot.user.id)
                return True
            if seen.unassigned:  # theirs now in the database too, as the dead dialer would have written
                write = partial(attempts.assign_operator, self.pool, call.id, slot.user.id)
                await self.flow.store(write, "assign", call.id)
            await self._call(slot, call, item)
        return True  # the page is sent the record as on any reconnect (Engine.attach)

    def _elsewhere(self, slot: Slot, seen: _Seen) -> bool:
        """The operator's phone is on a call, or in a session bridge, that this dialer does not
        follow (another dialer's, alive or not yet taken for dead): a new session would ring a
        phone in use and the pacer would call residents for someone already talking to one."""
        call = seen.call
        if call is not None and call.id not in self.tracker.calls and call.channel_id in seen.listing:
            return True
        return seen.session is not None and seen.session != slot.session_channel_id

    def _session(self, slot: Slot, listing: Channels) -> str | None:
        prefix = f"{self.settings.dialplan.channel_prefix}-s{slot.user.id}-"
        found = [uid for uid, item in listing.items() if uid.startswith(prefix) and item.get("BridgeId")]
        return found[-1] if found else None

    async def _call(self, slot: Slot, call: attempts.OpenCall, item: Mapping[str, Any]) -> None:
        """The operator's call, still up: followed, its household held (slot lock held)."""
        up = (item.get("ChannelStateDesc") or "") == "Up"
        bridged = bool(item.get("BridgeId"))
        if call.lease is not None:
            try:
                await targets.take_over(self.pool, call.lease.target_id, self.owner, self.settings.lease_s)
                if call.campaign_id is not None:
                    slot.campaign = await campaigns.get(self.pool, call.campaign_id, slot.user.department_id)
            except STORE_ERRORS as exc:  # the sweep keeps it while the call is up; nothing lost
                log.warning("adoption.lease_failed", attempt=call.id, error=type(exc).__name__)
        slot.lease, slot.attempt_id, slot.disposed = call.lease, call.id, call.disposed
        slot.inbound = call.lease is None and call.campaign_id is None  # a resident who called in
        # No campaign known (an incoming call, or its campaign unreadable): paused after the call,
        # so that Ready can name one; never ready on nothing.
        slot.pause_after_call = slot.campaign is None
        slot.call_phase = "connected" if bridged else "answered" if up else "ringing"
        self.floor.by_attempt[call.id] = slot.user.id
        if call.campaign_id is not None:
            self.floor.campaign_of[call.id] = call.campaign_id
        self.tracker.adopt(call.id, call.channel_id, str(item.get("Channel")), up=up, bridged=bridged)
        # Answered, put through, but the dead dialer never wrote it (or nobody was looking when it
        # happened): an outcome is accepted only for a call answered, one that needs a person only
        # for a call put through (dispositions). The time is now: when it happened is not known.
        now = datetime.now(UTC)
        for milestone, happened, known in (
            ("answered", up or bridged, call.answered),
            ("connected", bridged, call.connected),
        ):
            if happened and not known:
                write = partial(attempts.milestone, self.pool, call.id, milestone, None, at=now)
                await self.flow.store(write, milestone, call.id)
        await self.floor.move(slot, Action.ADOPT_TALKING if up or bridged else Action.ADOPT_DIALING)
        log.warning("adoption.call", operator=slot.user.id, attempt=call.id, phase=slot.call_phase)


def _in_context(listing: Channels, context: str, extension: str) -> list[str]:
    """The channels (Uniqueids) Asterisk has at this context and extension (an operator's bridge)."""
    return [
        uid
        for uid, item in listing.items()
        if item.get("Context") == context and item.get("Exten") == extension
    ]


def _untouched(slot: Slot) -> bool:
    """Offline with no session of ours (checked again after each wait: Ready may have come)."""
    return slot.state is AgentState.OFFLINE and slot.session_channel_id is None
