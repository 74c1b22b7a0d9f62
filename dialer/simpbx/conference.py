"""ConfBridge bookkeeping: rooms ``agent-<ext>``, joins and leaves with the recorded events.

The profiles follow confbridge-added.conf: the operator is ``marked``, residents are
``end_marked`` (they are removed when the last marked user leaves). A hidden announcer
channel ``CBAnn/<room>-<seq>;2`` counts in BridgeNumChannels without events of its own.
"""

from __future__ import annotations

import time
import uuid
from typing import TYPE_CHECKING

from .channels import CALL, Channel, device_state, varset
from .wire import Headers

if TYPE_CHECKING:
    from .core import Core

OPERATOR, RESIDENT = "operator", "resident"


class Conference:
    def __init__(self, core: Core, name: str) -> None:
        self.core = core
        self.name = name
        self.uid = str(uuid.uuid4())
        self.members: list[Channel] = []
        self.announcer = f"CBAnn/{name}-{core.next_seq()};2"
        self.joined: dict[str, float] = {}

    @property
    def count(self) -> int:
        return 1 + len(self.members)  # the announcer is always in the bridge

    def bridge(self, count: int) -> Headers:
        return [
            ("BridgeUniqueid", self.uid),
            ("BridgeType", "base"),
            ("BridgeTechnology", "softmix"),
            ("BridgeCreator", "ConfBridge"),
            ("BridgeName", self.name),
            ("BridgeNumChannels", str(count)),
            ("BridgeVideoSourceMode", "none"),
        ]

    def event(self, event: str, count: int, ch: Channel | None = None, conf: bool = True) -> Headers:
        head: Headers = [("Event", event), ("Privilege", CALL)]
        if conf:
            head.append(("Conference", self.name))
        head += self.bridge(count)
        if ch is not None:
            head += ch.snapshot()
        return head

    def _peers(self, ch: Channel) -> str:
        return ",".join([self.announcer, *(m.name for m in self.members if m is not ch)])

    def join(self, ch: Channel, role: str) -> None:
        self.members.append(ch)
        self.joined[ch.uniqueid] = time.monotonic()
        ch.conference, ch.role = self, role
        self.core.emit(self.event("BridgeEnter", self.count, ch, conf=False))
        for member in self.members[:-1]:
            self.core.emit(varset(member, "BRIDGEPEER", self._peers(member)))
        self.core.emit(varset(ch, "BRIDGEPEER", self._peers(ch)))
        self.core.emit([*self.event("ConfbridgeJoin", self.count, ch), ("Admin", "No"), ("Muted", "No")])

    def refresh_peers(self) -> None:
        """A spy started or stopped on a member (08): Asterisk sets BRIDGEPEER on each member again."""
        for member in self.members:
            self.core.emit(varset(member, "BRIDGEPEER", self._peers(member)))

    def leave(self, ch: Channel, result: str = "HANGUP") -> list[Channel]:
        """Take ``ch`` out; returns the residents removed because the last operator left."""
        if ch not in self.members:
            return []
        self.core.emit([*self.event("ConfbridgeLeave", self.count, ch), ("Admin", "No")])
        self.members.remove(ch)
        self.joined.pop(ch.uniqueid, None)
        ch.conference = None
        self.core.emit(varset(ch, "BRIDGEPEER", ""))
        self.core.emit(self.event("BridgeLeave", self.count, ch, conf=False))
        for member in self.members:
            self.core.emit(varset(member, "BRIDGEPEER", self._peers(member)))
        self.core.emit(varset(ch, "CONFBRIDGE_RESULT", result))
        kicked: list[Channel] = []
        if ch.role == OPERATOR and not any(m.role == OPERATOR for m in self.members):
            for resident in list(self.members):
                self.leave(resident, "ENDMARKED")
                kicked.append(resident)
        return kicked

    def end_if_empty(self) -> None:
        if self.members or self.core.conferences.get(self.name) is not self:
            return
        del self.core.conferences[self.name]
        self.core.emit(
            device_state(f"confbridge:{self.name}", "NOT_INUSE"),
            self.event("ConfbridgeEnd", 1),
            device_state(f"CBAnn/{self.name}", "UNKNOWN"),
            self.event("BridgeDestroy", 0, conf=False),
            device_state(f"CBAnn/{self.name}", "UNKNOWN"),
        )

    def list_items(self, aid: Headers) -> list[Headers]:
        now = time.monotonic()
        items: list[Headers] = []
        for m in self.members:
            marked = "Yes" if m.role == OPERATOR else "No"
            end_marked = "No" if m.role == OPERATOR else "Yes"
            answered = str(int(now - self.joined.get(m.uniqueid, now)))
            items.append(
                [
                    ("Event", "ConfbridgeList"),
                    *aid,
                    ("Conference", self.name),
                    ("Admin", "No"),
                    ("MarkedUser", marked),
                    ("WaitMarked", "No"),
                    ("EndMarked", end_marked),
                    ("EndMarkedAny", "No"),
                    ("Waiting", "No"),
                    ("Muted", "No"),
                    ("Talking", "No"),
                    ("AnsweredTime", answered),
                    *m.snapshot(),
                ]
            )
        return items

    def room_item(self, aid: Headers) -> Headers:
        marked = sum(1 for m in self.members if m.role == OPERATOR)
        return [
            ("Event", "ConfbridgeListRooms"),
            *aid,
            ("Conference", self.name),
            ("Parties", str(len(self.members))),
            ("Marked", str(marked)),
            ("Locked", "No"),
            ("Muted", "No"),
        ]


def join(core: Core, name: str, ch: Channel, role: str) -> Conference:
    """ConfBridge(name): create the room on first use (BridgeCreate, ConfbridgeStart), then enter."""
    conf = core.conferences.get(name)
    if conf is None:
        conf = Conference(core, name)
        core.conferences[name] = conf
        core.emit(
            conf.event("BridgeCreate", 0, conf=False),
            conf.event("ConfbridgeStart", 1),
            device_state(f"confbridge:{name}", "INUSE"),
        )
    conf.join(ch, role)
    return conf


def parties(core: Core, name: str) -> int:
    """CONFBRIDGE_INFO(parties,<name>)."""
    conf = core.conferences.get(name)
    return len(conf.members) if conf is not None else 0
