"""Storing an operator's disposition: once, even when the page sends it again after a failure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from campaigns import retry, windows
from campaigns.dispositions import Code, DispositionInput
from dialer.calls.state import Outcome
from dialer.errors import DialerError
from dialer.store import db, retries
from dialer.store.db import Conn, Connection, from_jsonb
from dialer.store.users import User

# Outcomes that mean someone answered, even if the "answered" stamp could not be written (a machine
# too: its greeting may show the number is wrong, but no outcome that needs a person is taken for it).
ANSWERED_OUTCOMES = ("connected", "dropped", "abandoned", "machine")


class DispositionRejected(DialerError):
    error_id = "disposition_rejected"

    def __init__(self, key: str, status: int = 409) -> None:
        super().__init__(key)
        self.key, self.status = key, status


@dataclass(frozen=True)
class Saved:
    created: bool  # False: this token was stored before (a resend)
    attempt_id: int
    campaign_id: int | None  # None: an inbound call
    code: str


async def codes(conn: Conn, department_id: str | None) -> dict[str, Code]:
    """The active codes for a department: its own, then the shared ones it does not override."""
    rows = await conn.fetch(
        """select distinct on (code) code, label_ja, label_en, reached, needs_promise, needs_callback,
                  closes_target, to_staff, sort, active
           from disposition_code where department_id = $1 or department_id is null
           order by code, department_id nulls last""",
        department_id,
    )
    ordered = sorted((r for r in rows if r["active"]), key=lambda r: (r["sort"], r["code"]))
    return {
        r["code"]: Code(
            code=r["code"],
            label_ja=r["label_ja"],
            label_en=r["label_en"],
            reached=r["reached"],
            needs_promise=r["needs_promise"],
            needs_callback=r["needs_callback"],
            closes_target=r["closes_target"],
            to_staff=r["to_staff"],
        )
        for r in ordered
    }


async def calling_window(conn: Conn, attempt_id: int) -> windows.CallingWindow | None:
    """The calling window of the call's campaign (None: no such call visible to this connection)."""
    if attempt_id <= 0:
        return None
    row = await conn.fetchrow(
        "select c.calling_window from attempt a join campaign c on c.id = a.campaign_id where a.id = $1",
        attempt_id,
    )
    return None if row is None else windows.of_campaign(from_jsonb(row["calling_window"]))  # null: default


async def settle(conn: Conn, attempt_id: int) -> bool:
    """Apply a stored disposition to its household once the call has ended; False if not yet.

    Never while the call is up (the lease must hold until the line is free), and never over a
    newer attempt on the same household (a late resend must not undo what came after).
    Called when the disposition is stored and when the call ends; doing it twice is harmless.

    - a call-back asked for: pending at that time, for the same operator first;
    - a promise to pay: checked on after the promised day (plus the policy's grace) unless paid
      by then (a household that pays leaves every campaign), for the same operator first;
    - another outcome that closes the household: done;
    - one that leaves it open: the campaign's retry policy (本人以外応答 later at another time of
      day; 番号誤り: that number is stopped and the next one tried), else the next day.
    """
    row = await conn.fetchrow(
        """select a.target_id, a.ended_at, a.department_id, a.outcome, d.code, d.callback_at, d.promise_date,
                  d.operator_id, c.calling_window, c.retry_policy
           from attempt a join disposition d on d.attempt_id = a.id join campaign c on c.id = a.campaign_id
           where a.id = $1""",
        attempt_id,
    )
    if row is None or row["ended_at"] is None:
        return False
    code = (await codes(conn, row["department_id"])).get(row["code"])
    closes = code.closes_target if code is not None else True  # a code disabled since: finished
    policy = retry.of_campaign(from_jsonb(row["retry_policy"]))
    follow_at = None
    if row["callback_at"] is not None:
        follow_at = row["callback_at"]
    elif closes and code is not None and code.needs_promise and row["promise_date"] is not None:
        follow_at = retry.follow_up(
            row["promise_date"], windows.of_campaign(from_jsonb(row["calling_window"])), policy
        )
    if follow_at is not None:
        await retries.come_back(
            conn, attempt_id, follow_at, row["operator_id"], policy.same_operator_for, row["code"]
        )
        return True
    why = None if closes else retry.why_of(Outcome(row["outcome"] or "connected"), row["code"])
    if why is not None:
        await retries.reschedule(conn, attempt_id, why, row["code"])
        return True
    await conn.execute(
        """update campaign_target
           set state = case when $2 then 'done' else 'pending' end,
               next_attempt_at = now() + interval '1 day',
               last_outcome = $3, lease_owner = null, lease_expires_at = null
           where id = $1 and state <> 'excluded'
             and not exists (select 1 from attempt n where n.target_id = $1 and n.id > $4)""",
        row["target_id"],
        closes,
        row["code"],
        attempt_id,
    )
    return True


