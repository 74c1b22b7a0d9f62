"""What the dialplan asks the dialer's FastAGI service (asterisk-conf/extensions.conf):

- `inbound,<line>,<department hint>`: a resident calls in. Which department's line is it (the
  hint, or the number called matched against each department's call-back number), and who may
  be calling (their number among the department's phones)? Sets DIALER_DEPARTMENT,
  DIALER_CALLER (known / several / unknown), DIALER_HOUSEHOLD (when exactly one), and last
  DIALER_INBOUND=ok; the dialplan goes on only when it sees that.
- `ivr,<department>,<household>`: the short menu: 1 payment information, 2 an operator (also
  after no key twice, or three rounds). Sets DIALER_CHOICE=operator and writes the
  call into the household's contact history (経過記録) when the caller was recognised: by
  `inbound`, on the same channel (its agi_uniqueid), a few minutes before. The household in the
  arguments is never taken on its word: whatever could reach this service would otherwise write
  into any household's 経過記録, which goes back to the delinquency system.
- `played,<abandon|machine>,<attempt>,<PLAYBACKSTATUS>`: run from the `h` extension after a
  message was played to the end; adds `message_played` to the attempt's timeline (evidence of
  what residents heard), with nobody waiting on it; `message_failed` when Asterisk could not play
  it (logged as an error and counted: the sound file is missing).

Nothing here says anything about a debt to a caller: a caller ID proves nothing. The logs carry
ids and enumerations, never numbers.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

from agi.protocol import AgiHangup, Call, PromptMissing, Route
from campaigns import retry
from dialer import logs
from dialer.aio import within
from dialer.imports.phones import caller_number
from dialer.metrics import MESSAGES, Metrics
from dialer.store import attempts, inbound, retries

log = logs.get("agi")
T = TypeVar("T")

STORE_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)
_DEPARTMENT = re.compile(r"^[a-z][a-z0-9_]{1,31}$")
MENU_ROUNDS = 3
MENU_TIMEOUT_MS = 6000
RECOGNISED_FOR_S = 900.0  # from `inbound` to `ivr` on one channel: seconds, at most a long wait
RECOGNISED_AT_MOST = 10_000  # channels remembered at once (a flood forgets the oldest)


def line_digits(line: str) -> str:
    s = re.sub(r"[^0-9+]", "", line or "")
    if s.startswith("+81"):
        s = "0" + s[3:]
    return s


class Routes:
    def __init__(
        self, pool: asyncpg.Pool, store_timeout_s: float = 2.0, metrics: Metrics | None = None
    ) -> None:
        self.pool = pool
        self.store_timeout_s = store_timeout_s
        self.metrics = metrics
        # channel (agi_uniqueid) -> (department, household, when): whom `inbound` recognised
        self._recognised: dict[str, tuple[str, int, float]] = {}

    def _remember(self, call: Call, department: str, household: int) -> None:
        channel = call.headers.get("agi_uniqueid", "")
        if not channel:
            return
        now = time.monotonic()
        self._recognised.pop(channel, None)
        self._recognised[channel] = (department, household, now)
        while self._recognised:  # oldest first: drop the stale ones, and any beyond the limit
            first = next(iter(self._recognised))
            if (
                len(self._recognised) <= RECOGNISED_AT_MOST
                and now - self._recognised[first][2] < RECOGNISED_FOR_S
            ):
                break
            del self._recognised[first]

    def _recognised_on(self, call: Call, department: str, household: int) -> bool:
        seen = self._recognised.get(call.headers.get("agi_uniqueid", ""))
        return (
            seen is not None
            and seen[:2] == (department, household)
            and time.monotonic() - seen[2] < RECOGNISED_FOR_S
        )

    def table(self) -> dict[str, Route]:
        return {"inbound": self.inbound, "ivr": self.ivr, "played": self.played}

    async def _store(self, what: str, op: Callable[[], Awaitable[T]]) -> T | None:
        try:
            return await within(self.store_timeout_s, op())
        except STORE_ERRORS as exc:
            log.error("agi.store_failed", what=what, error=type(exc).__name__)
            return None

    # ---- inbound ---------------------------------------------------------------------------
    async def inbound(self, call: Call) -> None:
        line = call.args[0] if call.args else ""
        hint = call.args[1] if len(call.args) > 1 else ""
        if not line_digits(line):
            line = call.headers.get("agi_dnid", "")
        department = await self._department(hint, line_digits(line))
        if department is None:
            log.warning("agi.inbound_no_department", hint=hint if _DEPARTMENT.match(hint) else "")
            return  # DIALER_INBOUND stays unset: the dialplan's fallback
        number = caller_number(call.headers.get("agi_callerid", ""))
        households: list[int] = []
        if number is not None:
            found = await self._store(
                "caller_lookup", lambda: inbound.households_with_number(self.pool, department, number)
            )
            if found is None:
                return  # the database did not answer: the fallback, rather than a guess
            households = found
        caller = "unknown" if not households else "known" if len(households) == 1 else "several"
        await call.set_variable("DIALER_DEPARTMENT", department)
        await call.set_variable("DIALER_CALLER", caller)
        await call.set_variable("DIALER_HOUSEHOLD", str(households[0]) if len(households) == 1 else "")
        await call.set_variable("DIALER_INBOUND", "ok")
        if len(households) == 1:
            self._remember(call, department, households[0])
        log.info(
            "agi.inbound",
            department=department,
            caller=caller,
            withheld=number is None,
            household=households[0] if len(households) == 1 else None,
        )

    async def _department(self, hint: str, line: str) -> str | None:
        async def find() -> str | None:
            async with self.pool.acquire() as conn:
                if _DEPARTMENT.match(hint) and await inbound.department_exists(conn, hint):
                    return hint
                if hint:
                    log.warning("agi.inbound_unknown_department_hint")
                return await inbound.department_for_line(conn, line)

        return await self._store("department_lookup", find)

    # ---- ivr -------------------------------------------------------------------------------
    async def ivr(self, call: Call) -> None:
        department = call.args[0] if call.args else ""
        household_arg = call.args[1] if len(call.args) > 1 else ""
        if not _DEPARTMENT.match(department):
            log.error("agi.ivr_bad_department")
            return  # DIALER_CHOICE stays unset: the dialplan's fallback
        household = int(household_arg) if household_arg.isdigit() and len(household_arg) < 19 else None
        if household is not None and not self._recognised_on(call, department, household):
            log.warning("agi.ivr_household_not_recognised", department=department)
            household = None  # nothing written: `inbound` did not find them on this channel
        menu = f"custom/dialer-{department.replace('_', '-')}-menu"
        info = f"custom/dialer-{department.replace('_', '-')}-payment-info"
        heard_info, choice, silent = False, "", 0
        try:
            for _ in range(MENU_ROUNDS):
                key = await call.get_data(menu, MENU_TIMEOUT_MS, 1)
                if key == "1":
                    await call.stream_file(info)
                    heard_info, silent = True, 0
                elif key == "2":
                    choice = "operator"
                    break
                elif key is None:
                    silent += 1
                    if silent >= 2:
                        choice = "operator"  # no keys twice: a person who cannot use the menu
                        break
            else:
                choice = "operator"
        except PromptMissing as exc:
            log.error("agi.prompt_missing", route="ivr", prompt=exc.message)
            choice = "operator"  # no menu to offer: a person instead
        except AgiHangup:
            choice = "hung_up"
            raise
        finally:
            log.info("agi.ivr", department=department, choice=choice or "none", heard_info=heard_info)
            if household is not None:
                await self._record(call, department, household, heard_info, choice)
        await call.set_variable("DIALER_CHOICE", choice)

    async def _record(
        self, call: Call, department: str, household: int, heard_info: bool, choice: str
    ) -> None:
        parts = ["入電(自動応答)"]
        if heard_info:
            parts.append("納付方法の案内を聞いた")
        parts.append({"operator": "オペレーターを希望", "hung_up": "途中で切断"}.get(choice, "応答終了"))
        number = caller_number(call.headers.get("agi_callerid", "")) or ""
        content = "、".join(parts)
        await asyncio.shield(
            self._store(
                "contact_history",
                lambda: inbound.record_call_in(self.pool, department, household, number, content),
            )
        )

    # ---- played ----------------------------------------------------------------------------
    async def played(self, call: Call) -> None:
        kind = call.args[0] if call.args else ""
        attempt = call.args[1] if len(call.args) > 1 else ""
        status = call.args[2] if len(call.args) > 2 else ""
        if kind not in MESSAGES or not attempt.isdigit():
            log.warning("agi.played_bad_arguments", kind=kind[:16])
            return
        detail = {"message": kind, "status": status[:16]}
        # PLAYBACKSTATUS: SUCCESS, or FAILED (the sound file is missing or unreadable): the message
        # the law asks for was not heard, which the administrator must know at once. STARTED: the
        # resident hung up while it played (set before Playback, which then never returns).
        event = "message_failed" if status == "FAILED" else "message_played"

        async def write() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                await attempts.milestone(conn, int(attempt), event, detail)
                if kind == "abandon" and await attempts.abandoned_when_lost(conn, int(attempt)):
                    # closed as lost while the AMI link was down: not called again for 72 hours
                    await retries.reschedule(conn, int(attempt), retry.Why.ABANDONED, "abandoned")

        await self._store(event, write)
        if event == "message_failed":
            log.error("agi.message_failed", attempt=int(attempt), message=kind, status=status[:16])
            if self.metrics is not None:
                self.metrics.messages_failed.labels(kind).inc()
        else:
            log.info("agi.message_played", attempt=int(attempt), message=kind, status=status[:16])
