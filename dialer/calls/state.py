"""The state of one outbound call, driven by typed AMI events. Pure: no I/O, no clock.

The outcome is derived from Dial*/Newstate/Hangup events and our own UserEvents, never from
OriginateResponse's Reason alone: Asterisk reports busy as Reason 5 on Local channels and 0 on
SIP; a PJSIP no-answer has no DialEnd at all (only Hangup Cause 19). See ../shared/design/AMI.md.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dialer.ami import events as ev


class Phase(StrEnum):
    ORIGINATING = "originating"
    RINGING = "ringing"
    ANSWERED = "answered"  # the line is up; AMD may still be listening
    CONNECTED = "connected"  # the resident is in the operator's bridge
    ENDED = "ended"


class Outcome(StrEnum):
    CONNECTED = "connected"  # a person answered and reached the operator
    ABANDONED = "abandoned"  # a person answered and no operator was free (message played)
    DROPPED = "dropped"  # answered, but the line closed before reaching an operator
    MACHINE = "machine"  # answering machine (AMD), hung up on
    BUSY = "busy"
    NO_ANSWER = "no_answer"
    CONGESTION = "congestion"
    UNAVAILABLE = "unavailable"  # number not in service, channel unavailable
    CANCELLED = "cancelled"  # we hung up before the answer
    FAILED = "failed"  # Asterisk could not place the call
    LOST = "lost"  # the AMI link dropped; the outcome is unknown


class Party(StrEnum):
    RESIDENT = "resident"
    OPERATOR = "operator"
    SYSTEM = "system"  # the dialer or the dialplan (machine, abandon, ring timeout)
    NETWORK = "network"  # busy, congestion, unreachable


class Milestone(StrEnum):
    CHANNEL = "channel"
    RINGING = "ringing"
    ANSWERED = "answered"
    AMD = "amd"
    CONNECTED = "connected"
    ABANDONED = "abandoned"
    ENDED = "ended"


BUSY_CAUSES = frozenset({17})
NO_ANSWER_CAUSES = frozenset({18, 19})
CONGESTION_CAUSES = frozenset({34, 38, 41, 42, 44})
UNAVAILABLE_CAUSES = frozenset({1, 2, 3, 20, 22, 27, 28})
# A SoftHangupRequest's Cause is Asterisk's soft-hangup reason, not a Q.850 cause: 4 is a PBX
# shutting down or restarting (transcripts 10 and 10b, on every channel before its Hangup); an AMI
# or dialplan hangup shows 16.
SOFT_SHUTDOWN = 4
# OriginateResponse reasons, used only when no channel ever existed (see module docstring)
_REASON_OUTCOME = {5: Outcome.BUSY, 3: Outcome.NO_ANSWER, 8: Outcome.CONGESTION, 1: Outcome.FAILED}


@dataclass(frozen=True)
class CallState:
    channel_id: str
    other_channel_id: str | None = None
    phase: Phase = Phase.ORIGINATING
    channel: str | None = None  # Asterisk's channel name once it exists
    answered: bool = False
    connected: bool = False  # reached the operator's bridge at some point
    dial_status: str | None = None
    cause: int | None = None  # the Hangup event's own cause, as Asterisk reported it
    request_cause: int | None = None  # from a (Soft)HangupRequest before it
    far_cause: int | None = None  # the other half of a Local channel
    amd_status: str | None = None
    abandoned: bool = False
    requested_by: Party | None = None  # we asked for the hangup, on behalf of this party
    shutdown: bool = False  # the PBX was stopping when the call ended
    originate_reason: int | None = None
    outcome: Outcome | None = None
    hangup_by: Party | None = None


def request_hangup(state: CallState, by: Party) -> CallState:
    """Record that we are hanging the call up (before sending the Hangup action)."""
    if state.phase is Phase.ENDED or state.requested_by is not None:
        return state
    return replace(state, requested_by=by)


def hangup_refused(state: CallState) -> CallState:
    """The Hangup we asked for was refused (its call goes on): the call no longer ends by our hand."""
    return replace(state, requested_by=None)


def abort(state: CallState, outcome: Outcome, by: Party | None) -> tuple[CallState, list[Milestone]]:
    """End a call without a Hangup event: never placed (FAILED, CANCELLED) or gone unseen (LOST)."""
    if state.phase is Phase.ENDED:
        return state, []
    return replace(state, phase=Phase.ENDED, outcome=outcome, hangup_by=by), [Milestone.ENDED]


def apply(state: CallState, event: ev.AmiEvent) -> tuple[CallState, list[Milestone]]:
    """Apply one event that belongs to this call; return the new state and what happened."""
    if state.phase is Phase.ENDED:
        return state, []
    mine = _is_main(state, event)
    match event:
        case ev.Newchannel() if mine:
            return replace(state, channel=event.channel), [Milestone.CHANNEL]
        case ev.DialEvent(status="RINGING") | ev.Newstate(state_desc="Ringing") if _main_or_dest(
            state, event
        ):
            return _ringing(state)
        case ev.Newstate(state_desc="Up") if mine:
            return _answered(state)
        case ev.DialEvent(name="DialEnd") if event.dest_uniqueid == state.channel_id:
            state = replace(state, dial_status=event.status)
            return _answered(state) if event.status == "ANSWER" else (state, [])
        case ev.UserEvent(user_event="DialerAMD"):
            status = event.fields.get("AMDStatus", "")
            return replace(state, amd_status=status or None), [Milestone.AMD]
        case ev.UserEvent(user_event="DialerAbandon"):
            return replace(state, abandoned=True), [Milestone.ABANDONED]
        case ev.BridgeMember(name="ConfbridgeJoin") if mine and state.phase is not Phase.CONNECTED:
            return replace(state, phase=Phase.CONNECTED, answered=True, connected=True), [Milestone.CONNECTED]
        case ev.HangupRequest(soft=True) if mine and event.cause == SOFT_SHUTDOWN:
            return replace(state, shutdown=True), []
        case ev.HangupRequest() if mine and event.cause:
            return replace(state, request_cause=state.request_cause or event.cause), []
        case ev.Hangup() if mine:
            return _ended(replace(state, cause=event.cause))
        case ev.Hangup() if event.uniqueid and event.uniqueid == state.other_channel_id:
            return replace(state, far_cause=event.cause), []
        case ev.OriginateResponse() if not event.success:
            state = replace(state, originate_reason=event.reason)
            # With a channel, its Hangup follows and tells more; without one, this is the end.
            return (state, []) if state.channel else _ended(state)
    return state, []


def _is_main(state: CallState, event: ev.AmiEvent) -> bool:
    return isinstance(event, ev.ChannelEvent) and event.uniqueid == state.channel_id


def _main_or_dest(state: CallState, event: ev.AmiEvent) -> bool:
    if isinstance(event, ev.DialEvent):
        return event.dest_uniqueid == state.channel_id
    return _is_main(state, event)


def _ringing(state: CallState) -> tuple[CallState, list[Milestone]]:
    if state.phase is not Phase.ORIGINATING:
        return state, []
    return replace(state, phase=Phase.RINGING), [Milestone.RINGING]


def _answered(state: CallState) -> tuple[CallState, list[Milestone]]:
    if state.answered:
        return state, []
    return replace(state, phase=Phase.ANSWERED, answered=True), [Milestone.ANSWERED]


def _ended(state: CallState) -> tuple[CallState, list[Milestone]]:
    outcome = derive_outcome(state)
    final = replace(state, phase=Phase.ENDED, outcome=outcome, hangup_by=derive_hangup_by(state, outcome))
    return final, [Milestone.ENDED]


def derive_outcome(s: CallState) -> Outcome:
    if s.answered:
        if s.amd_status == "MACHINE":
            return Outcome.MACHINE
        if s.abandoned:
            return Outcome.ABANDONED
        return Outcome.CONNECTED if s.phase is Phase.CONNECTED else Outcome.DROPPED
    causes = {c for c in (s.cause, s.request_cause, s.far_cause) if c}
    if s.dial_status == "BUSY" or causes & BUSY_CAUSES:
        return Outcome.BUSY
    if s.dial_status == "CONGESTION" or causes & CONGESTION_CAUSES:
        return Outcome.CONGESTION
    if s.dial_status == "CHANUNAVAIL" or causes & UNAVAILABLE_CAUSES:
        return Outcome.UNAVAILABLE
    if s.dial_status == "NOANSWER" or causes & NO_ANSWER_CAUSES:
        return Outcome.NO_ANSWER
    if s.requested_by is not None:
        return Outcome.CANCELLED
    if s.originate_reason is not None:
        return _REASON_OUTCOME.get(s.originate_reason, Outcome.FAILED)
    return Outcome.FAILED


def derive_hangup_by(s: CallState, outcome: Outcome) -> Party:
    # A stopping PBX ends the operator's leg too, and we then hang up on the operator's behalf.
    if s.shutdown:
        return Party.SYSTEM
    if s.requested_by is not None:
        return s.requested_by
    if outcome in (Outcome.MACHINE, Outcome.ABANDONED, Outcome.NO_ANSWER, Outcome.FAILED):
        return Party.SYSTEM
    if s.answered:
        return Party.RESIDENT
    return Party.NETWORK