async def settle_or_retry(conn: Conn, attempt_id: int, outcome: str) -> None:
    """A call ended without a conversation: an outcome the operator already saved for it (e.g. 番号誤り
    typed while it rang) decides; otherwise the retry policy for how the call ended."""
    if await settle(conn, attempt_id):
        return
    # as stored: a call the engine closed as lost may have heard the abandon message (attempts.finish)
    outcome = await conn.fetchval("select outcome from attempt where id = $1", attempt_id) or outcome
    # reached someone, yet no disposition is coming: treated as a line that dropped
    why = retry.why_of(Outcome(outcome)) or retry.Why.DROPPED
    await retries.reschedule(conn, attempt_id, why, outcome)


async def recorded(conn: Conn, attempt_id: int) -> bool:
    """An outcome is stored for the call (however it came: before a restart, through another dialer)."""
    return bool(
        await conn.fetchval("select exists (select 1 from disposition where attempt_id = $1)", attempt_id)
    )


async def save(
    pool: asyncpg.Pool, user: User, inp: DispositionInput, code: Code, remote_addr: str = ""
) -> Saved:
    async with db.department(pool, user.department_id) as conn:  # RLS: the operator's department only
        attempt = await conn.fetchrow(
            """select id, campaign_id, target_id, department_id, operator_id, answered_at, connected_at, outcome,
                      household_id, amd_status
               from attempt where id = $1 for update""",
            inp.attempt_id,
        )
        if attempt is None or attempt["department_id"] != user.department_id:
            raise DispositionRejected("error.attempt", 404)
        if attempt["operator_id"] != user.id:
            raise DispositionRejected("error.not_your_call", 403)
        existing = await conn.fetchrow(
            "select client_token from disposition where attempt_id = $1", inp.attempt_id
        )
        if existing is not None:
            if existing["client_token"] == inp.token:
                return Saved(False, inp.attempt_id, attempt["campaign_id"], inp.code)
            raise DispositionRejected("error.already_recorded")
        if attempt["answered_at"] is None and attempt["outcome"] not in ANSWERED_OUTCOMES:
            raise DispositionRejected("error.not_answered")
        machine = attempt["amd_status"] == "MACHINE" or attempt["outcome"] == "machine"
        if machine and code.needs_a_person:  # nobody spoke: only 番号誤り, 無言・通話不成立 …
            raise DispositionRejected("error.machine_answered")
        spoke = attempt["connected_at"] is not None or attempt["outcome"] in ("connected", "dropped")
        if code.needs_a_person and not spoke:  # answered, still in answering-machine detection:
            raise DispositionRejected("error.not_put_through")  # a person, or a machine? Not known yet
        if attempt["target_id"] is None and code.needs_callback:  # inbound: no campaign would call back
            raise DispositionRejected("error.inbound_callback", 422)
        if attempt["household_id"] is None and (code.needs_promise or code.to_staff):
            # a promise nobody could follow up, a case staff could not find: the page looks the
            # household up first
            raise DispositionRejected("error.no_household", 422)
        disposition_id = await conn.fetchval(
            """insert into disposition (attempt_id, client_token, operator_id, department_id, code, note,
                                        promise_date, promise_amount_yen, callback_at)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9) returning id""",
            inp.attempt_id,
            inp.token,
            user.id,
            user.department_id,
            inp.code,
            inp.note,
            inp.promise_date,
            inp.promise_amount_yen,
            inp.callback_at,
        )
        await _record_contact(conn, disposition_id, attempt["household_id"], user, inp, code)
        if code.to_staff:  # a case on the staff's list
            await conn.execute(
                """insert into handover (department_id, household_id, disposition_id, operator_id, reason)
                   values ($1, $2, $3, $4, $5)""",
                user.department_id, attempt["household_id"], disposition_id, user.id, inp.code,
            )  # fmt: skip
        await settle(conn, inp.attempt_id)  # at once if the call has ended, else when it ends
        await conn.execute(
            """insert into audit_log (user_id, department_id, action, object_type, object_id, detail, remote_addr)
               values ($1, $2, 'disposition.save', 'attempt', $3, jsonb_build_object('code', $4::text), $5)""",
            user.id,
            user.department_id,
            str(inp.attempt_id),
            inp.code,
            remote_addr,
        )
    return Saved(True, inp.attempt_id, attempt["campaign_id"], inp.code)


