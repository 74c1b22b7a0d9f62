"""Shared state of the simulated PBX: channels, conferences, timers, ids and the event sink."""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .behaviour import Behaviour
from .channels import Channel
from .config import SimConfig
from .wire import Headers

if TYPE_CHECKING:
    from .conference import Conference

log = logging.getLogger(__name__)


class Core:
    """Everything the call scripts share. ``emit`` hands one event to every listening session."""

    def __init__(self, config: SimConfig, emit: Callable[[Headers], None]) -> None:
        self.config = config
        self._emit = emit
        self.rng = random.Random(config.callees.seed)
        self.scripts: dict[str, Behaviour] = {}
        self.globals: dict[str, str] = {}
        self.channels: dict[str, Channel] = {}  # by Uniqueid, in creation order
        self.conferences: dict[str, Conference] = {}
        self._timers: set[asyncio.TimerHandle] = set()
        self._uid = itertools.count(1)
        self.reset()

    def reset(self) -> None:
        """Forget the boot-time counters, as a restarted Asterisk does."""
        self._seq = itertools.count(0)
        self.processed = 0
        self.started = time.time()

    # ----- events and time -------------------------------------------------------------
    def emit(self, *messages: Headers) -> None:
        for message in messages:
            self._emit(message)

    def scaled(self, seconds: float) -> float:
        return seconds * self.config.time_scale

    def later(
        self, delay: float, fn: Callable[[], None], owner: Channel | None = None, dialplan: bool = False
    ) -> asyncio.TimerHandle:
        """Run ``fn`` after ``delay`` s; an owner's timers die with it (dialplan ones on Redirect too)."""
        holder: list[asyncio.TimerHandle] = []

        def run() -> None:
            handle = holder[0]
            self._timers.discard(handle)
            if owner is not None:
                owner.timers.discard(handle)
                owner.dp_timers.discard(handle)
            try:
                fn()
            except Exception:  # a script bug must not take the event loop's callback down
                log.exception("simpbx timer failed")

        handle = asyncio.get_running_loop().call_later(max(0.0, delay), run)
        holder.append(handle)
        self._timers.add(handle)
        if owner is not None:
            owner.timers.add(handle)
            if dialplan:
                owner.dp_timers.add(handle)
        return handle

    def cancel(self, handle: asyncio.TimerHandle | None) -> None:
        if handle is not None:
            handle.cancel()
            self._timers.discard(handle)

    def cancel_owned(self, ch: Channel, dialplan_only: bool = False) -> None:
        for handle in list(ch.dp_timers if dialplan_only else ch.timers):
            self.cancel(handle)
            ch.timers.discard(handle)
            ch.dp_timers.discard(handle)

    def cancel_all(self) -> None:
        for handle in list(self._timers):
            handle.cancel()
        self._timers.clear()
        for ch in self.channels.values():
            ch.timers.clear()
            ch.dp_timers.clear()

    # ----- ids -------------------------------------------------------------------------
    def next_seq(self) -> str:
        """The 8-hex-digit suffix Asterisk gives every new channel name (one global counter)."""
        return f"{next(self._seq):08x}"

    def new_uniqueid(self) -> str:
        return f"{int(time.time())}.{next(self._uid)}"

    def uptime(self) -> int:
        return int(time.time() - self.started)

    # ----- channels ----------------------------------------------------------------------
    def add(self, ch: Channel) -> None:
        self.channels[ch.uniqueid] = ch
        self.processed += 1

    def remove(self, ch: Channel) -> None:
        ch.alive = False
        ch.on_cancel = None
        self.cancel_owned(ch)
        self.channels.pop(ch.uniqueid, None)

    def find(self, key: str) -> Channel | None:
        """A channel by name, or by Uniqueid (a ChannelId stands in for the name)."""
        if key in self.channels:
            return self.channels[key]
        for ch in self.channels.values():
            if ch.name == key:
                return ch
        return None

    def uniqueid_taken(self, uid: str) -> bool:
        return uid in self.channels

    def behaviour_for(self, number: str) -> Behaviour:
        scripted = self.scripts.get(number)
        return scripted if scripted is not None else self.config.callees.pick(self.rng)
