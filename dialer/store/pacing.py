"""What the predictive pacer learns from a campaign's own calls, and its rolling abandon counts.

A *live* call is one a person answered: it reached an operator (counted from then on, before it
ends), was abandoned, or answering-machine detection said HUMAN or NOTSURE. Machines are never live and never abandoned. Counts are per
campaign over every mode (a campaign switched from progressive keeps its history and its budget).
"""

from __future__ import annotations

from datetime import timedelta

from campaigns.forecast import Dialed, Handled
from campaigns.pacer import Window
from dialer.store.db import Conn

RECENT_DIALED = 600  # finished calls the forecast is learnt from (as in bench/pacing/day.py)
RECENT_HANDLED = 200  # conversations (talk + wrap-up)
RECENT_WITHIN = timedelta(hours=8)  # nothing older than one calling day

LIVE = "(a.outcome = 'abandoned' or a.connected_at is not null or a.amd_status in ('HUMAN', 'NOTSURE'))"


async def history(conn: Conn, campaign_id: int) -> tuple[list[Dialed], list[Handled]]:
    """The campaign's recent calls and conversations, newest first.

    A call counts once its answer is known: when it ends unanswered, or as soon as detection has
    said person or machine. Waiting for answered calls to *end* would leave out exactly the
    conversations (the longest calls) early in a campaign, and the pacer would take people for rare
    and dial far too many lines; it is what happened before (bench/engine.py: 7.9 % abandoned).
    """
    dialed = await conn.fetch(
        f"""
        select extract(epoch from coalesce(a.answered_at, a.ended_at) - a.originated_at) as ring_s,
               a.answered_at is not null as answered,
               a.answered_at is not null and {LIVE} as live,
               coalesce(extract(epoch from (select min(e.at) from attempt_event e
                                            where e.attempt_id = a.id and e.kind = 'amd') - a.answered_at),
                        0) as detect_s
        from attempt a
        where a.campaign_id = $1 and a.originated_at > now() - $2::interval
          and (a.ended_at is not null or a.amd_status is not null)
          and coalesce(a.outcome, '') not in ('cancelled', 'failed', 'lost')
        order by a.originated_at desc limit $3
        """,
        campaign_id,
        RECENT_WITHIN,
        RECENT_DIALED,
    )
    handled = await conn.fetch(
        """
        select extract(epoch from a.ended_at - a.connected_at) as talk_s,
               greatest(0, extract(epoch from d.created_at - a.ended_at)) as wrap_s
        from attempt a join disposition d on d.attempt_id = a.id
        where a.campaign_id = $1 and a.connected_at is not null and a.ended_at is not null
          and a.outcome <> 'lost'  -- its end was not seen: ended_at is when the link came back
          and a.originated_at > now() - $2::interval
        order by a.originated_at desc limit $3
        """,
        campaign_id,
        RECENT_WITHIN,
        RECENT_HANDLED,
    )
    return (
        [
            Dialed(
                ring_s=max(0.0, float(r["ring_s"])),
                answered=r["answered"],
                live=r["live"],
                detect_s=max(0.0, float(r["detect_s"])),
            )
            for r in reversed(dialed)  # oldest first, as Model.learn reads them
        ],
        [Handled(talk_s=max(0.0, float(r["talk_s"])), wrap_s=float(r["wrap_s"])) for r in handled],
    )


async def rolling(conn: Conn, campaign_id: int) -> tuple[Window, Window]:
    """Live answered and abandoned calls in the last hour and the last 24 hours."""
    row = await conn.fetchrow(
        f"""
        select count(*) filter (where {LIVE} and a.answered_at > now() - interval '1 hour') as hour_live,
               count(*) filter (where a.outcome = 'abandoned' and a.answered_at > now() - interval '1 hour')
                   as hour_abandoned,
               count(*) filter (where {LIVE}) as day_live,
               count(*) filter (where a.outcome = 'abandoned') as day_abandoned
        from attempt a
        where a.campaign_id = $1 and a.originated_at > now() - interval '25 hours'
          and a.answered_at > now() - interval '24 hours'
        """,
        campaign_id,
    )
    assert row is not None
    return (
        Window(live=row["hour_live"], abandoned=row["hour_abandoned"]),
        Window(live=row["day_live"], abandoned=row["day_abandoned"]),
    )
