"""The simulated PBX's AMI wire behaviour: framing, login rules, robustness against bad input."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from dialer.simpbx import SimConfig, SimulatedPbx
from dialer.simpbx.probe import AmiProbe
from dialer.simpbx.wire import FrameReader, FrameTooLong, encode, to_action

USER, SECRET = "dialer", "dialer-secret"


@pytest.fixture
async def pbx() -> AsyncIterator[SimulatedPbx]:
    sim = SimulatedPbx(SimConfig(port=0, failed_login_delay_s=0.1))
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


async def connect(pbx: SimulatedPbx) -> AmiProbe:
    return await AmiProbe.connect("127.0.0.1", pbx.port)


async def logged_in(pbx: SimulatedPbx, events: str | None = None) -> AmiProbe:
    probe = await connect(pbx)
    reply = await probe.login(USER, SECRET, events)
    assert reply.name == "Success"
    return probe


async def assert_serves(pbx: SimulatedPbx) -> None:
    """A fresh client can still log in and ping."""
    probe = await logged_in(pbx)
    aid = await probe.action("Ping")
    assert (await probe.response(aid))["Ping"] == "Pong"
    await probe.close()


# ----- the codec on its own ---------------------------------------------------------------------
def test_encode_is_crlf_framed_and_keeps_empty_values() -> None:
    assert (
        encode([("Response", "Success"), ("AccountCode", "")])
        == b"Response: Success\r\nAccountCode: \r\n\r\n"
    )


def test_reader_splits_frames_across_chunks_and_line_endings() -> None:
    reader = FrameReader()
    assert reader.feed(b"Action: Ping\r\nActionID: 1\r") == []
    assert reader.feed(b"\n\r\naction: ping\n\n\r\n\r\n") == [
        [("Action", "Ping"), ("ActionID", "1")],
        [("action", "ping")],
    ]


def test_reader_collects_repeated_keys_case_insensitively() -> None:
    (frame,) = FrameReader().feed(b"Action: Originate\r\nVariable: A=1\r\nvariable: B=2\r\n\r\n")
    assert to_action(frame) == {"Action": "Originate", "Variable": ["A=1", "B=2"]}


def test_reader_refuses_a_runaway_frame() -> None:
    reader = FrameReader(limit=1024)
    with pytest.raises(FrameTooLong):
        reader.feed(b"X-Junk: " + b"a" * 2000)


# ----- bytes on the socket ----------------------------------------------------------------------
async def test_banner_then_exact_response_bytes(pbx: SimulatedPbx) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", pbx.port)
    try:
        assert await reader.readline() == b"Asterisk Call Manager/11.0.0\r\n"
        writer.write(b"Action: Login\r\nActionID: a1\r\nUsername: dialer\r\nSecret: dialer-secret\r\n\r\n")
        block = await reader.readuntil(b"\r\n\r\n")
        assert block == b"Response: Success\r\nActionID: a1\r\nMessage: Authentication accepted\r\n\r\n"
        booted = await reader.readuntil(b"\r\n\r\n")
        assert booted.startswith(b"Event: FullyBooted\r\nPrivilege: system,all\r\nUptime: ")
    finally:
        writer.close()
        await writer.wait_closed()


async def test_bare_lf_frames_and_case_insensitive_keys(pbx: SimulatedPbx) -> None:
    probe = await logged_in(pbx)
    await probe.send_raw(b"action: PING\nactionid: lf-1\n\n")
    reply = await probe.response("lf-1")
    assert reply.keys() == ["Response", "ActionID", "Ping", "Timestamp"]
    await probe.close()


async def test_action_without_action_header(pbx: SimulatedPbx) -> None:
    probe = await logged_in(pbx)
    await probe.send([("ActionID", "x1"), ("Channel", "PJSIP/1")])
    reply = await probe.response("x1")
    assert (reply.name, reply["Message"]) == ("Error", "Missing action in request")
    await probe.close()


async def test_unknown_action_gets_asterisk_22_message(pbx: SimulatedPbx) -> None:
    probe = await logged_in(pbx)
    aid = await probe.action("FlyToTheMoon")
    reply = await probe.response(aid)
    assert reply["Message"] == (
        "Invalid/unknown command: FlyToTheMoon. Use Action: ListCommands to show available commands."
    )
    await probe.close()


async def test_garbage_and_binary_do_not_hurt_the_server(pbx: SimulatedPbx) -> None:
    probe = await logged_in(pbx)
    await probe.send_raw(b"\x00\xff\xfe garbage \x81\x82 no colon here\r\n\x07\x08:\r\n\r\n")
    reply = await probe.until(lambda m: m.kind == "Response")
    assert reply["Message"] == "Missing action in request"
    aid = await probe.action("Ping")
    assert (await probe.response(aid))["Ping"] == "Pong"
    await probe.close()
    await assert_serves(pbx)


async def test_a_one_megabyte_header_drops_only_that_client(pbx: SimulatedPbx) -> None:
    other = await logged_in(pbx)
    probe = await logged_in(pbx)
    probe.writer.write(b"Action: Ping\r\nX-Huge: " + b"A" * (1024 * 1024) + b"\r\n\r\n")
    assert await probe.eof(within=5.0)
    await probe.close()
    aid = await other.action("Ping")
    assert (await other.response(aid))["Ping"] == "Pong"
    await other.close()
    await assert_serves(pbx)


async def test_truncated_frame_then_eof(pbx: SimulatedPbx) -> None:
    probe = await logged_in(pbx)
    await probe.send_raw(b"Action: Originate\r\nChannel: PJSIP/1001\r\nCont")
    await probe.close()
    await asyncio.sleep(0.05)
    assert pbx.sessions == set()
    await assert_serves(pbx)


# ----- login rules -----------------------------------------------------------------------------------
async def test_action_before_login_is_denied_and_the_link_stays(pbx: SimulatedPbx) -> None:
    probe = await connect(pbx)
    aid = await probe.action("Ping")
    reply = await probe.response(aid)
    assert (reply.name, reply["Message"]) == ("Error", "Permission denied")
    assert (await probe.login(USER, SECRET)).name == "Success"
    await probe.close()


@pytest.mark.parametrize(("user", "secret"), [(USER, "wrong"), ("nobody", SECRET)])
async def test_bad_login_waits_then_closes(pbx: SimulatedPbx, user: str, secret: str) -> None:
    watcher = await logged_in(pbx)
    probe = await connect(pbx)
    loop = asyncio.get_running_loop()
    start = loop.time()
    reply = await probe.login(user, secret)
    assert (reply.name, reply["Message"]) == ("Error", "Authentication failed")
    assert loop.time() - start >= 0.09
    assert await probe.eof()
    await probe.close()
    security = await watcher.until(lambda m: m.is_event() and m.name.startswith("Invalid"))
    assert security.name == ("InvalidPassword" if user == USER else "InvalidAccountID")
    await watcher.close()


async def test_events_off_gets_no_events(pbx: SimulatedPbx) -> None:
    quiet = await logged_in(pbx, events="off")
    loud = await logged_in(pbx)
    aid = await loud.action("UserEvent", ("UserEvent", "Hello"), ("Who", "me"))
    await loud.response(aid)
    event = await loud.until(lambda m: m.is_event("UserEvent"))
    assert event.pairs == (
        ("Event", "UserEvent"),
        ("Privilege", "user,all"),
        ("UserEvent", "Hello"),
        ("Who", "me"),
    )
    aid = await quiet.action("Ping")
    reply = await quiet.read()
    assert reply is not None
    assert reply.get("ActionID") == aid
    await quiet.close()
    await loud.close()


async def test_logoff_says_goodbye_and_closes(pbx: SimulatedPbx) -> None:
    probe = await logged_in(pbx)
    aid = await probe.action("Logoff")
    reply = await probe.response(aid)
    assert (reply.name, reply["Message"]) == ("Goodbye", "Thanks for all the fish.")
    assert await probe.eof()
    await probe.close()


async def test_received_actions_are_recorded(pbx: SimulatedPbx) -> None:
    probe = await logged_in(pbx)
    await probe.send([("Action", "Setvar"), ("Variable", "A"), ("Value", "1"), ("variable", "B")])
    await probe.until(lambda m: m.kind == "Response")
    (setvar,) = pbx.actions("setvar")
    assert setvar["Variable"] == ["A", "B"]
    assert [a["Action"] for a in pbx.received] == ["Login", "Setvar"]
    await probe.close()


async def test_port_in_use_raises(pbx: SimulatedPbx) -> None:
    second = SimulatedPbx(SimConfig(port=pbx.port))
    with pytest.raises(OSError, match=r"(?i)address already in use"):
        await second.start()
