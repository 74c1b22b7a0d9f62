"""Typed events at the boundary: every recorded message converts, odd ones become Other."""

from __future__ import annotations

import pytest

from dialer.ami import events
from tests import transcripts


@pytest.mark.parametrize("name", sorted(p.name for p in transcripts.RAW.glob("*.ami")))
def test_every_recorded_event_converts(name: str) -> None:
    typed = {
        "Newchannel",
        "Newstate",
        "Hangup",
        "HangupRequest",
        "SoftHangupRequest",
        "DialBegin",
        "DialState",
        "DialEnd",
        "OriginateResponse",
        "UserEvent",
        "ConfbridgeJoin",
        "ConfbridgeLeave",
        "BridgeEnter",
        "BridgeLeave",
        "FullyBooted",
        "Shutdown",
    }
    for message in transcripts.from_asterisk(name):
        if "Event" in message:
            converted = events.parse(message)
            assert isinstance(converted, events.Other) is (message["Event"] not in typed), message["Event"]


def test_fields_and_absence() -> None:
    ev = events.parse({"Event": "Hangup", "Uniqueid": "dlr-a1", "Cause": "", "Channel": "PJSIP/trunk-01"})
    assert isinstance(ev, events.Hangup)
    assert ev.cause is None
    assert ev.linkedid == ""
    failed = events.parse(
        {"Event": "OriginateResponse", "Response": "Failure", "Uniqueid": "<unknown>", "Reason": "x"}
    )
    assert isinstance(failed, events.OriginateResponse)
    assert failed.uniqueid is None
    assert failed.reason is None
    assert not failed.success


def test_user_event_fields_and_repeated_headers() -> None:
    ev = events.parse(
        {
            "Event": "UserEvent",
            "UserEvent": "DialerAMD",
            "Uniqueid": "u",
            "AMDStatus": "HUMAN",
            "Attempt": ["3001", "dup"],
            "Channel": "c",
        }
    )
    assert isinstance(ev, events.UserEvent)
    assert ev.fields["AMDStatus"] == "HUMAN"
    assert ev.fields["Attempt"] == "3001"


@pytest.mark.parametrize(
    "headers", [{}, {"Event": ""}, {"Event": "NoSuchThing", "Weird": "ＸＹＺ"}, {"Response": "x"}]
)
def test_unknown_is_other(headers: dict[str, str]) -> None:
    assert isinstance(events.parse(headers), events.Other)
