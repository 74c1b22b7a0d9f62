"""日報・月報: a department's calls over a period, by day, hour, campaign or operator.

Counted from the calls themselves (attempt, its disposition) and the payments, in Tokyo time:

- calls: the calls placed (residents' own calls in, and calls cancelled before they rang, are not
  counted here); answered: a person
  answered, live (put through, abandoned, or judged a person by answering-machine detection: the
  abandon rate's denominator as the pacer and the floor count it, dialer/store/pacing.py); connected: put through to an operator; reached: an outcome that
  spoke with the resident (本人接触, as the department's outcome list says); promises, their
  amount, cases handed to staff (the cases the calls opened), abandoned calls (no operator free), talk minutes.
- promises kept (約束履行率), for the promises made in the period whose day has passed: kept when
  a payment for the household was made from the day of the promise to three days after the day
  promised (the follow-up's default grace, campaigns.retry), or the household owes nothing now.
- paid after contact (収納額): payments made on or after a contact in the period, by households
  reached then, up to today.
- letters (催告書): households listed for a reminder letter in the period (dialer/store/letters.py).

Nothing here names a resident: the rows are counts, operators are named (their supervisors and
staff see this). Figures are for the department's own calls only (row-level security).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from campaigns.hours import TOKYO
from dialer.store.db import Conn
from dialer.store.pacing import LIVE

BY = ("day", "hour", "campaign", "operator")
EARLIEST = date(2000, 1, 1)  # a period is within 2000 … next year (a year typed 9999 is a mistake)
PROMISE_GRACE = timedelta(days=3)  # as campaigns.retry's default promise follow-up

_KEY = {
    "day": "to_char(a.originated_at at time zone 'Asia/Tokyo', 'YYYY-MM-DD')",
    "hour": "to_char(a.originated_at at time zone 'Asia/Tokyo', 'HH24') || ':00'",
    "campaign": "coalesce(c.name, '')",
    "operator": "coalesce(u.display_name, '')",
}

_ROWS = """
with calls as (
    select a.*, d.code, d.promise_amount_yen, coalesce(dc.reached, false) as reached,
           coalesce(dc.needs_promise, false) as promise,
           exists (select 1 from handover ho where ho.disposition_id = d.id) as to_staff, {live} as live,
           {key} as key
    from attempt a
    left join campaign c on c.id = a.campaign_id
    left join app_user u on u.id = a.operator_id
    left join disposition d on d.attempt_id = a.id
    left join lateral (
        select x.reached, x.needs_promise from disposition_code x
        where x.code = d.code and (x.department_id = a.department_id or x.department_id is null)
        order by x.department_id nulls last limit 1
    ) dc on true
    where a.department_id = $1 and a.originated_at >= $2 and a.originated_at < $3 and a.dial_mode <> 'inbound'
      and a.outcome is distinct from 'cancelled'  -- never placed (the window closed, hung up before it rang)
)
select key,
       count(*) as calls,
       count(*) filter (where live) as answered,
       count(*) filter (where connected_at is not null) as connected,
       count(*) filter (where reached) as reached,
       count(*) filter (where promise) as promises,
       coalesce(sum(promise_amount_yen) filter (where promise), 0) as promise_yen,
       count(*) filter (where to_staff) as to_staff,
       count(*) filter (where outcome = 'abandoned') as abandoned,
       -- a lost call's end was not seen (the AMI link was down): its ended_at is when that was found
       coalesce(sum(extract(epoch from ended_at - connected_at)) filter (where connected_at is not null
                                                                        and ended_at is not null
                                                                        and outcome <> 'lost'), 0) as talk_s
from calls group by rollup (key) order by key nulls last
"""

_PROMISES = """
select count(*) as due,
       count(*) filter (where h.unpaid_yen = 0 or exists (
           select 1 from payment p where p.household_id = pr.household_id
           and p.paid_on >= (pr.created_at at time zone 'Asia/Tokyo')::date and p.paid_on <= pr.promised_on + $4::int
       )) as kept
