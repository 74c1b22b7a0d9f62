"""The AMI link (panoramisk underneath) against the simulated PBX and a hostile raw peer, over TCP."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from dialer.ami import events
from dialer.ami.link import AmiLink, LinkEvent, LinkStatus, OriginateRequest
from dialer.config import AmiSettings
from dialer.errors import AmiActionError, AmiAuthFailed, AmiUnreachable
from dialer.simpbx import Behaviour, SimulatedPbx
from tests.client import until


def _settings(port: int, **kw: object) -> AmiSettings:
    base = AmiSettings(
        host="127.0.0.1",
        port=port,
        username="dialer",
        secret="dialer-secret",
        ping_interval_s=0.5,
        ping_timeout_s=0.5,
        reconnect_min_s=0.1,
        action_timeout_s=2.0,
    )
    return replace(base, **kw)  # type: ignore[arg-type]


class Collector:
    def __init__(self) -> None:
        self.items: list[LinkEvent] = []
        self.changed = asyncio.Event()

    def __call__(self, event: LinkEvent) -> None:
        self.items.append(event)
        self.changed.set()

    async def wait_for(self, predicate, within: float = 5.0) -> LinkEvent:  # type: ignore[no-untyped-def]
        async with asyncio.timeout(within):
            while True:
                for item in self.items:
                    if predicate(item):
                        return item
                self.changed.clear()
                await self.changed.wait()


@pytest.fixture
async def link(sim: SimulatedPbx) -> AsyncIterator[tuple[AmiLink, Collector]]:
    ami = AmiLink(_settings(sim.port))
    seen = Collector()
    ami.subscribe(seen)
    await ami.start()
    yield ami, seen
    await ami.close()


def _originate(channel_id: str, number: str, timeout_ms: int = 30_000) -> OriginateRequest:
    return OriginateRequest(
        channel=f"PJSIP/{number}@trunk",
        context="dialer-hold",
        exten="s",
        channel_id=channel_id,
        caller_id="0312340001",
        timeout_ms=timeout_ms,
        variables={"DIALER_ATTEMPT": channel_id, "HOLDSEC": "1"},
    )


async def test_login_brings_the_link_up(link: tuple[AmiLink, Collector]) -> None:
    ami, seen = link
    assert ami.up
    await seen.wait_for(lambda e: isinstance(e, LinkStatus) and e.up)


async def test_wrong_secret_is_a_clear_error(sim: SimulatedPbx) -> None:
    ami = AmiLink(_settings(sim.port, secret="wrong"))
    with pytest.raises(AmiAuthFailed, match="refused AMI login for user 'dialer'"):
        await ami.start()
    await ami.close()


async def test_nothing_listening_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ami = AmiLink(_settings(port))
    with pytest.raises(AmiUnreachable, match=f"127.0.0.1:{port}"):
        await ami.start()
    await ami.close()


async def test_a_silent_peer_is_not_mistaken_for_asterisk() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ami = AmiLink(_settings(port, connect_timeout_s=0.5))
    try:
        with pytest.raises(AmiUnreachable, match="No AMI login answer"):
            await ami.start()
    finally:
        await ami.close()
        server.close()
        await server.wait_closed()


async def test_another_services_port_says_to_check_it_is_the_manager_port() -> None:
    """AMI_PORT pointed at, say, Asterisk's HTTP port (8088): it answers the login with an HTTP
    error and closes, before any AMI greeting (admin QA: only "connection lost: EOF" was said)."""

    async def http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(100)
        writer.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()
        await writer.wait_closed()

    server = await asyncio.start_server(http, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    ami = AmiLink(_settings(port, connect_timeout_s=2))
    try:
        with pytest.raises(AmiUnreachable, match="manager port"):
            await ami.start()
    finally:
        await ami.close()
        server.close()
        await server.wait_closed()


async def test_originate_events_arrive_typed_and_a_raising_handler_harms_nothing(
    sim: SimulatedPbx, link: tuple[AmiLink, Collector]
) -> None:
    ami, seen = link

    def broken(event: LinkEvent) -> None:
        raise RuntimeError("a buggy subscriber")

    ami.subscribe(broken)
    sim.script("0355550101", Behaviour("busy", ring_s=0.2))
    await ami.originate(_originate("dlr-a101", "0355550101"))
    hangup = await seen.wait_for(lambda e: isinstance(e, events.Hangup) and e.uniqueid == "dlr-a101")
    assert isinstance(hangup, events.Hangup)
    assert hangup.cause == 17
    await seen.wait_for(lambda e: isinstance(e, events.OriginateResponse) and e.action_id == "dlr-a101")
    # the connection survived the raising subscriber: another call goes through
    sim.script("0355550102", Behaviour("congestion"))
    await ami.originate(_originate("dlr-a102", "0355550102"))
    await seen.wait_for(lambda e: isinstance(e, events.Hangup) and e.uniqueid == "dlr-a102")
    assert ami.up


async def test_an_originate_is_never_replayed_after_a_reconnect(
    sim: SimulatedPbx, link: tuple[AmiLink, Collector]
) -> None:
    ami, seen = link
    sim.script("0355550103", Behaviour("noanswer"))
    sim.freeze(True)  # the Originate is written but never answered: panoramisk would queue it again
    with pytest.raises(AmiActionError, match="no answer to Originate") as unanswered:
        await ami.originate(_originate("dlr-a103", "0355550103"))
    assert unanswered.value.definite is False  # it may have been carried out
    await seen.wait_for(lambda e: isinstance(e, LinkStatus) and not e.up)
    await sim.drop_links()
    sim.freeze(False)
    seen.items.clear()
    await seen.wait_for(lambda e: isinstance(e, LinkStatus) and e.up)
    await asyncio.sleep(0.3)  # FullyBooted has come and gone: that is when panoramisk replays
    assert sim.actions("Originate") == []


async def test_a_half_open_link_is_noticed_by_our_ping_deadline(
    sim: SimulatedPbx, link: tuple[AmiLink, Collector]
) -> None:
    ami, seen = link
    sim.freeze(True)
    down = await seen.wait_for(lambda e: isinstance(e, LinkStatus) and not e.up, within=3.0)
    assert isinstance(down, LinkStatus)
    assert "Ping" in down.reason
    sim.freeze(False)
    await sim.drop_links()
    seen.items.clear()
    await seen.wait_for(lambda e: isinstance(e, LinkStatus) and e.up, within=5.0)
    assert ami.up


async def test_hangup_of_an_unknown_channel_says_so(link: tuple[AmiLink, Collector]) -> None:
    ami, _ = link
    assert await ami.hangup("dlr-a-none") is False


# ---- a hostile peer: garbage, frames without Event/Response, UTF-8 split across reads ----------
@contextlib.asynccontextmanager
async def _raw_peer(script: list[bytes]) -> AsyncIterator[int]:
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        writer.write(b"Asterisk Call Manager/11.0.0\r\n")
        login = await reader.readuntil(b"\r\n\r\n")
        action_id = next(
            line.split(b": ", 1)[1] for line in login.split(b"\r\n") if line.lower().startswith(b"actionid")
        )
        writer.write(
            b"Response: Success\r\nActionID: " + action_id + b"\r\nMessage: Authentication accepted\r\n\r\n"
        )
        for chunk in script:
            writer.write(chunk)
            await writer.drain()
            await asyncio.sleep(0.02)
        with contextlib.suppress(ConnectionError):
            await reader.read()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await server.wait_closed()


async def test_malformed_frames_are_skipped_and_the_link_lives() -> None:
    name = "見本 太郎".encode()
    event = (
        b"Event: Newchannel\r\nPrivilege: call,all\r\nChannel: PJSIP/trunk-00000001\r\n"
        b"CallerIDName: " + name + b"\r\nUniqueid: dlr-a9\r\nLinkedid: dlr-a9\r\n\r\n"
    )
    cut = event.index(name) + 4  # inside a multi-byte character
    script = [
        b"\x00\xff\xfe garbage \x80\x81\r\n\r\n",
        b"NoColonHere\r\nStill nothing\r\n\r\n",
        b"Event\r\n\r\n",
        event[:cut],
        event[cut:],
    ]
    async with _raw_peer(script) as port:
        ami = AmiLink(_settings(port, ping_interval_s=30.0))
        seen = Collector()
        ami.subscribe(seen)
        try:
            await ami.start()
            got = await seen.wait_for(lambda e: isinstance(e, events.Newchannel))
            assert isinstance(got, events.Newchannel)
            assert got.uniqueid == "dlr-a9"
            assert ami.up
        finally:
            await ami.close()


async def test_an_originate_on_a_down_link_is_definitely_not_sent(sim: SimulatedPbx) -> None:
    ami = AmiLink(_settings(sim.port))
    await ami.start()
    await ami.close()
    with pytest.raises(AmiActionError, match="is down") as refused:
        await ami.originate(_originate("dlr-a104", "0355550104"))
    assert refused.value.definite is True
    assert sim.actions("Originate") == []


async def test_channel_exists(sim: SimulatedPbx, link: tuple[AmiLink, Collector]) -> None:
    ami, seen = link
    sim.script("0355550105", Behaviour("answer", ring_s=0.1))
    await ami.originate(_originate("dlr-a105", "0355550105"))
    await seen.wait_for(lambda e: isinstance(e, events.Newstate) and e.state_desc == "Up")
    assert await ami.channel_exists("dlr-a105") is True
    assert await ami.channel_exists("dlr-a-never") is False


async def test_callers_asking_at_once_share_one_channel_listing(
    sim: SimulatedPbx, link: tuple[AmiLink, Collector]
) -> None:
    """Pages coming back together after a restart each look for their operator's phone: one
    CoreShowChannels serves all who ask while it is on its way; a later caller gets a new one."""
    ami, seen = link
    sim.script("0355550106", Behaviour("answer", ring_s=0.1))
    await ami.originate(_originate("dlr-a106", "0355550106"))
    await seen.wait_for(lambda e: isinstance(e, events.Newstate) and e.state_desc == "Up")
    before = len(sim.actions("CoreShowChannels"))
    listings = await asyncio.gather(*(ami.channel_list() for _ in range(20)))
    assert len(sim.actions("CoreShowChannels")) == before + 1
    assert all("dlr-a106" in listing for listing in listings)
    listings[0].clear()  # each caller's own dict: one emptying it takes nothing from another
    assert "dlr-a106" in listings[1]

    sim.script("0355550107", Behaviour("answer", ring_s=0.1))
    await ami.originate(_originate("dlr-a107", "0355550107"))
    await seen.wait_for(lambda e: isinstance(e, events.Newstate) and e.uniqueid == "dlr-a107")
    assert {"dlr-a106", "dlr-a107"} <= set(await ami.channel_list())  # asked anew, not the old one
    assert len(sim.actions("CoreShowChannels")) == before + 2

    # a caller that gives up (its page closed) leaves the listing to the others waiting for it
    first = asyncio.ensure_future(ami.channel_list())
    second = asyncio.ensure_future(ami.channel_list())
    await asyncio.sleep(0)
    first.cancel()
    assert "dlr-a107" in await second
    assert first.cancelled()
    assert len(sim.actions("CoreShowChannels")) == before + 3


async def test_a_caller_never_gets_a_listing_asked_for_before_it_asked(
    sim: SimulatedPbx, link: tuple[AmiLink, Collector]
) -> None:
    """A call placed while a listing is on its way is not in it; who asks after the call was placed
    (the checks after a reconnect: what is not listed is taken for lost) gets the next listing."""
    ami, _ = link
    sim.set_latency(0.3)  # every answer late, in order: the first listing is long on its way
    sim.script("0355550108", Behaviour("answer", ring_s=5.0))
    before = len(sim.actions("CoreShowChannels"))
    asked_first = asyncio.ensure_future(ami.channel_list())
    await until(lambda: len(sim.actions("CoreShowChannels")) == before + 1)
    placed = asyncio.ensure_future(ami.originate(_originate("dlr-a108", "0355550108")))
    await until(lambda: len(sim.actions("Originate")) == 1)
    asked_after = [asyncio.ensure_future(ami.channel_list()) for _ in range(5)]
    first, *after = [await t for t in (asked_first, *asked_after)]
    await placed
    assert "dlr-a108" not in first
    assert all("dlr-a108" in listing for listing in after)
    assert len(sim.actions("CoreShowChannels")) == before + 2  # the five shared the next one


async def test_a_burst_of_two_hundred_calls_is_followed_to_the_last_event(
    sim: SimulatedPbx, link: tuple[AmiLink, Collector]
) -> None:
    """Thousands of events within seconds through one link, interleaved across 200 calls: every
    call ends with the outcome its callee was scripted for (the tracker sees no event twice or
    out of place)."""
    from dialer.calls.state import Outcome
    from dialer.calls.tracker import CallChange, CallTracker, SessionChange

    ami, seen = link
    scripts = {
        "answer": (Behaviour("answer", ring_s=0.05, talk_s=0.2, amd_s=0.05), Outcome.DROPPED),
        "busy": (Behaviour("busy", ring_s=0.05), Outcome.BUSY),
        "congestion": (Behaviour("congestion", ring_s=0.0), Outcome.CONGESTION),
        "noanswer": (Behaviour("noanswer", ring_s=0.05), Outcome.NO_ANSWER),
    }
    ended: dict[int, Outcome] = {}
    done = asyncio.Event()

    async def on_call(change: CallChange) -> None:
        if change.state.outcome is not None:
            ended[change.attempt_id] = change.state.outcome
            if len(ended) == 200:
                done.set()

    async def on_session(change: SessionChange) -> None:
        return None

    tracker = CallTracker(on_call, on_session)
    ami.subscribe(tracker.on_event)
    expected: dict[int, Outcome] = {}
    for i in range(200):
        kind = list(scripts)[i % 4]
        behaviour, outcome = scripts[kind]
        number = f"035556{i:04d}"
        sim.script(number, behaviour)
        expected[i] = outcome
        tracker.track_call(i, f"burst-{i}")
        await ami.originate(_originate(f"burst-{i}", number, timeout_ms=1_000))
    await asyncio.wait_for(done.wait(), 60)
    assert ended == expected
    assert len([e for e in seen.items if not isinstance(e, LinkStatus)]) > 3_000
