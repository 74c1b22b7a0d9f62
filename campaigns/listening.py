"""A supervisor listens in on an operator: their own phone is rung into asterisk-conf
[dialer-listen], where ChanSpy joins the operator's session channel (so the call they are on,
and the next ones while it lasts). Listen hears both sides, whisper lets only the operator hear
the supervisor, barge lets both hear. The web layer audit-logs every listen-in and refusal;
`Listens` writes each further call the operator takes while one lasts (`listen.call`): the log
says every resident's conversation a supervisor could hear, not only the first."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial

import asyncpg

from campaigns.dialing import EngineError
from campaigns.floor import Floor
from dialer import logs
from dialer.ami import events as ev
from dialer.ami.link import AmiLink, LinkEvent, OriginateRequest
from dialer.calls.state import Milestone
from dialer.calls.tracker import CallChange
from dialer.config import DialPlan
from dialer.errors import AmiActionError
from dialer.store import audit
from dialer.store.users import User

log = logs.get("campaigns.listening")

MODES = ("listen", "whisper", "barge")  # ChanSpy qE, qEw, qEB (asterisk-conf [dialer-listen])


async def start(
    floor: Floor, link: AmiLink, plan: DialPlan, supervisor: User, operator_id: int, mode: str
) -> str:
    """Ring the supervisor's phone; answered, it listens in. Returns the listening channel's id.
    Only an operator of the supervisor's own department whose phone is in session."""
    if mode not in MODES:
        raise EngineError("error.invalid")
    if not supervisor.extension:
        raise EngineError("error.no_extension")
    slot = floor.slots.get(operator_id)
    if slot is None or slot.user.department_id != supervisor.department_id:
        raise EngineError("error.no_operator")
    session = slot.session_channel_id
    if session is None or not slot.phone_ready:
        raise EngineError("error.operator_no_phone")
    try:
        target = (await link.channel_names()).get(session)
    except AmiActionError as exc:
        log.warning("engine.listen_failed", supervisor=supervisor.id, error=exc.message)
        raise EngineError("error.pbx") from None
    if target is None:
        raise EngineError("error.operator_no_phone")
    channel_id = f"{plan.channel_prefix}-l{supervisor.id}-{int(time.time() * 1000):x}"
    try:
        await link.originate(
            OriginateRequest(
                channel=plan.operator_template.format(extension=supervisor.extension),
                context=plan.listen_context,
                exten="s",
                channel_id=channel_id,
                caller_id=f'"モニタ {slot.user.extension or ""}" <{supervisor.extension}>',
                timeout_ms=30_000,
                variables={
                    "SPY_TARGET": target,
                    "SPY_MODE": mode,
                    "DIALER_SUPERVISOR": str(supervisor.id),
                    "DIALER_ATTEMPT": f"listen-{supervisor.id}",
                },
            )
        )
    except AmiActionError as exc:
        log.warning("engine.listen_failed", supervisor=supervisor.id, error=exc.message)
        raise EngineError("error.pbx") from None
    log.info(
        "engine.listen", supervisor=supervisor.id, operator=operator_id, mode=mode, attempt=slot.attempt_id
    )
    return channel_id


@dataclass
class Listen:
    supervisor: User
    operator_id: int
    mode: str
    heard: set[int] = field(default_factory=set)  # the calls already in the audit log


Store = Callable[[Callable[[], Awaitable[object]], str, int | None], Awaitable[bool]]


class Listens:
    """The listen-ins up on this dialer's PBX, by the listening channel's id, until it hangs up."""

    def __init__(self, pool: asyncpg.Pool, store: Store) -> None:
        self.pool, self.store = pool, store  # store: CallFlow.store (held while the database is away)
        self.up: dict[str, Listen] = {}

    async def start(
        self, floor: Floor, link: AmiLink, plan: DialPlan, supervisor: User, operator_id: int, mode: str
    ) -> str:
        """`start`, then the listen-in kept until its channel ends; the call on now is the web
        layer's `listen` entry."""
        channel_id = await start(floor, link, plan, supervisor, operator_id, mode)
        listen = Listen(supervisor, operator_id, mode)
        slot = floor.slots.get(operator_id)
        if slot is not None and slot.attempt_id is not None:
            listen.heard.add(slot.attempt_id)
        self.up[channel_id] = listen
        return channel_id

    async def stop(self, link: AmiLink, supervisor: User, channel_id: str) -> int:
        """終了 on the supervisor's page: their own listen-in hung up (not another's). Returns the
        operator they were listening to."""
        listen = self.up.get(channel_id)
        if listen is None or listen.supervisor.id != supervisor.id:
            raise EngineError("error.no_listen")
        try:
            await link.hangup(channel_id)  # False: it had ended already
        except AmiActionError as exc:
            log.warning("engine.listen_stop_failed", supervisor=supervisor.id, error=exc.message)
            raise EngineError("error.pbx") from None
        self.up.pop(channel_id, None)
        return listen.operator_id

    async def on_event(self, event: LinkEvent) -> None:
        if isinstance(event, ev.Hangup):
            self.up.pop(event.uniqueid, None)
        elif isinstance(event, ev.OriginateResponse) and not event.success:  # never answered
            for key in (event.action_id, event.uniqueid):
                if key:
                    self.up.pop(key, None)

    async def after_reconnect(self, link: AmiLink) -> None:
        """The link was down: a listening channel no longer at Asterisk ended unseen."""
        if not self.up:
            return
        try:
            live = await link.live_channels()
        except AmiActionError:
            return  # kept: a call logged as heard that was not beats one heard and not logged
        for channel_id in [c for c in self.up if c not in live]:
            del self.up[channel_id]

    async def on_call(self, change: CallChange, floor: Floor) -> None:
        """A call connected to an operator: heard by whoever listens to them."""
        user_id = floor.by_attempt.get(change.attempt_id)
        slot = floor.slots.get(user_id) if user_id is not None else None
        if Milestone.CONNECTED not in change.milestones or slot is None:
            return
        for channel_id, listen in list(self.up.items()):
            if listen.operator_id != slot.user.id or change.attempt_id in listen.heard:
                continue
            listen.heard.add(change.attempt_id)
            write = partial(
                audit.record, self.pool, action="listen.call", user_id=listen.supervisor.id,
                department_id=slot.user.department_id, object_type="attempt", object_id=change.attempt_id,
                detail={"operator_id": slot.user.id, "mode": listen.mode, "channel_id": channel_id},
            )  # fmt: skip
            await self.store(write, "listen_audit", change.attempt_id)
