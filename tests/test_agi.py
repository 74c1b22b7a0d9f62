"""The FastAGI service (agi/) against a fake Asterisk that speaks FastAGI over TCP the way res_agi
does (headers, one command per line, `200 result=...` answers, HANGUP and 511 after a hang-up),
with the embedded PostgreSQL under row-level security: inbound caller lookup, the menu, the
record of played messages, and what happens when the peer or the database misbehaves."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from agi.protocol import LOOPBACK, FastAgiServer, Peers, peers_for
from agi.routes import Routes, caller_number
from dialer import runtime
from tests import factory

NHI_LINE, TAX_LINE = "0312340001", "0312340002"


@dataclass
class Session:
    """What the fake Asterisk saw of one AGI session."""

    commands: list[str] = field(default_factory=list)
    variables: dict[str, str] = field(default_factory=dict)
    closed_by_server: bool = False


async def fake_asterisk(
    port: int,
    route: str,
    *args: str,
    callerid: str = "0355550101",
    extension: str = "s",
    keys: list[str] | None = None,
    hang_up_after: int | None = None,
    prompts_installed: bool = True,
    channel: str = "1795370746.41",
) -> Session:
    """One AGI() call: send the channel's headers, then answer commands as res_agi would.

    `keys`: what the caller presses at each GET DATA ('' = nothing, a timeout).
    `hang_up_after`: the caller hangs up after this many commands (HANGUP, then 511s).
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    headers = {
        "agi_network": "yes",
        "agi_network_script": route,
        "agi_request": f"agi://127.0.0.1:{port}/{route}",
        "agi_channel": "PJSIP/trunk-00000007",
        "agi_language": "ja",
        "agi_type": "PJSIP",
        "agi_uniqueid": channel,
        "agi_version": "22.10.1",
        "agi_callerid": callerid,
        "agi_calleridname": "unknown",
        "agi_callingpres": "0",
        "agi_dnid": "unknown",
        "agi_rdnis": "unknown",
        "agi_context": "dialer-inbound",
        "agi_extension": extension,
        "agi_priority": "4",
        "agi_enhanced": "0.0",
        "agi_accountcode": "",
        "agi_threadid": "140245",
        **{f"agi_arg_{i + 1}": a for i, a in enumerate(args)},
    }
    writer.write("".join(f"{k}: {v}\n" for k, v in headers.items()).encode() + b"\n")
    seen, pending_keys, dead = Session(), list(keys or []), False
    try:
        async with asyncio.timeout(30):
            while True:
                line = await reader.readline()
                if not line:
                    seen.closed_by_server = True
                    return seen
                command = line.decode().rstrip("\n")
                seen.commands.append(command)
                if hang_up_after is not None and len(seen.commands) > hang_up_after and not dead:
                    dead = True
                    writer.write(b"HANGUP\n")
                if dead:
                    writer.write(b"511 Command Not Permitted on a dead channel or intercept routine\n")
                    continue
                verb = command.split(" ", 2)
                if verb[:2] == ["SET", "VARIABLE"]:
                    name, _, value = verb[2].partition(" ")
                    seen.variables[name] = value.strip('"')
                    writer.write(b"200 result=1\n")
                elif verb[:2] == ["GET", "DATA"] and not prompts_installed:
                    writer.write(b"200 result=-1\n")  # as for a hang-up: ast_streamfile failed
                elif verb[:2] == ["CHANNEL", "STATUS"]:
                    writer.write(b"200 result=6\n")  # Up
                elif verb[:2] == ["GET", "DATA"]:
                    key = pending_keys.pop(0) if pending_keys else ""
                    writer.write(f"200 result={key}{' (timeout)' if not key else ''}\n".encode())
                elif verb[:2] == ["STREAM", "FILE"]:
                    writer.write(b"200 result=0 endpos=48000\n")
                else:
                    writer.write(b"510 Invalid or unknown command\n")
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
async def agi(app_pool: asyncpg.Pool) -> AsyncIterator[int]:
    server = FastAgiServer(Routes(app_pool).table(), "127.0.0.1", 0, command_timeout_s=2.0)
    await server.start()
    yield server.port
    await server.close()


@pytest.fixture
async def lines(pool: asyncpg.Pool) -> int:
    """Two departments with their call-back lines, and a campaign of NHI's."""
    await factory.department(pool, "nhi")
    await factory.department(pool, "tax")
    await pool.execute("update department set callback_number = '03-1234-0001' where id = 'nhi'")
    await pool.execute("update department set callback_number = '03-1234-0002' where id = 'tax'")
    return await factory.campaign(pool, "nhi")


