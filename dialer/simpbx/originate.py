"""Action: Originate. Parse it, answer ``Originate successfully queued``, start the call.

Dial strings: ``PJSIP/<number>@<trunk>`` is a resident (``script(number)`` first, else the
callee model); ``PJSIP/<extension>`` is an operator's phone that answers by itself, unless the
extension was given an explicit script (that is how the recorded ``PJSIP/sipp-uas`` cases are
replayed); ``Local/<exten>@<context>`` is a Local channel pair (see local.py).
"""

from __future__ import annotations

from collections.abc import Callable

from .behaviour import Behaviour
from .calls import R_FAILED, Call, Originate, PjsipCall
from .channels import parse_callerid
from .core import Core
from .dialplan import Dialplan
from .hangups import Hangups
from .local import LocalCall
from .replies import Deferred, Reply, error, success
from .wire import Action, get, get_all

QUEUED = "Originate successfully queued"
TRUE = {"yes", "true", "y", "t", "1", "on"}


def parse(action: Action) -> Originate | str:
    """The request, or the error message Asterisk would answer with."""
    dial = get(action, "Channel").strip()
    if not dial:
        return "Channel not specified"
    if "/" not in dial:
        return "Invalid channel"
    try:
        priority = int(get(action, "Priority") or "1")
    except ValueError:
        return "Invalid priority"
    try:
        timeout_ms = int(get(action, "Timeout") or "30000")
    except ValueError:
        return "Invalid timeout"
    variables: list[tuple[str, str]] = []
    for header in get_all(action, "Variable"):
        for pair in header.split(","):
            name, sep, value = pair.partition("=")
            if sep and name.strip():
                variables.append((name.strip(), value))
    cid = get(action, "CallerID")
    return Originate(
        dial=dial,
        context=get(action, "Context"),
        exten=get(action, "Exten"),
        priority=priority,
        timeout_s=(timeout_ms if timeout_ms > 0 else 30000) / 1000.0,
        callerid=parse_callerid(cid) if cid else None,
        variables=variables,
        action_id=get(action, "ActionID") or None,
        channel_id=get(action, "ChannelId") or None,
        other_id=get(action, "OtherChannelId") or None,
        is_async=get(action, "Async").strip().lower() in TRUE,
        application=get(action, "Application"),
        app_data=get(action, "Data"),
    )


class Originator:
    def __init__(self, core: Core, plan: Dialplan, hangups: Hangups) -> None:
        self.core, self.plan, self.hangups = core, plan, hangups

    def handle(self, action: Action) -> Reply | Deferred:
        aid = get(action, "ActionID")
        req = parse(action)
        if isinstance(req, str):
            return Reply([error(aid, req)])
        if req.is_async:
            return Reply([success(aid, QUEUED)], after=lambda: self.start(req, lambda ok: None))
        deferred = Deferred()

        def done(ok: bool) -> None:
            # Asterisk answers a synchronous Originate once the dial is over (channel gone, or
            # answered and handed to the dialplan): after the events of that moment.
            reply = Reply([success(aid, QUEUED) if ok else error(aid, "Originate failed")])
            self.core.later(0, lambda: deferred.resolve(reply))

        # Let the session see the Deferred first, then dial.
        self.core.later(0, lambda: self.start(req, done))
        return deferred

    def start(self, req: Originate, done: Callable[[bool], None]) -> None:
        tech, _, rest = req.dial.partition("/")
        ids = [i for i in (req.channel_id, req.other_id) if i]
        duplicate = any(self.core.uniqueid_taken(i) for i in ids) or len(set(ids)) != len(ids)
        if duplicate or not rest:
            Call(self.core, self.plan, self.hangups, req, done).outcome(False, R_FAILED)
            return
        if tech.lower() == "local" and "@" in rest:
            LocalCall(self.core, self.plan, self.hangups, req, done).start()
            return
        if tech.upper() != "PJSIP":
            Call(self.core, self.plan, self.hangups, req, done).outcome(False, R_FAILED)
            return
        number, at, endpoint = rest.partition("@")
        if at:
            behaviour, phone = self.core.behaviour_for(number), ""
        elif number in self.core.scripts:
            behaviour, endpoint, phone = self.core.scripts[number], number, ""
        else:
            answer_s = self.core.config.operator_answer_s
            behaviour, endpoint, phone = Behaviour("answer", ring_s=answer_s), number, number
        PjsipCall(self.core, self.plan, self.hangups, req, done, behaviour, endpoint, phone).start()
