"""A supervisor listens in on an operator: their own phone is rung into asterisk-conf
[dialer-listen], where ChanSpy joins the operator's session channel (so the call they are on,
and the next ones while it lasts). Listen hears both sides, whisper lets only the operator hear
the supervisor, barge lets both hear. The web layer audit-logs every listen-in and refusal."""

from __future__ import annotations

import time

from campaigns.dialing import EngineError
from campaigns.floor import Floor
from dialer import logs
from dialer.ami.link import AmiLink, OriginateRequest
from dialer.config import DialPlan
from dialer.errors import AmiActionError
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
