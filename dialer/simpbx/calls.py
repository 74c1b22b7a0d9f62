"""Originate: the dial phase of a call, from Newchannel to answer or failure.

``PjsipCall`` reproduces the recorded SIP cases (06a busy 486, 06b no answer at Timeout,
06c congestion 503, 06d answer then remote BYE, 06e no response); ``local.LocalCall`` the two
halves of a Local channel (02/03/04/06f). Once answered, the channel runs the Originate's
context in ``dialplan.Dialplan``. Phone numbers appear in events as Asterisk sends them, but
are never logged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .behaviour import Behaviour, verdict_for
from .channels import (
    RINGING,
    UNKNOWN,
    UP,
    Channel,
    chan_event,
    device_state,
    dial_event,
    hangup_request,
    newexten,
    newstate,
    soft_hangup_request,
    varset,
)
from .core import Core
from .dialplan import Dialplan
from .hangups import AMI_SOFT, Hangups
from .wire import Headers

CID_PRES = ("CID-CallingPres", "0 (Presentation Allowed, Not Screened)")
# OriginateResponse Reason codes (as recorded): 0 failed, 1 hung up, 3 no answer, 4 answered,
# 5 busy (Local), 8 congestion (Local).
R_FAILED, R_HANGUP, R_NOANSWER, R_ANSWERED, R_BUSY, R_CONGESTION = 0, 1, 3, 4, 5, 8


@dataclass
class Originate:
    """A parsed Originate action."""

    dial: str
    context: str = ""
    exten: str = ""
    priority: int = 1
    timeout_s: float = 30.0
    callerid: tuple[str, str] | None = None  # (number, name)
    variables: list[tuple[str, str]] = field(default_factory=list)
    action_id: str | None = None
    channel_id: str | None = None
    other_id: str | None = None
    is_async: bool = True
    application: str = ""
    app_data: str = ""


class Call:
    """Common parts of one Originate: the outcome report and the hand-over to the dialplan."""

    def __init__(
        self, core: Core, plan: Dialplan, hangups: Hangups, req: Originate, done: Callable[[bool], None]
    ) -> None:
        self.core, self.plan, self.hangups, self.req = core, plan, hangups, req
        self._done = done
        self.settled = False

    def outcome(self, ok: bool, reason: int, channel: Channel | None = None) -> None:
        """OriginateResponse (async) or the deferred action response (sync), exactly once."""
        if self.settled:
            return
        self.settled = True
        req = self.req
        if req.is_async:
            num, name = req.callerid or (UNKNOWN, UNKNOWN)
            if channel is not None:
                chan_name, uid = channel.name, channel.uniqueid
            else:
                chan_name, uid = req.dial, req.channel_id or UNKNOWN
            msg: Headers = [("Event", "OriginateResponse"), ("Privilege", "call,all")]
            if req.action_id is not None:
                msg.append(("ActionID", req.action_id))
            msg += [
                ("Response", "Success" if ok else "Failure"),
                ("Channel", chan_name),
                ("Context", req.context),
                ("Exten", req.exten),
                ("Reason", str(reason)),
                ("Uniqueid", uid),
                ("CallerIDNum", num or UNKNOWN),
                ("CallerIDName", name or UNKNOWN),
            ]
            self.core.emit(msg)
        self._done(ok)

    def set_callerid(self, ch: Channel, connected_too: bool = False) -> None:
        if self.req.callerid is None:
            return
        num, name = self.req.callerid
        ch.cid_num, ch.cid_name = num or UNKNOWN, name or UNKNOWN
        if connected_too:
            ch.conn_num, ch.conn_name = ch.cid_num, ch.cid_name
        self.core.emit(chan_event("NewCallerid", ch, [CID_PRES]))
        ch.conn_num, ch.conn_name = ch.cid_num, ch.cid_name
        self.core.emit(chan_event("NewConnectedLine", ch))

    def new_channel(self, name: str, uid: str, linked: str, context: str, exten: str, device: str) -> Channel:
        tech = name.split("/", 1)[0]
        ch = Channel(name, uid, linked, context, exten, tech, device)
        ch.target = (self.req.context, self.req.exten, self.req.priority)
        self.core.add(ch)
        return ch

    def to_dialplan(self, ch: Channel) -> None:
        """The originated channel answered: run the Originate's context (or application)."""
        ch.answered = True
        if self.req.application:
            self.core.emit(newexten(ch, 1, self.req.application, self.req.app_data))
            self.outcome(True, R_ANSWERED, ch)
            return
        context, exten, priority = ch.target or (self.req.context, self.req.exten, self.req.priority)
        self.plan.run(ch, context, exten, priority, lambda: self.outcome(True, R_ANSWERED, ch))


