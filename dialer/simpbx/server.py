"""SimulatedPbx: a simulated Asterisk 22 speaking the real AMI wire protocol over TCP.

It listens like Asterisk's manager, replays the event sequences recorded from Asterisk 22.10.1
(``reference/asterisk-22/raw``) for the dialer's call types, and offers fault injection: links
dropped, a half-open (frozen) link, and a ``core restart now``.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from dialer.aio import within
from dialer.config import AmiSettings

from .actions import Actions
from .behaviour import Behaviour
from .channels import STATE_DESC
from .config import SimConfig
from .core import Core
from .dialplan import Dialplan
from .hangups import Hangups
from .session import AmiSession
from .wire import Action, Headers, encode, get

log = logging.getLogger(__name__)

CLOSE_WAIT_S = 1.0
BOOT_S = 0.15  # after a restart, FullyBooted follows the first login this much later (10: 170 ms)


@dataclass(frozen=True)
class ChannelInfo:
    """A live channel as tests see it."""

    name: str
    uniqueid: str
    linkedid: str
    state: str  # ChannelStateDesc: Down, Ring, Ringing, Up, Busy
    context: str
    exten: str


class SimulatedPbx:
    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.received: list[Action] = []
        self.sessions: set[AmiSession] = set()
        self.frozen = False
        self.latency_s = 0.0  # slow links: every byte to the clients this late (set_latency)
        # actions outside the AMI user's `write` (manager.conf), answered as Asterisk answers them
        self.denied: set[str] = set()
        self.booted = True
        self.core = Core(config, self.broadcast)
        self.hangups = Hangups(self.core)
        self.plan = Dialplan(self.core, self.hangups)
        self.handlers = Actions(self.core, self.plan, self.hangups)
        self._server: asyncio.Server | None = None
        self._port = config.port
        self._boot_timer: asyncio.TimerHandle | None = None
        self._idle: asyncio.Event | None = None
        self._stopped = False

    # ----- lifecycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        """Bind and listen; raises OSError (EADDRINUSE) if the port is taken."""
        self._stopped = False
        await self._listen(self.config.port)
        self.core.reset()

    async def _listen(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(lambda: AmiSession(self), self.config.host, port)
        self._port = self._server.sockets[0].getsockname()[1]

    @property
    def port(self) -> int:
        return self._port

    def ami_settings(self, **overrides: Any) -> AmiSettings:
        """How the dialer reaches this PBX (once started): its address and its first AMI user."""
        username, secret = next(iter(self.config.users.items()))
        return AmiSettings(
            host=self.config.host, port=self.port, username=username, secret=secret, **overrides
        )

    async def stop(self) -> None:
        """Hang everything up, send Shutdown (Restart: False), close all links and timers."""
        self._stopped = True
        await self._go_down(restart=False)
        self.core.cancel_all()

    async def restart(self, down_s: float = 0.5) -> None:
        """Like ``core restart now``: channels hung up, Shutdown (Restart: True), refused for down_s."""
        await self._go_down(restart=True)
        await asyncio.sleep(down_s)
        if self._stopped:  # stop() was called while we were down
            return
        self.core.reset()
        self.booted = False
        await self._listen(self._port)

    async def _go_down(self, restart: bool) -> None:
        self.frozen = False
        self.core.cancel(self._boot_timer)
        self._boot_timer = None
        self.hangups.shutdown()
        shutdown: Headers = [("Event", "Shutdown"), ("Privilege", "system,all"), ("Shutdown", "Cleanly")]
        self.broadcast([*shutdown, ("Restart", "True" if restart else "False")])
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for session in list(self.sessions):
            session.close()
        await self._closed()
        if server is not None:
            await server.wait_closed()

    async def _closed(self) -> None:
        """Wait until every transport has really gone (no unclosed-socket warnings)."""
        for attempt in range(2):
            if not self.sessions:
                return
            self._idle = asyncio.Event()
            try:
                await within(CLOSE_WAIT_S, self._idle.wait())
            except TimeoutError:
                log.warning("simpbx: clients did not close in time; aborting them (attempt %d)", attempt)
                for session in list(self.sessions):
                    session.abort()

    def session_closed(self, session: AmiSession) -> None:
        self.sessions.discard(session)
        if not self.sessions and self._idle is not None:
            self._idle.set()

    def finish_boot_soon(self) -> None:
        """After a restart the first login is answered before boot ends; FullyBooted comes later."""
        if self._boot_timer is not None:
            return

        def booted() -> None:
            self._boot_timer = None
            self.booted = True
            # Field order differs from the normal login's (recorded in 10 and 10b).
            late: Headers = [
                ("Event", "FullyBooted"),
                ("Privilege", "system,all"),
                ("Status", "Fully Booted"),
            ]
            self.broadcast([*late, ("Uptime", "0"), ("LastReload", "0")])

        self._boot_timer = self.core.later(BOOT_S, booted)

    # ----- events ------------------------------------------------------------------------------
    def broadcast(self, message: Headers) -> None:
        data = encode(message)
        for session in list(self.sessions):
            session.deliver(data)

    # ----- scripting and inspection ---------------------------------------------------------------
    def script(self, number: str, behaviour: Behaviour) -> None:
        """This number behaves so from now on (persistent until changed)."""
        self.core.scripts[number] = behaviour

    def actions(self, name: str) -> list[Action]:
        """Received actions with ``Action == name`` (case-insensitive)."""
        return [a for a in self.received if get(a, "Action").lower() == name.lower()]

    def live_channels(self) -> list[ChannelInfo]:
        return [
            ChannelInfo(
                ch.name, ch.uniqueid, ch.linkedid, STATE_DESC.get(ch.state, "Unknown"), ch.context, ch.exten
            )
            for ch in self.core.channels.values()
            if ch.alive
        ]

    # ----- fault injection -------------------------------------------------------------------------
    async def drop_links(self) -> None:
        """Abruptly close every client connection (no Shutdown); calls keep running."""
        for session in list(self.sessions):
            session.abort()
        await self._closed()

    def set_latency(self, seconds: float) -> None:
        """A slow link: everything written to the clients (responses, events) leaves this late,
        still in order. 0 = at once."""
        if seconds < 0:
            raise ValueError("latency must be >= 0")
        self.latency_s = seconds

    def freeze(self, frozen: bool) -> None:
        """Half-open link: read and write nothing while frozen; events meanwhile are lost."""
        self.frozen = frozen
        for session in list(self.sessions):
            session.set_frozen(frozen)

    def call_in(self, line: str, caller: str, keys: str = "2") -> str:
        """A resident calls the line `line` from `caller` (digits; "" = withheld) and presses
        `keys` in the menu (one per prompt; "2": a person). The dialplan's FastAGI requests go
        to the global DIALER_AGI (set it with Setvar, or core.globals). Returns the Uniqueid."""
        return self.plan.inbound.call_in(line, caller, keys)

    async def hangup_remote(self, uniqueid: str) -> bool:
        """The far end of this channel (by Uniqueid, i.e. our ChannelId) hangs up now, like a SIP
        callee's BYE (Cause 0). False if there is no such live channel."""
        for ch in list(self.core.channels.values()):
            if ch.alive and ch.uniqueid == uniqueid:
                self.hangups.remote_bye(ch, 0)
                return True
        return False

    async def hangup_from_phone(self, extension: str) -> None:
        """The operator puts the phone down: their session leg ends like a remote BYE (Cause 16)."""
        for ch in list(self.core.channels.values()):
            if ch.alive and ch.phone_ext == extension:
                if ch.tech == "PJSIP" and ch.answered:
                    self.hangups.remote_bye(ch, 16)
                else:
                    self.hangups.ami_hangup(ch, 16)
