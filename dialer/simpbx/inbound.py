"""Residents calling in: asterisk-conf [from-trunk], [dialer-inbound] and [dialer-inbound-join].

A call arrives on the trunk (``SimulatedPbx.call_in``), is answered, and runs the two FastAGI
requests of the product's dialplan against the address in the global DIALER_AGI, as Asterisk
does: ``inbound`` (who may be calling) and ``ivr`` (the menu, where the simulated caller presses
its keys). A caller who wants a person is announced (UserEvent DialerInbound) and waits
DIALER_INBOUND_WAIT seconds for the dialer's Redirect, then goes to the desk (DIALER_INBOUND_DESK;
empty: the busy prompt, then hang-up). AGI unreachable or failing: straight to the desk.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import TYPE_CHECKING

from . import conference
from .channels import RING, UP, Channel, chan_event, device_state, newstate, user_event, varset
from .core import Core
from .hangups import Hangups

if TYPE_CHECKING:
    from .dialplan import Dialplan

AGI_CONNECT_S = 2.0  # res_agi's MAX_AGI_CONNECT
AGI_COMMAND_S = 30.0
_SET = re.compile(r'^SET VARIABLE (\S+) "?(.*?)"?$')


class InboundLine:
    def __init__(self, core: Core, hangups: Hangups, plan: Dialplan) -> None:
        self.core, self.hangups, self.plan = core, hangups, plan
        self._tasks: set[asyncio.Task[None]] = set()
        self._keys: dict[str, str] = {}  # by Uniqueid: the keys the caller will press

    def call_in(self, line: str, caller: str, keys: str = "2") -> str:
        """A call from `caller` to the line `line` arrives on the trunk; returns its Uniqueid."""
        uid = self.core.new_uniqueid()
        ch = Channel(
            f"PJSIP/trunk-{self.core.next_seq()}", uid, uid, "from-trunk", line, "PJSIP", "PJSIP/trunk"
        )
        ch.cid_num, ch.conn_num = caller or "<unknown>", "<unknown>"
        ch.state, ch.app, ch.app_data = RING, "", ""
        self.core.add(ch)
        self.core.emit(chan_event("Newchannel", ch), device_state(ch.device, "INUSE"))
        self._keys[uid] = keys
        self.plan._step(ch, 1, "Set", f"DIALER_LINE={line}")
        self.core.emit(varset(ch, "DIALER_LINE", line))
        self.plan._step(ch, 2, "Goto", "dialer-inbound,s,1")
        self.plan.run(ch, "dialer-inbound", "s")
        return uid

    # ----- [dialer-inbound] ------------------------------------------------------------------
    def inbound(self, ch: Channel, priority: int) -> None:
        ch.context, ch.exten = "dialer-inbound", "s"
        if priority > 1:  # a Goto to the desk label (dialer-inbound-join with the bridge empty)
            self._desk(ch)
            return
        task = asyncio.create_task(self._script(ch), name=f"simpbx-inbound-{ch.uniqueid}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _script(self, ch: Channel) -> None:
        try:
            if await self._menu(ch):
                self._announce(ch)
            elif ch.alive:
                self.plan._step(
                    ch, 9, "Log", "WARNING,dialer FastAGI gave no answer: caller put through to the desk"
                )
                self._desk(ch)
        finally:
            self._keys.pop(ch.uniqueid, None)

    async def _menu(self, ch: Channel) -> bool:
        """The lookup and the menu; True when the caller wants a person (and is still there)."""
        self.plan._step(ch, 1, "NoOp", f"inbound call, line={ch.variables.get('DIALER_LINE', '')}")
        self.plan._step(ch, 2, "Answer")
        ch.answered = True
        self.core.emit(newstate(ch, UP))
        self.plan._step(ch, 3, "Set", "DIALER_INBOUND=")
        self.core.emit(varset(ch, "DIALER_INBOUND", ""))
        line, hint = ch.variables.get("DIALER_LINE", ""), ch.variables.get("DIALER_DEPARTMENT_HINT", "")
        if not await self._agi(ch, 4, "inbound", [line, hint]) or ch.variables.get("DIALER_INBOUND") != "ok":
            return False
        self.plan._step(ch, 6, "Set", "DIALER_CHOICE=")
        self.core.emit(varset(ch, "DIALER_CHOICE", ""))
        args = [ch.variables.get("DIALER_DEPARTMENT", ""), ch.variables.get("DIALER_HOUSEHOLD", "")]
        if not await self._agi(ch, 7, "ivr", args):
            return False
        return ch.variables.get("DIALER_CHOICE") == "operator"

    def _announce(self, ch: Channel) -> None:
        v, wait = ch.variables, self.core.globals.get("DIALER_INBOUND_WAIT", "20")
        fields = [
            ("Department", v.get("DIALER_DEPARTMENT", "")),
            ("Household", v.get("DIALER_HOUSEHOLD", "")),
            ("Caller", v.get("DIALER_CALLER", "")),
            ("Number", ch.cid_num),
            ("Wait", wait),
        ]
        self.plan._step(ch, 11, "UserEvent", "DialerInbound," + ",".join(f"{k}: {x}" for k, x in fields))
        self.core.emit(user_event(ch, "DialerInbound", fields))
        self.plan._step(ch, 12, "Wait", wait)
        try:
            seconds = float(wait)
        except ValueError:
            seconds = 20.0
        self.plan._wait(ch, self.core.scaled(seconds), lambda: self._desk(ch))

    def _desk(self, ch: Channel) -> None:
        desk = self.core.globals.get("DIALER_INBOUND_DESK", "")
        self.plan._step(ch, 13, "GotoIf", f"{int(not desk)}?busy")
        if desk:  # a member of staff answers and talks for a while (not simulated further)
            self.plan._step(ch, 14, "Dial", f"{desk},60")
            self.plan._wait(ch, self.core.scaled(60.0), lambda: self.plan._hangup_step(ch, 16))
            return
        self.plan._step(
            ch,
            15,
            "Playback",
            self.core.globals.get("DIALER_INBOUND_BUSY_PROMPT", "custom/dialer-inbound-busy"),
        )
        self.plan._wait(ch, self.core.scaled(3.0), lambda: self.plan._hangup_step(ch, 16))

    # ----- [dialer-inbound-join] ---------------------------------------------------------------
    def join(self, ch: Channel) -> None:
        room = f"agent-{ch.exten}"
        self.plan._step(ch, 1, "NoOp", f"inbound caller to operator {ch.exten}")
        ops = conference.parties(self.core, room)
        self.plan._step(ch, 2, "Set", f"OPS={ops}")
        self.core.emit(varset(ch, "OPS", str(ops)))
        self.plan._step(ch, 3, "GotoIf", f"{int(ops == 0)}?dialer-inbound,s,desk")
        if ops == 0:
            self.plan.run(ch, "dialer-inbound", "s", 13)
            return
        self.plan._step(ch, 4, "ConfBridge", f"{room},dialer_bridge,dialer_resident")
        conference.join(self.core, room, ch, conference.RESIDENT)

    # ----- FastAGI, as res_agi speaks it ------------------------------------------------------
    async def _agi(self, ch: Channel, priority: int, route: str, args: list[str]) -> bool:
        """Run one AGI(agi://DIALER_AGI/route,args); False (AGISTATUS=FAILURE) if it cannot connect."""
        address = self.core.globals.get("DIALER_AGI", "127.0.0.1:4573")
        self.plan._step(ch, priority, "AGI", f"agi://{address}/{route},{','.join(args)}")
        host, _, port = address.rpartition(":")
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), AGI_CONNECT_S)
        except (OSError, TimeoutError, ValueError):
            self.core.emit(varset(ch, "AGISTATUS", "FAILURE"))
            return False
        try:
            writer.write(self._headers(ch, address, route, args).encode())
            await writer.drain()
            while True:
                line = await asyncio.wait_for(reader.readline(), AGI_COMMAND_S)
                if not line:
                    break
                writer.write((await self._answer(ch, line.decode().strip()) + "\n").encode())
                await writer.drain()
        except (OSError, TimeoutError):
            self.core.emit(varset(ch, "AGISTATUS", "FAILURE"))
            return False
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
        self.core.emit(varset(ch, "AGISTATUS", "SUCCESS" if ch.alive else "HANGUP"))
        return ch.alive

    def _headers(self, ch: Channel, address: str, route: str, args: list[str]) -> str:
        lines = [
            ("agi_network", "yes"), ("agi_network_script", route), ("agi_request", f"agi://{address}/{route}"),
            ("agi_channel", ch.name), ("agi_language", "ja"), ("agi_type", "PJSIP"),
            ("agi_uniqueid", ch.uniqueid), ("agi_version", "22.10.1"), ("agi_callerid", ch.cid_num),
            ("agi_calleridname", "unknown"), ("agi_callingpres", "0"), ("agi_dnid", ch.variables.get("DIALER_LINE", "")),
            ("agi_context", ch.context), ("agi_extension", ch.exten), ("agi_priority", str(ch.priority)),
            ("agi_enhanced", "0.0"), ("agi_accountcode", ""), ("agi_threadid", "140000000000000"),
        ]  # fmt: skip
        lines += [(f"agi_arg_{i}", a) for i, a in enumerate(args, 1)]
        return "".join(f"{k}: {v}\n" for k, v in lines) + "\n"

    async def _answer(self, ch: Channel, command: str) -> str:
        if not ch.alive:
            return "511 Command Not Permitted on a dead channel or intercepted by the channel"
        verb = command.split(" ", 2)
        if command.startswith("SET VARIABLE"):
            m = _SET.match(command)
            if m is None:
                return "520 Invalid command syntax."
            self.core.emit(varset(ch, m.group(1), m.group(2).replace('\\"', '"').replace("\\\\", "\\")))
            return "200 result=1"
        if command.startswith("GET VARIABLE") and len(verb) == 3:
            value = ch.variables.get(verb[2])
            return "200 result=0" if value is None else f"200 result=1 ({value})"
        if command.startswith("GET DATA"):
            keys = self._keys.get(ch.uniqueid, "")
            await asyncio.sleep(self.core.scaled(1.0))  # the prompt plays, the caller presses
            if not keys:
                return "200 result= (timeout)"
            self._keys[ch.uniqueid] = keys[1:]
            return f"200 result={keys[0]}"
        if command.startswith("STREAM FILE"):
            await asyncio.sleep(self.core.scaled(2.0))
            return "200 result=0 endpos=16000"
        if command.startswith("CHANNEL STATUS"):
            return "200 result=6"
        if command.startswith(("VERBOSE", "ANSWER", "NOOP")):
            return "200 result=1"
        return "510 Invalid or unknown command"
