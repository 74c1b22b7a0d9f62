"""When a household comes back after a call: the campaign's retry policy applied to its history.

Used when a call ends without a conversation (busy, no answer, machine, dead number, …) and when
an operator's outcome leaves the household open (本人以外応答, 番号誤り, a call-back, a promise to
follow up). The timing rules are pure (`campaigns.retry`); here they meet the attempt history,
the calling window and the household's numbers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from campaigns import retry, windows
from dialer.calls.state import Outcome
from dialer.store import db, targets
from dialer.store.db import Conn, from_jsonb

_HISTORY = """
select t.id, c.calling_window, c.retry_policy,
       array_agg(h.originated_at order by h.id) as ats,
       array_agg(h.outcome order by h.id) as outcomes,
       array_agg(d.code order by h.id) as codes
from attempt a join campaign_target t on t.id = a.target_id join campaign c on c.id = t.campaign_id
join attempt h on h.target_id = t.id left join disposition d on d.attempt_id = h.id
where a.id = $1 and not exists (select 1 from attempt n where n.target_id = t.id and n.id > a.id)
group by t.id, c.calling_window, c.retry_policy
"""


def _why(outcome: str | None, code: str | None) -> retry.Why | None:
    try:
        return retry.why_of(Outcome(outcome), code) if outcome else None
    except ValueError:
        return None


async def reschedule(conn: Conn, attempt_id: int, why: retry.Why, outcome: str) -> None:
    """Bring the household back under its campaign's policy and window, unless a newer attempt has
    taken it. A dead or wrong number is stopped and the household's next number tried; with none
    left the household is finished (reason wrong_number)."""
    async with db.transaction(conn) as tx:
        row = await tx.fetchrow(_HISTORY, attempt_id)
        if row is None:
            return
        history = [
            retry.Tried(at, _why(o, code))
            for at, o, code in zip(row["ats"], row["outcomes"], row["codes"], strict=True)
        ]
        window = windows.of_campaign(from_jsonb(row["calling_window"]))
        policy = retry.of_campaign(from_jsonb(row["retry_policy"]))
        nxt = retry.after(why, history, datetime.now(UTC), window, policy)
        if nxt.next_number and not await stop_number(tx, attempt_id, why.value):
            nxt = retry.Next(done=True, reason="wrong_number")
        await targets.release(
            tx, row["id"], None, done=nxt.done, next_at=nxt.at, outcome=outcome, called=True
        )


async def stop_number(conn: Conn, attempt_id: int, reason: str) -> bool:
    """Never dial the number this attempt called again; True if its household has another one."""
    left = await conn.fetchval(
        """with stopped as (
               update phone p set stopped_at = now(), stopped_reason = $2
               from attempt a where a.id = $1 and p.id = a.phone_id and p.stopped_at is null returning p.id)
           select exists (select 1 from phone x join attempt a on a.household_id = x.household_id
                          where a.id = $1 and x.id is distinct from a.phone_id
                            and x.valid and not x.do_not_call and x.stopped_at is null)""",
        attempt_id,
        reason,
    )
    return bool(left)


async def come_back(
    conn: Conn, attempt_id: int, at: datetime, operator_id: int | None, hold: timedelta, outcome: str
) -> None:
    """A call-back or a promise follow-up: pending again at `at`, for `operator_id` first."""
    await conn.execute(
        """update campaign_target
           set state = 'pending', next_attempt_at = $2::timestamptz, last_outcome = $5, lease_owner = null,
               lease_expires_at = null, preferred_operator_id = $3::bigint,
               preferred_until = $2::timestamptz + $4::interval
           where id = (select target_id from attempt where id = $1) and state <> 'excluded'
             and not exists (select 1 from attempt n where n.target_id = campaign_target.id and n.id > $1)""",
        attempt_id,
        at,
        operator_id,
        hold,
        outcome,
    )
