"""Routes typed AMI events to the calls and operator sessions they belong to, by our ChannelId.

Every Originate carries our own ChannelId, which Asterisk uses as the channel's Uniqueid and
Linkedid, so an event is ours when its Uniqueid, Linkedid or DestUniqueid is one we issued (or
its ActionID, which is the ChannelId of our Originates). Everything else is ignored. The tracker keeps state in
memory and reports changes to a sink; it does no I/O itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from dialer.ami import events as ev
from dialer.ami.link import LinkEvent, LinkStatus
from dialer.calls import session as sess
from dialer.calls import state as call


@dataclass(frozen=True)
class CallChange:
    attempt_id: int
    state: call.CallState
    milestones: list[call.Milestone]
    event: ev.AmiEvent | None


@dataclass(frozen=True)
class SessionChange:
    user_id: int
    state: sess.SessionState
    entered: sess.SessionPhase


CallSink = Callable[[CallChange], Awaitable[None]]
SessionSink = Callable[[SessionChange], Awaitable[None]]


class CallTracker:
    def __init__(self, on_call: CallSink, on_session: SessionSink) -> None:
        self._on_call = on_call
        self._on_session = on_session
        self.calls: dict[int, call.CallState] = {}
        self.sessions: dict[int, sess.SessionState] = {}
        self._index: dict[str, tuple[str, int]] = {}  # our ChannelIds -> (kind, key)

    def track_call(self, attempt_id: int, channel_id: str, other_channel_id: str | None = None) -> None:
        self.calls[attempt_id] = call.CallState(channel_id=channel_id, other_channel_id=other_channel_id)
        self._index[channel_id] = ("call", attempt_id)
        if other_channel_id:
            self._index[other_channel_id] = ("call", attempt_id)

    def track_answered(self, attempt_id: int, uniqueid: str, channel: str) -> None:
        """A call we did not place (a resident calling in), already up: followed by Asterisk's Uniqueid."""
        self.calls[attempt_id] = call.CallState(
            channel_id=uniqueid, phase=call.Phase.ANSWERED, channel=channel, answered=True
        )
        self._index[uniqueid] = ("call", attempt_id)

    def adopt(self, attempt_id: int, channel_id: str, channel: str, *, up: bool, bridged: bool) -> None:
        """A call another dialer placed, found live at Asterisk: followed from where it is."""
        phase = call.Phase.CONNECTED if bridged else call.Phase.ANSWERED if up else call.Phase.RINGING
        self.calls[attempt_id] = call.CallState(
            channel_id=channel_id, phase=phase, channel=channel, answered=up or bridged, connected=bridged
        )
        self._index[channel_id] = ("call", attempt_id)

    def adopt_session(self, user_id: int, channel_id: str, extension: str, channel: str) -> None:
        """An operator's session another dialer opened, found in its bridge at Asterisk."""
        self.sessions[user_id] = sess.SessionState(
            channel_id=channel_id, extension=extension, phase=sess.SessionPhase.JOINED, channel=channel
        )
        self._index[channel_id] = ("session", user_id)

    def track_session(self, user_id: int, channel_id: str, extension: str) -> None:
        self.sessions[user_id] = sess.SessionState(channel_id=channel_id, extension=extension)
        self._index[channel_id] = ("session", user_id)

    def request_hangup(self, attempt_id: int, by: call.Party) -> call.CallState | None:
        current = self.calls.get(attempt_id)
        if current is None:
            return None
        self.calls[attempt_id] = call.request_hangup(current, by)
        return self.calls[attempt_id]

    def hangup_refused(self, attempt_id: int) -> None:
        """Asterisk refused the Hangup request_hangup announced: the call goes on as before."""
        if (current := self.calls.get(attempt_id)) is not None:
            self.calls[attempt_id] = call.hangup_refused(current)

    async def on_event(self, event: LinkEvent) -> None:
        if isinstance(event, LinkStatus):
            return  # calls keep their state; Asterisk keeps them up while the link is down
        for kind, key in self._owners(event):
            if kind == "call":
                await self._apply_call(key, event)
            else:
                await self._apply_session(key, event)

    async def _apply_call(self, attempt_id: int, event: ev.AmiEvent) -> None:
        current = self.calls.get(attempt_id)
        if current is None:
            return
        new, milestones = call.apply(current, event)
        if new is current:
            return
        self.calls[attempt_id] = new
        if new.phase is call.Phase.ENDED:
            self._forget(new.channel_id, new.other_channel_id)
            del self.calls[attempt_id]
        if milestones:
            await self._on_call(CallChange(attempt_id, new, milestones, event))

    async def end_with(self, attempt_id: int, outcome: call.Outcome, by: call.Party | None = None) -> None:
        """End a call no Hangup will end: never placed (failed, cancelled), or gone unseen (lost)."""
        current = self.calls.pop(attempt_id, None)
        if current is None:
            return
        new, milestones = call.abort(current, outcome, by)
        self._forget(current.channel_id, current.other_channel_id)
        await self._on_call(CallChange(attempt_id, new, milestones, None))

    async def _apply_session(self, user_id: int, event: ev.AmiEvent) -> None:
        current = self.sessions.get(user_id)
        if current is None:
            return
        new, entered = sess.apply(current, event)
        self.sessions[user_id] = new
        if entered is sess.SessionPhase.ENDED:
            self._forget(new.channel_id, None)
            del self.sessions[user_id]
        if entered is not None:
            await self._on_session(SessionChange(user_id, new, entered))

    def _owners(self, event: ev.AmiEvent) -> list[tuple[str, int]]:
        keys: tuple[str | None, ...]
        if isinstance(event, ev.ChannelEvent):
            keys = (event.uniqueid, event.linkedid)
        elif isinstance(event, ev.DialEvent):
            keys = (event.dest_uniqueid,)
        elif isinstance(event, ev.OriginateResponse):
            keys = (event.uniqueid, event.action_id)
        else:
            return []
        owners: list[tuple[str, int]] = []
        for k in keys:
            owner = self._index.get(k) if k else None
            if owner is not None and owner not in owners:
                owners.append(owner)
        return owners

    def _forget(self, channel_id: str, other: str | None) -> None:
        self._index.pop(channel_id, None)
        if other:
            self._index.pop(other, None)
