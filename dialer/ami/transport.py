"""panoramisk, with its pitfalls neutralised. This package is the only place that imports it.

What is changed, and why (see ../shared/design/STYLE.md):
- The protocol decodes UTF-8 incrementally (panoramisk drops a character split across two TCP
  reads), isolates every message (a raising callback would kill the connection and lose the rest
  of the chunk), and caps a frame's size so a broken peer cannot eat memory: an oversized frame
  is logged and skipped up to its blank line, and what follows it is read as usual.
- The manager never reconnects on its own and never sends its blind Ping: `AmiLink` owns
  liveness (a Ping with a deadline) and reconnects with back-off.
- No action is ever replayed after a reconnect: an Originate that reached Asterisk before the
  link dropped would be dialled twice. `forgetable_actions` matches every action.
- An Originate's own future resolves only when the call has finished ringing, and its
  `OriginateResponse` bypasses event handlers; `OriginateAction` exposes the immediate
  "queued" answer as `ack` and hands the OriginateResponse to the event stream as well.
"""

from __future__ import annotations

import asyncio
import codecs
from collections.abc import Callable
from typing import Any, Protocol

from panoramisk import actions as pk_actions
from panoramisk.ami_protocol import AMIProtocol
from panoramisk.manager import Manager
from panoramisk.message import Message

from dialer import logs

log = logs.get("dialer.ami")

EOL2 = "\r\n\r\n"
MAX_FRAME_CHARS = 1 << 20  # no real AMI message comes near 1 MiB


class LinkCallbacks(Protocol):
    def connect_failed(self, exc: BaseException) -> None: ...
    def login_done(self, ok: bool, message: str) -> None: ...
    def connection_lost(self, exc: object) -> None: ...
    def message(self, message: Message) -> None: ...


class _Detached:
    """Callbacks of a manager that has been replaced: its late news must not reach the link."""

    def connect_failed(self, exc: BaseException) -> None:
        pass

    def login_done(self, ok: bool, message: str) -> None:
        pass

    def connection_lost(self, exc: object) -> None:
        pass

    def message(self, message: Message) -> None:
        pass


class NeverReplay:
    """A `forgetable_actions` container that contains every action name."""

    def __contains__(self, item: object) -> bool:
        return True


class SafeProtocol(AMIProtocol):  # type: ignore[misc]
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.version: str | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._buffer = ""
        self._skipping = False  # inside an oversized frame: dropping text up to its blank line

    def data_received(self, data: bytes) -> None:
        try:
            text = self._buffer + self._decoder.decode(data)
            if self._skipping:
                end = text.find(EOL2)
                if end < 0:
                    self._buffer = text[-(len(EOL2) - 1) :]  # the blank line may straddle two reads
                    return
                self._skipping = False
                text = text[end + len(EOL2) :]
            if self.version is None and text.startswith("Asterisk Call Manager/"):
                banner, _, text = text.partition("\r\n")
                self.version = banner.partition("/")[2].strip()
            frames = text.split(EOL2)
            self._buffer = frames.pop()
            for whole in frames:
                # A sender ending lines and frames in LF alone (Asterisk sends CR LF): each such
                # frame is skipped, and the good one read with it is not lost
                *bare, frame = whole.split("\n\n")
                for part in bare:
                    log.warning(
                        "ami.frame_skipped", reason="lines end in LF alone, not CR LF", chars=len(part)
                    )
                if len(frame) > MAX_FRAME_CHARS:
                    log.error("ami.frame_skipped", reason="larger than the frame limit", chars=len(frame))
                    continue
                self._handle_frame(frame)
            if len(self._buffer) > MAX_FRAME_CHARS:
                log.error("ami.frame_skipped", reason="larger than the frame limit", chars=len(self._buffer))
                self._buffer, self._skipping = "", True
        except Exception:
            log.exception("ami.read_failed")

    def _handle_frame(self, frame: str) -> None:
        try:
            message = Message.from_line(frame.strip())
            if message is None:
                if frame.strip():
                    log.warning("ami.frame_skipped", reason="no Event or Response header", chars=len(frame))
                return
            if "Event" not in message and not self._awaited(message):
                log.warning("ami.frame_skipped", reason="a response to no action of ours", chars=len(frame))
                return
            self.handle_message(message)
        except Exception:
            log.exception("ami.frame_failed", chars=len(frame))

    def _awaited(self, message: Message) -> bool:
        ids = (message.id, message.action_id)
        return any(isinstance(i, str) and i in self.responses for i in ids)


class OriginateAction(pk_actions.Action):  # type: ignore[misc]
    """An Originate whose first answer ("successfully queued" or an error) resolves `ack`."""

    def __init__(self, fields: dict[str, str | list[str]], on_event: Callable[[Message], None]) -> None:
        super().__init__(fields)
        self.ack: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._on_event = on_event

    def add_message(self, message: Message) -> Any:
        if not self.ack.done():
            self.ack.set_result(message)
        if "event" in message:
            self._on_event(message)
        return super().add_message(message)


class LinkManager(Manager):  # type: ignore[misc]
    """A panoramisk Manager that reports to an `AmiLink` instead of reconnecting by itself."""

    def __init__(self, link: LinkCallbacks, **config: Any) -> None:
        super().__init__(
            protocol_factory=SafeProtocol,
            forgetable_actions=NeverReplay(),
            log=logs.get("panoramisk"),
            **config,
        )
        self._link: LinkCallbacks = link
        self.register_event("*", self._dispatch_all)

    def detach(self) -> None:
        """Stop reporting to the link, then close the connection."""
        self._link = _Detached()
        self.close()

    def _dispatch_all(self, _manager: Manager, message: Message) -> None:
        try:
            self._link.message(message)
        except Exception:
            log.exception("ami.dispatch_failed")

    def connection_made(self, f: asyncio.Future[Any]) -> None:
        if f.cancelled():
            self._link.connect_failed(asyncio.CancelledError())
            return
        exc = f.exception()
        if exc is not None:
            self._link.connect_failed(exc)
            return
        super().connection_made(f)

    def login(self, future: asyncio.Future[Message]) -> bool:
        try:
            ok = bool(super().login(future))
            message = future.result().get("Message", "")
        except Exception as exc:
            ok, message = False, repr(exc)
        self._link.login_done(ok, str(message))
        return ok

    def ping(self) -> None:
        """Disabled: AmiLink sends its own Ping and checks that an answer comes."""

    def connection_lost(self, exc: object) -> None:
        self._connected = False
        self.authenticated = False
        if exc is None and getattr(getattr(self, "protocol", None), "version", None) is None:
            # closed before Asterisk's greeting ("Asterisk Call Manager/…"): another service's port
            exc = ConnectionError(
                "closed before Asterisk's greeting: is that Asterisk's manager port (manager.conf `port`, 5038)?"
            )
        self._link.connection_lost(exc)
