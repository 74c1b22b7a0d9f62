"""Which households a campaign calls: segment rules, as data, compiled to one SQL query. Pure.

A segment is written by a supervisor (TOML or JSON, `dialer campaign set ID --segment FILE`):

    debt_types = ["nhi"]              # 税目/保険料 codes; left out: every type
    years = "carried_over"            # "current_only" (現年度分のみ), "carried_over" (滞納繰越あり), "any"
    unpaid_min_yen = 1                # 未納額 band, summed over the debts in scope: min ≤ x < max
    unpaid_max_yen = 100000
    overdue_months = 2                # the oldest unpaid 納期限 at least this many months ago
    not_contacted_days = 14           # nobody reached (call or 経過記録) in the last N days
    promise_broken = true             # only (true) or never (false) households with a broken 納付約束
    installment_broken = true         # the same for a 分納 with an instalment overdue
    classes = ["A"]                   # only these 滞納区分 (from the export)
    exclude_classes = ["執行停止"]     # never these
    order = "unpaid"                  # who first: "unpaid" (largest), "oldest" (oldest 納期限), "none"

Whatever a segment says, these households are never in it: no dialable number (do-not-call,
invalid), nothing owed, deceased or moved-out head of household (死亡日, 区民でなくなった日), an
instalment plan being kept, and debts past their limitation period (時効: 保険料 2 years, taxes 5
years from the 納期限; `limitation_years = {nhi = 2}` and `default_limitation_years = 5` change it).

現年度 and 滞納繰越 follow municipal accounts: a fiscal year runs April–March and its unpaid amounts
stay 現年度分 through the closing period to May 31, becoming 滞納繰越分 on June 1.

`query(segment, department, today)` returns the SQL and its parameters: the matching households,
with the rank the campaign's order gives them. The only place rules meet SQL is here.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import date
from enum import StrEnum
from typing import Any

DEFAULT_LIMITATION_YEARS = 5  # 地方税法 18 条 (taxes)
LIMITATION_YEARS = {"nhi": 2}  # 国民健康保険法 110 条 (premiums)
MAX_YEN = 10**12
# Rules counted in months or days go back at most this far (50 and 100 years): anything longer
# selects nobody, and dates computed from it would leave the calendar.
# Last contact (最終接触), in a segment and on the operator's record alike: a 経過記録 entry `ch` of
# these methods (a letter is not a contact) written by the delinquency system or an integrator, or
# imported from its 経過記録 and reaching the resident (sql/0038), or by an outcome that reached the
# resident (本人: not 番号誤り, 無言 or 本人以外応答 on a call that was put through), never by the
# incoming-call menu (sql/0024); or a call `a` put through to an operator whose outcome is not
# recorded (yet).
CONTACT_METHODS = "('phone_out', 'phone_in', 'visit', 'counter')"
CONTACT_ENTRY = (
    f"ch.method in {CONTACT_METHODS} and (ch.source = 'external' or (ch.source = 'imported' and ch.reached)"
    " or (ch.source in ('outcome', 'staff') and ch.party = '本人'))"
)
CONTACT_CALL = (
    "a.connected_at is not null and not exists (select 1 from disposition d where d.attempt_id = a.id)"
)
AT_MOST = {"overdue_months": 600, "not_contacted_days": 36500}


class SegmentError(ValueError):
    """A segment rule that cannot be read; `key` names it."""

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class Years(StrEnum):
    ANY = "any"
    CURRENT_ONLY = "current_only"  # 現年度分のみ滞納
    CARRIED_OVER = "carried_over"  # 滞納繰越分がある


class Order(StrEnum):
    UNPAID = "unpaid"  # the largest arrears first
    OLDEST = "oldest"  # the oldest unpaid due date first
    NONE = "none"  # household number order


@dataclass(frozen=True)
class Segment:
    debt_types: tuple[str, ...] = ()
    years: Years = Years.ANY
    unpaid_min_yen: int = 1
    unpaid_max_yen: int | None = None
    overdue_months: int = 0
    not_contacted_days: int = 0
    promise_broken: bool | None = None
    installment_broken: bool | None = None
    classes: tuple[str, ...] = ()
    exclude_classes: tuple[str, ...] = ()
    order: Order = Order.UNPAID
    limitation_years: Mapping[str, int] = field(default_factory=lambda: dict(LIMITATION_YEARS))
    default_limitation_years: int = DEFAULT_LIMITATION_YEARS

    def __post_init__(self) -> None:
        if self.unpaid_min_yen < 1:
            raise SegmentError(
                "unpaid_min_yen must be at least 1 (nobody is called who owes nothing)", "unpaid_min_yen"
            )
        if self.unpaid_max_yen is not None and self.unpaid_max_yen <= self.unpaid_min_yen:
            raise SegmentError("unpaid_max_yen must be more than unpaid_min_yen", "unpaid_max_yen")
        for key in ("overdue_months", "not_contacted_days"):
            if getattr(self, key) < 0:
                raise SegmentError(f"{key} cannot be negative", key)
        for debt_type, years in self.limitation_years.items():
            if not 1 <= years <= 20:
                raise SegmentError(f"limitation_years.{debt_type} must be 1–20 years", "limitation_years")
        if not 1 <= self.default_limitation_years <= 20:
            raise SegmentError("default_limitation_years must be 1–20 years", "default_limitation_years")


DEFAULT = Segment()

_INTS = (
    "unpaid_min_yen",
    "unpaid_max_yen",
    "overdue_months",
    "not_contacted_days",
    "default_limitation_years",
)
_BOOLS = ("promise_broken", "installment_broken")
_LISTS = ("debt_types", "classes", "exclude_classes")
_OPTIONAL = ("unpaid_max_yen", "promise_broken", "installment_broken")


def parse(data: Mapping[str, Any] | None) -> Segment:
    """A segment from its file's table; keys left out keep the default (everyone who owes)."""
    if not data:
        return DEFAULT
    known = {f.name for f in fields(Segment)}
    changes: dict[str, Any] = {}
    for key, value in data.items():
        if key not in known:
            raise SegmentError(f"unknown segment rule {key!r} (known: {', '.join(sorted(known))})", key)
        if value is None and key in _OPTIONAL:
            pass  # JSON null: no such rule
        elif key in _INTS:
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_YEN:
                raise SegmentError(f"{key} must be a whole number", key)
            if key in AT_MOST and value > AT_MOST[key]:
                raise SegmentError(f"{key} must be at most {AT_MOST[key]}", key)
        elif key in _BOOLS:
            if not isinstance(value, bool):
                raise SegmentError(f"{key} must be true or false", key)
        elif key in _LISTS:
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(v, str) and _code(v) for v in value):
                raise SegmentError(f"{key} must be a list of codes", key)
            value = tuple(v.strip() for v in value)
        elif key == "years":
            value = _enum(Years, value, key)
        elif key == "order":
            value = _enum(Order, value, key)
        elif key == "limitation_years":
            if not isinstance(value, Mapping) or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in value.values()
            ):
                raise SegmentError("limitation_years must map debt types to years, e.g. {nhi = 2}", key)
            value = {**LIMITATION_YEARS, **value}
        changes[key] = value
    return replace(DEFAULT, **changes)


