"""An operator's phone session: the leg that rings the phone and waits in ConfBridge agent-<ext>.

Pure, like the call state: events in, new state and what happened out.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from dialer.ami import events as ev


class SessionPhase(StrEnum):
    DIALING = "dialing"
    RINGING = "ringing"
    UP = "up"  # the operator answered
    JOINED = "joined"  # in the bridge: calls can be connected
    ENDED = "ended"


@dataclass(frozen=True)
class SessionState:
    channel_id: str
    extension: str
    phase: SessionPhase = SessionPhase.DIALING
    channel: str | None = None
    cause: int | None = None

    @property
    def conference(self) -> str:
        return f"agent-{self.extension}"


def apply(state: SessionState, event: ev.AmiEvent) -> tuple[SessionState, SessionPhase | None]:
    """Return the new state and the phase entered, if it changed."""
    if state.phase is SessionPhase.ENDED:
        return state, None
    mine = isinstance(event, ev.ChannelEvent) and event.uniqueid == state.channel_id
    match event:
        case ev.Newchannel() if mine:
            return replace(state, channel=event.channel), None
        case ev.Newstate(state_desc="Ringing") if mine and state.phase is SessionPhase.DIALING:
            return _enter(state, SessionPhase.RINGING)
        case ev.Newstate(state_desc="Up") if mine and state.phase in (
            SessionPhase.DIALING,
            SessionPhase.RINGING,
        ):
            return _enter(state, SessionPhase.UP)
        case ev.BridgeMember(name="ConfbridgeJoin") if mine and event.conference == state.conference:
            return _enter(state, SessionPhase.JOINED)
        case ev.BridgeMember(name="ConfbridgeLeave") if mine:
            return _enter(state, SessionPhase.ENDED)
        case ev.Hangup() if mine:
            return _enter(replace(state, cause=event.cause), SessionPhase.ENDED)
        case ev.OriginateResponse() if not event.success and state.channel is None:
            return _enter(state, SessionPhase.ENDED)
    return state, None


def _enter(state: SessionState, phase: SessionPhase) -> tuple[SessionState, SessionPhase | None]:
    if state.phase is phase:
        return state, None
    return replace(state, phase=phase), phase
