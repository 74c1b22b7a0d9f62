"""The call state machine and tracker, fed with what a real Asterisk 22 sent (recorded transcripts).

Each case names the file, the ChannelId (and OtherChannelId) our Originate set, and the outcome
and hang-up party the product must derive. Nothing here looks at OriginateResponse's Reason
alone: PJSIP busy is Reason 0, and PJSIP no-answer has no DialEnd at all.
"""

from __future__ import annotations

import pytest

from dialer.ami import events
from dialer.calls.state import Milestone, Outcome, Party
from dialer.calls.tracker import CallChange, CallTracker, SessionChange
from tests import transcripts

CASES = [
    # file, channel id, other channel id, outcome, hangup_by, cause, milestones seen
    ("06a-sip-busy-486.ami", "dialer-att-6001", None, Outcome.BUSY, Party.NETWORK, 17, {"ringing"}),
    (
        "06b-sip-noanswer-timeout.ami",
        "dialer-att-6002",
        None,
        Outcome.NO_ANSWER,
        Party.SYSTEM,
        19,
        {"ringing"},
    ),
    ("06c-sip-congestion-503.ami", "dialer-att-6003", None, Outcome.CONGESTION, Party.NETWORK, 34, set()),
    (
        "06d-sip-answer-remote-bye.ami",
        "dialer-att-6004",
        None,
        Outcome.DROPPED,
        Party.RESIDENT,
        0,
        {"ringing", "answered"},
    ),
    ("06e-sip-no-response-timeout.ami", "dialer-att-6005", None, Outcome.NO_ANSWER, Party.SYSTEM, 19, set()),
    (
        "06f-local-busy-congestion-noanswer.ami",
        "dialer-att-6011",
        "dialer-att-6011-far",
        Outcome.BUSY,
        Party.NETWORK,
        None,
        {"ringing"},
    ),
    (
        "06f-local-busy-congestion-noanswer.ami",
        "dialer-att-6012",
        "dialer-att-6012-far",
        Outcome.CONGESTION,
        Party.NETWORK,
        None,
        set(),
    ),
    (
        "06f-local-busy-congestion-noanswer.ami",
        "dialer-att-6013",
        "dialer-att-6013-far",
        Outcome.NO_ANSWER,
        Party.SYSTEM,
        None,
        {"ringing"},
    ),
    (
        "03-predictive-amd-confbridge.ami",
        "dialer-att-3001",
        "dialer-att-3001-far",
        Outcome.CONNECTED,
        Party.RESIDENT,
        16,
        {"ringing", "answered", "amd", "connected"},
    ),
    (
        "04-abandon-no-operator.ami",
        "dialer-att-4001",
        "dialer-att-4001-far",
        Outcome.ABANDONED,
        Party.SYSTEM,
        16,
        {"ringing", "answered", "amd", "abandoned"},
    ),
    (
        "03c-amd-machine-and-notsure.ami",
        "dialer-att-3003",
        "dialer-att-3003-far",
        Outcome.MACHINE,
        Party.SYSTEM,
        16,
        {"ringing", "answered", "amd"},
    ),
    (
        "08-chanspy-supervisor.ami",
        "dialer-att-8001",
        "dialer-att-8001-far",
        Outcome.CONNECTED,
        Party.RESIDENT,
        16,
        {"ringing", "answered", "amd", "connected"},
    ),
    # The PBX stopped (restart, then SIGTERM) with the resident on the line: the dialer did not
    # hang up, nor did the resident (SoftHangupRequest Cause 4 on each channel first).
    (
        "10-restart-link-drop-reconnect.ami",
        "dialer-att-10001",
        "dialer-att-10001-far",
        Outcome.CONNECTED,
        Party.SYSTEM,
        16,
        {"ringing", "answered", "amd", "connected"},
    ),
    (
        "10b-sigterm-stop-start-reconnect.ami",
        "dialer-att-10002",
        "dialer-att-10002-far",
        Outcome.DROPPED,
        Party.SYSTEM,
        0,
        {"ringing", "answered"},
    ),
]


async def _replay(name: str, channel_id: str, other: str | None) -> list[CallChange]:
    changes: list[CallChange] = []

    async def on_call(change: CallChange) -> None:
        changes.append(change)

    async def on_session(change: SessionChange) -> None:
        pass

    tracker = CallTracker(on_call, on_session)
    tracker.track_call(1, channel_id, other)
    for message in transcripts.from_asterisk(name):
        if "Event" in message:
            await tracker.on_event(events.parse(message))
    return changes


@pytest.mark.parametrize(("name", "cid", "other", "outcome", "by", "cause", "seen"), CASES)
async def test_outcome_from_recorded_asterisk(
    name: str, cid: str, other: str | None, outcome: Outcome, by: Party, cause: int | None, seen: set[str]
) -> None:
    changes = await _replay(name, cid, other)
    milestones = [m for c in changes for m in c.milestones]
    assert milestones.count(Milestone.ENDED) == 1, milestones
    final = changes[-1].state
    assert final.outcome is outcome
    assert final.hangup_by is by
    if cause is not None:
        assert final.cause == cause
    assert {m.value for m in milestones} - {"channel", "ended"} == seen


async def test_amd_status_is_kept() -> None:
    changes = await _replay("03c-amd-machine-and-notsure.ami", "dialer-att-3003", "dialer-att-3003-far")
    assert changes[-1].state.amd_status == "MACHINE"


async def test_events_of_other_calls_do_not_leak_in() -> None:
    # 06f holds three calls on one link; tracking one must not see the others' endings early.
    changes = await _replay(
        "06f-local-busy-congestion-noanswer.ami", "dialer-att-6013", "dialer-att-6013-far"
    )
    ended = [c for c in changes if Milestone.ENDED in c.milestones]
    assert len(ended) == 1
    assert ended[0].state.outcome is Outcome.NO_ANSWER


async def test_operator_session_joins_and_leaves_bridge() -> None:
    sessions: list[SessionChange] = []

    async def on_call(change: CallChange) -> None:
        raise AssertionError("no calls tracked")

    async def on_session(change: SessionChange) -> None:
        sessions.append(change)

    tracker = CallTracker(on_call, on_session)
    tracker.track_session(7, "dialer-op-1001", "1001")
    for message in transcripts.from_asterisk("02-operator-session-confbridge.ami"):
        if "Event" in message:
            await tracker.on_event(events.parse(message))
    assert [s.entered.value for s in sessions] == ["ringing", "up", "joined", "ended"]