from promise pr join household h on h.id = pr.household_id
where pr.department_id = $1 and pr.created_at >= $2 and pr.created_at < $3
  and pr.promised_on + $4::int < (now() at time zone 'Asia/Tokyo')::date
"""

_PAID_AFTER = """
with reached as (
    select a.household_id, min((a.originated_at at time zone 'Asia/Tokyo')::date) as first_contact
    from attempt a join disposition d on d.attempt_id = a.id
    join lateral (select x.reached from disposition_code x
                  where x.code = d.code and (x.department_id = a.department_id or x.department_id is null)
                  order by x.department_id nulls last limit 1) dc on dc.reached
    where a.department_id = $1 and a.originated_at >= $2 and a.originated_at < $3 and a.household_id is not null
    group by a.household_id
)
select count(distinct r.household_id) filter (where p.id is not null) as households,
       coalesce(sum(p.amount_yen), 0) as yen
from reached r left join payment p on p.household_id = r.household_id and p.paid_on >= r.first_contact
"""

# 催告書: the letters the department's lists recorded (one a household), contact_history_department_at
_LETTERS = """
select count(*) from contact_history
where department_id = $1 and at >= $2 and at < $3 and method = 'letter' and source = 'staff'
"""


@dataclass(frozen=True)
class Row:
    key: str | None  # None: the total
    calls: int
    answered: int
    connected: int
    reached: int
    promises: int
    promise_yen: int
    to_staff: int
    abandoned: int
    talk_s: float

    @property
    def reach_pct(self) -> float | None:
        """接触率: reached ÷ calls placed."""
        return 100 * self.reached / self.calls if self.calls else None

    @property
    def abandon_pct(self) -> float | None:
        """Abandoned ÷ answered by a person (the abandon rate's definition, PACING.md)."""
        return 100 * self.abandoned / self.answered if self.answered else None


@dataclass(frozen=True)
class Report:
    department_id: str
    first: date
    last: date
    by: str
    rows: list[Row]  # the total last
    promises_due: int
    promises_kept: int
    paid_households: int
    paid_yen: int
    letters: int = 0  # 催告書 sent (households listed for letters, dialer/store/letters.py)

    @property
    def kept_pct(self) -> float | None:
        return 100 * self.promises_kept / self.promises_due if self.promises_due else None


MAX_DAYS = 367


def period_problem(first: date, last: date, today: date) -> str:
    """Why a period cannot be reported on ('' when it can): the message's key."""
    if not (first >= EARLIEST and last <= date(today.year + 1, 12, 31)):
        return "rep.bad_dates"
    if last < first:
        return "rep.bad_order"
    if (last - first).days >= MAX_DAYS:
        return "rep.too_long"
    return ""


def _span(first: date, last: date) -> tuple[datetime, datetime]:
    return datetime.combine(first, time(0), TOKYO), datetime.combine(last + timedelta(days=1), time(0), TOKYO)


async def report(conn: Conn, department_id: str, first: date, last: date, by: str) -> Report:
    if by not in BY:
        raise ValueError(f"by must be one of {', '.join(BY)}")
    start, end = _span(first, last)
    rows = await conn.fetch(_ROWS.format(key=_KEY[by], live=LIVE), department_id, start, end, timeout=60)
    promised = await conn.fetchrow(_PROMISES, department_id, start, end, PROMISE_GRACE.days, timeout=60)
    paid = await conn.fetchrow(_PAID_AFTER, department_id, start, end, timeout=60)
    letters = await conn.fetchval(_LETTERS, department_id, start, end, timeout=60)
    assert promised is not None and paid is not None
    out = [
        Row(**{**dict(r), "promise_yen": int(r["promise_yen"]), "talk_s": float(r["talk_s"])}) for r in rows
    ]
    if not out:  # no call at all: the total still says so
        out = [Row(None, 0, 0, 0, 0, 0, 0, 0, 0, 0.0)]
    return Report(
        department_id,
        first,
        last,
        by,
        out,
        promised["due"],
        promised["kept"],
        paid["households"],
        int(paid["yen"]),
        letters,
    )