@pytest.mark.parametrize(
    ("callerid", "number"),
    [
        ("0355550101", "0355550101"),
        ("+81355550101", "0355550101"),
        ("81355550101", "0355550101"),
        ("09012345678", "09012345678"),
        ("anonymous", None),
        ("", None),
        ("<unknown>", None),
        ("0123", None),  # too short to be a number
        ("+14155550100", None),  # a foreign number: never one of ours
    ],
)
def test_caller_numbers(callerid: str, number: str | None) -> None:
    assert caller_number(callerid) == number


async def test_a_known_caller_on_a_departments_line_is_recognised(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    hid = await factory.household(pool, lines, "0355550101")
    seen = await fake_asterisk(agi, "inbound", NHI_LINE, "", callerid="+81355550101")
    assert seen.variables == {
        "DIALER_DEPARTMENT": "nhi",
        "DIALER_CALLER": "known",
        "DIALER_HOUSEHOLD": str(hid),
        "DIALER_INBOUND": "ok",
    }
    assert list(seen.variables)[-1] == "DIALER_INBOUND"  # set last: the dialplan goes on only then
    assert seen.closed_by_server


async def test_unknown_several_and_other_departments_callers(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    await factory.household(pool, lines, "0355550201", no="H1")
    await factory.household(pool, lines, "0355550201", no="H2")  # one number, two households
    tax = await factory.campaign(pool, "tax")
    await factory.household(pool, tax, "0355550301", dept="tax")
    several = await fake_asterisk(agi, "inbound", NHI_LINE, "", callerid="0355550201")
    assert (several.variables["DIALER_CALLER"], several.variables["DIALER_HOUSEHOLD"]) == ("several", "")
    withheld = await fake_asterisk(agi, "inbound", NHI_LINE, "", callerid="anonymous")
    assert (withheld.variables["DIALER_CALLER"], withheld.variables["DIALER_INBOUND"]) == ("unknown", "ok")
    # a tax payer calling the NHI line is not found: NHI cannot see tax's residents
    other = await fake_asterisk(agi, "inbound", NHI_LINE, "", callerid="0355550301")
    assert other.variables["DIALER_CALLER"] == "unknown"
    on_tax_line = await fake_asterisk(agi, "inbound", TAX_LINE, "", callerid="0355550301")
    assert (on_tax_line.variables["DIALER_DEPARTMENT"], on_tax_line.variables["DIALER_CALLER"]) == (
        "tax",
        "known",
    )


async def test_the_dialplans_department_hint_wins_and_an_unknown_line_falls_back(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    hinted = await fake_asterisk(agi, "inbound", "0120999999", "tax")
    assert hinted.variables["DIALER_DEPARTMENT"] == "tax"
    by_dnid = await fake_asterisk(agi, "inbound", "", "")  # no line given, agi_dnid 'unknown'
    assert by_dnid.variables == {}  # nothing set: the dialplan's fallback puts the caller through
    unknown = await fake_asterisk(agi, "inbound", "0120999999", "nosuchdept")
    assert unknown.variables == {}
    assert unknown.closed_by_server


async def test_the_menu_payment_information_then_a_person(agi: int, pool: asyncpg.Pool, lines: int) -> None:
    hid = await factory.household(pool, lines, "0355550101")
    await fake_asterisk(
        agi, "inbound", NHI_LINE, ""
    )  # recognised on this channel first, as the dialplan does
    seen = await fake_asterisk(agi, "ivr", "nhi", str(hid), keys=["1", "2"])
    assert seen.commands[0] == "GET DATA custom/dialer-nhi-menu 6000 1"
    assert 'STREAM FILE custom/dialer-nhi-payment-info ""' in seen.commands
    assert seen.variables == {"DIALER_CHOICE": "operator"}
    row = await pool.fetchrow(
        "select method, place, content, department_id from contact_history where household_id = $1", hid
    )
    assert dict(row) == {
        "method": "phone_in",
        "place": "0355550101",
        "content": "入電(自動応答)、納付方法の案内を聞いた、オペレーターを希望",
        "department_id": "nhi",
    }


async def test_the_menu_writes_only_for_the_household_recognised_on_its_own_channel(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    hid = await factory.household(pool, lines, "0355550101")
    other = await factory.household(pool, lines, "0355550202")
    # a household named in the arguments, never looked up: no 経過記録 (anyone could name any)
    seen = await fake_asterisk(agi, "ivr", "nhi", str(hid), keys=["2"])
    assert seen.variables == {"DIALER_CHOICE": "operator"}  # the caller still reaches a person
    await fake_asterisk(agi, "inbound", NHI_LINE, "", channel="1795370746.50")  # hid, on another channel
    await fake_asterisk(agi, "ivr", "nhi", str(hid), keys=["2"])
    await fake_asterisk(agi, "inbound", NHI_LINE, "")  # hid on this channel; then another household
    await fake_asterisk(agi, "ivr", "nhi", str(other), keys=["2"])
    await fake_asterisk(agi, "ivr", "tax", str(hid), keys=["2"])  # or another department
    assert await pool.fetchval("select count(*) from contact_history") == 0
    await fake_asterisk(agi, "ivr", "nhi", str(hid), keys=["2"])
    assert await pool.fetchval("select array_agg(household_id) from contact_history") == [hid]


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


async def test_a_caller_who_presses_nothing_reaches_a_person(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    seen = await fake_asterisk(agi, "ivr", "nhi", "", keys=["", "7", ""])  # no household known
    assert [c for c in seen.commands if c.startswith("GET DATA")] == [
        "GET DATA custom/dialer-nhi-menu 6000 1"
    ] * 3
    assert seen.variables == {"DIALER_CHOICE": "operator"}
    assert await pool.fetchval("select count(*) from contact_history") == 0


async def test_a_caller_who_hangs_up_in_the_menu_is_recorded_and_left_alone(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    hid = await factory.household(pool, lines, "0355550101")
    await fake_asterisk(agi, "inbound", NHI_LINE, "")
    seen = await fake_asterisk(agi, "ivr", "nhi", str(hid), keys=["1"], hang_up_after=2)
    assert len(seen.commands) == 3  # menu, information, then the menu again: 511, and no more
    assert seen.variables == {}
    content = await pool.fetchval("select content from contact_history where household_id = $1", hid)
    assert content == "入電(自動応答)、納付方法の案内を聞いた、途中で切断"


async def test_without_the_menus_recordings_the_caller_reaches_a_person(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    seen = await fake_asterisk(agi, "ivr", "nhi", "", prompts_installed=False)
    assert seen.commands[:2] == ["GET DATA custom/dialer-nhi-menu 6000 1", "CHANNEL STATUS"]
    assert seen.variables == {"DIALER_CHOICE": "operator"}


async def test_a_played_message_goes_on_the_attempts_timeline(
    agi: int, pool: asyncpg.Pool, lines: int
) -> None:
    await factory.household(pool, lines, "0355550401")
    attempt = await pool.fetchval(
        """insert into attempt (campaign_id, target_id, household_id, department_id, dial_mode, channel_id)
           select t.campaign_id, t.id, t.household_id, t.department_id, 'predictive', 'dlr-a-test'
           from campaign_target t where t.campaign_id = $1 returning id""",
        lines,
    )
    await fake_asterisk(agi, "played", "abandon", str(attempt), "SUCCESS")
    await fake_asterisk(agi, "played", "elsewhere", str(attempt), "SUCCESS")  # ignored
    await fake_asterisk(agi, "played", "machine", "99999999", "SUCCESS")  # no such attempt: logged
    rows = await pool.fetch("select kind, detail from attempt_event where attempt_id = $1", attempt)
    assert [(r["kind"], json.loads(r["detail"])) for r in rows] == [
        ("message_played", {"status": "SUCCESS", "message": "abandon"})
    ]


async def test_with_the_database_unreachable_nothing_is_set_and_the_caller_falls_back(lines: int) -> None:
    with socket.socket() as s:  # a port where no database listens
        s.bind(("127.0.0.1", 0))
        free_port = s.getsockname()[1]
    dead = await asyncpg.create_pool(f"postgresql://dialer@127.0.0.1:{free_port}/none", min_size=0)
    assert dead is not None
    server = FastAgiServer(Routes(dead, store_timeout_s=1.0).table(), "127.0.0.1", 0)
    await server.start()
    try:
        seen = await fake_asterisk(server.port, "inbound", NHI_LINE, "")
        assert seen.variables == {}
        assert seen.closed_by_server
        menu = await fake_asterisk(server.port, "ivr", "nhi", "42", keys=["2"])
        assert menu.variables == {"DIALER_CHOICE": "operator"}  # the menu needs no database
    finally:
        await server.close()
        await dead.close()


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


async def test_the_product_serves_fastagi(product: runtime.Running, pool: asyncpg.Pool) -> None:
    w = await factory.world(pool)
    hid = await factory.household(pool, w.campaign_id, "0355550501")
    await pool.execute("update department set callback_number = '03-1234-0001' where id = 'nhi'")
    seen = await fake_asterisk(product.agi_port, "inbound", NHI_LINE, "", callerid="0355550501")
    assert seen.variables["DIALER_HOUSEHOLD"] == str(hid)
