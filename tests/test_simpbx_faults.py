"""Fault injection of the simulated PBX: dropped links, a frozen link, restart, stop; and a burst."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import pytest

from dialer.simpbx import Behaviour, SimConfig, SimulatedPbx
from dialer.simpbx.behaviour import Result
from dialer.simpbx.probe import AmiProbe

USER, SECRET = "dialer", "dialer-secret"


@pytest.fixture
async def pbx() -> AsyncIterator[SimulatedPbx]:
    sim = SimulatedPbx(SimConfig(port=0, time_scale=0.05, operator_answer_s=0.05))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def logged_in(pbx: SimulatedPbx) -> AmiProbe:
    probe = await AmiProbe.connect("127.0.0.1", pbx.port)
    assert (await probe.login(USER, SECRET)).name == "Success"
    return probe


async def originate(
    probe: AmiProbe, number: str, channel_id: str, context: str = "dialer-hold", timeout_ms: int = 2000
) -> str:
    return await probe.action(
        "Originate",
        ("Channel", f"PJSIP/{number}@trunk"),
        ("Context", context),
        ("Exten", "s" if context == "dialer-hold" else "1001"),
        ("Priority", "1"),
        ("Timeout", str(timeout_ms)),
        ("CallerID", '"City" <0312345678>'),
        ("Async", "true"),
        ("ChannelId", channel_id),
        ("Variable", f"DIALER_ATTEMPT={channel_id}"),
        ("Variable", "HOLDSEC=30"),
    )


async def test_drop_links_keeps_calls_and_their_later_events_reach_the_new_session(pbx: SimulatedPbx) -> None:
    pbx.script("0300000001", Behaviour("answer", ring_s=0.05, talk_s=0.6))
    probe = await logged_in(pbx)
    await originate(probe, "0300000001", "att-1")
    await probe.until(lambda m: m.is_event("DialEnd") and m.get("DialStatus") == "ANSWER")
    await pbx.drop_links()
    assert await probe.eof(within=2.0)
    await probe.close()
    assert [c.uniqueid for c in pbx.live_channels()] == ["att-1"]
    again = await logged_in(pbx)
    hangup = await again.until(lambda m: m.is_event("Hangup") and m.get("Uniqueid") == "att-1", within=3.0)
    assert hangup["Cause"] == "0"  # remote BYE
    assert not any(m.is_event("Shutdown") for m in again.log)
    await again.close()


async def test_freeze_is_a_half_open_link(pbx: SimulatedPbx) -> None:
    pbx.script("0300000002", Behaviour("busy", ring_s=0.2))
    probe = await logged_in(pbx)
    await originate(probe, "0300000002", "att-2")
    await probe.until(lambda m: m.is_event("DialState"))
    pbx.freeze(True)
    aid = await probe.action("Ping")
    with pytest.raises(TimeoutError):
        await probe.read(within=0.4)  # no Pong, and the busy outcome happens meanwhile
    assert pbx.live_channels() == []
    pbx.freeze(False)
    reply = await probe.response(aid, within=2.0)
    assert reply["Ping"] == "Pong"
    assert not any(m.is_event("Hangup") or m.is_event("OriginateResponse") for m in probe.log)
    aid = await probe.action("Ping")
    assert (await probe.response(aid))["Ping"] == "Pong"
    await probe.close()


async def test_restart_hangs_up_says_shutdown_refuses_then_boots_late(pbx: SimulatedPbx) -> None:
    pbx.script("0300000003", Behaviour("answer", ring_s=0.05))
    probe = await logged_in(pbx)
    await originate(probe, "0300000003", "att-3")
    await probe.until(lambda m: m.is_event("DialEnd"))
    restart = asyncio.create_task(pbx.restart(down_s=0.4))
    shutdown = await probe.until(lambda m: m.is_event("Shutdown"))
    assert shutdown.pairs == (
        ("Event", "Shutdown"),
        ("Privilege", "system,all"),
        ("Shutdown", "Cleanly"),
        ("Restart", "True"),
    )
    names = [(m.name, m.get("Cause")) for m in probe.log if m.get("Uniqueid") == "att-3"]
    assert ("SoftHangupRequest", "4") in names
    assert names[-1][0] == "Hangup"
    assert await probe.eof()
    await probe.close()
    await asyncio.sleep(0.05)
    with pytest.raises(ConnectionRefusedError):
        await AmiProbe.connect("127.0.0.1", pbx.port)
    await restart
    assert pbx.live_channels() == []
    again = await AmiProbe.connect("127.0.0.1", pbx.port)
    aid = await again.action("Login", ("Username", USER), ("Secret", SECRET))
    first = await again.read()
    assert first is not None
    assert (first.name, first.get("ActionID")) == ("Success", aid)
    booted = await again.until(lambda m: m.is_event("FullyBooted"))
    assert booted.keys() == ["Event", "Privilege", "Status", "Uptime", "LastReload"]
    assert booted["Uptime"] == "0"
    assert [m.name for m in again.log[:2]] == ["Success", "SuccessfulAuth"]
    await again.close()


async def test_stop_sends_shutdown_and_leaves_nothing_running() -> None:
    sim = SimulatedPbx(SimConfig(port=0, time_scale=0.05, operator_answer_s=0.05))
    await sim.start()
    sim.script("0300000004", Behaviour("answer", ring_s=0.01, talk_s=100.0))
    probe = await logged_in(sim)
    await originate(probe, "0300000004", "att-4")
    await originate(probe, "0399999999", "att-5")  # model callee, still ringing or in progress
    await probe.until(lambda m: m.is_event("DialEnd") and m.get("DestUniqueid") == "att-4")
    await sim.stop()
    shutdown = await probe.until(lambda m: m.is_event("Shutdown"))
    assert shutdown["Restart"] == "False"
    assert await probe.eof()
    await probe.close()
    assert sim.live_channels() == []
    assert asyncio.all_tasks() == {asyncio.current_task()}
    with pytest.raises(ConnectionRefusedError):
        await AmiProbe.connect("127.0.0.1", sim.port, within=1.0)


OUTCOMES: dict[Result, tuple[str, str, str | None, str | None]] = {
    "answer": ("Success", "4", "ANSWER", None),
    "machine": ("Success", "4", "ANSWER", None),
    "busy": ("Failure", "0", "BUSY", "17"),
    "congestion": ("Failure", "0", "CONGESTION", "34"),
    "noanswer": ("Failure", "3", None, "19"),
    "unreachable": ("Failure", "3", None, "19"),
}


async def test_a_burst_of_fifty_originates(pbx: SimulatedPbx) -> None:
    kinds = list(OUTCOMES)
    for i in range(50):
        kind = kinds[i % len(kinds)]
        pbx.script(f"03{i:08d}", Behaviour(kind, ring_s=0.05 + i * 0.002, talk_s=0.1, amd_s=0.05))
    probe = await logged_in(pbx)
    ops = await AmiProbe.connect("127.0.0.1", pbx.port)
    await ops.login(USER, SECRET)
    await ops.action(
        "Originate",
        ("Channel", "PJSIP/1001"),
        ("Context", "dialer-agent"),
        ("Exten", "1001"),
        ("Async", "true"),
    )
    await ops.until(lambda m: m.is_event("ConfbridgeJoin"))
    await ops.close()
    aids = {}
    for i in range(50):
        context = "dialer-connect" if (i // len(kinds)) % 2 == 0 else "dialer-hold"
        aids[await originate(probe, f"03{i:08d}", f"burst-{i}", context, timeout_ms=500)] = i
    ids = {f"burst-{i}" for i in range(50)}

    def finished() -> bool:
        hung = {m.get("Uniqueid") for m in probe.log if m.is_event("Hangup")}
        answered = {m.get("ActionID") for m in probe.log if m.is_event("OriginateResponse")}
        return ids <= hung and set(aids) <= answered

    while not finished():
        await probe.read(within=5.0)
    results = {
        aids[m["ActionID"]]: m for m in probe.log if m.is_event("OriginateResponse") and m["ActionID"] in aids
    }
    for i, msg in results.items():
        response, reason, dial_status, cause = OUTCOMES[kinds[i % len(kinds)]]
        assert (msg["Response"], msg["Reason"]) == (response, reason), i
        uid = f"burst-{i}"
        ends = [
            m.get("DialStatus") for m in probe.log if m.is_event("DialEnd") and m.get("DestUniqueid") == uid
        ]
        assert ends == ([dial_status] if dial_status else []), i
        (hangup,) = [m for m in probe.log if m.is_event("Hangup") and m.get("Uniqueid") == uid]
        if cause is not None:
            assert hangup["Cause"] == cause, i
    amd = Counter(
        m["AMDStatus"] for m in probe.log if m.is_event("UserEvent") and m.get("UserEvent") == "DialerAMD"
    )
    assert amd["MACHINE"] > 0
    assert amd["HUMAN"] > 0
    assert [c.name for c in pbx.live_channels()] == ["PJSIP/1001-00000000"]
    await probe.close()
