-- 0004: the delinquency data as the municipal systems export it: persons, phones, debts with
-- their periods, payments, installment plans, promises, contact history (経過記録), and the
-- record of every import with the problems it found.

-- The encoding files go back to the department's systems in (exports).
alter table department
    add column export_encoding text not null default 'cp932' check (export_encoding in ('cp932', 'utf-8', 'utf-8-sig'));

-- Every file imported: who, what, when, and what it did.
create table import_run (
    id             bigint generated always as identity primary key,
    department_id  text not null references department (id),
    kind           text not null check (kind in ('households', 'payments')),
    file_name      text not null,
    file_sha256    text not null,
    file_bytes     bigint not null,
    encoding       text not null default '',
    mapping        text not null,
    as_of          date,                          -- the export's 抽出日: payments up to it are in its 収納額
    user_id        bigint references app_user (id),
    status         text not null default 'running' check (status in ('running', 'done', 'failed')),
    started_at     timestamptz not null default now(),
    finished_at    timestamptz,
    rows_read      integer not null default 0,
    rows_stored    integer not null default 0,
    rows_rejected  integer not null default 0,
    rows_warned    integer not null default 0,
    counts         jsonb not null default '{}',   -- inserted/updated/unchanged per table
    message        text not null default ''
);
create index import_run_department on import_run (department_id, started_at desc);

-- What an import found wrong, row by row: the downloadable error report.
create table import_problem (
    import_id   bigint not null references import_run (id) on delete cascade,
    line        integer not null,
    column_name text not null default '',
    severity    text not null check (severity in ('error', 'warning')),
    message     text not null,
    value       text not null default ''
);
create index import_problem_run on import_problem (import_id, line);

-- Room on each page so the summary columns update in place (HOT) without touching the indexes.
alter table household set (fillfactor = 80);
alter table household
    add column unpaid_yen      bigint not null default 0,   -- summary of its debts: 未納額 (without 延滞金)
    add column oldest_due_date date,                        -- earliest 納期限 still unpaid
    add column dialable        boolean not null default false, -- has a valid number not marked do-not-call
    add column import_id       bigint;  -- the import that last wrote the row (informational, no FK: bulk speed)

alter table person
    add column sex            text check (sex in ('male', 'female', 'other')),
    add column relationship   text not null default '',   -- 続柄
    add column death_date     date,                        -- 死亡日
    add column resident_from  date,                        -- 区民となった日
    add column resident_until date,                        -- 区民でなくなった日
    add column nationality    text not null default '',
    add column import_id      bigint,
    add column updated_at     timestamptz not null default now();

-- A resident row's household and department are checked together, by one composite key
-- (cheaper for bulk imports than two checks, and it also proves they agree).
alter table person drop constraint person_household_id_fkey, drop constraint person_department_id_fkey,
    add constraint person_household_department foreign key (household_id, department_id)
        references household (id, department_id) on delete cascade;
alter table phone drop constraint phone_household_id_fkey, drop constraint phone_department_id_fkey,
    add constraint phone_household_department foreign key (household_id, department_id)
        references household (id, department_id) on delete cascade;
alter table debt drop constraint debt_household_id_fkey, drop constraint debt_department_id_fkey,
    add constraint debt_household_department foreign key (household_id, department_id)
        references household (id, department_id) on delete cascade;

-- 納税管理人・相続人, 勤務先, 法人: people and bodies related to a person. Never shown to operators.
create table related_party (
    id            bigint generated always as identity primary key,
    person_id     bigint not null references person (id) on delete cascade,
    department_id text not null references department (id),
    kind          text not null check (kind in ('tax_agent', 'heir', 'workplace', 'corporation', 'other')),
    name          text not null default '',
    address       text not null default '',
    phone         text not null default '',
    note          text not null default ''
);
create index related_party_person on related_party (person_id);

-- Phones: invalid numbers are kept (with the text as received and the reason), never dialled.
alter table phone drop constraint phone_number_check;
alter table phone
    add column raw        text not null default '',
    add column invalid_reason text,
    add column import_id  bigint,
    add column updated_at timestamptz not null default now(),
    add constraint phone_dialable_format check (not valid or number ~ '^0[0-9]{9,10}$'),
    add column key text generated always as (case when number <> '' then number else 'raw:' || raw end) stored;
create unique index phone_household_key on phone (household_id, key);

