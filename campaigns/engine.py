"""The campaign engine: operators' commands and the dialling loop (upkeep: campaigns.upkeep).

Preview: a ready operator is shown the next household and starts the call. Progressive: a
ready operator gets the next household dialled at once, one call per ready operator.
Predictive: the pacer places calls for the campaign as a whole, and each person who answers is
given to a ready operator (campaigns.predictive). Each operator's transitions are serialised by
the slot's lock; the dialling loop is one task.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket

import asyncpg

from campaigns import listening
from campaigns.adoption import Adoption
from campaigns.agent import Action, AgentState
from campaigns.callflow import STORE_ERRORS, CallFlow
from campaigns.dialing import Dialing, EngineError
from campaigns.dispositions import Code, DispositionInput
from campaigns.floor import PAGE_CLOSED, Floor, Notifier, Slot
from campaigns.inbound import Inbound
from campaigns.phones import Phones
from campaigns.predictive import Predictive
from campaigns.upkeep import Upkeep
from dialer import logs
from dialer.aio import within
from dialer.ami.link import AmiLink, LinkEvent, LinkStatus
from dialer.calls.state import Milestone, Outcome, Party
from dialer.calls.tracker import CallChange, CallTracker
from dialer.config import Settings
from dialer.errors import AmiActionError, DatabaseUnavailable
from dialer.metrics import Metrics
from dialer.store import campaigns, dispositions, processes, targets
from dialer.store.db import UNAVAILABLE
from dialer.store.journal import Journal
from dialer.store.users import User

log = logs.get("campaigns.engine")

LOOP_IDLE_S = 1.0
PROBE_EVERY_S = 1.0  # while the database is away: how often to look for it
PAGE_GRACE_S = 10.0  # an operator whose page has been closed this long is paused


class Engine:
    def __init__(
        self, pool: asyncpg.Pool, link: AmiLink, settings: Settings, notifier: Notifier, metrics: Metrics
    ) -> None:
        self.pool, self.link, self.settings, self.metrics = pool, link, settings, metrics
        # Names this process's leases: unique even for two processes started in the same millisecond.
        self.owner = f"dialer-{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(4)}"
        self.floor = Floor(notifier, metrics, link.name)
        self.flow = CallFlow(pool, self.floor, settings, metrics, self.owner, link)
        self.phones = Phones(self.flow)
        self.tracker = CallTracker(self._on_call, self.phones.on_session)
        self.flow.tracker = self.tracker
        self.dialing = Dialing(pool, link, settings, metrics, self.floor, self.flow, self.tracker, self.owner)
        self.inbound = Inbound(self.dialing)
        self.predictive = Predictive(self.dialing, self.inbound.waiting_in)
        self.inbound.counted_on = self.predictive.counted_on
        self.dialing.held_operators = self.predictive.held_operators  # a campaign switched from predictive
        self.adoption = Adoption(self.flow, self.floor, self.tracker, settings, self.owner)
        self.upkeep = Upkeep(
            self.flow, self.floor, self.predictive, settings, self.owner,
            lambda: self.adoption.retry(self._send_state), self.dialing.pause,
        )  # fmt: skip
        self.listens = listening.Listens(pool, self.flow.store)
        self.db = self.flow.db
        self.db.listen(self._on_database)
        self._probed_at = 0.0
        self._tasks: list[asyncio.Task[None]] = []
        self._checks: set[asyncio.Task[None]] = set()  # short-lived: pages gone
        self.page_grace_s = PAGE_GRACE_S
        self.alone = True  # the only Asterisk server (campaigns.fleet says otherwise)

    async def start(self) -> None:
        await processes.register(self.pool, self.owner, self.link.name, self.settings.dead_after_s)
        for gone in await processes.forget_gone_here(self.pool):  # restarted after a crash
            log.warning("engine.dialer_gone", owner=gone, why="not running")
        self.flow.journal = Journal(self.settings.var_dir / "spool", self.owner)
        self.flow.journal.open()
        if self.flow.adopt_orphans():  # a dialer died with call records held: written first
            await self.flow.flush_pending()
        self._tasks = [
            asyncio.create_task(self._dial_loop(), name="engine-dial"),
            asyncio.create_task(self.upkeep.loop(), name="engine-upkeep"),
        ]

    async def stop(self) -> None:
        tasks = [*self._tasks, *self._checks]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        # Households shown in preview but never dialled go straight back to the pool.
        try:
            for slot in self.floor.slots.values():
                if slot.lease is not None and slot.attempt_id is None:
                    await targets.release(self.pool, slot.lease.target_id, self.owner, done=False)
            await processes.leave(self.pool, self.owner)
        except STORE_ERRORS as exc:  # taken for dead later: its leases come back then
            log.warning("engine.leave_failed", error=type(exc).__name__)
        if self.flow.journal is not None:
            self.flow.journal.close()  # what is still held stays on disk for the next dialer

    # ---- operators' commands -----------------------------------------------------------------
    async def attach(self, user: User, address: str = "") -> None:
        """A page (re)connected: send it the operator's state and, mid-call, the record again."""
        slot = self.floor.slot(user)
        slot.pages += 1
        slot.address = address or slot.address
        if slot.state is AgentState.OFFLINE:  # a dialer that died may have left their phone up
            await self.adoption.adopt(slot)
        await self._send_state(slot)
        if slot.state in (AgentState.OFFLINE, AgentState.PAUSED) and slot.attempt_id is None:
            await self._outcome_still_owed(slot)

    async def _outcome_still_owed(self, slot: Slot) -> None:
        """A conversation that ended while no dialer could take the outcome (stopped or restarted
        during the wrap-up): the page is given the call again, ended, to record what was said."""
        try:
            owed = await self.adoption.owed(slot)
        except STORE_ERRORS as exc:
            log.warning("engine.owed_check_failed", operator=slot.user.id, error=type(exc).__name__)
            return
        if owed is None or slot.attempt_id is not None:
            return
        call, outcome = owed
        if call.lease is not None:
            await self.flow.pop_record(slot, call.lease, reason="reconnect", attempt_id=call.id)
        await self.floor.notifier.to_user(slot.user.id, {
            "type": "call_ended", "attempt_id": call.id, "outcome": outcome, "hangup_by": None,
            "needs_disposition": True,
        })  # fmt: skip

    async def _send_state(self, slot: Slot) -> None:
        """The operator's state to their pages and, mid-call, the record again."""
        user = slot.user
        await self.floor.publish(slot)
        await self.floor.notifier.to_user(user.id, {"type": "pbx", "up": self.link.up, "pbx": self.link.name})
        # said either way: a page kept open while the dialer restarted still shows the outage it saw
        await self.floor.notifier.to_user(user.id, {"type": "database", "up": self.db.up})
        shown = slot.state is AgentState.PREVIEW or (
            slot.state in (AgentState.DIALING, AgentState.TALKING, AgentState.WRAP_UP)
            and (slot.call_phase not in (None, "dialing", "ringing") or self._is_preview(slot))
        )
        if shown and slot.lease is not None:
            await self.flow.pop_record(slot, slot.lease, reason="reconnect", attempt_id=slot.attempt_id)
        elif shown and slot.attempt_id in self.inbound.callers:
            await self.inbound.pop(slot, slot.attempt_id)

    async def on_link(self, event: LinkEvent) -> None:
        """The PBX link went down or came back: no calls meanwhile; afterwards, check what is left."""
        if not isinstance(event, LinkStatus):
            await self.listens.on_event(event)
            return
        if not event.up:
            self.phones.link_down()
        message = {"type": "pbx", "up": event.up, "pbx": self.link.name}
        if self.alone:
            await self.floor.notifier.to_all(message)
        else:  # other servers' operators are not concerned; supervisors see each server
            for slot in list(self.floor.slots.values()):
                await self.floor.notifier.to_user(slot.user.id, message)
            await self.floor.notifier.to_all_supervisors(message)
        if event.up and event.reason == "reconnected":
            await self.phones.verify_after_reconnect()
            await self.listens.after_reconnect(self.link)

    async def detach(self, user: User) -> None:
        """A page closed. With no page left after a grace period (a reload is not a departure),
        the operator stops getting calls: nobody would see the resident's record."""
        slot = self.floor.slots.get(user.id)
        if slot is None:
            return
        slot.pages = max(0, slot.pages - 1)
        if slot.pages == 0:
            task = asyncio.create_task(self._pause_if_gone(slot), name=f"engine-gone-{user.id}")
            self._checks.add(task)
            task.add_done_callback(self._checks.discard)

    async def _pause_if_gone(self, slot: Slot) -> None:
        await asyncio.sleep(self.page_grace_s)
        if slot.pages == 0 and slot.state not in (AgentState.OFFLINE, AgentState.PAUSED):
            log.info("engine.page_gone", operator=slot.user.id)
            await self.pause(slot.user, notice=PAGE_CLOSED)

    @staticmethod
    def _is_preview(slot: Slot) -> bool:
        return slot.campaign is not None and slot.campaign.dial_mode == "preview"

    async def ready(self, user: User, campaign_id: int) -> None:
        if not user.extension:
            raise EngineError("error.no_extension")
        campaign = await campaigns.get(self.pool, campaign_id, user.department_id)
        if campaign is None or campaign.status != "active":
            raise EngineError("error.campaign")
        if not campaign.open_to(user.id):
            raise EngineError("error.not_assigned")
        slot = self.floor.slot(user)
        idle = slot.state in (AgentState.OFFLINE, AgentState.PAUSED) and slot.attempt_id is None
        if idle and await self.adoption.owed(slot) is not None:
            raise EngineError("error.outcome_owed")  # the call on the page first (_outcome_still_owed)
        first = slot.state is AgentState.OFFLINE and slot.session_channel_id is None
        if first and await self.adoption.before_first_session(slot) and slot.state is not AgentState.PAUSED:
            return  # back on the call a dead dialer left them on
        async with slot.lock:
            if slot.state not in (AgentState.OFFLINE, AgentState.PAUSED, AgentState.CONNECTING):
                if slot.state is AgentState.READY and slot.campaign and slot.campaign.id == campaign.id:
                    if slot.pause_after_call:  # 待機 again: the pause waiting for calls is called off
                        slot.pause_after_call, slot.notice, slot.pause_reason = False, None, None
                        await self.floor.publish(slot)
                    return
                raise EngineError("error.busy")
            slot.campaign, slot.pause_after_call = campaign, False
            if slot.state is AgentState.PAUSED and slot.session_channel_id:
                # The phone may still be ringing (Ready, Pause, Ready): wait for it to join.
                await self.floor.move(slot, Action.READY if slot.phone_ready else Action.WAIT_PHONE)
            elif slot.state is not AgentState.CONNECTING:
                await self.phones.open_session(slot)

    async def pause(self, user: User, notice: str | None = None) -> None:
        """休憩 (notice None), or a pause the product decides (a page closed): Dialing.pause."""
        await self.dialing.pause(self.floor.slot(user), notice)

    async def dial_preview(self, user: User) -> None:
        slot = self.floor.slot(user)
        async with slot.lock:
            await self.dialing.dial_preview(slot)

    async def skip_preview(self, user: User) -> None:
        slot = self.floor.slot(user)
        async with slot.lock:
            if slot.state is not AgentState.PREVIEW:
                raise EngineError("error.nothing_to_skip")
            await self.dialing.skip(slot)
            await self.floor.move(slot, Action.RELEASE)

    async def hangup(self, user: User, call: int | None = None) -> None:
        """切断: the operator's call; one the page names (`call`) must be it (a late press: not the next)."""
        slot = self.floor.slot(user)
        attempt_id = slot.attempt_id
        if attempt_id is None or call not in (None, attempt_id):
            raise EngineError("error.no_call")
        if self.tracker.request_hangup(attempt_id, Party.OPERATOR) is None:
            raise EngineError("error.no_call")
        channel_id = self.tracker.calls[attempt_id].channel_id
        try:
            gone = not await self.link.hangup(channel_id)
        except AmiActionError as exc:
            log.warning("engine.hangup_failed", attempt=attempt_id, error=exc.message)
            if exc.definite:  # not sent, or refused: the call goes on, and ends by no one's 切断
                self.tracker.hangup_refused(attempt_id)
            raise EngineError("error.pbx_refused" if exc.refused else "error.pbx") from None
        if gone:  # Asterisk has no such channel: it ended while we were not looking
            log.warning("engine.hangup_no_channel", attempt=attempt_id)
            await self.tracker.end_with(attempt_id, Outcome.LOST)

    async def listen(self, supervisor: User, operator_id: int, mode: str) -> str:
        """Ring the supervisor's phone to listen in on an operator (campaigns.listening)."""
        return await self.listens.start(
            self.floor, self.link, self.settings.dialplan, supervisor, operator_id, mode
        )

    async def stop_listening(self, supervisor: User, channel_id: str) -> int:
        return await self.listens.stop(self.link, supervisor, channel_id)

    async def logout(self, user: User) -> None:
        slot = self.floor.slots.get(user.id)
        if slot is None:
            return
        async with slot.lock:
            if slot.state is AgentState.PREVIEW:
                await self.dialing.release_preview(slot, again=True)
            if slot.session_channel_id and slot.attempt_id is None:
                with contextlib.suppress(AmiActionError):
                    await self.link.hangup(slot.session_channel_id)
            if slot.attempt_id is None:
                await self.floor.move(slot, Action.LOGOUT)
                del self.floor.slots[user.id]
                self.phones.release(user.id)

    async def identify(self, user: User, attempt_id: int, key: str, by: str, remote: str = "") -> bool:
        """A caller matched to no household (or to several) gives its 宛名番号 or 世帯番号."""
        slot = self.floor.slots.get(user.id)
        if slot is None or slot.attempt_id != attempt_id:
            raise EngineError("error.not_your_call")
        try:
            return await self.inbound.identify(slot, attempt_id, key, by, remote)
        except UNAVAILABLE as exc:
            await self.db.down(exc, "identify")
            raise

    async def disposition(
        self, user: User, inp: DispositionInput, code: Code, remote: str = ""
    ) -> dispositions.Saved:
        # The call's own record first (it may have waited on the database); the page keeps the
        # disposition and sends it again while the database is away (DatabaseUnavailable: 503).
        if not await self.flow.flush_pending():
            raise DatabaseUnavailable("the call's record is still waiting for the database")
        try:
            saved = await dispositions.save(self.pool, user, inp, code, remote)  # where the request came from
        except UNAVAILABLE as exc:
            await self.db.down(exc, "disposition")
            raise
        except dispositions.DispositionRejected as exc:
            # Their own call's outcome, stored already (through another dialer, or resent as this one
            # took the call over): it ends their wrap-up here too, or they would wait in it for good.
            if exc.key == "error.already_recorded":
                await self._after_outcome(user, inp)
            raise
        if saved.created:
            self.metrics.dispositions.labels(str(saved.campaign_id or "inbound"), saved.code).inc()
        await self._after_outcome(user, inp)
        return saved

    async def _after_outcome(self, user: User, inp: DispositionInput) -> None:
        slot = self.floor.slots.get(user.id)
        if slot is None or slot.attempt_id != inp.attempt_id:
            return  # e.g. resent after a restart: stored, nothing else to do
        async with slot.lock:
            slot.pause_after_call = slot.pause_after_call or inp.then_pause
            if slot.state is AgentState.WRAP_UP:
                await self.flow.finish_wrap_up(slot)
            elif slot.state in (AgentState.DIALING, AgentState.TALKING):
                slot.disposed = True  # saved during the call: wrap-up is skipped when it ends
                await self.floor.publish(slot)  # (with 保存後に休憩: "a pause after the call" shown now, QA)

    # ---- dialling ------------------------------------------------------------------------------
    async def _on_call(self, change: CallChange) -> None:
        """A call changed: a predictive person is given to an operator first, then the call is stored."""
        await self.predictive.on_change(change)
        await self.flow.on_call(change)
        await self.predictive.after(change)
        await self.listens.on_call(change, self.floor)
        if Milestone.ENDED in change.milestones:
            self.inbound.ended(change.attempt_id)

    async def _on_database(self, up: bool) -> None:
        await self.floor.notifier.to_all({"type": "database", "up": up})
        if up:
            self.floor.wake.set()
            await self.flow.repop()

    async def _database_back(self) -> bool:
        """While the database is away: look for it now and then; once it answers, write the held
        call records (in order) and only then say it is back. True when it is."""
        now = asyncio.get_running_loop().time()
        if now - self._probed_at < PROBE_EVERY_S:
            return False
        self._probed_at = now
        if not await self.db.probe():
            return False
        with contextlib.suppress(*STORE_ERRORS):  # alive, said before the held writes (however many)
            await processes.beat(self.pool, self.owner, self.link.name, self.settings.dead_after_s)
        if await self.flow.flush_pending():
            await self.db.back()
        return self.db.up

    async def _dial_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await within(LOOP_IDLE_S, self.floor.wake.wait())
            self.floor.wake.clear()
            try:
                if not self.db.up and not await self._database_back():
                    continue  # no new call while the database is away: it could not be recorded
            except Exception:  # the loop must outlive anything: it is every operator's dialling
                log.exception("engine.database_back_failed")
                continue
            if self.link.up and self.inbound.waiting:
                try:
                    await self.inbound.serve()  # callers who asked for a person come first
                except Exception:
                    log.exception("engine.inbound_failed")
            for slot in list(self.floor.slots.values()):
                mine = slot.campaign is not None and slot.campaign.dial_mode != "predictive"
                ready = slot.state is AgentState.READY and slot.phone_ready and self.link.up
                if slot.pause_after_call and slot.state is AgentState.READY:
                    await self.dialing.settle_pause(slot)
                elif mine and (ready or slot.state is AgentState.PREVIEW):  # (a record shown: any time)
                    try:
                        await self.dialing.serve(slot)
                    except UNAVAILABLE as exc:
                        await self.db.down(exc, "serve")
                    except Exception:
                        log.exception("engine.serve_failed", operator=slot.user.id)
            try:
                await self.predictive.tick()
            except UNAVAILABLE as exc:
                await self.db.down(exc, "pacer")
            except Exception:
                log.exception("engine.pacer_failed")
