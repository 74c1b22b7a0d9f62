"""Replay recorded Asterisk 22 AMI transcripts against the simulated PBX and compare.

For each ``.ami`` file the client's ``>>>`` messages are sent to the simulator over a raw socket,
each one after the simulator has produced as many *significant* messages as Asterisk had before
it. Significant = every Response, and the events a dialer uses (``SIG_EVENTS``). The compared
signature of a message is its first line plus DialStatus/Cause/Reason/Response/UserEvent/
AMDStatus/Message (and ChannelStateDesc for Newstate). Long waits are scaled down: ring times via
the scripted Behaviour, dialplan waits via ``time_scale``, no-answer via the Originate Timeout.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

import pytest

from dialer.simpbx import Behaviour, SimConfig, SimulatedPbx
from dialer.simpbx.probe import AmiProbe, Msg
from tests import transcripts

SIG_EVENTS = {
    "Newchannel", "NewCallerid", "NewConnectedLine", "LocalBridge", "DialBegin", "DialState", "DialEnd",
    "Newstate", "OriginateResponse", "HangupRequest", "SoftHangupRequest", "Hangup", "BridgeCreate",
    "BridgeEnter", "BridgeLeave", "BridgeDestroy", "ConfbridgeStart", "ConfbridgeJoin", "ConfbridgeLeave",
    "ConfbridgeEnd", "UserEvent", "FullyBooted", "Shutdown", "ChanSpyStart", "ChanSpyStop",
}  # fmt: skip
SIG_FIELDS = ("DialStatus", "Cause", "Reason", "Response", "UserEvent", "AMDStatus", "Message")
ORDER_CHECKED = ("Newchannel", "Hangup", "DialEnd", "OriginateResponse")
NOISE = ("Newexten", "VarSet", "DeviceStateChange")

Sig = tuple[str, ...]


# ----- the recorded transcripts (read by tests/transcripts.py) ------------------------------
@dataclass
class Sent:
    msg: Msg
    needed: int  # significant server messages recorded before it on this connection


@dataclass
class Connection:
    sent: list[Sent] = field(default_factory=list)
    received: list[Msg] = field(default_factory=list)


def read_transcript(name: str) -> list[Connection]:
    conns = []
    for blocks in transcripts.connections(name):
        conn = Connection()
        for block in blocks:
            msg = Msg(tuple(block.headers()))
            if block.direction == ">>>":
                needed = sum(1 for m in conn.received if signature(m) is not None)
                conn.sent.append(Sent(msg, needed))
            else:
                conn.received.append(msg)
        conns.append(conn)
    return conns


def signature(msg: Msg) -> Sig | None:
    if msg.kind == "Response" or (msg.kind == "Event" and msg.name in SIG_EVENTS):
        sig = [msg.kind, msg.name]
        if msg.name == "Newstate":
            sig.append(f"ChannelStateDesc={msg.get('ChannelStateDesc')}")
        sig += [f"{k}={msg.get(k)}" for k in SIG_FIELDS if k != msg.kind and msg.get(k) is not None]
        return tuple(sig)
    return None


def sigs(msgs: list[Msg], drop: frozenset[str] = frozenset()) -> list[Sig]:
    out = [s for s in map(signature, msgs) if s is not None and s[1] not in drop]
    # ConfbridgeStart and BridgeEnter come in either order (README fact 5): normalise.
    for i in range(len(out) - 1):
        if out[i][1] == "BridgeEnter" and out[i + 1][1] == "ConfbridgeStart":
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def per_channel(msgs: list[Msg]) -> dict[str, list[Sig]]:
    """Signatures grouped by the channel (Uniqueid/DestUniqueid) or the bridge they concern."""
    groups: dict[str, list[Sig]] = {}
    for msg in msgs:
        sig = signature(msg)
        if sig is None or sig[1] == "OriginateResponse":
            continue
        key = msg.get("Uniqueid") or msg.get("DestUniqueid") or msg.get("LocalOneUniqueid")
        key = key or ("bridge" if msg.get("BridgeUniqueid") else "session")
        groups.setdefault(key, []).append(sig)
    return groups


# ----- replaying ------------------------------------------------------------------------------
@dataclass
class Replay:
    received: list[Msg]
    sent_at: list[float]
    received_at: list[float]


def _rewrite(msg: Msg, rewrites: dict[str, str], names: dict[str, str]) -> list[tuple[str, str]]:
    """Originate headers replaced by key (`rewrites`), and channel names the recording's Asterisk
    gave (numbered by its own history) replaced by the simulator's (`names`, old -> new)."""
    out = []
    for k, v in msg.pairs:
        if msg.name == "Originate":
            v = rewrites.get(k, v)
            for old, new in names.items():
                v = v.replace(old, new)
        out.append((k, v))
    return out