def plan_kept(plan: str, today: str) -> str:
    """SQL: the installment plan `plan` (an alias) is being kept: active, and nothing past its day
    unpaid (`today`: an SQL date expression) that payments since the plans file do not cover.

    The file says what was paid of each instalment up to its 抽出日 (`reported_as_of`); a payment
    imported since, dated after that day, towards the arrears the plan was agreed for (the plan's
    person's debts due before it was agreed: not this year's tax paid by 口座振替, nor another member
    of the household's payment for another plan) counts against what is overdue —
    the resident who paid last week's missed instalment this morning is not called about it. The
    next plans file says which instalment it was. (Payments dated on or before the 抽出日 are in the
    file's figures already, as for debts: dialer/store/payments.py.)"""
    return f"""({plan}.status = 'active' and (
                   select coalesce(sum(du.amount_yen - du.paid_yen), 0) from installment_due du
                   where du.plan_id = {plan}.id and du.due_date < {today} and du.paid_yen < du.amount_yen
               ) <= (
                   select coalesce(sum(pay.amount_yen), 0) from payment pay join debt pd on pd.id = pay.debt_id
                   where pay.household_id = {plan}.household_id and pd.due_date < {plan}.agreed_on
                     and pd.person_id is not distinct from coalesce({plan}.person_id, pd.person_id)
                     and pay.paid_on > coalesce({plan}.reported_as_of, {plan}.agreed_on)))"""


def plan_broken(household: str, today: str) -> str:
    """SQL: the household (an id expression) has a broken plan: 不履行, or active with an instalment overdue."""
    return f"""exists (select 1 from installment_plan bp where bp.household_id = {household}
                       and (bp.status = 'broken' or (bp.status = 'active' and not {plan_kept("bp", today)})))"""


def plans_keep_out(household: str, today: str) -> str:
    """SQL: the household is never called: a plan of it is being kept, and none is broken (the
    segment rules, and the plans import that takes such a household out of its campaigns)."""
    kept = f"exists (select 1 from installment_plan kp where kp.household_id = {household} and {plan_kept('kp', today)})"
    return f"({kept} and not {plan_broken(household, today)})"


def _code(text: str) -> bool:
    """A code as the data has it: not blank, no control characters (PostgreSQL text holds no NUL)."""
    return bool(text.strip()) and not any(unicodedata.category(ch)[0] == "C" for ch in text)