class PjsipCall(Call):
    """``PJSIP/<number>@<trunk>`` (a resident) or ``PJSIP/<extension>`` (an operator's phone)."""

    def __init__(
        self,
        core: Core,
        plan: Dialplan,
        hangups: Hangups,
        req: Originate,
        done: Callable[[bool], None],
        behaviour: Behaviour,
        endpoint: str,
        phone_ext: str = "",
    ) -> None:
        super().__init__(core, plan, hangups, req, done)
        self.behaviour, self.endpoint, self.phone_ext = behaviour, endpoint, phone_ext
        self.rang = False

    def start(self) -> None:
        req, b = self.req, self.behaviour
        uid = req.channel_id or self.core.new_uniqueid()
        context = "from-internal" if self.phone_ext else "from-trunk"
        ch = self.new_channel(
            f"PJSIP/{self.endpoint}-{self.core.next_seq()}", uid, uid, context, "s", f"PJSIP/{self.endpoint}"
        )
        self.ch = ch
        ch.phone_ext, ch.verdict = self.phone_ext, verdict_for(b)
        ch.on_cancel = self._cancel
        self.core.emit(chan_event("Newchannel", ch), newexten(ch, 1, "AppDial2", "(Outgoing Line)"))
        self.core.emit(*(varset(ch, k, v) for k, v in reversed(req.variables)))
        self.set_callerid(ch)
        self.core.emit(dial_event("DialBegin", ch, [("DialString", req.dial.split("/", 1)[1])]))
        self.core.later(req.timeout_s, self._timeout, owner=ch)
        if b.result == "congestion":
            self._congestion()
            return
        if b.result == "unreachable":
            return
        self._ringing()
        if b.result == "busy" and b.ring_s < req.timeout_s:
            self.core.later(b.ring_s, self._busy, owner=ch)
        elif b.result in ("answer", "machine") and b.ring_s < req.timeout_s:
            self.core.later(b.ring_s, self._answer, owner=ch)

    def _ringing(self) -> None:
        self.rang = True
        self.core.emit(
            newstate(self.ch, RINGING),
            device_state(self.ch.device, "RINGING"),
            dial_event("DialState", self.ch, [("DialStatus", "RINGING")]),
        )

    def _busy(self) -> None:  # 06a: 180, then 486 Busy Here
        ch = self.ch
        self.core.emit(hangup_request(ch, 17, 486))
        self.outcome(False, R_FAILED)
        self.core.emit(dial_event("DialEnd", ch, [("DialStatus", "BUSY")]))
        self.hangups.finish(ch, 17, 486)

    def _congestion(self) -> None:  # 06c: 503 at once
        ch = self.ch
        self.outcome(False, R_FAILED)
        self.core.emit(hangup_request(ch, 34, 503), dial_event("DialEnd", ch, [("DialStatus", "CONGESTION")]))
        self.hangups.finish(ch, 34, 503, dsc=False)

    def _timeout(self) -> None:  # 06b/06e: the Originate's Timeout ran out
        self.outcome(False, R_NOANSWER)
        self.hangups.finish(self.ch, 19, 480, dsc=self.rang)

    def _cancel(self, cause: int | None, shutdown: bool) -> None:
        """Hung up while still dialing (not recorded; modelled on Asterisk's dial code)."""
        ch = self.ch
        if not shutdown:
            self.core.emit(soft_hangup_request(ch, AMI_SOFT))
        self.outcome(False, R_HANGUP)
        self.core.emit(dial_event("DialEnd", ch, [("DialStatus", "CANCEL")]))
        self.hangups.finish(ch, cause if cause is not None else 0, dsc=self.rang)

    def _answer(self) -> None:  # 06d: 200 OK
        ch = self.ch
        ch.on_cancel = None
        self.core.cancel_owned(ch)
        self.core.emit(
            newstate(ch, UP),
            device_state(ch.device, "INUSE"),
            dial_event("DialEnd", ch, [("DialStatus", "ANSWER")]),
        )
        self.to_dialplan(ch)
        talk = self.behaviour.talk_s
        if talk is not None and ch.alive:
            cause = 16 if self.phone_ext else 0
            self.core.later(talk, lambda: self.hangups.remote_bye(ch, cause), owner=ch)
