"""Several Asterisk servers driven by one dialer process: one engine per server.

An operator's phone is registered on one server and their session bridge lives there, so every
call they take goes through that server (app_user.pbx; none: the first server configured).
Each server therefore has its own engine (AMI link, call tracker, floor of operators, pacer),
and the engines share only the database: households are leased with FOR UPDATE SKIP LOCKED as
between dialer processes, so two servers never call the same household, and a server that is
down stops only its own operators' calls. Predictive campaigns worked on several servers are
paced per server (each with its own operators), against the campaign's one abandon record.
Residents calling in reach the operators of the server their call arrived on.
"""

from __future__ import annotations

from campaigns.dialing import EngineError
from campaigns.dispositions import Code, DispositionInput
from campaigns.engine import Engine
from campaigns.floor import Slot
from dialer.ami.link import AmiLink
from dialer.store import dispositions
from dialer.store.users import User
from dialer.store.watch import DatabaseWatch


class Fleet:
    def __init__(self, engines: list[Engine]) -> None:
        if not engines:
            raise ValueError("a fleet needs at least one engine")
        self.engines = engines
        self.by_name = {e.link.name: e for e in engines}
        for e in engines:
            e.alone = len(engines) == 1

    @property
    def first(self) -> Engine:
        return self.engines[0]

    @property
    def db(self) -> DatabaseWatch:
        return self.first.db

    @property
    def links(self) -> list[AmiLink]:
        return [e.link for e in self.engines]

    def of(self, user: User) -> Engine:
        """The engine of the server the user's phone is on; EngineError if that server is not
        configured here (a typo in app_user.pbx must not silently put calls elsewhere)."""
        if user.pbx is None:
            return self.first
        engine = self.by_name.get(user.pbx)
        if engine is None:
            raise EngineError("error.unknown_pbx")
        return engine

    def holding(self, operator_id: int) -> tuple[Engine, Slot] | None:
        """The engine (and slot) an operator is at the console through, if any."""
        for engine in self.engines:
            slot = engine.floor.slots.get(operator_id)
            if slot is not None:
                return engine, slot
        return None

    def slots(self) -> list[Slot]:
        return [s for e in self.engines for s in e.floor.slots.values()]

    # ---- operators' commands, each to their own server's engine --------------------------------
    async def ready(self, user: User, campaign_id: int) -> None:
        await self.of(user).ready(user, campaign_id)

    async def pause(self, user: User) -> None:
        await self.of(user).pause(user)

    async def dial_preview(self, user: User) -> None:
        await self.of(user).dial_preview(user)

    async def skip_preview(self, user: User) -> None:
        await self.of(user).skip_preview(user)

    async def hangup(self, user: User, attempt_id: int | None = None) -> None:
        await self.of(user).hangup(user, attempt_id)

    async def disposition(
        self, user: User, inp: DispositionInput, code: Code, remote: str = ""
    ) -> dispositions.Saved:
        held = self.holding(user.id)
        engine = held[0] if held is not None else self._of_or_first(user)
        return await engine.disposition(user, inp, code, remote)

    async def identify(self, user: User, attempt_id: int, key: str, by: str, remote: str = "") -> bool:
        held = self.holding(user.id)
        if held is None:
            raise EngineError("error.not_your_call")
        return await held[0].identify(user, attempt_id, key, by, remote)

    async def attach(self, user: User, address: str = "") -> None:
        await self._of_or_first(user).attach(user, address)

    async def detach(self, user: User) -> None:
        held = self.holding(user.id)
        if held is not None:
            await held[0].detach(user)

    async def logout(self, user: User) -> None:
        for engine in self.engines:
            await engine.logout(user)

    async def listen(self, supervisor: User, operator_id: int, mode: str) -> str:
        """ChanSpy runs on the operator's server: the supervisor's phone must be on it too."""
        held = self.holding(operator_id)
        if held is None:
            raise EngineError("error.no_operator")
        if self._of_or_first(supervisor) is not held[0]:
            raise EngineError("error.other_pbx")
        return await held[0].listen(supervisor, operator_id, mode)

    def listening(self, supervisor: User) -> list[str]:
        """The supervisor's listen-ins up now (their page, reloaded, can still end them)."""
        return [
            cid for e in self.engines for cid, li in e.listens.up.items() if li.supervisor.id == supervisor.id
        ]

    async def stop_listening(self, supervisor: User, channel_id: str) -> int:
        """The listen-in is on the engine whose server rang the supervisor's phone (the operator
        listened to is returned)."""
        for engine in self.engines:
            if channel_id in engine.listens.up:
                return await engine.stop_listening(supervisor, channel_id)
        raise EngineError("error.no_listen")

    def _of_or_first(self, user: User) -> Engine:
        try:
            return self.of(user)
        except EngineError:
            return self.first  # pages still connect; Ready says what is wrong
