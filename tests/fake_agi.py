"""A fake Asterisk speaking FastAGI over TCP the way res_agi does (headers, one command per line,
`200 result=...` answers, HANGUP and 511 after a hang-up), and the service it talks to: for the
FastAGI tests (tests/test_agi.py, tests/test_agi_peers.py)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
import pytest

from agi.protocol import FastAgiServer
from agi.routes import Routes
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
