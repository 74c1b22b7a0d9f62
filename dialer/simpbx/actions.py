"""Actions of a logged-in session (Login, Logoff and Events live in session.py).

Messages and field orders are copied from the transcripts (01, 02, 07); unknown actions get
Asterisk 22's ``Invalid/unknown command`` error.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from . import listing
from .channels import STATE_DESC, Channel, varset
from .core import Core
from .dialplan import Dialplan
from .hangups import Hangups
from .originate import Originator
from .replies import Deferred, Reply, aid_of, error, list_complete, list_start, response, success
from .wire import Action, get

VERSION = "22.10.1"

CORE_SETTINGS = [
    ("AMIversion", "11.0.0"),
    ("AsteriskVersion", VERSION),
    ("SystemName", ""),
    ("CoreMaxCalls", "0"),
    ("CoreMaxLoadAvg", "0.000000"),
    ("CoreRunUser", ""),
    ("CoreRunGroup", ""),
    ("CoreMaxFilehandles", "0"),
    ("CoreRealTimeEnabled", "No"),
    ("CoreCDRenabled", "Yes"),
    ("CoreHTTPenabled", "No"),
    ("SoundsSearchCustomDir", "No"),
]

Handler = Callable[[Action, str], "Reply | Deferred"]


class Actions:
    def __init__(self, core: Core, plan: Dialplan, hangups: Hangups) -> None:
        self.core, self.plan, self.hangups = core, plan, hangups
        self.originator = Originator(core, plan, hangups)
        self.table: dict[str, Handler] = {
            "ping": self.ping,
            "coresettings": lambda a, aid: Reply([response(aid, "Success", *CORE_SETTINGS)]),
            "corestatus": self.core_status,
            "originate": lambda a, aid: self.originator.handle(a),
            "hangup": self.hangup,
            "getvar": self.getvar,
            "setvar": self.setvar,
            "redirect": self.redirect,
            "userevent": self.user_event,
            "command": self.command,
            "coreshowchannels": lambda a, aid: listing.core_show_channels(core, a),
            "status": lambda a, aid: listing.status(core, a),
            "confbridgelistrooms": lambda a, aid: listing.confbridge_list_rooms(core, a),
            "confbridgelist": lambda a, aid: listing.confbridge_list(core, a),
        }

    def handle(self, name: str, action: Action) -> Reply | Deferred:
        aid = get(action, "ActionID")
        handler = self.table.get(name.lower())
        if handler is None:
            text = f"Invalid/unknown command: {name}. Use Action: ListCommands to show available commands."
            return Reply([error(aid, text)])
        return handler(action, aid)

    def ping(self, action: Action, aid: str) -> Reply:
        return Reply([response(aid, "Success", ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))])

    def core_status(self, action: Action, aid: str) -> Reply:
        started = time.localtime(self.core.started)
        day, clock = time.strftime("%Y-%m-%d", started), time.strftime("%H:%M:%S", started)
        calls = sum(1 for ch in self.core.channels.values() if not ch.is_half_two)
        fields = [
            ("CoreStartupDate", day),
            ("CoreStartupTime", clock),
            ("CoreReloadDate", day),
            ("CoreReloadTime", clock),
            ("CoreCurrentCalls", str(calls)),
            ("CoreProcessedCalls", str(self.core.processed)),
        ]
        return Reply([response(aid, "Success", *fields)])

    def hangup(self, action: Action, aid: str) -> Reply:
        key = get(action, "Channel")
        if not key:
            return Reply([error(aid, "No channel specified")])
        cause_text = get(action, "Cause").strip()
        cause = int(cause_text) if cause_text.isdigit() else None
        if len(key) > 2 and key.startswith("/") and key.endswith("/"):
            return self._hangup_regex(key[1:-1], cause, aid)
        ch = self.core.find(key)
        if ch is None:
            return Reply([error(aid, "No such channel")])
        return Reply([success(aid, "Channel Hungup")], after=lambda: self.hangups.ami_hangup(ch, cause))

    def _hangup_regex(self, pattern: str, cause: int | None, aid: str) -> Reply:
        try:
            regex = re.compile(pattern)
        except re.error:
            return Reply([error(aid, "Invalid regex")])
        chans = [ch for ch in self.core.channels.values() if regex.search(ch.name)]
        items = [[("Event", "ChannelHungup"), ("Channel", ch.name), *aid_of(aid)] for ch in chans]
        done = list_complete("ChannelsHungupListComplete", aid, len(items))

        def after() -> None:
            for ch in chans:
                if ch.alive:
                    self.hangups.ami_hangup(ch, cause)

        return Reply([list_start(aid, "Channels hung up will follow"), *items, done], after=after)

    def _channel(self, action: Action, aid: str) -> Channel | Reply | None:
        key = get(action, "Channel")
        if not key:
            return None
        found = self.core.find(key)
        return found if found is not None else Reply([error(aid, "No such channel")])

    def getvar(self, action: Action, aid: str) -> Reply:
        name = get(action, "Variable")
        if not name:
            return Reply([error(aid, "No variable specified")])
        ch = self._channel(action, aid)
        if isinstance(ch, Reply):
            return ch
        value = self.core.globals.get(name, "") if ch is None else self._read(ch, name)
        return Reply([response(aid, "Success", ("Variable", name), ("Value", value))])

    def _read(self, ch: Channel, name: str) -> str:
        functions = {
            "CHANNEL(state)": STATE_DESC.get(ch.state, "Unknown"),
            "CHANNEL(name)": ch.name,
            "CHANNEL": ch.name,
            "UNIQUEID": ch.uniqueid,
            "CHANNEL(uniqueid)": ch.uniqueid,
            "CHANNEL(linkedid)": ch.linkedid,
            "CONTEXT": ch.context,
            "EXTEN": ch.exten,
        }
        if name in functions:
            return functions[name]
        return ch.variables.get(name, self.core.globals.get(name, ""))

    def setvar(self, action: Action, aid: str) -> Reply:
        name = get(action, "Variable")
        if not name:
            return Reply([error(aid, "No variable specified")])
        ch = self._channel(action, aid)
        if isinstance(ch, Reply):
            return ch
        value = get(action, "Value")
        if ch is None:
            self.core.globals[name] = value
            return Reply([success(aid, "Variable Set")])
        target = ch
        return Reply(
            [success(aid, "Variable Set")], after=lambda: self.core.emit(varset(target, name, value))
        )

    def redirect(self, action: Action, aid: str) -> Reply:
        key = get(action, "Channel")
        if not key:
            return Reply([error(aid, "Channel not specified")])
        try:
            priority = int(get(action, "Priority") or "1")
        except ValueError:
            return Reply([error(aid, "Invalid priority")])
        ch = self.core.find(key)
        if ch is None:
            return Reply([error(aid, f"Channel does not exist: {key}")])
        context, exten = get(action, "Context") or ch.context, get(action, "Exten") or ch.exten

        def go() -> None:
            if ch.alive:
                self.plan.redirect(ch, context, exten, priority)

        return Reply([success(aid, "Redirect successful")], after=go)

    def user_event(self, action: Action, aid: str) -> Reply:
        name = get(action, "UserEvent")
        if not name:
            return Reply([error(aid, "Missing UserEvent")])
        skip = {"action", "actionid", "userevent"}
        fields = [
            (key, item)
            for key, value in action.items()
            if key.lower() not in skip
            for item in (value if isinstance(value, list) else [value])
        ]
        event = [("Event", "UserEvent"), ("Privilege", "user,all"), ("UserEvent", name), *fields]
        return Reply([response(aid, "Success")], after=lambda: self.core.emit(event))

    def command(self, action: Action, aid: str) -> Reply:
        text = " ".join(get(action, "Command").split())
        chans = list(self.core.channels.values())
        calls = sum(1 for ch in chans if not ch.is_half_two)
        outputs = {
            "core show channels count": [
                f"{len(chans)} active channels",
                f"{calls} active calls",
                f"{self.core.processed} calls processed",
            ],
            "core show version": [f"Asterisk {VERSION} (simulated)"],
        }
        lines = outputs.get(text, [f"No such command '{text}' (type 'core show help {text}' for other help)"])
        out = [("Output", line) for line in lines]
        return Reply([success(aid, "Command output follows", *out)])
