"""One supervised AMI link to one Asterisk: login, liveness, reconnect, typed events, actions.

Events are converted to typed values and delivered, in order, to subscribers by one task; a
subscriber that raises is logged and the others still run. Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from panoramisk.message import Message

from dialer import logs
from dialer.aio import within
from dialer.ami import events
from dialer.ami.transport import LinkManager, OriginateAction
from dialer.config import AmiSettings
from dialer.errors import AmiActionError, AmiAuthFailed, AmiUnreachable

log = logs.get("dialer.ami")


@dataclass(frozen=True)
class LinkStatus:
    """Delivered to subscribers when the link comes up or goes down."""

    up: bool
    reason: str = ""


LinkEvent = events.AmiEvent | LinkStatus
Handler = Callable[[LinkEvent], Awaitable[None] | None]


@dataclass(frozen=True)
class OriginateRequest:
    channel: str  # dial string, e.g. PJSIP/0312345678@trunk (personal data: never logged)
    context: str
    exten: str
    channel_id: str
    caller_id: str
    timeout_ms: int
    variables: Mapping[str, str] = field(default_factory=dict)
    other_channel_id: str | None = None
    priority: int = 1


class AmiLink:
    def __init__(self, settings: AmiSettings, name: str = "pbx1") -> None:
        self.settings = settings
        self.name = name
        self._handlers: list[Handler] = []
        self._action_ids = itertools.count(1)
        self._queue: asyncio.Queue[LinkEvent] = asyncio.Queue()
        self._manager: LinkManager | None = None
        # CoreShowChannels: the one on its way (with its end), and the next, which callers join
        self._sent: tuple[asyncio.Future[Any], asyncio.Event] | None = None
        self._next: asyncio.Future[dict[str, Message]] | None = None
        self._login: asyncio.Future[tuple[bool, str]] | None = None
        self._lost: asyncio.Future[str] | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._up = False
        self._closing = False

    # ---- public API -------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self._up

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    async def start(self, unreachable_ok: bool = False) -> None:
        """Connect and log in once; raise a clear error if that fails, then stay connected.

        `unreachable_ok` (one of several servers): a server that cannot be reached now is not an
        error; the link starts down and keeps trying, as after losing a connection."""
        self._tasks.append(asyncio.create_task(self._deliver_forever(), name=f"ami-{self.name}-events"))
        try:
            await self._connect_and_login()
        except AmiUnreachable as exc:
            if not unreachable_ok:
                raise
            log.warning("ami.unreachable_at_start", link=self.name, error=exc.message)
            self._queue.put_nowait(LinkStatus(up=False, reason="unreachable"))
            self._tasks.append(
                asyncio.create_task(self._supervise(up=False), name=f"ami-{self.name}-supervisor")
            )
            return
        self._set_up(True, "connected")
        self._tasks.append(asyncio.create_task(self._supervise(), name=f"ami-{self.name}-supervisor"))

    async def close(self) -> None:
        self._closing = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        for listing in (self._next, self._sent[0] if self._sent else None):
            if listing is not None:
                listing.cancel()  # its callers get CancelledError, as with any action at a close
        self._drop_manager()
        self._up = False

    async def originate(self, req: OriginateRequest) -> None:
        """Send one Originate; return when Asterisk has queued it. Never re-sent by the library.

        Raises AmiActionError if Asterisk refuses it or does not answer in time. After a
        timeout the call may or may not exist: the caller must not dial again blindly.
        """
        manager = self._require_up()
        fields: dict[str, str | list[str]] = {
            "Action": "Originate",
            # The ActionID is our ChannelId, so an OriginateResponse maps back to its call directly.
            "ActionID": req.channel_id,
            "Channel": req.channel,
            "Context": req.context,
            "Exten": req.exten,
            "Priority": str(req.priority),
            "Timeout": str(req.timeout_ms),
            "CallerID": req.caller_id,
            "Async": "true",  # exactly the string: panoramisk breaks on anything else
            "ChannelId": req.channel_id,
        }
        if req.other_channel_id:
            fields["OtherChannelId"] = req.other_channel_id
        if req.variables:
            fields["Variable"] = [f"{k}={v}" for k, v in req.variables.items()]
        action = OriginateAction(fields, on_event=self.message)
        manager.send_action(action)
        reply = await self._wait(action.ack, "Originate")
        if (reply.get("Response") or "") != "Success":
            raise AmiActionError(f"Asterisk refused the Originate: {reply.get('Message', '')}", refused=True)

    async def hangup(self, channel: str, cause: int = 16) -> bool:
        """Hang up a channel by name or ChannelId. False if Asterisk has no such channel; any other
        refusal (Permission denied: the AMI user lacks `call` write) raises AmiActionError: taken
        for a channel gone, a call still up was closed and the next resident put into its bridge."""
        reply = await self.action({"Action": "Hangup", "Channel": channel, "Cause": str(cause)})
        return _done_or_gone(reply, "Hangup")

    async def redirect(self, channel: str, context: str, exten: str, priority: int = 1) -> bool:
        """Send a channel on to another place in the dialplan. False if Asterisk has no such channel."""
        reply = await self.action(
            {
                "Action": "Redirect",
                "Channel": channel,
                "Context": context,
                "Exten": exten,
                "Priority": str(priority),
            }
        )
        return _done_or_gone(reply, "Redirect")

    async def channel_exists(self, channel: str) -> bool:
        """Whether Asterisk has this channel (by name or ChannelId) right now."""
        reply = await self.action({"Action": "Getvar", "Channel": channel, "Variable": "DIALER_ATTEMPT"})
        if (reply.get("Response") or "") == "Success":
            return True
        return _done_or_gone(reply, "Getvar")

    async def live_channels(self) -> set[str]:
        """The Uniqueid of every channel Asterisk has right now (our ChannelIds among them), from
        one CoreShowChannels: after a reconnect, what is still up is known in a single round trip."""
        return set(await self.channel_list())

    async def channel_names(self) -> dict[str, str]:
        """Uniqueid -> channel name (e.g. PJSIP/1001-0000002a) of every channel, by CoreShowChannels."""
        return {uid: str(item.get("Channel")) for uid, item in (await self.channel_list()).items()}

    async def channel_list(self) -> dict[str, Message]:
        """Uniqueid -> its CoreShowChannel item (Channel, ChannelStateDesc, Application, BridgeId…).

        Callers share a listing asked for after they asked. One already on its way was asked for
        earlier and may lack a call placed since (a call checked after a reconnect would be taken
        for lost), so a caller, with all who ask meanwhile, gets the next one, sent once that one is
        over: a hundred operators' pages coming back after a restart ask Asterisk twice, not a
        hundred times. A caller cancelled leaves the others theirs."""
        if self._next is None:
            self._next = asyncio.ensure_future(self._listing_after(self._sent))
            self._next.add_done_callback(_retrieved)
        return dict(await asyncio.shield(self._next))

    async def _listing_after(
        self, before: tuple[asyncio.Future[Any], asyncio.Event] | None
    ) -> dict[str, Message]:
        if before is not None:
            await before[1].wait()  # asked for before our callers asked: not theirs
        me, over = asyncio.current_task(), asyncio.Event()
        assert me is not None
        self._sent, self._next = (me, over), None  # callers from now on wait for the one after this
        try:
            return await self._channel_list()
        finally:
            over.set()
            if self._sent is not None and self._sent[1] is over:
                self._sent = None

    async def _channel_list(self) -> dict[str, Message]:
        items = await self.list_action({"Action": "CoreShowChannels"})
        return {
            str(m.get("Uniqueid")): m
            for m in items
            if m.get("Event") == "CoreShowChannel" and m.get("Uniqueid")
        }

    async def list_action(self, fields: dict[str, str | list[str]]) -> list[Message]:
        """Send a list action (CoreShowChannels, Status, ConfbridgeList…) and return its items:
        the events between the `EventList: start` response and the `…Complete` event."""
        manager = self._require_up()
        fields = {"ActionID": f"{self.name}-act-{next(self._action_ids)}", **fields}
        result = await self._wait(manager.send_action(fields), str(fields.get("Action")))
        messages = result if isinstance(result, list) else [result]
        head = messages[0]
        if (head.get("Response") or "") != "Success":
            raise AmiActionError(f"{fields.get('Action')} failed: {head.get('Message', '')}")
        return [m for m in messages[1:] if (m.get("EventList") or "") != "Complete"]

    async def action(self, fields: dict[str, str | list[str]]) -> Message:
        """Send a simple action and return its response (one message)."""
        manager = self._require_up()
        fields = {"ActionID": f"{self.name}-act-{next(self._action_ids)}", **fields}
        result = await self._wait(manager.send_action(fields), str(fields.get("Action")))
        return result[0] if isinstance(result, list) else result

    # ---- callbacks from LinkManager (run inside the protocol: never raise) ---------------------
    def message(self, message: Message) -> None:
        self._queue.put_nowait(events.parse(message))

    def connect_failed(self, exc: BaseException) -> None:
        if self._login is not None and not self._login.done():
            self._login.set_exception(
                AmiUnreachable(
                    f"Cannot reach Asterisk AMI at {self.settings.host}:{self.settings.port}: "
                    f"{exc}. Check AMI_HOST/AMI_PORT (or AMI_SERVERS) and that Asterisk is running."
                )
            )

    def login_done(self, ok: bool, message: str) -> None:
        if self._login is not None and not self._login.done():
            self._login.set_result((ok, message))

    def connection_lost(self, exc: object) -> None:
        reason = "shutdown" if isinstance(exc, Message) else f"connection lost: {exc or 'EOF'}"
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(reason)
        if self._login is not None and not self._login.done():
            self._login.set_exception(AmiUnreachable(f"Asterisk closed the AMI connection ({reason})"))

    # ---- internals ----------------------------------------------------------------------------
    def _require_up(self) -> LinkManager:
        if not self._up or self._manager is None or not self._manager.authenticated:
            raise AmiActionError(f"AMI link {self.name} is down")
        return self._manager

    async def _wait(self, fut: asyncio.Future[Message], what: str) -> Message:
        try:
            return await within(self.settings.action_timeout_s, asyncio.shield(fut))
        except TimeoutError:
            raise AmiActionError(
                f"no answer to {what} within {self.settings.action_timeout_s:g} s", definite=False
            ) from None

    async def _connect_and_login(self) -> None:
        self._drop_manager()
        loop = asyncio.get_running_loop()
        self._login = loop.create_future()
        self._lost = loop.create_future()
        s = self.settings
        self._manager = LinkManager(
            self, host=s.host, port=s.port, username=s.username, secret=s.secret, events="on", loop=loop
        )
        self._manager.connect()
        deadline = s.connect_timeout_s + 2.0  # a failed login is answered only after 1 s
        try:
            ok, message = await within(deadline, asyncio.shield(self._login))
        except TimeoutError:
            self._drop_manager()
            raise AmiUnreachable(
                f"No AMI login answer from {s.host}:{s.port} within {deadline:g} s. "
                "Is that an Asterisk manager port?"
            ) from None
        except AmiUnreachable:
            self._drop_manager()
            raise
        if not ok:
            self._drop_manager()
            raise AmiAuthFailed(
                f"Asterisk refused AMI login for user {s.username!r} at {s.host}:{s.port} ({message}). "
                "Check AMI_USER/AMI_SECRET against manager.conf."
            )

    def _drop_manager(self) -> None:
        if self._sent is not None:  # sent on this connection: the next listing does not wait for it
            self._sent[1].set()
            self._sent = None
        if self._manager is not None:
            manager, self._manager = self._manager, None
            manager.detach()

    def _set_up(self, up: bool, reason: str) -> None:
        if up != self._up:
            self._up = up
            if up:
                log.info("ami.link_up", link=self.name, reason=reason)
            else:  # calls cannot be placed nor followed: an admin filtering on warnings sees it
                log.warning("ami.link_down", link=self.name, reason=reason)
            self._queue.put_nowait(LinkStatus(up=up, reason=reason))

    async def _supervise(self, up: bool = True) -> None:
        delay = self.settings.reconnect_min_s
        while not self._closing:
            if up:
                reason = await self._watch()
                self._set_up(False, reason)
                self._drop_manager()
            up = True  # from the next turn on: watched once connected
            while not self._closing:
                await asyncio.sleep(delay)
                try:
                    await self._connect_and_login()
                except (AmiUnreachable, AmiAuthFailed) as exc:
                    # a refused login is not retried every few seconds: Asterisk logs each one as a
                    # security event, and fail2ban on the PBX may ban the dialer's address (review)
                    unreachable = isinstance(exc, AmiUnreachable)
                    most = self.settings.reconnect_max_s if unreachable else self.settings.auth_retry_max_s
                    delay = min(delay * 2, most)
                    log.warning("ami.reconnect_failed", link=self.name, error=exc.message, retry_s=delay)
                    continue
                delay = self.settings.reconnect_min_s
                self._set_up(True, "reconnected")
                break

    async def _watch(self) -> str:
        """Ping on an interval; return why the link is gone (lost, or no Pong in time)."""
        assert self._lost is not None
        while True:
            done, _ = await asyncio.wait({self._lost}, timeout=self.settings.ping_interval_s)
            if done:
                return self._lost.result()
            manager = self._manager
            if manager is None:
                return "closed"
            try:
                pong = manager.send_action({"Action": "Ping"})
                await within(self.settings.ping_timeout_s, asyncio.shield(pong))
            except TimeoutError:
                log.warning("ami.ping_timeout", link=self.name, timeout_s=self.settings.ping_timeout_s)
                return "no answer to Ping"

    async def _deliver_forever(self) -> None:
        while True:
            event = await self._queue.get()
            for handler in self._handlers:
                try:
                    result = handler(event)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    log.exception("ami.handler_failed", link=self.name, kind=type(event).__name__)


def _retrieved(done: asyncio.Future[Any]) -> None:
    """A shared listing's outcome is taken even when every caller has gone (cancelled)."""
    if not done.cancelled():
        done.exception()


def _done_or_gone(reply: Message, action: str) -> bool:
    """True: done; False: Asterisk has no such channel (Hangup, Getvar: 'No such channel';
    Redirect: 'Channel does not exist: …', or 'Redirect failed, channel not up.' for one hanging
    up); any other error raises AmiActionError with its words."""
    if (reply.get("Response") or "") == "Success":
        return True
    message = str(reply.get("Message") or "")
    if any(gone in message.lower() for gone in ("no such channel", "does not exist", "channel not up")):
        return False
    raise AmiActionError(f"Asterisk refused the {action}: {message}", refused=True)
