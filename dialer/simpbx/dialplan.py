"""What an answered channel does next: the product's dialplan (asterisk-conf/extensions.conf).

Each context is a short script of ``Newexten`` steps with the product's priorities; waits are
loop timers owned by the channel (``dialplan=True``, so a Redirect cancels them). The contexts
only used by the recordings (dialer-wait, dialer-bridge, dialer-redirected) are here as well,
so that the transcripts replay. Unknown contexts behave like dialer-hold.
"""

from __future__ import annotations

from collections.abc import Callable

from . import conference
from .behaviour import HUMAN, Verdict
from .channels import Channel, chanspy_event, newexten, user_event, varset
from .core import Core
from .hangups import Hangups
from .inbound import InboundLine

Started = Callable[[], None]
SPY_OPTIONS = {"listen": "qE", "whisper": "qEw", "barge": "qEB"}  # as in asterisk-conf [dialer-listen]


def _nothing() -> None:
    return None


def _num(text: str, default: float) -> float:
    try:
        return float(text)
    except ValueError:
        return default


class Dialplan:
    def __init__(self, core: Core, hangups: Hangups) -> None:
        self.core = core
        self.hangups = hangups
        self.inbound = InboundLine(core, hangups, self)

    # ----- plumbing ----------------------------------------------------------------------
    def _step(self, ch: Channel, priority: int, app: str, data: str = "") -> None:
        self.core.emit(newexten(ch, priority, app, data))

    def _wait(self, ch: Channel, seconds: float, then: Callable[[], None]) -> None:
        def go() -> None:
            if ch.alive:
                then()

        self.core.later(seconds, go, owner=ch, dialplan=True)

    def _attempt(self, ch: Channel) -> str:
        return ch.variables.get("DIALER_ATTEMPT", "")

    def _hangup_step(self, ch: Channel, priority: int) -> None:
        self._step(ch, priority, "Hangup", "16")
        self.hangups.dialplan_hangup(ch, 16)

    def run(
        self, ch: Channel, context: str, exten: str, priority: int = 1, started: Started = _nothing
    ) -> None:
        """Start ``ch`` at context,exten,priority; ``started`` fires where OriginateResponse goes."""
        ch.context, ch.exten = context, exten
        handlers: dict[str, Callable[[Channel, int, Started], None]] = {
            "dialer-agent": self._agent,
            "dialer-connect": self._connect,
            "dialer-abandon": self._abandon,
            "dialer-bridge": self._bridge,
            "dialer-wait": self._wait_redirect,
            "dialer-redirected": self._redirected,
            "dialer-predictive": self._predictive,
            "dialer-join": self._join,
            "dialer-machine": self._machine,
            "dialer-listen": self._listen,
            "dialer-spy": self._spy,  # the recording's own context (08)
            "dialer-inbound": self._inbound,
            "dialer-inbound-join": self._inbound_join,
        }
        handlers.get(context, self._hold)(ch, priority, started)

    def redirect(self, ch: Channel, context: str, exten: str, priority: int) -> None:
        """AMI Redirect: leave the current application (and bridge) and go on elsewhere."""
        if not ch.answered:
            ch.target = (context, exten, priority)
            return
        self.core.cancel_owned(ch, dialplan_only=True)
        conf = ch.conference
        if conf is not None:
            kicked = conf.leave(ch, "")
            conf.end_if_empty()
            self.hangups.after_bridge(kicked)
        self.run(ch, context, exten, priority)

    # ----- operator session ----------------------------------------------------------------
    def _agent(self, ch: Channel, priority: int, started: Started) -> None:
        ext = ch.exten
        self._step(ch, 1, "NoOp", f"operator {ext} session, attempt={self._attempt(ch)}")
        started()
        self._step(ch, 2, "Answer")
        self._step(ch, 3, "ConfBridge", f"agent-{ext},dialer_bridge,dialer_agent")
        conference.join(self.core, f"agent-{ext}", ch, conference.OPERATOR)

    # ----- resident reserved for an operator ---------------------------------------------------
    def _connect(self, ch: Channel, priority: int, started: Started) -> None:
        ext, attempt = ch.exten, self._attempt(ch)
        self._step(ch, 1, "NoOp", f"resident answered, attempt={attempt}, operator={ext}")
        started()
        amd_off = ch.variables.get("DIALER_AMD", "") == "off" or priority > 5
        self._step(ch, 2, "GotoIf", f"{int(amd_off)}?bridge")
        if amd_off:
            self._connect_bridge(ch)
            return
        self._step(ch, 3, "AMD")
        verdict = ch.verdict or Verdict(*HUMAN, self.core.scaled(2.4))
        self._wait(ch, verdict.after_s, lambda: self._amd_done(ch, verdict))

    def _report_amd(self, ch: Channel, priority: int, verdict: Verdict) -> None:
        attempt = self._attempt(ch)
        self.core.emit(varset(ch, "AMDSTATUS", verdict.status), varset(ch, "AMDCAUSE", verdict.cause))
        data = f"DialerAMD,Attempt: {attempt},AMDStatus: {verdict.status},AMDCause: {verdict.cause}"
        self._step(ch, priority, "UserEvent", data)
        fields = [("Attempt", attempt), ("AMDStatus", verdict.status), ("AMDCause", verdict.cause)]
        self.core.emit(user_event(ch, "DialerAMD", fields))

    def _amd_done(self, ch: Channel, verdict: Verdict) -> None:
        self._report_amd(ch, 4, verdict)
        # NOTSURE goes to the operator (product dialplan); only MACHINE is hung up on.
        machine = verdict.status == "MACHINE"
        self._step(ch, 5, "GotoIf", f"{int(machine)}?machine")
        if machine:
            self._goto_machine(ch, 10)
            return
        self._connect_bridge(ch)

    def _connect_bridge(self, ch: Channel, at: int = 6) -> None:
        """The operator's bridge, or the abandon message when it is empty (from priority ``at``)."""
        room = f"agent-{ch.exten}"
        ops = conference.parties(self.core, room)
        self._step(ch, at, "Set", f"OPS={ops}")
        self.core.emit(varset(ch, "OPS", str(ops)))
        self._step(ch, at + 1, "GotoIf", f"{int(ops == 0)}?dialer-abandon,s,1")
        if ops == 0:
            self.run(ch, "dialer-abandon", "s")
            return
        self._step(ch, at + 2, "ConfBridge", f"{room},dialer_bridge,dialer_resident")
        conference.join(self.core, room, ch, conference.RESIDENT)

    # ----- predictive: nobody reserved; the dialer Redirects a person ---------------------------------
    def _predictive(self, ch: Channel, priority: int, started: Started) -> None:
        self._step(ch, 1, "NoOp", f"resident answered, attempt={self._attempt(ch)}, predictive")
        started()
        self._step(ch, 2, "AMD")
        verdict = ch.verdict or Verdict(*HUMAN, self.core.scaled(2.4))

        def reported() -> None:
            self._report_amd(ch, 3, verdict)
            machine = verdict.status == "MACHINE"
            self._step(ch, 4, "GotoIf", f"{int(machine)}?machine")
            if machine:
                self._goto_machine(ch, 7)
                return
            self._step(ch, 5, "Wait", "0.5")
            # (a test's scaled time never makes it shorter than 50 ms: the dialer's Redirect, sent
            # within milliseconds, must not race it on a loaded machine)
            self._wait(ch, max(self.core.scaled(0.5), 0.05), lambda: self._goto_abandon(ch, 6))

        self._wait(ch, verdict.after_s, reported)

    def _join(self, ch: Channel, priority: int, started: Started) -> None:
        self._step(ch, 1, "NoOp", f"resident to operator {ch.exten}, attempt={self._attempt(ch)}")
        started()
        self._connect_bridge(ch, at=2)

    # ----- residents calling in (simpbx/inbound.py) ---------------------------------------------
    def _inbound(self, ch: Channel, priority: int, started: Started) -> None:
        started()
        self.inbound.inbound(ch, priority)

    def _inbound_join(self, ch: Channel, priority: int, started: Started) -> None:
        started()
        self.inbound.join(ch)

    # ----- a supervisor listens in (08) ----------------------------------------------------------
    def _spy(self, ch: Channel, priority: int, started: Started) -> None:
        target = ch.variables.get("SPY_TARGET", "")
        self._step(ch, 1, "NoOp", f"supervisor listens to {target}, attempt={self._attempt(ch)}")
        started()
        self._chanspy(ch, 2, target, "qE")

    def _listen(self, ch: Channel, priority: int, started: Started) -> None:
        """asterisk-conf [dialer-listen]: ChanSpy on the operator's session channel, in the mode
        the dialer asked for (an unknown one listens only)."""
        target, mode = ch.variables.get("SPY_TARGET", ""), ch.variables.get("SPY_MODE", "")
        who = ch.variables.get("DIALER_SUPERVISOR", "")
        self._step(ch, 1, "NoOp", f"supervisor {who} listens to {target} ({mode})")
        started()
        self._step(ch, 2, "GotoIf", f"{int(mode == 'whisper')}?whisper")
        if mode == "whisper":
            self._chanspy(ch, 6, target, SPY_OPTIONS[mode])
            return
        self._step(ch, 3, "GotoIf", f"{int(mode == 'barge')}?barge")
        at = 8 if mode == "barge" else 4
        self._chanspy(ch, at, target, SPY_OPTIONS.get(mode, "qE"))

    def _chanspy(self, ch: Channel, priority: int, target: str, options: str) -> None:
        ch.priority = priority
        self._step(ch, priority, "ChanSpy", f"{target},{options}")

        def start() -> None:  # ChanSpyStart came 0.1 s after the Newexten (08)
            spyee = next(
                (c for c in self.core.channels.values() if c.alive and target and c.name.startswith(target)),
                None,
            )
            if spyee is None:
                return  # ChanSpy() keeps looking (with beeps) until the caller hangs up
            ch.spying = spyee
            self.core.emit(chanspy_event("ChanSpyStart", ch, spyee))
            if spyee.conference is not None:
                spyee.conference.refresh_peers()

        self._wait(ch, self.core.scaled(0.1), start)

    # ----- abandon: nobody free ------------------------------------------------------------------
    def _abandon(self, ch: Channel, priority: int, started: Started) -> None:
        attempt = self._attempt(ch)
        self._step(ch, 1, "NoOp", f"abandon, attempt={attempt}")
        started()
        self._step(ch, 2, "UserEvent", f"DialerAbandon,Attempt: {attempt}")
        self.core.emit(user_event(ch, "DialerAbandon", [("Attempt", attempt)]))
        self._step(ch, 3, "Playback", "custom/dialer-abandon,noanswer")
        # The recorded abandon message (04) lasted 2 s.
        self._wait(ch, self.core.scaled(2.0), lambda: self._hangup_step(ch, 4))

    # ----- parking places --------------------------------------------------------------------
    def _hold(self, ch: Channel, priority: int, started: Started) -> None:
        holdsec = ch.variables.get("HOLDSEC", "") or "30"
        self._step(ch, 1, "NoOp", f"answered leg parked, attempt={self._attempt(ch)}")
        self._step(ch, 2, "Wait", holdsec)
        started()
        self._wait(ch, self.core.scaled(_num(holdsec, 30.0)), lambda: self._hangup_step(ch, 3))

    def _redirected(self, ch: Channel, priority: int, started: Started) -> None:
        attempt, mark = self._attempt(ch), ch.variables.get("MARK", "")
        self._step(ch, 1, "NoOp", f"redirected {ch.name}, attempt={attempt}")
        started()
        self._step(ch, 2, "UserEvent", f"DialerRedirected,Attempt: {attempt},Mark: {mark}")
        self.core.emit(user_event(ch, "DialerRedirected", [("Attempt", attempt), ("Mark", mark)]))
        self._step(ch, 3, "Wait", "30")
        self._wait(ch, self.core.scaled(30.0), lambda: self._hangup_step(ch, 4))

    # ----- the Redirect variant of 03b -------------------------------------------------------------
    def _wait_redirect(self, ch: Channel, priority: int, started: Started) -> None:
        self._step(ch, 1, "NoOp", f"resident answered, attempt={self._attempt(ch)}, waiting for Redirect")
        started()
        self._step(ch, 2, "AMD")
        verdict = ch.verdict or Verdict(*HUMAN, self.core.scaled(2.4))

        def reported() -> None:
            self._report_amd(ch, 3, verdict)
            self._step(ch, 4, "Wait", "20")
            self._wait(ch, self.core.scaled(20.0), lambda: self._goto_abandon(ch, 5))

        self._wait(ch, verdict.after_s, reported)

    # ----- answering machine: hung up on, or a message left ------------------------------------------
    def _goto_machine(self, ch: Channel, priority: int) -> None:
        self._step(ch, priority, "Goto", "dialer-machine,s,1")
        self.run(ch, "dialer-machine", "s")

    def _machine(self, ch: Channel, priority: int, started: Started) -> None:
        prompt = ch.variables.get("DIALER_MACHINE_PROMPT", "")
        self._step(ch, 1, "NoOp", f"machine, attempt={self._attempt(ch)}")
        started()
        self._step(ch, 2, "GotoIf", f"{int(not prompt)}?done")
        if not prompt:
            self._hangup_step(ch, 5)
            return
        self._step(ch, 3, "WaitForSilence", "1500,1,20")

        def greeting_over() -> None:
            self._step(ch, 4, "Playback", prompt)
            # The product's message (a call-back request) lasts about 8 s.
            self._wait(ch, self.core.scaled(8.0), lambda: self._hangup_step(ch, 5))

        self._wait(ch, self.core.scaled(1.5), greeting_over)

    def _goto_abandon(self, ch: Channel, priority: int) -> None:
        self._step(ch, priority, "Goto", "dialer-abandon,s,1")
        self.run(ch, "dialer-abandon", "s")

    def _bridge(self, ch: Channel, priority: int, started: Started) -> None:
        ext = ch.exten
        self._step(ch, 1, "NoOp", f"redirected into bridge agent-{ext}, attempt={self._attempt(ch)}")
        started()
        self._step(ch, 2, "ConfBridge", f"agent-{ext},dialer_bridge,dialer_resident")
        conference.join(self.core, f"agent-{ext}", ch, conference.RESIDENT)
