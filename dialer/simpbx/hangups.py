"""How answered channels end: dialplan Hangup(), AMI Hangup, a remote BYE, a PBX shutdown.

The orders follow the recordings: 04/03c (dialplan hangup of a Local half), 07 (AMI hangup of
either Local half), 02/03 (the operator's phone half hung up while the other half is in a
ConfBridge), 06d (remote BYE on PJSIP), 10/10b (shutdown: SoftHangupRequest Cause 4 first).
A PJSIP channel has no second half, so the HangupRequest that a Local peer would get is absent
when our side hangs it up (HangupRequest comes only from the far end: a BYE or a Local peer).
"""

from __future__ import annotations

from functools import partial

from .channels import (
    RTP_QOS,
    Channel,
    chanspy_event,
    device_state,
    hangup,
    hangup_request,
    newexten,
    soft_hangup_request,
    varset,
)
from .conference import Conference
from .core import Core

AMI_SOFT = 16  # SoftHangupRequest Cause for an AMI or dialplan hangup (as recorded)
SHUTDOWN_SOFT = 4


class Hangups:
    def __init__(self, core: Core) -> None:
        self.core = core

    # ----- helpers -----------------------------------------------------------------------
    def finish(self, ch: Channel, cause: int, tech_cause: int | None = None, dsc: bool = True) -> None:
        if not ch.alive:
            return
        self._spy_ends(ch)
        self.core.emit(hangup(ch, cause, tech_cause))
        self.core.remove(ch)
        if dsc:
            self.core.emit(device_state(ch.device, "NOT_INUSE"))

    def _spy_ends(self, ch: Channel) -> None:
        """A channel in ChanSpy() hangs up (ChanSpyStop, 08), or the one it listens to does: with
        option E its ChanSpy() returns and its dialplan goes on to Hangup()."""
        if ch.spying is not None:
            spyee, ch.spying = ch.spying, None
            self.core.emit(chanspy_event("ChanSpyStop", ch, spyee))
            if spyee.conference is not None:
                spyee.conference.refresh_peers()
        for spyer in [c for c in self.core.channels.values() if c.alive and c.spying is ch]:
            self.core.emit(chanspy_event("ChanSpyStop", spyer, ch))
            spyer.spying = None
            self.core.later(0.0, partial(self._spy_returned, spyer), owner=spyer)

    def _spy_returned(self, spyer: Channel) -> None:
        if spyer.alive:
            self.core.emit(newexten(spyer, spyer.priority + 1, "Hangup", ""))
            self.dialplan_hangup(spyer, 16)

    def _rtp_qos(self, ch: Channel) -> None:
        if ch.tech == "PJSIP" and ch.answered:
            self.core.emit(*(varset(ch, name, value) for name, value in RTP_QOS))

    def _leave(self, ch: Channel) -> tuple[Conference | None, list[Channel]]:
        conf = ch.conference
        if conf is None:
            return None, []
        return conf, conf.leave(ch, "HANGUP")

    def after_bridge(self, kicked: list[Channel]) -> None:
        """ConfBridge() returned on a channel that is still up: its dialplan goes on to Hangup()."""
        for ch in kicked:
            if ch.alive:
                self.core.emit(newexten(ch, ch.priority + 1, "Hangup", ""))
                self.dialplan_hangup(ch, 16)

    # ----- our side hangs up ---------------------------------------------------------------
    def dialplan_hangup(self, ch: Channel, cause: int) -> None:
        """Hangup(cause) ran in the dialplan of ``ch``."""
        if not ch.alive:
            return
        self.core.cancel_owned(ch)
        self.core.emit(soft_hangup_request(ch, AMI_SOFT))
        peer = ch.peer if ch.peer is not None and ch.peer.alive else None
        if peer is None:
            self._rtp_qos(ch)
            self.finish(ch, cause)
            return
        self.core.emit(hangup_request(peer, cause))
        conf, kicked = self._leave(peer)
        if conf is not None:  # 03: the far half hung up, the near half leaves the bridge
            conf.end_if_empty()
            self.core.emit(soft_hangup_request(peer, AMI_SOFT))
            self.finish(peer, 16, dsc=False)
            self.finish(ch, cause, dsc=False)
        else:  # 04, 03c
            self.finish(ch, cause, dsc=False)
            self.core.emit(soft_hangup_request(peer, AMI_SOFT))
            self.finish(peer, cause, dsc=False)
        self.core.emit(device_state(ch.device, "NOT_INUSE"), device_state(peer.device, "NOT_INUSE"))
        self.after_bridge(kicked)

    def ami_hangup(self, ch: Channel, cause: int | None) -> None:
        """Action: Hangup. Without Cause the channels end with Cause 0 (recorded in 07)."""
        if ch.on_cancel is not None:
            ch.on_cancel(cause, False)
            return
        self.core.cancel_owned(ch)
        given = cause if cause is not None else 0
        self.core.emit(soft_hangup_request(ch, AMI_SOFT))
        conf, kicked = self._leave(ch)
        bridged = conf is not None
        if conf is not None:
            conf.end_if_empty()
        peer = ch.peer if ch.peer is not None and ch.peer.alive else None
        if peer is None:
            self._rtp_qos(ch)
            self.finish(ch, (cause if cause is not None else 16) if bridged else given)
            self.after_bridge(kicked)
            return
        self.core.cancel_owned(peer)
        self.core.emit(hangup_request(peer, given))
        peer_conf, more = self._leave(peer)
        kicked += more
        if peer_conf is not None:  # 02/03: the phone half hung up, the agent half was bridged
            self.finish(ch, given)
            peer_conf.end_if_empty()
            self.core.emit(soft_hangup_request(peer, AMI_SOFT))
            self.finish(peer, 16)
        elif ch.is_half_two:  # 07, regex hangup of ;2
            self.finish(ch, given)
            self.core.emit(soft_hangup_request(peer, AMI_SOFT))
            self.finish(peer, given)
        else:  # 07, hangup of ;1
            self.core.emit(soft_hangup_request(peer, AMI_SOFT))
            self.finish(peer, given)
            self.finish(ch, 16 if bridged else given)
        self.after_bridge(kicked)

    # ----- the far end hangs up ------------------------------------------------------------
    def remote_bye(self, ch: Channel, cause: int = 0) -> None:
        """The called party sent BYE (06d): HangupRequest without Cause; Hangup Cause 0."""
        if not ch.alive:
            return
        self.core.cancel_owned(ch)
        self._rtp_qos(ch)
        self.core.emit(hangup_request(ch, None))
        conf, kicked = self._leave(ch)
        if conf is not None:
            conf.end_if_empty()
        self.core.emit(soft_hangup_request(ch, AMI_SOFT))
        self.finish(ch, cause)
        self.after_bridge(kicked)

    # ----- the PBX goes down ---------------------------------------------------------------
    def shutdown(self) -> None:
        """``core restart now`` / SIGTERM: every channel is soft-hung-up (Cause 4), then torn down."""
        chans = [ch for ch in self.core.channels.values() if ch.alive]
        self.core.emit(*(soft_hangup_request(ch, SHUTDOWN_SOFT) for ch in chans))
        bridged = {ch.uniqueid for ch in chans if ch.conference is not None}
        for conf in list(self.core.conferences.values()):
            for member in reversed(list(conf.members)):
                conf.leave(member, "HANGUP")
            conf.end_if_empty()
        for ch in chans:
            if not ch.alive:
                continue
            if ch.on_cancel is not None:
                ch.on_cancel(None, True)
                continue
            peer = ch.peer if ch.peer is not None and ch.peer.alive else None
            if peer is None:
                self.finish(ch, 16 if ch.uniqueid in bridged else 0)
                continue
            one, two = (peer, ch) if ch.is_half_two else (ch, peer)
            self.core.emit(hangup_request(one, 0))
            self.finish(two, 0)
            self.finish(one, 16 if one.uniqueid in bridged else 0)
        self.core.cancel_all()
