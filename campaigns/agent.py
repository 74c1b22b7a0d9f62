"""An operator's state as the engine sees it. Pure: a table of allowed transitions.

offline ─ready→ connecting ─session_up→ ready ─reserve→ preview ─dial→ dialing ─answered→ talking
                                          │ ─dial (progressive)→ dialing ─unanswered→ ready
                                          │ ─connect (predictive: a person answered, given to them)→ talking
talking ─ended→ wrap_up ─disposition→ ready | paused
"""

from __future__ import annotations

from enum import StrEnum

from dialer.errors import DialerError


class AgentState(StrEnum):
    OFFLINE = "offline"  # not at the console, or no phone session
    CONNECTING = "connecting"  # the dialer is ringing the operator's phone to open the session
    PAUSED = "paused"  # at the console, not taking calls
    READY = "ready"  # waiting for the next call
    PREVIEW = "preview"  # preview mode: the next household's record is shown, not yet dialled
    DIALING = "dialing"  # a call is being placed for this operator
    TALKING = "talking"  # the resident answered
    WRAP_UP = "wrap_up"  # the call ended; the disposition is being recorded


class Action(StrEnum):
    READY = "ready"
    PAUSE = "pause"
    SESSION_UP = "session_up"
    SESSION_DOWN = "session_down"
    WAIT_PHONE = "wait_phone"  # Ready again while the phone session is still ringing
    RESERVE = "reserve"  # preview: a household is shown
    RELEASE = "release"  # preview: skipped
    DIAL = "dial"
    CONNECT = (
        "connect"  # predictive: a person answered a call placed for nobody, and is given to this operator
    )
    ANSWERED = "answered"
    UNANSWERED = "unanswered"  # the call ended without a conversation
    ENDED = "ended"  # an answered call ended
    DISPOSED = "disposed"  # disposition stored, back to ready
    DISPOSED_PAUSE = "disposed_pause"  # disposition stored, then a pause
    LOGOUT = "logout"
    # A dialer restarted after a crash finds the operator's phone still in their bridge
    # (campaigns.adoption): paused, or on the call it was on (still dialling, or talking).
    ADOPT = "adopt"
    ADOPT_DIALING = "adopt_dialing"
    ADOPT_TALKING = "adopt_talking"


S, A = AgentState, Action

TRANSITIONS: dict[tuple[AgentState, Action], AgentState] = {
    (S.OFFLINE, A.READY): S.CONNECTING,
    (S.PAUSED, A.READY): S.READY,
    (S.PAUSED, A.WAIT_PHONE): S.CONNECTING,
    (S.CONNECTING, A.SESSION_UP): S.READY,
    (S.CONNECTING, A.PAUSE): S.PAUSED,
    (S.READY, A.PAUSE): S.PAUSED,
    (S.READY, A.RESERVE): S.PREVIEW,
    (S.READY, A.DIAL): S.DIALING,
    (S.READY, A.CONNECT): S.TALKING,
    (S.PREVIEW, A.DIAL): S.DIALING,
    (S.PREVIEW, A.RELEASE): S.READY,
    (S.PREVIEW, A.PAUSE): S.PAUSED,
    (S.DIALING, A.ANSWERED): S.TALKING,
    (S.DIALING, A.UNANSWERED): S.READY,
    (S.TALKING, A.ENDED): S.WRAP_UP,
    (S.TALKING, A.UNANSWERED): S.READY,  # machine, or hung up before reaching the operator
    (S.WRAP_UP, A.DISPOSED): S.READY,
    (S.WRAP_UP, A.DISPOSED_PAUSE): S.PAUSED,
    (S.READY, A.DISPOSED): S.READY,  # a disposition resent after a restart
    (S.PAUSED, A.DISPOSED): S.PAUSED,
    (S.PAUSED, A.DISPOSED_PAUSE): S.PAUSED,
    (S.OFFLINE, A.ADOPT): S.PAUSED,
    (S.OFFLINE, A.ADOPT_DIALING): S.DIALING,
    (S.OFFLINE, A.ADOPT_TALKING): S.TALKING,
}

# Losing the phone session or logging out is always possible; where it leads depends on the call.
_ALWAYS = {A.SESSION_DOWN, A.LOGOUT}


class InvalidTransition(DialerError):
    error_id = "agent_invalid_transition"

    def __init__(self, state: AgentState, action: Action) -> None:
        super().__init__(f"cannot {action.value} while {state.value}")
        self.state, self.action = state, action


def next_state(state: AgentState, action: Action) -> AgentState:
    if action in _ALWAYS:
        # A call in progress still needs its disposition after the phone drops.
        if state in (S.TALKING, S.WRAP_UP) and action is A.SESSION_DOWN:
            return S.WRAP_UP
        return S.OFFLINE
    try:
        return TRANSITIONS[(state, action)]
    except KeyError:
        raise InvalidTransition(state, action) from None


def takes_calls(state: AgentState) -> bool:
    return state is S.READY