-- Debts: one row per 税目/保険料 × 年度 × 相当年度 × 期別 of a person. source_key is that identity
-- as the import builds it (宛名番号|税目|年度|相当年度|期別), so a newer export updates in place.
alter table debt
    add column source_key        text not null default ('manual:' || gen_random_uuid()),
    add column assessed_year     integer check (assessed_year between 1989 and 2200),  -- 相当年度
    add column notice_no         text not null default '',                             -- 通知書番号
    add column reported_paid_yen bigint not null default 0 check (reported_paid_yen >= 0), -- 収納額 in the export
    add column reported_as_of    date,                                                 -- the export's 抽出日
    add column last_paid_on      date,                                                 -- 最終納付日
    add column account_transfer  boolean not null default false,                       -- 口座振替
    add column delinquency_class text not null default '',                             -- 滞納区分
    add column import_id         bigint,
    add column updated_at        timestamptz not null default now(),
    add column unpaid_yen        bigint generated always as (greatest(assessed_yen - paid_yen, 0)) stored;
update debt set reported_paid_yen = paid_yen;
alter table debt add constraint debt_source_key unique (department_id, source_key);

-- Payments (収納) from the payments import. paid_yen of a debt = the export's 収納額 plus the
-- payments dated after the export's 抽出日 (earlier ones are already in that 収納額).
create table payment (
    id            bigint generated always as identity primary key,
    department_id text not null references department (id),
    debt_id       bigint not null references debt (id) on delete cascade,
    household_id  bigint not null references household (id) on delete cascade,
    receipt_key   text not null,     -- 収納番号, or the payment's own identity when the file has none
    paid_on       date not null,
    amount_yen    bigint not null check (amount_yen > 0),
    channel       text not null default '',
    import_id     bigint,
    created_at    timestamptz not null default now(),
    unique (department_id, receipt_key)
);
create index payment_debt on payment (debt_id, paid_on);

-- 分納: an installment plan agreed with staff, and its schedule.
create table installment_plan (
    id            bigint generated always as identity primary key,
    department_id text not null references department (id),
    household_id  bigint not null references household (id) on delete cascade,
    person_id     bigint references person (id) on delete set null,
    status        text not null default 'active' check (status in ('active', 'kept', 'broken', 'completed', 'cancelled')),
    agreed_on     date not null,
    total_yen     bigint not null check (total_yen > 0),
    created_by    bigint references app_user (id),
    note          text not null default '' check (length(note) <= 2000),
    created_at    timestamptz not null default now()
);
create index installment_plan_household on installment_plan (household_id);

create table installment_due (
    plan_id    bigint not null references installment_plan (id) on delete cascade,
    seq        integer not null check (seq > 0),
    due_date   date not null,
    amount_yen bigint not null check (amount_yen > 0),
    paid_yen   bigint not null default 0 check (paid_yen >= 0),
    paid_on    date,
    primary key (plan_id, seq)
);

-- Promises to pay (納付約束), from dispositions; followed up when the date passes unpaid.
create table promise (
    id             bigint generated always as identity primary key,
    department_id  text not null references department (id),
    household_id   bigint not null references household (id) on delete cascade,
    disposition_id bigint unique references disposition (id) on delete set null,
    operator_id    bigint references app_user (id),
    promised_on    date not null,
    amount_yen     bigint not null check (amount_yen > 0),
    status         text not null default 'open' check (status in ('open', 'kept', 'broken', 'cancelled')),
    created_at     timestamptz not null default now()
);
create index promise_open on promise (promised_on) where status = 'open';
insert into promise (department_id, household_id, disposition_id, operator_id, promised_on, amount_yen)
select d.department_id, a.household_id, d.id, d.operator_id, d.promise_date, d.promise_amount_yen
from disposition d join attempt a on a.id = d.attempt_id
where d.promise_date is not null and d.promise_amount_yen is not null;

-- 経過記録: the contact history that goes back to the delinquency system (date, place, party, content).
create table contact_history (
    id             bigint generated always as identity primary key,
    department_id  text not null references department (id),
    household_id   bigint not null references household (id) on delete cascade,
    at             timestamptz not null,
    method         text not null check (method in ('phone_out', 'phone_in', 'visit', 'letter', 'counter', 'other')),
    place          text not null default '',       -- 場所: the number called, the address visited
    party          text not null default '',       -- 相手: 本人, 家族, …
    content        text not null default '' check (length(content) <= 4000),
    disposition_id bigint unique references disposition (id) on delete set null,
    recorded_by    bigint references app_user (id),
    created_at     timestamptz not null default now()
);
create index contact_history_household on contact_history (household_id, at);
create index contact_history_department_at on contact_history (department_id, at);
insert into contact_history (department_id, household_id, at, method, place, party, content, disposition_id, recorded_by)
select d.department_id, a.household_id, coalesce(a.answered_at, a.originated_at), 'phone_out', coalesce(a.dialed_number, ''),
       case when c.reached then '本人' else '' end,
       coalesce(c.label_ja, d.code) || case when d.note <> '' then ': ' || d.note else '' end,
       d.id, d.operator_id
