"""What the engine does when a call changes: store it, push it, move the operator, settle the household.

Receives the tracker's changes (already typed and interpreted). Two rules keep operators from
getting stuck: every change to an operator's slot happens under the slot's lock, and a failed
database write is logged but never skips the operator's move (the call really did end).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg

from campaigns.agent import Action, AgentState
from campaigns.breaker import Breaker
from campaigns.floor import Floor, Slot
from dialer import logs
from dialer.ami.link import AmiLink
from dialer.calls.state import CallState, Milestone, Outcome, Phase
from dialer.calls.tracker import CallChange
from dialer.config import Settings
from dialer.errors import AmiActionError, DatabaseUnavailable
from dialer.metrics import Metrics
from dialer.store import attempts, dispositions, journal, records
from dialer.store.journal import Journal
from dialer.store.targets import Lease
from dialer.store.watch import DatabaseWatch

if TYPE_CHECKING:
    from dialer.calls.tracker import CallTracker

log = logs.get("campaigns.callflow")
# What a query may raise when the database is away or refuses the write. DatabaseUnavailable too: a
# new connection refused (the server still in recovery after a restart) killed the upkeep loop, and
# with it the dialer's heartbeat (found by tests/test_outage_two_dialers.py).
STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError, DatabaseUnavailable)
STUCK_S = 10.0  # an operator still "on a call" this long after the call is gone is released
MAX_PENDING = 10_000  # writes held for the database; beyond this the oldest are dropped (logged)
Write = Callable[[], Awaitable[Any]]


def retryable(exc: BaseException) -> bool:
    """A write that failed this way may succeed later: the database was away, the transaction lost
    a race, or the schema or a permission is wrong (someone can mend it: nothing is lost meanwhile).
    Bad data (a value out of range, a broken constraint) would fail the same way for ever."""
    return not isinstance(exc, (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError))


def needs_disposition(state: CallState) -> bool:
    """A conversation took place: the operator records what was said."""
    return state.outcome is Outcome.CONNECTED or (state.outcome is Outcome.LOST and state.connected)


RECORDED_WITHIN_S = 2.0  # how long a call's end may wait to learn its outcome was stored elsewhere


class CallFlow:
    skip_delay = timedelta(minutes=30)

    def __init__(
        self,
        pool: asyncpg.Pool,
        floor: Floor,
        settings: Settings,
        metrics: Metrics,
        owner: str,
        link: AmiLink,
    ) -> None:
        self.pool, self.floor, self.settings, self.metrics, self.owner = pool, floor, settings, metrics, owner
        self.link = link
        self.db = DatabaseWatch(pool, metrics)
        self.tracker: CallTracker | None = None
        self._started: dict[int, float] = {}  # attempt -> first seen, by the loop's clock (watchdog)
        self._ending: set[int] = set()  # calls gone from the tracker whose end is still being stored
        self._pending: deque[tuple[str, int | None, Write, int | None]] = deque()
        self.journal: Journal | None = None  # held writes on disk too (set by the engine)
        # calls through this PBX failing at once: stop for a while (campaigns.breaker)
        self.breaker = Breaker()
        self._flushing = asyncio.Lock()

    async def failed(self, exc: BaseException, where: str) -> None:
        """A query met an error: unless it was bad data, the database cannot record calls now and
        everyone is told (no new calls until a probe and the held writes succeed)."""
        if retryable(exc):
            await self.db.down(exc, where)

    async def store(self, write: Write, what: str, attempt: int | None = None) -> bool:
        """Run a database write now, or queue it behind earlier held ones (order is kept).

        A write that failed because the database was away is held and retried (flush_pending)
        until the database takes it; the caller's state moves on either way, since the call
        really did what the event says. A write the database refused (bad data, a bug) is logged
        and not retried: it would never succeed and would hold up every write behind it.
        Held writes are kept on disk as well (dialer.store.journal): if this process dies before
        the database is back, the next dialer started on this machine writes them.
        """
        if not self._pending:
            try:
                await write()
                return True
            except STORE_ERRORS as exc:
                if not retryable(exc):
                    log.error("store.write_refused", what=what, attempt=attempt, error=type(exc).__name__,
                              detail=str(exc)[:200])  # fmt: skip
                    return False
                log.error("store.write_failed", what=what, attempt=attempt, error=type(exc).__name__)
                await self.failed(exc, what)
        # Behind earlier held writes: queued, not tried here, so that events never wait on a dead database.
        if len(self._pending) >= MAX_PENDING:
            dropped = self._pending.popleft()
            log.error("store.write_dropped", what=dropped[0], attempt=dropped[1])
            self._done(dropped[3])
        seq = self.journal.hold(write) if self.journal is not None else None
        self._pending.append((what, attempt, write, seq))
        self.metrics.pending_writes.set(len(self._pending))
        return False

    def _done(self, seq: int | None) -> None:
        if self.journal is not None:
            self.journal.done(seq)

    def adopt_orphans(self) -> int:
        """Take over the writes a dialer that died left on disk (held first: they are older)."""
        if self.journal is None:
            return 0
        adopted = 0
        for path, entries in self.journal.orphans():
            writes = [journal.write_of(entry, self.pool) for entry in entries]
            for entry, write, seq in zip(entries, writes, self.journal.hold_all(writes), strict=True):
                attempt = entry["args"][0] if entry["args"] and isinstance(entry["args"][0], int) else None
                self._pending.append((entry["fn"], attempt, write, seq))
                adopted += 1
            log.warning("store.writes_adopted", file=path.name, count=len(entries))
            self.journal.forget(path)
        self.metrics.pending_writes.set(len(self._pending))
        return adopted

    async def flush_pending(self) -> bool:
        """Retry queued writes in order; True when none is left. One flush at a time: the dialling
        loop's check that the database is back and an operator's outcome both flush, and two at
        once would each run the first write and each take one off the queue: the second a write
        never run (lost), or nothing (an error for the operator)."""
        async with self._flushing:
            while self._pending:
                what, attempt, write, seq = self._pending[0]
                try:
                    await write()
                except STORE_ERRORS as exc:
                    if retryable(exc):
                        await self.failed(exc, what)
                        return False
                    log.error("store.write_refused", what=what, attempt=attempt, error=type(exc).__name__,
                              detail=str(exc)[:200])  # fmt: skip
                else:
                    log.info("store.write_recovered", what=what, attempt=attempt)
                if self._pending and self._pending[0][2] is write:  # (not dropped meanwhile: MAX_PENDING)
                    self._pending.popleft()
                self._done(seq)
                self.metrics.pending_writes.set(len(self._pending))
            return True

    @property
    def holding(self) -> int:
        """Writes held for the database."""
        return len(self._pending)

    async def on_call(self, change: CallChange) -> None:
        attempt_id, state = change.attempt_id, change.state
        received = asyncio.get_running_loop().time()
        self._started.setdefault(attempt_id, received)
        user_id = self.floor.by_attempt.get(attempt_id)
        slot = self.floor.slots.get(user_id) if user_id is not None else None
        campaign_id = self.floor.campaign_of.get(attempt_id)
        campaign = str(campaign_id) if campaign_id is not None else "inbound"  # as dispositions label it
        for m in change.milestones:
            if m is Milestone.ENDED:
                await self._ended(attempt_id, state, slot, campaign)
                continue
            detail = {"amd": state.amd_status} if m is Milestone.AMD else None
            write = partial(attempts.milestone, self.pool, attempt_id, m.value, detail, at=datetime.now(UTC))
            await self.store(write, m.value, attempt_id)
            if m is Milestone.ANSWERED:
                self.metrics.answered.labels(campaign).inc()
            elif m is Milestone.ABANDONED:
                self.metrics.abandoned.labels(campaign).inc()
            elif m is Milestone.CHANNEL and state.requested_by is not None:
                await self.hang_up(state.channel_id)  # asked for before the channel existed
            if slot is not None:
                async with slot.lock:
                    await self._progress(slot, attempt_id, m, received)

    async def _progress(self, slot: Slot, attempt_id: int, m: Milestone, received: float) -> None:
        if slot.attempt_id != attempt_id:
            return
        if m is not Milestone.AMD:
            slot.call_phase = m.value
        if m is Milestone.ANSWERED and slot.state is AgentState.DIALING:
            await self.floor.move(slot, Action.ANSWERED)
            if slot.campaign and slot.campaign.dial_mode != "preview" and slot.lease is not None:
                await self.pop_record(slot, slot.lease, reason="screen_pop", attempt_id=attempt_id)
                self.metrics.screen_pop.observe(asyncio.get_running_loop().time() - received)
        else:
            await self.floor.publish(slot)

    async def _ended(self, attempt_id: int, state: CallState, slot: Slot | None, campaign: str) -> None:
        self._ending.add(attempt_id)  # the operator is moved below, after the writes: not stuck
        try:
            await self._end(attempt_id, state, slot, campaign)
        finally:
            self._ending.discard(attempt_id)

    def _failing(self, outcome: Outcome) -> None:
        """Count a call that failed before anything rang; stop dialling through this PBX after a run of them."""
        if outcome in (Outcome.CANCELLED, Outcome.LOST):  # ours, or not known: neither way
            self.breaker.gone()
            return
        failed = outcome in (Outcome.FAILED, Outcome.CONGESTION)
        if self.breaker.ended(failed, asyncio.get_running_loop().time()):
            log.warning(
                "engine.calls_failing", link=self.link.name, in_a_row=self.breaker.failures,
                hold_s=round(self.breaker.open_until - asyncio.get_running_loop().time())
                if self.breaker.open_until else 0,
            )  # fmt: skip
        self.metrics.calls_failing.labels(self.link.name).set(1 if self.breaker.is_open else 0)

    def calls_held(self) -> bool:
        """Calls through this PBX failed at once, several in a row: none is placed until the hold passes."""
        return not self.breaker.allows(asyncio.get_running_loop().time())

    async def _end(self, attempt_id: int, state: CallState, slot: Slot | None, campaign: str) -> None:
        outcome = state.outcome or Outcome.FAILED
        needs = needs_disposition(state)
        self._started.pop(attempt_id, None)
        self.floor.by_attempt.pop(attempt_id, None)
        self.floor.campaign_of.pop(attempt_id, None)
        await self.store(
            partial(
                attempts.finish,
                self.pool,
                attempt_id,
                outcome=outcome.value,
                hangup_by=state.hangup_by.value if state.hangup_by else None,
                cause=state.cause,
                amd_status=state.amd_status,
                answered=state.answered,
                at=datetime.now(UTC),
            ),
            "finish",
            attempt_id,
        )
        self.metrics.outcomes.labels(campaign, outcome.value).inc()
        if campaign != "inbound":  # a resident's call in says nothing of the calls going out
            self._failing(outcome)
        log.info(
            "call.ended",
            attempt=attempt_id,
            outcome=outcome.value,
            cause=state.cause,
            hangup_by=state.hangup_by.value if state.hangup_by else None,
        )
        if needs:  # a disposition saved during the call takes effect now; otherwise when it comes
            await self.store(partial(dispositions.settle, self.pool, attempt_id), "settle", attempt_id)
        else:
            retry_later = partial(dispositions.settle_or_retry, self.pool, attempt_id, outcome.value)
            await self.store(retry_later, "reschedule", attempt_id)
        if slot is None:
            return
        async with slot.lock:
            if slot.attempt_id != attempt_id:
                return
            slot.call_phase = "ended"
            await self.floor.notifier.to_user(slot.user.id, {
                "type": "call_ended", "attempt_id": attempt_id, "outcome": outcome.value,
                "hangup_by": state.hangup_by.value if state.hangup_by else None, "needs_disposition": needs,
            })  # fmt: skip
            if needs:
                if slot.state is AgentState.TALKING:
                    await self.floor.move(slot, Action.ENDED)
                if slot.disposed or await self._recorded(attempt_id):
                    await self.finish_wrap_up(slot)
                return  # in wrap-up (also when the phone dropped mid-call) until the disposition comes
            await self.back_to_work(slot)

    async def _recorded(self, attempt_id: int) -> bool:
        """Stored without this slot knowing: resent by the page as a restarted dialer took the call
        over (before it was the slot's), or saved through another dialer's web app."""
        if not self.db.up or self._pending:  # (AMI events wait on this: never on a database away)
            return False  # the page sends it again, answered already_recorded: that ends wrap-up too
        try:
            return await asyncio.wait_for(dispositions.recorded(self.pool, attempt_id), RECORDED_WITHIN_S)
        except (TimeoutError, *STORE_ERRORS):
            return False

    async def back_to_work(self, slot: Slot) -> None:
        """After a call without a conversation (caller holds the slot's lock)."""
        slot.attempt_id, slot.lease, slot.call_phase, slot.disposed = None, None, None, False
        slot.inbound = False
        if slot.state in (AgentState.DIALING, AgentState.TALKING):
            await self.floor.move(slot, Action.UNANSWERED)
            if slot.pause_after_call:
                slot.pause_after_call = False
                await self.floor.move(slot, Action.PAUSE, notice=slot.pause_reason)

    async def finish_wrap_up(self, slot: Slot) -> None:
        """The disposition is stored (caller holds the slot's lock): next call, a pause, or offline."""
        pause = slot.pause_after_call
        why = slot.pause_reason if pause else None  # (the page closed during the call…)
        slot.attempt_id, slot.lease, slot.call_phase, slot.inbound = None, None, None, False
        slot.pause_after_call = slot.disposed = False
        if slot.session_channel_id is None:  # the phone dropped during the call: no calls without it
            await self.floor.move(slot, Action.LOGOUT, notice="notice.phone_disconnected")
            return
        await self.floor.move(slot, Action.DISPOSED_PAUSE if pause else Action.DISPOSED, notice=why)

    async def hang_up(self, channel_id: str) -> bool:
        """Hang a call up; False if Asterisk no longer has it (or cannot be reached)."""
        try:
            return await self.link.hangup(channel_id)
        except AmiActionError as exc:
            log.warning("call.hangup_failed", error=exc.message)
            return False

    async def pop_record(
        self, slot: Slot, lease: Lease, *, reason: str, attempt_id: int | None = None
    ) -> None:
        """Read the household's minimal record (audit-logged) and push it to the operator's page."""
        known = slot.campaign if slot.campaign is not None and slot.campaign.id == lease.campaign_id else None
        try:
            record = await records.read_for_operator(
                self.pool, household_id=lease.household_id, department_id=lease.department_id,
                phone_id=lease.phone_id, user_id=slot.user.id, reason=reason, attempt_id=attempt_id,
                campaign_id=lease.campaign_id, remote_addr=slot.address,
                scripted=known is None or bool(known.script),  # (no script: no reading for it)
            )  # fmt: skip
        except STORE_ERRORS as exc:
            log.error("store.record_failed", attempt=attempt_id, error=type(exc).__name__)
            slot.record_owed = (reason, attempt_id)  # pushed when the database is back (repop)
            await self.failed(exc, "record")
            return
        slot.record_owed = None
        if record is not None:
            await self.floor.notifier.to_user(
                slot.user.id,
                {"type": "record", "reason": reason, "attempt_id": attempt_id, "record": record.as_json()},
            )

    async def repop(self) -> None:
        """The database is back: the records it could not give are pushed now (an operator put
        through during the outage was talking with no name, date of birth or address on screen)."""
        for slot in list(self.floor.slots.values()):
            if slot.record_owed is None:
                continue
            async with slot.lock:
                owed, slot.record_owed = slot.record_owed, None
                if owed is not None and slot.lease is not None and slot.attempt_id == owed[1]:
                    await self.pop_record(slot, slot.lease, reason=owed[0], attempt_id=owed[1])

    async def close_stale_calls(self) -> None:
        """Close calls that never got past ringing and have gone silent (events lost with a link)."""
        if self.tracker is None:
            return
        limit = self.settings.dialplan.ring_timeout_s + 60
        now = asyncio.get_running_loop().time()
        for attempt_id, state in list(self.tracker.calls.items()):
            started = self._started.setdefault(attempt_id, now)
            if state.phase in (Phase.ORIGINATING, Phase.RINGING) and now - started > limit:
                log.warning("call.stale", attempt=attempt_id, phase=state.phase.value)
                await self.tracker.end_with(attempt_id, Outcome.LOST)

    async def release_stuck_operators(self) -> None:
        """Safety net: an operator still dialling or talking on a call that no longer exists."""
        now = datetime.now(UTC)
        for slot in list(self.floor.slots.values()):
            gone = (
                slot.attempt_id is not None
                and self.tracker is not None
                and slot.attempt_id not in self.tracker.calls
                and slot.attempt_id not in self._ending
            )
            if not (gone and slot.state in (AgentState.DIALING, AgentState.TALKING)):
                continue
            if (now - slot.since).total_seconds() < STUCK_S:
                continue
            async with slot.lock:
                if slot.state is AgentState.TALKING and slot.attempt_id is not None:
                    log.error(
                        "operator.stuck", operator=slot.user.id, attempt=slot.attempt_id, state="talking"
                    )
                    await self.floor.move(slot, Action.ENDED)  # the disposition is still wanted
                elif slot.state is AgentState.DIALING:
                    log.error(
                        "operator.stuck", operator=slot.user.id, attempt=slot.attempt_id, state="dialing"
                    )
                    await self.back_to_work(slot)