async def replay(
    pbx: SimulatedPbx,
    conn: Connection,
    rewrites: dict[str, str] | None = None,
    names: dict[str, str] | None = None,
) -> Replay:
    loop = asyncio.get_running_loop()
    probe = await AmiProbe.connect("127.0.0.1", pbx.port)
    assert probe.banner_ok, probe.banner
    got: list[Msg] = []
    got_at: list[float] = []
    sent_at: list[float] = []
    count = 0

    async def pull(within: float) -> bool:
        nonlocal count
        msg = await probe.read(within)
        if msg is None:
            return False
        got.append(msg)
        got_at.append(loop.time())
        count += signature(msg) is not None
        return True

    try:
        for item in conn.sent:
            while count < item.needed and await pull(5.0):
                pass
            await probe.send(_rewrite(item.msg, rewrites or {}, names or {}))
            sent_at.append(loop.time())
        while await pull(5.0):
            pass
    finally:
        await probe.close()
    return Replay(got, sent_at, got_at)


def assert_header_orders(sim: list[Msg], rec: list[Msg]) -> None:
    rec_responses = {m.get("ActionID"): m.keys() for m in rec if m.kind == "Response"}
    for msg in (m for m in sim if m.kind == "Response"):
        assert msg.keys() == rec_responses[msg.get("ActionID")], msg
    for name in ORDER_CHECKED:
        ours = [m.keys() for m in sim if m.is_event(name)]
        theirs = [m.keys() for m in rec if m.is_event(name)]
        assert len(ours) == len(theirs), name
        assert ours == theirs, name


def assert_noise(sim: list[Msg], rec: list[Msg]) -> None:
    """The dialplan/device noise is there too. VarSet and DeviceStateChange come as often as
    Asterisk sent them; Newexten only roughly, because the simulator runs the product's dialplan
    (asterisk-conf/extensions.conf), whose steps differ a little from the recording dialplan."""
    ours = Counter(m.name for m in sim if m.kind == "Event" and m.name in NOISE)
    theirs = Counter(m.name for m in rec if m.kind == "Event" and m.name in NOISE)
    assert ours["VarSet"] == theirs["VarSet"]
    assert ours["DeviceStateChange"] == theirs["DeviceStateChange"]
    assert abs(ours["Newexten"] - theirs["Newexten"]) <= 2, (ours, theirs)


def pbx_for(time_scale: float = 1.0, operator_answer_s: float = 0.5) -> SimulatedPbx:
    users = {"amitest": "amitest-secret"}  # the recordings' AMI user
    return SimulatedPbx(
        SimConfig(port=0, users=users, time_scale=time_scale, operator_answer_s=operator_answer_s)
    )


async def run_file(
    name: str, pbx: SimulatedPbx, rewrites: dict[str, str] | None = None, names: dict[str, str] | None = None
) -> tuple[Replay, Connection]:
    (conn,) = read_transcript(name)
    await pbx.start()
    try:
        return await replay(pbx, conn, rewrites, names), conn
    finally:
        await pbx.stop()


# ----- login --------------------------------------------------------------------------------------
async def test_01_login_ping_coresettings() -> None:
    conn = read_transcript("01-login-ping-coresettings.ami")[0]
    pbx = pbx_for()
    await pbx.start()
    try:
        got = await replay(pbx, conn)
    finally:
        await pbx.stop()
    assert sigs(got.received) == sigs(conn.received)
    assert_header_orders(got.received, conn.received)
    booted = next(m for m in got.received if m.is_event("FullyBooted"))
    assert booted.keys() == next(m for m in conn.received if m.is_event("FullyBooted")).keys()
    settings = next(m for m in got.received if m.get("AsteriskVersion"))
    assert settings["AsteriskVersion"] == "22.10.1"


async def test_01b_wrong_secret_is_refused_after_a_second_then_closed() -> None:
    got, conn = await run_file("01b-login-failed.ami", pbx_for())
    assert (
        sigs(got.received) == sigs(conn.received) == [("Response", "Error", "Message=Authentication failed")]
    )
    assert got.received_at[0] - got.sent_at[0] >= 0.9
    assert_header_orders(got.received, conn.received)


async def test_01c_permission_denied_then_events_off() -> None:
    got, conn = await run_file("01c-unauthenticated-then-events-off.ami", pbx_for())
    assert sigs(got.received) == sigs(conn.received)
    assert not any(m.kind == "Event" for m in got.received)
    assert_header_orders(got.received, conn.received)


# ----- SIP cases ------------------------------------------------------------------------------------
SIP_CASES = {
    "06a-sip-busy-486.ami": (Behaviour("busy", ring_s=0.1), {}),
    "06b-sip-noanswer-timeout.ami": (Behaviour("noanswer"), {"Timeout": "300"}),
    "06c-sip-congestion-503.ami": (Behaviour("congestion"), {}),
    "06d-sip-answer-remote-bye.ami": (Behaviour("answer", ring_s=0.1, talk_s=0.3), {}),
    "06e-sip-no-response-timeout.ami": (Behaviour("unreachable"), {"Timeout": "300"}),
}