async def _record_contact(
    conn: Connection,
    disposition_id: int,
    household_id: int | None,
    user: User,
    inp: DispositionInput,
    code: Code,
) -> None:
    """The call in the contact history (経過記録) that goes back to the delinquency system, and the promise.
    An inbound call from a caller matched to no household has neither: its note stays on the call."""
    party = "本人" if code.reached else ("本人以外" if code.code == "other_party" else "")
    content = code.label_ja + (f": {inp.note}" if inp.note else "")
    await conn.execute(
        """insert into contact_history (department_id, household_id, at, method, place, party, content,
                                        disposition_id, recorded_by, source)
           select a.department_id, a.household_id, coalesce(a.answered_at, a.originated_at),
                  case when a.dial_mode = 'inbound' then 'phone_in' else 'phone_out' end,
                  coalesce(a.dialed_number, a.caller_number, ''), $3, $4, $2, $5, 'outcome'
           from attempt a where a.id = $1 and a.household_id is not null""",
        inp.attempt_id,
        disposition_id,
        party,
        content,
        user.id,
    )
    if household_id is not None and inp.promise_date is not None and inp.promise_amount_yen is not None:
        await conn.execute(
            """insert into promise (department_id, household_id, disposition_id, operator_id, promised_on, amount_yen)
               values ($1, $2, $3, $4, $5, $6)""",
            user.department_id,
            household_id,
            disposition_id,
            user.id,
            inp.promise_date,
            inp.promise_amount_yen,
        )


class CodeError(DialerError):
    error_id = "disposition_code_invalid"
    exit_code = 2


def code_fields(code: Code, sort: int) -> dict[str, Any]:
    """A code as the audit log keeps it."""
    return {
        "label_ja": code.label_ja, "label_en": code.label_en, "reached": code.reached,
        "needs_promise": code.needs_promise, "needs_callback": code.needs_callback,
        "closes_target": code.closes_target, "to_staff": code.to_staff, "sort": sort,
    }  # fmt: skip


async def code_row(conn: Conn, department_id: str | None, code: str) -> dict[str, Any] | None:
    """The code as stored for this department (None: the shared one), or None."""
    row = await conn.fetchrow(
        """select label_ja, label_en, reached, needs_promise, needs_callback, closes_target, to_staff, sort, active
           from disposition_code where coalesce(department_id, '') = coalesce($1, '') and code = $2""",
        department_id,
        code,
    )
    return dict(row) if row is not None else None


async def add_code(conn: Conn, department_id: str | None, code: Code, sort: int = 100) -> None:
    """Add a code (department_id None: shared by every department), or replace a department's own."""
    try:
        await conn.execute(
            """insert into disposition_code (department_id, code, label_ja, label_en, reached, needs_promise,
                                             needs_callback, closes_target, sort, to_staff)
               values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
               on conflict (coalesce(department_id, ''), code) do update set
                   label_ja = excluded.label_ja, label_en = excluded.label_en, reached = excluded.reached,
                   needs_promise = excluded.needs_promise, needs_callback = excluded.needs_callback,
                   closes_target = excluded.closes_target, sort = excluded.sort, to_staff = excluded.to_staff,
                   active = true""",
            department_id,
            code.code,
            code.label_ja,
            code.label_en,
            code.reached,
            code.needs_promise,
            code.needs_callback,
            code.closes_target,
            sort,
            code.to_staff,
        )
    except asyncpg.CheckViolationError:
        raise CodeError(
            f"a code is 2-41 lower-case letters, digits or _, starting with a letter: {code.code!r}"
        ) from None
    except asyncpg.ForeignKeyViolationError:
        raise CodeError(f"no department {department_id!r}") from None


async def disable_code(conn: Conn, department_id: str | None, code: str) -> None:
    """Stop offering a code (for one department: a shared code is overridden for it only)."""
    current = await codes(conn, department_id)
    if code not in current:
        raise CodeError(
            f"no active code {code!r}" + (f" for department {department_id}" if department_id else "")
        )
    c = current[code]
    await add_code(conn, department_id, c)
    await conn.execute(
        "update disposition_code set active = false where coalesce(department_id, '') = coalesce($1, '') and code = $2",
        department_id,
        code,
    )
