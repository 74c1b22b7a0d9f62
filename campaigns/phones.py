"""Operators' phone sessions: opened, joined, lost, and checked again after the AMI link comes back.

An operator takes calls only while their phone session sits in its bridge (`slot.phone_ready`).
While the link is down nothing can be known, so every session counts as unverified; when the
link is back each session and each call in flight is looked up by its ChannelId, and what has
gone meanwhile is closed (a session: the phone is lost; a call: outcome `lost`); a call that was
answered or put through to its operator meanwhile is moved on.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from functools import partial
from typing import Any

from campaigns.agent import Action, AgentState
from campaigns.callflow import STORE_ERRORS, CallFlow
from campaigns.dialing import EngineError, session_id
from campaigns.floor import Slot
from dialer import logs
from dialer.ami import events
from dialer.ami.link import OriginateRequest
from dialer.calls.session import SessionPhase
from dialer.calls.state import Outcome, Party, Phase
from dialer.calls.tracker import CallTracker, SessionChange
from dialer.errors import AmiActionError
from dialer.store import processes, targets

log = logs.get("campaigns.phones")


class Phones:
    def __init__(self, flow: CallFlow) -> None:
        self.flow = flow
        self.floor = flow.floor
        self._background: set[asyncio.Task[None]] = set()  # writes nothing waits for (release)

    async def open_session(self, slot: Slot) -> None:
        """Ring the operator's phone into their bridge (受付開始), once this dialer holds the phone."""
        user, plan = slot.user, self.flow.settings.dialplan
        assert user.extension
        # one dialer per phone (processes.claim_phone): another one driving it keeps it, unless stale
        claimed = await processes.claim_phone(self.flow.pool, user.id, self.flow.owner, self._alive_for())
        if not claimed and not await self._claim_stale(user.id):
            log.warning("engine.phone_elsewhere", operator=user.id)
            raise EngineError("error.phone_elsewhere")
        channel_id = session_id(plan.channel_prefix, user.id, self.flow.owner)
        assert self.flow.tracker is not None
        self.flow.tracker.track_session(user.id, channel_id, user.extension)
        slot.session_channel_id, slot.phone_ready = channel_id, False
        try:
            await self.flow.link.originate(
                OriginateRequest(
                    channel=plan.operator_template.format(extension=user.extension),
                    context=plan.agent_context,
                    exten=user.extension,
                    channel_id=channel_id,
                    caller_id=f'"電話催告" <{user.extension}>',
                    timeout_ms=30_000,
                    variables={"DIALER_ATTEMPT": f"session-{user.id}"},
                )
            )
        except AmiActionError as exc:
            log.warning("engine.session_originate_failed", operator=user.id, error=exc.message)
            slot.session_channel_id = None
            if exc.definite:  # (no answer in time: the session may yet ring, so the phone stays ours)
                with contextlib.suppress(*STORE_ERRORS):
                    await processes.release_phone(self.flow.pool, user.id, self.flow.owner)
            raise EngineError("error.pbx_refused" if exc.refused else "error.pbx") from None
        await self.floor.move(slot, Action.READY)

    def _alive_for(self) -> float:
        return self.flow.db.dead_after(self.flow.settings.dead_after_s)

    async def _claim_stale(self, user_id: int) -> bool:
        """A live dialer claims the phone, Asterisk has no session of it (a release that failed)."""
        prefix = f"{self.flow.settings.dialplan.channel_prefix}-s{user_id}-"
        try:
            sessions = [uid for uid in await self.flow.link.channel_list() if uid.startswith(prefix)]
        except AmiActionError:
            return False
        taken = not sessions and await processes.claim_phone(
            self.flow.pool, user_id, self.flow.owner, 1e9, force=True
        )
        if taken:  # (force takes a claim a minute old only: a session just opened may not be up yet)
            log.warning("engine.phone_claim_taken", operator=user_id)
        return taken

    async def on_session(self, change: SessionChange) -> None:
        slot = self.floor.slots.get(change.user_id)
        if slot is None or slot.session_channel_id != change.state.channel_id:
            return
        log.info("session.phase", operator=change.user_id, phase=change.entered.value)
        async with slot.lock:
            if slot.session_channel_id != change.state.channel_id:
                return
            if change.entered is SessionPhase.JOINED:
                slot.phone_ready = True
                if slot.state is AgentState.CONNECTING:
                    await self.floor.move(slot, Action.SESSION_UP)
            elif change.entered is SessionPhase.ENDED:
                if slot.state is AgentState.CONNECTING:  # it never joined: not reached, not dropped
                    log.warning(
                        "session.phone_unreachable", operator=change.user_id, extension=change.state.extension,
                        cause=change.state.cause,
                    )  # fmt: skip
                await self.phone_lost(slot)

    def release(self, user_id: int) -> None:
        """The operator's phone is no longer this dialer's (sql/0037), in the background: the AMI
        event or the logout that ends a session does not wait on the database. Failed (the database
        away), it is claimed again by whichever dialer finds no session of it at Asterisk."""

        async def release() -> None:
            with contextlib.suppress(TimeoutError, *STORE_ERRORS):
                await asyncio.wait_for(processes.release_phone(self.flow.pool, user_id, self.flow.owner), 10)

        task = asyncio.create_task(release())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def phone_lost(self, slot: Slot) -> None:
        """The operator's phone session ended (caller holds the slot's lock).

        After or during a conversation the disposition is still wanted (the resident leaves the
        bridge with the operator: end_marked). A call still ringing is cancelled now, rather
        than answered into an empty bridge, which would be an abandoned call.
        """
        slot.session_channel_id, slot.phone_ready = None, False
        self.release(slot.user.id)  # no session: another dialer may drive the phone
        tracker = self.flow.tracker
        call = tracker.calls.get(slot.attempt_id) if tracker is not None and slot.attempt_id else None
        if slot.state is AgentState.PREVIEW and slot.lease is not None:
            await self.flow.store(
                partial(targets.release, self.flow.pool, slot.lease.target_id, self.flow.owner, done=False),
                "release",
            )
            slot.lease = None
        if slot.state is AgentState.WRAP_UP or (call is not None and call.phase is Phase.CONNECTED):
            if call is not None and tracker is not None and slot.attempt_id is not None:
                tracker.request_hangup(slot.attempt_id, Party.OPERATOR)
            await self.floor.move(slot, Action.SESSION_DOWN, notice="notice.phone_disconnected")
            return
        notice = (
            "notice.phone_unreachable" if slot.state is AgentState.CONNECTING else "notice.phone_disconnected"
        )
        ringing = call is not None and call.phase in (Phase.ORIGINATING, Phase.RINGING)
        if ringing and call is not None and tracker is not None and slot.attempt_id is not None:
            tracker.request_hangup(slot.attempt_id, Party.SYSTEM)
            await self.flow.hang_up(call.channel_id)
        await self.floor.move(slot, Action.LOGOUT, notice=notice)

    def link_down(self) -> None:
        for slot in self.floor.slots.values():
            slot.phone_ready = False

    async def verify_after_reconnect(self) -> None:
        """After the link came back: which sessions and calls are still up at Asterisk? One
        CoreShowChannels answers for all of them (a Getvar per channel if it is refused). A
        session that is gone puts its operator offline; a call that is gone is closed as lost;
        a call that was answered or joined its operator meanwhile moves on as if the events had
        come (the operator gets the resident's record)."""
        link, tracker = self.flow.link, self.flow.tracker
        # Only what was in flight before asking: a call placed since is not in the answer yet.
        calls = list(tracker.calls.items()) if tracker is not None else []
        listing: Mapping[str, Mapping[str, Any]] | None
        try:
            listing = await link.channel_list()
        except AmiActionError as exc:
            log.warning("link.channel_list_failed", error=exc.message)
            listing = None
        live = set(listing) if listing is not None else None

        async def alive(channel: str) -> bool:
            return channel in live if live is not None else await link.channel_exists(channel)

        for slot in list(self.floor.slots.values()):
            channel = slot.session_channel_id
            if channel is None:
                continue
            try:
                up = await alive(channel)
            except AmiActionError as exc:
                log.warning("session.verify_failed", operator=slot.user.id, error=exc.message)
                continue  # stays unverified: no calls for this operator until it is known
            async with slot.lock:
                if slot.session_channel_id != channel:
                    continue
                if not up:
                    log.warning("session.gone_while_link_down", operator=slot.user.id)
                    await self.phone_lost(slot)
                    continue
                slot.phone_ready = True
                if slot.state is AgentState.CONNECTING:
                    await self.floor.move(slot, Action.SESSION_UP)
                else:
                    await self.floor.publish(slot)
        for attempt_id, call in calls:
            try:
                up = await alive(call.channel_id)
            except AmiActionError:
                continue
            if not up and tracker is not None and attempt_id in tracker.calls:
                log.warning("call.gone_while_link_down", attempt=attempt_id)
                await tracker.end_with(attempt_id, Outcome.LOST)
            elif up and listing is not None and tracker is not None:
                await self._catch_up(tracker, attempt_id, listing[call.channel_id])
        self.floor.wake.set()

    @staticmethod
    async def _catch_up(tracker: CallTracker, attempt_id: int, item: Mapping[str, Any]) -> None:
        """What Asterisk's listing says happened to a call while its events were lost: answered
        (state Up), in its operator's bridge (a BridgeId). Fed to the tracker as those events."""
        before = tracker.calls.get(attempt_id)
        fields = {k: v for k, v in item.items() if k not in ("Event", "ActionID")}
        if (item.get("ChannelStateDesc") or "") == "Up":
            await tracker.on_event(events.parse({**fields, "Event": "Newstate"}))
        if item.get("BridgeId"):
            await tracker.on_event(events.parse({**fields, "Event": "ConfbridgeJoin", "Conference": ""}))
        after = tracker.calls.get(attempt_id)
        if after is not None and before is not None and after.phase is not before.phase:
            log.warning("call.caught_up_after_reconnect", attempt=attempt_id, phase=after.phase.value)
