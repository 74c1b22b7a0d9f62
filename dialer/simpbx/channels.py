"""The channel model and the event builders, with Asterisk 22's exact header order."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .behaviour import Verdict
from .wire import Headers

if TYPE_CHECKING:
    from .conference import Conference

DOWN, RING, RINGING, UP, BUSY = 0, 4, 5, 6, 7
STATE_DESC = {0: "Down", 1: "Rsrvd", 2: "OffHook", 3: "Dialing", 4: "Ring", 5: "Ringing", 6: "Up", 7: "Busy"}
UNKNOWN = "<unknown>"

CAUSE_TXT = {
    0: "Unknown",
    1: "Unallocated (unassigned) number",
    16: "Normal Clearing",
    17: "User busy",
    18: "No user responding",
    19: "User alerting, no answer",
    21: "Call Rejected",
    27: "Destination out of order",
    34: "Circuit/channel congestion",
    38: "Network out of order",
    41: "Temporary failure",
}

CALL = "call,all"
DIALPLAN = "dialplan,all"

# chan_pjsip sets these when the RTP session ends (06d); values copied from the recording.
RTP_QOS = (
    (
        "RTPAUDIOQOS",
        "ssrc=1874389990;themssrc=0;lp=0;rxjitter=0.000000;rxcount=0;txjitter=0.000000;"
        "txcount=0;rlp=0;rtt=0.000000;rxmes=0.000000;txmes=0.000000",
    ),
    (
        "RTPAUDIOQOSJITTER",
        "minrxjitter=000.000000;maxrxjitter=000.000000;avgrxjitter=000.000000;"
        "stdevrxjitter=000.000000;mintxjitter=000.000000;maxtxjitter=000.000000;avgtxjitter=000.000000;"
        "stdevtxjitter=000.000000;",
    ),
    (
        "RTPAUDIOQOSLOSS",
        "  minrxlost=000.000000;  maxrxlost=000.000000;  avgrxlost=000.000000;  "
        "stdevrxlost=000.000000;  mintxlost=000.000000;  maxtxlost=000.000000;  avgtxlost=000.000000;  "
        "stdevtxlost=000.000000;",
    ),
    (
        "RTPAUDIOQOSRTT",
        "     minrtt=000.000000;     maxrtt=000.000000;     avgrtt=000.000000;     stdevrtt=000.000000;",
    ),
    (
        "RTPAUDIOQOSMES",
        "   minrxmes=000.000000;   maxrxmes=000.000000;   avgrxmes=000.000000;   "
        "stdevrxmes=000.000000;   mintxmes=000.000000;   maxtxmes=000.000000;   avgtxmes=000.000000;   "
        "stdevtxmes=000.000000;",
    ),
)


@dataclass(eq=False)
class Channel:
    """One live channel. ``peer`` links the two halves of a Local channel."""

    name: str
    uniqueid: str
    linkedid: str
    context: str
    exten: str
    tech: str  # "PJSIP" or "Local"
    device: str  # as in DeviceStateChange, e.g. "PJSIP/trunk" or "Local/busy@sim-callee"
    state: int = DOWN
    priority: int = 1
    cid_num: str = UNKNOWN
    cid_name: str = UNKNOWN
    conn_num: str = UNKNOWN
    conn_name: str = UNKNOWN
    variables: dict[str, str] = field(default_factory=dict)
    app: str = "AppDial2"
    app_data: str = "(Outgoing Line)"
    created: float = field(default_factory=time.monotonic)
    alive: bool = True
    answered: bool = False
    peer: Channel | None = None
    conference: Conference | None = None
    role: str = ""  # "operator" (marked) or "resident" (end_marked) inside a conference
    phone_ext: str = ""  # set on an operator's phone leg, for hangup_from_phone
    spying: Channel | None = None  # ChanSpy() running on this channel listens to that one
    verdict: Verdict | None = None  # what AMD() will say on this channel
    target: tuple[str, str, int] | None = None  # where the Originate sends it once answered
    # Set while an Originate still dials this channel: a hangup then cancels the dial.
    # Arguments: the AMI Cause (None if absent) and whether the PBX is shutting down.
    on_cancel: Callable[[int | None, bool], None] | None = None
    timers: set[asyncio.TimerHandle] = field(default_factory=set)
    dp_timers: set[asyncio.TimerHandle] = field(default_factory=set)  # dialplan waits only

    @property
    def is_half_two(self) -> bool:
        return self.tech == "Local" and self.name.endswith(";2")

    def snapshot(self, prefix: str = "") -> Headers:
        return [
            (f"{prefix}Channel", self.name),
            (f"{prefix}ChannelState", str(self.state)),
            (f"{prefix}ChannelStateDesc", STATE_DESC.get(self.state, "Unknown")),
            (f"{prefix}CallerIDNum", self.cid_num),
            (f"{prefix}CallerIDName", self.cid_name),
            (f"{prefix}ConnectedLineNum", self.conn_num),
            (f"{prefix}ConnectedLineName", self.conn_name),
            (f"{prefix}Language", "en"),
            (f"{prefix}AccountCode", ""),
            (f"{prefix}Context", self.context),
            (f"{prefix}Exten", self.exten),
            (f"{prefix}Priority", str(self.priority)),
            (f"{prefix}Uniqueid", self.uniqueid),
            (f"{prefix}Linkedid", self.linkedid),
        ]


def chan_event(event: str, ch: Channel, extra: Iterable[tuple[str, str]] = (), priv: str = CALL) -> Headers:
    return [("Event", event), ("Privilege", priv), *ch.snapshot(), *extra]


def dial_event(event: str, dest: Channel, extra: Iterable[tuple[str, str]] = ()) -> Headers:
    return [("Event", event), ("Privilege", CALL), *dest.snapshot("Dest"), *extra]


def newexten(ch: Channel, priority: int, app: str, data: str) -> Headers:
    ch.priority, ch.app, ch.app_data = priority, app, data
    extra = [("Extension", ch.exten), ("Application", app), ("AppData", data)]
    return chan_event("Newexten", ch, extra, DIALPLAN)


def varset(ch: Channel, name: str, value: str) -> Headers:
    ch.variables[name] = value
    return chan_event("VarSet", ch, [("Variable", name), ("Value", value)], DIALPLAN)


def newstate(ch: Channel, state: int) -> Headers:
    ch.state = state
    return chan_event("Newstate", ch)


def device_state(device: str, state: str) -> Headers:
    return [("Event", "DeviceStateChange"), ("Privilege", CALL), ("Device", device), ("State", state)]


def soft_hangup_request(ch: Channel, cause: int) -> Headers:
    return chan_event("SoftHangupRequest", ch, [("Cause", str(cause))])


def hangup_request(ch: Channel, cause: int | None, tech_cause: int | None = None) -> Headers:
    extra = [] if cause is None else [("Cause", str(cause))]
    if tech_cause is not None:
        extra.append(("TechCause", str(tech_cause)))
    return chan_event("HangupRequest", ch, extra)


def hangup(ch: Channel, cause: int, tech_cause: int | None = None) -> Headers:
    extra = [("Cause", str(cause)), ("Cause-txt", CAUSE_TXT.get(cause, "Unknown"))]
    if tech_cause is not None:
        extra.append(("TechCause", str(tech_cause)))
    return chan_event("Hangup", ch, extra)


def chanspy_event(event: str, spyer: Channel, spyee: Channel) -> Headers:
    """ChanSpyStart / ChanSpyStop (08): the spyer's snapshot, then the spyee's."""
    return [("Event", event), ("Privilege", CALL), *spyer.snapshot("Spyer"), *spyee.snapshot("Spyee")]


def user_event(ch: Channel, name: str, fields: Iterable[tuple[str, str]]) -> Headers:
    return chan_event("UserEvent", ch, [("UserEvent", name), *fields], "user,all")


def parse_callerid(text: str) -> tuple[str, str]:
    """``"Dialer" <0800100100>`` -> (number, name); a bare value is the number."""
    text = text.strip()
    if "<" in text and text.endswith(">"):
        name, _, num = text[:-1].rpartition("<")
        return num.strip(), name.strip().strip('"').strip()
    return text, ""