from disposition d
join attempt a on a.id = d.attempt_id
left join lateral (
    select reached, label_ja from disposition_code dc
    where dc.code = d.code and (dc.department_id = d.department_id or dc.department_id is null)
    order by dc.department_id nulls last limit 1
) c on true;

-- A household's summary (what it owes, since when, whether it can be called) follows its debts
-- and phones by statement-level triggers: one set-based refresh per statement, so a million-row
-- import pays once, and no code path can forget it.
-- For a few households (a payment, a number marked do-not-call) index lookups are right; for an
-- import's hundred thousand the planner cannot know how many ids the array holds and its nested
-- loops would take minutes, so large refreshes are told to use hash joins.
create function refresh_household_summary(ids bigint[]) returns void language plpgsql as $fn$
declare
    nestloop text := current_setting('enable_nestloop');
begin
    if cardinality(ids) > 1000 then
        perform set_config('enable_nestloop', 'off', true);
    end if;
    execute $q$
    with x as (select distinct id from unnest($1) as u (id)),
    d as (
        select d.household_id, sum(d.unpaid_yen) as unpaid, min(d.due_date) filter (where d.unpaid_yen > 0) as oldest
        from debt d join x on x.id = d.household_id group by d.household_id
    ), p as (
        select p.household_id, bool_or(p.valid and not p.do_not_call) as dialable
        from phone p join x on x.id = p.household_id group by p.household_id
    ), s as (
        select h.id, h.unpaid_yen as before, coalesce(d.unpaid, 0) as unpaid, d.oldest,
               coalesce(p.dialable, false) as dialable
        from household h join x on x.id = h.id
        left join d on d.household_id = h.id
        left join p on p.household_id = h.id
    ), changed as (
        update household h set unpaid_yen = s.unpaid, oldest_due_date = s.oldest, dialable = s.dialable
        from s
        where h.id = s.id and (h.unpaid_yen, h.oldest_due_date, h.dialable) is distinct from (s.unpaid, s.oldest, s.dialable)
        returning h.id, s.before, s.unpaid
    )
    -- Paid off: the household leaves every campaign at once, including a call already queued
    -- (leased) for it; the engine never dials a target that is no longer leased.
    update campaign_target t
    set state = 'excluded', last_outcome = 'paid', lease_owner = null, lease_expires_at = null
    from changed c
    where t.household_id = c.id and c.before > 0 and c.unpaid = 0 and t.state in ('pending', 'leased')
    $q$ using ids;
    perform set_config('enable_nestloop', nestloop, true);
end $fn$;

-- One trigger function for insert, update and delete: each trigger names only the transition
-- tables its event has, and a branch that names another is never run for it.
create function household_summary_after() returns trigger language plpgsql as $$
begin
    if current_setting('dialer.bulk', true) = 'on' then
        return null;  -- an import in progress refreshes its households once, at its end
    end if;
    if tg_op = 'INSERT' then
        perform refresh_household_summary(array(select distinct household_id from new_rows));
    elsif tg_op = 'DELETE' then
        perform refresh_household_summary(array(select distinct household_id from old_rows));
    else
        perform refresh_household_summary(array(
            select household_id from new_rows union select household_id from old_rows));
    end if;
    return null;
end $$;

create trigger debt_summary_insert after insert on debt referencing new table as new_rows
    for each statement execute function household_summary_after();
create trigger debt_summary_update after update on debt referencing old table as old_rows new table as new_rows
    for each statement execute function household_summary_after();
create trigger debt_summary_delete after delete on debt referencing old table as old_rows
    for each statement execute function household_summary_after();
create trigger phone_summary_insert after insert on phone referencing new table as new_rows
    for each statement execute function household_summary_after();
create trigger phone_summary_update after update on phone referencing old table as old_rows new table as new_rows
    for each statement execute function household_summary_after();
create trigger phone_summary_delete after delete on phone referencing old table as old_rows
    for each statement execute function household_summary_after();

-- The summary columns for the households already there.
select refresh_household_summary(array(select id from household));