def _enum(kind: type[Years] | type[Order], value: Any, key: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        choices = ", ".join(repr(m.value) for m in kind)
        raise SegmentError(f"{key} must be one of {choices}, got {value!r}", key) from None


def to_dict(segment: Segment) -> dict[str, Any]:
    """Every rule with its value (the defaults filled in), as `dialer campaign show` prints it."""
    out: dict[str, Any] = {}
    for f in fields(Segment):
        value = getattr(segment, f.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, StrEnum):
            value = value.value
        elif isinstance(value, Mapping):
            value = dict(value)
        out[f.name] = value
    return out


def accounting_year(today: date) -> int:
    """The oldest fiscal year still 現年度 on `today` (the closing period runs to May 31)."""
    return today.year - 1 if today.month < 6 else today.year


def _months_before(today: date, months: int) -> date:
    y, m = divmod(today.year * 12 + today.month - 1 - months, 12)
    m += 1
    for day in (today.day, 30, 29, 28):  # 31 March − 1 month = 28/29 February
        try:
            return date(y, m, day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


@dataclass(frozen=True)
class Query:
    sql: str
    params: tuple[Any, ...]


class _Params:
    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any, cast: str) -> str:
        self.values.append(value)
        return f"${len(self.values)}::{cast}"


def query(
    segment: Segment, department_id: str, today: date, promise_grace_days: int = 3, phone: bool = True
) -> Query:
    """The households of a department that the segment selects on `today`, with their rank.

    `phone=False`: whether or not they have a number that may be dialled (the reminder letters of
    households a campaign cannot reach by phone, dialer/store/letters.py).

    A 納付約束 is broken once `promise_grace_days` have passed after its day with the debt unpaid:
    the campaign's own follow-up of it waits as long (retry.Policy.promise_grace), so a payment
    still on its way is not called about as broken by one rule and awaited by the other.

    Columns: household_id, unpaid_yen (the arrears in scope), oldest_due (date), rank (1 = first).
    """
    p = _Params()
    dept = p(department_id, "text")
    limits = p(json.dumps(dict(segment.limitation_years)), "jsonb")
    default_limit = p(segment.default_limitation_years, "int")
    today_p = p(today, "date")
    in_scope = [
        "d.household_id = h.id",
        "d.unpaid_yen > 0",
        f"d.due_date > {today_p} - make_interval(years => coalesce(({limits} ->> d.debt_type)::int, {default_limit}))",
    ]
    if segment.debt_types:
        in_scope.append(f"d.debt_type = any({p(list(segment.debt_types), 'text[]')})")
    rules = ["h.department_id = " + dept, *(["h.dialable"] if phone else []), "e.unpaid is not null"]
    rules.append(f"e.unpaid >= {p(segment.unpaid_min_yen, 'bigint')}")
    if segment.unpaid_max_yen is not None:
        rules.append(f"e.unpaid < {p(segment.unpaid_max_yen, 'bigint')}")
    if segment.years is Years.CURRENT_ONLY:
        rules.append(f"e.oldest_year >= {p(accounting_year(today), 'int')}")
    elif segment.years is Years.CARRIED_OVER:
        rules.append(f"e.oldest_year < {p(accounting_year(today), 'int')}")
    if segment.overdue_months:
        rules.append(f"e.oldest_due <= {p(_months_before(today, segment.overdue_months), 'date')}")
    if segment.classes:
        rules.append(f"e.classes && {p(list(segment.classes), 'text[]')}")
    if segment.exclude_classes:
        rules.append(f"not (e.classes && {p(list(segment.exclude_classes), 'text[]')})")
    # The head of household: deceased or moved out → nobody to call about this household.
    rules.append(
        f"""not exists (select 1 from person x where x.household_id = h.id and x.is_head
                         and (x.death_date is not null or x.resident_until <= {today_p}))"""
    )
    broken_plan = plan_broken("h.id", today_p)
    rules.append(f"not {plans_keep_out('h.id', today_p)}")
    if segment.installment_broken is not None:
        rules.append(broken_plan if segment.installment_broken else f"not {broken_plan}")
    if segment.promise_broken is not None:
        broken_promise = f"""exists (select 1 from promise pr where pr.household_id = h.id
                              and (pr.status = 'broken' or (pr.status = 'open'
                                   and pr.promised_on < {today_p} - {p(promise_grace_days, "int")})))"""
        rules.append(broken_promise if segment.promise_broken else f"not {broken_promise}")
    if segment.not_contacted_days:
        since = p(segment.not_contacted_days, "int")
        rules.append(
            f"""not exists (select 1 from contact_history ch where ch.household_id = h.id
                             and {CONTACT_ENTRY}
                             and ch.at > now() - make_interval(days => {since}))
                and not exists (select 1 from attempt a where a.household_id = h.id and {CONTACT_CALL}
                                and a.connected_at > now() - make_interval(days => {since}))"""
        )
    order = {
        Order.UNPAID: "e.unpaid desc, h.id",
        Order.OLDEST: "e.oldest_due, h.id",
        Order.NONE: "h.household_no, h.id",
    }[segment.order]
    where = "\n  and ".join(rules)
    sql = f"""
select h.id as household_id, e.unpaid as unpaid_yen, e.oldest_due, row_number() over (order by {order}) as rank
from household h
cross join lateral (
  select sum(d.unpaid_yen) as unpaid, min(d.due_date) as oldest_due, min(d.fiscal_year) as oldest_year,
         array_agg(distinct d.delinquency_class) as classes
  from debt d
  where {" and ".join(in_scope)}
) e
where {where}"""
    return Query(sql=sql, params=tuple(p.values))
