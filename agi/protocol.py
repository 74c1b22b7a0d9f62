"""A FastAGI server: Asterisk connects for each `AGI(agi://host:port/<route>,args)` and sends the
channel's `agi_*` headers; we answer with AGI commands, one line each, and read one result each.

Why not panoramisk.fast_agi: its reader loops forever on a peer that closes before the blank
line, has no size or time limit, and cannot run plain functions on Python 3.11. The wire format
is small; what matters is that nothing waits without a deadline and a broken peer harms nothing.

Asterisk's side: it waits up to 2 s (MAX_AGI_CONNECT in res_agi.c) to connect, then runs the
commands we send until we close the connection, which returns the channel to the dialplan.
Everything a route sets is set with SET VARIABLE; the dialplan presets each variable, so when
this server cannot be reached, or fails mid-way, the call still goes somewhere sensible.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from dialer import logs
from dialer.aio import within
from dialer.errors import DialerError

log = logs.get("agi")

MAX_HEADER_BYTES = 16 * 1024  # Asterisk sends ~30 short lines; more is not Asterisk
_RESULT = re.compile(r"^(\d{3})(?: result=(\S*))?(?: \((.*)\))?(?: endpos=(\d+))?")
_VARIABLE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class AgiHangup(DialerError):
    """The channel hung up: nothing more can be done on it."""

    error_id = "agi_hangup"


class PromptMissing(DialerError):
    """Asterisk could not play a prompt (the sound file is not installed); the channel is up."""

    error_id = "agi_prompt_missing"


class AgiFailed(DialerError):
    """Asterisk refused a command, or the peer broke the protocol or did not answer in time."""

    error_id = "agi_failed"


Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
LOOPBACK: tuple[Network, ...] = (ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1/128"))


@dataclass(frozen=True)
class Peers:
    """Who may use the service: the Asterisk servers and this machine. Anyone else who could
    connect could ask, number by number, who owes (the inbound route) and write contact
    history (the ivr route)."""

    networks: tuple[Network, ...] = LOOPBACK

    def allow(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])  # fe80::1%eth0
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped  # a dual-stack socket's view of an IPv4 peer
        return any(ip in n for n in self.networks if n.version == ip.version)


async def peers_for(asterisk_hosts: list[str], allowed: tuple[Network, ...]) -> Peers:
    """This machine, the networks AGI_ALLOW names, and the addresses of the Asterisk servers the
    dialer manages (AMI_HOST, AMI_SERVERS: the dialplans that call this service). A host that
    cannot be resolved now is left out, and said so."""
    networks = [*LOOPBACK, *allowed]
    for host in asterisk_hosts:
        addresses = await resolve(host)
        if not addresses:
            log.warning("agi.asterisk_unresolved", host=host, hint="set AGI_ALLOW to its address")
        networks.extend(ipaddress.ip_network(a) for a in addresses)
    return Peers(tuple(dict.fromkeys(networks)))


async def resolve(host: str) -> list[Address]:
    """The addresses `host` names (an address names itself); none if it cannot be resolved in 5 s."""
    try:
        infos = await within(5.0, asyncio.get_running_loop().getaddrinfo(host, None))
    except (OSError, TimeoutError):
        return []
    return list(dict.fromkeys(ipaddress.ip_address(str(i[4][0]).split("%", 1)[0]) for i in infos))


@dataclass(frozen=True)
class Result:
    code: int  # 200 on success
    result: str  # e.g. '1', '0', '-1', or the digits read by GET DATA
    data: str = ""  # the text in parentheses: '(timeout)', a variable's value


class Call:
    """One AGI session: the channel's headers, the route's arguments, and commands to run."""

    def __init__(
        self,
        headers: Mapping[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        command_timeout_s: float,
    ) -> None:
        self.headers = dict(headers)
        self.args = [headers[f"agi_arg_{i}"] for i in range(1, 64) if f"agi_arg_{i}" in headers]
        self._reader, self._writer = reader, writer
        self._timeout = command_timeout_s
        self.hung_up = False

    @property
    def route(self) -> str:
        return self.headers.get("agi_network_script", "").strip("/")

    async def command(self, text: str, wait_s: float = 0.0) -> Result:
        """Send one command; `wait_s` is how long it may rightly take (a prompt, input)."""
        if self.hung_up:
            raise AgiHangup("the channel has hung up")
        if "\n" in text or "\r" in text:
            raise ValueError("an AGI command is one line")
        self._writer.write(text.encode() + b"\n")
        try:
            await within(self._timeout, self._writer.drain())
            return await within(self._timeout + wait_s, self._result())
        except TimeoutError:
            raise AgiFailed(f"no answer to {text.split(' ', 1)[0]} in time") from None
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            self.hung_up = True
            raise AgiHangup("Asterisk closed the AGI connection") from None

    async def _result(self) -> Result:
        while True:
            line = (await self._reader.readuntil(b"\n")).decode("utf-8", "replace").rstrip("\r\n")
            if line == "HANGUP":  # sent once when the channel hangs up (AGISIGHUP)
                self.hung_up = True
                continue
            if line.startswith("520-"):  # a usage message over several lines, ending '520 End ...'
                while not line.startswith("520 "):
                    line = (await self._reader.readuntil(b"\n")).decode("utf-8", "replace").rstrip("\r\n")
                raise AgiFailed("Asterisk did not understand a command (520)")
            m = _RESULT.match(line)
            if m is None:
                raise AgiFailed("an AGI answer that is not one")
            result = Result(int(m.group(1)), m.group(2) or "", m.group(3) or "")
            if result.code == 511:  # 'Command Not Permitted on a dead channel'
                self.hung_up = True
                raise AgiHangup("the channel has hung up")
            if result.code != 200:
                raise AgiFailed(f"Asterisk answered {result.code}")
            return result

    async def set_variable(self, name: str, value: str) -> None:
        if not _VARIABLE.match(name):
            raise ValueError(f"not a channel variable name: {name!r}")
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        await self.command(f'SET VARIABLE {name} "{quoted}"')

    async def get_variable(self, name: str) -> str | None:
        if not _VARIABLE.match(name):
            raise ValueError(f"not a channel variable name: {name!r}")
        r = await self.command(f"GET VARIABLE {name}")
        return r.data if r.result == "1" else None

    async def get_data(self, prompt: str, timeout_ms: int, max_digits: int) -> str | None:
        """Play a prompt and read up to max_digits keys; None when nothing was pressed."""
        r = await self.command(
            f"GET DATA {_sound(prompt)} {timeout_ms} {max_digits}", wait_s=timeout_ms / 1000 + 60
        )
        if r.result == "-1":  # hung up, or the prompt could not be played: ask which
            await self.command("CHANNEL STATUS")  # 511 (AgiHangup) when the channel is gone
            raise PromptMissing(prompt)
        return r.result or None

    async def stream_file(self, prompt: str) -> None:
        r = await self.command(f'STREAM FILE {_sound(prompt)} ""', wait_s=300)
        if r.result == "-1":  # also: the file does not exist (Asterisk logs which)
            log.warning("agi.prompt_not_played", route=self.route, prompt=prompt)

    async def verbose(self, message: str) -> None:
        text = message.replace('"', "'").replace("\n", " ")
        await self.command(f'VERBOSE "{text}" 3')


def _sound(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*", name):
        raise ValueError(f"not a sound file name: {name!r}")
    return name


Route = Callable[[Call], Awaitable[None]]


class FastAgiServer:
    def __init__(
        self,
        routes: Mapping[str, Route],
        host: str,
        port: int,
        *,
        header_timeout_s: float = 5.0,
        command_timeout_s: float = 5.0,
        peers: Peers = Peers(),
    ) -> None:
        self.routes, self.host, self.port = dict(routes), host, port
        self.peers = peers
        self.header_timeout_s, self.command_timeout_s = header_timeout_s, command_timeout_s
        self._server: asyncio.Server | None = None
        self._sessions: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, self.host, self.port, limit=MAX_HEADER_BYTES)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("agi.listening", host=self.host, port=self.port, routes=sorted(self.routes))

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._sessions):
            task.cancel()
        for task in list(self._sessions):
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._sessions.add(task)
        try:
            peer = writer.get_extra_info("peername")
            address = str(peer[0]) if isinstance(peer, tuple) and peer else ""
            if not self.peers.allow(address):
                # not Asterisk: closed before a byte is read (AGI_ALLOW lets others in)
                log.warning("agi.peer_refused", peer=address)
                return
            await self._session(reader, writer)
        except asyncio.CancelledError:
            # close() cancels the sessions of a stopping dialer. Ended, not cancelled: Python
            # 3.11's stream server asks a finished task for its exception, which a cancelled one
            # raises (an "Exception in callback" at error level on every stop mid-menu).
            log.info("agi.session_cut_short")
        finally:
            self._sessions.discard(task)
            writer.close()
            with contextlib.suppress(ConnectionError, TimeoutError):
                await within(1.0, writer.wait_closed())

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            headers = await within(self.header_timeout_s, _read_headers(reader))
        except TimeoutError:
            log.warning("agi.bad_request", reason="no blank line after the headers in time")
            return
        except AgiFailed as exc:
            log.warning("agi.bad_request", reason=exc.message)
            return
        call = Call(headers, reader, writer, self.command_timeout_s)
        route = self.routes.get(call.route)
        if route is None:
            log.error("agi.unknown_route", route=call.route[:64], known=sorted(self.routes))
            return
        try:
            await route(call)
        except AgiHangup:
            log.info("agi.caller_hung_up", route=call.route)
        except (AgiFailed, ValueError) as exc:
            log.error("agi.route_failed", route=call.route, error=str(exc))
        except Exception:
            log.exception("agi.route_failed", route=call.route)


async def _read_headers(reader: asyncio.StreamReader) -> dict[str, str]:
    try:
        block = await reader.readuntil(b"\n\n")
    except asyncio.LimitOverrunError:
        raise AgiFailed(f"headers larger than {MAX_HEADER_BYTES} bytes") from None
    except (asyncio.IncompleteReadError, ConnectionError):
        raise AgiFailed("the peer closed before the end of the headers") from None
    headers: dict[str, str] = {}
    for line in block.decode("utf-8", "replace").splitlines():
        key, sep, value = line.partition(": ")
        if sep and key.startswith("agi_"):
            headers[key] = value
        elif line.strip():
            raise AgiFailed("a header line that is not 'agi_name: value'")
    if "agi_network_script" not in headers:
        raise AgiFailed("no agi_network_script header (is this Asterisk's FastAGI?)")
    return headers
