"""One AMI client connection: framing, Login/Logoff, dispatch, security events, freezing.

A plain ``asyncio.Protocol``: no task per connection, so stopping the PBX leaves none behind.
Frames are handled one at a time; a session waits (``_blocked``) while a failed Login sits out
its delay or a synchronous Originate dials, exactly as Asterisk serialises a session's actions.
"""

from __future__ import annotations

import asyncio
import collections
import datetime
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .replies import Deferred, Reply, error, response, success
from .wire import BANNER, Action, FrameReader, FrameTooLong, Headers, encode, get, to_action

if TYPE_CHECKING:
    from .server import SimulatedPbx

log = logging.getLogger(__name__)

MAX_BACKLOG = 16 * 1024 * 1024  # a client this far behind is dropped rather than buffered forever
NEVER = "1970-01-01T00:00:00.000+0000"
Pair = tuple[str, str]


def _tv() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}+0000"


class AmiSession(asyncio.Protocol):
    def __init__(self, pbx: SimulatedPbx) -> None:
        self.pbx = pbx
        self.transport: asyncio.Transport | None = None
        self.reader = FrameReader()
        self.inbox: collections.deque[Headers] = collections.deque()
        self.held: list[bytes] = []
        self.authenticated = False
        self.events = False
        self.username = ""
        self.closing = False
        self._blocked = False
        self._banner_due = False
        self._due = 0.0  # with latency: when the last delayed write goes out
        self.local = self.remote = "IPV4/TCP/0.0.0.0/0"

    # ----- transport callbacks ---------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        for attr, info in (("local", "sockname"), ("remote", "peername")):
            addr = transport.get_extra_info(info)
            if isinstance(addr, tuple):
                setattr(self, attr, f"IPV4/TCP/{addr[0]}/{addr[1]}")
        self.pbx.sessions.add(self)
        if self.pbx.frozen:
            transport.pause_reading()
            self._banner_due = True
        else:
            transport.write(BANNER)

    def data_received(self, data: bytes) -> None:
        if self.pbx.frozen:
            self.held.append(data)
            return
        try:
            self.inbox.extend(self.reader.feed(data))
        except FrameTooLong:
            log.warning("simpbx: dropping a client that sent an over-long AMI frame")
            self.abort()
            return
        self._pump()

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.pbx.session_closed(self)

    # ----- output ----------------------------------------------------------------------------
    def write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self.closing or transport.is_closing() or self.pbx.frozen:
            return
        if self.pbx.latency_s > 0:  # a slow link: everything arrives late, in order
            loop = asyncio.get_running_loop()
            self._due = max(self._due, loop.time() + self.pbx.latency_s)
            loop.call_at(self._due, self._write_now, data)
            return
        self._write_now(data)

    def _write_now(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or self.closing or transport.is_closing():
            return
        transport.write(data)
        if transport.get_write_buffer_size() > MAX_BACKLOG:
            log.warning("simpbx: dropping a client that does not read its events")
            self.abort()

    def send(self, *messages: Headers) -> None:
        for message in messages:
            self.write(encode(message))

    def deliver(self, data: bytes) -> None:
        """An event for everybody: only logged-in sessions that asked for events get it."""
        if self.authenticated and self.events:
            self.write(data)

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()

    def abort(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.abort()

    def set_frozen(self, frozen: bool) -> None:
        if self.transport is None or self.transport.is_closing():
            return
        if frozen:
            self.transport.pause_reading()
            return
        self.transport.resume_reading()
        if self._banner_due:
            self._banner_due = False
            self.transport.write(BANNER)
        held, self.held = self.held, []
        for chunk in held:
            self.data_received(chunk)

    # ----- input -----------------------------------------------------------------------------
    def _pump(self) -> None:
        while self.inbox and not self._blocked and not self.closing:
            action = to_action(self.inbox.popleft())
            try:
                self._handle(action)
            except Exception:  # a simulator bug must not take the connection down
                log.exception("simpbx: action %s failed", get(action, "Action")[:40])
                self.send(error(get(action, "ActionID"), "Internal error"))

    def _finish(self, reply: Reply) -> None:
        self.send(*reply.messages)
        if reply.close:
            self.close()
        if reply.after is not None:
            reply.after()

    def _handle(self, action: Action) -> None:
        name = get(action, "Action").strip()
        aid = get(action, "ActionID")
        if not name:
            self.send(error(aid, "Missing action in request"))
            return
        self.pbx.received.append(action)
        lname = name.lower()
        if lname == "logoff":
            self._finish(
                Reply([response(aid, "Goodbye", ("Message", "Thanks for all the fish."))], close=True)
            )
        elif lname == "login":
            self._login(action, aid)
        elif not self.authenticated:
            tail: Headers = [("RequestType", f"Action: {name}")]
            self.pbx.broadcast(self._security("RequestNotAllowed", "Error", 1, "", tail, tv=NEVER))
            self.send(error(aid, "Permission denied"))
        elif lname in self.pbx.denied:  # not in the user's write permissions (manager.c)
            self.send(error(aid, "Permission denied"))
        elif lname == "events":
            mask = get(action, "EventMask").strip().lower()
            self.events = mask not in ("off", "no", "false", "0")
            self.send(response(aid, "Success", ("Events", "On" if self.events else "Off")))
        else:
            self._run(self.pbx.handlers.handle(name, action))

    def _run(self, reply: Reply | Deferred) -> None:
        if isinstance(reply, Reply):
            self._finish(reply)
            return
        self._blocked = True

        def ready(result: Reply) -> None:
            self._blocked = False
            if not self.closing:
                self._finish(result)
                self._pump()

        reply.on_ready(ready)

    # ----- login -----------------------------------------------------------------------------
    def _login(self, action: Action, aid: str) -> None:
        if self.authenticated:
            self.send(success(aid, "Already authenticated"))
            return
        user, secret = get(action, "Username"), get(action, "Secret")
        users = self.pbx.config.users
        if user not in users or users[user] != secret:
            # Asterisk reports an unknown user as InvalidAccountID, a wrong secret as InvalidPassword.
            if user in users:
                self.pbx.broadcast(self._security("InvalidPassword", "Error", 2, user, tv=NEVER))
            else:
                self.pbx.broadcast(self._security("InvalidAccountID", "Error", 1, user, tv=NEVER))
            deferred = Deferred()
            self.pbx.core.later(
                self.pbx.config.failed_login_delay_s,
                lambda: deferred.resolve(Reply([error(aid, "Authentication failed")], close=True)),
            )
            self._run(deferred)
            return
        self.authenticated, self.username = True, user
        self.events = get(action, "Events").strip().lower() != "off"
        self.send(success(aid, "Authentication accepted"))
        if self.pbx.booted and self.events:
            uptime = str(self.pbx.core.uptime())
            booted: Headers = [("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime)]
            self.send([*booted, ("LastReload", uptime), ("Status", "Fully Booted")])
        tail: Headers = [("UsingPassword", "0")]
        self.pbx.broadcast(self._security("SuccessfulAuth", "Informational", 1, user, tail))
        if not self.pbx.booted:
            self.pbx.finish_boot_soon()

    def _security(
        self, event: str, severity: str, version: int, account: str, tail: Sequence[Pair] = (), tv: str = ""
    ) -> Headers:
        """A security event about this session (SessionTV is the epoch before login)."""
        now = _tv()
        return [
            ("Event", event),
            ("Privilege", "security,all"),
            ("EventTV", now),
            ("Severity", severity),
            ("Service", "AMI"),
            ("EventVersion", str(version)),
            ("AccountID", account),
            ("SessionID", f"0x{id(self):x}"),
            ("LocalAddress", self.local),
            ("RemoteAddress", self.remote),
            *tail,
            ("SessionTV", tv or now),
        ]
