"""Typed AMI events: raw header mappings are converted here, at the boundary, and nowhere else.

panoramisk reads a missing header as '' and gives repeated headers as lists; everything past
this module sees explicit types and `None` for "absent". Unknown events become `Other`, never
an error: Asterisk interleaves many events we do not use (Newexten, VarSet, AGIExec*, ...).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

Headers = Mapping[str, "str | list[str]"]


def _get(h: Headers, key: str) -> str | None:
    """Case-insensitive header lookup; the first value of a repeated header."""
    value = h.get(key)
    if value is None:
        lowered = key.lower()
        for k, v in h.items():
            if k.lower() == lowered:
                value = v
                break
    if isinstance(value, list):
        value = value[0] if value else None
    return value


def _int(h: Headers, key: str) -> int | None:
    raw = _get(h, key)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        return None


@dataclass(frozen=True)
class ChannelEvent:
    """Any event about one channel (Newchannel, Newstate, Hangup, ...)."""

    name: str
    channel: str
    uniqueid: str
    linkedid: str
    state_desc: str
    context: str = ""
    exten: str = ""


@dataclass(frozen=True)
class Newchannel(ChannelEvent):
    pass


@dataclass(frozen=True)
class Newstate(ChannelEvent):
    pass


@dataclass(frozen=True)
class HangupRequest(ChannelEvent):
    cause: int | None = None
    soft: bool = False


@dataclass(frozen=True)
class Hangup(ChannelEvent):
    cause: int | None = None
    cause_txt: str = ""


@dataclass(frozen=True)
class DialEvent:
    """DialBegin / DialState / DialEnd: `dest_uniqueid` is the dialled channel."""

    name: str
    dest_channel: str
    dest_uniqueid: str
    status: str | None  # DialState/DialEnd: RINGING, ANSWER, BUSY, NOANSWER, CONGESTION, CHANUNAVAIL, ...


@dataclass(frozen=True)
class OriginateResponse:
    action_id: str
    success: bool
    reason: int | None
    uniqueid: str | None  # '<unknown>' on some failures becomes None
    channel: str  # the channel name, or the dial string on failure


@dataclass(frozen=True)
class UserEvent(ChannelEvent):
    user_event: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BridgeMember(ChannelEvent):
    """ConfbridgeJoin / ConfbridgeLeave (conference name) and BridgeEnter / BridgeLeave."""

    conference: str = ""


@dataclass(frozen=True)
class FullyBooted:
    uptime: int | None


@dataclass(frozen=True)
class Shutdown:
    restart: bool


@dataclass(frozen=True)
class Other:
    name: str


AmiEvent = (
    Newchannel
    | Newstate
    | HangupRequest
    | Hangup
    | DialEvent
    | OriginateResponse
    | UserEvent
    | BridgeMember
    | FullyBooted
    | Shutdown
    | Other
)

_USER_EVENT_STANDARD = frozenset(
    k.lower()
    for k in [
        "Event",
        "Privilege",
        "Channel",
        "ChannelState",
        "ChannelStateDesc",
        "CallerIDNum",
        "CallerIDName",
        "ConnectedLineNum",
        "ConnectedLineName",
        "Language",
        "AccountCode",
        "Context",
        "Exten",
        "Priority",
        "Uniqueid",
        "Linkedid",
        "UserEvent",
    ]
)


def _channel_fields(h: Headers) -> dict[str, str]:
    return {
        "channel": _get(h, "Channel") or "",
        "uniqueid": _get(h, "Uniqueid") or "",
        "linkedid": _get(h, "Linkedid") or "",
        "state_desc": _get(h, "ChannelStateDesc") or "",
        "context": _get(h, "Context") or "",
        "exten": _get(h, "Exten") or "",
    }


def parse(h: Headers) -> AmiEvent:
    """Convert one event's headers. Never raises on odd input: the worst case is `Other`."""
    name = _get(h, "Event") or ""
    key = name.lower()
    if key == "newchannel":
        return Newchannel(name=name, **_channel_fields(h))
    if key == "newstate":
        return Newstate(name=name, **_channel_fields(h))
    if key in ("hanguprequest", "softhanguprequest"):
        return HangupRequest(
            name=name, cause=_int(h, "Cause"), soft=key == "softhanguprequest", **_channel_fields(h)
        )
    if key == "hangup":
        return Hangup(
            name=name, cause=_int(h, "Cause"), cause_txt=_get(h, "Cause-txt") or "", **_channel_fields(h)
        )
    if key in ("dialbegin", "dialstate", "dialend"):
        return DialEvent(
            name=name,
            dest_channel=_get(h, "DestChannel") or "",
            dest_uniqueid=_get(h, "DestUniqueid") or "",
            status=_get(h, "DialStatus"),
        )
    if key == "originateresponse":
        uid = _get(h, "Uniqueid")
        return OriginateResponse(
            action_id=_get(h, "ActionID") or "",
            success=(_get(h, "Response") or "").lower() == "success",
            reason=_int(h, "Reason"),
            uniqueid=None if uid in (None, "", "<unknown>") else uid,
            channel=_get(h, "Channel") or "",
        )
    if key == "userevent":
        extra = {k: (v[0] if isinstance(v, list) else v) for k, v in h.items()}
        fields = {k: v for k, v in extra.items() if k.lower() not in _USER_EVENT_STANDARD}
        return UserEvent(
            name=name, user_event=_get(h, "UserEvent") or "", fields=fields, **_channel_fields(h)
        )
    if key in ("confbridgejoin", "confbridgeleave", "bridgeenter", "bridgeleave"):
        conference = _get(h, "Conference") or _get(h, "BridgeName") or ""
        return BridgeMember(name=name, conference=conference, **_channel_fields(h))
    if key == "fullybooted":
        return FullyBooted(uptime=_int(h, "Uptime"))
    if key == "shutdown":
        return Shutdown(restart=(_get(h, "Restart") or "").lower() == "true")
    return Other(name=name)
