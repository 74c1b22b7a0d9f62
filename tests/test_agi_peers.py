"""Who may talk to the FastAGI service, and what a peer that misbehaves can do: this machine and the
Asterisk servers only; a broken, silent or cut-off peer harms nothing (agi/protocol.py)."""

from __future__ import annotations

import asyncio
import ipaddress
from dataclasses import replace

import asyncpg
import pytest

from agi.protocol import LOOPBACK, FastAgiServer, Peers, peers_for
from agi.routes import Routes
from dialer import runtime
from dialer.config import AmiSettings, Settings
from dialer.simpbx import SimulatedPbx
from tests import factory
from tests.fake_agi import NHI_LINE, fake_asterisk


async def test_only_asterisk_and_this_machine_may_use_the_service(
    pool: asyncpg.Pool, app_pool: asyncpg.Pool, lines: int
) -> None:
    await factory.household(pool, lines, "0355550101")
    pbx_elsewhere = Peers((ipaddress.ip_network("192.0.2.0/24"),))
    server = FastAgiServer(Routes(app_pool).table(), "127.0.0.1", 0, peers=pbx_elsewhere)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        writer.write(
            f"agi_network_script: inbound\nagi_callerid: 0355550101\nagi_arg_1: {NHI_LINE}\n\n".encode()
        )
        try:
            async with asyncio.timeout(10):
                answered = await reader.read()  # not one command: closed at once
        except ConnectionResetError:
            answered = b""
        finally:
            writer.close()
        assert answered == b""
    finally:
        await server.close()
    resolved = await peers_for(["localhost", "nosuch.invalid"], (ipaddress.ip_network("192.0.2.0/24"),))
    assert resolved.allow("192.0.2.7")
    assert resolved.allow("127.0.0.1")
    assert not resolved.allow("198.51.100.1")


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("127.0.0.1", True),
        ("::1", True),
        ("10.0.0.5", True),
        ("::ffff:10.0.0.5", True),  # an IPv4 peer on a dual-stack socket
        ("10.0.1.9", True),
        ("10.0.2.9", False),
        ("fe80::1%eth0", False),
        ("", False),
        ("pbx.example", False),
    ],
)
def test_which_peers_may_connect(address: str, allowed: bool) -> None:
    peers = Peers((*LOOPBACK, ipaddress.ip_network("10.0.0.5/32"), ipaddress.ip_network("10.0.1.0/24")))
    assert peers.allow(address) is allowed


@pytest.mark.parametrize(("agi_host", "warned"), [("127.0.0.1", ["pbx2"]), ("0.0.0.0", [])])
async def test_an_asterisk_elsewhere_that_cannot_reach_the_service_is_said_at_start(
    settings: Settings, sim: SimulatedPbx, caplog: pytest.LogCaptureFixture, agi_host: str, warned: list[str]
) -> None:
    """AGI_HOST left at its default (127.0.0.1) with Asterisk on another machine (README's example
    did that): its dialplan cannot connect, every caller goes to the desk, and no missing message is
    ever counted (DialerMessageFailed cannot fire). Said at start for that server, not for the one
    on this machine, and not once AGI_HOST is an address Asterisk reaches."""
    elsewhere = AmiSettings(  # a documentation address (RFC 5737): down at start, retried meanwhile
        host="198.51.100.7", secret="x", name="pbx2", connect_timeout_s=0.1, reconnect_min_s=0.1
    )
    two = replace(settings, ami=sim.ami_settings(name="pbx1"), more_ami=(elsewhere,), agi_host=agi_host)
    async with runtime.started(two):
        pass
    logged = [
        r.msg
        for r in caplog.records
        if isinstance(r.msg, dict) and r.msg.get("event") == "agi.unreachable_from_asterisk"
    ]
    assert [m["link"] for m in logged] == warned
    assert all(m["ami_host"] == "198.51.100.7" and "AGI_HOST" in str(m["hint"]) for m in logged)


async def test_a_broken_peer_harms_nothing(agi: int, pool: asyncpg.Pool, lines: int) -> None:
    async def raw(data: bytes, close: bool = True) -> bytes:
        reader, writer = await asyncio.open_connection("127.0.0.1", agi)
        writer.write(data)
        if close:
            writer.write_eof()
        try:
            async with asyncio.timeout(10):
                return await reader.read()
        finally:
            writer.close()

    assert await raw(b"agi_network_script: inbound\nagi_callerid: 03") == b""  # cut short
    assert await raw(b"\x00\xff garbage\n\n") == b""
    assert await raw(b"agi_x: " + b"A" * 100_000 + b"\n\n") == b""  # too large
    assert await raw(b"agi_network_script: nosuchroute\n\n") == b""
    assert await raw(b"agi_callerid: 0355550101\n\n") == b""  # no route named
    hid = await factory.household(pool, lines, "0355550101")
    after = await fake_asterisk(agi, "inbound", NHI_LINE, "")
    assert after.variables["DIALER_HOUSEHOLD"] == str(hid)  # the service is unharmed


async def test_a_peer_that_sends_nothing_is_let_go(app_pool: asyncpg.Pool) -> None:
    server = FastAgiServer(Routes(app_pool).table(), "127.0.0.1", 0, header_timeout_s=0.5)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        async with asyncio.timeout(5):
            assert await reader.read() == b""  # closed by the server after its deadline
        writer.close()
    finally:
        await server.close()


async def test_a_session_cut_short_by_the_dialer_stopping_ends_quietly(
    app_pool: asyncpg.Pool, lines: int
) -> None:
    """Stopping the dialer while a caller is in the menu cancels their session: no "Exception in
    callback" from asyncio's stream server (on Python 3.11 it reads a cancelled task's exception)."""
    loop = asyncio.get_running_loop()
    reported: list[dict[str, object]] = []
    previous = loop.get_exception_handler()
    loop.set_exception_handler(lambda _, context: reported.append(context))
    server = FastAgiServer(Routes(app_pool).table(), "127.0.0.1", 0, command_timeout_s=30.0)
    await server.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        headers = {"agi_network_script": "inbound", "agi_callerid": "0355550101", "agi_dnid": NHI_LINE}
        writer.write("".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n")
        async with asyncio.timeout(10):
            assert (await reader.readline()).startswith(b"SET VARIABLE")  # left unanswered
        await server.close()
        for _ in range(5):
            await asyncio.sleep(0)
        writer.close()
    finally:
        loop.set_exception_handler(previous)
    assert reported == []