@pytest.mark.parametrize("name", sorted(SIP_CASES))
async def test_06_sip_outcomes(name: str) -> None:
    behaviour, rewrites = SIP_CASES[name]
    pbx = pbx_for()
    pbx.script("sipp-uas", behaviour)
    got, conn = await run_file(name, pbx, rewrites)
    assert sigs(got.received) == sigs(conn.received)
    assert_header_orders(got.received, conn.received)
    assert_noise(got.received, conn.received)
    assert pbx.live_channels() == []


async def test_06f_local_busy_congestion_noanswer() -> None:
    got, conn = await run_file(
        "06f-local-busy-congestion-noanswer.ami", pbx_for(time_scale=0.05), {"Timeout": "300"}
    )
    assert sigs(got.received) == sigs(conn.received)
    assert_header_orders(got.received, conn.received)
    assert_noise(got.received, conn.received)


async def test_04_abandon_when_nobody_is_in_the_bridge() -> None:
    got, conn = await run_file("04-abandon-no-operator.ami", pbx_for(time_scale=0.05))
    assert sigs(got.received) == sigs(conn.received)
    assert_header_orders(got.received, conn.received)
    assert_noise(got.received, conn.received)


# ----- ConfBridge files: OriginateResponse has no fixed place, compare without it ---------------------
def assert_bridge_file(got: Replay, conn: Connection) -> None:
    drop = frozenset({"OriginateResponse"})
    ours = [m for m in got.received if m.is_event("OriginateResponse")]
    theirs = [m for m in conn.received if m.is_event("OriginateResponse")]
    assert [signature(m) for m in ours] == [signature(m) for m in theirs]
    assert per_channel(got.received) == per_channel(conn.received)
    assert Counter(sigs(got.received, drop)) == Counter(sigs(conn.received, drop))
    assert_noise(got.received, conn.received)


async def test_03_predictive_call_through_amd_into_the_operators_bridge() -> None:
    pbx = pbx_for(time_scale=0.05, operator_answer_s=0.02)
    got, conn = await run_file("03-predictive-amd-confbridge.ami", pbx)
    assert sigs(got.received, frozenset({"OriginateResponse"})) == sigs(
        conn.received, frozenset({"OriginateResponse"})
    )
    assert_bridge_file(got, conn)
    assert_header_orders(got.received, conn.received)


async def test_02_operator_session_in_confbridge() -> None:
    # The phone-hangup teardown interleaves two threads; 02 and 03 recorded different orders,
    # the simulator follows 03, so 02 is compared channel by channel.
    pbx = pbx_for(time_scale=0.05, operator_answer_s=0.02)
    got, conn = await run_file("02-operator-session-confbridge.ami", pbx)
    assert_bridge_file(got, conn)
    rooms = next(m for m in got.received if m.is_event("ConfbridgeListRooms"))
    assert rooms.keys() == next(m for m in conn.received if m.is_event("ConfbridgeListRooms")).keys()
    member = next(m for m in got.received if m.is_event("ConfbridgeList"))
    assert member.keys() == next(m for m in conn.received if m.is_event("ConfbridgeList")).keys()


async def test_08_a_supervisor_listens_in_with_chanspy() -> None:
    pbx = pbx_for(time_scale=0.05, operator_answer_s=0.02)
    # The supervisor's Originate names the operator's channel as Asterisk numbered it then.
    names = {"Local/1001@dialer-phone-00000019;1": "Local/1001@dialer-phone-00000000;1"}
    got, conn = await run_file("08-chanspy-supervisor.ami", pbx, names=names)
    spy = ("ChanSpyStart", "ChanSpyStop")
    ours = [m for m in got.received if m.kind == "Event" and m.name in spy]
    theirs = [m for m in conn.received if m.kind == "Event" and m.name in spy]
    assert [m.name for m in ours] == [m.name for m in theirs] == list(spy)
    assert [m.keys() for m in ours] == [m.keys() for m in theirs]
    for o, t in zip(ours, theirs, strict=True):
        assert (o.get("SpyerUniqueid"), o.get("SpyeeUniqueid")) == (
            t.get("SpyerUniqueid"),
            t.get("SpyeeUniqueid"),
        )
        assert (o.get("SpyerContext"), o.get("SpyerPriority")) == (
            t.get("SpyerContext"),
            t.get("SpyerPriority"),
        )
    # The operator's teardown at the end interleaves two threads (see 02): compared as multisets.
    ours_by, theirs_by = per_channel(got.received), per_channel(conn.received)
    assert ours_by.keys() == theirs_by.keys()
    for key in ours_by:
        assert Counter(ours_by[key]) == Counter(theirs_by[key]), key
    for key in ("dialer-sup-9001", "dialer-sup-9001-phone"):  # the supervisor's legs: in order
        assert ours_by[key] == theirs_by[key], key
    assert_noise(got.received, conn.received)
    assert_header_orders(got.received, conn.received)
