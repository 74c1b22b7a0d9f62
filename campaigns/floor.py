"""The call-centre floor as the engine holds it in memory: one slot per operator at the console."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from campaigns.agent import Action, AgentState, next_state
from dialer.metrics import Metrics
from dialer.store.campaigns import CampaignInfo
from dialer.store.targets import Lease
from dialer.store.users import User

# The product paused the operator because no page of theirs was left open. Asked for during a call,
# the pause comes after it and its outcome, and still says why when it is taken.
PAGE_CLOSED = "notice.page_closed"


class Notifier(Protocol):
    async def to_user(self, user_id: int, message: dict[str, Any]) -> None: ...
    async def to_supervisors(self, department_id: str | None, message: dict[str, Any]) -> None: ...
    async def to_all_supervisors(self, message: dict[str, Any]) -> None: ...
    async def to_all(self, message: dict[str, Any]) -> None: ...


@dataclass
class Slot:
    user: User
    state: AgentState = AgentState.OFFLINE
    since: datetime = field(default_factory=lambda: datetime.now(UTC))
    campaign: CampaignInfo | None = None
    session_channel_id: str | None = None
    phone_ready: bool = False  # the session is in its bridge (and verified since the last link drop)
    lease: Lease | None = None
    attempt_id: int | None = None
    call_phase: str | None = None
    pause_after_call: bool = False
    # why the product asked for that pause (a page closed, a login switched off; None: their own
    # 休憩): said until the pause is taken, whatever the moves in between, and with it
    pause_reason: str | None = None
    disposed: bool = False  # the outcome was saved while the call was still up
    record_owed: tuple[str, int | None] | None = None  # a record the database could not give: (reason, call)
    notice: str | None = None  # a message key for the page (phone dropped, no targets, ...)
    pages: int = 0  # the operator's open pages (WebSockets)
    inbound: bool = False  # the call is a resident's who called in (not the campaign's)
    address: str = ""  # where their page is (the latest attached): the audit log of record views says it
    held_elsewhere: bool = False  # their phone is on another dialer's call (campaigns.adoption)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def view(self) -> dict[str, Any]:
        return {
            "type": "agent",
            "state": self.state.value,
            "since": self.since.isoformat(),
            "campaign": None
            if self.campaign is None
            else {"id": self.campaign.id, "name": self.campaign.name, "dial_mode": self.campaign.dial_mode},
            "attempt_id": self.attempt_id,
            "inbound": self.inbound and self.attempt_id is not None,
            "call_phase": self.call_phase,
            "phone_ready": self.phone_ready,
            "pause_after_call": self.pause_after_call,
            "notice": self.notice
            if self.notice is not None
            else self.pause_reason
            if self.pause_after_call
            else None,
        }


class Floor:
    """Slots by operator, and for each call in flight its campaign and the operator it belongs to
    (a predictive call has none until a person answers and is given to one)."""

    def __init__(self, notifier: Notifier, metrics: Metrics, name: str = "") -> None:
        self.name = name  # the Asterisk server's (one floor per server)
        self.slots: dict[int, Slot] = {}
        self.by_attempt: dict[int, int] = {}  # attempt -> operator
        self.campaign_of: dict[int, int] = {}  # attempt -> campaign
        self.notifier = notifier
        self.metrics = metrics
        self.wake = asyncio.Event()

    def slot(self, user: User) -> Slot:
        slot = self.slots.get(user.id)
        if slot is None:
            slot = self.slots[user.id] = Slot(user=user)
        return slot

    async def move(self, slot: Slot, action: Action, notice: str | None = None) -> None:
        """Apply an agent transition, then tell the operator's page and the supervisors."""
        new = next_state(slot.state, action)
        if new is not slot.state:
            slot.state, slot.since = new, datetime.now(UTC)
        slot.notice = notice
        if new in (AgentState.PAUSED, AgentState.OFFLINE):
            slot.pause_reason = None  # (the pause it was for is taken, or the operator left)
        if new is AgentState.READY:
            self.wake.set()
        await self.publish(slot)

    async def tell(self, slot: Slot, notice: str | None) -> None:
        """Show a lasting notice on the operator's page (sent once, not again while it stands); None clears it."""
        if slot.notice != notice:
            slot.notice = notice
            await self.publish(slot)

    async def publish(self, slot: Slot) -> None:
        counts: dict[str, int] = {}
        for s in self.slots.values():
            counts[s.state.value] = counts.get(s.state.value, 0) + 1
        self.metrics.set_agents(counts, self.name)
        view = slot.view()
        await self.notifier.to_user(slot.user.id, view)
        await self.notifier.to_supervisors(
            slot.user.department_id,
            {
                "type": "floor_agent",
                "user_id": slot.user.id,
                "display_name": slot.user.display_name,
                **{k: v for k, v in view.items() if k != "type"},
            },
        )
