"""``Local/<exten>@<context>``: two halves ``;1``/``;2`` joined by a LocalBridge (02/03/04/06f).

``;1`` is the originated channel; ``;2`` runs ``<exten>@<context>``: the recorded sim contexts
(``sim-callee``, ``sim-resident``) or an operator's phone (``dialer-phone``). Anything else is
"no such extension" (ami_CDEFGH case H).
"""

from __future__ import annotations

from collections.abc import Callable

from .behaviour import HUMAN, FarScript, Verdict, far_script
from .calls import R_BUSY, R_CONGESTION, R_FAILED, R_HANGUP, R_NOANSWER, Call
from .channels import (
    BUSY,
    RING,
    RINGING,
    UP,
    Channel,
    chan_event,
    device_state,
    dial_event,
    hangup_request,
    newexten,
    newstate,
    soft_hangup_request,
    user_event,
    varset,
)
from .hangups import AMI_SOFT

PLAYTONES = {"human": "0/300,440/800,0", "machine": "0/300,440/4000,0"}


def _fmt(seconds: float) -> str:
    return str(int(seconds)) if seconds == int(seconds) else str(seconds)


class LocalCall(Call):
    def start(self) -> None:
        req, core = self.req, self.core
        exten, _, context = req.dial.split("/", 1)[1].partition("@")
        context = context.split("/", 1)[0]
        self.exten, self.context = exten, context
        variables = dict(req.variables)
        self.phone = context == "dialer-phone" and exten != ""
        self.script: FarScript | None = None if self.phone else far_script(context, exten, variables)
        base = f"Local/{exten}@{context}-{core.next_seq()}"
        uid1 = req.channel_id or core.new_uniqueid()
        uid2 = req.other_id or core.new_uniqueid()
        device = f"Local/{exten}@{context}"
        self.one = one = self.new_channel(f"{base};1", uid1, uid1, context, exten, device)
        self.two = two = self.new_channel(f"{base};2", uid2, uid1, context, exten, device)
        two.target = None
        one.peer, two.peer, two.state = two, one, RING
        core.emit(chan_event("Newchannel", one), chan_event("Newchannel", two))
        core.emit(newexten(one, 1, "AppDial2", "(Outgoing Line)"))
        if self.script is None and not self.phone:
            self._no_such_extension()
            return
        core.emit(*(varset(one, k, v) for k, v in reversed(req.variables)))
        self.set_callerid(one)
        core.emit(*(varset(two, k, v) for k, v in req.variables))
        self.set_callerid(two, connected_too=True)
        core.emit(self._local_bridge(), dial_event("DialBegin", one, [("DialString", f"{exten}@{context}")]))
        one.on_cancel = lambda cause, down: self._cancel(one, cause, down)
        two.on_cancel = lambda cause, down: self._cancel(two, cause, down)
        core.later(req.timeout_s, self._timeout, owner=one)
        if self.phone:
            self._phone()
        else:
            self._far()

    def _local_bridge(self) -> list[tuple[str, str]]:
        one, two = self.one, self.two
        return [
            ("Event", "LocalBridge"),
            ("Privilege", "call,all"),
            *one.snapshot("LocalOne"),
            *two.snapshot("LocalTwo"),
            ("Context", self.context),
            ("Exten", self.exten),
            ("LocalOptimization", "Yes"),
        ]

    def _step(self, priority: int, app: str, data: str = "") -> None:
        self.core.emit(newexten(self.two, priority, app, data))

    def _later(self, seconds: float, fn: Callable[[], None]) -> None:
        if seconds < self.req.timeout_s or self.one.answered:
            self.core.later(seconds, fn, owner=self.two)

    def _ring(self, priority: int, wait: str, order: str) -> None:
        """Ringing() then Wait(); the DialState/DeviceStateChange interleaving varies by run,
        ``order`` picks the one recorded for this far party ("w" Wait, "r" DialState, "d" device)."""
        self._step(priority, "Ringing")
        self.core.emit(newstate(self.one, RINGING))
        for part in order:
            if part == "w":
                self._step(priority + 1, "Wait", wait)
            elif part == "r":
                self.core.emit(dial_event("DialState", self.one, [("DialStatus", "RINGING")]))
            else:
                self.core.emit(device_state(self.one.device, "INUSE"))

    # ----- the far half: an operator's phone ---------------------------------------------------
    def _phone(self) -> None:
        attempt = self.req_var("DIALER_ATTEMPT")
        self.two.phone_ext = self.exten
        self.one.verdict = Verdict(*HUMAN, self.core.scaled(2.4))
        ring_var = self.req_var("PHONE_RINGSEC")
        ring = self.core.scaled(float(ring_var)) if ring_var else self.core.config.operator_answer_s
        self._step(1, "NoOp", f"phone {self.exten} ringing, attempt={attempt}")
        self._ring(2, ring_var or _fmt(round(ring, 3)), "wrd")  # 02
        self._later(ring, lambda: self._answered(4, after=lambda: self._step(5, "Wait", "3600")))

    def req_var(self, name: str) -> str:
        return dict(self.req.variables).get(name, "")

    # ----- the far half: sim-callee / sim-resident -------------------------------------------------
    def _far(self) -> None:
        script = self.script
        assert script is not None
        self._step(1, "NoOp", script.noop)
        priority = 2
        for name, value in script.sets:
            self._step(priority, "Set", f"{name}={value}")
            self.core.emit(varset(self.two, name, value))
            priority += 1
        ring = self.core.scaled(script.ring_s)
        if script.result == "congestion":
            self._step(priority, "Congestion", "3")
            self._congestion()
            return
        order = {"sim-resident": "wdr", "noanswer": "drw"}  # 03, 06f; the others as 06f busy
        self._ring(priority, _fmt(script.ring_s), order.get(self.context, order.get(self.exten, "wrd")))
        answer_priority = priority + 2
        if script.verdict is not None:
            verdict = script.verdict
            self.one.verdict = Verdict(verdict.status, verdict.cause, self.core.scaled(verdict.after_s))
        if script.result == "busy":
            self._later(ring, lambda: self._busy(answer_priority))
        elif script.result in ("answer", "machine"):
            self._later(ring, lambda: self._answered(answer_priority, after=self._talk))

    def _talk(self) -> None:
        """After Answer() (which waits 0.5 s) the sim party plays its greeting, then hangs up."""
        script, priority = self.script, self.two.priority + 1
        assert script is not None and script.talk_s is not None
        talk = script.talk_s - 0.5
        if self.context == "sim-resident":
            self._step(priority, "PlayTones", PLAYTONES[self.exten])
            self._step(priority + 1, "Wait", _fmt(talk))
            self._later(self.core.scaled(talk), lambda: self._far_hangup(priority + 2))
            return
        self._step(priority, "UserEvent", f"SimCallee,State: answered,Talk: {_fmt(talk)}")
        fields = [("State", "answered"), ("Talk", _fmt(talk))]
        self.core.emit(user_event(self.two, "SimCallee", fields))
        self._step(priority + 1, "AGI", "hello-agi.sh")
        self._step(priority + 2, "Wait", _fmt(talk))

        def bye() -> None:
            self._step(priority + 3, "UserEvent", "SimCallee,State: hanging-up")
            self.core.emit(user_event(self.two, "SimCallee", [("State", "hanging-up")]))
            self._step(priority + 4, "Hangup", "16")
            self.hangups.dialplan_hangup(self.two, 16)

        self._later(self.core.scaled(talk), bye)

    def _far_hangup(self, priority: int) -> None:
        self._step(priority, "StopPlayTones")
        self._step(priority + 1, "Hangup", "16")
        self.hangups.dialplan_hangup(self.two, 16)

    # ----- outcomes ---------------------------------------------------------------------------
    def _answered(self, priority: int, after: Callable[[], None]) -> None:
        one, two = self.one, self.two
        self._step(priority, "Answer")
        one.on_cancel = two.on_cancel = None
        self.core.cancel_owned(one)
        two.answered = True
        self.core.emit(newstate(two, UP), newstate(one, UP))
        self.core.emit(device_state(one.device, "INUSE"), device_state(one.device, "INUSE"))
        self.core.emit(dial_event("DialEnd", one, [("DialStatus", "ANSWER")]))
        self.to_dialplan(one)
        delay = self.core.scaled(0.5) if self.script is not None else self.core.scaled(0.02)
        if two.alive:
            self.core.later(delay, after, owner=two)

    def _fail_halves(self, cause_one: int, cause_two: int, soft_first: bool = True) -> None:
        if soft_first:
            self.core.emit(soft_hangup_request(self.two, AMI_SOFT))
        self.hangups.finish(self.one, cause_one, dsc=False)
        if not soft_first:
            self.core.emit(soft_hangup_request(self.two, AMI_SOFT))
        self.hangups.finish(self.two, cause_two, dsc=False)

    def _not_inuse(self) -> None:
        self.core.emit(*(device_state(self.one.device, "NOT_INUSE") for _ in range(2)))

    def _busy(self, priority: int) -> None:  # 06f: Busy(3) on the far half
        one, two = self.one, self.two
        self._step(priority, "Busy", "3")
        self.core.emit(newstate(two, BUSY), dial_event("DialEnd", one, [("DialStatus", "BUSY")]))
        self.core.emit(device_state(one.device, "INUSE"), hangup_request(two, 0))
        self.outcome(False, R_BUSY)
        self._fail_halves(0, 17)
        self._not_inuse()

    def _congestion(self) -> None:  # 06f: Congestion(3) at once
        one, two = self.one, self.two
        self.core.emit(newstate(two, BUSY), device_state(one.device, "INUSE"))
        self.core.emit(dial_event("DialEnd", one, [("DialStatus", "CONGESTION")]), hangup_request(two, 0))
        self._fail_halves(0, 34)
        self.outcome(False, R_CONGESTION)
        self._not_inuse()

    def _timeout(self) -> None:  # 06f: Timeout while ringing
        self.core.emit(hangup_request(self.two, 19))
        self.outcome(False, R_NOANSWER)
        self._fail_halves(19, 19, soft_first=False)
        self._not_inuse()

    def _cancel(self, ch: Channel, cause: int | None, shutdown: bool) -> None:
        """Hung up while still dialing (not recorded; modelled on the Local hangup of 07)."""
        given = cause if cause is not None else 0
        if not shutdown:
            self.core.emit(soft_hangup_request(ch, AMI_SOFT))
        self.outcome(False, R_HANGUP)
        self.core.emit(dial_event("DialEnd", self.one, [("DialStatus", "CANCEL")]))
        other = self.two if ch is self.one else self.one
        self.core.emit(hangup_request(other, given))
        self.hangups.finish(self.two, given, dsc=False)
        self.hangups.finish(self.one, given, dsc=False)
        self._not_inuse()

    def _no_such_extension(self) -> None:  # ami_CDEFGH case H
        self.set_callerid(self.one)
        self.set_callerid(self.two, connected_too=True)
        self.hangups.finish(self.two, 0, dsc=False)
        self.outcome(False, R_FAILED)
        self.hangups.finish(self.one, 0, dsc=False)
        self.core.emit(*(device_state(self.one.device, "INVALID") for _ in range(2)))
